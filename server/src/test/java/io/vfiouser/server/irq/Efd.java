package io.vfiouser.server.irq;

import io.vfiouser.transport.linux.ErrnoException;
import io.vfiouser.transport.linux.Linux;
import java.io.UncheckedIOException;

/**
 * A real non-blocking eventfd the test keeps, from which it hands duplicates to the table (so the table owns what
 * it is given, and the test still sees every signal).
 */
final class Efd implements AutoCloseable {
    private final int fd;

    Efd() {
        try {
            fd = Linux.eventfd(0, Linux.EFD_NONBLOCK);
        } catch (ErrnoException e) {
            throw new UncheckedIOException(e);
        }
    }

    static Efd[] many(int n) {
        Efd[] out = new Efd[n];
        for (int i = 0; i < n; i++) {
            out[i] = new Efd();
        }
        return out;
    }

    /** A new duplicate, for the table to own. */
    int give() {
        try {
            return Linux.dup(fd);
        } catch (ErrnoException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Duplicates of each eventfd of {@code efds[from, from + count)}. */
    static int[] give(Efd[] efds, int from, int count) {
        int[] out = new int[count];
        for (int i = 0; i < count; i++) {
            out[i] = efds[from + i].give();
        }
        return out;
    }

    /** The signals since the last call (reads and resets the counter). */
    long signals() {
        try {
            long n = Linux.eventfdRead(fd);
            return n < 0 ? 0 : n;
        } catch (ErrnoException e) {
            throw new UncheckedIOException(e);
        }
    }

    @Override
    public void close() {
        try {
            Linux.close(fd);
        } catch (ErrnoException e) {
            throw new UncheckedIOException(e);
        }
    }

    static void closeAll(Efd... efds) {
        for (Efd e : efds) {
            e.close();
        }
    }
}
