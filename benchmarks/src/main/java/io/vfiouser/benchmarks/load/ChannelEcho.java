package io.vfiouser.benchmarks.load;

import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.unix.DomainSocketAddress;
import io.vfiouser.codec.VfioUserFrameDecoder;
import io.vfiouser.transport.UnixChannel;
import io.vfiouser.transport.UnixServerChannel;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;

/**
 * The floor of our stack: the same echo as {@code shared/bench/echo.c} (every vfio-user frame sent back with its
 * type flipped to reply) served by our channel ({@link UnixServerChannel} / {@link UnixChannel}) and
 * {@link VfioUserFrameDecoder} on one epoll event loop, without message decoding, session, dispatcher or
 * encoder. {@code vfu-load -o echo} against this, next to the C echo and our null device, splits the gap into
 * "JVM + channel" and "vfio-user layers above the channel".
 *
 * <pre>
 * java --enable-native-access=ALL-UNNAMED -cp ... io.vfiouser.benchmarks.load.ChannelEcho SOCKET [SOCKET...]
 * </pre>
 * A SOCKET containing %d with {@code --count=N} expands to N sockets. Prints {@code READY n}; runs until killed.
 */
public final class ChannelEcho {
    private ChannelEcho() {
    }

    public static void main(String[] args) throws Exception {
        int count = 1;
        List<String> paths = new ArrayList<>();
        for (String a : args) {
            if (a.startsWith("--count=")) {
                count = Integer.parseInt(a.substring("--count=".length()));
            } else {
                paths.add(a);
            }
        }
        if (paths.isEmpty()) {
            System.err.println("usage: ChannelEcho [--count=N] SOCKET...");
            System.exit(2);
        }
        List<String> expanded = new ArrayList<>();
        for (String p : paths) {
            if (p.contains("%d")) {
                for (int i = 0; i < count; i++) {
                    expanded.add(String.format(p, i));
                }
            } else {
                expanded.add(p);
            }
        }
        EventLoopGroup group = new MultiThreadIoEventLoopGroup(1, EpollIoHandler.newFactory());
        List<Channel> listeners = new ArrayList<>();
        for (String path : expanded) {
            listeners.add(new ServerBootstrap().group(group)
                    .channelFactory(() -> new UnixServerChannel(0600))
                    .childHandler(new ChannelInitializer<UnixChannel>() {
                        @Override
                        protected void initChannel(UnixChannel ch) {
                            ch.pipeline().addLast(new VfioUserFrameDecoder(), new Echo());
                        }
                    })
                    .bind(new DomainSocketAddress(path)).sync().channel());
        }
        CountDownLatch stop = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            for (Channel l : listeners) {
                l.close().syncUninterruptibly();
            }
            group.shutdownGracefully();
            stop.countDown();
        }));
        System.out.println("READY " + listeners.size());
        System.out.flush();
        stop.await();
    }

    /** Flips the type of each frame (flags at offset 8, low nibble) to reply and writes it back. */
    private static final class Echo extends ChannelInboundHandlerAdapter {
        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            ByteBuf frame = (ByteBuf) msg;
            int at = frame.readerIndex() + 8;
            frame.setIntLE(at, (frame.getIntLE(at) & ~0x0F) | 1);
            ctx.write(frame, ctx.voidPromise());
        }

        @Override
        public void channelReadComplete(ChannelHandlerContext ctx) {
            ctx.flush();
        }
    }
}
