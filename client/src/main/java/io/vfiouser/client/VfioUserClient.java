package io.vfiouser.client;

import io.netty.bootstrap.Bootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelPipeline;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.unix.DomainSocketAddress;
import io.netty.util.ReferenceCountUtil;
import io.vfiouser.codec.DmaLayout;
import io.vfiouser.codec.VfioUserCapabilities;
import io.vfiouser.codec.VfioUserCommand;
import io.vfiouser.codec.VfioUserFrameDecoder;
import io.vfiouser.codec.VfioUserHeader;
import io.vfiouser.codec.VfioUserInvalidMessage;
import io.vfiouser.codec.VfioUserMessage;
import io.vfiouser.codec.VfioUserMessageDecoder;
import io.vfiouser.codec.VfioUserMessageEncoder;
import io.vfiouser.codec.payload.DmaAccess;
import io.vfiouser.codec.payload.VersionPayload;
import io.vfiouser.codec.payload.VfioUserPayload;
import io.vfiouser.transport.BytesWithFds;
import io.vfiouser.transport.FdSet;
import io.vfiouser.transport.UnixChannel;
import io.vfiouser.transport.linux.Errno;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.channels.ClosedChannelException;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.Iterator;
import java.util.List;
import java.util.OptionalInt;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

/**
 * An asynchronous vfio-user client over the project's fd-carrying channel: the test driver of this project and a
 * tool for device authors who want to exercise a device without a VMM.
 *
 * <p>{@link #connect(Path)} connects and negotiates; {@link #send} sends any command, with fds, and completes with
 * the server's reply (success or error reply alike; the caller releases it); {@link #call} does the same but turns
 * an error reply into a {@link VfioUserErrorReplyException}. Replies are matched to commands by id, oldest first,
 * as QEMU does. Server-issued DMA_READ and DMA_WRITE commands are answered from the {@link GuestMemory} regions
 * registered with {@link #serveDma(GuestMemory)}, on the main socket or, when the client asked for one
 * ({@link ClientOptions#twinSocket()}) and the server passed it with its VERSION reply, on the twin socket.
 */
public final class VfioUserClient implements AutoCloseable {
    private static final Logger LOG = LogManager.getLogger(VfioUserClient.class);
    private static final long TIMEOUT_S = 30;

    private final Channel channel;
    private final EventLoopGroup ownedGroup;
    private final ClientOptions options;
    private final AtomicInteger ids = new AtomicInteger();
    /** Commands waiting for their reply, oldest first; touched on the channel's event loop only. */
    private final ArrayDeque<Pending> pending = new ArrayDeque<>();
    private final List<GuestMemory> dmaMemory = new CopyOnWriteArrayList<>();
    private final List<VfioUserInvalidMessage> unexpected = new CopyOnWriteArrayList<>();
    private volatile VfioUserCapabilities serverCapabilities;
    private volatile int serverMinor;
    /** The twin socket the server passed with its VERSION reply, or null. */
    private volatile Channel twin;
    private final AtomicLong requestsAnswered = new AtomicLong();
    private final AtomicLong requestsAnsweredOnTwin = new AtomicLong();
    /** While set, the server's requests wait in {@link #held}, unanswered; on the event loop only. */
    private boolean holding;
    private final ArrayDeque<HeldRequest> held = new ArrayDeque<>();

    private record HeldRequest(ChannelHandlerContext ctx, VfioUserMessage command, boolean onTwin) {
    }

    private record Pending(int id, CompletableFuture<VfioUserMessage> reply) {
    }

    private VfioUserClient(Channel channel, EventLoopGroup ownedGroup, ClientOptions options) {
        this.channel = channel;
        this.ownedGroup = ownedGroup;
        this.options = options;
    }

    /** Connects to {@code socket} on an event loop of its own and negotiates with the default options. */
    public static VfioUserClient connect(Path socket) throws Exception {
        return connect(socket, ClientOptions.DEFAULT);
    }

    /** Connects to {@code socket} on an event loop of its own and, unless told otherwise, negotiates. */
    public static VfioUserClient connect(Path socket, ClientOptions options) throws Exception {
        EventLoopGroup group = new MultiThreadIoEventLoopGroup(1, EpollIoHandler.newFactory());
        try {
            return connect(group, socket, options, true);
        } catch (Exception | Error e) {
            group.shutdownGracefully(0, 1, TimeUnit.SECONDS);
            throw e;
        }
    }

    /** Connects on a shared epoll event-loop group (which the caller keeps) and, unless told otherwise, negotiates. */
    public static VfioUserClient connect(EventLoopGroup group, Path socket, ClientOptions options) throws Exception {
        return connect(group, socket, options, false);
    }

    private static VfioUserClient connect(EventLoopGroup group, Path socket, ClientOptions options, boolean ownsGroup)
            throws Exception {
        VfioUserClient[] self = new VfioUserClient[1];
        Channel ch = new Bootstrap().group(group)
                .channelFactory(UnixChannel::new)
                .handler(new ChannelInitializer<UnixChannel>() {
                    @Override
                    protected void initChannel(UnixChannel c) {
                        c.attr(DmaLayout.ATTRIBUTE).set(options.dmaLayout());
                        ChannelPipeline p = c.pipeline();
                        p.addLast("frames", new VfioUserFrameDecoder(
                                VfioUserFrameDecoder.maxMessageSizeFor(options.maxDataTransferSize()),
                                options.maxMsgFds()));
                        p.addLast("decoder", new VfioUserMessageDecoder(options.dmaLayout()));
                        p.addLast("encoder", VfioUserMessageEncoder.INSTANCE);
                        p.addLast("client", new Handler(() -> self[0]));
                    }
                })
                .connect(new DomainSocketAddress(socket.toString())).sync().channel();
        VfioUserClient client = new VfioUserClient(ch, ownsGroup ? group : null, options);
        self[0] = client;
        if (options.negotiate()) {
            try {
                client.negotiate().get(TIMEOUT_S, TimeUnit.SECONDS);
            } catch (Exception e) {
                client.close();
                throw e;
            }
        }
        return client;
    }

    /** The capabilities this client announces. */
    public VfioUserCapabilities capabilities() {
        VfioUserCapabilities.Builder caps = VfioUserCapabilities.builder()
                .maxMsgFds(options.maxMsgFds())
                .maxDataXferSize(options.maxDataTransferSize())
                .pgsizes(VfioUserCapabilities.DEFAULT_PGSIZES)
                .maxDmaMaps(VfioUserCapabilities.DEFAULT_MAX_DMA_MAPS);
        if (options.twinSocket()) {
            caps.twinSocket(new VfioUserCapabilities.TwinSocket(true, OptionalInt.empty()));
        }
        return caps.build();
    }

    /**
     * Sends VERSION 0.{@code minor} with {@link #capabilities()} and records the server's answer. When this client
     * asked for a twin socket and the server's reply names one ({@code twin_socket.fd_index}), the client takes
     * that fd and answers the server's requests arriving on it; a reply that names an fd it did not carry fails.
     */
    public CompletableFuture<VfioUserCapabilities> negotiate() {
        return call(VfioUserCommand.VERSION, VersionPayload.of(0, options.minor(), capabilities()))
                .thenApply(reply -> {
                    try {
                        VersionPayload v = reply.payload(VersionPayload.class);
                        VfioUserCapabilities caps = VfioUserCapabilities.parse(v.json(),
                                VfioUserCapabilities.SPEC_DEFAULT_MAX_MSG_FDS);
                        serverMinor = v.minor();
                        serverCapabilities = caps;
                        VfioUserCapabilities.TwinSocket granted = caps.twinSocket();
                        if (options.twinSocket() && granted != null && granted.supported()
                                && granted.fdIndex().isPresent()) {
                            int index = granted.fdIndex().getAsInt();
                            if (index >= reply.fds().size()) {
                                throw new IllegalStateException("the server's twin_socket.fd_index " + index
                                        + " names no fd of its VERSION reply (" + reply.fds().size() + " fds)");
                            }
                            openTwin(reply.fds().take(index));
                        }
                        return caps;
                    } finally {
                        reply.release(); // closes any fd not taken
                    }
                });
    }

    /** Adopts the client end of the twin socket (owned from here on) on this client's event loop. */
    private void openTwin(int fd) {
        UnixChannel c;
        try {
            c = new UnixChannel(fd);
        } catch (RuntimeException e) {
            FdSet.closeQuietly(fd);
            throw e;
        }
        c.attr(DmaLayout.ATTRIBUTE).set(options.dmaLayout());
        ChannelPipeline p = c.pipeline();
        // The twin carries the server's requests and our replies only: no fds belong on it.
        p.addLast("frames", new VfioUserFrameDecoder(
                VfioUserFrameDecoder.maxMessageSizeFor(options.maxDataTransferSize()), 0));
        p.addLast("decoder", new VfioUserMessageDecoder(options.dmaLayout()));
        p.addLast("encoder", VfioUserMessageEncoder.INSTANCE);
        p.addLast("twin", new TwinHandler(this));
        twin = c;
        channel.eventLoop().register(c).addListener(f -> {
            if (!f.isSuccess()) {
                LOG.warn("cannot register the twin socket: {}", f.cause().toString());
                c.close();
            }
        });
    }

    /** The twin socket the server passed, or null if none was negotiated. */
    public Channel twinChannel() {
        return twin;
    }

    /** How many of the server's own requests (DMA_READ/DMA_WRITE) this client answered, on either socket. */
    public long serverRequestsAnswered() {
        return requestsAnswered.get();
    }

    /**
     * Holds the server's requests unanswered from now on ({@code true}), or answers those held, in arrival order,
     * and the later ones at once ({@code false}): a client that is slow to answer, for tests. Takes effect before
     * this returns. Requests still held when the client closes are dropped unanswered.
     */
    public void holdServerRequests(boolean hold) {
        channel.eventLoop().submit(() -> {
            holding = hold;
            HeldRequest r;
            while (!holding && (r = held.pollFirst()) != null) {
                onServerCommand(r.ctx(), r.command(), r.onTwin());
            }
        }).syncUninterruptibly();
    }

    /** How many of {@link #serverRequestsAnswered()} came on the twin socket. */
    public long serverRequestsAnsweredOnTwin() {
        return requestsAnsweredOnTwin.get();
    }

    /** What the server announced, or null before negotiation. */
    public VfioUserCapabilities serverCapabilities() {
        return serverCapabilities;
    }

    public int serverMinor() {
        return serverMinor;
    }

    /** The channel under the client, for tests that need to go below the protocol. */
    public Channel channel() {
        return channel;
    }

    /** Sends a command that expects a reply; completes with the reply (error replies included). */
    public CompletableFuture<VfioUserMessage> send(VfioUserCommand command, VfioUserPayload payload) {
        return send(command, payload, FdSet.EMPTY);
    }

    /**
     * Sends a command with {@code fds} and completes with the reply. The message takes the set over and closes its
     * fds once they are sent (or when sending fails): pass {@link FdSet#ofDuplicates} of fds you keep using, such as
     * the eventfds of SET_IRQS that you read to see interrupts, and {@link FdSet#of} only of fds you hand over.
     */
    public CompletableFuture<VfioUserMessage> send(VfioUserCommand command, VfioUserPayload payload, FdSet fds) {
        int id = nextId();
        return sendAndAwait(id, VfioUserMessage.command(id, command, payload, fds));
    }

    /**
     * Sends a command and completes with its successful reply; an error reply completes exceptionally with a
     * {@link VfioUserErrorReplyException}. The caller releases the reply.
     */
    public CompletableFuture<VfioUserMessage> call(VfioUserCommand command, VfioUserPayload payload) {
        return call(command, payload, FdSet.EMPTY);
    }

    public CompletableFuture<VfioUserMessage> call(VfioUserCommand command, VfioUserPayload payload, FdSet fds) {
        return send(command, payload, fds).thenApply(VfioUserClient::successOrThrow);
    }

    /** Sends a command with the NO_REPLY flag; completes when it has been written. */
    public CompletableFuture<Void> sendNoReply(VfioUserCommand command, VfioUserPayload payload) {
        CompletableFuture<Void> written = new CompletableFuture<>();
        channel.writeAndFlush(VfioUserMessage.commandNoReply(nextId(), command, payload))
                .addListener(f -> complete(written, f.cause()));
        return written;
    }

    /**
     * Sends raw bytes (with fds) as they are, for tests that misbehave on purpose; completes with the next reply
     * carrying {@code expectedReplyId}, if one is expected ({@code expectedReplyId < 0}: none).
     */
    public CompletableFuture<VfioUserMessage> sendRaw(ByteBuf bytes, FdSet fds, int expectedReplyId) {
        Object out = fds.isEmpty() ? bytes : new BytesWithFds(bytes, fds);
        if (expectedReplyId < 0) {
            CompletableFuture<VfioUserMessage> written = new CompletableFuture<>();
            channel.writeAndFlush(out).addListener(f -> {
                if (f.isSuccess()) {
                    written.complete(null);
                } else {
                    written.completeExceptionally(f.cause());
                }
            });
            return written;
        }
        return await(expectedReplyId, out);
    }

    /** A fresh message id (the id space wraps at 2^16, as on the wire). */
    public int nextId() {
        return ids.getAndIncrement() & 0xFFFF;
    }

    private CompletableFuture<VfioUserMessage> sendAndAwait(int id, VfioUserMessage message) {
        return await(id, message);
    }

    private CompletableFuture<VfioUserMessage> await(int id, Object message) {
        CompletableFuture<VfioUserMessage> reply = new CompletableFuture<>();
        channel.eventLoop().execute(() -> {
            if (!channel.isActive()) {
                ReferenceCountUtil.release(message);
                reply.completeExceptionally(new ClosedChannelException());
                return;
            }
            pending.addLast(new Pending(id, reply));
            channel.writeAndFlush(message).addListener(f -> {
                if (!f.isSuccess()) {
                    pending.removeIf(p -> p.reply == reply);
                    reply.completeExceptionally(f.cause());
                }
            });
        });
        return reply;
    }

    private static VfioUserMessage successOrThrow(VfioUserMessage reply) {
        if (reply.header().isError()) {
            VfioUserErrorReplyException e = new VfioUserErrorReplyException(reply.header());
            reply.release();
            throw e;
        }
        return reply;
    }

    private static void complete(CompletableFuture<Void> future, Throwable cause) {
        if (cause == null) {
            future.complete(null);
        } else {
            future.completeExceptionally(cause);
        }
    }

    /** Answers the server's DMA_READ/DMA_WRITE for addresses inside {@code memory} from now on. */
    public void serveDma(GuestMemory memory) {
        dmaMemory.add(memory);
    }

    /** Invalid messages the server sent (they are kept, released on close), for tests. */
    public List<VfioUserInvalidMessage> unexpectedMessages() {
        return List.copyOf(unexpected);
    }

    /** Completes when the connection is closed, by either side. */
    public CompletableFuture<Void> closeFuture() {
        CompletableFuture<Void> closed = new CompletableFuture<>();
        channel.closeFuture().addListener(f -> closed.complete(null));
        return closed;
    }

    public boolean isOpen() {
        return channel.isActive();
    }

    /** Closes the connection and its twin socket (pending commands fail) and the event loop the client created. */
    @Override
    public void close() {
        channel.close().syncUninterruptibly();
        Channel t = twin;
        if (t != null) {
            t.close().syncUninterruptibly();
        }
        channel.eventLoop().submit(() -> {
            HeldRequest r;
            while ((r = held.pollFirst()) != null) {
                r.command().release();
            }
        }).awaitUninterruptibly();
        if (ownedGroup != null) {
            ownedGroup.shutdownGracefully(0, 1, TimeUnit.SECONDS).syncUninterruptibly();
        }
        for (VfioUserInvalidMessage m : unexpected) {
            ReferenceCountUtil.safeRelease(m);
        }
        unexpected.clear();
    }

    // ----------------------------------------------------------------------------------------- inbound side

    private void onReply(VfioUserMessage reply) {
        int id = reply.header().msgId();
        for (Iterator<Pending> it = pending.iterator(); it.hasNext(); ) {
            Pending p = it.next();
            if (p.id == id) {
                it.remove();
                if (!p.reply.complete(reply)) {
                    reply.release();
                }
                return;
            }
        }
        LOG.warn("reply {} matches no command in flight", reply.header());
        reply.release();
    }

    private void onServerCommand(ChannelHandlerContext ctx, VfioUserMessage command, boolean onTwin) {
        if (holding) {
            held.addLast(new HeldRequest(ctx, command, onTwin));
            return;
        }
        VfioUserHeader header = command.header();
        requestsAnswered.incrementAndGet();
        if (onTwin) {
            requestsAnsweredOnTwin.incrementAndGet();
        }
        try {
            VfioUserMessage answer = switch (command.command()) {
                case DMA_READ -> dmaRead(header, command.payload(DmaAccess.class));
                case DMA_WRITE -> dmaWrite(header, command.payload(DmaAccess.class));
                case null, default -> VfioUserMessage.errorReply(header, Errno.ENOSYS);
            };
            if (header.isNoReply()) {
                answer.release();
            } else {
                ctx.writeAndFlush(answer);
            }
        } finally {
            command.release();
        }
    }

    private GuestMemory memoryFor(long address, long count) {
        for (GuestMemory m : dmaMemory) {
            if (m.contains(address, count)) {
                return m;
            }
        }
        return null;
    }

    private VfioUserMessage dmaRead(VfioUserHeader header, DmaAccess request) {
        GuestMemory memory = memoryFor(request.address(), request.count());
        if (memory == null || request.count() > options.maxDataTransferSize()) {
            return VfioUserMessage.errorReply(header, memory == null ? Errno.EFAULT : Errno.E2BIG);
        }
        int count = (int) request.count();
        ByteBuf data = channel.alloc().buffer(count);
        MemorySegment from = memory.at(request.address(), count);
        for (int i = 0; i < count; i++) {
            data.writeByte(from.get(ValueLayout.JAVA_BYTE, i));
        }
        return VfioUserMessage.reply(header, DmaAccess.withData(request.address(), data));
    }

    private VfioUserMessage dmaWrite(VfioUserHeader header, DmaAccess request) {
        ByteBuf data = request.data();
        int count = data.readableBytes();
        GuestMemory memory = memoryFor(request.address(), count);
        if (memory == null) {
            return VfioUserMessage.errorReply(header, Errno.EFAULT);
        }
        MemorySegment to = memory.at(request.address(), count);
        for (int i = 0; i < count; i++) {
            to.set(ValueLayout.JAVA_BYTE, i, data.getByte(data.readerIndex() + i));
        }
        return VfioUserMessage.reply(header, DmaAccess.of(request.address(), count));
    }

    private void failPending(Throwable cause) {
        Pending p;
        while ((p = pending.pollFirst()) != null) {
            p.reply.completeExceptionally(cause);
        }
    }

    private static final class Handler extends ChannelInboundHandlerAdapter {
        private final java.util.function.Supplier<VfioUserClient> client;

        Handler(java.util.function.Supplier<VfioUserClient> client) {
            this.client = client;
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            VfioUserClient c = client.get();
            if (c == null) {
                ReferenceCountUtil.release(msg);
                return;
            }
            if (msg instanceof VfioUserMessage m) {
                if (m.header().isReply()) {
                    c.onReply(m);
                } else {
                    c.onServerCommand(ctx, m, false);
                }
            } else if (msg instanceof VfioUserInvalidMessage invalid) {
                LOG.debug("invalid message from the server: {} ({})", invalid.header(), invalid.reason());
                VfioUserHeader h = invalid.header();
                if (h.isReply()) {
                    // A reply we cannot decode still answers its command: as the server's error, or as EPROTO.
                    c.onReply(VfioUserMessage.errorReply(h.msgId(), h.command(),
                            h.isError() && h.error() > 0 ? h.error() : Errno.EPROTO));
                    invalid.release();
                } else {
                    c.unexpected.add(invalid);
                }
            } else {
                ReferenceCountUtil.release(msg);
            }
        }

        @Override
        public void channelInactive(ChannelHandlerContext ctx) throws Exception {
            VfioUserClient c = client.get();
            if (c != null) {
                c.failPending(new ClosedChannelException());
            }
            super.channelInactive(ctx);
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            LOG.warn("closing the connection: {}", cause.toString());
            ctx.close();
        }
    }

    /**
     * The client end of the twin socket: the server's requests are answered here, on this socket; a reply has no
     * business on it (the client sends no commands there) and is dropped.
     */
    private static final class TwinHandler extends ChannelInboundHandlerAdapter {
        private final VfioUserClient client;

        TwinHandler(VfioUserClient client) {
            this.client = client;
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            if (msg instanceof VfioUserMessage m && m.header().isCommand()) {
                client.onServerCommand(ctx, m, true);
                return;
            }
            LOG.warn("unexpected {} on the twin socket", msg);
            ReferenceCountUtil.release(msg);
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            LOG.warn("closing the twin socket: {}", cause.toString());
            ctx.close();
        }
    }
}
