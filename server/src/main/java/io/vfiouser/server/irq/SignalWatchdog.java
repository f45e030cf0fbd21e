package io.vfiouser.server.irq;

import io.vfiouser.transport.linux.ErrnoException;
import io.vfiouser.transport.linux.Linux;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.lang.ref.WeakReference;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

/**
 * Rescues a thread that a client's eventfd holds in {@code write(2)}.
 *
 * <h2>Why</h2>
 * The server makes every client eventfd non-blocking at SET_IRQS time ({@link EventFds}), but {@code O_NONBLOCK}
 * lives on the open file description it shares with the client: a client can clear the flag again on its own
 * descriptor and fill the counter, and the next signal then blocks its thread, an event loop, until somebody reads
 * the counter. Checking the flag before each signal would cost a system call per interrupt and still lose the race
 * against a client that toggles it in a loop. So signals stay one plain {@code write(2)}, and this watchdog repairs
 * the rare write that does block.
 *
 * <h2>How</h2>
 * Every thread that signals owns a {@link Slot} (found through a {@link ThreadLocal}, registered here on first use).
 * Around its {@code write(2)} it publishes, in one volatile {@code long}, the fd, a per-slot sequence number and the
 * state {@code WRITING}; after the write it compare-and-sets the word back to {@code IDLE}. Nothing else happens on
 * the signal path: no clock read, no allocation, no system call. A daemon thread, started with the first eventfd the
 * server admits, looks at every slot every {@value #SCAN_MS} ms. A slot whose word (same fd, same sequence number:
 * the same write) has been {@code WRITING} for more than {@value #STUCK_MS} ms, and whose fd is no longer
 * {@code O_NONBLOCK}, is a write held by a client that broke the contract: the watchdog sets {@code O_NONBLOCK} again
 * and reads the counter once, which wakes the writer (a writer blocked on a full eventfd is woken only by a read),
 * and marks the slot {@code RESCUED}; the writer then reports the signal as tampered. A write that is merely slow (a
 * preempted thread on a busy machine) is never touched: its fd is still non-blocking, since only the client clears
 * the flag.
 *
 * <h2>Why the fd number is safe to use</h2>
 * The watchdog reads an fd number that another thread published, and must never act on a number that has been
 * closed and reused meanwhile (reading 8 bytes from somebody's socket would corrupt its stream). It therefore first
 * moves the slot's word from exactly the {@code WRITING} word it saw to {@code RESCUING} with a compare-and-set.
 * The fd travels in the same word, so a successful CAS proves that this very write is still in flight: the writer
 * has not yet run its own CAS back to {@code IDLE}. A writer whose CAS fails because the watchdog holds the slot
 * waits (spinning) until the watchdog leaves {@code RESCUING}, and only then returns from {@link EventFds#signal}.
 * Every caller keeps its fd open until {@code signal} returns (the interrupt table closes an fd only under its write
 * lock, while signals hold the read lock; the off-loop signaller closes its own duplicate after the write), so for as
 * long as the watchdog holds {@code RESCUING} the number names the same open eventfd. Conversely, a writer that wins
 * its CAS has left the word {@code IDLE} (or a new word with a new sequence number), so the watchdog's CAS fails and
 * it does nothing.
 *
 * <h2>What is left</h2>
 * The rescue's {@code read(2)} follows the watchdog's {@code F_SETFL}; a client that clears the flag again in that
 * microsecond window <em>and</em> drains its counter to zero twice (once waking the writer, once after its write)
 * would hold the watchdog, and the writer spinning behind it, in that read until the client writes its eventfd. That
 * takes a deliberately timed race of several threads against the server; after the first tampering the device's
 * signals no longer run on an event loop anyway ({@link IrqGuard}).
 */
final class SignalWatchdog {
    private static final Logger LOG = LogManager.getLogger(SignalWatchdog.class);

    /** How often the watchdog looks at the slots. */
    static final long SCAN_MS = 25;
    /** How long one write must be in flight before its fd's flags are checked. */
    static final long STUCK_MS = 50;

    static final int IDLE = 0;
    static final int WRITING = 1;
    static final int RESCUING = 2;
    static final int RESCUED = 3;

    private static final CopyOnWriteArrayList<Slot> SLOTS = new CopyOnWriteArrayList<>();
    private static final ThreadLocal<Slot> MINE = ThreadLocal.withInitial(SignalWatchdog::register);
    private static final AtomicBoolean STARTED = new AtomicBoolean();

    private SignalWatchdog() {
    }

    /** The calling thread's slot. */
    static Slot slot() {
        return MINE.get();
    }

    private static Slot register() {
        Slot s = new Slot(Thread.currentThread());
        SLOTS.add(s);
        start();
        return s;
    }

    /** Starts the watchdog thread unless it runs already (called when an eventfd is admitted). */
    static void start() {
        if (!STARTED.get() && STARTED.compareAndSet(false, true)) {
            Thread t = new Thread(SignalWatchdog::run, "vfio-user-signal-watchdog");
            t.setDaemon(true);
            t.start();
        }
    }

    private static void run() {
        MemorySegment sink = Arena.global().allocate(8);
        while (true) {
            try {
                TimeUnit.MILLISECONDS.sleep(SCAN_MS);
            } catch (InterruptedException e) {
                return;
            }
            long now = System.nanoTime();
            for (Slot s : SLOTS) {
                if (s.thread.get() == null) {
                    SLOTS.remove(s);
                    continue;
                }
                scan(s, now, sink);
            }
        }
    }

    private static void scan(Slot s, long now, MemorySegment sink) {
        long word = s.word();
        if (state(word) != WRITING) {
            s.seen = word;
            return;
        }
        if (word != s.seen) {
            s.seen = word;
            s.seenAt = now;
            return;
        }
        if (now - s.seenAt < TimeUnit.MILLISECONDS.toNanos(STUCK_MS) || !s.claim(word)) {
            return;
        }
        // RESCUING: the writer cannot return, so fd(word) is the eventfd it writes to (see the class javadoc).
        int fd = fd(word);
        boolean rescued = false;
        try {
            if (!Linux.isNonBlocking(fd)) {
                Linux.setNonBlocking(fd);
                Linux.read(fd, sink); // -1 (EAGAIN) if the client drained it itself: the writer is awake anyway
                rescued = true;
            }
        } catch (ErrnoException | RuntimeException e) {
            LOG.warn("cannot rescue the write to eventfd {}: {}", fd, e.getMessage());
        } finally {
            s.release(word, rescued);
        }
    }

    static int state(long word) {
        return (int) (word & 3);
    }

    static int fd(long word) {
        return (int) (word >>> 32);
    }

    /**
     * One signalling thread's write in flight: {@code fd << 32 | sequence << 2 | state} in one volatile word. Only
     * the owner thread moves it from IDLE to WRITING and from WRITING or RESCUED to IDLE; only the watchdog moves it
     * from WRITING to RESCUING and from RESCUING to WRITING or RESCUED.
     */
    static final class Slot {
        private static final VarHandle WORD;

        static {
            try {
                WORD = MethodHandles.lookup().findVarHandle(Slot.class, "word", long.class);
            } catch (ReflectiveOperationException e) {
                throw new ExceptionInInitializerError(e);
            }
        }

        private final WeakReference<Thread> thread;
        @SuppressWarnings("unused") // through WORD
        private volatile long word;
        /** The owner's sequence number, in bits 2..31 of the word. */
        private int sequence;
        /** Watchdog only: the word it saw last, and when it first saw it. */
        private long seen;
        private long seenAt;

        private Slot(Thread owner) {
            this.thread = new WeakReference<>(owner);
        }

        private long word() {
            return (long) WORD.getVolatile(this);
        }

        /** Owner: a write to {@code fd} begins; returns the word to hand to {@link #end}. */
        long begin(int fd) {
            sequence = (sequence + 1) & 0x3fff_ffff;
            long w = ((long) fd << 32) | ((long) sequence << 2) | WRITING;
            WORD.setVolatile(this, w);
            return w;
        }

        /**
         * Owner: the write of {@code w} returned. Waits while the watchdog holds the slot, so that the fd stays
         * valid for its rescue; returns whether the watchdog had to rescue this write.
         */
        boolean end(long w) {
            long idle = (w & ~3L) | IDLE;
            while (true) {
                if (WORD.compareAndSet(this, w, idle)) {
                    return false;
                }
                long now = (long) WORD.getVolatile(this);
                if (state(now) == RESCUED) {
                    WORD.setVolatile(this, idle);
                    return true;
                }
                Thread.onSpinWait(); // RESCUING: a read(2) and two fcntl(2) at most
            }
        }

        private boolean claim(long w) {
            return WORD.compareAndSet(this, w, (w & ~3L) | RESCUING);
        }

        private void release(long w, boolean rescued) {
            WORD.setVolatile(this, (w & ~3L) | (rescued ? RESCUED : WRITING));
        }
    }
}
