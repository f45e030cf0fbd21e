package io.vfiouser.server.connection;

import static io.vfiouser.server.connection.ConnectionChannel.command;
import static io.vfiouser.server.connection.ConnectionChannel.le;
import static io.vfiouser.server.connection.UnitDevices.BAR0;

import io.vfiouser.codec.VfioUserCommand;
import io.vfiouser.codec.VfioUserProtocolException;
import io.vfiouser.device.DmaException;
import io.vfiouser.transport.linux.Errno;
import io.vfiouser.transport.linux.ErrnoException;
import java.nio.channels.ClosedChannelException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.TimeoutException;
import org.junit.jupiter.api.Test;

/**
 * The table of {@code VfioUserDevice}'s javadoc and the guide, row by row: a device's failure, thrown or as a failed
 * future, becomes the errno of the client's error reply ({@link Errors}). If a row changes here, change both tables.
 */
class DeviceFailureErrnoTest {
    private final ScriptedDevice device = new ScriptedDevice();

    private static byte[] read(int msgId) {
        return command(msgId, VfioUserCommand.REGION_READ, le(8, 0x10L, 4, BAR0, 4, 4));
    }

    private void assertFailedFutureGives(Throwable failure, int errno) throws Exception {
        try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.basic(), device)) {
            CompletableFuture<Void> held = device.holdNextAccess();
            c.send(read(5));
            held.completeExceptionally(failure);
            c.assertError(5, VfioUserCommand.REGION_READ, errno);
        }
    }

    private void assertThrownGives(RuntimeException failure, int errno) throws Exception {
        try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.basic(), device)) {
            device.failNextAccess(failure);
            c.send(read(6));
            c.assertError(6, VfioUserCommand.REGION_READ, errno);
        }
    }

    @Test
    void exceptionsCarryingAnErrnoGiveIt() throws Exception {
        assertFailedFutureGives(new DmaException(Errno.EFAULT, "not mapped"), Errno.EFAULT);
        assertFailedFutureGives(new DmaException(Errno.EACCES, "read-only"), Errno.EACCES);
        assertFailedFutureGives(new ErrnoException("pwrite", Errno.EAGAIN), Errno.EAGAIN);
        assertFailedFutureGives(new VfioUserProtocolException(Errno.E2BIG, "too much"), Errno.E2BIG);
    }

    @Test
    void argumentAndStateExceptionsByKind() throws Exception {
        assertThrownGives(new IllegalArgumentException("no such register"), Errno.EINVAL);
        assertThrownGives(new IndexOutOfBoundsException("past the end"), Errno.EINVAL);
        assertThrownGives(new UnsupportedOperationException("not implemented"), Errno.ENOTSUP);
        assertFailedFutureGives(new ClosedChannelException(), Errno.ENOTCONN);
        assertFailedFutureGives(new TimeoutException(), Errno.ETIMEDOUT);
    }

    @Test
    void everythingElseIsEioAndWrappersAreLookedThrough() throws Exception {
        assertThrownGives(new IllegalStateException("a bug"), Errno.EIO);
        assertThrownGives(new NullPointerException(), Errno.EIO);
        assertFailedFutureGives(new CompletionException(new IllegalArgumentException("wrapped")), Errno.EINVAL);
    }
}
