package io.vfiouser.server.connection;

import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.util.ReferenceCountUtil;
import io.vfiouser.codec.VfioUserCapabilities;
import io.vfiouser.codec.VfioUserCommand;
import io.vfiouser.codec.VfioUserHeader;
import io.vfiouser.codec.VfioUserInvalidMessage;
import io.vfiouser.codec.VfioUserMessage;
import io.vfiouser.codec.VfioUserProtocolException;
import io.vfiouser.codec.payload.DmaAccess;
import io.vfiouser.server.dma.DmaMessenger;
import io.vfiouser.transport.linux.Errno;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import org.apache.logging.log4j.Logger;

/**
 * The server's own DMA_READ and DMA_WRITE requests to the client (digest 3.11, 3.12), for guest memory the client
 * mapped without a file descriptor. A request is sent on the connection's event loop with a fresh message id and
 * completed by the client's reply with that id, which never waits in the command queue: a device waiting for DMA
 * never blocks the command stream.
 *
 * <p>Requests go out on the main socket, or on the twin socket when the client negotiated one ({@link TwinSocket}),
 * which this object owns from {@link #open} and closes in {@link #close}. Open from negotiation until the client
 * leaves; a request made while closed, or still waiting when the client
 * leaves, fails with {@link ClosedChannelException}. {@link #outstanding()} changes are reported to the connection's
 * handler (it reads the client's replies even behind a full command queue while one is outstanding).
 */
final class ServerDmaRequests implements DmaMessenger {
    /** A DMA request's count before the client said what it takes (VERSION). */
    private static final int DEFAULT_MAX_TRANSFER = 1 << 20;
    /** The largest errno an error reply may carry; libvfio-user reads anything above as EINVAL too. */
    private static final int MAX_ERRNO = 4096;

    private final Channel channel;
    private final Logger log;
    private final String name;
    /** The server's own {@code max_data_xfer_size}: the most data it reads in one reply. */
    private final int serverMaxTransfer;
    private Runnable outstandingChanged = () -> {
    };
    private final Map<Integer, CompletableFuture<VfioUserMessage>> waiting = new HashMap<>();
    private volatile VfioUserCapabilities client;
    /** Where requests go: the main channel, or the twin socket's server end. */
    private Channel out;
    private boolean open;
    private int nextId;

    ServerDmaRequests(Channel channel, Logger log, String name, int serverMaxTransfer) {
        this.channel = channel;
        this.out = channel;
        this.log = log;
        this.name = name;
        this.serverMaxTransfer = serverMaxTransfer;
    }

    /** Called on the event loop when the first request starts waiting and when the last one is answered. */
    void onOutstandingChanged(Runnable listener) {
        this.outstandingChanged = listener;
    }

    /**
     * The client negotiated: requests may go out, no larger than its {@code max_data_xfer_size}, on {@code twin}
     * (taken over: closed with this object), or on the main channel when it is null.
     */
    void open(VfioUserCapabilities client, Channel twin) {
        this.client = client;
        this.out = twin != null ? twin : channel;
        this.open = true;
    }

    /** The client left: every waiting request fails, later ones too; the twin socket closes. On the event loop. */
    void close() {
        open = false;
        if (out != channel) {
            out.close();
        }
        ClosedChannelException gone = new ClosedChannelException();
        for (CompletableFuture<VfioUserMessage> reply : waiting.values()) {
            reply.completeExceptionally(gone);
        }
        waiting.clear();
    }

    /**
     * Whether a request waits for the client's reply on the main socket (with a twin socket, its reply comes there,
     * and the main socket's reading owes it nothing).
     */
    boolean outstanding() {
        return !waiting.isEmpty() && out == channel;
    }

    /**
     * Completes the request {@code reply} answers; false if it answers none (it stays the caller's then), or if it
     * came on another channel than its request went out on ({@code from}): with a twin socket, replies to the
     * server's requests belong on the twin.
     */
    boolean complete(VfioUserMessage reply, Channel from) {
        CompletableFuture<VfioUserMessage> request = from == out ? take(reply.header()) : null;
        if (request == null) {
            return false;
        }
        request.complete(reply);
        return true;
    }

    /** Fails the request an undecodable reply answers; false if it answers none (or came on the other channel). */
    boolean fail(VfioUserInvalidMessage reply, Channel from) {
        CompletableFuture<VfioUserMessage> request = from == out ? take(reply.header()) : null;
        if (request == null) {
            return false;
        }
        request.completeExceptionally(new VfioUserProtocolException(reply.errno(), reply.reason()));
        reply.release();
        return true;
    }

    private CompletableFuture<VfioUserMessage> take(VfioUserHeader header) {
        if (!header.isReply()) {
            return null;
        }
        CompletableFuture<VfioUserMessage> request = waiting.remove(header.msgId());
        if (request != null && waiting.isEmpty()) {
            outstandingChanged.run();
        }
        return request;
    }

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
        ByteBuf data = channel.alloc().buffer(src.remaining());
        data.writeBytes(src);
        return request(VfioUserCommand.DMA_WRITE, DmaAccess.withData(address, data)).thenAccept(reply -> {
            reply.release();
        });
    }

    /**
     * The client's {@code max_data_xfer_size}, but no more than the server's own: a DMA_READ reply carries as many
     * bytes as its request asked for, and the server reads no larger message (QEMU, too, refuses requests above
     * the server's value, digest 3.11).
     */
    @Override
    public int maxTransferSize() {
        return Math.max(1, Math.min(clientMaxTransferSize(), serverMaxTransfer));
    }

    /** The client's {@code max_data_xfer_size} (1 MiB before it said), capped at {@code Integer.MAX_VALUE}. */
    int clientMaxTransferSize() {
        VfioUserCapabilities c = client;
        return (int) Math.min(Integer.MAX_VALUE, c == null ? DEFAULT_MAX_TRANSFER : c.maxDataXferSize());
    }

    /** Sends a server-issued command and completes with its successful reply, or fails with its errno. */
    private CompletableFuture<VfioUserMessage> request(VfioUserCommand command, DmaAccess payload) {
        CompletableFuture<VfioUserMessage> reply = new CompletableFuture<>();
        channel.eventLoop().execute(() -> {
            if (!open) {
                ReferenceCountUtil.safeRelease(payload.data());
                reply.completeExceptionally(new ClosedChannelException());
                return;
            }
            int id = nextId++ & 0xFFFF;
            while (waiting.containsKey(id)) {
                id = nextId++ & 0xFFFF;
            }
            boolean first = waiting.isEmpty();
            waiting.put(id, reply);
            if (first) {
                outstandingChanged.run();
            }
            VfioUserMessage message = VfioUserMessage.command(id, command, payload);
            if (log.isTraceEnabled()) {
                log.trace(TraceLine.of(name, out != channel ? "-> (twin)" : "->", message));
            }
            out.writeAndFlush(message, out.voidPromise());
        });
        return reply.thenApply(r -> {
            if (r.header().isError()) {
                // 0 and values above 4096 are no errno: EINVAL, as libvfio-user reads them (digest 1.3).
                int error = r.header().error();
                int errno = error > 0 && error <= MAX_ERRNO ? error : Errno.EINVAL;
                r.release();
                throw new VfioUserProtocolException(errno, command + " failed at the client");
            }
            return r;
        });
    }
}
