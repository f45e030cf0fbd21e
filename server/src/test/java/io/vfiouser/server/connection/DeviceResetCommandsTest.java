package io.vfiouser.server.connection;

import static io.vfiouser.server.connection.ConnectionChannel.command;
import static io.vfiouser.server.connection.ConnectionChannel.concat;
import static io.vfiouser.server.connection.ConnectionChannel.hex;
import static io.vfiouser.server.connection.ConnectionChannel.le;
import static io.vfiouser.server.connection.UnitDevices.BAR0;
import static io.vfiouser.server.connection.UnitDevices.CONFIG;
import static org.assertj.core.api.Assertions.assertThat;

import io.vfiouser.codec.VfioUserCommand;
import io.vfiouser.codec.VfioUserHeader;
import io.vfiouser.codec.VfioUserProtocolException;
import io.vfiouser.transport.linux.Errno;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;

/**
 * DEVICE_RESET through the connection's real pipeline (digest 3.13, 4.6, 6.3): quiesce first, then the device's
 * reset with reason CLIENT_REQUEST, then the configuration space back to its power-on state; a header-only reply;
 * a device without reset support refused with EINVAL and left alone; a quiesce or reset that completes later holds
 * every later command; their failures give their errno; NO_REPLY.
 */
class DeviceResetCommandsTest {
    private final ScriptedDevice device = new ScriptedDevice();

    private static byte[] reset(int msgId) {
        return command(msgId, VfioUserCommand.DEVICE_RESET, new byte[0]);
    }

    private static byte[] readConfig(int msgId, int offset, int count) {
        return command(msgId, VfioUserCommand.REGION_READ, le(8, offset, 4, CONFIG, 4, count));
    }

    private static byte[] writeConfig(int msgId, int offset, byte[] data) {
        return command(msgId, VfioUserCommand.REGION_WRITE, concat(le(8, offset, 4, CONFIG, 4, data.length), data));
    }

    private static byte[] getInfo(int msgId) {
        return command(msgId, VfioUserCommand.DEVICE_GET_INFO, le(4, 16, 4, 0, 4, 0, 4, 0));
    }

    @Test
    void resetQuiescesThenResetsWithClientRequestAndAnswersHeaderOnly() throws Exception {
        try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.basic(), device)) {
            device.takeCalls();
            c.send(hex("3412 0d00 10000000 00000000 00000000"));
            assertThat(c.assertOk(0x1234, VfioUserCommand.DEVICE_RESET).bytes()).isEqualTo(
                    hex("3412 0d00 10000000 01000000 00000000"));
            assertThat(device.takeCalls()).containsExactly("quiesce", "reset CLIENT_REQUEST");
        }
    }

    /** A payload on DEVICE_RESET is accepted and ignored (digest 6.1). */
    @Test
    void aPayloadOnResetIsIgnored() throws Exception {
        try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.basic(), device)) {
            device.takeCalls();
            c.send(command(1, VfioUserCommand.DEVICE_RESET, hex("0102030405")));
            assertThat(c.assertOk(1, VfioUserCommand.DEVICE_RESET).size()).isEqualTo(16);
            assertThat(device.takeCalls()).containsExactly("quiesce", "reset CLIENT_REQUEST");
        }
    }

    /** Command, BAR0, Interrupt Line and the PCIe DevCtl written, then DEVICE_RESET: all 4 KiB as at power-on. */
    @Test
    void resetPutsTheConfigurationSpaceBackToItsPowerOnState() throws Exception {
        try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.basic(), device)) {
            c.send(readConfig(1, 0, 0x1000));
            byte[] powerOn = c.assertOk(1, VfioUserCommand.REGION_READ).payload();
            c.send(writeConfig(2, 0x04, hex("0601")));
            c.assertOk(2, VfioUserCommand.REGION_WRITE);
            c.send(writeConfig(3, 0x10, hex("00f0ffff")));
            c.assertOk(3, VfioUserCommand.REGION_WRITE);
            c.send(writeConfig(4, 0x3c, hex("0b")));
            c.assertOk(4, VfioUserCommand.REGION_WRITE);
            c.send(writeConfig(5, UnitDevices.EXPRESS_DEVCTL, hex("1000")));
            c.assertOk(5, VfioUserCommand.REGION_WRITE);
            c.send(readConfig(6, 0, 0x1000));
            assertThat(c.assertOk(6, VfioUserCommand.REGION_READ).payload()).as("the writes took effect")
                    .isNotEqualTo(powerOn);
            c.send(reset(7));
            c.assertOk(7, VfioUserCommand.DEVICE_RESET);
            c.send(readConfig(8, 0, 0x1000));
            assertThat(c.assertOk(8, VfioUserCommand.REGION_READ).payload()).isEqualTo(powerOn);
        }
    }

    /** No reset support: EINVAL, and the device is neither quiesced nor reset for it. */
    @Test
    void resetOfADeviceWithoutResetSupportIsEinvalAndTheDeviceIsLeftAlone() throws Exception {
        try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.withoutReset(), device)) {
            device.takeCalls();
            c.send(reset(1));
            c.assertError(1, VfioUserCommand.DEVICE_RESET, Errno.EINVAL);
            c.send(command(2, VfioUserCommand.DEVICE_RESET, VfioUserHeader.NO_REPLY, new byte[0]));
            c.assertNoReply();
            assertThat(device.takeCalls()).isEmpty();
        }
    }

    /** While the quiesce has not completed, nothing behind the reset starts; then all run, answered in order. */
    @Test
    void aHeldQuiesceMakesLaterCommandsWait() throws Exception {
        try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.basic(), device)) {
            device.takeCalls();
            CompletableFuture<Void> quiesced = device.holdNextQuiesce();
            c.sendAll(reset(1), getInfo(2), command(3, VfioUserCommand.REGION_READ, le(8, 0, 4, BAR0, 4, 4)));
            c.assertNoReply();
            assertThat(device.takeCalls()).containsExactly("quiesce");
            quiesced.complete(null);
            List<ConnectionChannel.Reply> replies = c.replies();
            assertThat(replies).extracting(ConnectionChannel.Reply::msgId).containsExactly(1, 2, 3);
            assertThat(replies).allMatch(r -> !r.isError());
            assertThat(device.takeCalls()).containsExactly("reset CLIENT_REQUEST", "read 0 0x0 4");
        }
    }

    @Test
    void aHeldResetMakesLaterCommandsWait() throws Exception {
        try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.basic(), device)) {
            device.takeCalls();
            CompletableFuture<Void> reset = device.holdNextReset();
            c.sendAll(reset(1), command(2, VfioUserCommand.REGION_WRITE, concat(le(8, 0, 4, BAR0, 4, 1), hex("aa"))));
            c.assertNoReply();
            assertThat(device.takeCalls()).containsExactly("quiesce", "reset CLIENT_REQUEST");
            reset.complete(null);
            assertThat(c.replies()).extracting(ConnectionChannel.Reply::msgId).containsExactly(1, 2);
            assertThat(device.takeCalls()).containsExactly("write 0 0x0 1");
        }
    }

    /** A failed quiesce gives its errno and the device is not reset; a failed reset gives its errno. */
    @Test
    void aFailedQuiesceOrResetGivesItsErrno() throws Exception {
        try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.basic(), device)) {
            device.takeCalls();
            device.holdNextQuiesce().completeExceptionally(new VfioUserProtocolException(Errno.EBUSY, "busy"));
            c.send(reset(1));
            c.assertError(1, VfioUserCommand.DEVICE_RESET, Errno.EBUSY);
            assertThat(device.takeCalls()).containsExactly("quiesce");
            device.holdNextReset().completeExceptionally(new VfioUserProtocolException(Errno.EIO, "broken"));
            c.send(reset(2));
            c.assertError(2, VfioUserCommand.DEVICE_RESET, Errno.EIO);
            assertThat(device.takeCalls()).containsExactly("quiesce", "reset CLIENT_REQUEST");
            c.send(getInfo(3));
            c.assertOk(3, VfioUserCommand.DEVICE_GET_INFO);
        }
    }

    @Test
    void resetWithNoReplyRunsWithoutAReplyEvenWhenItFails() throws Exception {
        try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.basic(), device)) {
            device.takeCalls();
            c.send(command(1, VfioUserCommand.DEVICE_RESET, VfioUserHeader.NO_REPLY, new byte[0]));
            device.holdNextReset().completeExceptionally(new VfioUserProtocolException(Errno.EIO, "broken"));
            c.send(command(2, VfioUserCommand.DEVICE_RESET, VfioUserHeader.NO_REPLY, new byte[0]));
            c.assertNoReply();
            assertThat(device.takeCalls()).containsExactly("quiesce", "reset CLIENT_REQUEST", "quiesce",
                    "reset CLIENT_REQUEST");
            assertThat(c.runtime.stats().errors(Errno.EIO)).isEqualTo(1);
        }
    }
}
