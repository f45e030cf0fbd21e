package io.vfiouser.server.irq;

import io.vfiouser.transport.linux.ErrnoException;
import io.vfiouser.transport.linux.Linux;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.atomic.LongAdder;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

/**
 * The eventfds a client hands over with DEVICE_SET_IRQS: checked and made non-blocking once, when they arrive
 * ({@link #check}, {@link #makeNonBlocking}), then signalled without allocating and without ever blocking
 * ({@link #signal}).
 *
 * <h2>Never blocking</h2>
 * A {@code write(2)} to an eventfd blocks while the counter cannot take the value (at its maximum,
 * {@code 0xfffffffffffffffe}) unless the file is non-blocking; a pipe blocks once its buffer is full. Interrupts are
 * signalled on event loops (a doorbell write makes a device fire at once), so a blocked write would stop every
 * connection of that loop, other devices' too. Hence only eventfds are admitted (the kind is read from
 * {@code /proc/self/fd} once, at SET_IRQS time: nothing is checked per signal), and each one is made non-blocking.
 * A signal to a full eventfd then fails with {@code EAGAIN} and is dropped: the client has 2^64-2 unread signals of
 * that vector already, so the interrupt is coalesced with them, and no other vector is concerned.
 *
 * <p>{@code O_NONBLOCK} belongs to the open file description, which the server's descriptor shares with the
 * client's (SCM_RIGHTS passes the description, and Linux cannot re-open an eventfd as a new one: opening
 * {@code /proc/self/fd/N} fails with ENXIO). So the client's own descriptor becomes non-blocking too: a client that
 * reads its eventfd with a blocking {@code read(2)} gets {@code EAGAIN} when nothing is pending. QEMU and
 * libvfio-user create their eventfds with {@code EFD_NONBLOCK} anyway, and KVM's irqfd does not read them through
 * the file. Refusing blocking eventfds instead would fail clients that did nothing wrong.
 *
 * <h2>A client that clears O_NONBLOCK again</h2>
 * For the same reason a client can clear {@code O_NONBLOCK} on its side after SET_IRQS and fill the counter; the
 * next signal then blocks in {@code write(2)}. Checking the flag per signal would cost a system call and still lose
 * a race against a client toggling it. Instead every signal publishes its write in the calling thread's
 * {@link SignalWatchdog} slot (one volatile write before, one compare-and-set after); the watchdog finds a write
 * held for more than {@value SignalWatchdog#STUCK_MS} ms on an fd that is no longer non-blocking, sets the flag
 * again and reads the counter, which releases the writer. The signal then returns {@link #TAMPERED}: the table
 * tells its listener (the connection closes that client) and taints the device ({@link IrqGuard}), whose later signals
 * leave the event loops. So a thread is held at most about {@value SignalWatchdog#STUCK_MS} +
 * {@value SignalWatchdog#SCAN_MS} ms, and an event loop at most once per device.
 *
 * <p>Every signal writes the same 8-byte value 1 from one native buffer that lives as long as the JVM. The buffer
 * is only ever read by {@code write(2)}, so any number of threads may use it at once. ({@link Linux#eventfdWrite}
 * would allocate a confined arena per call.)
 */
final class EventFds {
    private static final Logger LOG = LogManager.getLogger(EventFds.class);
    private static final MemorySegment ONE = Arena.global().allocate(ValueLayout.JAVA_LONG);
    private static final LongAdder FAILURES = new LongAdder();

    /** {@link #signal}: the counter took the signal. */
    static final int SIGNALLED = 0;
    /** {@link #signal}: the counter is full ({@code EAGAIN}) or the write failed; the signal is dropped. */
    static final int DROPPED = 1;
    /** {@link #signal}: the client had cleared {@code O_NONBLOCK}; the watchdog released the blocked write. */
    static final int TAMPERED = 2;

    static {
        ONE.set(ValueLayout.JAVA_LONG, 0, 1L);
    }

    private EventFds() {
    }

    /**
     * Checks that {@code fd} is an eventfd, from the kind the kernel names in {@code /proc/self/fd}.
     *
     * @return null if it is, else why not (for the EINVAL reply's log line)
     */
    static String check(int fd) {
        try {
            String kind = Linux.fdTarget(fd);
            return "anon_inode:[eventfd]".equals(kind) ? null : "fd " + fd + " is not an eventfd but " + kind;
        } catch (ErrnoException e) {
            return "fd " + fd + " is not an eventfd: " + e.getMessage();
        }
    }

    /**
     * Sets {@code O_NONBLOCK} on a {@link #check checked} eventfd, for the table to signal it later.
     *
     * @return null if done, else why not
     */
    static String makeNonBlocking(int fd) {
        try {
            Linux.setNonBlocking(fd);
            SignalWatchdog.start();
            return null;
        } catch (ErrnoException e) {
            return "eventfd " + fd + " cannot be made non-blocking: " + e.getMessage();
        }
    }

    /**
     * Adds 1 to the counter of eventfd {@code fd}. A failure is not thrown: an interrupt that cannot be delivered is
     * dropped, as when no eventfd is registered. {@code EAGAIN} means the counter is full: the client has 2^64-2
     * unread signals already, so nothing is lost; the caller counts it. Any other error (a bad fd, say) is logged
     * here. The write is published to the {@link SignalWatchdog}, which releases it should the client have made the
     * fd blocking again; {@code fd} must stay open until this returns.
     *
     * @return {@link #SIGNALLED}, {@link #DROPPED} or {@link #TAMPERED}
     */
    static int signal(int fd) {
        SignalWatchdog.Slot slot = SignalWatchdog.slot();
        long inFlight = slot.begin(fd);
        long n;
        try {
            n = Linux.write(fd, ONE);
        } catch (ErrnoException e) {
            n = -2;
            FAILURES.increment();
            LOG.warn("eventfd {} not signalled: {}", fd, e.getMessage());
        } finally {
            if (slot.end(inFlight)) {
                n = -3;
            }
        }
        return n == 8 ? SIGNALLED : n == -3 ? TAMPERED : DROPPED;
    }

    /** How many signals failed with an error (a bad fd, say) since the JVM started. */
    static long failures() {
        return FAILURES.sum();
    }
}
