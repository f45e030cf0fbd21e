package io.vfiouser.codec;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.netty.buffer.ByteBuf;
import io.netty.channel.embedded.EmbeddedChannel;
import io.vfiouser.codec.payload.DeviceInfo;
import io.vfiouser.codec.payload.DmaAccess;
import io.vfiouser.codec.payload.RegionAccess;
import io.vfiouser.transport.FdSet;
import io.vfiouser.transport.linux.Errno;
import org.junit.jupiter.api.Test;

class VfioUserMessageTest {

    @Test
    void errorReplyIsHeaderOnlyWithFlags0x21() {
        VfioUserHeader request = new VfioUserHeader(0x42, 5, 48, VfioUserHeader.COMMAND, 0);
        VfioUserMessage reply = VfioUserMessage.errorReply(request, Errno.ENOENT);
        assertThat(reply.header()).isEqualTo(new VfioUserHeader(0x42, 5, 16, 0x21, Errno.ENOENT));
        assertThat(reply.payload()).isNull();
        assertThat(reply.command()).isEqualTo(VfioUserCommand.DEVICE_GET_REGION_INFO);
        reply.release();
    }

    @Test
    void errorReplyNeedsAPositiveErrno() {
        VfioUserHeader request = Goldens.request(1, VfioUserCommand.REGION_READ);
        assertThatThrownBy(() -> VfioUserMessage.errorReply(request, 0)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> VfioUserMessage.errorReply(request, -22))
                .isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void errorReplyCannotCarryAPayload() {
        assertThatThrownBy(() -> new VfioUserMessage(new VfioUserHeader(1, 4, 32, 0x21, 22), DeviceInfo.request(),
                FdSet.EMPTY)).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void errorReplyToAnUnknownCommandEchoesItsCode() {
        VfioUserMessage reply = VfioUserMessage.errorReply(7, 14, Errno.EINVAL);
        assertThat(reply.header().command()).isEqualTo(14);
        assertThat(reply.command()).isNull();
        reply.release();
    }

    @Test
    void factoriesComputeTheMessageSize() {
        VfioUserMessage command = VfioUserMessage.command(1, VfioUserCommand.DEVICE_GET_INFO, DeviceInfo.request());
        assertThat(command.header()).isEqualTo(new VfioUserHeader(1, 4, 32, 0, 0));
        VfioUserMessage posted = VfioUserMessage.commandNoReply(2, VfioUserCommand.REGION_WRITE,
                RegionAccess.inRegion(0).atOffset(0).data(Goldens.buf("01020304")));
        assertThat(posted.header()).isEqualTo(new VfioUserHeader(2, 10, 36, 0x10, 0));
        VfioUserMessage reply = VfioUserMessage.reply(command.header(), DeviceInfo.reply(3, 9, 5));
        assertThat(reply.header()).isEqualTo(new VfioUserHeader(1, 4, 32, 1, 0));
        command.release();
        posted.release();
        reply.release();
    }

    @Test
    void releaseFreesThePayloadData() {
        ByteBuf data = Goldens.buf("01020304");
        VfioUserMessage message = VfioUserMessage.commandNoReply(2, VfioUserCommand.REGION_WRITE,
                RegionAccess.inRegion(0).atOffset(0).data(data));
        message.retain();
        message.release();
        assertThat(data.refCnt()).isEqualTo(1);
        message.release();
        assertThat(data.refCnt()).isZero();
    }

    @Test
    void typedPayloadAccess() {
        VfioUserMessage message = VfioUserMessage.command(1, VfioUserCommand.DEVICE_GET_INFO, DeviceInfo.request());
        assertThat(message.payload(DeviceInfo.class).argsz()).isEqualTo(16);
        assertThatThrownBy(() -> message.payload(RegionAccess.class)).isInstanceOf(IllegalStateException.class);
        message.release();
    }

    @Test
    void encoderRecomputesASizeThatDoesNotMatchThePayload() {
        // A decoded DEVICE_RESET with an ignored payload says msg_size 24; re-encoding sends a header only.
        VfioUserMessage message = new VfioUserMessage(new VfioUserHeader(3, 13, 24, 0, 0), null, FdSet.EMPTY);
        EmbeddedChannel channel = CodecChannels.encoding(DmaLayout.SPEC);
        channel.writeOutbound(message);
        assertThat(Hex.dump(CodecChannels.concat(CodecChannels.outboundBuffers(channel))))
                .isEqualTo("03000d00100000000000000000000000");
        assertThat(channel.finishAndReleaseAll()).isFalse();
    }

    @Test
    void decoderUsesItsDefaultLayoutWhenTheChannelHasNone() {
        EmbeddedChannel channel = new EmbeddedChannel(new VfioUserFrameDecoder(),
                new VfioUserMessageDecoder(DmaLayout.QEMU));
        channel.writeInbound(Goldens.buf("""
                0200 0c00 24000000 00000000 00000000
                0020000000000000 04000000 aabbccdd 00000000
                """));
        VfioUserMessage message = channel.readInbound();
        assertThat(message.payload(DmaAccess.class).count()).isEqualTo(4);
        message.release();
        assertThat(channel.finishAndReleaseAll()).isFalse();
    }

    @Test
    void decoderPassesOtherMessagesThrough() {
        EmbeddedChannel channel = new EmbeddedChannel(new VfioUserMessageDecoder());
        channel.writeInbound("not a frame");
        Object passed = channel.readInbound();
        assertThat(passed).isEqualTo("not a frame");
        assertThat(channel.finishAndReleaseAll()).isFalse();
    }
}
