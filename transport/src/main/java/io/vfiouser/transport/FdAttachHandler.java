package io.vfiouser.transport;

import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.util.ReferenceCountUtil;
import java.util.ArrayDeque;

/**
 * Gives received fds to the frame they travelled with. Sits right after a frame decoder that emits every byte of
 * the stream, in order, as whole-frame {@link ByteBuf}s (and passes other messages through).
 *
 * <p>The rule: the fds of one {@code recvmsg(2)} ({@link ReceivedFds}) belong to the frame that holds that read's
 * last byte. Frames pass on as plain {@code ByteBuf}s, or as {@link BytesWithFds} when fds belong to them. The
 * stream is closed, and the fds with it, when fds cannot belong to a frame: two sets of fds for the same
 * frame, fds whose frame started before the read that carried them (they did not ride on the frame's first
 * bytes), or more fds than {@link #maxFds()}.
 */
public final class FdAttachHandler extends ChannelInboundHandlerAdapter {
    private volatile int maxFds;
    /** Stream offset of the first byte of the next frame. */
    private long frameStart;
    /**
     * Fds waiting for their frame, in stream order. More than one set can wait: a read may end inside a frame
     * whose fds it brought, and the next read may bring the fds of the frame after it.
     */
    private final ArrayDeque<ReceivedFds> pending = new ArrayDeque<>(2);
    private boolean failed;

    /** @param maxFds the most fds one frame may carry */
    public FdAttachHandler(int maxFds) {
        setMaxFds(maxFds);
    }

    public int maxFds() {
        return maxFds;
    }

    /** Changes the most fds one frame may carry (for example after negotiation). */
    public void setMaxFds(int maxFds) {
        if (maxFds < 0) {
            throw new IllegalArgumentException("maxFds < 0: " + maxFds);
        }
        this.maxFds = maxFds;
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
        if (failed) {
            ReferenceCountUtil.release(msg);
        } else if (msg instanceof ReceivedFds fds) {
            receivedFds(ctx, fds);
        } else if (msg instanceof ByteBuf frame) {
            frame(ctx, frame);
        } else {
            ctx.fireChannelRead(msg);
        }
    }

    /**
     * For a handler before this one that serves frames itself instead of passing them on (see the codec's frame
     * shortcut): counts the next frame, of {@code length} bytes, as passed when no fds belong to it, and returns
     * {@code true}; returns {@code false} and counts nothing when fds do (or the stream has failed), in which case
     * the frame must come through here as usual. Call it on the channel's event loop, between frames.
     */
    public boolean passWithoutFds(int length) {
        if (failed) {
            return false;
        }
        long end = frameStart + length;
        ReceivedFds fds = pending.peekFirst();
        if (fds != null && fds.lastByteOffset() < end) {
            return false;
        }
        frameStart = end;
        return true;
    }

    private void receivedFds(ChannelHandlerContext ctx, ReceivedFds fds) {
        if (fds.fds().size() > maxFds) {
            fds.release();
            fail(ctx, fds.fds().size() + " fds in one message, at most " + maxFds + " allowed");
            return;
        }
        pending.addLast(fds);
    }

    private void frame(ChannelHandlerContext ctx, ByteBuf frame) {
        long start = frameStart;
        long end = start + frame.readableBytes();
        frameStart = end;
        ReceivedFds fds = pending.peekFirst();
        if (fds == null || fds.lastByteOffset() >= end) {
            ctx.fireChannelRead(frame);
            return;
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
            frame.release();
            fds.release();
            fail(ctx, why);
            return;
        }
        ctx.fireChannelRead(new BytesWithFds(frame, fds.fds()));
    }

    /** The stream can no longer be trusted: drop what waits and what still comes, and close. */
    private void fail(ChannelHandlerContext ctx, String why) {
        failed = true;
        releasePending();
        ctx.fireExceptionCaught(new FdTransportException(why));
        ctx.close();
    }

    private void releasePending() {
        ReceivedFds fds;
        while ((fds = pending.pollFirst()) != null) {
            ReferenceCountUtil.safeRelease(fds);
        }
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) throws Exception {
        releasePending();
        super.channelInactive(ctx);
    }

    @Override
    public void handlerRemoved(ChannelHandlerContext ctx) {
        releasePending();
    }
}
