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
import io.vfiouser.transport.linux.ErrnoException;
import io.vfiouser.transport.linux.Linux;
import java.net.SocketAddress;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

/**
 * A listening {@code AF_UNIX} stream socket on an epoll event loop whose accepted connections are
 * {@link UnixChannel}s. Use it with {@code ServerBootstrap.channelFactory(...)}: either bind it to a path (the
 * socket file is created with {@link #socketFileMode() mode} 0600 unless told otherwise, and removed when the
 * channel closes) or construct it around a socket that is already listening, such as an fd handed to the process
 * with {@code --fd=N}.
 */
public final class UnixServerChannel extends AbstractServerChannel {
    private static final Logger LOG = LogManager.getLogger(UnixServerChannel.class);
    private static final EpollIoOps READ_OPS = EpollIoOps.EPOLLIN.with(EpollIoOps.EPOLLERR);
    private static final int BACKLOG = 128;

    private final FileDescriptor fd;
    private final DefaultChannelConfig config = new DefaultChannelConfig(this);
    private final boolean ownsPath;
    private final int socketFileMode;
    private volatile boolean active;
    private volatile DomainSocketAddress local;
    private IoRegistration registration;
    private boolean readInterest;

    /** A new socket to be bound to a path, whose socket file gets mode 0600. */
    public UnixServerChannel() {
        this(0600);
    }

    /** A new socket to be bound to a path, whose socket file gets {@code socketFileMode} (such as 0660). */
    public UnixServerChannel(int socketFileMode) {
        try {
            this.fd = new FileDescriptor(Linux.socketUnix());
        } catch (ErrnoException e) {
            throw new io.netty.channel.ChannelException(e);
        }
        this.ownsPath = true;
        this.socketFileMode = socketFileMode;
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
        // The socket inode's mode becomes the file's mode at bind: no window with looser permissions.
        Linux.fchmod(fd.intValue(), socketFileMode);
        Linux.bind(fd.intValue(), address.path());
        Linux.listen(fd.intValue(), BACKLOG);
        local = address;
        active = true;
    }

    @Override
    protected void doBeginRead() {
        if (!readInterest && registration != null) {
            readInterest = true;
            registration.submit(READ_OPS);
        }
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
        fd.close();
        DomainSocketAddress address = local;
        if (ownsPath && wasActive && address != null) {
            try {
                Linux.unlink(address.path());
            } catch (ErrnoException e) {
                LOG.warn("could not remove socket file {}: {}", address.path(), e.getMessage());
            }
        }
    }

    private void acceptReady() {
        ChannelPipeline pipeline = pipeline();
        Throwable failure = null;
        int accepted = 0;
        try {
            while (accepted < 64) {
                int child = Linux.accept(fd.intValue());
                if (child < 0) {
                    break;
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
        if (accepted == 64) {
            // More may be waiting; let the other channels of this loop have a turn first.
            eventLoop().execute(() -> {
                if (isOpen()) {
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
