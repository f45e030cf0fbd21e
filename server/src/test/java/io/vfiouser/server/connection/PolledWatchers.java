package io.vfiouser.server.connection;

import io.vfiouser.transport.FdSet;
import io.vfiouser.transport.linux.ErrnoException;
import io.vfiouser.transport.linux.Linux;
import java.util.ArrayList;
import java.util.List;
import java.util.function.LongConsumer;

/**
 * Eventfd watches a test polls itself ({@link #poll}), in place of an epoll loop: a connection on an
 * {@code EmbeddedChannel} gets these. Every watched fd is non-blocking (as on the real loop) and closed by its
 * watch; {@link #open()} counts the watches not closed yet.
 */
final class PolledWatchers implements EventFdWatchers {
    private final List<PolledWatch> watches = new ArrayList<>();

    @Override
    public Watch watch(int fd, LongConsumer onSignal) throws ErrnoException {
        try {
            Linux.setNonBlocking(fd);
        } catch (ErrnoException e) {
            FdSet.closeQuietly(fd);
            throw e;
        }
        PolledWatch w = new PolledWatch(fd, onSignal);
        watches.add(w);
        return w;
    }

    /** Reads every open watched eventfd once and hands what it counted to its callback; returns how many fired. */
    int poll() throws ErrnoException {
        int fired = 0;
        for (PolledWatch w : List.copyOf(watches)) {
            if (!w.closed) {
                long n = Linux.eventfdRead(w.fd);
                if (n > 0) {
                    w.onSignal.accept(n);
                    fired++;
                }
            }
        }
        return fired;
    }

    /** The watches not closed yet. */
    int open() {
        return (int) watches.stream().filter(w -> !w.closed).count();
    }

    /** Every watch made so far, in order (closed ones too). */
    List<PolledWatch> all() {
        return List.copyOf(watches);
    }

    static final class PolledWatch implements Watch {
        private final int fd;
        private final LongConsumer onSignal;
        private boolean closed;

        private PolledWatch(int fd, LongConsumer onSignal) {
            this.fd = fd;
            this.onSignal = onSignal;
        }

        @Override
        public int eventFd() {
            return fd;
        }

        boolean closed() {
            return closed;
        }

        @Override
        public void close() {
            if (!closed) {
                closed = true;
                FdSet.closeQuietly(fd);
            }
        }
    }
}
