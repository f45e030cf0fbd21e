package io.vfiouser.device;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.time.Duration;
import java.util.Arrays;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;

/**
 * Watches 32-bit words in memory the client writes directly (doorbells in an mmapped area of a region, shadow
 * doorbells in guest memory) and calls a listener, on a thread of its own, with each new value. For devices whose
 * client writes a register without sending a message (SPDK's NVMe driver writes the doorbell page it mapped).
 *
 * <p><b>Adaptive.</b> While values keep changing the thread spins ({@link Thread#onSpinWait()}), so a busy queue is
 * seen within nanoseconds; once nothing has changed for {@code spin}, it sleeps, for 10 µs at first and twice as
 * long each time up to {@code maxSleep}, so an idle device costs a wake-up every {@code maxSleep} and a scan of its
 * words. A value written while the thread sleeps is therefore seen after at most {@code maxSleep}, or at once if
 * something calls {@link #wake()}: a device that still takes some doorbell by message (the admin queue, a
 * shadow-doorbell ring) wakes the watcher from there. Measured cost: {@code docs/performance.md}, "Shared-page
 * watching".
 *
 * <p><b>Memory.</b> Words are read with acquire semantics (a value seen implies the client's earlier stores to
 * the queue it announces are seen too, as the hardware's doorbell ordering requires of the client). Words are
 * 4-byte aligned offsets of segments the caller keeps alive while they are watched; {@link #unwatch} before the
 * memory goes. A read of a segment whose arena was closed fails, and the watcher stops with that failure reported
 * to the listener's {@link Listener#failed} rather than touching unmapped memory.
 *
 * <p>Thread-safe: {@link #watch}, {@link #unwatch} and {@link #wake} may be called from any thread; the listener
 * runs on the watcher's thread only, one call at a time.
 */
public final class SharedPageWatcher implements AutoCloseable {
    /** What the watcher reports. */
    public interface Listener {
        /** Slot {@code slot}'s word now holds {@code value} (it held another value when last read). */
        void changed(int slot, int value);

        /** The watcher stopped because reading a word failed (its memory went away); it calls nothing more. */
        default void failed(RuntimeException cause) {
        }
    }

    private static final VarHandle INT = ValueLayout.JAVA_INT.varHandle();
    private static final boolean LITTLE_ENDIAN = ByteOrder.nativeOrder() == ByteOrder.LITTLE_ENDIAN;
    private static final long FIRST_SLEEP_NANOS = 10_000;

    /**
     * One watched word; immutable, replaced as a whole. {@code known}: the watcher starts from {@code seen} rather
     * than from its first read.
     */
    private record Word(MemorySegment segment, long offset, boolean known, int seen) {
    }

    private final Listener listener;
    private final long spinNanos;
    private final long firstSleepNanos;
    private final long maxSleepNanos;
    private final Thread thread;
    private final AtomicLong scans = new AtomicLong();
    private final AtomicLong sleeps = new AtomicLong();
    /** Copy-on-write under {@code this}; the thread reads the current arrays. */
    private volatile Word[] words = new Word[0];
    private volatile boolean woken;
    private volatile boolean closed;
    /** The thread's own: the word each slot watched at its last scan, and the value it held then. */
    private Word[] lastWords = new Word[0];
    private int[] last = new int[0];

    /**
     * Starts a watcher thread with nothing to watch yet.
     *
     * @param name     the thread's name
     * @param spin     how long it keeps spinning after the last change (e.g. 50 µs)
     * @param maxSleep the longest sleep while idle: the worst delay for a write nobody {@link #wake}s it for
     */
    public SharedPageWatcher(String name, Duration spin, Duration maxSleep, Listener listener) {
        this(name, spin, Duration.ofNanos(FIRST_SLEEP_NANOS), maxSleep, listener);
    }

    /** With the first sleep given too (tests: a watcher that sleeps an hour at once shows what {@link #wake} does). */
    SharedPageWatcher(String name, Duration spin, Duration firstSleep, Duration maxSleep, Listener listener) {
        this.listener = Objects.requireNonNull(listener, "listener");
        this.spinNanos = spin.toNanos();
        this.firstSleepNanos = Math.max(1, firstSleep.toNanos());
        this.maxSleepNanos = Math.max(firstSleepNanos, maxSleep.toNanos());
        if (spinNanos < 0) {
            throw new IllegalArgumentException("negative spin " + spin);
        }
        this.thread = Thread.ofPlatform().name(name).daemon().unstarted(this::run);
        thread.start();
    }

    /**
     * Watches the 32-bit little-endian word at {@code offset} of {@code segment} as {@code slot}; the value the
     * watcher first reads there is taken as seen (only later changes are reported: a caller that watches a queue
     * looks at it once itself after this call). Replaces what the slot watched before.
     */
    public void watch(int slot, MemorySegment segment, long offset) {
        put(slot, new Word(segment, offset, false, 0));
    }

    /**
     * Watches the word at {@code offset} of {@code segment} as {@code slot}, taking it to hold {@code seen}: a
     * different value at the watcher's first read is reported as a change. For a caller that knows the value and
     * whose client may write the word as soon as this returns (before the watcher's first read): the client's
     * first write is reported, not taken as seen. Replaces what the slot watched before.
     */
    public void watch(int slot, MemorySegment segment, long offset, int seen) {
        put(slot, new Word(segment, offset, true, seen));
    }

    private synchronized void put(int slot, Word word) {
        MemorySegment segment = word.segment();
        long offset = word.offset();
        if (slot < 0) {
            throw new IllegalArgumentException("slot " + slot);
        }
        if ((offset & 3) != 0 || offset < 0 || offset + 4 > segment.byteSize()) {
            throw new IllegalArgumentException("word at " + offset + " of a " + segment.byteSize()
                    + "-byte segment is not an aligned word inside it");
        }
        Word[] next = Arrays.copyOf(words, Math.max(words.length, slot + 1));
        next[slot] = word;
        words = next;
        wake();
    }

    /** Stops watching {@code slot}; once this returns the watcher no longer reads its memory. */
    public void unwatch(int slot) {
        synchronized (this) {
            if (slot >= words.length || words[slot] == null) {
                return;
            }
            Word[] next = words.clone();
            next[slot] = null;
            words = next;
        }
        awaitScan();
    }

    /** Makes the watcher scan now (a doorbell message arrived, the device has reason to look). */
    public void wake() {
        woken = true;
        LockSupport.unpark(thread);
    }

    /** Scans made so far (for measurements). */
    public long scans() {
        return scans.get();
    }

    /** Sleeps taken so far (for measurements). */
    public long sleeps() {
        return sleeps.get();
    }

    /** Stops the thread and waits for it; the listener is not called after this returns. */
    @Override
    public void close() {
        closed = true;
        LockSupport.unpark(thread);
        if (Thread.currentThread() != thread) {
            boolean interrupted = false;
            while (thread.isAlive()) {
                try {
                    thread.join();
                } catch (InterruptedException e) {
                    interrupted = true;
                }
            }
            if (interrupted) {
                Thread.currentThread().interrupt();
            }
        }
    }

    /** Waits until the thread starts a scan after now, so it reads the current word array (or has stopped). */
    private void awaitScan() {
        if (Thread.currentThread() == thread) {
            return;
        }
        long target = scans.get() + 2;
        wake();
        while (scans.get() < target && thread.isAlive()) {
            Thread.onSpinWait();
            LockSupport.parkNanos(1_000);
        }
    }

    private void run() {
        long lastChange = System.nanoTime();
        long sleep = firstSleepNanos;
        while (!closed) {
            boolean changed;
            try {
                changed = scan();
            } catch (RuntimeException e) {
                closed = true;
                listener.failed(e);
                return;
            }
            if (changed || woken) {
                woken = false;
                lastChange = System.nanoTime();
                sleep = firstSleepNanos;
                continue;
            }
            if (System.nanoTime() - lastChange < spinNanos) {
                Thread.onSpinWait();
                continue;
            }
            sleeps.incrementAndGet();
            LockSupport.parkNanos(this, sleep);
            sleep = Math.min(sleep * 2, maxSleepNanos);
        }
    }

    /** Reads every watched word once; reports the ones that changed. */
    private boolean scan() {
        Word[] current = words;
        scans.incrementAndGet();
        if (last.length < current.length) {
            last = Arrays.copyOf(last, current.length);
            lastWords = Arrays.copyOf(lastWords, current.length);
        }
        boolean changed = false;
        for (int slot = 0; slot < current.length; slot++) {
            Word w = current[slot];
            if (w == null) {
                lastWords[slot] = null;
                continue;
            }
            int raw = (int) INT.getAcquire(w.segment(), w.offset());
            int value = LITTLE_ENDIAN ? raw : Integer.reverseBytes(raw);
            if (lastWords[slot] != w) {
                lastWords[slot] = w;
                last[slot] = w.known() ? w.seen() : value;
            }
            if (value != last[slot]) {
                last[slot] = value;
                changed = true;
                listener.changed(slot, value);
            }
        }
        return changed;
    }
}
