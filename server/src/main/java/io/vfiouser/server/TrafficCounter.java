package io.vfiouser.server;

import io.vfiouser.server.device.DeviceCounters;
import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelDuplexHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelPromise;
import io.vfiouser.transport.BytesWithFds;
import io.vfiouser.transport.ReceivedFds;

/**
 * Counts the bytes and fds a connection reads and writes into its device's {@link DeviceCounters}. It sits first in
 * the pipeline, so it sees exactly what crosses the socket, and it only looks at what passes by: no allocation,
 * no change to the messages.
 */
final class TrafficCounter extends ChannelDuplexHandler {
    private final DeviceCounters stats;

    TrafficCounter(DeviceCounters stats) {
        this.stats = stats;
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
        if (msg instanceof ByteBuf buf) {
            stats.bytesIn(buf.readableBytes());
        } else if (msg instanceof ReceivedFds fds) {
            stats.fdsIn(fds.fds().size());
        }
        ctx.fireChannelRead(msg);
    }

    @Override
    public void write(ChannelHandlerContext ctx, Object msg, ChannelPromise promise) {
        if (msg instanceof ByteBuf buf) {
            stats.bytesOut(buf.readableBytes());
        } else if (msg instanceof BytesWithFds bytes) {
            stats.bytesOut(bytes.content().readableBytes());
            stats.fdsOut(bytes.fds().size());
        }
        ctx.write(msg, promise);
    }
}
