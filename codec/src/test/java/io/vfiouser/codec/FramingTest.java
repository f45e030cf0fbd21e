package io.vfiouser.codec;

import static io.vfiouser.codec.Hex.bytes;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.netty.buffer.ByteBuf;
import io.netty.channel.embedded.EmbeddedChannel;
import io.vfiouser.transport.FdSet;
import io.vfiouser.transport.ReceivedFds;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The frame decoder: frames on msg_size, fails fast on sizes it cannot frame, passes other messages through (the
 * fds it pairs with frames: {@link FrameFdsTest}).
 */
class FramingTest {
    private static final byte[] RESET = bytes("1500 0d00 10000000 00000000 00000000");
    private static final byte[] READ = bytes("1100 0900 20000000 00000000 00000000 0000000000000000 07000000 04000000");

    @Test
    void emitsEachFrameAsASliceOfExactlyTheFrame() {
        EmbeddedChannel channel = new EmbeddedChannel(new VfioUserFrameDecoder());
        channel.writeInbound(Goldens.buf(Hex.concat(READ, RESET)));
        ByteBuf first = channel.readInbound();
        ByteBuf second = channel.readInbound();
        try {
            assertThat(Hex.of(first)).isEqualTo(READ);
            assertThat(Hex.of(second)).isEqualTo(RESET);
        } finally {
            first.release();
            second.release();
            assertThat(channel.finishAndReleaseAll()).isFalse();
        }
    }

    @Test
    void waitsForTheSizeFieldAndTheWholeFrame() {
        EmbeddedChannel channel = new EmbeddedChannel(new VfioUserFrameDecoder(64));
        assertThat(channel.writeInbound(Goldens.buf(Arrays.copyOf(READ, 7)))).isFalse();
        assertThat(channel.writeInbound(Goldens.buf(Arrays.copyOfRange(READ, 7, 31)))).isFalse();
        assertThat(channel.writeInbound(Goldens.buf(Arrays.copyOfRange(READ, 31, 32)))).isTrue();
        ByteBuf frame = channel.readInbound();
        assertThat(Hex.of(frame)).isEqualTo(READ);
        frame.release();
        assertThat(channel.finishAndReleaseAll()).isFalse();
    }

    @Test
    void sizeBelowTheHeaderClosesTheChannel() {
        EmbeddedChannel channel = new EmbeddedChannel(new VfioUserFrameDecoder());
        assertThatThrownBy(() -> channel.writeInbound(Goldens.buf("0700 0400 0f000000 00000000 00000000")))
                .isInstanceOfSatisfying(VfioUserFramingException.class, e -> {
                    assertThat(e.msgId()).isEqualTo(7);
                    assertThat(e.command()).isEqualTo(4);
                    assertThat(e.messageSize()).isEqualTo(15);
                });
        assertThat(channel.isOpen()).isFalse();
        assertThat(channel.finishAndReleaseAll()).isFalse();
    }

    @Test
    void sizeZeroClosesTheChannel() {
        EmbeddedChannel channel = new EmbeddedChannel(new VfioUserFrameDecoder());
        assertThatThrownBy(() -> channel.writeInbound(Goldens.buf("0000 0000 00000000 00000000")))
                .isInstanceOf(VfioUserFramingException.class);
        assertThat(channel.isOpen()).isFalse();
        assertThat(channel.finishAndReleaseAll()).isFalse();
    }

    @Test
    void oversizedMessageFailsAsSoonAsItsSizeIsKnown() {
        EmbeddedChannel channel = new EmbeddedChannel(new VfioUserFrameDecoder());
        long tooBig = VfioUserFrameDecoder.DEFAULT_MAX_MESSAGE_SIZE + 1L;
        ByteBuf header = Goldens.buf("0100 0a00").writeIntLE((int) tooBig).writeIntLE(0);
        assertThatThrownBy(() -> channel.writeInbound(header))
                .isInstanceOfSatisfying(VfioUserFramingException.class, e -> {
                    assertThat(e.messageSize()).isEqualTo(tooBig);
                    assertThat(e.noReply()).isFalse();
                });
        assertThat(channel.isOpen()).isFalse();
        assertThat(channel.finishAndReleaseAll()).isFalse();
    }

    @Test
    void framingErrorCarriesTheNoReplyFlagOnceTheFlagsHaveArrived() {
        EmbeddedChannel channel = new EmbeddedChannel(new VfioUserFrameDecoder());
        byte[] bad = bytes("0900 0a00 08000000 10000000 00000000"); // msg_size 8, NO_REPLY
        // Cut in odd chunks: nothing is decided before the flags are complete (byte 12).
        assertThat(channel.writeInbound(Goldens.buf(Arrays.copyOf(bad, 5)))).isFalse();
        assertThat(channel.writeInbound(Goldens.buf(Arrays.copyOfRange(bad, 5, 11)))).isFalse();
        assertThat(channel.isOpen()).isTrue();
        assertThatThrownBy(() -> channel.writeInbound(Goldens.buf(Arrays.copyOfRange(bad, 11, 13))))
                .isInstanceOfSatisfying(VfioUserFramingException.class, e -> {
                    assertThat(e.msgId()).isEqualTo(9);
                    assertThat(e.command()).isEqualTo(10);
                    assertThat(e.messageSize()).isEqualTo(8);
                    assertThat(e.flags()).isEqualTo(0x10);
                    assertThat(e.noReply()).isTrue();
                });
        assertThat(channel.isOpen()).isFalse();
        assertThat(channel.finishAndReleaseAll()).isFalse();
    }

    @Test
    void defaultMaximumIsOneMebibytePlusOverhead() {
        assertThat(VfioUserFrameDecoder.DEFAULT_MAX_MESSAGE_SIZE).isEqualTo(1024 * 1024 + 64);
        assertThat(new VfioUserFrameDecoder().maxMessageSize()).isEqualTo(1024 * 1024 + 64);
        assertThat(VfioUserFrameDecoder.maxMessageSizeFor(64L << 20)).isEqualTo((64 << 20) + 64);
    }

    @Test
    void acceptsExactlyTheConfiguredMaximum() {
        EmbeddedChannel channel = new EmbeddedChannel(new VfioUserFrameDecoder(32));
        channel.writeInbound(Goldens.buf(READ));
        ByteBuf frame = channel.readInbound();
        assertThat(frame.readableBytes()).isEqualTo(32);
        frame.release();

        ByteBuf tooBig = Goldens.buf("1100 0900 21000000 00000000 00000000");
        assertThatThrownBy(() -> channel.writeInbound(tooBig)).isInstanceOf(VfioUserFramingException.class);
        assertThat(channel.finishAndReleaseAll()).isFalse();
    }

    @Test
    void garbageClosesTheChannel() {
        EmbeddedChannel channel = new EmbeddedChannel(new VfioUserFrameDecoder(), new VfioUserMessageDecoder());
        byte[] http = "GET / HTTP/1.1\r\nHost: x\r\n\r\n".getBytes(StandardCharsets.US_ASCII);
        assertThatThrownBy(() -> channel.writeInbound(Goldens.buf(http)))
                .isInstanceOf(VfioUserFramingException.class);
        assertThat(channel.isOpen()).isFalse();
        assertThat(channel.finishAndReleaseAll()).isFalse();
    }

    @Test
    void dropsEverythingAfterAFramingError() {
        EmbeddedChannel channel = new EmbeddedChannel(new VfioUserFrameDecoder(), new VfioUserMessageDecoder());
        byte[] stream = Hex.concat(RESET, bytes("0100 0100 0c000000 00000000"), READ);
        assertThatThrownBy(() -> channel.writeInbound(Goldens.buf(stream)))
                .isInstanceOf(VfioUserFramingException.class);
        List<Object> decoded = CodecChannels.inbound(channel);
        try {
            assertThat(decoded).hasSize(1);
            assertThat(((VfioUserMessage) decoded.get(0)).command()).isEqualTo(VfioUserCommand.DEVICE_RESET);
        } finally {
            CodecChannels.releaseAll(decoded);
            assertThat(channel.finishAndReleaseAll()).isFalse();
        }
    }

    @Test
    void partialFrameAtEndOfStreamIsDropped() {
        EmbeddedChannel channel = new EmbeddedChannel(new VfioUserFrameDecoder(), new VfioUserMessageDecoder());
        channel.writeInbound(Goldens.buf(Arrays.copyOf(READ, 20)));
        assertThat(channel.finishAndReleaseAll()).isFalse();
    }

    @Test
    void otherMessagesPassThroughInOrder() {
        EmbeddedChannel channel = new EmbeddedChannel(new VfioUserFrameDecoder(), new VfioUserMessageDecoder());
        byte[] stream = Hex.concat(RESET, READ);
        Object other = "not a frame";
        channel.writeInbound(Goldens.buf(Arrays.copyOf(stream, 24)));
        channel.writeInbound(other);
        channel.writeInbound(Goldens.buf(Arrays.copyOfRange(stream, 24, stream.length)));
        List<Object> decoded = CodecChannels.inbound(channel);
        try {
            assertThat(decoded).hasSize(3);
            assertThat(((VfioUserMessage) decoded.get(0)).command()).isEqualTo(VfioUserCommand.DEVICE_RESET);
            assertThat(decoded.get(1)).isSameAs(other);
            assertThat(((VfioUserMessage) decoded.get(2)).command()).isEqualTo(VfioUserCommand.REGION_READ);
        } finally {
            CodecChannels.releaseAll(decoded);
            assertThat(channel.finishAndReleaseAll()).isFalse();
        }
    }

    @Test
    void receivedFdsGoWithTheirFrameInsteadOfPassingThrough() {
        EmbeddedChannel channel = new EmbeddedChannel(new VfioUserFrameDecoder(), new VfioUserMessageDecoder());
        byte[] stream = Hex.concat(RESET, READ);
        ReceivedFds fds = new ReceivedFds(FdSet.EMPTY, 24, stream.length - 1);
        channel.writeInbound(Goldens.buf(Arrays.copyOf(stream, 24)));
        channel.writeInbound(fds);
        channel.writeInbound(Goldens.buf(Arrays.copyOfRange(stream, 24, stream.length)));
        List<Object> decoded = CodecChannels.inbound(channel);
        try {
            assertThat(decoded).hasSize(2).allMatch(VfioUserMessage.class::isInstance);
        } finally {
            CodecChannels.releaseAll(decoded);
            assertThat(channel.finishAndReleaseAll()).isFalse();
        }
    }

    @Test
    void rejectsAMaximumBelowTheHeaderSize() {
        assertThatThrownBy(() -> new VfioUserFrameDecoder(15)).isInstanceOf(IllegalArgumentException.class);
    }
}
