package io.vfiouser.transport;

import io.netty.channel.AbstractServerChannel;
import io.netty.channel.ChannelConfig;
import io.netty.channel.ChannelPipeline;
import io.netty.channel.ChannelPromise;
import io.netty.channel.DefaultChannelConfig;
import io.netty.channel.EventLoop;
import io.netty.channel.IoEvent;
import io.netty.channel.IoEventLoop;
import io.netty.channel.IoRegistration;
import io.netty.channel.epoll.EpollIoHandle;
import io.netty.channel.epoll.EpollIoOps;
import io.netty.channel.unix.DomainSocketAddress;
import io.netty.channel.unix.FileDescriptor;
import io.vfiouser.transport.linux.Errno;
import io.vfiouser.transport.linux.ErrnoException;
import io.vfiouser.transport.linux.Linux;
import java.net.SocketAddress;
import java.util.concurrent.TimeUnit;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

/**
 * A listening {@code AF_UNIX} stream socket on an epoll event loop whose accepted connections are
 * {@link UnixChannel}s. Use it with {@code ServerBootstrap.channelFactory(...)}: either bind it to a path (the
 * socket file is created with {@link #socketFileMode() mode} 0600 unless told otherwise, and removed when the
 * channel closes) or construct it around a socket that is already listening, such as an fd handed to the process
 * with {@code --fd=N}.
 *
 * <p><b>The socket file appears listening.</b> A client that connects the moment the file appears (QEMU started
 * together with the server, a script polling for the file) must not get {@code ECONNREFUSED}, which it would
 * between {@code bind(2)} and {@code listen(2)}. So the socket is bound to a temporary name in the same directory,
 * listens, gets its group and mode ({@link FilePreparation}), and only then receives its final name with
 * {@code link(2)}, which is atomic and, unlike {@code rename(2)}, never replaces a file that already has the name:
 * a path that is taken (a live server's socket, a stale file, anything) fails the bind with {@code EADDRINUSE} as
 * a plain {@code bind(2)} would, and no one's socket is hijacked. The temporary name is removed right after.
 */
public final class UnixServerChannel extends AbstractServerChannel {
    private static final Logger LOG = LogManager.getLogger(UnixServerChannel.class);
    private static final EpollIoOps READ_OPS = EpollIoOps.EPOLLIN.with(EpollIoOps.EPOLLERR);
    private static final int BACKLOG = 128;
    /** How long accepting pauses when the process (or the system) has no fd left for a new connection. */
    static final long ACCEPT_PAUSE_MS = 100;
    /** At most one line per this interval while accepts keep failing for want of fds. */
    static final long ACCEPT_FAILURE_LOG_INTERVAL_MS = 60_000;

    static {
        // Loaded now, not on the first failed accept: with no fd left, no class file can be opened to load them.
        LOG.trace("accept failures are reported as {}", new ErrnoException("accept4", Errno.EMFILE).getMessage());
    }

    private final FileDescriptor fd;
    /** Auto-read off (as Netty's acceptor does for a second after an accept error) stops accepting for real. */
    private final DefaultChannelConfig config = new DefaultChannelConfig(this) {
        @Override
        protected void autoReadCleared() {
            if (eventLoop().inEventLoop()) {
                dropReadInterest();
            } else {
                eventLoop().execute(() -> {
                    if (!isAutoRead()) {
                        dropReadInterest();
                    }
                });
            }
        }
    };
    private final boolean ownsPath;
    private final int socketFileMode;
    private final FilePreparation preparation;
    private volatile boolean active;
    private volatile DomainSocketAddress local;
    private IoRegistration registration;
    private boolean readInterest;
    /** Accepting is paused after the process ran out of fds; a scheduled task resumes it. */
    private boolean acceptPaused;
    private volatile long acceptFailures;
    /** When the last line about failed accepts was logged, and how many failed since. */
    private long failureLoggedAt;
    private long failuresUnlogged;
    private boolean failing;

    /** A new socket to be bound to a path, whose socket file gets mode 0600. */
    public UnixServerChannel() {
        this(0600);
    }

    /** A new socket to be bound to a path, whose socket file gets {@code socketFileMode} (such as 0660). */
    public UnixServerChannel(int socketFileMode) {
        this(socketFileMode, file -> { });
    }

    /**
     * A new socket to be bound to a path, whose socket file is created with {@code socketFileMode} and then handed
     * to {@code preparation} (to give it a group, say) while it is listening but before it has its final name.
     */
    public UnixServerChannel(int socketFileMode, FilePreparation preparation) {
        try {
            this.fd = new FileDescriptor(Linux.socketUnix());
        } catch (ErrnoException e) {
            throw new io.netty.channel.ChannelException(e);
        }
        this.ownsPath = true;
        this.socketFileMode = socketFileMode;
        this.preparation = java.util.Objects.requireNonNull(preparation);
    }

    /** What is done to the socket file, under its temporary name, before it gets its final one. */
    @FunctionalInterface
    public interface FilePreparation {
        /** Prepares the listening socket's file at {@code temporaryPath}; an exception fails the bind. */
        void prepare(java.nio.file.Path temporaryPath) throws java.io.IOException;
    }

    /**
     * Adopts a socket that is already bound and listening (inherited fd, socket activation). The channel owns the
     * fd; the socket file, if any, belongs to whoever created it and is left alone.
     */
    public UnixServerChannel(int listeningFd, DomainSocketAddress address) {
        try {
            Linux.setNonBlocking(listeningFd);
        } catch (ErrnoException e) {
            throw new io.netty.channel.ChannelException(e);
        }
        this.fd = new FileDescriptor(listeningFd);
        this.ownsPath = false;
        this.socketFileMode = -1;
        this.preparation = null;
        this.local = address;
        this.active = true;
    }

    /** The permission bits the socket file is created with, or -1 for an adopted socket. */
    public int socketFileMode() {
        return socketFileMode;
    }

    @Override
    public ChannelConfig config() {
        return config;
    }

    @Override
    public boolean isOpen() {
        return fd.isOpen();
    }

    @Override
    public boolean isActive() {
        return active;
    }

    @Override
    public DomainSocketAddress localAddress() {
        return (DomainSocketAddress) super.localAddress();
    }

    @Override
    protected SocketAddress localAddress0() {
        return local;
    }

    @Override
    protected boolean isCompatible(EventLoop loop) {
        return loop instanceof IoEventLoop ioLoop && ioLoop.isCompatible(ServerUnsafe.class);
    }

    @Override
    protected AbstractUnsafe newUnsafe() {
        return new ServerUnsafe();
    }

    @Override
    protected void doRegister(ChannelPromise promise) {
        ((IoEventLoop) eventLoop()).register((ServerUnsafe) unsafe()).addListener(f -> {
            if (f.isSuccess()) {
                registration = (IoRegistration) f.getNow();
                promise.setSuccess();
            } else {
                promise.setFailure(f.cause());
            }
        });
    }

    @Override
    protected void doBind(SocketAddress localAddress) throws Exception {
        if (!(localAddress instanceof DomainSocketAddress address)) {
            throw new IllegalArgumentException("expected a DomainSocketAddress: " + localAddress);
        }
        if (!ownsPath) {
            throw new IllegalStateException("an adopted socket is bound already");
        }
        String path = address.path();
        int length = path.getBytes(java.nio.charset.StandardCharsets.UTF_8).length;
        if (length == 0 || length >= Linux.UNIX_PATH_MAX) {
            throw new IllegalArgumentException("socket path must be 1.." + (Linux.UNIX_PATH_MAX - 1) + " bytes: "
                    + path);
        }
        // The socket inode's mode becomes the file's mode at bind: no window with looser permissions.
        Linux.fchmod(fd.intValue(), socketFileMode);
        String temporary = bindTemporary(path);
        try {
            Linux.listen(fd.intValue(), BACKLOG);
            preparation.prepare(java.nio.file.Path.of(temporary));
            try {
                Linux.link(temporary, path);
            } catch (ErrnoException e) {
                // The name is taken: what bind(2) itself reports for a path that exists.
                throw e.errno() == Errno.EEXIST ? new ErrnoException("bind", Errno.EADDRINUSE) : e;
            }
        } finally {
            try {
                Linux.unlink(temporary);
            } catch (ErrnoException e) {
                LOG.warn("could not remove the temporary socket file {}: {}", temporary, e.getMessage());
            }
        }
        local = address;
        active = true;
    }

    /**
     * Binds the socket to a fresh name in the directory of {@code path} (a hidden one when the 108-byte address
     * limit leaves room for it) and returns that name. A name that exists is skipped.
     */
    private String bindTemporary(String path) throws ErrnoException {
        int slash = path.lastIndexOf('/');
        String dir = slash < 0 ? "" : path.substring(0, slash + 1);
        int room = Linux.UNIX_PATH_MAX - 1 - dir.getBytes(java.nio.charset.StandardCharsets.UTF_8).length;
        String prefix = room >= 14 ? ".vfu-" : "";
        int randomChars = Math.min(8, room - prefix.length());
        java.util.concurrent.ThreadLocalRandom random = java.util.concurrent.ThreadLocalRandom.current();
        for (int attempt = 0; ; attempt++) {
            StringBuilder name = new StringBuilder(dir).append(prefix);
            for (int i = 0; i < randomChars; i++) {
                name.append(TEMP_CHARS.charAt(random.nextInt(TEMP_CHARS.length())));
            }
            try {
                Linux.bind(fd.intValue(), name.toString());
                return name.toString();
            } catch (ErrnoException e) {
                if (e.errno() != Errno.EADDRINUSE || attempt >= 100) {
                    throw e;
                }
            }
        }
    }

    private static final String TEMP_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

    @Override
    protected void doBeginRead() {
        if (!readInterest && registration != null) {
            readInterest = true;
            if (!acceptPaused) {
                registration.submit(READ_OPS);
            }
        }
    }

    /** No more EPOLLIN: pending connections wait in the backlog (the interest set keeps EPOLLERR, never empty). */
    private void dropReadInterest() {
        if (readInterest) {
            readInterest = false;
            IoRegistration r = registration;
            if (r != null && isOpen()) {
                r.submit(EpollIoOps.EPOLLERR);
            }
        }
    }

    /**
     * Accepts failed for want of fds ({@code EMFILE}, {@code ENFILE}, or kernel memory): the connection stays in the
     * backlog, and since epoll is level-triggered, retrying at once would spin the event loop on the listening fd
     * for as long as the shortage lasts. So EPOLLIN goes for {@link #ACCEPT_PAUSE_MS}, and the shortage is logged
     * once per {@link #ACCEPT_FAILURE_LOG_INTERVAL_MS} (no stack trace: nothing in this process is broken).
     */
    private void pauseAccepting(int errno) {
        acceptFailures++;
        long now = System.nanoTime();
        if (!failing) {
            failing = true;
            failureLoggedAt = now;
            failuresUnlogged = 0;
            LOG.warn("{}: cannot accept connections: accept4 failed with {} (no fd left); retrying every {} ms",
                    where(), Errno.name(errno), ACCEPT_PAUSE_MS);
        } else if (now - failureLoggedAt >= TimeUnit.MILLISECONDS.toNanos(ACCEPT_FAILURE_LOG_INTERVAL_MS)) {
            LOG.warn("{}: still cannot accept connections ({}): {} more failed attempts", where(),
                    Errno.name(errno), failuresUnlogged + 1);
            failureLoggedAt = now;
            failuresUnlogged = 0;
        } else {
            failuresUnlogged++;
        }
        acceptPaused = true;
        IoRegistration r = registration;
        if (r != null) {
            r.submit(EpollIoOps.EPOLLERR);
        }
        eventLoop().schedule(() -> {
            acceptPaused = false;
            IoRegistration again = registration;
            if (readInterest && again != null && isOpen()) {
                again.submit(READ_OPS);
            }
        }, ACCEPT_PAUSE_MS, TimeUnit.MILLISECONDS);
    }

    private String where() {
        DomainSocketAddress address = local;
        return address == null ? "unix socket" : address.path();
    }

    /** Accepts that failed because the process or the system had no fd left, since the channel opened. */
    public long acceptFailures() {
        return acceptFailures;
    }

    @Override
    protected void doDeregister() {
        IoRegistration r = registration;
        if (r != null) {
            registration = null;
            readInterest = false;
            r.cancel();
        }
    }

    @Override
    protected void doClose() throws Exception {
        boolean wasActive = active;
        active = false;
        if (isRegistered() && eventLoop().inEventLoop()) {
            doDeregister();
        }
        // The file goes first: a client that connects while it exists must find the socket listening.
        DomainSocketAddress address = local;
        if (ownsPath && wasActive && address != null) {
            try {
                Linux.unlink(address.path());
            } catch (ErrnoException e) {
                LOG.warn("could not remove socket file {}: {}", address.path(), e.getMessage());
            }
        }
        fd.close();
    }

    private void acceptReady() {
        ChannelPipeline pipeline = pipeline();
        Throwable failure = null;
        int accepted = 0;
        boolean exhausted = false;
        try {
            while (accepted < 64) {
                int child;
                try {
                    child = Linux.accept(fd.intValue());
                } catch (ErrnoException e) {
                    if (e.errno() == Errno.ECONNABORTED) {
                        continue; // the peer left before it was accepted: take the next one
                    }
                    if (e.errno() == Errno.EMFILE || e.errno() == Errno.ENFILE || e.errno() == Errno.ENOBUFS
                            || e.errno() == Errno.ENOMEM) {
                        pauseAccepting(e.errno());
                        exhausted = true;
                        break;
                    }
                    throw e;
                }
                if (child < 0) {
                    break;
                }
                if (failing) {
                    failing = false;
                    LOG.info("{}: accepting connections again", where());
                }
                accepted++;
                pipeline.fireChannelRead(new UnixChannel(this, child, local));
            }
        } catch (Throwable t) {
            failure = t;
        }
        pipeline.fireChannelReadComplete();
        if (failure != null) {
            pipeline.fireExceptionCaught(failure);
        }
        if (accepted == 64 && !exhausted) {
            // More may be waiting; let the other channels of this loop have a turn first.
            eventLoop().execute(() -> {
                if (isOpen() && readInterest && !acceptPaused) {
                    acceptReady();
                }
            });
        }
    }

    private final class ServerUnsafe extends AbstractUnsafe implements EpollIoHandle {
        @Override
        public FileDescriptor fd() {
            return UnixServerChannel.this.fd;
        }

        @Override
        public void handle(IoRegistration registration, IoEvent event) {
            if (isOpen()) {
                acceptReady();
            }
        }

        @Override
        public void connect(SocketAddress remoteAddress, SocketAddress localAddress, ChannelPromise promise) {
            promise.setFailure(new UnsupportedOperationException("a server channel does not connect"));
        }

        @Override
        public void close() {
            close(voidPromise());
        }
    }
}
