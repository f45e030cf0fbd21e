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
 * the file. Refusing blocking eventfds instead would fail clients that did nothing wrong. A client that clears
 * {@code O_NONBLOCK} again on its side after SET_IRQS and then fills the counter defeats this; that takes two
 * deliberate acts against its own interrupts and is not defended per signal (it would cost a system call each).
 *
 * <p>Every signal writes the same 8-byte value 1 from one native buffer that lives as long as the JVM. The buffer
 * is only ever read by {@code write(2)}, so any number of threads may use it at once. ({@link Linux#eventfdWrite}
 * would allocate a confined arena per call.)
 */
final class EventFds {
    private static final Logger LOG = LogManager.getLogger(EventFds.class);
    private static final MemorySegment ONE = Arena.global().allocate(ValueLayout.JAVA_LONG);
    private static final LongAdder FAILURES = new LongAdder();

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
            return null;
        } catch (ErrnoException e) {
            return "eventfd " + fd + " cannot be made non-blocking: " + e.getMessage();
        }
    }

    /**
     * Adds 1 to the counter of eventfd {@code fd}, without blocking. A failure is not thrown: an interrupt that
     * cannot be delivered is dropped, as when no eventfd is registered. {@code EAGAIN} means the counter is full:
     * the client has 2^64-2 unread signals already, so nothing is lost; the caller counts it. Any other error (a
     * bad fd, say) is logged here.
     *
     * @return whether the write happened
     */
    static boolean signal(int fd) {
        try {
            long n = Linux.write(fd, ONE);
            return n == 8;
        } catch (ErrnoException e) {
            FAILURES.increment();
            LOG.warn("eventfd {} not signalled: {}", fd, e.getMessage());
        }
        return false;
    }

    /** How many signals failed with an error (a bad fd, say) since the JVM started. */
    static long failures() {
        return FAILURES.sum();
    }
}
