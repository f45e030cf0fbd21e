package io.vfiouser.server;

import io.netty.channel.Channel;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelPipeline;
import io.netty.channel.IoEventLoop;
import io.vfiouser.codec.VfioUserFrameDecoder;
import io.vfiouser.codec.VfioUserMessageDecoder;
import io.vfiouser.codec.VfioUserMessageEncoder;
import io.vfiouser.device.DeviceDescription;
import io.vfiouser.server.connection.Connection;
import io.vfiouser.server.connection.ConnectionHandler;
import io.vfiouser.server.connection.EventFdWatchers;
import io.vfiouser.server.device.DeviceRuntime;
import io.vfiouser.transport.UnixChannel;
import java.util.ArrayDeque;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.logging.log4j.Logger;

/**
 * One device served on one socket, to one client at a time.
 *
 * <p><b>Admission.</b> A connection that arrives while the device is free attaches at once. One that arrives while
 * the device still has a client, attached or gone with its teardown (quiesce, reset, {@code detached()}) not over,
 * is held: accepted but unread, in arrival order, and it attaches as soon as the previous client's connection has
 * ended and its teardown is over, like a connection waiting in the listen backlog of a server that accepts one
 * client at a time (libvfio-user). A client that reconnects at once (QEMU restarting, libvirt, scripts) is
 * therefore never refused. At most {@link ConnectionLimits#maxHeldConnections()} connections are held (one more is
 * closed at once), each for at most {@link ConnectionLimits#holdTimeout()}; a held connection whose peer hangs up
 * is dropped; closing the device closes them. The peer-uid policy applies at accept, before any of this.
 *
 * <p>The listener's accepts and the clients' closes and teardowns happen on different threads (event loops, the
 * device's own completion threads), so the admission state (who has the device, who waits) lives under one lock,
 * and every change to a connection's pipeline runs on that connection's event loop.
 */
public final class HostedDevice implements AutoCloseable {
    private static final VfioUserMessageEncoder ENCODER = VfioUserMessageEncoder.INSTANCE;

    private final DeviceRuntime runtime;
    private final DeviceDescription description;
    private final String where;
    private final ServerOptions options;
    private final SocketPolicy policy;
    private final Logger log;
    private final DeviceStats stats;
    /** The most fds one client may make the server hold: the configured budget, capped by the process's limit. */
    private final int clientFdLimit;
    /** The attached client's connection while it is open: what {@link #hasClient()} reports. */
    private final AtomicReference<Channel> client = new AtomicReference<>();
    private final CompletableFuture<Void> closed = new CompletableFuture<>();
    private volatile Channel listener;
    /** How long {@link #close()} waits for the device's reset and {@code detached()} after its last client. */
    static final java.time.Duration TEARDOWN_WAIT = java.time.Duration.ofSeconds(10);

    /**
     * Completes when the client attached now, or the next one to attach, has left and the device's teardown after
     * it is over; replaced by a fresh future then ({@link #clientGone()}).
     */
    private final AtomicReference<CompletableFuture<Void>> gone = new AtomicReference<>(new CompletableFuture<>());

    /** The last client's teardown; the next client attaches only once it is over. */
    private volatile CompletableFuture<Void> lastTeardown = CompletableFuture.completedFuture(null);

    /** Guards {@link #occupant}, {@link #held} and {@link #closing}. */
    private final Object admission = new Object();
    /** The connection that has the device: attached, or ended with its teardown not over; null when free. */
    private Channel occupant;
    /** Connections waiting for the device, oldest first. */
    private final ArrayDeque<HeldConnection> held = new ArrayDeque<>();
    /** Set when the device stops being served: no connection attaches or waits any more. */
    private boolean closing;

    HostedDevice(DeviceRuntime runtime, String where, ServerOptions options, SocketPolicy policy) {
        this.runtime = runtime;
        this.description = runtime.description();
        this.where = where;
        this.options = options;
        this.policy = policy;
        this.log = runtime.log();
        this.stats = new DeviceStats(description.name(), runtime.stats());
        this.clientFdLimit = options.limits().clientFdLimit(ProcessFds.softLimit());
    }

    public DeviceDescription description() {
        return description;
    }

    /** The socket path, or {@code fd:N} for an adopted socket. */
    public String where() {
        return where;
    }

    /** The device's counters since it started. */
    public DeviceStats stats() {
        return stats;
    }

    /** Whether a client is attached right now (connections waiting for the device do not count). */
    public boolean hasClient() {
        return client.get() != null;
    }

    /**
     * Completes when the client attached now, or else the next one to attach, has left and the device is ready for
     * another (quiesced, reset, told {@code detached()}). A launcher that serves one VM's device exits then
     * ({@code --exit-on-disconnect}), as libvfio-user's samples do. Never completes if no client ever leaves.
     */
    public CompletableFuture<Void> clientGone() {
        return gone.get();
    }

    /** How many connections are waiting for the device right now. */
    public int heldConnections() {
        synchronized (admission) {
            return held.size();
        }
    }

    /** Completes when the device stops being served. */
    public CompletableFuture<Void> closeFuture() {
        return closed;
    }

    void listening(Channel listener) {
        this.listener = listener;
        listener.closeFuture().addListener(f -> {
            // The device is done once its last client is gone and the reset and detached() after it are over.
            Channel c = closeConnections();
            if (c != null) {
                c.close().addListener(g -> lastTeardown.whenComplete((ok, err) -> finish()));
            } else {
                lastTeardown.whenComplete((ok, err) -> finish());
            }
        });
    }

    ChannelInitializer<UnixChannel> childInitializer() {
        return new ChannelInitializer<>() {
            @Override
            protected void initChannel(UnixChannel ch) {
                if (!policy.allowedUids().isEmpty() && !peerAllowed(ch)) {
                    runtime.stats().clientRefused();
                    ch.close();
                    return;
                }
                ch.attr(io.vfiouser.codec.DmaLayout.ATTRIBUTE).set(options.dmaLayout());
                // Reads grow up to a whole message, so a 1 MiB write arrives in few recvmsg calls.
                ch.config().setRecvByteBufAllocator(
                        new io.netty.channel.AdaptiveRecvByteBufAllocator(64, 2048, options.maxMessageSize()));
                admit(ch);
            }
        };
    }

    /** A new connection (on its event loop, during its registration): attach it, hold it, or close it. */
    private void admit(UnixChannel ch) {
        ConnectionLimits limits = options.limits();
        HeldConnection waiting = null;
        boolean attach = false;
        int waitingNow;
        boolean stop;
        synchronized (admission) {
            stop = closing;
            if (stop) {
                // The device is being closed: nobody attaches or waits any more.
            } else if (occupant == null) {
                occupant = ch;
                attach = true;
            } else if (held.size() < limits.maxHeldConnections()) {
                waiting = new HeldConnection(ch);
                held.addLast(waiting);
            }
            waitingNow = held.size();
        }
        if (stop) {
            ch.close();
            return;
        }
        if (attach) {
            // The channel becomes active right after this initializer: the connection starts then.
            attach(ch);
            return;
        }
        if (waiting == null) {
            runtime.stats().clientRefused();
            runtime.warnings().warn("{}: refused a connection: the device has a client and {} more connection(s) "
                    + "already wait for it (maxHeldConnections)", description.name(), waitingNow);
            ch.close();
            return;
        }
        HeldConnection h = waiting;
        // Off before the first event-loop turn of the connection: nothing it sends is read while it waits.
        ch.config().setAutoRead(false);
        ch.pipeline().addLast(HeldConnection.NAME, h);
        ch.closeFuture().addListener(f -> {
            h.cancelTimeout();
            boolean wasWaiting;
            synchronized (admission) {
                wasWaiting = held.remove(h);
            }
            if (wasWaiting) {
                log.debug("{}: a connection waiting for the device hung up", description.name());
            }
        });
        h.timeout(ch.eventLoop().schedule(() -> expire(h), limits.holdTimeout().toNanos(), TimeUnit.NANOSECONDS));
        log.debug("{}: holding a connection until the device is free ({} waiting)", description.name(), waitingNow);
    }

    /** A held connection waited longer than {@link ConnectionLimits#holdTimeout()}. */
    private void expire(HeldConnection h) {
        boolean wasWaiting;
        synchronized (admission) {
            wasWaiting = held.remove(h);
        }
        if (wasWaiting) {
            runtime.stats().clientRefused();
            runtime.warnings().warn("{}: closed a connection that waited {} ms for the device (holdTimeout {})",
                    description.name(),
                    h.waitedMillis(), options.limits().holdTimeout());
            h.channel().close();
        }
    }

    /**
     * Gives the device to {@code ch}, which {@link #admit} or {@link #released} made the occupant: its pipeline
     * and connection start here. On the connection's event loop.
     */
    private void attach(UnixChannel ch) {
        runtime.stats().clientAccepted();
        client.set(ch);
        // Replies queued above the high-water mark make the channel unwritable: the connection then stops handling and
        // reading the client's commands until they are below the low-water mark.
        ch.config().setWriteBufferWaterMark(new io.netty.channel.WriteBufferWaterMark(
                options.limits().outboundLowWaterMark(), options.limits().outboundHighWaterMark()));
        ChannelPipeline p = ch.pipeline();
        p.addLast("traffic", new TrafficCounter(runtime.stats()));
        // The previous client's teardown is over (the device has no occupant until it is), so this is complete.
        Connection connection = new Connection(runtime, options, ch,
                EventFdWatchers.epoll((IoEventLoop) ch.eventLoop()), clientFdLimit);
        ConnectionHandler handler = new ConnectionHandler(connection, lastTeardown);
        CompletableFuture<Void> teardown = handler.teardown();
        lastTeardown = teardown;
        // The handler is also the frame decoder's shortcut: it lets the region fast path serve a frame in place.
        p.addLast("frames", new VfioUserFrameDecoder(options.maxMessageSize(), options.maxMsgFds(), handler));
        p.addLast("decoder", new VfioUserMessageDecoder(options.dmaLayout()));
        p.addLast("encoder", ENCODER);
        p.addLast("connection", handler);
        // One client at a time attaches: the future now in `gone` is this client's until its teardown is over.
        CompletableFuture<Void> thisClientGone = gone.get();
        ch.closeFuture().addListener(f -> {
            client.compareAndSet(ch, null);
            teardown.whenComplete((ok, err) -> {
                gone.compareAndSet(thisClientGone, new CompletableFuture<>());
                thisClientGone.complete(null);
                released(ch);
            });
        });
    }

    /** A held connection's turn has come (on its event loop): it attaches, and starts reading. */
    private void attachHeld(HeldConnection h) {
        UnixChannel ch = h.channel();
        boolean stop;
        synchronized (admission) {
            stop = closing;
        }
        if (stop || !ch.isOpen()) {
            ch.close();
            released(ch);
            return;
        }
        ch.pipeline().remove(HeldConnection.NAME);
        attach(ch);
        // The channel has been active all along; the new handlers hear of it now.
        ch.pipeline().fireChannelActive();
        ch.config().setAutoRead(true);
    }

    /**
     * {@code ch} no longer has the device: its connection ended and its teardown is over (or it never attached).
     * The oldest held connection that is still open becomes the occupant and attaches on its event loop.
     */
    private void released(Channel ch) {
        HeldConnection next = null;
        synchronized (admission) {
            if (occupant != ch) {
                return;
            }
            occupant = null;
            if (!closing) {
                HeldConnection h;
                while ((h = held.pollFirst()) != null) {
                    if (h.channel().isOpen()) {
                        next = h;
                        occupant = h.channel();
                        break;
                    }
                }
            }
        }
        if (next != null) {
            HeldConnection h = next;
            h.cancelTimeout();
            h.channel().eventLoop().execute(() -> attachHeld(h));
        }
    }

    /**
     * Marks the device as closing and closes the held connections; returns the occupant's connection (to be
     * closed by the caller), or null.
     */
    private Channel closeConnections() {
        java.util.List<HeldConnection> waiting;
        Channel c;
        synchronized (admission) {
            closing = true;
            waiting = java.util.List.copyOf(held);
            held.clear();
            c = occupant;
        }
        for (HeldConnection h : waiting) {
            h.cancelTimeout();
            h.channel().close();
        }
        return c;
    }

    /** Checks the peer's uid ({@code SO_PEERCRED}) against the allow-list; logs a refusal. */
    private boolean peerAllowed(UnixChannel ch) {
        io.vfiouser.transport.linux.PeerCredentials peer;
        try {
            peer = ch.peerCredentials();
        } catch (io.vfiouser.transport.linux.ErrnoException e) {
            runtime.warnings().warn("{}: refused a connection whose peer credentials cannot be read: {}",
                    description.name(), e.getMessage());
            return false;
        }
        if (policy.allows(peer.uid())) {
            return true;
        }
        runtime.warnings().warn("{}: refused a connection from uid {} (pid {}, gid {}): not in the allowed uids {}",
                description.name(), peer.uid(), peer.pid(), peer.gid(), policy.allowedUids());
        return false;
    }

    /**
     * Stops serving, asking the client first: the listener closes at once (no new client), then, if a client is
     * attached and registered an eventfd for the REQ interrupt, the interrupt fires and the client has up to
     * {@code grace} to let go of the device by itself (QEMU unplugs it from the guest) before it is disconnected.
     * Without a REQ eventfd the client is disconnected at once. Completes when the device is closed.
     */
    public CompletableFuture<Void> stop(java.time.Duration grace) {
        Channel c = client.get();
        ConnectionHandler handler = c == null ? null : c.pipeline().get(ConnectionHandler.class);
        if (handler == null || !handler.connection().requestRelease()) {
            close();
            return closed;
        }
        log.info("{}: asked the client to release the device (REQ)", description.name());
        // No one attaches after this client: the connections waiting for the device are closed now.
        closeConnections();
        io.netty.util.concurrent.Future<?> deadline = c.eventLoop().schedule(() -> {
            if (c.isOpen()) {
                log.info("{}: the client kept the device for {}; disconnecting it", description.name(), grace);
            }
            CompletableFuture.runAsync(this::close); // close() waits for channels: not on an event loop
        }, grace.toMillis(), java.util.concurrent.TimeUnit.MILLISECONDS);
        c.closeFuture().addListener(f -> {
            deadline.cancel(false);
            CompletableFuture.runAsync(this::close);
        });
        return closed;
    }

    /**
     * Stops serving: the listener closes (its socket file is removed), the client is disconnected, and the
     * teardown that follows a client (quiesce, reset with reason LOST_CONNECTION, {@code detached()}) is waited for,
     * up to {@link #TEARDOWN_WAIT}, so that no device callback arrives after this returns. Not on an event loop.
     */
    @Override
    public void close() {
        disconnect();
        try {
            lastTeardown.get(TEARDOWN_WAIT.toMillis(), java.util.concurrent.TimeUnit.MILLISECONDS);
        } catch (java.util.concurrent.TimeoutException e) {
            log.warn("{}: the device's reset after its last client did not finish within {}; closing anyway",
                    description.name(), TEARDOWN_WAIT);
        } catch (java.util.concurrent.ExecutionException e) {
            log.warn("{}: the teardown after the last client failed", description.name(), e.getCause());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        finish();
    }

    /**
     * Closes the listener, the held connections and the client's connection; {@link #close()} then waits for the
     * device's teardown.
     */
    void disconnect() {
        Channel l = listener;
        if (l != null) {
            l.close().syncUninterruptibly();
        }
        Channel c = closeConnections();
        if (c != null) {
            c.close().syncUninterruptibly();
        }
    }

    /** Frees the device's shared memory once, when neither the listener nor a client is left. */
    private void finish() {
        if (!closed.isDone()) {
            synchronized (this) {
                if (!closed.isDone()) {
                    runtime.close();
                    closed.complete(null);
                }
            }
        }
    }

    @Override
    public String toString() {
        return description.name() + "@" + where;
    }
}
