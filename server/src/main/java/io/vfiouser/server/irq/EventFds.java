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
 * Signalling an eventfd without allocating: every signal writes the same 8-byte value 1 from one native buffer
 * that lives as long as the JVM. The buffer is only ever read by {@code write(2)}, so any number of threads may
 * use it at once. ({@link Linux#eventfdWrite} would allocate a confined arena per call.)
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
     * Adds 1 to the counter of eventfd {@code fd}. A failure is logged, not thrown: an interrupt that cannot be
     * delivered is dropped, as when no eventfd is registered. A full counter ({@code EAGAIN} on a non-blocking
     * eventfd) means the client has 2^64-2 unread signals already, so nothing is lost.
     *
     * @return whether the write happened
     */
    static boolean signal(int fd) {
        try {
            long n = Linux.write(fd, ONE);
            if (n == 8) {
                return true;
            }
            LOG.debug("eventfd {} not signalled: counter full", fd);
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
