package io.vfiouser.server.connection;

import static io.vfiouser.server.connection.ConnectionChannel.command;
import static io.vfiouser.server.connection.ConnectionChannel.concat;
import static io.vfiouser.server.connection.ConnectionChannel.le;
import static io.vfiouser.server.connection.UnitDevices.VECTORS;
import static org.assertj.core.api.Assertions.assertThat;

import io.vfiouser.codec.VfioUserCommand;
import io.vfiouser.codec.VfioUserHeader;
import io.vfiouser.transport.linux.Errno;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * DEVICE_SET_IRQS through the connection's real pipeline (digest 3.8, 6.3): eventfds assigned per vector and
 * signalled, de-assigned and replaced (the server's copies closed), DATA_NONE and DATA_BOOL triggers, MASK and
 * UNMASK reaching the device's {@code irqMaskChanged}, every refused request with EINVAL and its fds closed,
 * NO_REPLY, and a SET_IRQS that waits behind a pending device access.
 *
 * <p>The test keeps one eventfd per vector ({@link #kept}) and hands the server duplicates, so it sees every signal
 * and can check that the duplicates it handed over are closed.
 */
class SetIrqsCommandsTest {
    private static final int NONE = 0x01;
    private static final int BOOL = 0x02;
    private static final int EVENTFD = 0x04;
    private static final int MASK = 0x08;
    private static final int UNMASK = 0x10;
    private static final int TRIGGER = 0x20;
    private static final int INTX = 0;
    private static final int MSI = 1;
    private static final int MSIX = 2;
    private static final int ERR = 3;
    private static final String EVENTFD_TARGET = "anon_inode:[eventfd]";

    private final ScriptedDevice device = new ScriptedDevice();
    /** The test's own eventfds, one per vector. */
    private final int[] kept = {TestFds.eventfd(), TestFds.eventfd(), TestFds.eventfd(), TestFds.eventfd()};

    @AfterEach
    void closeKept() {
        TestFds.close(kept);
    }

    /** A SET_IRQS payload with argsz 20 (+ BOOL data), as QEMU sends it. */
    private static byte[] setIrqs(int msgId, int flags, int index, long start, long count, int... bools) {
        byte[] data = new byte[bools.length];
        for (int i = 0; i < bools.length; i++) {
            data[i] = (byte) bools[i];
        }
        return setIrqsArgsz(msgId, 20 + data.length, flags, index, start, count, data);
    }

    private static byte[] setIrqsArgsz(int msgId, long argsz, int flags, int index, long start, long count,
                                       byte[] data) {
        return command(msgId, VfioUserCommand.DEVICE_SET_IRQS, concat(le(4, argsz, 4, flags, 4, index, 4, start, 4,
                count), data));
    }

    /** Duplicates of the kept eventfds {@code [from, from + n)}, for the server to own. */
    private int[] give(int from, int n) {
        int[] out = new int[n];
        for (int i = 0; i < n; i++) {
            out[i] = TestFds.dup(kept[from + i]);
        }
        return out;
    }

    /** The signals each kept eventfd got since the last call. */
    private long[] signals() {
        long[] out = new long[kept.length];
        for (int i = 0; i < kept.length; i++) {
            out[i] = TestFds.signals(kept[i]);
        }
        return out;
    }

    /** Sends and asserts the exact header-only success reply. */
    private static void assertApplied(ConnectionChannel c, int msgId) {
        assertThat(c.assertOk(msgId, VfioUserCommand.DEVICE_SET_IRQS).bytes()).isEqualTo(
                le(2, msgId, 2, 8, 4, 16, 4, VfioUserHeader.REPLY, 4, 0));
    }

    @Test
    void eventfdsAssignedPerVectorAreSignalledAndClosedWithTheConnection() throws Exception {
        int[] given = give(0, VECTORS);
        try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.full(), device)) {
            c.send(setIrqs(1, TRIGGER | EVENTFD, MSIX, 0, VECTORS), given);
            assertApplied(c, 1);
            c.send(setIrqs(2, TRIGGER | NONE, MSIX, 0, VECTORS));
            assertApplied(c, 2);
            assertThat(signals()).containsExactly(1, 1, 1, 1);
            for (int fd : given) {
                assertThat(TestFds.target(fd)).as("held by the server").isEqualTo(EVENTFD_TARGET);
            }
        }
        for (int fd : given) {
            TestFds.assertClosed(fd, EVENTFD_TARGET);
        }
    }

    @Test
    void triggerNoneSignalsTheRangeAndBoolOnlyTheVectorsWhoseByteIsOne() throws Exception {
        try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.full(), device)) {
            c.send(setIrqs(1, TRIGGER | EVENTFD, MSI, 0, VECTORS), give(0, VECTORS));
            assertApplied(c, 1);
            c.send(setIrqs(2, TRIGGER | NONE, MSI, 1, 2));
            assertApplied(c, 2);
            assertThat(signals()).containsExactly(0, 1, 1, 0);
            c.send(setIrqs(3, TRIGGER | BOOL, MSI, 0, 4, 1, 0, 1, 2));
            assertApplied(c, 3);
            assertThat(signals()).as("only bytes equal to 1 fire").containsExactly(1, 0, 1, 0);
        }
    }

    /**
     * EVENTFD without fds de-assigns the range {@code [start, start + count)} (the server's copies are closed at
     * once), a new fd replaces the old one (closed), and TRIGGER|NONE 0/0 disables the whole index.
     */
    @Test
    void deassignReplaceAndDisableCloseTheServersCopies() throws Exception {
        int[] given = give(0, VECTORS);
        int[] reuse;
        String[] reuseTargets;
        try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.full(), device)) {
            c.send(setIrqs(1, TRIGGER | EVENTFD, MSIX, 0, VECTORS), given);
            assertApplied(c, 1);
            c.send(setIrqs(2, TRIGGER | EVENTFD, MSIX, 1, 2));
            assertApplied(c, 2);
            TestFds.assertClosed(given[1], EVENTFD_TARGET);
            TestFds.assertClosed(given[2], EVENTFD_TARGET);
            // Taking the freed numbers: a second close of the server's copies (later, or at teardown) would hit these.
            reuse = new int[] {TestFds.memfd(), TestFds.memfd()};
            reuseTargets = new String[] {TestFds.target(reuse[0]), TestFds.target(reuse[1])};
            assertThat(TestFds.target(given[0])).isEqualTo(EVENTFD_TARGET);
            c.send(setIrqs(3, TRIGGER | NONE, MSIX, 0, VECTORS));
            assertApplied(c, 3);
            assertThat(signals()).containsExactly(1, 0, 0, 1);

            int[] replacement = give(2, 1);
            c.send(setIrqs(4, TRIGGER | EVENTFD, MSIX, 0, 1), replacement);
            assertApplied(c, 4);
            TestFds.assertClosed(given[0], EVENTFD_TARGET);
            c.send(setIrqs(5, TRIGGER | NONE, MSIX, 0, 1));
            assertApplied(c, 5);
            assertThat(signals()).as("vector 0 now signals the third eventfd").containsExactly(0, 0, 1, 0);

            c.send(setIrqs(6, TRIGGER | NONE, MSIX, 0, 0));
            assertApplied(c, 6);
            TestFds.assertClosed(replacement[0], EVENTFD_TARGET);
            TestFds.assertClosed(given[3], EVENTFD_TARGET);
            c.send(setIrqs(7, TRIGGER | NONE, MSIX, 0, VECTORS));
            assertApplied(c, 7);
            assertThat(signals()).containsExactly(0, 0, 0, 0);
        }
        TestFds.assertOpen(reuse[0], reuseTargets[0]);
        TestFds.assertOpen(reuse[1], reuseTargets[1]);
        TestFds.close(reuse);
    }

    /** An fd that is not an eventfd: EINVAL, every fd of the request closed, nothing assigned. */
    @Test
    void anFdThatIsNotAnEventfdIsEinvalAndEveryFdOfTheRequestIsClosed() throws Exception {
        int memfd = TestFds.memfd();
        String memfdTarget = TestFds.target(memfd);
        int[] eventfd = give(0, 1);
        int reuse;
        String reuseTarget;
        try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.full(), device)) {
            c.send(setIrqs(1, TRIGGER | EVENTFD, MSIX, 0, 2), eventfd[0], memfd);
            c.assertError(1, VfioUserCommand.DEVICE_SET_IRQS, Errno.EINVAL);
            TestFds.assertClosed(memfd, memfdTarget);
            TestFds.assertClosed(eventfd[0], EVENTFD_TARGET);
            reuse = TestFds.memfd();
            reuseTarget = TestFds.target(reuse);
            c.send(setIrqs(2, TRIGGER | NONE, MSIX, 0, VECTORS));
            assertApplied(c, 2);
            assertThat(signals()).as("nothing was assigned").containsExactly(0, 0, 0, 0);
        }
        TestFds.assertOpen(reuse, reuseTarget);
        TestFds.close(reuse);
    }

    @Test
    void fdsThatDoNotMatchTheCountOrTheDataTypeAreEinvalAndClosed() throws Exception {
        try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.full(), device)) {
            int[] one = give(0, 1);
            c.send(setIrqs(1, TRIGGER | EVENTFD, MSIX, 0, 2), one);
            c.assertError(1, VfioUserCommand.DEVICE_SET_IRQS, Errno.EINVAL);
            TestFds.assertClosed(one[0], EVENTFD_TARGET);
            int[] three = give(0, 3);
            c.send(setIrqs(2, TRIGGER | EVENTFD, MSIX, 0, 2), three);
            c.assertError(2, VfioUserCommand.DEVICE_SET_IRQS, Errno.EINVAL);
            int[] withNone = give(1, 1);
            c.send(setIrqs(3, TRIGGER | NONE, MSIX, 0, 1), withNone);
            c.assertError(3, VfioUserCommand.DEVICE_SET_IRQS, Errno.EINVAL);
            int[] withBool = give(2, 1);
            c.send(setIrqs(4, TRIGGER | BOOL, MSIX, 0, 1, 1), withBool);
            c.assertError(4, VfioUserCommand.DEVICE_SET_IRQS, Errno.EINVAL);
            for (int fd : concatFds(three, withNone, withBool)) {
                TestFds.assertClosed(fd, EVENTFD_TARGET);
            }
            assertThat(signals()).as("refused triggers fire nothing").containsExactly(0, 0, 0, 0);
        }
    }

    private static int[] concatFds(int[]... sets) {
        return java.util.Arrays.stream(sets).flatMapToInt(java.util.Arrays::stream).toArray();
    }

    /** Every shape the digest refuses (3.8: libvfio-user's order of checks), each EINVAL; the connection goes on. */
    @ParameterizedTest(name = "flags {0} index {1} start {2} count {3}")
    @CsvSource({
        "0x24, 5, 0, 1",            // index 5
        "0x24, -1, 0, 1",           // index 0xffffffff
        "0x04, 2, 0, 1",            // no action bit
        "0x2c, 2, 0, 1",            // two action bits (TRIGGER|MASK)
        "0x20, 2, 0, 1",            // no data-type bit
        "0x25, 2, 0, 1",            // two data-type bits (NONE|EVENTFD)
        "0x61, 2, 0, 1",            // an unknown flag bit (0x40)
        "0x21, 2, 4, 1",            // start = vectors
        "0x21, 2, 3, 2",            // start + count > vectors
        "0x21, 2, 1, -1",           // start + count overflows a u32
        "0x21, 2, -1, 1",           // start 0xffffffff
        "0x21, 0, 0, 2",            // INTx has one vector
        "0x09, 3, 0, 1",            // ERR can only be triggered
        "0x21, 3, 0, 2",            // ERR has one vector
        "0x09, 2, 1, 0",            // count 0 with start 1
        "0x09, 2, 0, 0",            // count 0 with MASK
        "0x24, 2, 0, 0",            // count 0 with EVENTFD
    })
    void refusedShapesAreEinval(String flags, long index, long start, long count) throws Exception {
        try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.full(), device)) {
            device.takeCalls();
            c.send(setIrqs(1, Integer.decode(flags), (int) index, start, count));
            c.assertError(1, VfioUserCommand.DEVICE_SET_IRQS, Errno.EINVAL);
            assertThat(device.takeCalls()).as("the device heard nothing").isEmpty();
            c.send(setIrqs(2, TRIGGER | NONE, MSIX, 0, 1));
            assertApplied(c, 2);
        }
    }

    @Test
    void argszAndPayloadRules() throws Exception {
        try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.full(), device)) {
            c.send(setIrqsArgsz(1, 19, TRIGGER | NONE, MSIX, 0, 1, new byte[0]));
            c.assertError(1, VfioUserCommand.DEVICE_SET_IRQS, Errno.EINVAL);
            c.send(setIrqsArgsz(2, 0, TRIGGER | NONE, MSIX, 0, 1, new byte[0]));
            c.assertError(2, VfioUserCommand.DEVICE_SET_IRQS, Errno.EINVAL);
            c.send(command(3, VfioUserCommand.DEVICE_SET_IRQS, le(4, 20, 4, TRIGGER | NONE, 4, MSIX, 4, 0)));
            c.assertError(3, VfioUserCommand.DEVICE_SET_IRQS, Errno.EINVAL);
            // DATA_BOOL: exactly count bytes after the 20.
            c.send(setIrqsArgsz(4, 21, TRIGGER | BOOL, MSIX, 0, 2, new byte[] {1}));
            c.assertError(4, VfioUserCommand.DEVICE_SET_IRQS, Errno.EINVAL);
            c.send(setIrqsArgsz(5, 23, TRIGGER | BOOL, MSIX, 0, 2, new byte[] {1, 1, 1}));
            c.assertError(5, VfioUserCommand.DEVICE_SET_IRQS, Errno.EINVAL);
            // argsz is a u32 of at least 20: a larger one is accepted, as by libvfio-user.
            c.send(setIrqsArgsz(6, 0xFFFFFFFFL, TRIGGER | NONE, MSIX, 0, 1, new byte[0]));
            assertApplied(c, 6);
            // Trailing bytes after a non-BOOL request are ignored.
            c.send(setIrqsArgsz(7, 24, TRIGGER | NONE, MSIX, 0, 1, new byte[4]));
            assertApplied(c, 7);
        }
    }

    @Test
    void maskAndUnmaskReachTheDevice() throws Exception {
        try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.full(), device)) {
            device.takeCalls();
            c.send(setIrqs(1, MASK | NONE, MSIX, 1, 2));
            assertApplied(c, 1);
            c.send(setIrqs(2, UNMASK | NONE, MSIX, 1, 2));
            assertApplied(c, 2);
            c.send(setIrqs(3, MASK | BOOL, MSI, 0, 4, 1, 1, 0, 1));
            assertApplied(c, 3);
            c.send(setIrqs(4, UNMASK | NONE, INTX, 0, 1));
            assertApplied(c, 4);
            assertThat(device.takeCalls()).containsExactly("mask MSIX 1 2", "unmask MSIX 1 2", "mask MSI 0 2",
                    "mask MSI 3 1", "unmask INTX 0 1");
        }
    }

    /** NO_REPLY: applied without a reply; refused without a reply, its fds closed all the same. */
    @Test
    void noReplyIsNeverAnsweredAndARefusedOnesFdsAreClosed() throws Exception {
        int memfd = TestFds.memfd();
        String memfdTarget = TestFds.target(memfd);
        try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.full(), device)) {
            c.send(command(1, VfioUserCommand.DEVICE_SET_IRQS, VfioUserHeader.NO_REPLY,
                    le(4, 20, 4, TRIGGER | EVENTFD, 4, MSIX, 4, 0, 4, 1)), give(0, 1));
            c.send(command(2, VfioUserCommand.DEVICE_SET_IRQS, VfioUserHeader.NO_REPLY,
                    le(4, 20, 4, TRIGGER | EVENTFD, 4, MSIX, 4, 1, 4, 1)), memfd);
            c.send(command(3, VfioUserCommand.DEVICE_SET_IRQS, VfioUserHeader.NO_REPLY,
                    le(4, 20, 4, TRIGGER | NONE, 4, MSIX, 4, 0, 4, 2)));
            c.assertNoReply();
            TestFds.assertClosed(memfd, memfdTarget);
            assertThat(signals()).containsExactly(1, 0, 0, 0);
        }
    }

    /** A SET_IRQS behind a device access that has not completed waits for it; replies keep arrival order. */
    @Test
    void setIrqsWaitsBehindAPendingAccess() throws Exception {
        try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.full(), device)) {
            c.send(setIrqs(1, TRIGGER | EVENTFD, MSIX, 0, 1), give(0, 1));
            assertApplied(c, 1);
            device.takeCalls();
            CompletableFuture<Void> held = device.holdNextAccess();
            c.sendAll(command(2, VfioUserCommand.REGION_READ, le(8, 0, 4, UnitDevices.BAR0, 4, 4)),
                    setIrqs(3, TRIGGER | NONE, MSIX, 0, 1), setIrqs(4, MASK | NONE, MSIX, 0, 1));
            c.assertNoReply();
            assertThat(signals()).as("not triggered before the read completed").containsExactly(0, 0, 0, 0);
            assertThat(device.takeCalls()).containsExactly("read 0 0x0 4");
            held.complete(null);
            List<ConnectionChannel.Reply> replies = c.replies();
            assertThat(replies).extracting(ConnectionChannel.Reply::msgId).containsExactly(2, 3, 4);
            assertThat(signals()).containsExactly(1, 0, 0, 0);
            assertThat(device.takeCalls()).containsExactly("mask MSIX 0 1");
        }
    }
}
