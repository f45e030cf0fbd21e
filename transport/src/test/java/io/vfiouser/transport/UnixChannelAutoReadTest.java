package io.vfiouser.transport;

import static org.assertj.core.api.Assertions.assertThat;

import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.unix.DomainSocketAddress;
import io.netty.util.ReferenceCountUtil;
import io.vfiouser.transport.testing.FdCount;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * With auto-read off, a {@link UnixChannel} reads nothing, even when the peer shuts down its sending side (the
 * level-triggered EPOLLRDHUP used to make it read on every pass of the loop, whatever auto-read said); once
 * reading resumes, it reads what is left and sees the end of the stream.
 */
class UnixChannelAutoReadTest {
    static {
        try {
            // NIO opens a socket for the rest of the process with its first unix socket: not a leak of this test.
            SocketChannel.open(StandardProtocolFamily.UNIX).close();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @TempDir
    Path dir;

    @Test
    void aPeerThatShutsDownItsSideIsNotReadWhileAutoReadIsOff() throws Exception {
        long fdsBefore = FdCount.now();
        EventLoopGroup group = new MultiThreadIoEventLoopGroup(1, EpollIoHandler.newFactory());
        AtomicLong bytesRead = new AtomicLong();
        BlockingQueue<Channel> accepted = new LinkedBlockingQueue<>();
        Path socket = dir.resolve("s.sock");
        try {
            Channel server = new ServerBootstrap().group(group)
                    .channelFactory(() -> new UnixServerChannel())
                    .childOption(ChannelOption.AUTO_READ, false)
                    .childHandler(new ChannelInitializer<UnixChannel>() {
                        @Override
                        protected void initChannel(UnixChannel ch) {
                            ch.pipeline().addLast(new ChannelInboundHandlerAdapter() {
                                @Override
                                public void channelRead(ChannelHandlerContext ctx, Object msg) {
                                    bytesRead.addAndGet(((ByteBuf) msg).readableBytes());
                                    ReferenceCountUtil.release(msg);
                                }
                            });
                            accepted.add(ch);
                        }
                    })
                    .bind(new DomainSocketAddress(socket.toString())).sync().channel();
            try (SocketChannel peer = SocketChannel.open(StandardProtocolFamily.UNIX)) {
                peer.connect(UnixDomainSocketAddress.of(socket));
                Channel ch = accepted.poll(20, TimeUnit.SECONDS);
                assertThat(ch).isNotNull();
                peer.write(ByteBuffer.wrap(new byte[100]));
                peer.shutdownOutput();
                // Each task the loop runs follows a pass over the ready events: three passes saw the shutdown.
                for (int i = 0; i < 3; i++) {
                    ch.eventLoop().submit(() -> { }).sync();
                }
                assertThat(bytesRead.get()).as("bytes read with auto-read off").isZero();
                assertThat(ch.isOpen()).isTrue();

                ch.config().setAutoRead(true);
                assertThat(ch.closeFuture().await(20, TimeUnit.SECONDS)).as("closed at the end of the stream").isTrue();
                assertThat(bytesRead.get()).isEqualTo(100);
            }
            server.close().sync();
        } finally {
            group.shutdownGracefully(0, 1, TimeUnit.SECONDS).sync();
        }
        FdCount.awaitAtMost(fdsBefore);
    }
}
