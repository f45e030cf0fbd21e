package io.vfiouser.transport;

import java.util.ArrayDeque;

/**
 * Gives received fds to the frame they travelled with: the fd-to-frame rule of a stream of frames, as plain logic
 * for the frame decoder that owns the stream, so that framing and fds are counted in one place.
 *
 * <p>The rule: the fds of one {@code recvmsg(2)} ({@link ReceivedFds}, announced before that read's bytes) belong
 * to the frame that holds that read's last byte. The stream can no longer be trusted, and {@link #nextFrame} or
 * {@link #received} throws an {@link FdTransportException}, when fds cannot belong to a frame: two sets of fds for
 * the same frame, fds whose frame started before the read that carried them (they did not ride on the frame's
 * first bytes), or more fds in one read than {@link #maxFds()}.
 *
 * <p>Ownership: the pairing owns every set it was given until {@link #nextFrame} hands it out; a violation and
 * {@link #close()} close every fd still waiting, and a set given after {@code close()} is closed at once. A frame
 * without fds costs nothing: {@link FdSet#EMPTY}, no allocation. One per connection, used on its event loop.
 */
public final class FdPairing implements AutoCloseable {
    private final int maxFds;
    /** Stream offset of the first byte of the next frame. */
    private long frameStart;
    /**
     * Fds waiting for their frame, in stream order. More than one set can wait: a read may end inside a frame
     * whose fds it brought, and the next read may bring the fds of the frame after it.
     */
    private final ArrayDeque<ReceivedFds> pending = new ArrayDeque<>(2);
    private boolean closed;

    /** @param maxFds the most fds one frame may carry */
    public FdPairing(int maxFds) {
        if (maxFds < 0) {
            throw new IllegalArgumentException("maxFds < 0: " + maxFds);
        }
        this.maxFds = maxFds;
    }

    public int maxFds() {
        return maxFds;
    }

    /**
     * Takes {@code fds}, which a read brought, and keeps them for their frame (a set with no fds is dropped).
     *
     * @throws FdTransportException when the read brought more than {@link #maxFds()} fds; everything waiting,
     *                              these fds included, is closed then
     */
    public void received(ReceivedFds fds) throws FdTransportException {
        if (closed || fds.fds().isEmpty()) {
            fds.release();
            return;
        }
        int count = fds.fds().size();
        if (count > maxFds) {
            fds.release();
            throw violation(count + " fds in one message, at most " + maxFds + " allowed");
        }
        pending.addLast(fds);
    }

    /**
     * Counts the next frame, {@code length} bytes from where the previous one ended, and returns the fds that
     * belong to it, now the caller's: {@link FdSet#EMPTY} when none do.
     *
     * @throws FdTransportException when fds arrived for this frame that cannot belong to it; everything waiting is
     *                              closed then
     */
    public FdSet nextFrame(int length) throws FdTransportException {
        if (closed) {
            throw new IllegalStateException("fd pairing is closed");
        }
        long start = frameStart;
        long end = start + length;
        frameStart = end;
        ReceivedFds fds = pending.peekFirst();
        if (fds == null || fds.lastByteOffset() >= end) {
            return FdSet.EMPTY;
        }
        pending.removeFirst();
        ReceivedFds another = pending.peekFirst();
        String why = null;
        if (another != null && another.lastByteOffset() < end) {
            why = "two sets of fds arrived for the frame at offset " + start;
        } else if (fds.lastByteOffset() < start || start < fds.firstByteOffset()) {
            why = "fds arrived on bytes " + fds.firstByteOffset() + ".." + fds.lastByteOffset()
                    + " that do not start the frame at " + start;
        }
        if (why != null) {
            fds.release();
            throw violation(why);
        }
        return fds.fds();
    }

    /** How many sets of fds wait for their frame. */
    public int pendingSets() {
        return pending.size();
    }

    /** Closes every fd still waiting for its frame; sets received from now on are closed at once. Idempotent. */
    @Override
    public void close() {
        closed = true;
        ReceivedFds fds;
        while ((fds = pending.pollFirst()) != null) {
            fds.release();
        }
    }

    private FdTransportException violation(String why) {
        close();
        return new FdTransportException(why);
    }
}
