package io.vfiouser.benchmarks;

import io.netty.bootstrap.Bootstrap;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.epoll.EpollDomainSocketChannel;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.epoll.EpollServerDomainSocketChannel;
import io.netty.channel.unix.DomainSocketAddress;
import io.vfiouser.transport.UnixChannel;
import io.vfiouser.transport.UnixServerChannel;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Threads;
import org.openjdk.jmh.annotations.Warmup;

/**
 * 16-byte request/reply round trips per second over one {@code AF_UNIX} stream connection, through our
 * {@link UnixChannel}/{@link UnixServerChannel} ({@code transport=ours}) and through Netty's stock
 * {@link EpollDomainSocketChannel}/{@link EpollServerDomainSocketChannel} ({@code transport=stock}).
 *
 * <p><b>Set-up.</b> Both variants run on the same kind of event loop, a {@link MultiThreadIoEventLoopGroup} with
 * {@link EpollIoHandler}: one single-thread group serves the server (its listening socket and its one accepted
 * connection), another single-thread group serves the client. The server pipeline is one {@link EchoHandler}
 * that writes every inbound {@link ByteBuf} straight back and flushes on {@code channelReadComplete}; the client
 * pipeline is one {@link LoadHandler}. Channel options are Netty's defaults for both (the stock channels run in
 * their default edge-triggered mode, ours is level-triggered by design). Client and server are the same kind of
 * channel, so the figure covers both ends of the connection.
 *
 * <p><b>Measurement design.</b> The client's event-loop thread drives the load itself: {@link LoadHandler} puts
 * {@code depth} 16-byte requests in flight and, for every 16 bytes of reply it reads, sends the next 16-byte
 * request (written in {@code channelRead}, flushed once in {@code channelReadComplete}), until {@link #BATCH}
 * replies have arrived. One JMH invocation is one such batch; the benchmark thread only hands the batch to the
 * client loop and blocks on a {@link CompletableFuture} until the last reply is in, and
 * {@link OperationsPerInvocation} makes JMH report round trips per second. This keeps the benchmark thread out of
 * the per-request path: there is no cross-thread hand-off per round trip (which would add two wake-ups of
 * the benchmark thread per request and dominate the figure, in a way that depends on scheduling rather than on
 * the channel), and the one hand-off per batch is spread over {@value #BATCH} round trips. The client's work per
 * round trip (allocate a pooled direct 16-byte buffer, write, flush, read, release) is the same code for both
 * variants; only the channel classes differ.
 *
 * <p>{@code depth=1} is the closed loop at depth 1 (one request in flight: latency bound). {@code depth=8} keeps
 * eight requests in flight; replies then arrive coalesced, so one read and one write carry several messages.
 *
 * <p>Run it with JDK 25 and {@code --enable-native-access=ALL-UNNAMED}; see {@code docs/performance.md}.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Threads(1)
@Fork(value = 2, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "-Dio.netty.leakDetection.level=disabled"})
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
public class ChannelRoundTripBenchmark {
    /** Round trips per JMH invocation. */
    public static final int BATCH = 2000;
    /** Bytes per request and per reply. */
    public static final int MESSAGE = 16;

    @Param({"ours", "stock"})
    public String transport;

    /** Requests in flight on the connection. */
    @Param({"1", "8"})
    public int depth;

    /**
     * Where the two event-loop threads run: {@code any} leaves it to the scheduler (and to {@code taskset} on
     * the whole JVM), {@code split} pins the server's loop thread to CPU 0 and the client's to CPU 1 (with
     * {@code sched_setaffinity}), so every request and every reply crosses CPUs, {@code same} pins both to the
     * last CPU. Only these two threads are pinned; the rest of the JVM runs wherever the scheduler puts it.
     */
    @Param({"any"})
    public String placement;

    private Path dir;
    private EventLoopGroup serverGroup;
    private EventLoopGroup clientGroup;
    private Channel server;
    private Channel client;
    private LoadHandler load;

    @Setup(Level.Trial)
    public void setUp() throws Exception {
        dir = Files.createTempDirectory("vfu-rt");
        DomainSocketAddress address = new DomainSocketAddress(dir.resolve("echo.sock").toString());
        serverGroup = new MultiThreadIoEventLoopGroup(1, EpollIoHandler.newFactory());
        clientGroup = new MultiThreadIoEventLoopGroup(1, EpollIoHandler.newFactory());
        load = new LoadHandler();
        int lastCpu = Runtime.getRuntime().availableProcessors() - 1;
        switch (placement) {
            case "any" -> { }
            case "split" -> {
                Affinity.pin(serverGroup, 0);
                Affinity.pin(clientGroup, Math.min(1, lastCpu));
            }
            case "same" -> {
                Affinity.pin(serverGroup, lastCpu);
                Affinity.pin(clientGroup, lastCpu);
            }
            default -> throw new IllegalArgumentException("placement: " + placement);
        }
        ServerBootstrap sb = new ServerBootstrap().group(serverGroup).childHandler(new EchoHandler());
        Bootstrap cb = new Bootstrap().group(clientGroup).handler(new ChannelInitializer<Channel>() {
            @Override
            protected void initChannel(Channel ch) {
                ch.pipeline().addLast(load);
            }
        });
        switch (transport) {
            case "ours" -> {
                sb.channelFactory(() -> new UnixServerChannel());
                cb.channelFactory(UnixChannel::new);
            }
            case "stock" -> {
                sb.channel(EpollServerDomainSocketChannel.class);
                cb.channel(EpollDomainSocketChannel.class);
            }
            default -> throw new IllegalArgumentException("transport: " + transport);
        }
        server = sb.bind(address).sync().channel();
        client = cb.connect(address).sync().channel();
        // A first small batch checks the echo path before JMH starts timing.
        load.start(client, 10, depth).get(10, TimeUnit.SECONDS);
    }

    @TearDown(Level.Trial)
    public void tearDown() throws Exception {
        if (client != null) {
            client.close().sync();
        }
        if (server != null) {
            server.close().sync();
        }
        if (clientGroup != null) {
            clientGroup.shutdownGracefully(0, 1, TimeUnit.SECONDS).sync();
        }
        if (serverGroup != null) {
            serverGroup.shutdownGracefully(0, 1, TimeUnit.SECONDS).sync();
        }
        deleteQuietly(dir);
    }

    private static void deleteQuietly(Path dir) throws IOException {
        if (dir == null) {
            return;
        }
        try (var files = Files.list(dir)) {
            for (Path p : (Iterable<Path>) files::iterator) {
                Files.deleteIfExists(p);
            }
        }
        Files.deleteIfExists(dir);
    }

    /** {@value #BATCH} request/reply round trips of {@value #MESSAGE} bytes each. */
    @Benchmark
    @OperationsPerInvocation(BATCH)
    public long roundTrips() throws Exception {
        return load.start(client, BATCH, depth).get(30, TimeUnit.SECONDS);
    }

    /** Server side: every inbound buffer goes straight back; one flush per read burst. */
    @ChannelHandler.Sharable
    static final class EchoHandler extends ChannelInboundHandlerAdapter {
        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            ctx.write(msg, ctx.voidPromise());
        }

        @Override
        public void channelReadComplete(ChannelHandlerContext ctx) {
            ctx.flush();
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            ctx.close();
        }
    }

    /**
     * Client side: runs a batch of closed-loop round trips on the client's event loop. State is touched only on
     * that loop; {@link #start} hands a batch over with one task.
     */
    @ChannelHandler.Sharable
    static final class LoadHandler extends ChannelInboundHandlerAdapter {
        private long target;
        private long sent;
        private long receivedBytes;
        private CompletableFuture<Long> done;

        CompletableFuture<Long> start(Channel ch, long count, int depth) {
            CompletableFuture<Long> f = new CompletableFuture<>();
            ch.eventLoop().execute(() -> {
                if (done != null) {
                    f.completeExceptionally(new IllegalStateException("a batch is running"));
                    return;
                }
                done = f;
                target = count;
                sent = 0;
                receivedBytes = 0;
                ChannelHandlerContext ctx = ch.pipeline().context(this);
                for (int i = 0; i < depth && sent < target; i++) {
                    send(ctx);
                }
                ctx.flush();
            });
            return f;
        }

        private void send(ChannelHandlerContext ctx) {
            ByteBuf req = ctx.alloc().directBuffer(MESSAGE, MESSAGE);
            req.writeLong(sent).writeLong(~sent);
            sent++;
            ctx.write(req, ctx.voidPromise());
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            ByteBuf buf = (ByteBuf) msg;
            long before = receivedBytes / MESSAGE;
            receivedBytes += buf.readableBytes();
            buf.release();
            long replies = receivedBytes / MESSAGE - before;
            for (long i = 0; i < replies && sent < target; i++) {
                send(ctx);
            }
        }

        @Override
        public void channelReadComplete(ChannelHandlerContext ctx) {
            ctx.flush();
            if (done != null && receivedBytes >= target * MESSAGE) {
                CompletableFuture<Long> f = done;
                done = null;
                f.complete(receivedBytes / MESSAGE);
            }
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            CompletableFuture<Long> f = done;
            done = null;
            if (f != null) {
                f.completeExceptionally(cause);
            }
            ctx.close();
        }

        @Override
        public void channelInactive(ChannelHandlerContext ctx) {
            exceptionCaught(ctx, new IOException("connection closed"));
        }
    }
}
