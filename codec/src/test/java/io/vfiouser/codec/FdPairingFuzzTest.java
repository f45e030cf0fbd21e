package io.vfiouser.codec;

import static org.assertj.core.api.Assertions.assertThat;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.embedded.EmbeddedChannel;
import io.vfiouser.codec.FuzzSupport.Frame;
import io.vfiouser.codec.FuzzSupport.Framing;
import io.vfiouser.transport.FdPairing;
import io.vfiouser.transport.FdSet;
import io.vfiouser.transport.FdTransportException;
import io.vfiouser.transport.ReceivedFds;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Fuzzes the server's inbound pipeline with fds: {@link VfioUserFrameDecoder}, which pairs fds with frames (the
 * transport's {@link FdPairing}) and offers its shortcut (here serving the frames of some commands, as the
 * server's fast path does) only frames without fds, then {@link VfioUserMessageDecoder}. The stream is cut into
 * reads anywhere, and any read may bring real fds (eventfds), announced by a {@link ReceivedFds} before its bytes
 * as {@code UnixChannel} does.
 *
 * <p>Checked: each frame that comes out carries exactly the fds of the one read whose last byte it holds and
 * which began no later than the frame (none if no read's last byte is in it), a served frame had none; when no
 * documented exception ({@link VfioUserFramingException}, {@link FdTransportException}) ended the stream, every
 * frame came out; after an exception the channel is closed; every fd is closed exactly once and every buffer
 * released once the messages are.
 *
 * <p>Input: the stream, then (read from the end) a byte for the most fds per message (0-8), a byte for the DMA
 * layout, a byte with the command codes (modulo 8) the shortcut serves, a 64-bit seed for the read lengths and
 * one for which reads bring how many fds (up to 5).
 */
class FdPairingFuzzTest {
    private static final String SERVED = "served";

    /** One read: its stream offsets and the fds that came with it (possibly none). */
    private record Read(int first, int last, int[] fds) {
    }

    @FuzzTest(maxDuration = "10m")
    void reads(FuzzedDataProvider data) {
        int maxFds = data.consumeInt(0, 8);
        DmaLayout layout = data.consumeBoolean() ? DmaLayout.QEMU : DmaLayout.SPEC;
        int serveMask = data.consumeInt(0, 255);
        long readSeed = data.consumeLong();
        long fdSeed = data.consumeLong();
        byte[] stream = data.consumeRemainingAsBytes();

        List<Read> reads = plan(stream.length, readSeed, fdSeed);
        int[] allFds = reads.stream().flatMapToInt(r -> Arrays.stream(r.fds())).toArray();
        List<Object> events = new ArrayList<>();
        VfioUserFrameShortcut shortcut = (ctx, frame, start, size) ->
                (serveMask & 1 << (frame.getUnsignedShortLE(start + 2) & 7)) != 0 && events.add(SERVED);
        EmbeddedChannel channel = FuzzSupport.channel(
                new VfioUserFrameDecoder(VfioUserFrameDecoder.DEFAULT_MAX_MESSAGE_SIZE, maxFds, shortcut),
                new VfioUserMessageDecoder(), new ChannelInboundHandlerAdapter() {
                    @Override
                    public void channelRead(ChannelHandlerContext ctx, Object msg) {
                        events.add(msg);
                    }
                });
        channel.attr(DmaLayout.ATTRIBUTE).set(layout);
        Throwable caught = null;
        try {
            for (Read read : reads) {
                if (!channel.isOpen()) {
                    FdSet.of(read.fds()).close(); // a closed channel reads no more
                    continue;
                }
                if (read.fds().length > 0) {
                    channel.pipeline().fireChannelRead(new ReceivedFds(FdSet.of(read.fds()), read.first(),
                            read.last()));
                }
                channel.pipeline().fireChannelRead(
                        FuzzSupport.buffer(Arrays.copyOfRange(stream, read.first(), read.last() + 1)));
                channel.pipeline().fireChannelReadComplete();
            }
            channel.runPendingTasks();
            try {
                channel.checkException();
            } catch (Throwable t) {
                caught = t;
            }
            check(stream, reads, events, caught, channel.isOpen());
        } finally {
            FuzzSupport.finish(channel, events.stream().filter(e -> e != SERVED).toList());
        }
        FuzzSupport.assertReleased();
        FuzzSupport.assertClosedOnce(allFds);
    }

    /** The reads: lengths from one seed, fds (0 to 5, for about one read in three) from the other. */
    private static List<Read> plan(int length, long readSeed, long fdSeed) {
        SplittableRandom random = new SplittableRandom(fdSeed);
        List<Read> reads = new ArrayList<>();
        int at = 0;
        for (int n : FuzzSupport.reads(length, readSeed)) {
            int fds = random.nextInt(3) == 0 ? random.nextInt(6) : 0;
            reads.add(new Read(at, at + n - 1, new int[fds]));
            at += n;
        }
        // Open every fd before the first read: no fd opens while the pipeline runs, so a second close of a number
        // fails (EBADF) instead of closing someone else's fd.
        for (Read read : reads) {
            int[] fds = FuzzSupport.eventfds(read.fds().length);
            System.arraycopy(fds, 0, read.fds(), 0, fds.length);
        }
        return reads;
    }

    private static void check(byte[] stream, List<Read> reads, List<Object> events, Throwable caught,
            boolean open) {
        List<Frame> frames = Framing.of(stream, VfioUserFrameDecoder.DEFAULT_MAX_MESSAGE_SIZE).frames();
        assertThat(events.size()).as("frames out").isLessThanOrEqualTo(frames.size());
        for (int i = 0; i < events.size(); i++) {
            Frame frame = frames.get(i);
            List<Read> ending = reads.stream()
                    .filter(r -> r.fds().length > 0 && r.last() >= frame.start() && r.last() < frame.end())
                    .toList();
            Object event = events.get(i);
            int[] expected = new int[0];
            if (!ending.isEmpty()) {
                assertThat(ending).as("reads with fds ending in the frame at %d", frame.start()).hasSize(1);
                assertThat(ending.get(0).first()).as("first byte of the read whose fds the frame got")
                        .isLessThanOrEqualTo(frame.start());
                expected = ending.get(0).fds();
            }
            if (event == SERVED) {
                assertThat(expected).as("fds of a frame the shortcut served").isEmpty();
                continue;
            }
            FdSet fds;
            if (event instanceof VfioUserMessage message) {
                fds = message.fds();
            } else {
                assertThat(event).isInstanceOf(VfioUserInvalidMessage.class);
                assertThat(((VfioUserInvalidMessage) event).errno()).isPositive();
                fds = ((VfioUserInvalidMessage) event).fds();
            }
            int[] actual = new int[fds.size()];
            for (int j = 0; j < actual.length; j++) {
                actual[j] = fds.get(j);
            }
            assertThat(actual).as("fds of the frame at %d", frame.start()).isEqualTo(expected);
        }
        if (caught == null) {
            assertThat(events).as("frames out").hasSize(frames.size());
            assertThat(open).isTrue();
        } else {
            assertThat(caught).isInstanceOfAny(VfioUserFramingException.class, FdTransportException.class);
            assertThat(open).as("channel open after " + caught).isFalse();
        }
    }
}
