package io.vfiouser.server.connection;

import static io.vfiouser.server.connection.ConnectionChannel.command;
import static io.vfiouser.server.connection.ConnectionChannel.concat;
import static io.vfiouser.server.connection.ConnectionChannel.frame;
import static io.vfiouser.server.connection.ConnectionChannel.le;
import static io.vfiouser.server.connection.UnitDevices.BAR0;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.tuple;

import io.vfiouser.codec.VfioUserCommand;
import io.vfiouser.codec.VfioUserHeader;
import io.vfiouser.server.ServerOptions;
import io.vfiouser.transport.linux.Errno;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * What a negotiated connection does with messages that are not well-formed commands (digest 1.3, 6.1): unknown
 * command codes, commands only a server sends, an unsolicited reply, an invalid message type, a malformed payload
 * (the decoder's errno; the connection stays), and a framing fault ({@code msg_size} below 16 or above the maximum:
 * EINVAL unless NO_REPLY, then the connection closes with every byte and fd that waited). An error reply is always
 * the 16-byte header echoing the message's id and command, with flags REPLY|ERROR.
 */
class ProtocolErrorsTest {
    private final ScriptedDevice device = new ScriptedDevice();

    private static byte[] getInfo(int msgId) {
        return command(msgId, VfioUserCommand.DEVICE_GET_INFO, le(4, 16, 4, 0, 4, 0, 4, 0));
    }

    /** The exact error reply: header only, flags REPLY|ERROR. */
    private static byte[] errorReply(int msgId, int command, int errno) {
        return le(2, msgId, 2, command, 4, 16, 4, VfioUserHeader.REPLY | VfioUserHeader.ERROR, 4, errno);
    }

    /** 0, the removed 14, the first codes past the table and the last one; 11 and 12 only a server sends. */
    @ParameterizedTest
    @ValueSource(ints = {0, 11, 12, 14, 19, 20, 0x7FFF, 0xFFFF})
    void unknownAndServerOnlyCommandsGetEinvalAndTheConnectionStays(int code) throws Exception {
        try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.basic(), device)) {
            device.takeCalls();
            c.send(frame(0x5a5a, code, 0, 0, le(8, 0, 8, 16)));
            assertThat(c.reply().bytes()).isEqualTo(errorReply(0x5a5a, code, Errno.EINVAL));
            c.send(frame(2, code, VfioUserHeader.NO_REPLY, 0, new byte[0]));
            c.assertNoReply();
            c.send(getInfo(3));
            c.assertOk(3, VfioUserCommand.DEVICE_GET_INFO);
            assertThat(device.takeCalls()).isEmpty();
        }
    }

    /** A reply the server never asked for (no DMA request is outstanding): EINVAL, the connection goes on. */
    @Test
    void anUnsolicitedReplyGetsEinvalAndTheConnectionStays() throws Exception {
        try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.basic(), device)) {
            c.send(frame(7, VfioUserCommand.DMA_READ.code(), VfioUserHeader.REPLY, 0, le(8, 0x1000, 8, 4, 4, 0)));
            assertThat(c.reply().bytes()).isEqualTo(errorReply(7, VfioUserCommand.DMA_READ.code(), Errno.EINVAL));
            c.send(frame(8, VfioUserCommand.DEVICE_GET_INFO.code(), VfioUserHeader.REPLY, 0, le(4, 16, 4, 3, 4, 9,
                    4, 5)));
            assertThat(c.reply().bytes()).isEqualTo(errorReply(8, 4, Errno.EINVAL));
            c.send(getInfo(9));
            c.assertOk(9, VfioUserCommand.DEVICE_GET_INFO);
        }
    }

    /** Header types 2 to 15 are neither command nor reply: EINVAL, the connection goes on. */
    @ParameterizedTest
    @ValueSource(ints = {2, 7, 15})
    void anInvalidMessageTypeGetsEinval(int type) throws Exception {
        try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.basic(), device)) {
            c.send(frame(3, VfioUserCommand.DEVICE_GET_INFO.code(), type, 0, le(4, 16, 4, 0, 4, 0, 4, 0)));
            assertThat(c.reply().bytes()).isEqualTo(errorReply(3, 4, Errno.EINVAL));
            c.send(getInfo(4));
            c.assertOk(4, VfioUserCommand.DEVICE_GET_INFO);
        }
    }

    /** The ERROR flag on a command means nothing (digest 6.1): the command runs. */
    @Test
    void theErrorFlagOnACommandIsIgnored() throws Exception {
        try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.basic(), device)) {
            c.send(frame(5, VfioUserCommand.DEVICE_GET_INFO.code(), VfioUserHeader.ERROR, 22, le(4, 16, 4, 0, 4, 0,
                    4, 0)));
            c.assertOk(5, VfioUserCommand.DEVICE_GET_INFO);
        }
    }

    /**
     * A payload its decoder refuses is answered with the decoder's errno; the connection goes on, its fds are
     * closed, NO_REPLY is honoured, and a malformed command waits behind a pending one like any other.
     */
    @Test
    void aMalformedPayloadGetsTheDecodersErrnoAndTheConnectionStays() throws Exception {
        int fd = TestFds.memfd();
        String target = TestFds.target(fd);
        try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.basic(), device)) {
            device.takeCalls();
            c.send(command(1, VfioUserCommand.REGION_READ, le(8, 0, 4, BAR0)));
            c.assertError(1, VfioUserCommand.REGION_READ, Errno.EINVAL);
            c.send(command(2, VfioUserCommand.REGION_WRITE, concat(le(8, 0, 4, BAR0, 4, 4), le(2, 0))), fd);
            c.assertError(2, VfioUserCommand.REGION_WRITE, Errno.EINVAL);
            TestFds.assertClosed(fd, target);
            c.send(command(3, VfioUserCommand.REGION_WRITE, VfioUserHeader.NO_REPLY, concat(le(8, 0, 4, BAR0, 4, 4),
                    le(2, 0))));
            c.assertNoReply();
            assertThat(device.takeCalls()).as("nothing malformed reaches the device").isEmpty();

            CompletableFuture<Void> held = device.holdNextAccess();
            c.sendAll(command(4, VfioUserCommand.REGION_READ, le(8, 0, 4, BAR0, 4, 4)),
                    command(5, VfioUserCommand.DEVICE_GET_INFO, le(4, 16)), getInfo(6));
            c.assertNoReply();
            held.complete(null);
            assertThat(c.replies()).extracting(ConnectionChannel.Reply::msgId, ConnectionChannel.Reply::error)
                    .containsExactly(tuple(4, 0), tuple(5, Errno.EINVAL), tuple(6, 0));
        }
    }

    /**
     * {@code msg_size} below 16: the stream has lost its framing. EINVAL echoing what the header said, then the
     * connection closes; what followed in the stream is never handled.
     */
    @ParameterizedTest
    @ValueSource(longs = {0, 1, 15})
    void aMessageSizeBelowTheHeaderGetsEinvalAndTheConnectionCloses(long size) throws Exception {
        try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.basic(), device)) {
            device.takeCalls();
            c.sendAll(le(2, 0x0c0d, 2, 9, 4, size, 4, 0, 4, 0), command(2, VfioUserCommand.REGION_READ,
                    le(8, 0, 4, BAR0, 4, 4)));
            assertThat(c.reply().bytes()).isEqualTo(errorReply(0x0c0d, 9, Errno.EINVAL));
            assertThat(c.isOpen()).isFalse();
            assertThat(device.takeCalls()).as("the read behind it never ran").doesNotContain("read 0 0x0 4");
        }
    }

    /** {@code msg_size} above the maximum (as a u32, too): EINVAL, then closed; the fd that came with it closed. */
    @ParameterizedTest
    @ValueSource(longs = {0, 1, 0x7FFFFFFFL, 0xFFFFFFFFL})
    void aMessageSizeAboveTheMaximumGetsEinvalAndTheConnectionCloses(long beyond) throws Exception {
        long size = beyond == 0 || beyond == 1 ? ServerOptions.DEFAULT.maxMessageSize() + beyond : beyond;
        int fd = TestFds.memfd();
        String target = TestFds.target(fd);
        int reuse;
        String reuseTarget;
        try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.basic(), device)) {
            if (size == ServerOptions.DEFAULT.maxMessageSize()) {
                // The maximum itself is a valid size: this is the control case (a 1 MiB + 32 REGION_WRITE is refused
                // by its payload check, not its framing).
                c.sendLarge(command(1, VfioUserCommand.REGION_WRITE, new byte[(int) size - 16]));
                c.assertError(1, VfioUserCommand.REGION_WRITE, Errno.EINVAL);
                assertThat(c.isOpen()).isTrue();
                TestFds.close(fd);
                return;
            }
            c.send(concat(le(2, 0x0e0f, 2, 10, 4, size, 4, 0, 4, 0), le(8, 0, 4, BAR0, 4, 4)), fd);
            assertThat(c.reply().bytes()).isEqualTo(errorReply(0x0e0f, 10, Errno.EINVAL));
            assertThat(c.isOpen()).isFalse();
            TestFds.assertClosed(fd, target);
            reuse = TestFds.memfd();
            reuseTarget = TestFds.target(reuse);
        }
        TestFds.assertOpen(reuse, reuseTarget);
        TestFds.close(reuse);
    }

    /** A framing fault on a NO_REPLY command: no reply at all, only the close. */
    @Test
    void aFramingFaultWithNoReplyClosesWithoutAReply() throws Exception {
        try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.basic(), device)) {
            c.send(le(2, 1, 2, 10, 4, 8, 4, VfioUserHeader.NO_REPLY, 4, 0));
            c.assertNoReply();
            assertThat(c.isOpen()).isFalse();
        }
        try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.basic(), device)) {
            c.send(le(2, 1, 2, 10, 4, 0xFFFFFFFFL, 4, VfioUserHeader.NO_REPLY, 4, 0));
            c.assertNoReply();
            assertThat(c.isOpen()).isFalse();
        }
    }

    /**
     * A framing fault behind a pending device access: the connection closes at once, saying why (the EINVAL of
     * the broken header is all the client gets); the commands before it are dropped unanswered, even when the
     * device completes later, and the device is told the client left.
     */
    @Test
    void aFramingFaultBehindAPendingAccessClosesTheConnectionAtOnce() throws Exception {
        try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.basic(), device)) {
            device.takeCalls();
            CompletableFuture<Void> held = device.holdNextAccess();
            c.sendAll(command(1, VfioUserCommand.REGION_READ, le(8, 0, 4, BAR0, 4, 4)), getInfo(2),
                    le(2, 3, 2, 4, 4, 4, 4, 0, 4, 0));
            assertThat(c.isOpen()).isFalse();
            held.complete(null);
            c.runTasks();
            assertThat(c.reply().bytes()).isEqualTo(errorReply(3, 4, Errno.EINVAL));
            assertThat(device.takeCalls()).containsExactly("read 0 0x0 4", "quiesce", "reset LOST_CONNECTION",
                    "detached");
        }
    }
}
