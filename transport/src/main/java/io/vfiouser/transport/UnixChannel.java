package io.vfiouser.transport;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.channel.AbstractChannel;
import io.netty.channel.Channel;
import io.netty.channel.ChannelConfig;
import io.netty.channel.ChannelMetadata;
import io.netty.channel.ChannelOutboundBuffer;
import io.netty.channel.ChannelPipeline;
import io.netty.channel.ChannelPromise;
import io.netty.channel.ConnectTimeoutException;
import io.netty.channel.EventLoop;
import io.netty.channel.IoEvent;
import io.netty.channel.IoEventLoop;
import io.netty.channel.IoRegistration;
import io.netty.channel.RecvByteBufAllocator;
import io.netty.channel.epoll.EpollIoEvent;
import io.netty.channel.epoll.EpollIoHandle;
import io.netty.channel.epoll.EpollIoOps;
import io.netty.channel.unix.DomainSocketAddress;
import io.netty.channel.unix.FileDescriptor;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.ScheduledFuture;
import io.vfiouser.transport.linux.ErrnoException;
import io.vfiouser.transport.linux.Linux;
import io.vfiouser.transport.linux.MsgHdr;
import io.vfiouser.transport.linux.PeerCredentials;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.net.SocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.util.concurrent.TimeUnit;

/**
 * A connected {@code AF_UNIX} stream socket on an epoll event loop that carries file descriptors with its bytes.
 *
 * <p><b>Inbound</b>: every read is one {@code recvmsg(2)} into a pooled direct buffer (the kernel writes straight
 * into the buffer's memory). A read that brings fds first fires a {@link ReceivedFds}, then the bytes; the frame
 * decoder later in the pipeline gives those fds to the frame holding the read's last byte ({@link FdPairing}).
 * A read whose control data was truncated ({@code MSG_CTRUNC}) closes the fds that did arrive and the channel.
 *
 * <p><b>Outbound</b>: accepts {@link ByteBuf}s and {@link BytesWithFds}. Consecutive ByteBufs go out together in
 * one gathering {@code sendmsg(2)}; a {@code BytesWithFds} always starts a {@code sendmsg} of its own with its
 * fds attached, so the fds ride on the message's first byte. Partial writes resume where they stopped; when
 * the socket is full the channel waits for EPOLLOUT and its writability follows Netty's water marks.
 *
 * <p>The same class serves accepted connections (children of {@link UnixServerChannel}), client connections
 * ({@link #connect(SocketAddress)} to a {@link DomainSocketAddress}) and already-connected fds handed over by
 * someone else (for example one end of a socketpair).
 */
public final class UnixChannel extends AbstractChannel {
    private static final ChannelMetadata METADATA = new ChannelMetadata(false, 16);
    /** EPOLLHUP has no {@link EpollIoOps} constant. */
    private static final int EPOLLHUP = 0x10;
    private static final EpollIoOps BASE_OPS = EpollIoOps.EPOLLERR.with(EpollIoOps.EPOLLRDHUP);
    private static final long CONNECT_RETRY_NANOS = TimeUnit.MILLISECONDS.toNanos(1);

    private final FileDescriptor fd;
    private final UnixChannelConfig config;
    private final MsgHdr msg = new MsgHdr();
    private final int[] noFds = new int[0];
    private volatile boolean active;
    private volatile DomainSocketAddress local;
    private volatile DomainSocketAddress remote;
    private IoRegistration registration;
    private EpollIoOps ops = BASE_OPS;
    /** Bytes received so far: the stream offset of the next byte to arrive. */
    private long received;
    /** Whether the fds of the {@link BytesWithFds} at the head of the outbound buffer are already sent. */
    private boolean headFdsSent;
    private ChannelPromise connectPromise;
    private ScheduledFuture<?> connectRetry;
    private long connectDeadline;

    /** A new unconnected client socket; connect it with {@link #connect(SocketAddress)}. */
    public UnixChannel() {
        this(null, newSocket(), false);
    }

    /**
     * Adopts an already connected, non-blocking stream socket (for example one end of
     * {@link Linux#socketPair(boolean)}). The channel owns the fd from here on.
     */
    public UnixChannel(int connectedFd) {
        this(null, nonBlocking(connectedFd), true);
    }

    private static int nonBlocking(int fd) {
        try {
            Linux.setNonBlocking(fd);
            return fd;
        } catch (ErrnoException e) {
            throw new io.netty.channel.ChannelException(e);
        }
    }

    /** An accepted connection of {@code parent}. */
    UnixChannel(UnixServerChannel parent, int acceptedFd, DomainSocketAddress local) {
        this(parent, acceptedFd, true);
        this.local = local;
    }

    private UnixChannel(Channel parent, int fd, boolean connected) {
        super(parent);
        this.fd = new FileDescriptor(fd);
        this.config = new UnixChannelConfig(this, this::clearReadInterest);
        this.active = connected;
        if (connected) {
            ops = ops.with(EpollIoOps.EPOLLIN);
        }
    }

    private static int newSocket() {
        try {
            return Linux.socketUnix();
        } catch (ErrnoException e) {
            throw new io.netty.channel.ChannelException(e);
        }
    }

    /** The socket's fd number; owned by the channel. */
    public int fd() {
        return fd.intValue();
    }

    /** Who is at the other end ({@code SO_PEERCRED}). */
    public PeerCredentials peerCredentials() throws ErrnoException {
        return Linux.peerCredentials(fd.intValue());
    }

    @Override
    public UnixChannelConfig config() {
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
    public ChannelMetadata metadata() {
        return METADATA;
    }

    @Override
    public DomainSocketAddress localAddress() {
        return (DomainSocketAddress) super.localAddress();
    }

    @Override
    public DomainSocketAddress remoteAddress() {
        return (DomainSocketAddress) super.remoteAddress();
    }

    @Override
    protected SocketAddress localAddress0() {
        return local;
    }

    @Override
    protected SocketAddress remoteAddress0() {
        return remote;
    }

    @Override
    protected AbstractUnsafe newUnsafe() {
        return new UnixUnsafe();
    }

    @Override
    protected boolean isCompatible(EventLoop loop) {
        return loop instanceof IoEventLoop ioLoop && ioLoop.isCompatible(UnixUnsafe.class);
    }

    @Override
    protected void doRegister(ChannelPromise promise) {
        ((IoEventLoop) eventLoop()).register((UnixUnsafe) unsafe()).addListener(f -> {
            if (f.isSuccess()) {
                registration = (IoRegistration) f.getNow();
                try {
                    submitOps();
                    promise.setSuccess();
                } catch (RuntimeException e) {
                    promise.setFailure(e);
                }
            } else {
                promise.setFailure(f.cause());
            }
        });
    }

    @Override
    protected void doDeregister() {
        IoRegistration r = registration;
        if (r != null) {
            registration = null;
            r.cancel();
        }
    }

    @Override
    protected void doBind(SocketAddress localAddress) throws Exception {
        throw new UnsupportedOperationException("a client unix socket is not bound to a path");
    }

    @Override
    protected void doDisconnect() throws Exception {
        doClose();
    }

    @Override
    protected void doClose() throws Exception {
        active = false;
        ChannelPromise promise = connectPromise;
        if (promise != null) {
            connectPromise = null;
            promise.tryFailure(new ClosedChannelException());
        }
        if (connectRetry != null) {
            connectRetry.cancel(false);
            connectRetry = null;
        }
        // Cancel the registration while the fd is still open, so a reused fd number cannot lose its own.
        if (isRegistered() && eventLoop().inEventLoop()) {
            doDeregister();
        }
        fd.close();
    }

    @Override
    protected void doBeginRead() {
        if (!ops.contains(EpollIoOps.EPOLLIN) || !ops.contains(EpollIoOps.EPOLLRDHUP)) {
            ops = ops.with(EpollIoOps.EPOLLIN).with(EpollIoOps.EPOLLRDHUP);
            submitOps();
        }
    }

    private void clearReadInterest() {
        if (!isRegistered()) {
            ops = ops.without(EpollIoOps.EPOLLIN);
            return;
        }
        if (eventLoop().inEventLoop()) {
            clearInterest(EpollIoOps.EPOLLIN);
        } else {
            eventLoop().execute(() -> {
                if (!config.isAutoRead()) {
                    clearInterest(EpollIoOps.EPOLLIN);
                }
            });
        }
    }

    private void setInterest(EpollIoOps flag) {
        if (ops.contains(flag)) {
            return;
        }
        ops = ops.with(flag);
        submitOps();
    }

    private void clearInterest(EpollIoOps flag) {
        if (!ops.contains(flag)) {
            return;
        }
        ops = ops.without(flag);
        submitOps();
    }

    /** Submits the whole interest set; it always holds EPOLLERR, so it is never empty (see the design notes). */
    private void submitOps() {
        IoRegistration r = registration;
        if (r != null && isOpen() && (active || connectPromise != null)) {
            r.submit(ops);
        }
    }

    @Override
    protected Object filterOutboundMessage(Object msg) {
        if (msg instanceof ByteBuf buf) {
            return buf.isDirect() ? buf : directCopy(buf);
        }
        if (msg instanceof BytesWithFds bytes) {
            if (bytes.content().isDirect()) {
                return bytes;
            }
            BytesWithFds copy = new BytesWithFds(directCopy(bytes.content().retain()), bytes.fds());
            // The copy now owns the fds: release the original's bytes without closing them.
            bytes.content().release();
            return copy;
        }
        throw new UnsupportedOperationException(
                "unsupported message type: " + msg.getClass().getSimpleName() + " (expected ByteBuf or BytesWithFds)");
    }

    private ByteBuf directCopy(ByteBuf heap) {
        ByteBuf direct = alloc().directBuffer(heap.readableBytes());
        direct.writeBytes(heap, heap.readerIndex(), heap.readableBytes());
        ReferenceCountUtil.safeRelease(heap);
        return direct;
    }

    // ------------------------------------------------------------------------------------------------ writing

    @Override
    protected void doWrite(ChannelOutboundBuffer in) throws Exception {
        int spin = config.getWriteSpinCount();
        while (spin-- > 0) {
            Object head = in.current();
            if (head == null) {
                clearInterest(EpollIoOps.EPOLLOUT);
                return;
            }
            boolean wroteAll = head instanceof BytesWithFds bytes ? writeWithFds(in, bytes) : writeGathered(in);
            if (!wroteAll) {
                // The socket is full: wait for EPOLLOUT.
                setInterest(EpollIoOps.EPOLLOUT);
                return;
            }
        }
        // Used the whole quantum: give other channels of this loop a turn, then continue.
        clearInterest(EpollIoOps.EPOLLOUT);
        eventLoop().execute(() -> ((UnixUnsafe) unsafe()).flushNow());
    }

    /** One sendmsg of the fd-carrying message at the head; returns false when the socket took nothing. */
    private boolean writeWithFds(ChannelOutboundBuffer in, BytesWithFds bytes) throws IOException {
        ByteBuf content = bytes.content();
        int iovCount = addIovs(content, 0);
        if (iovCount < 0) {
            throw new IOException("message with fds spans more than " + MsgHdr.MAX_IOV + " buffers");
        }
        int[] fds = headFdsSent ? noFds : bytes.fds().peekAll();
        msg.prepareSend(iovCount == 0 ? 1 : iovCount, fds, fds.length);
        if (iovCount == 0) {
            msg.iov(0, 0, 0);
        }
        long n = Linux.sendmsg(fd.intValue(), msg);
        if (n < 0) {
            return false;
        }
        headFdsSent = true;
        content.skipBytes((int) n);
        in.progress(n);
        if (!content.isReadable()) {
            headFdsSent = false;
            in.remove();
        }
        return true;
    }

    /** One gathering sendmsg of the ByteBufs at the head; returns false when the socket took nothing. */
    private boolean writeGathered(ChannelOutboundBuffer in) throws Exception {
        GatherProcessor gather = gatherProcessor;
        gather.reset();
        in.forEachFlushedMessage(gather);
        if (gather.iovCount == 0) {
            // Only empty buffers at the head: drop them.
            while (in.current() instanceof ByteBuf buf && !buf.isReadable()) {
                in.remove();
            }
            return true;
        }
        long n;
        if (gather.iovCount == 1) {
            // One buffer and no fds: send(2) is measurably cheaper than sendmsg(2).
            n = Linux.send(fd.intValue(), gather.firstAddress, gather.firstLength);
        } else {
            msg.prepareSend(gather.iovCount, noFds, 0);
            n = Linux.sendmsg(fd.intValue(), msg);
        }
        if (n < 0) {
            return false;
        }
        in.removeBytes(n);
        return true;
    }

    private final GatherProcessor gatherProcessor = new GatherProcessor();

    private final class GatherProcessor implements ChannelOutboundBuffer.MessageProcessor {
        int iovCount;
        long bytes;
        long firstAddress;
        long firstLength;

        void reset() {
            iovCount = 0;
            bytes = 0;
        }

        @Override
        public boolean processMessage(Object m) {
            if (!(m instanceof ByteBuf buf)) {
                return false;
            }
            if (!buf.isReadable()) {
                return true;
            }
            int added = addIovs(buf, iovCount);
            if (added < 0) {
                return false;
            }
            if (iovCount == 0 && added == 1) {
                firstAddress = lastIovAddress;
                firstLength = lastIovLength;
            }
            iovCount = added;
            bytes += buf.readableBytes();
            return iovCount < MsgHdr.MAX_IOV && bytes < Integer.MAX_VALUE / 2;
        }
    }

    /**
     * Adds the readable bytes of {@code buf} as iovecs after {@code iovCount} existing ones. Returns the new
     * count, or -1 if they do not fit (nothing is added then).
     */
    private int addIovs(ByteBuf buf, int iovCount) {
        if (buf.hasMemoryAddress()) {
            if (iovCount >= MsgHdr.MAX_IOV) {
                return -1;
            }
            setIov(iovCount, buf.memoryAddress() + buf.readerIndex(), buf.readableBytes());
            return iovCount + 1;
        }
        int count = buf.nioBufferCount();
        if (count < 0 || iovCount + count > MsgHdr.MAX_IOV) {
            return -1;
        }
        for (ByteBuffer nio : buf.nioBuffers()) {
            if (!nio.hasRemaining()) {
                continue;
            }
            setIov(iovCount++, MemorySegment.ofBuffer(nio).address(), nio.remaining());
        }
        return iovCount;
    }

    private long lastIovAddress;
    private long lastIovLength;

    private void setIov(int index, long address, long length) {
        msg.iov(index, address, length);
        lastIovAddress = address;
        lastIovLength = length;
    }

    // ------------------------------------------------------------------------------------------------ reading

    private void readReady() {
        UnixUnsafe unsafe = (UnixUnsafe) unsafe();
        ChannelConfig cfg = config;
        ChannelPipeline pipeline = pipeline();
        ByteBufAllocator allocator = cfg.getAllocator();
        RecvByteBufAllocator.Handle handle = unsafe.recvBufAllocHandle();
        handle.reset(cfg);
        boolean close = false;
        Throwable failure = null;
        try {
            do {
                ByteBuf buf = handle.allocate(allocator);
                long n;
                int[] fds;
                try {
                    int writable = buf.writableBytes();
                    if (buf.hasMemoryAddress()) {
                        msg.iov(0, buf.memoryAddress() + buf.writerIndex(), writable);
                    } else {
                        msg.iov(0, MemorySegment.ofBuffer(buf.internalNioBuffer(buf.writerIndex(), writable)).address(),
                                writable);
                    }
                    msg.prepareReceive(1);
                    n = Linux.recvmsg(fd.intValue(), msg);
                    fds = n >= 0 ? msg.receivedFds() : noFds;
                } catch (Throwable t) {
                    buf.release();
                    throw t;
                }
                if (n >= 0 && msg.controlTruncated()) {
                    buf.release();
                    for (int f : fds) {
                        FdSet.closeQuietly(f);
                    }
                    throw new FdTransportException("control data truncated (MSG_CTRUNC): more fds than "
                            + MsgHdr.MAX_FDS + " in one read");
                }
                if (n <= 0) {
                    buf.release();
                    handle.lastBytesRead(n == 0 ? -1 : 0);
                    if (n == 0) {
                        for (int f : fds) {
                            FdSet.closeQuietly(f);
                        }
                        close = true;
                    }
                    break;
                }
                buf.writerIndex(buf.writerIndex() + (int) n);
                handle.lastBytesRead((int) n);
                handle.incMessagesRead(1);
                unsafe.readPending = false;
                if (fds.length > 0) {
                    pipeline.fireChannelRead(new ReceivedFds(FdSet.wrap(fds), received, received + n - 1));
                }
                received += n;
                pipeline.fireChannelRead(buf);
                if (!isActive() || !isOpen()) {
                    break;
                }
            } while (handle.continueReading());
        } catch (Throwable t) {
            failure = t;
        }
        handle.readComplete();
        pipeline.fireChannelReadComplete();
        if (failure != null) {
            pipeline.fireExceptionCaught(failure);
            close = true;
        }
        if (close) {
            unsafe.close(unsafe.voidPromise());
        } else if (!unsafe.readPending && !config.isAutoRead()) {
            clearInterest(EpollIoOps.EPOLLIN);
        }
    }

    // ------------------------------------------------------------------------------------------------ connect

    private void connectNow(DomainSocketAddress remoteAddress, ChannelPromise promise) {
        try {
            if (Linux.connect(fd.intValue(), remoteAddress.path())) {
                connectPromise = null;
                remote = remoteAddress;
                active = true;
                ops = ops.with(EpollIoOps.EPOLLIN);
                submitOps();
                boolean wasCancelled = !promise.trySuccess();
                pipeline().fireChannelActive();
                if (wasCancelled) {
                    unsafe().close(unsafe().voidPromise());
                }
                return;
            }
            // The listen backlog is full (EAGAIN): unix sockets have no EINPROGRESS, so try again shortly.
            if (System.nanoTime() - connectDeadline > 0) {
                throw new ConnectTimeoutException("connection timed out: " + remoteAddress.path());
            }
            connectPromise = promise;
            connectRetry = eventLoop().schedule(() -> {
                connectRetry = null;
                if (connectPromise == promise && !promise.isDone()) {
                    connectNow(remoteAddress, promise);
                }
            }, CONNECT_RETRY_NANOS, TimeUnit.NANOSECONDS);
        } catch (Throwable t) {
            connectPromise = null;
            promise.tryFailure(t);
            unsafe().closeForcibly();
        }
    }

    private final class UnixUnsafe extends AbstractUnsafe implements EpollIoHandle {
        boolean readPending;

        @Override
        public FileDescriptor fd() {
            return UnixChannel.this.fd;
        }

        @Override
        public void handle(IoRegistration registration, IoEvent event) {
            int ready = ((EpollIoEvent) event).ops().value();
            if ((ready & (EpollIoOps.EPOLLOUT.value() | EpollIoOps.EPOLLERR.value())) != 0 && active) {
                flushNow();
            }
            int readMask = EpollIoOps.EPOLLIN.value() | EpollIoOps.EPOLLERR.value() | EpollIoOps.EPOLLRDHUP.value()
                    | EPOLLHUP;
            if ((ready & readMask) != 0 && isOpen() && active) {
                if (!ops.contains(EpollIoOps.EPOLLIN)
                        && (ready & (EpollIoOps.EPOLLERR.value() | EPOLLHUP)) == 0) {
                    // The peer shut down its side while reading is off (auto-read false): reading now would
                    // ignore that, and the level-triggered event would come back on every pass of the loop. Stop
                    // watching for it until reading resumes; the read then finds the end of the stream.
                    clearInterest(EpollIoOps.EPOLLRDHUP);
                } else {
                    readReady();
                }
            }
        }

        void flushNow() {
            super.flush0();
        }

        @Override
        protected void flush0() {
            // While waiting for EPOLLOUT a flush would only fail to write again: the event will flush.
            if (!ops.contains(EpollIoOps.EPOLLOUT)) {
                super.flush0();
            }
        }

        @Override
        public void connect(SocketAddress remoteAddress, SocketAddress localAddress, ChannelPromise promise) {
            if (!promise.setUncancellable() || !ensureOpen(promise)) {
                return;
            }
            if (active || connectPromise != null) {
                promise.setFailure(new IllegalStateException("already connected or connecting"));
                return;
            }
            if (!(remoteAddress instanceof DomainSocketAddress address)) {
                promise.setFailure(new IllegalArgumentException("expected a DomainSocketAddress: " + remoteAddress));
                return;
            }
            connectDeadline = System.nanoTime()
                    + TimeUnit.MILLISECONDS.toNanos(Math.max(1, config.getConnectTimeoutMillis()));
            connectNow(address, promise);
        }

        @Override
        public void close() {
            close(voidPromise());
        }
    }
}
