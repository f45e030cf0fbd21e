package io.vfiouser.server.connection;

import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.ReferenceCounted;
import io.netty.util.concurrent.ScheduledFuture;
import io.vfiouser.codec.VfioUserFrameShortcut;
import io.vfiouser.codec.VfioUserFramingException;
import io.vfiouser.codec.VfioUserHeader;
import io.vfiouser.codec.VfioUserInvalidMessage;
import io.vfiouser.codec.VfioUserMessage;
import io.vfiouser.codec.VfioUserProtocolException;
import io.vfiouser.server.ConnectionLimits;
import io.vfiouser.server.device.LogText;
import io.vfiouser.server.device.RateLimitedLog;
import io.vfiouser.transport.linux.Errno;
import io.vfiouser.transport.linux.ErrnoException;
import java.io.IOException;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.TimeUnit;
import org.apache.logging.log4j.Logger;

/**
 * The Netty handler of one connection, and only that: it queues the client's commands, hands them to the
 * {@link CommandDispatcher} one at a time in arrival order, writes their replies in that order, flushes once per
 * read burst, and decides when to stop reading (backpressure). The first message goes to {@link Negotiation}; the
 * client's replies to the server's own DMA requests go to {@link ServerDmaRequests} without queueing. The
 * {@link Connection} (its parts, resets, teardown) knows nothing of this handler.
 *
 * <p><b>Order.</b> A command that completes at once is answered at once; one that does not makes the next wait for
 * it. The region fast path ({@link #serve}) serves a frame only while nothing is queued or running.
 *
 * <p><b>Errors.</b> Every failure becomes a header-only error reply with the errno {@link Errors} assigns; a
 * NO_REPLY command never gets a reply. Where the stream cannot be trusted (framing lost, fds out of place, a bad
 * first message) the connection closes.
 *
 * <p><b>Ownership.</b> Every inbound message is released once it has been handled, which closes the fds nobody
 * took. When the channel closes, what is queued is released and the connection detaches ({@link #teardown()}).
 */
public final class ConnectionHandler extends ChannelInboundHandlerAdapter implements VfioUserFrameShortcut {
    private enum State { AWAITING_VERSION, NEGOTIATED, CLOSED }

    private final Connection connection;
    private final CommandDispatcher dispatcher;
    private final RegionFastPath fastPath;
    private final Negotiation negotiation;
    private final ConnectionLimits limits;
    private final Logger log;
    private final String name;
    private final RateLimitedLog.Connection warnings;
    private final ArrayDeque<ReferenceCounted> queue = new ArrayDeque<>();
    /** Completes when the previous client's teardown is over; this connection reads nothing before. */
    private final CompletableFuture<Void> ready;
    /** Completes when this connection's own teardown (device reset after the client left) is over. */
    private final CompletableFuture<Void> teardown = new CompletableFuture<>();
    private ChannelHandlerContext ctx;
    private State state = State.AWAITING_VERSION;
    /** A command is being handled (its future has not completed yet). */
    private boolean busy;
    /** Bytes ({@code msg_size}) and fds of the commands waiting in {@link #queue}. */
    private long queuedBytes;
    private int queuedFds;
    /** The queue went over one of its budgets and has not yet come back to an eighth of all of them. */
    private boolean queueFull;
    /** The previous client's teardown is not over yet. */
    private boolean awaitingTeardown;
    /** Whether this handler switched auto-read off (the one place that decides it: {@link #updateReading}). */
    private boolean readingPaused;
    private boolean flushPending;
    /** The reason the connection closes has been logged once. */
    private boolean closeLogged;
    /** Closes the connection if VERSION has not completed in time; null once negotiated or closed. */
    private ScheduledFuture<?> negotiationDeadline;

    /**
     * @param previousTeardown the previous client's teardown: nothing is read before it is over
     */
    public ConnectionHandler(Connection connection, CompletableFuture<Void> previousTeardown) {
        this.connection = connection;
        this.ready = previousTeardown;
        this.dispatcher = new CommandDispatcher(connection);
        this.fastPath = new RegionFastPath(connection);
        this.negotiation = new Negotiation(connection.options(), connection.dmaTable().maxMappings());
        this.limits = connection.options().limits();
        this.log = connection.log();
        this.name = connection.name();
        this.warnings = connection.warnings();
        // A reply to a server DMA request is read even behind a full command queue (see updateReading).
        connection.dmaRequests().onOutstandingChanged(this::updateReading);
    }

    /** The connection this handler feeds. */
    public Connection connection() {
        return connection;
    }

    /** Completes when the device is ready for the next client after this one; never fails. */
    public CompletableFuture<Void> teardown() {
        return teardown;
    }

    // ---------------------------------------------------------------------------------------- lifecycle

    @Override
    public void handlerAdded(ChannelHandlerContext ctx) {
        this.ctx = ctx;
    }

    @Override
    public void channelActive(ChannelHandlerContext ctx) throws Exception {
        warnings.info("{}: client attached", name);
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
     * From the moment the connection reads, the client has {@link ConnectionLimits#negotiationTimeout()} to complete
     * VERSION; otherwise it is disconnected, so a connection that never negotiates cannot keep the device from the
     * next client (QEMU sends VERSION at once).
     */
    private void startNegotiationDeadline() {
        if (state != State.AWAITING_VERSION) {
            return;
        }
        Duration timeout = limits.negotiationTimeout();
        negotiationDeadline = ctx.executor().schedule(() -> {
            negotiationDeadline = null;
            if (state == State.AWAITING_VERSION && ctx.channel().isOpen()) {
                warnings.warn("{}: the client did not negotiate within {}; disconnecting it", name, timeout);
                ctx.close();
            }
        }, timeout.toNanos(), TimeUnit.NANOSECONDS);
    }

    private void cancelNegotiationDeadline() {
        ScheduledFuture<?> deadline = negotiationDeadline;
        if (deadline != null) {
            negotiationDeadline = null;
            deadline.cancel(false);
        }
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) throws Exception {
        cancelNegotiationDeadline();
        state = State.CLOSED;
        ReferenceCounted item;
        while ((item = queue.pollFirst()) != null) {
            ReferenceCountUtil.safeRelease(item);
        }
        queuedBytes = 0;
        queuedFds = 0;
        connection.detach().whenComplete((ok, err) -> teardown.complete(null));
        warnings.info("{}: client detached", name);
        super.channelInactive(ctx);
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
                connection.runtime().stats().command(header.command());
            } else if (connection.dmaRequests().complete(message, ctx.channel())) {
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
            log.debug("{}: invalid message {}: {}", name, invalid.header(), LogText.escape(invalid.reason()));
            if (log.isTraceEnabled()) {
                log.trace(TraceLine.ofInvalid(name, invalid));
            }
            VfioUserHeader header = invalid.header();
            if (header.isCommand()) {
                connection.runtime().stats().command(header.command());
            } else if (connection.dmaRequests().fail(invalid, ctx.channel())) {
                // A reply to the server's own DMA request that cannot be decoded still ends that request.
                return;
            }
            if (state == State.AWAITING_VERSION) {
                try {
                    fail(header, invalid.errno(), true);
                } finally {
                    invalid.release();
                }
                return;
            }
        } else {
            warnings.warn("{}: unexpected {} in the pipeline", name, msg.getClass().getSimpleName());
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
        if (state == State.CLOSED || ctx == null) {
            return;
        }
        int commands = queue.size();
        if (!queueFull) {
            queueFull = commands > limits.maxQueuedCommands() || queuedBytes > limits.maxQueuedCommandBytes()
                    || queuedFds > limits.maxClientFds() / 2;
        } else {
            queueFull = commands > limits.maxQueuedCommands() / 8 || queuedBytes > limits.maxQueuedCommandBytes() / 8
                    || queuedFds > limits.maxClientFds() / 16;
        }
        boolean queueStops = queueFull && (!connection.dmaRequests().outstanding()
                || commands > 2 * limits.maxQueuedCommands() || queuedBytes > 2 * limits.maxQueuedCommandBytes()
                || queuedFds > limits.maxClientFds());
        boolean pause = awaitingTeardown || !ctx.channel().isWritable() || queueStops;
        if (pause != readingPaused) {
            readingPaused = pause;
            ctx.channel().config().setAutoRead(!pause);
        }
    }

    private static VfioUserHeader headerOf(ReferenceCounted item) {
        return item instanceof VfioUserMessage m ? m.header() : ((VfioUserInvalidMessage) item).header();
    }

    private static int fdsOf(ReferenceCounted item) {
        return item instanceof VfioUserMessage m ? m.fds().size() : ((VfioUserInvalidMessage) item).fds().size();
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
            return dispatcher.dispatch(message);
        } catch (RuntimeException e) {
            return CompletableFuture.failedFuture(e);
        }
    }

    private void finish(VfioUserHeader header, ReferenceCounted item, CompletableFuture<VfioUserMessage> reply) {
        VfioUserMessage r = null;
        Throwable failure = null;
        try {
            r = reply.join();
        } catch (CompletionException | CancellationException e) {
            failure = e;
        }
        complete(header, item, r, failure);
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
                connection.runtime().stats().error(errno);
                if (Errors.isProtocolError(failure)) {
                    log.debug("{}: {} failed: {}", name, header, LogText.escape(Errors.unwrap(failure).getMessage()));
                } else {
                    warnings.warn("{}: {} failed", name, header, Errors.unwrap(failure));
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

    // -------------------------------------------------------------------------------- region fast path

    /**
     * The frame decoder's shortcut: a frame without fds, offered where it lies in the receive buffer. The
     * {@link RegionFastPath} may serve it only while nothing else waits or runs (arrival order), the replies are
     * below the high-water mark, and trace logging is off (so the trace shows every command).
     */
    @Override
    public boolean serve(ChannelHandlerContext decoderCtx, ByteBuf frame, int at, int length) {
        if (state != State.NEGOTIATED || busy || !queue.isEmpty() || log.isTraceEnabled()
                || !ctx.channel().isWritable()) {
            return false;
        }
        switch (fastPath.serve(frame, at, length)) {
            case DECLINED -> {
                return false;
            }
            case ANSWERED -> {
                ByteBuf reply = fastPath.takeReply();
                if (reply != null) {
                    ctx.write(reply, ctx.voidPromise());
                    flushPending = true;
                }
                return true;
            }
            case PENDING -> {
                // From here on the command is handled like one that came the long way; the next one waits for it.
                RegionFastPath.Pending pending = fastPath.takePending();
                busy = true;
                CompletableFuture<VfioUserMessage> reply = pending.reply();
                if (reply.isDone()) {
                    finish(pending.header(), null, reply);
                    drain();
                } else {
                    reply.whenComplete((r, e) -> ctx.executor().execute(() -> {
                        finish(pending.header(), null, reply);
                        drain();
                        flushIfPending();
                    }));
                }
                return true;
            }
            default -> throw new IllegalStateException();
        }
    }

    // -------------------------------------------------------------------------------------- negotiation

    private void negotiate(VfioUserMessage message) {
        VfioUserHeader header = message.header();
        Negotiation.Outcome outcome = negotiation.negotiate(message);
        if (outcome instanceof Negotiation.Refused refused) {
            warnings.warn("{}: {}", name, refused.why());
            if (refused.replies()) {
                fail(header, refused.errno(), true);
            } else {
                ctx.close();
            }
            return;
        }
        Negotiation.Agreed agreed = (Negotiation.Agreed) outcome;
        // The client asked for a twin socket and can take it: the server's own requests will go there.
        TwinSocket twin = agreed.twinReply() == null ? null : TwinSocket.open(connection, ctx.channel());
        try {
            connection.attach(agreed.client(), twin == null ? null : twin.channel());
        } catch (ErrnoException e) {
            if (twin != null) {
                twin.abandon();
            }
            warnings.warn("{}: could not create the doorbell eventfds: {}", name, e.getMessage());
            fail(header, e.errno(), true);
            return;
        }
        state = State.NEGOTIATED;
        cancelNegotiationDeadline();
        warnings.info("{}: negotiated version 0.{} with {}{}", name, agreed.minor(),
                LogText.escape(String.valueOf(agreed.client())), twin != null ? " (twin socket)" : "");
        if (!header.isNoReply()) {
            // A VERSION flagged NO_REPLY negotiates like any other, but is never answered (digest 1.3).
            VfioUserMessage reply = twin == null
                    ? VfioUserMessage.reply(header, agreed.reply())
                    : VfioUserMessage.reply(header, agreed.twinReply(), twin.takeClientEnd());
            trace("->", reply);
            ctx.writeAndFlush(reply, ctx.voidPromise());
        }
        connection.announce();
    }

    /**
     * Answers {@code request} with a header-only error reply unless it carries NO_REPLY; closes the connection
     * after the reply has gone out when {@code close} is set.
     */
    private void fail(VfioUserHeader request, int errno, boolean close) {
        connection.runtime().stats().error(errno);
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

    // -------------------------------------------------------------------------------------------- misc

    private void trace(String direction, VfioUserMessage message) {
        if (log.isTraceEnabled()) {
            log.trace(TraceLine.of(name, direction, message));
        }
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
            log.debug("{}: closing the connection: {}", name, why != null ? why : cause);
        } else if (why != null) {
            warnings.warn("{}: closing the connection: {}", name, why);
        } else {
            warnings.warn("{}: closing the connection", name, cause);
        }
    }
}
