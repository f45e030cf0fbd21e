package io.vfiouser.codec;

import static org.assertj.core.api.Assertions.assertThat;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.channel.embedded.EmbeddedChannel;
import io.vfiouser.codec.FuzzSupport.Frame;
import io.vfiouser.codec.FuzzSupport.Framing;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Fuzzes {@link VfioUserFrameDecoder} with any byte stream, cut into reads anywhere, with and without a frame
 * shortcut. The frames it emits or serves must be exactly those of an independent model of the framing, in order;
 * a {@code msg_size} out of bounds must end in one {@link VfioUserFramingException} that names the bad header,
 * and a closed channel; every buffer must be released.
 *
 * <p>Input: the stream, then (read from the end) a 64-bit seed for the read lengths, a byte choosing the shortcut
 * (0: none; else a mask of command codes modulo 8 that it serves) and a byte choosing the maximum message size (0:
 * the default; else 16 more than 16 times it).
 */
class FrameDecoderFuzzTest {

    @FuzzTest(maxDuration = "10m")
    void stream(FuzzedDataProvider data) {
        int maxChoice = data.consumeInt(0, 255);
        int serveMask = data.consumeInt(0, 255);
        long readSeed = data.consumeLong();
        byte[] stream = data.consumeRemainingAsBytes();
        int max = maxChoice == 0 ? VfioUserFrameDecoder.DEFAULT_MAX_MESSAGE_SIZE : 16 + 16 * maxChoice;

        List<byte[]> served = new ArrayList<>();
        VfioUserFrameShortcut shortcut = serveMask == 0 ? null : (ctx, frame, start, size) -> {
            int readerIndex = frame.readerIndex();
            assertThat(start).isEqualTo(readerIndex);
            assertThat(frame.readableBytes()).isGreaterThanOrEqualTo(size);
            if ((serveMask & 1 << (frame.getUnsignedShortLE(start + 2) & 7)) == 0) {
                return false;
            }
            served.add(ByteBufUtil.getBytes(frame, start, size));
            return true;
        };
        EmbeddedChannel channel = FuzzSupport.channel(new VfioUserFrameDecoder(max, shortcut));
        List<Object> received = new ArrayList<>();
        Throwable caught = null;
        try {
            int at = 0;
            for (int read : FuzzSupport.reads(stream.length, readSeed)) {
                if (!channel.isOpen()) {
                    break; // a closed channel reads no more (an EmbeddedChannel would pass them by its handlers)
                }
                channel.pipeline().fireChannelRead(FuzzSupport.buffer(Arrays.copyOfRange(stream, at, at + read)));
                channel.pipeline().fireChannelReadComplete();
                at += read;
            }
            channel.runPendingTasks();
            for (Object msg; (msg = channel.readInbound()) != null; ) {
                received.add(msg);
            }
            try {
                channel.checkException();
            } catch (Throwable t) {
                caught = t;
            }
            check(stream, max, serveMask, received, served, caught, channel.isOpen());
        } finally {
            FuzzSupport.finish(channel, received);
        }
        FuzzSupport.assertReleased();
    }

    private static void check(byte[] stream, int max, int serveMask, List<Object> received, List<byte[]> served,
            Throwable caught, boolean open) {
        Framing expected = Framing.of(stream, max);
        int emitted = 0;
        int servedIndex = 0;
        for (Frame frame : expected.frames()) {
            byte[] bytes = Arrays.copyOfRange(stream, frame.start(), frame.end());
            boolean serve = serveMask != 0 && (serveMask & 1 << (Framing.u16(stream, frame.start() + 2) & 7)) != 0;
            if (serve) {
                assertThat(servedIndex).as("frames served").isLessThan(served.size());
                assertThat(served.get(servedIndex++)).as("frame served at %d", frame.start()).isEqualTo(bytes);
            } else {
                assertThat(emitted).as("frames emitted").isLessThan(received.size());
                Object msg = received.get(emitted++);
                assertThat(msg).isInstanceOf(ByteBuf.class);
                assertThat(ByteBufUtil.getBytes((ByteBuf) msg)).as("frame at %d", frame.start()).isEqualTo(bytes);
            }
        }
        assertThat(received).as("frames emitted").hasSize(emitted);
        assertThat(served).as("frames served").hasSize(servedIndex);
        if (expected.badHeader() < 0) {
            assertThat(caught).isNull();
            assertThat(open).isTrue();
        } else {
            int at = expected.badHeader();
            assertThat(caught).isInstanceOf(VfioUserFramingException.class);
            VfioUserFramingException e = (VfioUserFramingException) caught;
            assertThat(e.msgId()).isEqualTo(Framing.u16(stream, at));
            assertThat(e.command()).isEqualTo(Framing.u16(stream, at + 2));
            assertThat(e.messageSize()).isEqualTo(Integer.toUnsignedLong(Framing.u16(stream, at + 4)
                    | Framing.u16(stream, at + 6) << 16));
            assertThat(open).as("channel open after a framing error").isFalse();
        }
    }
}
