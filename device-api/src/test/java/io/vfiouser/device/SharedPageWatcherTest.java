package io.vfiouser.device;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.time.Duration;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * The shared-page watcher sees what another thread writes into memory it watches, reports each change once with its
 * slot and value, never reports the memory of a slot after {@code unwatch} returns, and stops cleanly when the
 * memory goes. Waits are on conditions (a change reported), with generous bounds for a loaded machine.
 */
class SharedPageWatcherTest {
    private static final VarHandle INT = ValueLayout.JAVA_INT.varHandle();
    private static final long WAIT_SECONDS = 10;

    private record Change(int slot, int value) {
    }

    private static final class Recorder implements SharedPageWatcher.Listener {
        final BlockingQueue<Change> changes = new LinkedBlockingQueue<>();
        final CompletableFuture<RuntimeException> failure = new CompletableFuture<>();

        @Override
        public void changed(int slot, int value) {
            changes.add(new Change(slot, value));
        }

        @Override
        public void failed(RuntimeException cause) {
            failure.complete(cause);
        }

        Change next() throws InterruptedException {
            Change c = changes.poll(WAIT_SECONDS, TimeUnit.SECONDS);
            assertThat(c).as("a change reported within %d s", WAIT_SECONDS).isNotNull();
            return c;
        }
    }

    private static void write(MemorySegment s, long offset, int value) {
        INT.setRelease(s, offset, value);
    }

    @Test
    void reportsEachChangeWithItsSlotAndValue() throws Exception {
        Recorder r = new Recorder();
        try (Arena arena = Arena.ofShared();
             SharedPageWatcher w = new SharedPageWatcher("test-watcher", Duration.ofMillis(1), Duration.ofMillis(2), r)) {
            MemorySegment page = arena.allocate(4096, 4096);
            write(page, 8, 5);
            w.watch(0, page, 0);
            w.watch(3, page, 8);
            awaitScans(w);
            assertThat(r.changes).as("the values at watch time are not changes").isEmpty();
            write(page, 8, 6);
            assertThat(r.next()).isEqualTo(new Change(3, 6));
            for (int i = 1; i <= 100; i++) {
                write(page, 0, i);
                assertThat(r.next()).isEqualTo(new Change(0, i));
            }
            write(page, 8, 6);
            awaitScans(w);
            assertThat(r.changes).as("writing the same value is no change").isEmpty();
        }
    }

    /** A watcher that sleeps an hour at a time sees a write only because {@link SharedPageWatcher#wake} ends the sleep. */
    @Test
    void wakeEndsASleep() throws Exception {
        Recorder r = new Recorder();
        try (Arena arena = Arena.ofShared();
             SharedPageWatcher w = new SharedPageWatcher("hour-sleeper", Duration.ZERO, Duration.ofHours(1),
                     Duration.ofHours(1), r)) {
            MemorySegment page = arena.allocate(4096, 4096);
            w.watch(0, page, 0);
            awaitScans(w);
            awaitParked("hour-sleeper"); // asleep for an hour, no wake pending
            write(page, 0, 42);
            w.wake();
            assertThat(r.next()).isEqualTo(new Change(0, 42));
        }
    }

    @Test
    void anIdleWatcherSleepsLongerEachTime() throws Exception {
        Recorder r = new Recorder();
        try (Arena arena = Arena.ofShared();
             SharedPageWatcher w = new SharedPageWatcher("test-watcher", Duration.ZERO, Duration.ofSeconds(30), r)) {
            MemorySegment page = arena.allocate(4096, 4096);
            w.watch(0, page, 0);
            awaitScans(w);
            long sleeps = w.sleeps();
            long scans = w.scans();
            while (w.sleeps() < sleeps + 12) {
                Thread.onSpinWait();
            }
            long slept = w.sleeps() - sleeps;
            assertThat(w.scans() - scans).as("idle with no spin: one scan per sleep, no spinning between")
                    .isLessThanOrEqualTo(slept + 1);
            write(page, 0, 7);
            assertThat(r.next()).as("seen at the end of a sleep, without a wake").isEqualTo(new Change(0, 7));
        }
    }

    @Test
    void anUnwatchedSlotIsNeverReadAgain() throws Exception {
        Recorder r = new Recorder();
        Arena arena = Arena.ofShared();
        try (SharedPageWatcher w = new SharedPageWatcher("test-watcher", Duration.ofMillis(1), Duration.ofMillis(1), r)) {
            MemorySegment page = arena.allocate(4096, 4096);
            MemorySegment other = Arena.global().allocate(4096, 4096);
            w.watch(0, page, 0);
            w.watch(1, other, 0);
            awaitScans(w);
            w.unwatch(0);
            arena.close(); // the memory goes: a read of it now would fail the watcher
            write(other, 0, 1);
            assertThat(r.next()).isEqualTo(new Change(1, 1));
            assertThat(r.failure).as("no read of the closed memory").isNotDone();
        }
    }

    @Test
    void replacingASlotsWordReportsNoChange() throws Exception {
        Recorder r = new Recorder();
        try (Arena arena = Arena.ofShared();
             SharedPageWatcher w = new SharedPageWatcher("test-watcher", Duration.ofMillis(1), Duration.ofMillis(1), r)) {
            MemorySegment page = arena.allocate(4096, 4096);
            write(page, 0, 1);
            write(page, 4, 2);
            w.watch(0, page, 0);
            awaitScans(w);
            w.watch(0, page, 4);
            awaitScans(w);
            assertThat(r.changes).isEmpty();
            write(page, 4, 3);
            assertThat(r.next()).isEqualTo(new Change(0, 3));
        }
    }

    /**
     * A word watched with the value the caller knows: a write the client made before the watcher's first read is
     * reported, not taken as the starting value; the known value itself is no change.
     */
    @Test
    void aWordWatchedWithItsKnownValueReportsAWriteBeforeTheFirstRead() throws Exception {
        Recorder r = new Recorder();
        try (Arena arena = Arena.ofShared();
             SharedPageWatcher w = new SharedPageWatcher("test-watcher", Duration.ofMillis(1), Duration.ofMillis(1), r)) {
            MemorySegment page = arena.allocate(4096, 4096);
            write(page, 0, 9); // the client wrote 9 before the watcher ever read the word
            w.watch(0, page, 0, 0);
            assertThat(r.next()).isEqualTo(new Change(0, 9));
            write(page, 4, 5);
            w.watch(1, page, 4, 5);
            awaitScans(w);
            assertThat(r.changes).as("the known value is no change").isEmpty();
            write(page, 4, 6);
            assertThat(r.next()).isEqualTo(new Change(1, 6));
        }
    }

    @Test
    void memoryThatGoesWhileWatchedStopsTheWatcherWithAFailure() throws Exception {
        Recorder r = new Recorder();
        Arena arena = Arena.ofShared();
        try (SharedPageWatcher w = new SharedPageWatcher("test-watcher", Duration.ofMillis(1), Duration.ofMillis(1), r)) {
            w.watch(0, arena.allocate(4096, 4096), 0);
            awaitScans(w);
            arena.close();
            assertThat(r.failure.get(WAIT_SECONDS, TimeUnit.SECONDS)).isInstanceOf(IllegalStateException.class);
        }
    }

    @Test
    void wordsMustBeAlignedAndInside() {
        try (Arena arena = Arena.ofConfined();
             SharedPageWatcher w = new SharedPageWatcher("test-watcher", Duration.ZERO, Duration.ofMillis(1),
                     new Recorder())) {
            MemorySegment page = arena.allocate(64, 8);
            assertThatThrownBy(() -> w.watch(0, page, 2)).isInstanceOf(IllegalArgumentException.class);
            assertThatThrownBy(() -> w.watch(0, page, 64)).isInstanceOf(IllegalArgumentException.class);
            assertThatThrownBy(() -> w.watch(-1, page, 0)).isInstanceOf(IllegalArgumentException.class);
        }
    }

    /** Waits until the thread called {@code name} is parked with a timeout (the watcher's only timed wait). */
    private static void awaitParked(String name) {
        while (true) {
            for (Thread t : Thread.getAllStackTraces().keySet()) {
                if (t.getName().equals(name) && t.getState() == Thread.State.TIMED_WAITING) {
                    return;
                }
            }
            Thread.onSpinWait();
        }
    }

    /** Waits until the watcher has started two scans after now (so it has read the current words at least once). */
    private static void awaitScans(SharedPageWatcher w) {
        long target = w.scans() + 2;
        w.wake();
        while (w.scans() < target) {
            Thread.onSpinWait();
        }
    }
}
