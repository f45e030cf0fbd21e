package io.vfiouser.codec;

import static io.vfiouser.codec.Hex.bytes;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.util.ReferenceCountUtil;
import io.vfiouser.transport.BytesWithFds;
import io.vfiouser.transport.FdSet;
import io.vfiouser.transport.FdTransportException;
import io.vfiouser.transport.ReceivedFds;
import java.io.ByteArrayOutputStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;

/**
 * The frame decoder gives each frame the fds that travelled with it, as {@code UnixChannel} announces them (a
 * {@link ReceivedFds} before the bytes of the read that brought them), and offers its shortcut only frames without
 * fds; fds that cannot belong to a frame close the channel and every fd.
 */
class FrameFdsTest {
    private static final byte[] READ = bytes("1100 0900 20000000 00000000 00000000 0000000000000000 07000000 04000000");
    private static final byte[] RESET = bytes("1500 0d00 10000000 00000000 00000000");

    /** What the decoder did with one frame: emitted it (with fds or not), or the shortcut served it. */
    private record Out(byte[] bytes, int[] fds, boolean served) {
    }

    @Test
    void goldenFramesInOddChunksGetTheFdsOfTheReadEndingInThem() throws Exception {
        for (boolean shortcut : new boolean[] {false, true}) {
            decodeGoldens(shortcut);
        }
    }

    /**
     * Every golden in one stream; every third frame is sent as a sender must, its fds on a read starting at its
     * header. Reads are cut at odd lengths (1 to 13 bytes) across frame boundaries, so an fd-carrying read may end
     * inside its frame or in a later one; the frame holding its last byte gets the fds. With a shortcut that
     * serves every frame it is offered, exactly the frames with fds come out.
     */
    private static void decodeGoldens(boolean serveAll) throws Exception {
        List<Goldens.Golden> goldens = Goldens.all();
        ByteArrayOutputStream all = new ByteArrayOutputStream();
        List<Integer> starts = new ArrayList<>();
        TreeSet<Integer> fdFrameStarts = new TreeSet<>();
        for (int i = 0; i < goldens.size(); i++) {
            starts.add(all.size());
            if (i % 3 == 1) {
                fdFrameStarts.add(all.size());
            }
            all.writeBytes(goldens.get(i).bytes());
        }
        byte[] stream = all.toByteArray();
        List<Out> outs = new ArrayList<>();
        VfioUserFrameShortcut shortcut = (ctx, frame, start, size) -> {
            outs.add(new Out(ByteBufUtil.getBytes(frame, start, size), new int[0], true));
            return true;
        };
        EmbeddedChannel channel = new EmbeddedChannel(new VfioUserFrameDecoder(
                VfioUserFrameDecoder.DEFAULT_MAX_MESSAGE_SIZE, 3, serveAll ? shortcut : null));
        List<int[]> sent = new ArrayList<>();
        // The fds each frame must get, by the frame's index: those of the read whose last byte it holds.
        int[][] expected = new int[goldens.size()][];
        Arrays.fill(expected, new int[0]);
        int at = 0;
        int step = 0;
        while (at < stream.length) {
            int next = Math.min(stream.length, at + 1 + (step++ * 5) % 13);
            Integer cut = fdFrameStarts.higher(at);
            if (cut != null && cut < next) {
                next = cut; // an fd-carrying frame starts a read of its own
            }
            if (fdFrameStarts.contains(at)) {
                int[] fds = new int[1 + sent.size() % 3];
                for (int i = 0; i < fds.length; i++) {
                    fds[i] = Fds.eventfd();
                }
                sent.add(fds);
                int frame = frameAt(starts, next - 1);
                assertThat(expected[frame]).as("one set per frame in this plan").isEmpty();
                expected[frame] = fds;
                channel.pipeline().fireChannelRead(new ReceivedFds(FdSet.of(fds), at, next - 1));
            }
            channel.pipeline().fireChannelRead(Goldens.buf(Arrays.copyOfRange(stream, at, next)));
            channel.pipeline().fireChannelReadComplete();
            channel.checkException();
            for (Object msg; (msg = channel.readInbound()) != null; ) {
                outs.add(out(msg));
            }
            at = next;
        }
        assertThat(sent).hasSizeGreaterThan(10);
        assertThat(outs).hasSize(goldens.size());
        for (int i = 0; i < goldens.size(); i++) {
            Out out = outs.get(i);
            assertThat(out.bytes()).as("frame %d (%s)", i, goldens.get(i)).isEqualTo(goldens.get(i).bytes());
            assertThat(out.fds()).as("fds of frame %d", i).isEqualTo(expected[i]);
            assertThat(out.served()).as("frame %d served", i).isEqualTo(serveAll && expected[i].length == 0);
        }
        assertThat(channel.finishAndReleaseAll()).isFalse();
        for (int[] fds : sent) {
            for (int fd : fds) {
                Fds.assertClosed(fd);
            }
        }
    }

    private static int frameAt(List<Integer> starts, int offset) {
        int frame = 0;
        while (frame + 1 < starts.size() && starts.get(frame + 1) <= offset) {
            frame++;
        }
        return frame;
    }

    /** Reads an emitted frame and releases it (closing its fds). */
    private static Out out(Object msg) {
        try {
            if (msg instanceof BytesWithFds b) {
                int[] fds = new int[b.fds().size()];
                for (int i = 0; i < fds.length; i++) {
                    fds[i] = b.fds().get(i);
                }
                return new Out(ByteBufUtil.getBytes(b.content()), fds, false);
            }
            return new Out(ByteBufUtil.getBytes((ByteBuf) msg), new int[0], false);
        } finally {
            ReferenceCountUtil.release(msg);
        }
    }

    @Test
    void aFrameWithFdsReachesTheMessageAndItsShortcutNeverSeesIt() throws Exception {
        int fd = Fds.eventfd();
        List<Integer> offered = new ArrayList<>();
        EmbeddedChannel channel = new EmbeddedChannel(new VfioUserFrameDecoder(
                VfioUserFrameDecoder.DEFAULT_MAX_MESSAGE_SIZE, 1, (ctx, frame, start, size) -> {
                    offered.add(frame.getUnsignedShortLE(start));
                    return false;
                }), new VfioUserMessageDecoder());
        byte[] stream = Hex.concat(RESET, READ);
        channel.pipeline().fireChannelRead(Goldens.buf(Arrays.copyOf(stream, 7)));
        channel.pipeline().fireChannelRead(new ReceivedFds(FdSet.of(fd), 7, 16 + 10));
        channel.pipeline().fireChannelRead(Goldens.buf(Arrays.copyOfRange(stream, 7, 16 + 11)));
        channel.pipeline().fireChannelRead(Goldens.buf(Arrays.copyOfRange(stream, 16 + 11, stream.length)));
        List<Object> decoded = CodecChannels.inbound(channel);
        try {
            assertThat(decoded).hasSize(2);
            // The read of bytes 7..26 began inside RESET, before READ (at 16), and ended in READ: READ's fds.
            assertThat(((VfioUserMessage) decoded.get(0)).fds().isEmpty()).isTrue();
            assertThat(((VfioUserMessage) decoded.get(1)).fds().get(0)).isEqualTo(fd);
            assertThat(offered).as("msg ids offered to the shortcut").containsExactly(0x15);
        } finally {
            CodecChannels.releaseAll(decoded);
            assertThat(channel.finishAndReleaseAll()).isFalse();
        }
        Fds.assertClosed(fd);
    }

    @Test
    void fdsThatDoNotStartTheirFrameCloseTheChannelAndTheFds() throws Exception {
        int fd = Fds.eventfd();
        EmbeddedChannel channel = new EmbeddedChannel(new VfioUserFrameDecoder());
        channel.pipeline().fireChannelRead(Goldens.buf(Arrays.copyOf(READ, 24)));
        channel.pipeline().fireChannelRead(new ReceivedFds(FdSet.of(fd), 24, 31));
        channel.pipeline().fireChannelRead(Goldens.buf(Arrays.copyOfRange(READ, 24, 32)));
        assertThatThrownBy(channel::checkException).isInstanceOf(FdTransportException.class)
                .hasMessageContaining("do not start the frame at 0");
        assertThat(channel.isOpen()).isFalse();
        Fds.assertClosed(fd);
        assertThat(channel.finishAndReleaseAll()).isFalse();
    }

    @Test
    void twoSetsInOneFrameCloseTheChannelAndEveryFd() throws Exception {
        int a = Fds.eventfd();
        int b = Fds.eventfd();
        EmbeddedChannel channel = new EmbeddedChannel(new VfioUserFrameDecoder());
        channel.pipeline().fireChannelRead(new ReceivedFds(FdSet.of(a), 0, 4));
        channel.pipeline().fireChannelRead(Goldens.buf(Arrays.copyOf(READ, 5)));
        channel.pipeline().fireChannelRead(new ReceivedFds(FdSet.of(b), 5, 31));
        channel.pipeline().fireChannelRead(Goldens.buf(Arrays.copyOfRange(READ, 5, 32)));
        assertThatThrownBy(channel::checkException).isInstanceOf(FdTransportException.class)
                .hasMessageContaining("two sets of fds");
        assertThat(channel.isOpen()).isFalse();
        Fds.assertClosed(a);
        Fds.assertClosed(b);
        assertThat(channel.finishAndReleaseAll()).isFalse();
    }

    @Test
    void moreFdsThanAllowedCloseTheChannelAndTheFds() throws Exception {
        int[] three = {Fds.eventfd(), Fds.eventfd(), Fds.eventfd()};
        EmbeddedChannel channel = new EmbeddedChannel(new VfioUserFrameDecoder(
                VfioUserFrameDecoder.DEFAULT_MAX_MESSAGE_SIZE, 2));
        channel.pipeline().fireChannelRead(new ReceivedFds(FdSet.of(three), 0, 31));
        assertThatThrownBy(channel::checkException).isInstanceOf(FdTransportException.class)
                .hasMessageContaining("3 fds in one message, at most 2");
        assertThat(channel.isOpen()).isFalse();
        for (int fd : three) {
            Fds.assertClosed(fd);
        }
        assertThat(channel.finishAndReleaseAll()).isFalse();
    }

    @Test
    void aFramingErrorClosesTheFdsWaitingForTheirFrame() throws Exception {
        int fd = Fds.eventfd();
        EmbeddedChannel channel = new EmbeddedChannel(new VfioUserFrameDecoder());
        channel.pipeline().fireChannelRead(new ReceivedFds(FdSet.of(fd), 0, 13));
        channel.pipeline().fireChannelRead(Goldens.buf(bytes("1100 0900 08000000 00000000 0000")));
        assertThatThrownBy(channel::checkException).isInstanceOf(VfioUserFramingException.class);
        assertThat(channel.isOpen()).isFalse();
        Fds.assertClosed(fd);
        assertThat(channel.finishAndReleaseAll()).isFalse();
    }

    @Test
    void aStreamEndingInsideAFrameClosesItsFds() throws Exception {
        int fd = Fds.eventfd();
        EmbeddedChannel channel = new EmbeddedChannel(new VfioUserFrameDecoder());
        channel.pipeline().fireChannelRead(new ReceivedFds(FdSet.of(fd), 0, 19));
        channel.pipeline().fireChannelRead(Goldens.buf(Arrays.copyOf(READ, 20)));
        Fds.assertOpen(fd);
        assertThat(channel.finishAndReleaseAll()).isFalse();
        Fds.assertClosed(fd);
    }
}
