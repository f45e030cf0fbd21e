package io.vfiouser.codec;

import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.ByteToMessageDecoder;
import io.vfiouser.transport.BytesWithFds;
import io.vfiouser.transport.FdPairing;
import io.vfiouser.transport.FdSet;
import io.vfiouser.transport.FdTransportException;
import io.vfiouser.transport.ReceivedFds;
import java.util.List;

/**
 * Splits the inbound byte stream into vfio-user frames on the u32 little-endian {@code msg_size} at offset 4,
 * which counts the 16-byte header (spec §1.5), and gives each frame the fds that travelled with it. A frame goes
 * down the pipeline as a retained slice whose readable bytes are exactly the frame, or, when fds belong to it, as
 * a {@link BytesWithFds} of that slice and its fds. The fds come from the transport's {@link ReceivedFds}, which
 * the channel fires before the bytes of the read that brought them; the decoder consumes them and pairs them with
 * frames by the transport's rule ({@link FdPairing}), so that framing and fds are counted in one place. Other
 * messages that are not {@code ByteBuf}s pass through unchanged and in order.
 *
 * <p>A {@code msg_size} below 16 or above the maximum is a framing error: the stream cannot be resynchronised,
 * so the decoder fires a {@link VfioUserFramingException}, closes the channel and drops every byte and fd it
 * receives from then on. It decides as soon as the 12 bytes up to the flags field have arrived: the exception
 * carries the flags, so that a command flagged NO_REPLY gets no error reply, only the close. Fds that cannot
 * belong to a frame (see {@link FdPairing}) end the stream the same way, with an {@link FdTransportException}.
 *
 * <p>An optional {@link VfioUserFrameShortcut} may serve complete frames in place; those are skipped, not emitted.
 * It is offered only frames that carry no fds, so it never sees fds, and serving a frame costs no allocation.
 */
public final class VfioUserFrameDecoder extends ByteToMessageDecoder {
    /**
     * Bytes allowed on top of {@code max_data_xfer_size}: header and fixed payload parts of the data-carrying
     * messages (at most 16 + 16) with room to spare.
     */
    public static final int MESSAGE_OVERHEAD = 64;
    /** The default maximum {@code msg_size}: the default {@code max_data_xfer_size} (1 MiB) + 64. */
    public static final int DEFAULT_MAX_MESSAGE_SIZE =
            maxMessageSizeFor(VfioUserCapabilities.DEFAULT_MAX_DATA_XFER_SIZE);

    /**
     * The most fds per message of a decoder not told otherwise (tests, tools): servers and clients pass the
     * {@code max_msg_fds} they announce.
     */
    public static final int DEFAULT_MAX_FDS = 16;

    /** Bytes of a header up to and including its flags field: enough to judge {@code msg_size} and NO_REPLY. */
    private static final int FLAGS_FIELD_END = 12;

    private final int maxMessageSize;
    private final VfioUserFrameShortcut shortcut;
    private final FdPairing fds;
    private boolean failed;

    /** A decoder accepting messages up to {@link #DEFAULT_MAX_MESSAGE_SIZE} with up to {@link #DEFAULT_MAX_FDS}. */
    public VfioUserFrameDecoder() {
        this(DEFAULT_MAX_MESSAGE_SIZE);
    }

    /**
     * A decoder accepting messages up to {@code maxMessageSize} bytes, header included (at least 16), with up to
     * {@link #DEFAULT_MAX_FDS} fds.
     */
    public VfioUserFrameDecoder(int maxMessageSize) {
        this(maxMessageSize, DEFAULT_MAX_FDS, null);
    }

    /** A decoder accepting messages up to {@code maxMessageSize} bytes with up to {@code maxFds} fds each. */
    public VfioUserFrameDecoder(int maxMessageSize, int maxFds) {
        this(maxMessageSize, maxFds, null);
    }

    /**
     * A decoder accepting messages up to {@code maxMessageSize} bytes with up to {@link #DEFAULT_MAX_FDS} fds
     * each, which offers every complete frame without fds to {@code shortcut} first ({@code null}: none).
     */
    public VfioUserFrameDecoder(int maxMessageSize, VfioUserFrameShortcut shortcut) {
        this(maxMessageSize, DEFAULT_MAX_FDS, shortcut);
    }

    /**
     * A decoder accepting messages up to {@code maxMessageSize} bytes with up to {@code maxFds} fds each, which
     * offers every complete frame without fds to {@code shortcut} first ({@code null}: none).
     */
    public VfioUserFrameDecoder(int maxMessageSize, int maxFds, VfioUserFrameShortcut shortcut) {
        if (maxMessageSize < VfioUserHeader.HEADER_SIZE) {
            throw new IllegalArgumentException("maxMessageSize below the header size: " + maxMessageSize);
        }
        this.maxMessageSize = maxMessageSize;
        this.fds = new FdPairing(maxFds);
        this.shortcut = shortcut;
    }

    /** The maximum message size for a {@code max_data_xfer_size}: that plus {@link #MESSAGE_OVERHEAD}. */
    public static int maxMessageSizeFor(long maxDataXferSize) {
        if (maxDataXferSize < 0 || maxDataXferSize > Integer.MAX_VALUE - MESSAGE_OVERHEAD) {
            throw new IllegalArgumentException("max_data_xfer_size out of range: " + maxDataXferSize);
        }
        return (int) maxDataXferSize + MESSAGE_OVERHEAD;
    }

    public int maxMessageSize() {
        return maxMessageSize;
    }

    public int maxFds() {
        return fds.maxFds();
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) throws Exception {
        if (!(msg instanceof ReceivedFds received)) {
            super.channelRead(ctx, msg);
        } else if (failed) {
            received.release();
        } else {
            try {
                fds.received(received);
            } catch (FdTransportException e) {
                fail(ctx, internalBuffer(), e);
            }
        }
    }

    @Override
    protected void decode(ChannelHandlerContext ctx, ByteBuf in, List<Object> out) {
        if (failed) {
            in.skipBytes(in.readableBytes());
            return;
        }
        if (in.readableBytes() < FLAGS_FIELD_END) {
            return;
        }
        int start = in.readerIndex();
        long size = in.getUnsignedIntLE(start + 4);
        if (size < VfioUserHeader.HEADER_SIZE || size > maxMessageSize) {
            fail(ctx, in, size);
            return;
        }
        if (in.readableBytes() >= size) {
            FdSet frameFds;
            try {
                frameFds = fds.nextFrame((int) size);
            } catch (FdTransportException e) {
                fail(ctx, in, e);
                return;
            }
            if (!frameFds.isEmpty()) {
                out.add(new BytesWithFds(in.readRetainedSlice((int) size), frameFds));
            } else if (shortcut != null && shortcut.serve(ctx, in, start, (int) size)) {
                in.skipBytes((int) size);
            } else {
                out.add(in.readRetainedSlice((int) size));
            }
        } else if (size > in.capacity() - start && in.refCnt() == 1 && !in.isReadOnly()) {
            // A large message has begun: make room for all of it now, so the cumulation is grown once instead of
            // being reallocated and copied again at every doubling while the rest arrives.
            in.ensureWritable((int) size - in.readableBytes());
        }
    }

    private void fail(ChannelHandlerContext ctx, ByteBuf in, long size) {
        int start = in.readerIndex();
        int msgId = in.getUnsignedShortLE(start);
        int command = in.getUnsignedShortLE(start + 2);
        int flags = in.getIntLE(start + 8);
        String problem = size < VfioUserHeader.HEADER_SIZE
                ? "is below the header size"
                : "exceeds the maximum " + maxMessageSize;
        fail(ctx, in, new VfioUserFramingException(
                "msg_size " + size + " of message " + msgId + " (command " + command + ") " + problem,
                msgId, command, size, flags));
    }

    /** The stream can no longer be trusted: drop the bytes and fds that wait and those still to come, and close. */
    private void fail(ChannelHandlerContext ctx, ByteBuf in, Exception cause) {
        failed = true;
        fds.close();
        if (in != null) {
            in.skipBytes(in.readableBytes());
        }
        ctx.fireExceptionCaught(cause);
        ctx.close();
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) throws Exception {
        try {
            super.channelInactive(ctx);
        } finally {
            fds.close();
        }
    }

    @Override
    protected void handlerRemoved0(ChannelHandlerContext ctx) {
        fds.close();
    }
}
