package io.vfiouser.server.connection;

import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelPipeline;
import io.netty.util.ReferenceCountUtil;
import io.vfiouser.codec.DmaLayout;
import io.vfiouser.codec.VfioUserFrameDecoder;
import io.vfiouser.codec.VfioUserInvalidMessage;
import io.vfiouser.codec.VfioUserMessage;
import io.vfiouser.codec.VfioUserMessageDecoder;
import io.vfiouser.codec.VfioUserMessageEncoder;
import io.vfiouser.server.device.LogText;
import io.vfiouser.transport.FdSet;
import io.vfiouser.transport.UnixChannel;
import io.vfiouser.transport.linux.ErrnoException;
import io.vfiouser.transport.linux.Linux;

/**
 * The server end of a twin socket (the spec's {@code twin_socket} capability): a socketpair the server creates when
 * the client asks for one in VERSION, whose other end goes to the client with the VERSION reply. The server's own
 * requests (DMA_READ/DMA_WRITE, {@link ServerDmaRequests}) then go out on it and their replies come back on it, so
 * they never interleave with the client's commands and their replies on the main socket.
 *
 * <p>The channel lives on the main connection's event loop (its state needs no locks, like the connection's) and
 * carries only replies to the server's requests: no fds (the frame decoder accepts none), no commands. A command on
 * it, a frame it cannot take, or its end closing closes the main connection too, since a request waiting on a twin
 * nobody reads would never be answered; the main connection closing closes the twin ({@link ServerDmaRequests#close}).
 */
final class TwinSocket {
    private final Channel channel;
    private int clientFd;

    private TwinSocket(Channel channel, int clientFd) {
        this.channel = channel;
        this.clientFd = clientFd;
    }

    /**
     * Creates the pair and registers the server end on {@code main}'s event loop; null (nothing left open) when the
     * main connection is no socket (a test's embedded channel) or the pair cannot be made: the client is then
     * answered without a twin, as the spec allows.
     */
    static TwinSocket open(Connection connection, Channel main) {
        if (!(main instanceof UnixChannel)) {
            return null;
        }
        int[] pair;
        try {
            pair = Linux.socketPair(true);
        } catch (ErrnoException e) {
            connection.warnings().warn("{}: no twin socket: {}", connection.name(), e.getMessage());
            return null;
        }
        UnixChannel twin;
        try {
            twin = new UnixChannel(pair[0]);
        } catch (RuntimeException e) {
            FdSet.closeQuietly(pair[0]);
            FdSet.closeQuietly(pair[1]);
            connection.warnings().warn("{}: no twin socket: {}", connection.name(), e.toString());
            return null;
        }
        twin.attr(DmaLayout.ATTRIBUTE).set(connection.options().dmaLayout());
        ChannelPipeline p = twin.pipeline();
        p.addLast("frames", new VfioUserFrameDecoder(connection.options().maxMessageSize(), 0));
        p.addLast("decoder", new VfioUserMessageDecoder(connection.options().dmaLayout()));
        p.addLast("encoder", VfioUserMessageEncoder.INSTANCE);
        p.addLast("replies", new Replies(connection, main));
        ChannelFuture registered = main.eventLoop().register(twin);
        registered.addListener(f -> {
            if (!f.isSuccess()) {
                // A failed registration closes the channel (and its fd); the client's end goes with the reply.
                connection.warnings().warn("{}: the twin socket could not be registered; closing the connection",
                        connection.name());
                main.close();
            }
        });
        return new TwinSocket(twin, pair[1]);
    }

    /** The server end; owned by {@link ServerDmaRequests} once opened on it. */
    Channel channel() {
        return channel;
    }

    /** Hands over the client end (once), for the VERSION reply's fds: the reply owns it from here on. */
    FdSet takeClientEnd() {
        int fd = clientFd;
        clientFd = -1;
        return FdSet.of(fd);
    }

    /** Closes both ends (the client end only if it was not handed over): negotiation failed after the pair was made. */
    void abandon() {
        channel.close();
        if (clientFd >= 0) {
            FdSet.closeQuietly(clientFd);
            clientFd = -1;
        }
    }

    /** What the server end reads: replies to the server's requests, completed by id; anything else ends it all. */
    private static final class Replies extends ChannelInboundHandlerAdapter {
        private final Connection connection;
        private final Channel main;
        /** Why the twin closes has been logged once (each failed write after that reports again). */
        private boolean closeLogged;

        Replies(Connection connection, Channel main) {
            this.connection = connection;
            this.main = main;
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            ServerDmaRequests requests = connection.dmaRequests();
            if (msg instanceof VfioUserMessage m) {
                if (connection.log().isTraceEnabled()) {
                    connection.log().trace(TraceLine.of(connection.name(), "<- (twin)", m));
                }
                if (m.header().isReply() && requests.complete(m, ctx.channel())) {
                    return;
                }
                refuse(ctx, "a " + (m.header().isReply() ? "reply nobody waits for" : "command") + ": "
                        + m.header());
                m.release();
                return;
            }
            if (msg instanceof VfioUserInvalidMessage invalid) {
                if (invalid.header().isReply() && requests.fail(invalid, ctx.channel())) {
                    return;
                }
                refuse(ctx, "an undecodable message: " + LogText.escape(invalid.reason()));
                invalid.release();
                return;
            }
            ReferenceCountUtil.release(msg);
        }

        /** The client broke the twin's rules: both sockets close (the requests waiting fail then). */
        private void refuse(ChannelHandlerContext ctx, String what) {
            connection.warnings().warn("{}: the twin socket carried {}; closing the connection", connection.name(),
                    what);
            ctx.close();
            main.close();
        }

        @Override
        public void channelInactive(ChannelHandlerContext ctx) throws Exception {
            // The client closed its end, or the connection closed it: the main connection goes too.
            main.close();
            super.channelInactive(ctx);
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            String why = LogText.escape(String.valueOf(cause.getMessage()));
            if (closeLogged) {
                connection.log().debug("{}: twin socket: {}", connection.name(), why);
            } else {
                closeLogged = true;
                connection.warnings().warn("{}: closing the connection: twin socket: {}", connection.name(), why);
            }
            ctx.close();
            main.close();
        }
    }
}
