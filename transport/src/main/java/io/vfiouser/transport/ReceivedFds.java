package io.vfiouser.transport;

import io.netty.util.AbstractReferenceCounted;

/**
 * Fired by {@link UnixChannel} into the pipeline just before the bytes of the {@code recvmsg(2)} that brought
 * these fds. The kernel ends such a read at the end of the chunk the fds rode on, so they belong to whatever
 * frame holds the read's last byte: stream position {@link #lastByteOffset()}, counted from the first byte the
 * connection received. A well-behaved peer sends an fd-carrying message in a {@code sendmsg(2)} of its own that
 * starts at the message's header, so that frame cannot start before the read did ({@link #firstByteOffset()}).
 * Releasing it closes the fds nobody took.
 */
public final class ReceivedFds extends AbstractReferenceCounted {
    private final FdSet fds;
    private final long firstByteOffset;
    private final long lastByteOffset;

    public ReceivedFds(FdSet fds, long firstByteOffset, long lastByteOffset) {
        this.fds = fds;
        this.firstByteOffset = firstByteOffset;
        this.lastByteOffset = lastByteOffset;
    }

    /** The stream offset of the first byte of the read that carried the fds. */
    public long firstByteOffset() {
        return firstByteOffset;
    }

    public FdSet fds() {
        return fds;
    }

    /** The stream offset of the last byte of the read that carried the fds. */
    public long lastByteOffset() {
        return lastByteOffset;
    }

    @Override
    protected void deallocate() {
        fds.close();
    }

    @Override
    public ReceivedFds retain() {
        super.retain();
        return this;
    }

    @Override
    public ReceivedFds retain(int increment) {
        super.retain(increment);
        return this;
    }

    @Override
    public ReceivedFds touch() {
        return touch(null);
    }

    @Override
    public ReceivedFds touch(Object hint) {
        return this;
    }

    @Override
    public String toString() {
        return "ReceivedFds(" + fds + " @" + firstByteOffset + ".." + lastByteOffset + ")";
    }
}
