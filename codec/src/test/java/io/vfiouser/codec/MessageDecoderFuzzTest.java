package io.vfiouser.codec;

import static org.assertj.core.api.Assertions.assertThat;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.buffer.Unpooled;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.util.ReferenceCountUtil;
import io.vfiouser.codec.payload.IoFdEntry;
import io.vfiouser.codec.payload.RegionInfo;
import io.vfiouser.codec.payload.RegionIoFds;
import java.io.ByteArrayOutputStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Fuzzes {@link VfioUserMessageDecoder}, and through it every payload decoder, requests and replies, in both DMA
 * layouts, with any frame. The one thing that comes out must be a {@link VfioUserMessage} or a
 * {@link VfioUserInvalidMessage} with a positive errno and the frame's header, never an exception; every buffer
 * must be released. An input holds several frames, decoded one by one, so that one seed holds every golden.
 *
 * <p>Round trip: a decoded message encoded by {@link VfioUserMessageEncoder} (same layout) must give a frame of
 * the size its header announces that decodes to a message with the same header (but for {@code msg_size}: the
 * decoders skip bytes they do not need, the encoder writes none) and an equal payload, which encodes to the very
 * same bytes. The exceptions: a DEVICE_GET_REGION_IO_FDS reply whose {@code argsz} spaces its entries wider than
 * the 40 bytes we write (libvfio-user's 48-byte entries), which we read but never produce; a region info whose
 * chain held only unknown capabilities, whose encoding only has to be a fixed point.
 *
 * <p>Input: the frames, each as long as its {@code msg_size} says but at least 16 bytes and at most what is left
 * (the field is then set to the length; less than 16 bytes left is no frame), then (read from the end) a byte for
 * the DMA layout and a byte for the message type of every frame: 0 as in the frame, 1 command, 2 reply, 3 error
 * reply.
 */
class MessageDecoderFuzzTest {
    private static final ThreadLocal<EmbeddedChannel> DECODERS =
            ThreadLocal.withInitial(() -> FuzzSupport.channel(new VfioUserMessageDecoder()));
    private static final ThreadLocal<EmbeddedChannel> ENCODERS =
            ThreadLocal.withInitial(() -> FuzzSupport.channel(VfioUserMessageEncoder.INSTANCE));

    @FuzzTest(maxDuration = "10m")
    void frames(FuzzedDataProvider data) {
        DmaLayout layout = data.consumeBoolean() ? DmaLayout.QEMU : DmaLayout.SPEC;
        int type = data.consumeInt(0, 3);
        byte[] frames = data.consumeRemainingAsBytes();
        for (int at = 0; frames.length - at >= VfioUserHeader.HEADER_SIZE; ) {
            long announced = Integer.toUnsignedLong(getInt(frames, at + 4));
            int size = (int) Math.max(VfioUserHeader.HEADER_SIZE, Math.min(announced, frames.length - at));
            frame(Arrays.copyOfRange(frames, at, at + size), layout, type);
            at += size;
        }
    }

    private static void frame(byte[] frame, DmaLayout layout, int type) {
        setInt(frame, 4, frame.length);
        switch (type) {
            case 1 -> frame[12] &= (byte) ~(VfioUserHeader.TYPE_MASK | VfioUserHeader.ERROR);
            case 2 -> frame[12] = (byte) (frame[12] & ~(VfioUserHeader.TYPE_MASK | VfioUserHeader.ERROR)
                    | VfioUserHeader.REPLY);
            case 3 -> frame[12] = (byte) (frame[12] & ~VfioUserHeader.TYPE_MASK
                    | VfioUserHeader.REPLY | VfioUserHeader.ERROR);
            default -> {
            }
        }
        VfioUserHeader header = VfioUserHeader.decode(Unpooled.wrappedBuffer(frame));

        Object decoded = decode(frame, layout);
        try {
            if (decoded instanceof VfioUserInvalidMessage invalid) {
                assertThat(invalid.errno()).isPositive();
                assertThat(invalid.header()).isEqualTo(header);
                assertThat(invalid.fds().isEmpty()).isTrue();
            } else {
                assertThat(decoded).isInstanceOf(VfioUserMessage.class);
                VfioUserMessage message = (VfioUserMessage) decoded;
                assertThat(message.header()).isEqualTo(header);
                RoundTrip roundTrip = roundTrip(message);
                if (roundTrip != RoundTrip.NONE) {
                    checkRoundTrip(message, layout, roundTrip);
                }
            }
        } finally {
            ReferenceCountUtil.release(decoded);
        }
        FuzzSupport.assertReleased();
    }

    /** How much of the round trip holds for a decoded message. */
    private enum RoundTrip {
        /** Encoded and decoded again it is equal (but for msg_size), and encodes to the same bytes. */
        EXACT,
        /**
         * The decoder dropped something it does not keep (unknown region capabilities: CAPS without caps): the
         * encoding decodes to a message that encodes to the same bytes.
         */
        FIXED_POINT,
        /** libvfio-user's 48-byte IO_FDS entries, which we read but do not write: nothing to check. */
        NONE
    }

    private static RoundTrip roundTrip(VfioUserMessage message) {
        if (message.payload() instanceof RegionIoFds ioFds && !ioFds.entries().isEmpty()) {
            long stride = (ioFds.argsz() - RegionIoFds.FIXED_SIZE) / ioFds.entries().size();
            return stride == IoFdEntry.SIZE ? RoundTrip.EXACT : RoundTrip.NONE;
        }
        if (message.payload() instanceof RegionInfo info && info.caps().isEmpty()
                && (info.flags() & RegionInfo.FLAG_CAPS) != 0) {
            return RoundTrip.FIXED_POINT;
        }
        return RoundTrip.EXACT;
    }

    private static void checkRoundTrip(VfioUserMessage message, DmaLayout layout, RoundTrip roundTrip) {
        byte[] encoded = encode(message, layout);
        assertThat(Unpooled.wrappedBuffer(encoded).getUnsignedIntLE(4)).as("msg_size of the encoded frame")
                .isEqualTo(encoded.length);
        Object again = decode(encoded, layout);
        try {
            if (!(again instanceof VfioUserMessage decodedAgain)) {
                throw new AssertionError(message + " encoded and decoded again gives " + again);
            }
            if (roundTrip == RoundTrip.EXACT) {
                assertThat(decodedAgain.header()).isEqualTo(message.header().withMessageSize(encoded.length));
                assertThat(decodedAgain.payload()).isEqualTo(message.payload());
            }
            assertThat(encode(decodedAgain, layout)).as("encoding of the decoded encoding").isEqualTo(encoded);
        } finally {
            ReferenceCountUtil.release(again);
        }
    }

    /**
     * The one message (or invalid message) {@code frame} decodes to. The channels live as long as the fuzzing
     * thread: a new pipeline per frame would cost more than the decoding it checks.
     */
    private static Object decode(byte[] frame, DmaLayout layout) {
        EmbeddedChannel channel = DECODERS.get();
        channel.attr(DmaLayout.ATTRIBUTE).set(layout);
        List<Object> received = new ArrayList<>(1);
        try {
            channel.writeInbound(FuzzSupport.buffer(frame));
            for (Object msg; (msg = channel.readInbound()) != null; ) {
                received.add(msg);
            }
            assertThat(received).hasSize(1);
            return received.remove(0);
        } finally {
            received.forEach(ReferenceCountUtil::release);
        }
    }

    /** The bytes the encoder writes for {@code message}, which stays the caller's. */
    private static byte[] encode(VfioUserMessage message, DmaLayout layout) {
        EmbeddedChannel channel = ENCODERS.get();
        channel.attr(DmaLayout.ATTRIBUTE).set(layout);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        channel.writeOutbound(message.retain());
        for (Object msg; (msg = channel.readOutbound()) != null; ) {
            try {
                assertThat(msg).isInstanceOf(ByteBuf.class);
                out.writeBytes(ByteBufUtil.getBytes((ByteBuf) msg));
            } finally {
                ReferenceCountUtil.release(msg);
            }
        }
        return out.toByteArray();
    }

    private static int getInt(byte[] bytes, int offset) {
        return (bytes[offset] & 0xff) | (bytes[offset + 1] & 0xff) << 8 | (bytes[offset + 2] & 0xff) << 16
                | (bytes[offset + 3] & 0xff) << 24;
    }

    private static void setInt(byte[] bytes, int offset, int value) {
        for (int i = 0; i < 4; i++) {
            bytes[offset + i] = (byte) (value >>> 8 * i);
        }
    }
}
