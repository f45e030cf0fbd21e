package io.vfiouser.codec;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import org.junit.jupiter.api.Test;

class VfioUserHeaderTest {

    @Test
    void decodesAndEncodesLittleEndian() {
        byte[] golden = Hex.bytes("3412 0900 20000000 21000000 16000000");
        ByteBuf in = Unpooled.wrappedBuffer(golden);
        ByteBuf out = Unpooled.buffer();
        try {
            VfioUserHeader header = VfioUserHeader.decode(in);
            assertThat(header).isEqualTo(new VfioUserHeader(0x1234, 9, 32, 0x21, 22));
            assertThat(in.isReadable()).isFalse();
            header.encode(out);
            assertThat(Hex.of(out)).isEqualTo(golden);
        } finally {
            in.release();
            out.release();
        }
    }

    @Test
    void readsUnsignedFields() {
        ByteBuf in = Unpooled.wrappedBuffer(Hex.bytes("ffff ffff ffffffff 00000000 00000000"));
        VfioUserHeader header = VfioUserHeader.decode(in);
        in.release();
        assertThat(header.msgId()).isEqualTo(0xFFFF);
        assertThat(header.command()).isEqualTo(0xFFFF);
        assertThat(header.messageSize()).isEqualTo(0xFFFF_FFFFL);
    }

    @Test
    void flagHelpers() {
        VfioUserHeader command = new VfioUserHeader(1, 9, 16, VfioUserHeader.COMMAND, 0);
        VfioUserHeader posted = new VfioUserHeader(1, 10, 16, VfioUserHeader.COMMAND | VfioUserHeader.NO_REPLY, 0);
        VfioUserHeader error = new VfioUserHeader(1, 9, 16, VfioUserHeader.REPLY | VfioUserHeader.ERROR, 22);
        VfioUserHeader invalid = new VfioUserHeader(1, 9, 16, 0x2, 0);

        assertThat(command.isCommand()).isTrue();
        assertThat(command.expectsReply()).isTrue();
        assertThat(command.isReply()).isFalse();
        assertThat(posted.isNoReply()).isTrue();
        assertThat(posted.expectsReply()).isFalse();
        assertThat(error.isReply()).isTrue();
        assertThat(error.isError()).isTrue();
        assertThat(error.type()).isEqualTo(VfioUserHeader.REPLY);
        assertThat(invalid.isCommand()).isFalse();
        assertThat(invalid.isReply()).isFalse();
        assertThat(invalid.type()).isEqualTo(2);
        assertThat(new VfioUserHeader(1, 9, 48, 0, 0).payloadSize()).isEqualTo(32);
        assertThat(VfioUserHeader.TYPE_MASK).isEqualTo(0x0F);
    }

    @Test
    void rejectsFieldsThatDoNotFitTheWire() {
        assertThatThrownBy(() -> new VfioUserHeader(0x10000, 1, 16, 0, 0)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new VfioUserHeader(1, -1, 16, 0, 0)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new VfioUserHeader(1, 1, 1L << 32, 0, 0)).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void namesTheCommandInToString() {
        assertThat(new VfioUserHeader(1, 9, 16, 0, 0).toString()).contains("REGION_READ");
        assertThat(new VfioUserHeader(1, 14, 16, 0, 0).toString()).contains("command=14");
    }
}
