package io.vfiouser.transport;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vfiouser.transport.linux.Linux;
import io.vfiouser.transport.testing.FdCount;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The fd-to-frame rule without a pipeline: reads announce their fds with their stream offsets, frames are counted
 * by length, and every fd is closed exactly once whether it reaches a frame or not.
 */
class FdPairingTest {
    private long fdsBefore;

    @BeforeEach
    void countFds() {
        fdsBefore = FdCount.now();
    }

    @AfterEach
    void noFdLeft() throws Exception {
        FdCount.awaitAtMost(fdsBefore);
    }

    private static ReceivedFds read(long first, long last, int... fds) {
        return new ReceivedFds(FdSet.of(fds), first, last);
    }

    private static int[] eventfds(int n) throws Exception {
        int[] fds = new int[n];
        for (int i = 0; i < n; i++) {
            fds[i] = Linux.eventfd(0, 0);
        }
        return fds;
    }

    private static void assertAllClosed(int... fds) {
        for (int fd : fds) {
            assertThat(FdCount.isOpen(fd)).as("fd %d", fd).isFalse();
        }
    }

    @Test
    void framesWithoutFdsGetTheEmptySet() throws Exception {
        try (FdPairing pairing = new FdPairing(4)) {
            assertThat(pairing.nextFrame(16)).isSameAs(FdSet.EMPTY);
            assertThat(pairing.nextFrame(40)).isSameAs(FdSet.EMPTY);
        }
    }

    @Test
    void fdsGoToTheFrameHoldingTheLastByteOfTheirRead() throws Exception {
        int[] fds = eventfds(2);
        try (FdPairing pairing = new FdPairing(4)) {
            assertThat(pairing.nextFrame(16)).isSameAs(FdSet.EMPTY); // 0..15
            // The read starts at the second frame (16..47) and ends inside it, at 30: its fds are that frame's.
            pairing.received(read(16, 30, fds));
            FdSet got = pairing.nextFrame(32);
            assertThat(got.peekAll()).containsExactly(fds);
            assertThat(pairing.nextFrame(16)).isSameAs(FdSet.EMPTY); // 48..63
            got.close();
        }
        assertAllClosed(fds);
    }

    @Test
    void aReadThatBeganEarlierAndEndsInALaterFrameGivesThatFrameItsFds() throws Exception {
        int[] fds = eventfds(1);
        try (FdPairing pairing = new FdPairing(4)) {
            // One read of 0..40 (three frames glued, as a sender may do): its last byte is in the frame at 32.
            pairing.received(read(0, 40, fds));
            assertThat(pairing.nextFrame(16)).isSameAs(FdSet.EMPTY);
            assertThat(pairing.nextFrame(16)).isSameAs(FdSet.EMPTY);
            try (FdSet got = pairing.nextFrame(16)) {
                assertThat(got.peekAll()).containsExactly(fds);
            }
        }
        assertAllClosed(fds);
    }

    @Test
    void severalSetsWaitForTheirFramesInOrder() throws Exception {
        int[] a = eventfds(1);
        int[] b = eventfds(2);
        try (FdPairing pairing = new FdPairing(4)) {
            // The first read ends inside the frame at 0..19 that it brought fds for; the next read brings the fds
            // of the frame at 20..59, starting before it (10) and ending in it (29).
            pairing.received(read(0, 9, a));
            pairing.received(read(10, 29, b));
            assertThat(pairing.pendingSets()).isEqualTo(2);
            try (FdSet first = pairing.nextFrame(20); FdSet second = pairing.nextFrame(40)) {
                assertThat(first.peekAll()).containsExactly(a);
                assertThat(second.peekAll()).containsExactly(b);
            }
            assertThat(pairing.pendingSets()).isZero();
        }
        assertAllClosed(a);
        assertAllClosed(b);
    }

    @Test
    void twoSetsInOneFrameCloseEverything() throws Exception {
        int[] a = eventfds(1);
        int[] b = eventfds(1);
        int[] later = eventfds(1);
        FdPairing pairing = new FdPairing(4);
        pairing.received(read(0, 7, a));
        pairing.received(read(8, 15, b));
        pairing.received(read(16, 40, later));
        assertThatThrownBy(() -> pairing.nextFrame(16)).isInstanceOf(FdTransportException.class)
                .hasMessageContaining("two sets of fds");
        assertAllClosed(a);
        assertAllClosed(b);
        assertAllClosed(later);
        assertThat(pairing.pendingSets()).isZero();
        pairing.close();
    }

    @Test
    void fdsOnAReadThatStartedAfterTheirFrameCloseEverything() throws Exception {
        int[] fds = eventfds(1);
        FdPairing pairing = new FdPairing(4);
        // The frame is 0..39; the fds come with bytes 24..39, not with its header.
        pairing.received(read(24, 39, fds));
        assertThatThrownBy(() -> pairing.nextFrame(40)).isInstanceOf(FdTransportException.class)
                .hasMessageContaining("do not start the frame at 0");
        assertAllClosed(fds);
        pairing.close();
    }

    @Test
    void moreFdsThanAllowedCloseThemAndThoseWaiting() throws Exception {
        int[] waiting = eventfds(1);
        int[] tooMany = eventfds(3);
        FdPairing pairing = new FdPairing(2);
        pairing.received(read(0, 7, waiting));
        assertThatThrownBy(() -> pairing.received(read(8, 15, tooMany))).isInstanceOf(FdTransportException.class)
                .hasMessageContaining("3 fds in one message, at most 2");
        assertAllClosed(waiting);
        assertAllClosed(tooMany);
        pairing.close();
    }

    @Test
    void closeClosesWhatWaitsAndWhatStillComes() throws Exception {
        int[] waiting = eventfds(2);
        int[] late = eventfds(1);
        FdPairing pairing = new FdPairing(4);
        pairing.received(read(0, 7, waiting));
        pairing.close();
        assertAllClosed(waiting);
        pairing.received(read(8, 15, late));
        assertAllClosed(late);
        pairing.close();
        assertThatThrownBy(() -> pairing.nextFrame(16)).isInstanceOf(IllegalStateException.class);
    }

    @Test
    void handedOutFdsAreTheCallersAfterClose() throws Exception {
        int[] fds = eventfds(1);
        FdSet got;
        try (FdPairing pairing = new FdPairing(1)) {
            pairing.received(read(0, 15, fds));
            got = pairing.nextFrame(16);
        }
        assertThat(FdCount.isOpen(fds[0])).isTrue();
        got.close();
        assertAllClosed(fds);
    }

    @Test
    void rejectsANegativeMaximum() {
        assertThatThrownBy(() -> new FdPairing(-1)).isInstanceOf(IllegalArgumentException.class);
    }
}
