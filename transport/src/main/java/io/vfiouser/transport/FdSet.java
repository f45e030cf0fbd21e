package io.vfiouser.transport;

import io.vfiouser.transport.linux.ErrnoException;
import io.vfiouser.transport.linux.Linux;
import java.util.Arrays;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

/**
 * File descriptors owned together, in the order they travelled. Whoever holds the set owns every fd in it
 * until {@link #take(int) taking} one moves that fd's ownership out; {@link #close()} closes the rest, once.
 *
 * <p>A set is handed from thread to thread along with the message that carries it; its methods are
 * synchronized so that a take on one thread and a close on another cannot both own an fd.
 */
public final class FdSet implements AutoCloseable {
    private static final Logger LOG = LogManager.getLogger(FdSet.class);
    private static final int TAKEN = -1;

    /** A set with no fds; closing it does nothing. */
    public static final FdSet EMPTY = new FdSet(new int[0]);

    private final int[] fds;
    private boolean closed;

    private FdSet(int[] fds) {
        this.fds = fds;
    }

    /**
     * A set that takes ownership of {@code fds} (the array is copied): the caller must not use or close them
     * afterwards. A message sent with this set closes them once its bytes have left (the encoder moves the set into
     * the frame it writes), so {@code FdSet.of(eventfd)} on a SET_IRQS leaves the caller with a closed fd, or worse
     * with a number the process has already reused. For fds the caller goes on using, such as an eventfd it reads
     * to see interrupts or a memfd it keeps mapped, use {@link #ofDuplicates}.
     */
    public static FdSet of(int... fds) {
        return fds.length == 0 ? EMPTY : new FdSet(fds.clone());
    }

    /**
     * A set of close-on-exec duplicates of {@code fds}: the set owns and closes the duplicates, the caller keeps its
     * own fds and closes them when it is done with them. What a client passes to SET_IRQS (eventfds it will read)
     * or DMA_MAP (the memfd of guest memory it keeps mapped) is usually this. If a duplicate cannot be made, those
     * made already are closed and nothing is owned.
     */
    public static FdSet ofDuplicates(int... fds) throws ErrnoException {
        int[] copies = new int[fds.length];
        int made = 0;
        try {
            for (; made < fds.length; made++) {
                copies[made] = Linux.dup(fds[made]);
            }
        } catch (ErrnoException | RuntimeException e) {
            for (int i = 0; i < made; i++) {
                closeQuietly(copies[i]);
            }
            throw e;
        }
        return wrap(copies);
    }

    /** A set that owns {@code fds} without copying the array; for arrays nobody else holds. */
    static FdSet wrap(int[] fds) {
        return fds.length == 0 ? EMPTY : new FdSet(fds);
    }

    /** The number of fds that travelled in this set (taken ones included). */
    public int size() {
        return fds.length;
    }

    public boolean isEmpty() {
        return fds.length == 0;
    }

    /** Whether the fd at {@code index} was taken out of the set. */
    public synchronized boolean isTaken(int index) {
        return fds[index] == TAKEN && !closed;
    }

    /** The fd at {@code index}, still owned by the set. */
    public synchronized int get(int index) {
        int fd = fds[index];
        if (fd == TAKEN) {
            throw new IllegalStateException("fd " + index + " was taken already");
        }
        if (closed) {
            throw new IllegalStateException("fd set is closed");
        }
        return fd;
    }

    /** Moves ownership of the fd at {@code index} to the caller, who must close it. */
    public synchronized int take(int index) {
        int fd = get(index);
        fds[index] = TAKEN;
        return fd;
    }

    /** Copies of the fds not yet taken, still owned by the set; for the transport's sendmsg. */
    synchronized int[] peekAll() {
        if (fds.length == 0) {
            return fds;
        }
        if (closed) {
            throw new IllegalStateException("fd set is closed");
        }
        return fds.clone();
    }

    /** Whether {@link #close()} ran on a non-empty set. */
    public synchronized boolean isClosed() {
        return closed;
    }

    /** Closes every fd not taken. Idempotent; does nothing for an empty set (so {@link #EMPTY} stays usable). */
    @Override
    public void close() {
        if (fds.length == 0) {
            return;
        }
        closeAll();
    }

    private synchronized void closeAll() {
        if (closed) {
            return;
        }
        closed = true;
        for (int i = 0; i < fds.length; i++) {
            if (fds[i] != TAKEN) {
                closeQuietly(fds[i]);
                fds[i] = TAKEN;
            }
        }
    }

    /** Closes one fd, logging (not throwing) a failure. */
    public static void closeQuietly(int fd) {
        try {
            Linux.close(fd);
        } catch (ErrnoException e) {
            LOG.warn("close({}) failed: {}", fd, e.getMessage());
        }
    }

    @Override
    public synchronized String toString() {
        return "FdSet" + Arrays.toString(fds) + (closed ? "(closed)" : "");
    }
}
