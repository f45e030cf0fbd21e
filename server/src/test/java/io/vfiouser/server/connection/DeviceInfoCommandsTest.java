package io.vfiouser.server.connection;

import static io.vfiouser.server.connection.ConnectionChannel.command;
import static io.vfiouser.server.connection.ConnectionChannel.concat;
import static io.vfiouser.server.connection.ConnectionChannel.le;
import static org.assertj.core.api.Assertions.assertThat;

import io.vfiouser.codec.VfioUserCommand;
import io.vfiouser.codec.VfioUserHeader;
import io.vfiouser.transport.linux.Errno;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * DEVICE_GET_INFO and DEVICE_GET_IRQ_INFO through the connection's real pipeline (digest 3.4, 3.7, 6.3): the exact
 * 16-byte replies, argsz as a u32 (too small: EINVAL; larger than needed: the same 16 bytes), short and long
 * payloads, indexes out of range, NO_REPLY, and fds on a command that takes none.
 */
class DeviceInfoCommandsTest {
    private final ScriptedDevice device = new ScriptedDevice();

    private static byte[] getInfo(int msgId, long argsz) {
        return command(msgId, VfioUserCommand.DEVICE_GET_INFO, le(4, argsz, 4, 0, 4, 0, 4, 0));
    }

    private static byte[] irqInfo(int msgId, long argsz, long index) {
        return command(msgId, VfioUserCommand.DEVICE_GET_IRQ_INFO, le(4, argsz, 4, 0, 4, index, 4, 0));
    }

    /** A reply header: id, command, size, flags REPLY, error 0. */
    private static byte[] replyHeader(int msgId, VfioUserCommand command, int size) {
        return le(2, msgId, 2, command.code(), 4, size, 4, VfioUserHeader.REPLY, 4, 0);
    }

    // ------------------------------------------------------------------------------------- DEVICE_GET_INFO

    @Test
    void getInfoReportsPciResetNineRegionsFiveIrqs() throws Exception {
        try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.basic(), device)) {
            c.send(getInfo(0x0a0b, 16));
            assertThat(c.assertOk(0x0a0b, VfioUserCommand.DEVICE_GET_INFO).bytes()).isEqualTo(ConnectionChannel.hex(
                    "0b0a 0400 20000000 01000000 00000000  10000000 03000000 09000000 05000000"));
        }
    }

    @Test
    void getInfoWithoutResetSupportLeavesTheResetFlagOut() throws Exception {
        try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.withoutReset(), device)) {
            c.send(getInfo(1, 16));
            assertThat(c.assertOk(1, VfioUserCommand.DEVICE_GET_INFO).payload()).isEqualTo(le(4, 16, 4, 2, 4, 9, 4,
                    5));
        }
    }

    /** argsz is a u32: any value of 16 or more gets the same 16-byte reply, with argsz 16 (never padded). */
    @ParameterizedTest
    @ValueSource(longs = {17, 4096, 0x7FFFFFFFL, 0x80000000L, 0xFFFFFFFFL})
    void getInfoWithALargerArgszGetsTheSame16Bytes(long argsz) throws Exception {
        try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.basic(), device)) {
            c.send(getInfo(2, argsz));
            assertThat(c.assertOk(2, VfioUserCommand.DEVICE_GET_INFO).bytes()).isEqualTo(concat(
                    replyHeader(2, VfioUserCommand.DEVICE_GET_INFO, 32), le(4, 16, 4, 3, 4, 9, 4, 5)));
        }
    }

    @ParameterizedTest
    @ValueSource(longs = {0, 1, 15})
    void getInfoWithAnArgszBelow16IsEinval(long argsz) throws Exception {
        try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.basic(), device)) {
            c.send(getInfo(3, argsz));
            c.assertError(3, VfioUserCommand.DEVICE_GET_INFO, Errno.EINVAL);
            c.send(getInfo(4, 16));
            c.assertOk(4, VfioUserCommand.DEVICE_GET_INFO);
        }
    }

    @Test
    void getInfoPayloadShorterThan16IsEinvalAndLongerIsFine() throws Exception {
        try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.basic(), device)) {
            c.send(command(1, VfioUserCommand.DEVICE_GET_INFO, new byte[0]));
            c.assertError(1, VfioUserCommand.DEVICE_GET_INFO, Errno.EINVAL);
            c.send(command(2, VfioUserCommand.DEVICE_GET_INFO, le(4, 16, 4, 0, 4, 0)));
            c.assertError(2, VfioUserCommand.DEVICE_GET_INFO, Errno.EINVAL);
            c.send(command(3, VfioUserCommand.DEVICE_GET_INFO, le(4, 16, 4, 0, 4, 0, 4, 0, 8, -1L)));
            assertThat(c.assertOk(3, VfioUserCommand.DEVICE_GET_INFO).size()).as("header + 16").isEqualTo(32);
        }
    }

    @Test
    void getInfoWithNoReplyIsNeverAnsweredNotEvenWhenRefused() throws Exception {
        try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.basic(), device)) {
            c.send(command(1, VfioUserCommand.DEVICE_GET_INFO, VfioUserHeader.NO_REPLY, le(4, 16, 4, 0, 4, 0, 4, 0)));
            c.send(command(2, VfioUserCommand.DEVICE_GET_INFO, VfioUserHeader.NO_REPLY, le(4, 8, 4, 0, 4, 0, 4, 0)));
            c.assertNoReply();
            assertThat(c.runtime.stats().errors(Errno.EINVAL)).as("the refused one is counted").isEqualTo(1);
            c.send(getInfo(3, 16));
            c.assertOk(3, VfioUserCommand.DEVICE_GET_INFO);
        }
    }

    /** fds on a command that takes none: the command succeeds and the fds are closed (digest 1.8). */
    @Test
    void fdsOnGetInfoAreClosedAndTheCommandSucceeds() throws Exception {
        int a = TestFds.memfd();
        int b = TestFds.memfd();
        String targetA = TestFds.target(a);
        String targetB = TestFds.target(b);
        try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.basic(), device)) {
            c.send(getInfo(1, 16), a, b);
            assertThat(c.assertOk(1, VfioUserCommand.DEVICE_GET_INFO).fds()).isEmpty();
            TestFds.assertClosed(a, targetA);
            TestFds.assertClosed(b, targetB);
        }
    }

    // --------------------------------------------------------------------------------- DEVICE_GET_IRQ_INFO

    /** flags EVENTFD (1), MASKABLE (2) for INTx, MSI and MSI-X; counts from the description; ERR and REQ one. */
    @ParameterizedTest
    @CsvSource({"0, 3, 1", "1, 3, 4", "2, 3, 4", "3, 1, 1", "4, 1, 1"})
    void irqInfoReportsEachIndexsFlagsAndCount(int index, int flags, int count) throws Exception {
        try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.full(), device)) {
            c.send(irqInfo(0x77, 16, index));
            assertThat(c.assertOk(0x77, VfioUserCommand.DEVICE_GET_IRQ_INFO).bytes()).isEqualTo(concat(
                    replyHeader(0x77, VfioUserCommand.DEVICE_GET_IRQ_INFO, 32), le(4, 16, 4, flags, 4, index, 4,
                            count)));
        }
    }

    @Test
    void irqInfoOfATypeTheDeviceLacksHasCountZero() throws Exception {
        try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.withoutReset(), device)) {
            c.send(irqInfo(1, 16, 0));
            assertThat(c.assertOk(1, VfioUserCommand.DEVICE_GET_IRQ_INFO).payload()).isEqualTo(le(4, 16, 4, 3, 4, 0,
                    4, 0));
            c.send(irqInfo(2, 16, 3));
            assertThat(c.assertOk(2, VfioUserCommand.DEVICE_GET_IRQ_INFO).payload()).isEqualTo(le(4, 16, 4, 1, 4, 3,
                    4, 0));
        }
    }

    @ParameterizedTest
    @ValueSource(longs = {5, 9, 0x80000000L, 0xFFFFFFFFL})
    void irqInfoOfAnIndexOfFiveOrMoreIsEinval(long index) throws Exception {
        try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.full(), device)) {
            c.send(irqInfo(1, 16, index));
            c.assertError(1, VfioUserCommand.DEVICE_GET_IRQ_INFO, Errno.EINVAL);
        }
    }

    @Test
    void irqInfoArgszAndPayloadRules() throws Exception {
        try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.full(), device)) {
            c.send(irqInfo(1, 15, 0));
            c.assertError(1, VfioUserCommand.DEVICE_GET_IRQ_INFO, Errno.EINVAL);
            c.send(irqInfo(2, 0, 0));
            c.assertError(2, VfioUserCommand.DEVICE_GET_IRQ_INFO, Errno.EINVAL);
            c.send(command(3, VfioUserCommand.DEVICE_GET_IRQ_INFO, le(4, 16, 4, 0, 4, 0)));
            c.assertError(3, VfioUserCommand.DEVICE_GET_IRQ_INFO, Errno.EINVAL);
            c.send(irqInfo(4, 0xFFFFFFFFL, 2));
            assertThat(c.assertOk(4, VfioUserCommand.DEVICE_GET_IRQ_INFO).payload()).as("argsz 16, never padded")
                    .isEqualTo(le(4, 16, 4, 3, 4, 2, 4, 4));
            c.send(command(5, VfioUserCommand.DEVICE_GET_IRQ_INFO, VfioUserHeader.NO_REPLY, le(4, 16, 4, 0, 4, 9, 4,
                    0)));
            c.send(command(6, VfioUserCommand.DEVICE_GET_IRQ_INFO, VfioUserHeader.NO_REPLY, le(4, 16, 4, 0, 4, 1, 4,
                    0)));
            c.assertNoReply();
        }
    }
}
