package io.vfiouser.examples.nvme;

import io.vfiouser.device.SharedPageWatcher;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.time.Duration;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

/**
 * The doorbell page of {@link DoorbellMode#MMAP}: BAR0 + 0x1000 is an mmappable area of a hybrid BAR0, the client
 * writes its doorbells straight into it (SPDK's driver, a guest through QEMU's mapping) and sends no message, so the
 * controller learns of them by watching the page with a {@link SharedPageWatcher}. A REGION_WRITE inside the page is
 * served by the framework from the same memory and does not reach the device either: the watcher sees it like any
 * other write.
 *
 * <p><b>What is watched.</b> One slot per doorbell of a queue that exists (doorbell {@code i}: SQ y tail = 2y, CQ y
 * head = 2y + 1, the dword at {@code 4 * i}): a queue's doorbell is zeroed and watched when the queue is created
 * (before its creation completes, so the host cannot have rung it yet; the watcher starts from the 0 it knows, so a
 * ring landing before its first read is not lost), and unwatched when the queue is deleted or the controller
 * resets. Writes to the doorbells of queues that do not exist are not seen (a register doorbell would report them as
 * an invalid doorbell; nothing reads the page there).
 *
 * <p><b>The page is the truth.</b> The watcher's thread only schedules one {@link #take} task on the controller
 * thread (coalesced: a burst of writes costs one hand-off), and that task reads the current value of every watched
 * doorbell and hands those that changed since it last took them to the controller as doorbell writes, validated as
 * register doorbells are. So a report that arrives late, after its queue went away or came back, does nothing
 * wrong. Reads are acquire reads: the queue entries the host wrote before its doorbell are seen after it.
 *
 * <p><b>Latency and cost.</b> The watcher spins for {@link #SPIN} after the last change and then sleeps, up to
 * {@link #MAX_SLEEP}; the controller {@linkplain #wake() wakes} it whenever it posts a completion, since the host
 * is then about to ring (the next submission, the CQ head), so it spins while I/O flows and a depth-1 host is not
 * served from a sleep. An idle controller costs the watcher a wake-up per {@link #MAX_SLEEP}.
 *
 * <p>Owned by the controller thread, but for the watcher's listener, {@link #wake()} and {@link #close()}.
 */
final class MmapDoorbells implements AutoCloseable {
    private static final Logger LOG = LogManager.getLogger(MmapDoorbells.class);
    /** Aligned (the page is), little-endian as NVMe registers are. */
    private static final VarHandle INT = ValueLayout.JAVA_INT.withOrder(ByteOrder.LITTLE_ENDIAN).varHandle();
    /**
     * How long the watcher spins after the last doorbell change or completion. A host's turn from a completion to
     * its next submission at queue depth 1 may be longer (400-500 µs in the TCG guest of {@code
     * docs/performance.md}); spinning through it, 300 µs, won a little at depth 1 there and lost more elsewhere, the
     * spinning thread taking CPU from the guest's. {@code -Dvfu.nvme.mmap.spin.ns=N} sets another spin, for hosts
     * with cores to spare.
     */
    static final Duration SPIN = Duration.ofNanos(Long.getLong("vfu.nvme.mmap.spin.ns", 50_000));
    /** The watcher's longest sleep while idle: the worst delay of a ring after an idle spell. */
    static final Duration MAX_SLEEP = Duration.ofMillis(1);

    private final SharedPageWatcher watcher;
    private final Executor executor;
    private final Runnable onChange;
    private final AtomicBoolean scheduled = new AtomicBoolean();
    /** Whether doorbell {@code i} is watched. */
    private final boolean[] watched;
    /** The value of doorbell {@code i} the controller last took (or wrote). */
    private final int[] taken;
    /** The doorbell page (the area's memory); null until a client attaches. */
    private MemorySegment page;

    /**
     * A watcher thread named after the controller, reporting to {@code onChange} on {@code executor} (the
     * controller thread); {@code doorbells} is the number of doorbells (2 per queue id, the admin queue's included).
     */
    MmapDoorbells(String name, Executor executor, int doorbells, Runnable onChange) {
        this.executor = executor;
        this.onChange = onChange;
        this.watched = new boolean[doorbells];
        this.taken = new int[doorbells];
        this.watcher = new SharedPageWatcher(name + "-doorbells", SPIN, MAX_SLEEP, new SharedPageWatcher.Listener() {
            @Override
            public void changed(int slot, int value) {
                schedule();
            }

            @Override
            public void failed(RuntimeException cause) {
                // The page went away: the device is no longer hosted, nothing can ring any more.
                LOG.debug("{}: doorbell page gone, watcher stopped: {}", name, cause.toString());
            }
        });
    }

    /** The doorbell page: the hybrid BAR0's area, valid while the device is hosted (across clients). */
    void attach(MemorySegment doorbellPage) {
        if (doorbellPage.byteSize() < 4L * watched.length) {
            throw new IllegalArgumentException("doorbell page of " + doorbellPage.byteSize() + " bytes");
        }
        page = doorbellPage;
    }

    /**
     * A queue's doorbell {@code index} comes into use: zeroed (a doorbell starts at 0, whatever an earlier queue
     * or a stray write left there) and watched from 0.
     */
    void watch(int index) {
        if (page == null) {
            return;
        }
        INT.setRelease(page, 4L * index, 0);
        taken[index] = 0;
        watched[index] = true;
        watcher.watch(index, page, 4L * index, 0);
    }

    /**
     * A queue's doorbell {@code index} comes into use at the value {@code value} the controller already holds (a
     * queue restored by a migration): the page is set to it, and only a change from it is a ring.
     */
    void watchAt(int index, int value) {
        if (page == null) {
            return;
        }
        INT.setRelease(page, 4L * index, value);
        taken[index] = value;
        watched[index] = true;
        watcher.watch(index, page, 4L * index, value);
    }

    /** Doorbell {@code index}'s queue is gone: once this returns the watcher no longer reads it. */
    void unwatch(int index) {
        if (watched[index]) {
            watched[index] = false;
            watcher.unwatch(index);
        }
    }

    /** A controller reset: nothing is watched any more, and every doorbell reads 0 again. */
    void reset() {
        for (int i = 0; i < watched.length; i++) {
            unwatch(i);
            taken[i] = 0;
        }
        if (page != null) {
            for (int i = 0; i < watched.length; i++) {
                INT.setRelease(page, 4L * i, 0);
            }
        }
    }

    /**
     * Reads every watched doorbell and reports to {@code doorbell} those whose value changed since last taken, in
     * doorbell order. Runs on the controller thread.
     */
    void take(DoorbellSink doorbell) {
        scheduled.set(false); // a write after this point schedules another take
        if (page == null) {
            return;
        }
        for (int i = 0; i < watched.length; i++) {
            if (watched[i]) {
                int value = (int) INT.getAcquire(page, 4L * i);
                if (value != taken[i]) {
                    taken[i] = value;
                    doorbell.ring(i, value);
                }
            }
        }
    }

    /** Where {@link #take} delivers the doorbells that changed. */
    @FunctionalInterface
    interface DoorbellSink {
        void ring(int index, int value);
    }

    /** The host is about to ring (a completion was posted): keep the watcher spinning rather than sleeping. */
    void wake() {
        watcher.wake();
    }

    private void schedule() {
        if (scheduled.compareAndSet(false, true)) {
            try {
                executor.execute(onChange);
            } catch (RejectedExecutionException e) {
                scheduled.set(false); // the controller is closed
            }
        }
    }

    /** Stops the watcher thread. */
    @Override
    public void close() {
        watcher.close();
    }
}
