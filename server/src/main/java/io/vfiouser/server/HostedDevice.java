package io.vfiouser.server;

import io.netty.channel.Channel;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelPipeline;
import io.vfiouser.codec.VfioUserFrameDecoder;
import io.vfiouser.codec.VfioUserMessageDecoder;
import io.vfiouser.codec.VfioUserMessageEncoder;
import io.vfiouser.device.DeviceDescription;
import io.vfiouser.transport.FdAttachHandler;
import io.vfiouser.transport.UnixChannel;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.logging.log4j.Logger;

/**
 * One device served on one socket. It accepts one client at a time: a connection that arrives while a client is
 * attached is closed at once; after the client leaves, the next connection attaches.
 */
public final class HostedDevice implements AutoCloseable {
    private static final VfioUserMessageEncoder ENCODER = VfioUserMessageEncoder.INSTANCE;

    private final DeviceRuntime runtime;
    private final DeviceDescription description;
    private final String where;
    private final ServerOptions options;
    private final SocketPolicy policy;
    private final Logger log;
    private final AtomicReference<Channel> client = new AtomicReference<>();
    private final CompletableFuture<Void> closed = new CompletableFuture<>();
    private volatile Channel listener;
    /** The last client's teardown; the next client's session waits for it before reading. */
    /** How long {@link #close()} waits for the device's reset and {@code detached()} after its last client. */
    static final java.time.Duration TEARDOWN_WAIT = java.time.Duration.ofSeconds(10);

    private volatile CompletableFuture<Void> lastTeardown = CompletableFuture.completedFuture(null);

    HostedDevice(DeviceRuntime runtime, String where, ServerOptions options, SocketPolicy policy) {
        this.runtime = runtime;
        this.description = runtime.description();
        this.where = where;
        this.options = options;
        this.policy = policy;
        this.log = runtime.log();
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
        return runtime.stats();
    }

    /** Whether a client is attached right now. */
    public boolean hasClient() {
        return client.get() != null;
    }

    /** Completes when the device stops being served. */
    public CompletableFuture<Void> closeFuture() {
        return closed;
    }

    void listening(Channel listener) {
        this.listener = listener;
        listener.closeFuture().addListener(f -> {
            // The device is done once its last client is gone and the reset and detached() after it are over.
            Channel c = client.get();
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
                if (!client.compareAndSet(null, ch)) {
                    runtime.stats().clientRefused();
                    runtime.warnings().warn("{}: refused a second client while one is attached", description.name());
                    ch.close();
                    return;
                }
                runtime.stats().clientAccepted();
                ch.closeFuture().addListener(f -> client.compareAndSet(ch, null));
                ch.attr(io.vfiouser.codec.DmaLayout.ATTRIBUTE).set(options.dmaLayout());
                // Reads grow up to a whole message, so a 1 MiB write arrives in few recvmsg calls.
                ch.config().setRecvByteBufAllocator(
                        new io.netty.channel.AdaptiveRecvByteBufAllocator(64, 2048, options.maxMessageSize()));
                // Replies queued above the high-water mark make the channel unwritable: the session then stops
                // handling and reading the client's commands until they are below the low-water mark.
                ch.config().setWriteBufferWaterMark(new io.netty.channel.WriteBufferWaterMark(
                        options.limits().outboundLowWaterMark(), options.limits().outboundHighWaterMark()));
                ChannelPipeline p = ch.pipeline();
                p.addLast("traffic", new TrafficCounter(runtime.stats()));
                VfioUserSession session = new VfioUserSession(runtime, options, lastTeardown);
                lastTeardown = session.teardown();
                FdAttachHandler fds = new FdAttachHandler(options.maxMsgFds());
                p.addLast("frames", new VfioUserFrameDecoder(options.maxMessageSize(), new RegionFastPath(session, fds)));
                p.addLast("fds", fds);
                p.addLast("decoder", new VfioUserMessageDecoder(options.dmaLayout()));
                p.addLast("encoder", ENCODER);
                p.addLast("session", session);
            }
        };
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
        if (c == null || !runtime.requestRelease()) {
            close();
            return closed;
        }
        log.info("{}: asked the client to release the device (REQ)", description.name());
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

    /** Closes the listener and the client's connection; {@link #close()} then waits for the device's teardown. */
    void disconnect() {
        Channel l = listener;
        if (l != null) {
            l.close().syncUninterruptibly();
        }
        Channel c = client.get();
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
