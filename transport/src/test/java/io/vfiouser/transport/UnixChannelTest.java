package io.vfiouser.transport;

import static org.assertj.core.api.Assertions.assertThat;

import io.netty.bootstrap.Bootstrap;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.unix.DomainSocketAddress;
import io.netty.handler.codec.LengthFieldBasedFrameDecoder;
import io.netty.util.ReferenceCountUtil;
import io.vfiouser.transport.linux.FileStat;
import io.vfiouser.transport.testing.FdCount;
import io.vfiouser.transport.linux.Linux;
import io.vfiouser.transport.linux.MsgHdr;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The fd-carrying channels over real sockets. Frames in these tests are vfio-user shaped: a 16-byte header with
 * the u32 little-endian total size at offset 4 and an id at offset 0.
 */
class UnixChannelTest {
    private static final long TIMEOUT_S = 20;
    private static EventLoopGroup group;

    @TempDir
    Path dir;
    private long fdsBefore;
    private final List<Channel> channels = new ArrayList<>();

    @BeforeAll
    static void startLoops() {
        group = new MultiThreadIoEventLoopGroup(2, EpollIoHandler.newFactory());
    }

    @AfterAll
    static void stopLoops() throws Exception {
        group.shutdownGracefully(0, 1, TimeUnit.SECONDS).sync();
    }

    @BeforeEach
    void countFds() {
        fdsBefore = FdCount.now();
    }

    @AfterEach
    void closeAndCheckFds() throws Exception {
        for (Channel ch : channels) {
            ch.close().sync();
        }
        FdCount.awaitAtMost(fdsBefore);
    }

    /** What the server side saw: frames (ByteBuf or BytesWithFds), errors and the close. */
    static final class Sink extends ChannelInboundHandlerAdapter {
        final BlockingQueue<Object> frames = new LinkedBlockingQueue<>();
        final AtomicReference<Throwable> error = new AtomicReference<>();
        final java.util.concurrent.CompletableFuture<Void> closed = new java.util.concurrent.CompletableFuture<>();
        final AtomicLong rawBytes = new AtomicLong();
        final AtomicReference<Channel> ctxChannel = new AtomicReference<>();

        @Override
        public void handlerAdded(ChannelHandlerContext ctx) {
            ctxChannel.set(ctx.channel());
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            frames.add(msg);
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            error.compareAndSet(null, cause);
        }

        @Override
        public void channelInactive(ChannelHandlerContext ctx) {
            closed.complete(null);
        }

        Object next() throws InterruptedException {
            Object o = frames.poll(TIMEOUT_S, TimeUnit.SECONDS);
            assertThat(o).as("a frame within %d s", TIMEOUT_S).isNotNull();
            return o;
        }

        void drain() {
            Object o;
            while ((o = frames.poll()) != null) {
                ReferenceCountUtil.release(o);
            }
        }
    }

    /** Counts bytes as they come off the socket, before framing. */
    static final class RawCounter extends ChannelInboundHandlerAdapter {
        final AtomicLong bytes;

        RawCounter(AtomicLong bytes) {
            this.bytes = bytes;
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            if (msg instanceof ByteBuf b) {
                bytes.addAndGet(b.readableBytes());
            }
            ctx.fireChannelRead(msg);
        }
    }

    /**
     * Pairs the fds of the reads with the frames of a plain length-field decoder by {@link FdPairing}, as the
     * codec's frame decoder does: frames pass as ByteBufs, or as BytesWithFds when fds belong to them; a
     * violation closes the channel.
     */
    static final class PairFds extends ChannelInboundHandlerAdapter {
        private final FdPairing pairing;
        private boolean failed;

        PairFds(int maxFds) {
            pairing = new FdPairing(maxFds);
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            if (failed) {
                ReferenceCountUtil.release(msg);
                return;
            }
            try {
                if (msg instanceof ReceivedFds fds) {
                    pairing.received(fds);
                } else {
                    ByteBuf frame = (ByteBuf) msg;
                    FdSet fds;
                    try {
                        fds = pairing.nextFrame(frame.readableBytes());
                    } catch (FdTransportException e) {
                        frame.release();
                        throw e;
                    }
                    ctx.fireChannelRead(fds.isEmpty() ? frame : new BytesWithFds(frame, fds));
                }
            } catch (FdTransportException e) {
                failed = true;
                ctx.fireExceptionCaught(e);
                ctx.close();
            }
        }

        @Override
        public void handlerRemoved(ChannelHandlerContext ctx) {
            pairing.close();
        }
    }

    private static void framePipeline(Channel ch, Sink sink, int maxFds) {
        ch.pipeline().addLast(new RawCounter(sink.rawBytes),
                new LengthFieldBasedFrameDecoder(ByteOrder.LITTLE_ENDIAN, 1 << 20, 4, 4, -8, 0, true),
                new PairFds(maxFds), sink);
    }

    private Channel server(String name, BlockingQueue<Sink> sinks, int maxFds) throws Exception {
        Channel server = new ServerBootstrap().group(group)
                .channelFactory(() -> new UnixServerChannel())
                .childHandler(new ChannelInitializer<UnixChannel>() {
                    @Override
                    protected void initChannel(UnixChannel ch) {
                        Sink sink = new Sink();
                        framePipeline(ch, sink, maxFds);
                        sinks.add(sink);
                    }
                })
                .bind(new DomainSocketAddress(dir.resolve(name).toString())).sync().channel();
        channels.add(server);
        return server;
    }

    private Channel client(String name, Sink sink) throws Exception {
        Channel client = new Bootstrap().group(group)
                .channelFactory(UnixChannel::new)
                .handler(new ChannelInitializer<UnixChannel>() {
                    @Override
                    protected void initChannel(UnixChannel ch) {
                        framePipeline(ch, sink, 16);
                    }
                })
                .connect(new DomainSocketAddress(dir.resolve(name).toString())).sync().channel();
        channels.add(client);
        return client;
    }

    static ByteBuf frame(int id, int payloadLength) {
        ByteBuf buf = Unpooled.directBuffer(16 + payloadLength);
        buf.writeShortLE(id).writeShortLE(9).writeIntLE(16 + payloadLength).writeIntLE(0).writeIntLE(0);
        for (int i = 0; i < payloadLength; i++) {
            buf.writeByte(id + i);
        }
        return buf;
    }

    static int idOf(Object frame) {
        ByteBuf buf = frame instanceof BytesWithFds b ? b.content() : (ByteBuf) frame;
        return buf.getUnsignedShortLE(buf.readerIndex());
    }

    @Test
    void framesTravelBothWaysWithTheirFds() throws Exception {
        BlockingQueue<Sink> sinks = new LinkedBlockingQueue<>();
        server("s.sock", sinks, 8);
        Sink clientSink = new Sink();
        Channel client = client("s.sock", clientSink);
        Sink serverSink = sinks.poll(TIMEOUT_S, TimeUnit.SECONDS);

        int memfd = Linux.memfdCreate("test");
        Linux.ftruncate(memfd, 4096);
        client.write(frame(1, 10));
        client.writeAndFlush(new BytesWithFds(frame(2, 4), FdSet.of(memfd))).sync();

        Object first = serverSink.next();
        assertThat(first).isInstanceOf(ByteBuf.class);
        assertThat(idOf(first)).isEqualTo(1);
        ReferenceCountUtil.release(first);
        Object second = serverSink.next();
        assertThat(second).isInstanceOf(BytesWithFds.class);
        BytesWithFds withFds = (BytesWithFds) second;
        assertThat(idOf(withFds)).isEqualTo(2);
        assertThat(withFds.fds().size()).isEqualTo(1);
        FileStat stat = Linux.fstat(withFds.fds().get(0));
        assertThat(stat.size()).isEqualTo(4096);
        withFds.release();
        // The sender's copy was closed when the message was released after sending.
        assertThat(FdCount.isOpen(memfd)).isFalse();

        // And back: the server answers with an eventfd the client can signal.
        int event = Linux.eventfd(0, Linux.EFD_NONBLOCK);
        Channel serverChild = channelOf(serverSink);
        serverChild.writeAndFlush(new BytesWithFds(frame(3, 0), FdSet.of(Linux.dup(event)))).sync();
        Object reply = clientSink.next();
        assertThat(reply).isInstanceOf(BytesWithFds.class);
        Linux.eventfdWrite(((BytesWithFds) reply).fds().get(0), 1);
        assertThat(Linux.eventfdRead(event)).isEqualTo(1);
        ReferenceCountUtil.release(reply);
        Linux.close(event);
    }

    private static Channel channelOf(Sink sink) {
        return sink.ctxChannel.get();
    }

    @Test
    void threeThousandPipelinedFramesKeepTheirOwnMemfds() throws Exception {
        BlockingQueue<Sink> sinks = new LinkedBlockingQueue<>();
        server("p.sock", sinks, 8);
        Channel client = client("p.sock", new Sink());
        Sink serverSink = sinks.poll(TIMEOUT_S, TimeUnit.SECONDS);

        int count = 3000;
        for (int i = 0; i < count; i++) {
            if (i % 3 == 2) {
                client.write(frame(i, 8 + i % 50));
            } else {
                int memfd = Linux.memfdCreate("frame-" + i);
                Linux.ftruncate(memfd, 4096);
                try (Arena arena = Arena.ofConfined()) {
                    Linux.mmap(memfd, 0, 4096, Linux.PROT_READ | Linux.PROT_WRITE, arena)
                            .set(ValueLayout.JAVA_INT, 0, i);
                }
                client.write(new BytesWithFds(frame(i, i % 40), FdSet.of(memfd)));
            }
            if (i % 100 == 99) {
                client.flush();
            }
        }
        client.flush();

        for (int i = 0; i < count; i++) {
            Object f = serverSink.next();
            try {
                assertThat(idOf(f)).isEqualTo(i & 0xffff);
                if (i % 3 == 2) {
                    assertThat(f).isInstanceOf(ByteBuf.class);
                } else {
                    assertThat(f).isInstanceOf(BytesWithFds.class);
                    BytesWithFds b = (BytesWithFds) f;
                    assertThat(b.fds().size()).isEqualTo(1);
                    try (Arena arena = Arena.ofConfined()) {
                        MemorySegment m = Linux.mmap(b.fds().get(0), 0, 4096, Linux.PROT_READ, arena);
                        assertThat(m.get(ValueLayout.JAVA_INT, 0)).as("memfd of frame %d", i).isEqualTo(i);
                    }
                }
            } finally {
                ReferenceCountUtil.release(f);
            }
        }
        assertThat(serverSink.error.get()).isNull();
    }

    @Test
    void severalFramesInOneReadAndOneFrameOverManyReads() throws Exception {
        int[] pair = Linux.socketPair(true);
        // Queue everything before the server channel exists, so its first read takes several frames at once.
        int memfd = Linux.memfdCreate("x");
        sendRaw(pair[0], frame(1, 3), new int[0]);
        sendRaw(pair[0], frame(2, 5), new int[] {memfd});
        sendRaw(pair[0], frame(3, 0), new int[0]);
        Linux.close(memfd);

        Sink sink = new Sink();
        UnixChannel server = new UnixChannel(pair[1]);
        framePipeline(server, sink, 8);
        group.next().register(server).sync();
        channels.add(server);

        Object f1 = sink.next();
        Object f2 = sink.next();
        Object f3 = sink.next();
        assertThat(f1).isInstanceOf(ByteBuf.class);
        assertThat(f2).isInstanceOf(BytesWithFds.class);
        assertThat(((BytesWithFds) f2).fds().size()).isEqualTo(1);
        assertThat(f3).isInstanceOf(ByteBuf.class);
        ReferenceCountUtil.release(f1);
        ReferenceCountUtil.release(f2);
        ReferenceCountUtil.release(f3);

        // One frame in many pieces: the header chunk carries the fds, the rest dribbles in.
        ByteBuf big = frame(4, 5000);
        int e1 = Linux.eventfd(0, 0);
        int e2 = Linux.eventfd(0, 0);
        sendRaw(pair[0], big.retainedSlice(0, 20), new int[] {e1, e2});
        Linux.close(e1);
        Linux.close(e2);
        for (int at = 20; at < big.readableBytes(); at += 999) {
            awaitRaw(sink, 19 + 21 + 16 + at);
            sendRaw(pair[0], big.retainedSlice(at, Math.min(999, big.readableBytes() - at)), new int[0]);
        }
        big.release();
        Object f4 = sink.next();
        assertThat(f4).isInstanceOf(BytesWithFds.class);
        assertThat(((BytesWithFds) f4).content().readableBytes()).isEqualTo(5016);
        assertThat(((BytesWithFds) f4).fds().size()).isEqualTo(2);
        ReferenceCountUtil.release(f4);
        Linux.close(pair[0]);
        sink.closed.get(TIMEOUT_S, TimeUnit.SECONDS);
        assertThat(sink.error.get()).isNull();
    }

    @Test
    void fdsThatDoNotStartTheirFrameCloseTheConnection() throws Exception {
        int[] pair = Linux.socketPair(true);
        Sink sink = new Sink();
        UnixChannel server = new UnixChannel(pair[1]);
        framePipeline(server, sink, 8);
        group.next().register(server).sync();
        channels.add(server);

        ByteBuf f = frame(1, 40);
        sendRaw(pair[0], f.retainedSlice(0, 24), new int[0]);
        awaitRaw(sink, 24);
        int fd = Linux.eventfd(0, 0);
        sendRaw(pair[0], f.retainedSlice(24, 32), new int[] {fd});
        f.release();
        Linux.close(fd);

        sink.closed.get(TIMEOUT_S, TimeUnit.SECONDS);
        assertThat(sink.error.get()).isInstanceOf(FdTransportException.class);
        assertThat(sink.frames).isEmpty();
        Linux.close(pair[0]);
    }

    @Test
    void moreFdsThanAllowedCloseTheConnectionAndTheFds() throws Exception {
        int[] pair = Linux.socketPair(true);
        Sink sink = new Sink();
        UnixChannel server = new UnixChannel(pair[1]);
        framePipeline(server, sink, 2);
        group.next().register(server).sync();
        channels.add(server);

        int[] fds = {Linux.eventfd(0, 0), Linux.eventfd(0, 0), Linux.eventfd(0, 0)};
        sendRaw(pair[0], frame(1, 0), fds);
        for (int fd : fds) {
            Linux.close(fd);
        }
        sink.closed.get(TIMEOUT_S, TimeUnit.SECONDS);
        assertThat(sink.error.get()).isInstanceOf(FdTransportException.class)
                .hasMessageContaining("3 fds");
        assertThat(sink.frames).isEmpty();
        Linux.close(pair[0]);
    }

    @Test
    void closeInMidFrameReleasesEverythingAndServerServesTheNextClient() throws Exception {
        BlockingQueue<Sink> sinks = new LinkedBlockingQueue<>();
        server("m.sock", sinks, 8);
        Channel bad = client("m.sock", new Sink());
        Sink badSink = sinks.poll(TIMEOUT_S, TimeUnit.SECONDS);
        ByteBuf f = frame(1, 100);
        int fd = Linux.eventfd(0, 0);
        bad.writeAndFlush(new BytesWithFds(f.retainedSlice(0, 50), FdSet.of(fd))).sync();
        f.release();
        awaitRaw(badSink, 50);
        bad.close().sync();
        badSink.closed.get(TIMEOUT_S, TimeUnit.SECONDS);
        assertThat(badSink.frames).isEmpty();

        Channel good = client("m.sock", new Sink());
        Sink goodSink = sinks.poll(TIMEOUT_S, TimeUnit.SECONDS);
        good.writeAndFlush(frame(7, 7)).sync();
        Object frame = goodSink.next();
        assertThat(idOf(frame)).isEqualTo(7);
        ReferenceCountUtil.release(frame);
    }

    @Test
    void socketFileIsPrivateAndRemovedOnClose() throws Exception {
        Channel server = server("perm.sock", new LinkedBlockingQueue<>(), 8);
        Path path = dir.resolve("perm.sock");
        assertThat(Files.getPosixFilePermissions(path))
                .containsExactlyInAnyOrder(PosixFilePermission.OWNER_READ, PosixFilePermission.OWNER_WRITE);
        server.close().sync();
        assertThat(path).doesNotExist();
    }

    @Test
    void adoptsAnAlreadyListeningSocket() throws Exception {
        String path = dir.resolve("inherited.sock").toString();
        int listening = Linux.socketUnix();
        Linux.bind(listening, path);
        Linux.listen(listening, 8);
        BlockingQueue<Sink> sinks = new LinkedBlockingQueue<>();
        Channel server = new ServerBootstrap().group(group)
                .channelFactory(() -> new UnixServerChannel(listening, new DomainSocketAddress(path)))
                .childHandler(new ChannelInitializer<UnixChannel>() {
                    @Override
                    protected void initChannel(UnixChannel ch) {
                        Sink sink = new Sink();
                        framePipeline(ch, sink, 8);
                        sinks.add(sink);
                    }
                })
                .register().sync().channel();
        channels.add(server);
        Channel client = client("inherited.sock", new Sink());
        client.writeAndFlush(frame(5, 1)).sync();
        Object f = sinks.poll(TIMEOUT_S, TimeUnit.SECONDS).next();
        assertThat(idOf(f)).isEqualTo(5);
        ReferenceCountUtil.release(f);
        server.close().sync();
        // Whoever created the socket file owns it.
        assertThat(Path.of(path)).exists();
        Files.delete(Path.of(path));
    }

    @Test
    void writabilityFollowsTheSocketAndNothingIsLostUnderBackpressure() throws Exception {
        int[] pair = Linux.socketPair(true);
        UnixChannel writer = new UnixChannel(pair[0]);
        writer.pipeline().addLast(new ChannelInboundHandlerAdapter());
        group.next().register(writer).sync();
        channels.add(writer);

        int chunk = 64 * 1024;
        long total = 0;
        int seq = 0;
        while (writer.isWritable() && total < (256L << 20)) {
            ByteBuf buf = Unpooled.directBuffer(chunk);
            for (int i = 0; i < chunk / 4; i++) {
                buf.writeInt(seq++);
            }
            writer.writeAndFlush(buf);
            total += chunk;
        }
        assertThat(writer.isWritable()).as("unwritable once the socket and the water mark are full").isFalse();

        // Drain with a plain reader and check order.
        long read = 0;
        int expect = 0;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment in = arena.allocate(chunk);
            MsgHdr hdr = new MsgHdr();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(TIMEOUT_S);
            int carry = 0;
            byte[] partial = new byte[4];
            while (read < total && System.nanoTime() < deadline) {
                hdr.iov(0, in.address(), chunk);
                hdr.prepareReceive(1);
                long n = Linux.recvmsg(pair[1], hdr);
                if (n < 0) {
                    Thread.sleep(1);
                    continue;
                }
                for (long i = 0; i < n; i++) {
                    partial[carry++] = in.get(ValueLayout.JAVA_BYTE, i);
                    if (carry == 4) {
                        int v = ((partial[0] & 0xff) << 24) | ((partial[1] & 0xff) << 16) | ((partial[2] & 0xff) << 8)
                                | (partial[3] & 0xff);
                        assertThat(v).isEqualTo(expect++);
                        carry = 0;
                    }
                }
                read += n;
            }
        }
        assertThat(read).isEqualTo(total);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(TIMEOUT_S);
        while (!writer.isWritable() && System.nanoTime() < deadline) {
            Thread.sleep(1);
        }
        assertThat(writer.isWritable()).isTrue();
        Linux.close(pair[1]);
    }

    private static void sendRaw(int fd, ByteBuf bytes, int[] fds) throws Exception {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment seg = arena.allocate(bytes.readableBytes());
            for (int i = 0; i < bytes.readableBytes(); i++) {
                seg.set(ValueLayout.JAVA_BYTE, i, bytes.getByte(bytes.readerIndex() + i));
            }
            MsgHdr hdr = new MsgHdr();
            hdr.iov(0, seg.address(), seg.byteSize());
            hdr.prepareSend(1, fds, fds.length);
            assertThat(Linux.sendmsg(fd, hdr)).isEqualTo(seg.byteSize());
        } finally {
            bytes.release();
        }
    }

    private static void awaitRaw(Sink sink, long bytes) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(TIMEOUT_S);
        while (sink.rawBytes.get() < bytes) {
            assertThat(System.nanoTime()).as("server read %d bytes", bytes).isLessThan(deadline);
            Thread.sleep(1);
        }
    }

}
