package io.vfiouser.server;

import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.ScheduledFuture;
import io.vfiouser.transport.UnixChannel;

/**
 * A connection that arrived while its device still had a client (attached, or gone with its teardown not over),
 * waiting, unread, for its turn. It is the only handler of the connection's pipeline until {@link HostedDevice}
 * gives it the device, and the connection does not read (auto-read is off, so no EPOLLIN): the only reads that
 * reach it are those of a peer that hung up (EPOLLRDHUP/EPOLLHUP), which end the wait.
 */
final class HeldConnection extends ChannelInboundHandlerAdapter {
    static final String NAME = "held";

    private final UnixChannel channel;
    private final long since = System.nanoTime();
    private volatile ScheduledFuture<?> timeout;

    HeldConnection(UnixChannel channel) {
        this.channel = channel;
    }

    UnixChannel channel() {
        return channel;
    }

    /** How long the connection has waited, in milliseconds. */
    long waitedMillis() {
        return (System.nanoTime() - since) / 1_000_000;
    }

    void timeout(ScheduledFuture<?> timeout) {
        this.timeout = timeout;
    }

    void cancelTimeout() {
        ScheduledFuture<?> t = timeout;
        if (t != null) {
            t.cancel(false);
        }
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
        // Only a hang-up makes a held connection read: what it sent before leaving is of no use to anyone.
        ReferenceCountUtil.release(msg);
        ctx.close();
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
        ctx.close();
    }
}
