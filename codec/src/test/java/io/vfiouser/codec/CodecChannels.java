package io.vfiouser.codec;

import static org.assertj.core.api.Assertions.assertThat;

import io.netty.buffer.ByteBuf;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.util.ReferenceCountUtil;
import java.io.ByteArrayOutputStream;
import java.util.ArrayList;
import java.util.List;

/** EmbeddedChannels with the codec's handlers, and helpers to drain them. */
final class CodecChannels {
    private CodecChannels() {
    }

    /** Frame decoder and message decoder, with the given DMA layout set on the channel. */
    static EmbeddedChannel decoding(DmaLayout layout) {
        EmbeddedChannel channel = new EmbeddedChannel(new VfioUserFrameDecoder(), new VfioUserMessageDecoder());
        channel.attr(DmaLayout.ATTRIBUTE).set(layout);
        return channel;
    }

    static EmbeddedChannel encoding(DmaLayout layout) {
        EmbeddedChannel channel = new EmbeddedChannel(VfioUserMessageEncoder.INSTANCE);
        channel.attr(DmaLayout.ATTRIBUTE).set(layout);
        return channel;
    }

    /** Everything the channel passed inbound so far. */
    static List<Object> inbound(EmbeddedChannel channel) {
        List<Object> all = new ArrayList<>();
        for (Object msg; (msg = channel.readInbound()) != null; ) {
            all.add(msg);
        }
        return all;
    }

    /** The outbound buffers of the channel so far, each released after reading. */
    static List<byte[]> outboundBuffers(EmbeddedChannel channel) {
        List<byte[]> all = new ArrayList<>();
        for (Object msg; (msg = channel.readOutbound()) != null; ) {
            try {
                assertThat(msg).isInstanceOf(ByteBuf.class);
                all.add(Hex.of((ByteBuf) msg));
            } finally {
                ReferenceCountUtil.release(msg);
            }
        }
        return all;
    }

    static byte[] concat(List<byte[]> parts) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        parts.forEach(out::writeBytes);
        return out.toByteArray();
    }

    static void releaseAll(List<?> messages) {
        messages.forEach(ReferenceCountUtil::release);
    }

    /** Asserts that decoding produced {@code expected}: same header, equal payload, no fds. */
    static void assertSameMessage(Object actual, VfioUserMessage expected) {
        assertThat(actual).isInstanceOf(VfioUserMessage.class);
        VfioUserMessage message = (VfioUserMessage) actual;
        assertThat(message.header()).isEqualTo(expected.header());
        assertThat(message.payload()).isEqualTo(expected.payload());
        assertThat(message.fds().isEmpty()).isTrue();
    }
}
