package io.vfiouser.server.connection;

import static org.assertj.core.api.Assertions.assertThat;

import io.vfiouser.transport.linux.ErrnoException;
import io.vfiouser.transport.linux.Linux;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Real fds for the connection's unit tests, and how to tell whether the connection closed them. A test keeps the
 * fd it creates and gives the connection duplicates ({@link #dup}); each memfd has a name of its own, so
 * {@link #openOn} counts exactly the fds the process holds on that file: after the connection is done with it, the
 * count is the test's one, which shows every duplicate was closed and the test's own fd was not closed in its place.
 */
final class TestFds {
    private static final AtomicInteger NEXT = new AtomicInteger();

    private TestFds() {
    }

    /** A new memfd of {@code size} bytes with a name no other test uses; returns it with its name. */
    static Memfd memfd(long size) {
        String name = "vfu-unit-" + ProcessHandle.current().pid() + "-" + NEXT.incrementAndGet();
        try {
            int fd = Linux.memfdCreate(name);
            Linux.ftruncate(fd, size);
            return new Memfd(fd, name);
        } catch (ErrnoException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** A new non-blocking eventfd the test owns. */
    static int eventfd() {
        try {
            return Linux.eventfd(0, Linux.EFD_NONBLOCK);
        } catch (ErrnoException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** A duplicate of {@code fd}, for the connection to own. */
    static int dup(int fd) {
        try {
            return Linux.dup(fd);
        } catch (ErrnoException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Whether {@code fd} is open (only meaningful while nothing else may have reused the number). */
    static boolean isOpen(int fd) {
        return Files.exists(Path.of("/proc/self/fd/" + fd), java.nio.file.LinkOption.NOFOLLOW_LINKS);
    }

    /** How many fds of this process refer to the memfd called {@code name}. */
    static long openOn(String name) {
        String target = "/memfd:" + name + " (deleted)";
        try (var entries = Files.list(Path.of("/proc/self/fd"))) {
            return entries.filter(p -> {
                try {
                    return Files.readSymbolicLink(p).toString().equals(target);
                } catch (IOException e) {
                    return false; // closed while listing
                }
            }).count();
        } catch (IOException e) {
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

    /** A new memfd (empty) with a name no other fd of the process has. */
    static int memfd() {
        return memfd(0).fd();
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


    /** A memfd the test keeps: its fd, its unique name, and its bytes read and written through the file. */
    record Memfd(int fd, String name) implements AutoCloseable {
        /** A duplicate for the connection. */
        int give() {
            return dup(fd);
        }

        /** The fds the process holds on this file (1 = only the test's). */
        long open() {
            return openOn(name);
        }

        byte[] read(long offset, int length) {
            try (FileChannel ch = FileChannel.open(Path.of("/proc/self/fd/" + fd), StandardOpenOption.READ)) {
                ByteBuffer b = ByteBuffer.allocate(length);
                while (b.hasRemaining() && ch.read(b, offset + b.position()) > 0) {
                    // until full
                }
                return b.array();
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }

        void write(long offset, byte[] bytes) {
            try (FileChannel ch = FileChannel.open(Path.of("/proc/self/fd/" + fd), StandardOpenOption.WRITE)) {
                ByteBuffer b = ByteBuffer.wrap(bytes);
                while (b.hasRemaining()) {
                    ch.write(b, offset + b.position());
                }
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }

        @Override
        public void close() {
            TestFds.close(fd);
        }
    }
}
