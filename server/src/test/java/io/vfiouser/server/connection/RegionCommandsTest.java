package io.vfiouser.server.connection;

import static io.vfiouser.server.connection.ConnectionChannel.command;
import static io.vfiouser.server.connection.ConnectionChannel.concat;
import static io.vfiouser.server.connection.ConnectionChannel.le;
import static io.vfiouser.server.connection.UnitDevices.BAR0;
import static io.vfiouser.server.connection.UnitDevices.BAR2;
import static io.vfiouser.server.connection.UnitDevices.CONFIG;
import static io.vfiouser.server.connection.UnitDevices.EXPRESS_DEVCTL;
import static org.assertj.core.api.Assertions.assertThat;

import io.vfiouser.codec.VfioUserCommand;
import io.vfiouser.codec.VfioUserHeader;
import io.vfiouser.transport.linux.Errno;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;

/**
 * REGION_READ, REGION_WRITE and REGION_WRITE_MULTI through the connection's real pipeline, without a socket (digest
 * 3.9, 3.10, 3.15, 6.3): golden request bytes in odd chunks, the reply's exact bytes, the errno of every refused
 * access, NO_REPLY, arrival order behind a device that completes later, and an FLR that completes with the
 * configuration write that asked for it.
 */
class RegionCommandsTest {
    private final ScriptedDevice device = new ScriptedDevice();

    private static byte[] read(int msgId, int region, long offset, int count) {
        return command(msgId, VfioUserCommand.REGION_READ, le(8, offset, 4, region, 4, count));
    }

    private static byte[] write(int msgId, int flags, int region, long offset, byte[] data) {
        return command(msgId, VfioUserCommand.REGION_WRITE, flags, concat(le(8, offset, 4, region, 4, data.length),
                data));
    }

    @Test
    void readOfADeviceRegisterGoesToTheDeviceAndComesBackWithItsBytes() throws Exception {
        device.regions[BAR0][0x10] = 0x11;
        device.regions[BAR0][0x13] = 0x44;
        try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.basic(), device)) {
            device.takeCalls();
            c.send(read(7, BAR0, 0x10, 4));
            ConnectionChannel.Reply r = c.assertOk(7, VfioUserCommand.REGION_READ);
            assertThat(r.bytes()).isEqualTo(ConnectionChannel.hex(
                    "0700 0900 24000000 01000000 00000000  1000000000000000 00000000 04000000  11000044"));
            assertThat(device.takeCalls()).containsExactly("read 0 0x10 4");
        }
    }

    @Test
    void largeReadTakesTheGeneralPathWithTheSameAnswer() throws Exception {
        try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.basic(), device)) {
            device.regions[BAR0][0x7FF] = 0x5A;
            c.send(read(3, BAR0, 0, 0x800));
            ConnectionChannel.Reply r = c.assertOk(3, VfioUserCommand.REGION_READ);
            assertThat(r.size()).isEqualTo(16 + 16 + 0x800);
            assertThat(r.payload()[16 + 0x7FF]).isEqualTo((byte) 0x5A);
        }
    }

    @Test
    void writeReachesTheDeviceAndIsAnsweredWithoutData() throws Exception {
        try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.basic(), device)) {
            device.takeCalls();
            c.send(write(9, 0, BAR0, 0x20, ConnectionChannel.hex("deadbeef")));
            ConnectionChannel.Reply r = c.assertOk(9, VfioUserCommand.REGION_WRITE);
            assertThat(r.bytes()).isEqualTo(ConnectionChannel.hex(
                    "0900 0a00 20000000 01000000 00000000  2000000000000000 00000000 04000000"));
            assertThat(device.regions[BAR0][0x20]).isEqualTo((byte) 0xde);
            assertThat(device.takeCalls()).containsExactly("write 0 0x20 4");
        }
    }

    @Test
    void memoryBackedRegionIsServedByTheServerNotTheDevice() throws Exception {
        try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.basic(), device)) {
            device.takeCalls();
            c.send(write(1, 0, BAR2, 0x1FFC, ConnectionChannel.hex("01020304")));
            c.assertOk(1, VfioUserCommand.REGION_WRITE);
            c.send(read(2, BAR2, 0x1FFC, 4));
            assertThat(c.assertOk(2, VfioUserCommand.REGION_READ).payload()).endsWith(1, 2, 3, 4);
            assertThat(device.takeCalls()).isEmpty();
        }
    }

    @Test
    void refusedAccessesGetEinvalAndTheConnectionGoesOn() throws Exception {
        try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.basic(), device)) {
            device.takeCalls();
            c.send(read(1, BAR0, 0xFFE, 4));
            c.assertError(1, VfioUserCommand.REGION_READ, Errno.EINVAL);
            c.send(read(2, 1, 0, 4));
            c.assertError(2, VfioUserCommand.REGION_READ, Errno.EINVAL);
            c.send(read(3, 9, 0, 4));
            c.assertError(3, VfioUserCommand.REGION_READ, Errno.EINVAL);
            c.send(read(4, BAR0, -1L, 4));
            c.assertError(4, VfioUserCommand.REGION_READ, Errno.EINVAL);
            c.send(read(5, BAR0, 0, (1 << 20) + 1));
            c.assertError(5, VfioUserCommand.REGION_READ, Errno.EINVAL);
            assertThat(device.takeCalls()).as("no refused access reaches the device").isEmpty();
            c.send(read(6, BAR0, 0, 4));
            c.assertOk(6, VfioUserCommand.REGION_READ);
        }
    }

    @Test
    void aDeviceThatFailsGivesItsErrnoAndADeviceThatThrowsGivesEio() throws Exception {
        try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.basic(), device)) {
            CompletableFuture<Void> held = device.holdNextAccess();
            c.send(read(1, BAR0, 0, 4));
            c.assertNoReply();
            held.completeExceptionally(new io.vfiouser.codec.VfioUserProtocolException(Errno.EPERM, "no"));
            c.assertError(1, VfioUserCommand.REGION_READ, Errno.EPERM);
            device.failNextAccess(new IllegalStateException("bug in the device"));
            c.send(read(2, BAR0, 0, 4));
            c.assertError(2, VfioUserCommand.REGION_READ, Errno.EIO);
        }
    }

    @Test
    void noReplyWritesAreAppliedAndNeverAnswered() throws Exception {
        try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.basic(), device)) {
            device.takeCalls();
            c.send(write(1, VfioUserHeader.NO_REPLY, BAR0, 0, ConnectionChannel.hex("01")));
            c.send(write(2, VfioUserHeader.NO_REPLY, BAR0, 0xFFF, ConnectionChannel.hex("0102")));
            c.assertNoReply();
            CompletableFuture<Void> held = device.holdNextAccess();
            c.send(write(3, VfioUserHeader.NO_REPLY, BAR0, 1, ConnectionChannel.hex("02")));
            held.completeExceptionally(new IllegalStateException("failed later"));
            c.assertNoReply();
            assertThat(device.takeCalls()).containsExactly("write 0 0x0 1", "write 0 0x1 1");
            assertThat(c.runtime.stats().errors(Errno.EINVAL)).as("the refused one is counted").isEqualTo(1);
        }
    }

    /**
     * While the device has not completed a read, the commands behind it wait, whichever path they would take, and
     * their replies follow in arrival order.
     */
    @Test
    void commandsBehindAPendingAccessWaitAndAreAnsweredInOrder() throws Exception {
        try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.basic(), device)) {
            device.takeCalls();
            CompletableFuture<Void> held = device.holdNextAccess();
            c.sendAll(read(1, BAR0, 0, 4), write(2, 0, BAR0, 4, ConnectionChannel.hex("aa")), read(3, CONFIG, 0, 4),
                    read(4, BAR0, 0x2000, 4));
            assertThat(device.takeCalls()).as("nothing behind the pending read started").containsExactly(
                    "read 0 0x0 4");
            c.assertNoReply();
            held.complete(null);
            List<ConnectionChannel.Reply> replies = c.replies();
            assertThat(replies).extracting(ConnectionChannel.Reply::msgId).containsExactly(1, 2, 3, 4);
            assertThat(replies.get(3).error()).isEqualTo(Errno.EINVAL);
            assertThat(device.takeCalls()).containsExactly("write 0 0x4 1");
        }
    }

    @Test
    void writeMultiAppliesEveryEntryInOrder() throws Exception {
        try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.basic(), device)) {
            device.takeCalls();
            // wr_cnt u64, then two entries: offset u64, region u32, count u32, data u64 (digest 3.15).
            byte[] payload = concat(le(8, 2), le(8, 0x10, 4, BAR0, 4, 4, 8, 0x04030201L),
                    le(8, 0x20, 4, BAR0, 4, 2, 8, 0x0605L));
            c.send(command(5, VfioUserCommand.REGION_WRITE_MULTI, payload));
            ConnectionChannel.Reply r = c.assertOk(5, VfioUserCommand.REGION_WRITE_MULTI);
            assertThat(r.payload()).isEqualTo(le(8, 2));
            assertThat(device.takeCalls()).containsExactly("write 0 0x10 4", "write 0 0x20 2");
            assertThat(device.regions[BAR0][0x21]).isEqualTo((byte) 6);
        }
    }

    /**
     * A configuration write that sets Initiate FLR is answered once the reset is over: quiesce, the device's reset
     * with reason FLR, the configuration space back to its power-on state; the next command waits for it.
     */
    @Test
    void flrCompletesWithTheConfigurationWriteThatAskedForIt() throws Exception {
        try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.basic(), device)) {
            c.send(write(1, 0, CONFIG, 0x04, ConnectionChannel.hex("0604")));
            c.assertOk(1, VfioUserCommand.REGION_WRITE);
            device.takeCalls();
            CompletableFuture<Void> reset = device.holdNextReset();
            c.sendAll(write(2, 0, CONFIG, EXPRESS_DEVCTL, ConnectionChannel.hex("0080")), read(3, CONFIG, 0x04, 2));
            assertThat(device.takeCalls()).containsExactly("config 0x48 2", "quiesce", "reset FLR");
            c.assertNoReply();
            reset.complete(null);
            List<ConnectionChannel.Reply> replies = c.replies();
            assertThat(replies).extracting(ConnectionChannel.Reply::msgId).containsExactly(2, 3);
            assertThat(replies.get(1).payload()).as("Command register back to 0").endsWith(0, 0);
        }
    }
}
