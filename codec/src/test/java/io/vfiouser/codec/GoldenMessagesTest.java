package io.vfiouser.codec;

import static io.vfiouser.codec.CodecChannels.assertSameMessage;
import static io.vfiouser.codec.CodecChannels.releaseAll;
import static org.assertj.core.api.Assertions.assertThat;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.embedded.EmbeddedChannel;
import io.vfiouser.codec.Goldens.Golden;
import io.vfiouser.codec.payload.DmaAccess;
import io.vfiouser.codec.payload.RegionAccess;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.function.IntSupplier;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Every golden message decodes to its record and every message we produce encodes to its golden bytes; the
 * same bytes as one stream, cut into chunks of odd sizes, decode to the same messages.
 */
class GoldenMessagesTest {

    static Stream<Arguments> goldens() {
        return Goldens.all().stream()
                .flatMap(g -> g.layouts().stream().map(layout -> Arguments.of(g, layout)));
    }

    static Stream<Arguments> roundTripGoldens() {
        return goldens().filter(args -> ((Golden) args.get()[0]).roundTrip());
    }

    @ParameterizedTest(name = "{0} ({1})")
    @MethodSource("goldens")
    void decodesGoldenBytes(Golden golden, DmaLayout layout) {
        EmbeddedChannel channel = CodecChannels.decoding(layout);
        VfioUserMessage expected = golden.message().get();
        List<Object> decoded = List.of();
        try {
            channel.writeInbound(Goldens.buf(golden.bytes()));
            decoded = CodecChannels.inbound(channel);
            assertThat(decoded).hasSize(1);
            assertSameMessage(decoded.get(0), expected);
        } finally {
            releaseAll(decoded);
            expected.release();
            assertThat(channel.finishAndReleaseAll()).isFalse();
        }
    }

    @ParameterizedTest(name = "{0} ({1})")
    @MethodSource("roundTripGoldens")
    void encodesToGoldenBytes(Golden golden, DmaLayout layout) {
        EmbeddedChannel channel = CodecChannels.encoding(layout);
        VfioUserMessage message = golden.message().get();
        assertThat(message.header().messageSize()).as("msg_size the factory computed").isEqualTo(golden.bytes().length);
        channel.writeOutbound(message);
        List<byte[]> buffers = CodecChannels.outboundBuffers(channel);

        assertThat(Hex.dump(CodecChannels.concat(buffers))).isEqualTo(Hex.dump(golden.bytes()));
        assertThat(message.refCnt()).as("the encoder released the message").isZero();
        assertThat(channel.finishAndReleaseAll()).isFalse();
    }

    @Test
    void qemuVersionRequestIs214Bytes() {
        assertThat(Goldens.QEMU_VERSION_JSON).hasSize(193);
        assertThat(Goldens.all().get(0).bytes()).hasSize(214);
    }

    @ParameterizedTest(name = "chunks of {0} bytes")
    @ValueSource(ints = {1, 3, 7, 16, 17})
    void decodesStreamInFixedChunks(int chunkSize) {
        for (DmaLayout layout : DmaLayout.values()) {
            decodeStreamInChunks(layout, () -> chunkSize);
        }
    }

    @ParameterizedTest(name = "seed {0}")
    @ValueSource(longs = {1, 2, 3, 42, 4711})
    void decodesStreamInRandomChunks(long seed) {
        Random random = new Random(seed);
        for (DmaLayout layout : DmaLayout.values()) {
            decodeStreamInChunks(layout, () -> 1 + random.nextInt(random.nextBoolean() ? 8 : 300));
        }
    }

    private static void decodeStreamInChunks(DmaLayout layout, IntSupplier chunkSizes) {
        List<Golden> goldens = Goldens.in(layout);
        byte[] stream = Hex.concat(goldens.stream().map(Golden::bytes).toArray(byte[][]::new));
        EmbeddedChannel channel = CodecChannels.decoding(layout);
        List<Object> decoded = new ArrayList<>();
        List<VfioUserMessage> expected = new ArrayList<>();
        try {
            for (int at = 0; at < stream.length; ) {
                int length = Math.min(chunkSizes.getAsInt(), stream.length - at);
                channel.writeInbound(Goldens.buf(Arrays.copyOfRange(stream, at, at + length)));
                at += length;
            }
            decoded.addAll(CodecChannels.inbound(channel));
            goldens.forEach(g -> expected.add(g.message().get()));
            assertThat(decoded).hasSameSizeAs(expected);
            for (int i = 0; i < expected.size(); i++) {
                assertSameMessage(decoded.get(i), expected.get(i));
            }
        } finally {
            releaseAll(decoded);
            releaseAll(expected);
            assertThat(channel.finishAndReleaseAll()).isFalse();
        }
    }

    @Test
    void decodedDataIsAViewOfTheReceivedBytes() {
        Golden golden = Goldens.all().stream().filter(g -> g.name().equals("REGION_WRITE request NO_REPLY (posted)"))
                .findFirst().orElseThrow();
        EmbeddedChannel channel = CodecChannels.decoding(DmaLayout.SPEC);
        ByteBuf received = Goldens.buf(golden.bytes());
        channel.writeInbound(received.retain());
        VfioUserMessage message = channel.readInbound();
        try {
            ByteBuf data = message.payload(RegionAccess.class).data();
            received.setByte(golden.bytes().length - 4, 0x55);
            assertThat(data.getByte(data.readerIndex())).isEqualTo((byte) 0x55);
        } finally {
            message.release();
            received.release();
            assertThat(channel.finishAndReleaseAll()).isFalse();
        }
    }

    @Test
    void encoderSendsLargeDataWithoutCopying() {
        EmbeddedChannel channel = CodecChannels.encoding(DmaLayout.QEMU);
        ByteBuf data = Unpooled.directBuffer(512).writeZero(512);
        VfioUserMessage message = VfioUserMessage.reply(Goldens.request(1, VfioUserCommand.DMA_READ),
                DmaAccess.withData(0x1000, data.retain()));
        channel.writeOutbound(message);
        ByteBuf head = channel.readOutbound();
        ByteBuf body = channel.readOutbound();
        ByteBuf padding = channel.readOutbound();
        try {
            assertThat(head.readableBytes()).isEqualTo(16 + 12);
            assertThat(body.readableBytes()).isEqualTo(512);
            assertThat(padding.readableBytes()).isEqualTo(4);
            data.setByte(0, 0x55);
            assertThat(body.getByte(body.readerIndex())).as("shares the payload's memory").isEqualTo((byte) 0x55);
            assertThat(data.readerIndex()).as("the payload's indexes are untouched").isZero();
        } finally {
            head.release();
            body.release();
            padding.release();
            data.release();
            assertThat(channel.finishAndReleaseAll()).isFalse();
        }
    }

    @Test
    void encoderCopiesSmallDataIntoOneBuffer() {
        EmbeddedChannel channel = CodecChannels.encoding(DmaLayout.QEMU);
        ByteBuf data = Goldens.buf("0102030405060708");
        VfioUserMessage message = VfioUserMessage.reply(Goldens.request(1, VfioUserCommand.DMA_READ),
                DmaAccess.withData(0x1000, data));
        channel.writeOutbound(message);
        ByteBuf whole = channel.readOutbound();
        try {
            Object more = channel.readOutbound();
            assertThat(more).as("one buffer for the whole message").isNull();
            assertThat(whole.readableBytes()).isEqualTo(16 + 12 + 8 + 4);
            assertThat(whole.getByte(whole.readerIndex() + 28)).isEqualTo((byte) 0x01);
            assertThat(whole.getIntLE(whole.readerIndex() + 36)).as("QEMU's trailing padding").isZero();
        } finally {
            whole.release();
            assertThat(channel.finishAndReleaseAll()).isFalse();
        }
    }
}
