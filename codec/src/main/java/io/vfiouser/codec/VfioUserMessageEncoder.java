package io.vfiouser.codec;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.CompositeByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelHandler.Sharable;
import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.EncoderException;
import io.netty.handler.codec.MessageToMessageEncoder;
import io.vfiouser.codec.payload.VfioUserPayload;
import io.vfiouser.transport.BytesWithFds;
import java.util.List;
import java.util.Objects;

/**
 * Encodes {@link VfioUserMessage}s. The header, with {@code msg_size} computed from the payload, and the
 * payload's fixed part go into one buffer from the channel's allocator; a payload's {@link VfioUserPayload#data()
 * data} follows as a separate retained duplicate (no copy), and zero padding after it, if the layout has any, as
 * a third buffer, so that the channel can gather them into one write.
 *
 * <p>A message with fds becomes exactly one {@link BytesWithFds} instead: a composite of the same buffers and
 * the message's {@link io.vfiouser.transport.FdSet}, which moves out of the message (the message then closes
 * nothing; the {@code BytesWithFds} closes the fds once, after sending or on failure).
 *
 * <p>The {@link DmaLayout} is read per message from the channel attribute {@link DmaLayout#ATTRIBUTE}, falling
 * back to the constructor's default. Stateless and sharable.
 */
@Sharable
public final class VfioUserMessageEncoder extends MessageToMessageEncoder<VfioUserMessage> {
    /** An encoder whose default DMA layout is {@link DmaLayout#SPEC}. */
    public static final VfioUserMessageEncoder INSTANCE = new VfioUserMessageEncoder(DmaLayout.SPEC);

    private static final long MAX_MESSAGE_SIZE = Integer.MAX_VALUE;
    private static final ByteBuf ZEROES = Unpooled.unreleasableBuffer(Unpooled.directBuffer(16).writeZero(16));

    /** Data up to this many bytes is copied into the header buffer instead of being sent as a buffer of its own. */
    static final int INLINE_DATA = 256;

    private final DmaLayout defaultLayout;

    public VfioUserMessageEncoder(DmaLayout defaultLayout) {
        super(VfioUserMessage.class);
        this.defaultLayout = Objects.requireNonNull(defaultLayout, "defaultLayout");
    }

    @Override
    protected void encode(ChannelHandlerContext ctx, VfioUserMessage msg, List<Object> out) {
        VfioUserPayload payload = msg.payload();
        ByteBuf data = payload == null ? null : payload.data();
        int dataSize = data == null ? 0 : data.readableBytes();
        long messageSize = VfioUserHeader.HEADER_SIZE + (payload == null ? 0L : payload.encodedSize());
        if (messageSize > MAX_MESSAGE_SIZE) {
            throw new EncoderException(msg.header() + ": message of " + messageSize + " bytes is too large");
        }
        VfioUserHeader header = msg.header();
        if (header.messageSize() != messageSize) {
            header = header.withMessageSize(messageSize);
        }

        // Small data (a register value) is copied behind the fixed part: one buffer, one plain send(2).
        boolean inline = data != null && dataSize <= INLINE_DATA;
        ByteBuf head = ctx.alloc().buffer((int) messageSize - (inline ? 0 : dataSize));
        int padding;
        try {
            header.encode(head);
            if (payload != null) {
                payload.encode(head, DmaLayout.of(ctx.channel(), defaultLayout));
            }
            padding = (int) messageSize - head.readableBytes() - dataSize;
            if (padding < 0 || padding > ZEROES.capacity()) {
                throw new EncoderException(payload + " wrote " + (head.readableBytes() - VfioUserHeader.HEADER_SIZE)
                        + " bytes besides its data but announced " + payload.encodedSize());
            }
            if (inline) {
                head.writeBytes(data, data.readerIndex(), dataSize);
            }
            if (data == null || inline) {
                head.writeZero(padding);
            }
        } catch (RuntimeException e) {
            head.release();
            throw e;
        }

        ByteBuf body = data == null || inline ? null : data.retainedDuplicate();
        ByteBuf pad = body == null || padding == 0 ? null : ZEROES.slice(0, padding);
        if (msg.fds().isEmpty()) {
            out.add(head);
            if (body != null) {
                out.add(body);
            }
            if (pad != null) {
                out.add(pad);
            }
        } else {
            out.add(new BytesWithFds(composite(ctx.alloc(), head, body, pad), msg.takeFds()));
        }
    }

    private static ByteBuf composite(ByteBufAllocator alloc, ByteBuf head, ByteBuf body, ByteBuf pad) {
        if (body == null) {
            return head;
        }
        CompositeByteBuf composite = alloc.compositeBuffer(3);
        composite.addComponent(true, head);
        composite.addComponent(true, body);
        if (pad != null) {
            composite.addComponent(true, pad);
        }
        return composite;
    }
}
