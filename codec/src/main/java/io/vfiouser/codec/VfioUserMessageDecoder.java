package io.vfiouser.codec;

import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelHandler.Sharable;
import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.CorruptedFrameException;
import io.netty.handler.codec.MessageToMessageDecoder;
import io.vfiouser.codec.payload.VfioUserPayload;
import io.vfiouser.transport.BytesWithFds;
import io.vfiouser.transport.FdSet;
import java.util.List;
import java.util.Objects;

/**
 * Turns frames into messages. It accepts what {@link VfioUserFrameDecoder} emits: a {@code ByteBuf} holding
 * exactly one frame, or a {@link BytesWithFds} whose content is one frame and whose fds came with it; anything else
 * passes through.
 *
 * <p>For each frame it emits either a {@link VfioUserMessage} or, when the frame has invalid type bits, an
 * unknown command or a malformed payload, a {@link VfioUserInvalidMessage} carrying the errno to answer with.
 * The payload decoder comes from {@link VfioUserCommand}: the request decoder for a command, the reply decoder
 * for a reply; an error reply is header only (any payload is ignored). Catching
 * {@link VfioUserProtocolException} here is the one place where decode failures become errnos.
 *
 * <p>Ownership: the frame is released after decoding; payload data stays as retained zero-copy slices owned by
 * the message. The fds move into the emitted message (a new {@link FdSet} with the same fds in the same
 * order), or are closed if the frame is not even a frame (a {@link CorruptedFrameException}, a bug upstream).
 *
 * <p>The {@link DmaLayout} is read per message from the channel attribute {@link DmaLayout#ATTRIBUTE}, falling
 * back to the constructor's default. Stateless and therefore sharable.
 */
@Sharable
public final class VfioUserMessageDecoder extends MessageToMessageDecoder<Object> {
    private final DmaLayout defaultLayout;

    /** A decoder whose default DMA layout is {@link DmaLayout#SPEC}. */
    public VfioUserMessageDecoder() {
        this(DmaLayout.SPEC);
    }

    public VfioUserMessageDecoder(DmaLayout defaultLayout) {
        super(Object.class);
        this.defaultLayout = Objects.requireNonNull(defaultLayout, "defaultLayout");
    }

    @Override
    public boolean acceptInboundMessage(Object msg) {
        return msg instanceof ByteBuf || msg instanceof BytesWithFds;
    }

    @Override
    protected void decode(ChannelHandlerContext ctx, Object msg, List<Object> out) {
        DmaLayout layout = DmaLayout.of(ctx.channel(), defaultLayout);
        if (msg instanceof BytesWithFds framed) {
            out.add(decodeFrame(framed.content(), takeAll(framed.fds()), layout));
        } else {
            out.add(decodeFrame((ByteBuf) msg, FdSet.EMPTY, layout));
        }
    }

    private static Object decodeFrame(ByteBuf frame, FdSet fds, DmaLayout layout) {
        try {
            if (frame.readableBytes() < VfioUserHeader.HEADER_SIZE) {
                throw new CorruptedFrameException("a frame of " + frame.readableBytes() + " bytes has no header");
            }
            VfioUserHeader header = VfioUserHeader.decode(frame);
            if (header.payloadSize() != frame.readableBytes()) {
                throw new CorruptedFrameException(header + " arrived in a frame with "
                        + frame.readableBytes() + " payload bytes");
            }
            try {
                VfioUserPayload payload = decodePayload(header, frame, layout);
                VfioUserMessage message = new VfioUserMessage(header, payload, fds);
                ByteBuf data = payload == null ? null : payload.data();
                if (data != null) {
                    data.retain();
                }
                return message;
            } catch (VfioUserProtocolException e) {
                return new VfioUserInvalidMessage(header, e.errno(), e.getMessage(), fds);
            }
        } catch (RuntimeException | Error e) {
            VfioUserMessage.closeFds(fds);
            throw e;
        }
    }

    private static VfioUserPayload decodePayload(VfioUserHeader header, ByteBuf payload, DmaLayout layout) {
        if (header.type() != VfioUserHeader.COMMAND && header.type() != VfioUserHeader.REPLY) {
            throw VfioUserProtocolException.invalid("message type " + header.type() + " is neither command nor reply");
        }
        VfioUserCommand command = VfioUserCommand.fromCode(header.command());
        if (command == null) {
            throw VfioUserProtocolException.invalid("unknown command " + header.command());
        }
        if (header.isCommand()) {
            return command.requestDecoder().decode(payload, layout);
        }
        return header.isError() ? null : command.replyDecoder().decode(payload, layout);
    }

    /** Moves every fd of {@code set} into a new set (the old one is left with nothing to close). */
    private static FdSet takeAll(FdSet set) {
        if (set.isEmpty()) {
            return FdSet.EMPTY;
        }
        int[] fds = new int[set.size()];
        int taken = 0;
        try {
            for (; taken < fds.length; taken++) {
                fds[taken] = set.take(taken);
            }
        } catch (RuntimeException e) {
            for (int i = 0; i < taken; i++) {
                FdSet.closeQuietly(fds[i]);
            }
            throw e;
        }
        return FdSet.of(fds);
    }
}
