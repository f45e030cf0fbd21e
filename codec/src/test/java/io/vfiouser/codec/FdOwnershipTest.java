package io.vfiouser.codec;

import static io.vfiouser.codec.Hex.bytes;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.netty.channel.embedded.EmbeddedChannel;
import io.vfiouser.codec.payload.DmaAccess;
import io.vfiouser.codec.payload.DmaMapRequest;
import io.vfiouser.codec.payload.IoFdEntry;
import io.vfiouser.codec.payload.RegionIoFds;
import io.vfiouser.transport.BytesWithFds;
import io.vfiouser.transport.FdSet;
import io.vfiouser.transport.ReceivedFds;
import io.vfiouser.transport.linux.Linux;
import java.util.List;
import org.junit.jupiter.api.Test;

/** fds move from the inbound BytesWithFds into the message, and from the message into the outbound BytesWithFds. */
class FdOwnershipTest {
    private static final byte[] DMA_MAP = bytes("""
            0200 0200 30000000 00000000 00000000
            20000000 03000000 0010000000000000 0000000001000000 0000200000000000
            """);

    @Test
    void decodedMessageOwnsTheFdsOfItsFrame() throws Exception {
        int fd = Fds.eventfd();
        FdSet received = FdSet.of(fd);
        EmbeddedChannel channel = new EmbeddedChannel(new VfioUserMessageDecoder());
        channel.writeInbound(new BytesWithFds(Goldens.buf(DMA_MAP), received));
        VfioUserMessage message = channel.readInbound();
        try {
            assertThat(message.payload()).isEqualTo(DmaMapRequest.of(3, 0x1000, 0x1_0000_0000L, 0x20_0000));
            assertThat(message.fds().size()).isEqualTo(1);
            assertThat(message.fds().get(0)).isEqualTo(fd);
            assertThatThrownBy(() -> received.get(0)).as("moved out of the frame's set")
                    .isInstanceOf(IllegalStateException.class);
            Fds.assertOpen(fd);
        } finally {
            message.release();
            assertThat(channel.finishAndReleaseAll()).isFalse();
        }
        Fds.assertClosed(fd);
    }

    @Test
    void keepsTheOrderOfSeveralFds() throws Exception {
        int[] fds = {Fds.eventfd(), Fds.eventfd(), Fds.eventfd()};
        EmbeddedChannel channel = new EmbeddedChannel(new VfioUserMessageDecoder());
        channel.writeInbound(new BytesWithFds(Goldens.buf("0f00 0800 24000000 00000000 00000000"
                + "14000000 24000000 02000000 00000000 03000000"), FdSet.of(fds)));
        VfioUserMessage message = channel.readInbound();
        try {
            for (int i = 0; i < fds.length; i++) {
                assertThat(message.fds().get(i)).isEqualTo(fds[i]);
            }
        } finally {
            message.release();
            assertThat(channel.finishAndReleaseAll()).isFalse();
        }
        for (int fd : fds) {
            Fds.assertClosed(fd);
        }
    }

    @Test
    void takenFdsSurviveTheRelease() throws Exception {
        int fd = Fds.eventfd();
        VfioUserMessage message = VfioUserMessage.command(2, VfioUserCommand.DMA_MAP,
                DmaMapRequest.of(3, 0, 0x1000, 0x1000), FdSet.of(fd));
        int mine = message.fds().take(0);
        message.release();
        Fds.assertOpen(mine);
        Linux.close(mine);
    }

    @Test
    void frameDecoderAndFdsReachTheMessage() throws Exception {
        int fd = Fds.eventfd();
        EmbeddedChannel channel = new EmbeddedChannel(new VfioUserFrameDecoder(), new VfioUserMessageDecoder());
        channel.writeInbound(Goldens.buf(DMA_MAP));
        Object frame = channel.readInbound();
        assertThat(frame).as("the message decoder saw a plain frame").isInstanceOf(VfioUserMessage.class);
        ((VfioUserMessage) frame).release();
        // fds announced before the bytes of the read that brought them go with that read's frame:
        channel.pipeline().fireChannelRead(new ReceivedFds(FdSet.of(fd), DMA_MAP.length,
                2L * DMA_MAP.length - 1));
        channel.pipeline().fireChannelRead(Goldens.buf(DMA_MAP));
        VfioUserMessage message = channel.readInbound();
        assertThat(message.fds().get(0)).isEqualTo(fd);
        message.release();
        Fds.assertClosed(fd);
        assertThat(channel.finishAndReleaseAll()).isFalse();
    }

    @Test
    void encoderMovesTheFdsIntoOneBytesWithFds() throws Exception {
        int fd = Fds.eventfd();
        FdSet fds = FdSet.of(fd);
        VfioUserMessage message = VfioUserMessage.command(2, VfioUserCommand.DMA_MAP,
                DmaMapRequest.of(3, 0x1000, 0x1_0000_0000L, 0x20_0000), fds);
        EmbeddedChannel channel = CodecChannels.encoding(DmaLayout.SPEC);
        channel.writeOutbound(message);
        BytesWithFds out = channel.readOutbound();
        try {
            Object next = channel.readOutbound();
            assertThat(next).as("exactly one outbound message").isNull();
            assertThat(message.refCnt()).isZero();
            assertThat(out.fds()).isSameAs(fds);
            assertThat(fds.isClosed()).as("the released message did not close the moved set").isFalse();
            Fds.assertOpen(fd);
            assertThat(Hex.of(out.content())).isEqualTo(DMA_MAP);
        } finally {
            out.release();
            assertThat(channel.finishAndReleaseAll()).isFalse();
        }
        Fds.assertClosed(fd);
    }

    @Test
    void encoderComposesHeaderDataAndPaddingWithFds() throws Exception {
        int fd = Fds.eventfd();
        VfioUserMessage message = VfioUserMessage.reply(Goldens.request(1, VfioUserCommand.DMA_READ),
                DmaAccess.withData(0x1000, Goldens.buf("0102030405060708")), FdSet.of(fd));
        EmbeddedChannel channel = CodecChannels.encoding(DmaLayout.QEMU);
        channel.writeOutbound(message);
        BytesWithFds out = channel.readOutbound();
        try {
            Object next = channel.readOutbound();
            assertThat(next).as("exactly one outbound message").isNull();
            assertThat(Hex.of(out.content())).isEqualTo(bytes("""
                    0100 0b00 28000000 01000000 00000000
                    0010000000000000 08000000 0102030405060708 00000000
                    """));
            assertThat(out.fds().get(0)).isEqualTo(fd);
        } finally {
            out.release();
            assertThat(channel.finishAndReleaseAll()).isFalse();
        }
        Fds.assertClosed(fd);
    }

    @Test
    void replyWithSeveralFds() throws Exception {
        int[] fds = {Fds.eventfd(), Fds.eventfd()};
        VfioUserMessage message = VfioUserMessage.reply(Goldens.request(11, VfioUserCommand.DEVICE_GET_REGION_IO_FDS),
                RegionIoFds.of(2, List.of(new IoFdEntry(0x100, 4, 0, 0, 0, 0), new IoFdEntry(0x200, 4, 1, 0, 0, 0))),
                FdSet.of(fds));
        EmbeddedChannel channel = CodecChannels.encoding(DmaLayout.SPEC);
        channel.writeOutbound(message);
        BytesWithFds out = channel.readOutbound();
        try {
            assertThat(out.content().readableBytes()).isEqualTo(16 + 16 + 80);
            assertThat(out.fds().get(0)).isEqualTo(fds[0]);
            assertThat(out.fds().get(1)).isEqualTo(fds[1]);
        } finally {
            out.release();
            assertThat(channel.finishAndReleaseAll()).isFalse();
        }
        Fds.assertClosed(fds[0]);
        Fds.assertClosed(fds[1]);
    }

    @Test
    void unwrittenMessageClosesItsFds() throws Exception {
        int fd = Fds.eventfd();
        VfioUserMessage message = VfioUserMessage.command(2, VfioUserCommand.DMA_MAP,
                DmaMapRequest.of(3, 0, 0x1000, 0x1000), FdSet.of(fd));
        EmbeddedChannel channel = CodecChannels.encoding(DmaLayout.SPEC);
        channel.close();
        assertThat(channel.writeAndFlush(message).isSuccess()).isFalse();
        assertThat(message.refCnt()).isZero();
        Fds.assertClosed(fd);
        assertThat(channel.finishAndReleaseAll()).isFalse();
    }
}
