package io.vfiouser.transport;

import io.netty.buffer.ByteBuf;
import io.netty.util.AbstractReferenceCounted;

/**
 * Bytes that travel together with file descriptors: inbound, a whole frame and the fds that arrived with it;
 * outbound, a whole message whose fds go out on the {@code sendmsg(2)} that starts with its first byte.
 * Releasing it releases the bytes and closes every fd nobody took.
 */
public final class BytesWithFds extends AbstractReferenceCounted {
    private final ByteBuf content;
    private final FdSet fds;

    public BytesWithFds(ByteBuf content, FdSet fds) {
        this.content = content;
        this.fds = fds;
    }

    public ByteBuf content() {
        return content;
    }

    public FdSet fds() {
        return fds;
    }

    @Override
    protected void deallocate() {
        try {
            content.release();
        } finally {
            fds.close();
        }
    }

    @Override
    public BytesWithFds retain() {
        super.retain();
        return this;
    }

    @Override
    public BytesWithFds retain(int increment) {
        super.retain(increment);
        return this;
    }

    @Override
    public BytesWithFds touch() {
        return touch(null);
    }

    @Override
    public BytesWithFds touch(Object hint) {
        content.touch(hint);
        return this;
    }

    @Override
    public String toString() {
        return "BytesWithFds(" + content.readableBytes() + " bytes, " + fds + ")";
    }
}
