package io.vfiouser.transport;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vfiouser.transport.linux.Linux;
import io.vfiouser.transport.testing.FdCount;
import org.junit.jupiter.api.Test;

class FdSetTest {

    @Test
    void closeClosesWhatWasNotTakenOnce() throws Exception {
        int a = Linux.eventfd(0, 0);
        int b = Linux.eventfd(0, 0);
        FdSet set = FdSet.of(a, b);
        int taken = set.take(0);
        assertThat(set.isTaken(0)).isTrue();
        assertThat(set.isTaken(1)).isFalse();
        set.close();
        set.close();
        assertThat(FdCount.isOpen(b)).isFalse();
        assertThat(FdCount.isOpen(taken)).isTrue();
        assertThatThrownBy(() -> set.get(1)).isInstanceOf(IllegalStateException.class);
        Linux.close(taken);
    }

    @Test
    void ofDuplicatesLeavesTheCallersFdsOpen() throws Exception {
        int eventFd = Linux.eventfd(0, 0);
        FdSet set = FdSet.ofDuplicates(eventFd);
        int copy = set.get(0);
        assertThat(copy).isNotEqualTo(eventFd);
        Linux.eventfdWrite(copy, 3);
        set.close();
        assertThat(FdCount.isOpen(copy)).isFalse();
        assertThat(FdCount.isOpen(eventFd)).isTrue();
        assertThat(Linux.eventfdRead(eventFd)).as("the same eventfd behind both").isEqualTo(3);
        Linux.close(eventFd);
    }

    @Test
    void ofDuplicatesOwnsNothingWhenADuplicateFails() throws Exception {
        int eventFd = Linux.eventfd(0, 0);
        long before = FdCount.now();
        assertThatThrownBy(() -> FdSet.ofDuplicates(eventFd, -1)).isInstanceOf(
                io.vfiouser.transport.linux.ErrnoException.class);
        assertThat(FdCount.now()).isEqualTo(before);
        Linux.close(eventFd);
    }

    @Test
    void theEmptySetSurvivesBeingClosed() {
        FdSet.EMPTY.close();
        assertThat(FdSet.EMPTY.isClosed()).isFalse();
        assertThat(FdSet.EMPTY.peekAll()).isEmpty();
        new ReceivedFds(FdSet.EMPTY, 0, 0).release();
        assertThat(FdSet.EMPTY.isClosed()).isFalse();
    }
}
