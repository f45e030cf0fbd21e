package io.vfiouser.server;

import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.ReferenceCounted;
import io.vfiouser.codec.VfioUserCapabilities;
import io.vfiouser.codec.VfioUserCommand;
import io.vfiouser.codec.VfioUserFramingException;
import io.vfiouser.codec.VfioUserHeader;
import io.vfiouser.codec.VfioUserInvalidMessage;
import io.vfiouser.codec.VfioUserMessage;
import io.vfiouser.codec.VfioUserProtocolException;
import io.vfiouser.codec.message.DmaAccess;
import io.vfiouser.codec.message.VersionPayload;
import io.vfiouser.device.ResetReason;
import io.vfiouser.device.VfioUserDevice;
import io.vfiouser.server.dma.DmaMessenger;
import io.vfiouser.server.dma.DmaTable;
import io.vfiouser.server.dma.ServerDmaSpace;
import io.vfiouser.server.irq.IrqTable;
import io.vfiouser.transport.FdBudget;
import io.vfiouser.transport.linux.Errno;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import org.apache.logging.log4j.Logger;

/**
 * One client's conversation with one device.
 *
 * <p><b>Order.</b> Client commands take effect strictly in arrival order and their replies go out in that order,
 * even though device handlers are asynchronous: commands wait in a queue and the next one starts when the one
 * before it has completed. A command that completes at once is answered at once, without touching the queue's
 * slow path. Replies from the client to the server's own DMA_READ/DMA_WRITE do not queue: they complete the
 * waiting request by id, so a device waiting for DMA never blocks the command stream (digest 1.6).
 *
 * <p><b>Errors.</b> Every failure becomes a header-only error reply with the errno {@link Errors} assigns; a
 * NO_REPLY command never gets a reply. Where the stream cannot be trusted (framing lost, fds out of place, a bad
 * first message) the connection closes.
 *
 * <p><b>Ownership.</b> Every inbound message is released once it has been handled, which closes the fds nobody
 * took. When the client goes, its DMA mappings and interrupt eventfds go with it and the device is reset with
 * {@link ResetReason#LOST_CONNECTION}; the device's state otherwise stays for the next client.
 */
final class VfioUserSession extends ChannelInboundHandlerAdapter implements DmaMessenger {
    /** The newest protocol minor version the server speaks; a client gets {@code min(its minor, ours)}. */
    static final int OUR_MINOR = 2;

    private enum State { AWAITING_VERSION, NEGOTIATED, CLOSED }

    private final DeviceRuntime runtime;
    private final ServerOptions options;
    private final Logger log;
    /** This connection's share of the device's log budget: every line the client can cause goes through it. */
    private final RateLimitedLog.Connection warnings;
    private final ArrayDeque<ReferenceCounted> queue = new ArrayDeque<>();
    private final Map<Integer, PendingDma> serverRequests = new HashMap<>();
    private final IrqTable irqs;
    private final DmaTable dmaTable;
    /** The fds this client makes the server hold, against {@link ConnectionLimits#maxClientFds()}. */
    private final FdBudget fdBudget;
    private final ServerDmaSpace dmaSpace;
    private final RegionRouter regions;
    private final CommandDispatcher dispatcher;
    private final SessionMigration migration;
    private IoEventFds ioEventFds;
    private ChannelHandlerContext ctx;
    private State state = State.AWAITING_VERSION;
    private VfioUserCapabilities client;
    /** A command is being handled (its future has not completed yet). */
    private boolean busy;
    /** Bytes ({@code msg_size}) and fds of the commands waiting in {@link #queue}. */
    private long queuedBytes;
    private int queuedFds;
    /** The queue went over one of its budgets and has not yet come back to an eighth of all of them. */
    private boolean queueFull;
    /** The previous client's teardown is not over yet. */
    private boolean awaitingTeardown;
    /** Whether this session switched auto-read off (the one place that decides it: {@link #updateReading}). */
    private boolean readingPaused;
    private boolean flushPending;
    private boolean flrPending;
    /** The reason the connection closes has been logged once. */
    private boolean closeLogged;
    private int nextServerId;
    /** Closes the connection if VERSION has not completed in time; null once negotiated or closed. */
    private io.netty.util.concurrent.ScheduledFuture<?> negotiationDeadline;

    private record PendingDma(CompletableFuture<VfioUserMessage> reply) {
    }

    /** Completes when the previous client's teardown is over; this session reads nothing before. */
    private final CompletableFuture<Void> ready;
    /** Completes when this session's own teardown (device reset after the client left) is over. */
    private final CompletableFuture<Void> teardown = new CompletableFuture<>();

    VfioUserSession(DeviceRuntime runtime, ServerOptions options, CompletableFuture<Void> previousTeardown) {
        this.ready = previousTeardown;
        this.runtime = runtime;
        this.options = options;
        this.log = runtime.log();
        this.warnings = runtime.warnings().connection();
        // One budget for every fd the client makes the server hold (mapping fds, interrupt eventfds).
        this.fdBudget = new FdBudget(options.limits().clientFdLimit(ProcessFds.softLimit()));
        this.irqs = new IrqTable(runtime.description(), new IrqEvents(), fdBudget, runtime.irqGuard());
        this.dmaTable = new DmaTable(new DmaListener(runtime), options.limits().maxDmaMappings(), fdBudget);
        this.dmaSpace = new ServerDmaSpace(dmaTable, this, io.vfiouser.server.dma.DirtyLog.NONE,
                options.dmaSegments());
        this.regions = new RegionRouter(runtime, irqs, options.maxDataTransferSize());
        this.migration = new SessionMigration(this);
        this.dispatcher = new CommandDispatcher(this);
    }

    // ----------------------------------------------------------------------------------------- accessors

    DeviceRuntime runtime() {
        return runtime;
    }

    ServerOptions options() {
        return options;
    }

    Logger log() {
        return log;
    }

    IrqTable irqs() {
        return irqs;
    }

    DmaTable dmaTable() {
        return dmaTable;
    }

    ServerDmaSpace dmaSpace() {
        return dmaSpace;
    }

    RegionRouter regions() {
        return regions;
    }

    SessionMigration migration() {
        return migration;
    }

    IoEventFds ioEventFds() {
        return ioEventFds;
    }

    ChannelHandlerContext context() {
        return ctx;
    }

    // ---------------------------------------------------------------------------------------- lifecycle

    @Override
    public void handlerAdded(ChannelHandlerContext ctx) {
        this.ctx = ctx;
    }

    /** Completes when the device is ready for the next client after this one. */
    CompletableFuture<Void> teardown() {
        return teardown;
    }

    @Override
    public void channelActive(ChannelHandlerContext ctx) throws Exception {
        warnings.info("{}: client attached", runtime.name());
        if (!ready.isDone()) {
            // The previous client's device reset is still running: read nothing until it is over.
            awaitingTeardown = true;
            updateReading();
            ready.whenComplete((ok, err) -> ctx.executor().execute(() -> {
                awaitingTeardown = false;
                updateReading();
                startNegotiationDeadline();
            }));
        } else {
            startNegotiationDeadline();
        }
        super.channelActive(ctx);
    }

    /**
     * From the moment the session reads, the client has {@link ConnectionLimits#negotiationTimeout()} to complete
     * VERSION; otherwise it is disconnected, so a connection that never negotiates cannot keep the device from
     * the next client (QEMU sends VERSION at once).
     */
    private void startNegotiationDeadline() {
        if (state != State.AWAITING_VERSION) {
            return;
        }
        java.time.Duration timeout = options.limits().negotiationTimeout();
        negotiationDeadline = ctx.executor().schedule(() -> {
            negotiationDeadline = null;
            if (state == State.AWAITING_VERSION && ctx.channel().isOpen()) {
                warnings.warn("{}: the client did not negotiate within {}; disconnecting it", runtime.name(), timeout);
                ctx.close();
            }
        }, timeout.toNanos(), java.util.concurrent.TimeUnit.NANOSECONDS);
    }

    private void cancelNegotiationDeadline() {
        io.netty.util.concurrent.ScheduledFuture<?> deadline = negotiationDeadline;
        if (deadline != null) {
            negotiationDeadline = null;
            deadline.cancel(false);
        }
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) throws Exception {
        cancelNegotiationDeadline();
        State was = state;
        state = State.CLOSED;
        ReferenceCounted item;
        while ((item = queue.pollFirst()) != null) {
            ReferenceCountUtil.safeRelease(item);
        }
        queuedBytes = 0;
        queuedFds = 0;
        ClosedChannelException gone = new ClosedChannelException();
        for (PendingDma p : serverRequests.values()) {
            p.reply().completeExceptionally(gone);
        }
        serverRequests.clear();
        if (was == State.NEGOTIATED) {
            lostConnection();
        } else {
            irqs.clear();
            dmaTable.clear();
            teardown.complete(null);
        }
        if (ioEventFds != null) {
            ioEventFds.close();
        }
        if (resample != null) {
            resample.close();
            resample = null;
        }
        runtime.detach(this);
        warnings.info("{}: client detached", runtime.name());
        super.channelInactive(ctx);
    }

    /**
     * The client is gone: quiesce, drop its DMA mappings and eventfds, reset the device with reason
     * LOST_CONNECTION (digest 4.6). The device's other state stays for the next client.
     */
    private void lostConnection() {
        CompletableFuture<Void> quiesced;
        try {
            quiesced = runtime.device().quiesce();
        } catch (RuntimeException e) {
            quiesced = CompletableFuture.failedFuture(e);
        }
        quiesced.handle((ok, err) -> {
            dmaTable.clear();
            irqs.clear();
            try {
                return runtime.device().reset(ResetReason.LOST_CONNECTION);
            } catch (RuntimeException e) {
                return CompletableFuture.<Void>failedFuture(e);
            }
        }).thenCompose(f -> f).handle((ok, err) -> {
            if (err != null) {
                warnings.warn("{}: reset after the client left failed", runtime.name(), err);
            }
            return migration.afterReset();
        }).thenCompose(f -> f).whenComplete((ok, err) -> {
            if (err != null) {
                warnings.warn("{}: reset after the client left failed", runtime.name(), err);
            }
            try {
                runtime.device().detached();
            } catch (RuntimeException e) {
                warnings.warn("{}: detached() failed", runtime.name(), e);
            }
            teardown.complete(null);
        });
    }

    // ------------------------------------------------------------------------------------------ inbound

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
        if (state == State.CLOSED) {
            ReferenceCountUtil.release(msg);
            return;
        }
        if (msg instanceof VfioUserMessage message) {
            trace("<-", message);
            VfioUserHeader header = message.header();
            if (header.isCommand()) {
                runtime.stats().command(header.command());
            }
            if (header.isReply() && serverRequests.containsKey(header.msgId())) {
                serverRequests.remove(header.msgId()).reply().complete(message);
                updateReading();
                return;
            }
            if (state == State.AWAITING_VERSION) {
                try {
                    negotiate(message);
                } finally {
                    message.release();
                }
                return;
            }
        } else if (msg instanceof VfioUserInvalidMessage invalid) {
            log.debug("{}: invalid message {}: {}", runtime.name(), invalid.header(), LogText.escape(invalid.reason()));
            traceInvalid(invalid);
            VfioUserHeader header = invalid.header();
            if (header.isCommand()) {
                runtime.stats().command(header.command());
            }
            if (header.isReply() && serverRequests.containsKey(header.msgId())) {
                // A reply to our own DMA request that cannot be decoded still ends that request.
                serverRequests.remove(header.msgId()).reply().completeExceptionally(
                        new VfioUserProtocolException(invalid.errno(), invalid.reason()));
                invalid.release();
                updateReading();
                return;
            }
            if (state == State.AWAITING_VERSION) {
                try {
                    fail(invalid.header(), invalid.errno(), true);
                } finally {
                    invalid.release();
                }
                return;
            }
        } else {
            warnings.warn("{}: unexpected {} in the pipeline", runtime.name(), msg.getClass().getSimpleName());
            ReferenceCountUtil.release(msg);
            return;
        }
        ReferenceCounted item = (ReferenceCounted) msg;
        queue.addLast(item);
        queuedBytes += headerOf(item).messageSize();
        queuedFds += fdsOf(item);
        drain();
    }

    /** The outbound buffer went over its high-water mark, or came back below its low-water mark. */
    @Override
    public void channelWritabilityChanged(ChannelHandlerContext ctx) throws Exception {
        if (state != State.CLOSED) {
            drain();
            flushIfPending();
        }
        super.channelWritabilityChanged(ctx);
    }

    @Override
    public void channelReadComplete(ChannelHandlerContext ctx) {
        flushIfPending();
    }

    /**
     * Handles queued commands one after another until one has to wait, the queue is empty, or the replies waiting
     * to be sent are over the high-water mark (the client does not read them: its next commands wait, unread,
     * until it does); then decides whether to read from the client.
     */
    private void drain() {
        while (!busy && state == State.NEGOTIATED && ctx.channel().isWritable()) {
            ReferenceCounted item = queue.pollFirst();
            if (item == null) {
                break;
            }
            queuedBytes -= headerOf(item).messageSize();
            queuedFds -= fdsOf(item);
            busy = true;
            CompletableFuture<VfioUserMessage> reply = handle(item);
            if (reply.isDone()) {
                finish(headerOf(item), item, reply);
            } else {
                reply.whenComplete((r, e) -> ctx.executor().execute(() -> {
                    finish(headerOf(item), item, reply);
                    drain();
                    flushIfPending();
                }));
                break;
            }
        }
        updateReading();
    }

    /**
     * The one decision whether to read from the client, taken again whenever one of its inputs changes, so that
     * no condition can resume reading while another still wants it paused. Reading stops while:
     * <ul>
     * <li>the previous client's teardown is not over;</li>
     * <li>the channel is not writable: replies queued for the client are over
     *     {@link ConnectionLimits#outboundHighWaterMark()} (until they are below the low-water mark);</li>
     * <li>the command queue is full: more than {@link ConnectionLimits#maxQueuedCommands()} commands, more than
     *     {@link ConnectionLimits#maxQueuedCommandBytes()} bytes of them, or more than half of
     *     {@link ConnectionLimits#maxClientFds()} fds held by them (each message may carry {@code max_msg_fds});
     *     reading resumes once all three are back to an eighth.</li>
     * </ul>
     * A device command that waits for the client's reply to a server DMA request would never complete if that
     * reply stayed unread behind a full command queue (there is no timeout on server DMA requests), so while such
     * a request is outstanding a full queue does not stop reading until it holds twice its budget.
     */
    private void updateReading() {
        if (state == State.CLOSED) {
            return;
        }
        ConnectionLimits limits = options.limits();
        int commands = queue.size();
        if (!queueFull) {
            queueFull = commands > limits.maxQueuedCommands() || queuedBytes > limits.maxQueuedCommandBytes()
                    || queuedFds > limits.maxClientFds() / 2;
        } else {
            queueFull = commands > limits.maxQueuedCommands() / 8 || queuedBytes > limits.maxQueuedCommandBytes() / 8
                    || queuedFds > limits.maxClientFds() / 16;
        }
        boolean queueStops = queueFull && (serverRequests.isEmpty() || commands > 2 * limits.maxQueuedCommands()
                || queuedBytes > 2 * limits.maxQueuedCommandBytes() || queuedFds > limits.maxClientFds());
        boolean pause = awaitingTeardown || !ctx.channel().isWritable() || queueStops;
        if (pause != readingPaused) {
            readingPaused = pause;
            ctx.channel().config().setAutoRead(!pause);
        }
    }

    private static int fdsOf(ReferenceCounted item) {
        return item instanceof VfioUserMessage m ? m.fds().size() : ((VfioUserInvalidMessage) item).fds().size();
    }

    // -------------------------------------------------------------------------------- region fast path

    /**
     * Whether {@link RegionFastPath} may serve a command arriving now without breaking arrival order: nothing else
     * waits or runs, and the migration state accepts the command without a quiesce ({@link CommandRules}).
     */
    boolean fastPathOpen(VfioUserCommand command) {
        return state == State.NEGOTIATED && !busy && queue.isEmpty() && !flrPending && !log.isTraceEnabled()
                && CommandRules.runsAsIs(command, migration.state()) && ctx.channel().isWritable();
    }

    /** A reply the fast path built, sent like any other (flushed when the read burst is over). */
    void fastPathReply(ByteBuf reply) {
        ctx.write(reply, ctx.voidPromise());
        flushPending = true;
    }

    /**
     * A command the fast path started but the device did not finish at once (or failed): from here on it is
     * handled exactly like a command that came the long way, and the next command waits for it.
     */
    void fastPathPending(VfioUserHeader header, CompletableFuture<VfioUserMessage> reply) {
        busy = true;
        if (reply.isDone()) {
            finish(header, null, reply);
            drain();
        } else {
            reply.whenComplete((r, e) -> ctx.executor().execute(() -> {
                finish(header, null, reply);
                drain();
                flushIfPending();
            }));
        }
    }

    private void finish(VfioUserHeader header, ReferenceCounted item, CompletableFuture<VfioUserMessage> reply) {
        VfioUserMessage r = null;
        Throwable failure = null;
        try {
            r = reply.join();
        } catch (java.util.concurrent.CompletionException | java.util.concurrent.CancellationException e) {
            failure = e;
        }
        complete(header, item, r, failure);
    }

    private CompletableFuture<VfioUserMessage> handle(ReferenceCounted item) {
        if (item instanceof VfioUserInvalidMessage invalid) {
            return CompletableFuture.failedFuture(new VfioUserProtocolException(invalid.errno(), invalid.reason()));
        }
        VfioUserMessage message = (VfioUserMessage) item;
        if (!message.header().isCommand()) {
            return CompletableFuture.failedFuture(
                    new VfioUserProtocolException(Errno.EINVAL, "unsolicited reply " + message.header()));
        }
        try {
            CompletableFuture<VfioUserMessage> reply = dispatcher.dispatch(message);
            if (flrPending) {
                flrPending = false;
                return reply.thenCompose(r -> functionLevelReset().handle((ok, err) -> {
                    if (err != null) {
                        ReferenceCountUtil.safeRelease(r);
                        throw new java.util.concurrent.CompletionException(err);
                    }
                    return r;
                }));
            }
            return reply;
        } catch (RuntimeException e) {
            return CompletableFuture.failedFuture(e);
        }
    }

    private static VfioUserHeader headerOf(ReferenceCounted item) {
        return item instanceof VfioUserMessage m ? m.header() : ((VfioUserInvalidMessage) item).header();
    }

    /**
     * Sends the reply of a handled command (unless NO_REPLY) and releases the command ({@code item}; {@code null}
     * when the fast path already released its frame).
     */
    private void complete(VfioUserHeader header, ReferenceCounted item, VfioUserMessage reply, Throwable failure) {
        busy = false;
        try {
            if (state != State.NEGOTIATED) {
                ReferenceCountUtil.safeRelease(reply);
                return;
            }
            if (failure != null) {
                ReferenceCountUtil.safeRelease(reply);
                int errno = Errors.errnoOf(failure);
                runtime.stats().error(errno);
                if (Errors.isProtocolError(failure)) {
                    log.debug("{}: {} failed: {}", runtime.name(), header,
                            LogText.escape(Errors.unwrap(failure).getMessage()));
                } else {
                    warnings.warn("{}: {} failed", runtime.name(), header, Errors.unwrap(failure));
                }
                reply = header.isNoReply() ? null : VfioUserMessage.errorReply(header, errno);
            }
            if (reply == null) {
                return;
            }
            if (header.isNoReply()) {
                reply.release();
                return;
            }
            trace("->", reply);
            ctx.write(reply, ctx.voidPromise());
            flushPending = true;
        } finally {
            if (item != null) {
                ReferenceCountUtil.safeRelease(item);
            }
        }
    }

    private void flushIfPending() {
        if (flushPending) {
            flushPending = false;
            ctx.flush();
        }
    }

    // -------------------------------------------------------------------------------------- negotiation

    private void negotiate(VfioUserMessage message) {
        VfioUserHeader header = message.header();
        if (!header.isCommand() || message.command() != VfioUserCommand.VERSION) {
            warnings.warn("{}: first message was {}, not VERSION", runtime.name(), header);
            fail(header, Errno.EINVAL, true);
            return;
        }
        if (!message.fds().isEmpty()) {
            warnings.warn("{}: VERSION carried {} fds; closing", runtime.name(), message.fds().size());
            ctx.close();
            return;
        }
        VersionPayload version = message.payload(VersionPayload.class);
        if (version.major() != 0) {
            warnings.warn("{}: client speaks major version {}", runtime.name(), version.major());
            fail(header, Errno.EINVAL, true);
            return;
        }
        try {
            client = VfioUserCapabilities.parse(version.json(), VfioUserCapabilities.SPEC_DEFAULT_MAX_MSG_FDS);
        } catch (VfioUserProtocolException e) {
            warnings.warn("{}: bad VERSION capabilities: {}", runtime.name(), LogText.escape(e.getMessage()));
            fail(header, e.errno(), true);
            return;
        }
        try {
            ioEventFds = new IoEventFds(runtime.description().ioEventFds(), runtime.device(),
                    (io.netty.channel.IoEventLoop) ctx.channel().eventLoop());
        } catch (io.vfiouser.transport.linux.ErrnoException e) {
            warnings.warn("{}: could not create the doorbell eventfds: {}", runtime.name(), e.getMessage());
            fail(header, e.errno(), true);
            return;
        }
        int minor = Math.min(version.minor(), OUR_MINOR);
        VfioUserMessage reply = VfioUserMessage.reply(header,
                VersionPayload.of(0, minor, serverCapabilities(header.messageSize())));
        state = State.NEGOTIATED;
        cancelNegotiationDeadline();
        runtime.attach(this);
        syncIrqsFromConfig();
        warnings.info("{}: negotiated version 0.{} with {}", runtime.name(), minor,
                LogText.escape(String.valueOf(client)));
        trace("->", reply);
        ctx.writeAndFlush(reply, ctx.voidPromise());
        try {
            runtime.device().attached(new SessionContext(this));
        } catch (RuntimeException e) {
            warnings.warn("{}: attached() failed", runtime.name(), e);
        }
    }

    /**
     * What the server announces. QEMU reads the VERSION reply into the buffer of its own request, so the reply
     * must not be longer than the request: when the full set does not fit, only the essential keys are sent, the
     * limits the server enforces first ({@code max_dma_maps} is below the client's default, 65535).
     */
    private VfioUserCapabilities serverCapabilities(long requestSize) {
        VfioUserCapabilities full = VfioUserCapabilities.builder()
                .maxMsgFds(options.maxMsgFds())
                .maxDataXferSize(options.maxDataTransferSize())
                .pgsizes(VfioUserCapabilities.DEFAULT_PGSIZES)
                .maxDmaMaps(dmaTable.maxMappings())
                .writeMultiple(true)
                .build();
        if (replySize(full) <= requestSize) {
            return full;
        }
        // max_dma_maps is below the client's default (65535): a client that does not learn it meets ENOSPC.
        VfioUserCapabilities essential = VfioUserCapabilities.builder()
                .maxMsgFds(options.maxMsgFds())
                .maxDataXferSize(options.maxDataTransferSize())
                .maxDmaMaps(dmaTable.maxMappings())
                .writeMultiple(true)
                .build();
        if (replySize(essential) <= requestSize) {
            return essential;
        }
        VfioUserCapabilities limits = VfioUserCapabilities.builder()
                .maxMsgFds(options.maxMsgFds())
                .maxDataXferSize(options.maxDataTransferSize())
                .maxDmaMaps(dmaTable.maxMappings())
                .build();
        if (replySize(limits) <= requestSize) {
            return limits;
        }
        return VfioUserCapabilities.builder()
                .maxMsgFds(options.maxMsgFds())
                .maxDataXferSize(options.maxDataTransferSize())
                .build();
    }

    private static long replySize(VfioUserCapabilities caps) {
        return VfioUserHeader.HEADER_SIZE + VersionPayload.of(0, 0, caps).encodedSize();
    }

    /**
     * Answers {@code request} with a header-only error reply unless it carries NO_REPLY; closes the connection
     * after the reply has gone out when {@code close} is set.
     */
    private void fail(VfioUserHeader request, int errno, boolean close) {
        runtime.stats().error(errno);
        if (!request.isNoReply()) {
            VfioUserMessage reply = VfioUserMessage.errorReply(request, errno);
            trace("->", reply);
            if (close) {
                ctx.writeAndFlush(reply).addListener(ChannelFutureListener.CLOSE);
            } else {
                ctx.writeAndFlush(reply, ctx.voidPromise());
            }
        } else if (close) {
            ctx.close();
        }
    }

    // ------------------------------------------------------------------------------------------- resets

    /** The guest wrote "Initiate FLR": the reset runs once the configuration write itself is done. */
    void flrRequested() {
        flrPending = true;
    }

    /**
     * An FLR is asked for by a configuration write, not by a command of its own, so no {@link CommandRules rule}
     * quiesces for it: it quiesces here.
     */
    private CompletableFuture<Void> functionLevelReset() {
        return runtime.device().quiesce().thenCompose(ok -> resetDevice(ResetReason.FLR));
    }

    /**
     * On a quiesced device: the device's reset, then the framework's own state (config space, interrupt masks); a
     * migration in progress ends and the device runs again.
     */
    CompletableFuture<Void> resetDevice(ResetReason reason) {
        return VfioUserDevice.DONE
                .thenCompose(ok -> runtime.device().reset(reason))
                .thenRun(() -> {
                    runtime.config().reset();
                    irqs.reset();
                    syncIrqsFromConfig();
                    warnings.info("{}: reset ({})", runtime.name(), reason);
                })
                .thenCompose(ok -> migration.afterReset());
    }

    /** Gives the interrupt table what it derives from configuration space (after negotiation, reset, restore). */
    void syncIrqsFromConfig() {
        irqs.setIntxDisabled(runtime.config().intxDisabled());
        irqs.setMsiControl(runtime.config().msiEnabled(), runtime.config().msiEnabledVectors());
        irqs.setMsiMask(runtime.config().msiMask());
        irqs.setMsixControl(runtime.config().msixEnabled(), runtime.config().msixFunctionMasked());
    }

    // ------------------------------------------------------------------------------ server-issued DMA

    @Override
    public CompletableFuture<Void> read(long address, ByteBuffer dst) {
        int count = dst.remaining();
        return request(VfioUserCommand.DMA_READ, DmaAccess.of(address, count)).thenAccept(reply -> {
            try {
                DmaAccess got = reply.payload(DmaAccess.class);
                ByteBuf data = got.data();
                if (got.address() != address || data == null || data.readableBytes() != count) {
                    throw new VfioUserProtocolException(Errno.EINVAL, "DMA_READ reply does not match its request");
                }
                data.getBytes(data.readerIndex(), dst);
            } finally {
                reply.release();
            }
        });
    }

    @Override
    public CompletableFuture<Void> write(long address, ByteBuffer src) {
        ByteBuf data = ctx.alloc().buffer(src.remaining());
        data.writeBytes(src);
        return request(VfioUserCommand.DMA_WRITE, DmaAccess.withData(address, data)).thenAccept(reply -> {
            reply.release();
        });
    }

    @Override
    public int maxTransferSize() {
        VfioUserCapabilities c = client;
        return (int) Math.min(Integer.MAX_VALUE, c == null ? 1 << 20 : c.maxDataXferSize());
    }

    /** Sends a server-issued command and completes with its successful reply, or fails with its errno. */
    private CompletableFuture<VfioUserMessage> request(VfioUserCommand command, DmaAccess payload) {
        CompletableFuture<VfioUserMessage> reply = new CompletableFuture<>();
        ctx.executor().execute(() -> {
            if (state != State.NEGOTIATED) {
                ReferenceCountUtil.safeRelease(payload.data());
                reply.completeExceptionally(new ClosedChannelException());
                return;
            }
            int id = nextServerId++ & 0xFFFF;
            while (serverRequests.containsKey(id)) {
                id = nextServerId++ & 0xFFFF;
            }
            serverRequests.put(id, new PendingDma(reply));
            updateReading();
            VfioUserMessage message = VfioUserMessage.command(id, command, payload);
            trace("->", message);
            ctx.writeAndFlush(message, ctx.voidPromise());
        });
        return reply.thenApply(r -> {
            if (r.header().isError()) {
                int errno = r.header().error() > 0 ? r.header().error() : Errno.EINVAL;
                r.release();
                throw new VfioUserProtocolException(errno, command + " failed at the client");
            }
            return r;
        });
    }

    // ------------------------------------------------------------------------------------- irq events

    /** The INTx resample eventfd QEMU registers under KVM (SET_IRQS INTx UNMASK+EVENTFD), when watched. */
    private EventFdWatcher resample;

    /**
     * Passes mask changes to the device and watches the INTx resample eventfd: the client signals it when the
     * guest has serviced the line, which counts as an unmask (a still-raised line fires again).
     */
    private final class IrqEvents implements IrqTable.Listener {
        @Override
        public void irqMaskChanged(io.vfiouser.device.IrqType type, int start, int count, boolean masked) {
            try {
                runtime.device().irqMaskChanged(type, start, count, masked);
            } catch (RuntimeException e) {
                warnings.warn("{}: irqMaskChanged() failed", runtime.name(), e);
            }
        }

        @Override
        public void notifierChanged(io.vfiouser.device.IrqType type, int vector, boolean unmask, int oldFd,
                                    int newFd) {
            if (type != io.vfiouser.device.IrqType.INTX || !unmask) {
                return;
            }
            if (resample != null) {
                resample.close();
                resample = null;
            }
            if (newFd >= 0 && ctx != null) {
                try {
                    resample = EventFdWatcher.watch((io.netty.channel.IoEventLoop) ctx.channel().eventLoop(),
                            io.vfiouser.transport.linux.Linux.dup(newFd),
                            n -> irqs.mask(io.vfiouser.device.IrqType.INTX, 0, 1, false));
                } catch (io.vfiouser.transport.linux.ErrnoException e) {
                    warnings.warn("{}: cannot watch the INTx resample eventfd: {}", runtime.name(), e.getMessage());
                }
            }
        }

        /**
         * The client made an interrupt eventfd blocking again and filled it, which held a signal until the watchdog
         * released it: it broke the fd contract, so it goes. Called on the signalling thread (an event loop or a
         * device thread), under the table's read lock: the close runs as a task of the event loop, after the
         * lock is released, since the teardown it starts clears the table.
         */
        @Override
        public void clientFdTampered(io.vfiouser.device.IrqType type, int vector) {
            log.warn("{}: the client made its {} vector {} eventfd blocking again and filled it; closing the "
                    + "connection (this device's interrupts leave the event loops from now on)", runtime.name(), type,
                    vector);
            ChannelHandlerContext c = ctx;
            if (c != null) {
                c.channel().eventLoop().execute(() -> c.channel().close());
            }
        }
    }

    // -------------------------------------------------------------------------------------------- misc

    private void trace(String direction, VfioUserMessage message) {
        if (log.isTraceEnabled()) {
            log.trace(TraceLine.of(runtime.name(), direction, message));
        }
    }

    private void traceInvalid(VfioUserInvalidMessage invalid) {
        if (log.isTraceEnabled()) {
            log.trace(TraceLine.ofInvalid(runtime.name(), invalid));
        }
    }

    /**
     * Fires the REQ interrupt if the client registered an eventfd for it (callable from any thread: the interrupt
     * table locks); returns whether it did.
     */
    boolean requestRelease() {
        if (!irqs.isEnabled(io.vfiouser.device.IrqType.REQ, 0)) {
            return false;
        }
        irqs.triggerRequest();
        runtime.stats().interrupt();
        return true;
    }

    /**
     * Closes the connection. Every write that fails after the client went away reports here again (one per
     * queued reply): only the first says why the connection closes, the others go to DEBUG.
     */
    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
        boolean first = !closeLogged;
        closeLogged = true;
        if (cause instanceof VfioUserFramingException framing) {
            // The frame decoder closes the stream right after this; the reply is a best effort to say why, and
            // never sent for a command that asked for none (digest 1.3).
            logClose(first, LogText.escape(framing.getMessage()), null);
            if (state != State.CLOSED && !framing.noReply()) {
                VfioUserMessage reply = VfioUserMessage.errorReply(framing.msgId(), framing.command(), Errno.EINVAL);
                ctx.writeAndFlush(reply).addListener(ChannelFutureListener.CLOSE);
            }
            return;
        }
        if (cause instanceof IOException) {
            logClose(first, LogText.escape(cause.getMessage()), null);
        } else {
            logClose(first, null, cause);
        }
        ctx.close();
    }

    private void logClose(boolean first, String why, Throwable cause) {
        if (!first) {
            log.debug("{}: closing the connection: {}", runtime.name(), why != null ? why : cause);
        } else if (why != null) {
            warnings.warn("{}: closing the connection: {}", runtime.name(), why);
        } else {
            warnings.warn("{}: closing the connection", runtime.name(), cause);
        }
    }
}
