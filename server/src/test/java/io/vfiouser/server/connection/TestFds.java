package io.vfiouser.server.connection;

import static org.assertj.core.api.Assertions.assertThat;

import io.vfiouser.transport.linux.ErrnoException;
import io.vfiouser.transport.linux.Linux;
import java.io.UncheckedIOException;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The fds a connection test hands to the server, and the checks that the server closed them. A handed-over fd is
 * recognised by what {@code /proc/self/fd} shows for it ({@link #target}): a memfd carries a name unique to the
 * test, so a number the kernel reused for another file afterwards is not mistaken for the fd still being open.
 */
final class TestFds {
    private static final AtomicInteger NAMES = new AtomicInteger();

    private TestFds() {
    }

    /** A new memfd with a name no other fd of the process has. */
    static int memfd() {
        try {
            return Linux.memfdCreate("connection-test-" + NAMES.incrementAndGet());
        } catch (ErrnoException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** A new non-blocking eventfd. */
    static int eventfd() {
        try {
            return Linux.eventfd(0, Linux.EFD_NONBLOCK);
        } catch (ErrnoException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** A duplicate of {@code fd}: the server gets the duplicate, the test keeps {@code fd}. */
    static int dup(int fd) {
        try {
            return Linux.dup(fd);
        } catch (ErrnoException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** What {@code /proc/self/fd/<fd>} links to, or null when the fd is not open. */
    static String target(int fd) {
        try {
            return Linux.fdTarget(fd);
        } catch (ErrnoException e) {
            return null;
        }
    }

    /**
     * Asserts that {@code fd}, which showed {@code target} when it was handed over, is closed: the number is free
     * or now names another file.
     */
    static void assertClosed(int fd, String target) {
        assertThat(target).as("the target fd %d had when handed over", fd).isNotNull();
        assertThat(target(fd)).as("fd %d (%s) is closed", fd, target).isNotEqualTo(target);
    }

    /**
     * Asserts that {@code fd} still shows {@code target}. A test opens such an fd right after the server closed
     * one of its own (the kernel hands out the lowest free number, so it usually gets that very number) and checks
     * it at the end: had the server closed its fd a second time, this one would be gone.
     */
    static void assertOpen(int fd, String target) {
        assertThat(target(fd)).as("fd %d is still open", fd).isEqualTo(target);
    }

    /** Signals eventfd {@code fd} once. */
    static void signal(int fd) {
        try {
            Linux.eventfdWrite(fd, 1);
        } catch (ErrnoException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The eventfd's counter, read and reset (0 when it was not signalled). */
    static long signals(int fd) {
        try {
            long n = Linux.eventfdRead(fd);
            return Math.max(n, 0);
        } catch (ErrnoException e) {
            throw new UncheckedIOException(e);
        }
    }

    static void close(int... fds) {
        for (int fd : fds) {
            try {
                Linux.close(fd);
            } catch (ErrnoException e) {
                throw new UncheckedIOException(e);
            }
        }
    }
}
