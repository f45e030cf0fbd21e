package io.vfiouser.codec;

import static io.vfiouser.codec.Hex.bytes;
import static org.assertj.core.api.Assertions.assertThat;

import io.netty.buffer.ByteBuf;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.util.ReferenceCountUtil;
import io.vfiouser.transport.BytesWithFds;
import io.vfiouser.transport.FdSet;
import io.vfiouser.transport.linux.Errno;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The malformed-message cases of the digest's section 6 that the codec decides from the bytes alone: each
 * becomes a {@link VfioUserInvalidMessage} with the header as received and the errno to answer with, the
 * connection stays usable, and the fds that came with it are closed when it is released.
 */
class MalformedMessagesTest {

    static Stream<Arguments> malformed() {
        return Stream.of(
                // header-level (§6.1)
                bad("unknown command 0", "0100 0000 10000000 00000000 00000000"),
                bad("removed command 14 (DIRTY_PAGES)", "0100 0e00 18000000 00000000 00000000 0800000000000000"),
                bad("unknown command 19", "0100 1300 10000000 00000000 00000000"),
                bad("unknown command 0xffff", "0100 ffff 10000000 00000000 00000000"),
                bad("type 2", "0100 0d00 10000000 02000000 00000000"),
                bad("type 15 with NO_REPLY", "0100 0d00 10000000 1f000000 00000000"),
                bad("unknown command as a reply", "0100 1400 10000000 01000000 00000000"),
                // VERSION (§2.5)
                bad("VERSION payload of 2 bytes", "0100 0100 12000000 00000000 00000000 0000"),
                bad("VERSION JSON without NUL", "0100 0100 16000000 00000000 00000000 0000 0000 7b7d"),
                bad("VERSION reply with empty payload", "0100 0100 10000000 01000000 00000000"),
                // DMA_MAP
                bad("DMA_MAP without payload", "0200 0200 10000000 00000000 00000000"),
                bad("DMA_MAP payload of 24 bytes", "0200 0200 28000000 00000000 00000000"
                        + "20000000 03000000 0000000000000000 0000000000000000"),
                bad("DMA_MAP argsz 16", "0200 0200 30000000 00000000 00000000"
                        + "10000000 03000000 0000000000000000 0000000001000000 0000200000000000"),
                // DMA_UNMAP
                bad("DMA_UNMAP payload of 20 bytes", "0300 0300 24000000 00000000 00000000"
                        + "18000000 00000000 0000000001000000 00002000"),
                bad("DMA_UNMAP argsz 20", "0300 0300 28000000 00000000 00000000"
                        + "14000000 00000000 0000000001000000 0000200000000000"),
                bad("DMA_UNMAP argsz above 1 MiB", "0300 0300 28000000 00000000 00000000"
                        + "01001000 00000000 0000000001000000 0000200000000000"),
                bad("DMA_UNMAP argsz 2^31 (a u32 above 1 MiB, not a negative number)",
                        "0300 0300 28000000 00000000 00000000"
                        + "00000080 00000000 0000000001000000 0000200000000000"),
                bad("DMA_UNMAP argsz 2^32 - 1", "0300 0300 28000000 00000000 00000000"
                        + "ffffffff 00000000 0000000001000000 0000200000000000"),
                bad("DEVICE_GET_REGION_IO_FDS argsz 2^31", "0b00 0600 20000000 00000000 00000000"
                        + "00000080 00000000 02000000 00000000"),
                bad("DEVICE_GET_REGION_IO_FDS argsz 2^32 - 1", "0b00 0600 20000000 00000000 00000000"
                        + "ffffffff 00000000 02000000 00000000"),
                bad("DMA_UNMAP GET_DIRTY_BITMAP without bitmap header", "0300 0300 28000000 00000000 00000000"
                        + "30000000 01000000 0000000001000000 0000200000000000"),
                bad("DMA_UNMAP GET_DIRTY_BITMAP argsz below 40 + bitmap size", "0300 0300 38000000 00000000 00000000"
                        + "2f000000 01000000 0000100000000000 0000040000000000 0010000000000000 0800000000000000"),
                bad("DMA_UNMAP reply shorter than 24", "0300 0300 20000000 01000000 00000000"
                        + "18000000 00000000 0000000001000000"),
                bad("DMA_UNMAP reply with bitmap shorter than bitmap.size", "0400 0300 3c000000 01000000 00000000"
                        + "30000000 01000000 0000100000000000 0000040000000000 0010000000000000 0800000000000000"
                        + "ff0f0000"),
                // DEVICE_GET_INFO
                bad("DEVICE_GET_INFO payload of 8 bytes", "0600 0400 18000000 00000000 00000000 10000000 00000000"),
                bad("DEVICE_GET_INFO argsz 8", "0600 0400 20000000 00000000 00000000"
                        + "08000000 00000000 00000000 00000000"),
                bad("DEVICE_GET_INFO reply of 8 bytes", "0600 0400 18000000 01000000 00000000 10000000 03000000"),
                // DEVICE_GET_REGION_INFO
                bad("GET_REGION_INFO payload of 16 bytes", "0700 0500 20000000 00000000 00000000"
                        + "20000000 00000000 07000000 00000000"),
                bad("GET_REGION_INFO argsz 16", "0700 0500 30000000 00000000 00000000"
                        + "10000000 00000000 07000000 00000000 0000000000000000 0000000000000000"),
                bad("GET_REGION_INFO reply with CAPS but cap_offset 0", "0800 0500 30000000 01000000 00000000"
                        + "58000000 0f000000 00000000 00000000 0040000000000000 0000000000000000"),
                bad("GET_REGION_INFO reply with cap outside the payload", "0800 0500 30000000 01000000 00000000"
                        + "58000000 0f000000 00000000 20000000 0040000000000000 0000000000000000"),
                bad("GET_REGION_INFO reply with a cap chain going back", "0800 0500 38000000 01000000 00000000"
                        + "28000000 0f000000 00000000 20000000 0040000000000000 0000000000000000"
                        + "0300 0100 20000000"),
                bad("GET_REGION_INFO reply with sparse areas past the end", "0800 0500 50000000 01000000 00000000"
                        + "38000000 0f000000 00000000 20000000 0040000000000000 0000000000000000"
                        + "0100 0100 00000000 02000000 00000000 0000000000000000 0010000000000000"),
                // DEVICE_GET_REGION_IO_FDS
                bad("GET_REGION_IO_FDS payload of 8 bytes", "0b00 0600 18000000 00000000 00000000 00040000 00000000"),
                bad("GET_REGION_IO_FDS argsz 8", "0b00 0600 20000000 00000000 00000000"
                        + "08000000 00000000 02000000 00000000"),
                bad("GET_REGION_IO_FDS argsz above 1 MiB", "0b00 0600 20000000 00000000 00000000"
                        + "01001000 00000000 02000000 00000000"),
                bad("GET_REGION_IO_FDS reply with a stride below 40", "0b00 0600 48000000 01000000 00000000"
                        + "37000000 00000000 02000000 01000000" + "00".repeat(40)),
                bad("GET_REGION_IO_FDS reply with entries past the end", "0b00 0600 48000000 01000000 00000000"
                        + "60000000 00000000 02000000 02000000" + "00".repeat(40)),
                // DEVICE_GET_IRQ_INFO
                bad("GET_IRQ_INFO payload of 12 bytes", "0e00 0700 1c000000 00000000 00000000"
                        + "10000000 00000000 03000000"),
                bad("GET_IRQ_INFO argsz 4", "0e00 0700 20000000 00000000 00000000"
                        + "04000000 00000000 03000000 00000000"),
                // DEVICE_SET_IRQS
                bad("SET_IRQS payload of 16 bytes", "0f00 0800 20000000 00000000 00000000"
                        + "14000000 24000000 02000000 00000000"),
                bad("SET_IRQS argsz 16", "0f00 0800 24000000 00000000 00000000"
                        + "10000000 24000000 02000000 00000000 01000000"),
                bad("SET_IRQS BOOL with fewer bytes than count", "1000 0800 27000000 00000000 00000000"
                        + "18000000 22000000 01000000 00000000 04000000 010001"),
                bad("SET_IRQS BOOL with more bytes than count", "1000 0800 28000000 00000000 00000000"
                        + "18000000 22000000 01000000 00000000 02000000 01000101"),
                // REGION_READ / REGION_WRITE
                bad("REGION_READ payload of 8 bytes", "1100 0900 18000000 00000000 00000000 0000000000000000"),
                bad("REGION_READ reply data shorter than count", "1100 0900 23000000 01000000 00000000"
                        + "0000000000000000 07000000 04000000 868034"),
                bad("REGION_WRITE data shorter than count", "1300 0a00 23000000 10000000 00000000"
                        + "1000000000000000 00000000 04000000 785634"),
                bad("REGION_WRITE data longer than count", "1300 0a00 24000000 00000000 00000000"
                        + "1000000000000000 00000000 02000000 78563412"),
                bad("REGION_WRITE reply of 8 bytes", "1400 0a00 18000000 01000000 00000000 1000000000000000"),
                // DMA_READ / DMA_WRITE (server-to-client)
                bad("DMA_READ payload of 8 bytes", "0100 0b00 18000000 00000000 00000000 0010000000000000"),
                bad("DMA_READ reply data shorter than count", "0100 0b00 24000000 01000000 00000000"
                        + "0010000000000000 0800000000000000 01020304"),
                bad("DMA_WRITE data longer than count", "0200 0c00 28000000 00000000 00000000"
                        + "0020000000000000 0400000000000000 aabbccdd eeff0011"),
                bad("DMA_WRITE reply of 8 bytes", "0200 0c00 18000000 01000000 00000000 0020000000000000"),
                // REGION_WRITE_MULTI
                bad("WRITE_MULTI payload of 4 bytes", "1600 0f00 14000000 10000000 00000000 02000000"),
                bad("WRITE_MULTI with fewer entries than wr_cnt", "1600 0f00 30000000 10000000 00000000"
                        + "0200000000000000 1000000000000000 00000000 04000000 7856341200000000"),
                bad("WRITE_MULTI entry count 0", "1600 0f00 30000000 10000000 00000000"
                        + "0100000000000000 1000000000000000 00000000 00000000 7856341200000000"),
                bad("WRITE_MULTI entry count 9", "1600 0f00 30000000 10000000 00000000"
                        + "0100000000000000 1000000000000000 00000000 09000000 7856341200000000"),
                bad("WRITE_MULTI reply of 4 bytes", "1600 0f00 14000000 01000000 00000000 02000000"),
                // DEVICE_FEATURE
                bad("DEVICE_FEATURE payload of 4 bytes", "1700 1000 14000000 00000000 00000000 10000000"),
                // MIG_DATA_READ / MIG_DATA_WRITE
                bad("MIG_DATA_READ payload of 4 bytes", "1900 1100 14000000 00000000 00000000 10000000"),
                bad("MIG_DATA_READ argsz below 8 + size", "1900 1100 18000000 00000000 00000000 0f000000 08000000"),
                bad("MIG_DATA_READ reply data shorter than size", "1900 1100 1b000000 01000000 00000000"
                        + "0c000000 04000000 deadbe"),
                bad("MIG_DATA_WRITE data shorter than size", "1b00 1200 1b000000 00000000 00000000"
                        + "0c000000 04000000 cafeba"),
                bad("MIG_DATA_WRITE argsz below 8 + size", "1b00 1200 1c000000 00000000 00000000"
                        + "0b000000 04000000 cafebabe"));
    }

    static Stream<Arguments> malformedQemuLayout() {
        return Stream.of(
                bad("DMA_WRITE (QEMU layout) without the 4 trailing bytes", "0200 0c00 20000000 00000000 00000000"
                        + "0020000000000000 04000000 aabbccdd"),
                bad("DMA_READ reply (QEMU layout) data longer than count", "0100 0b00 28000000 01000000 00000000"
                        + "0010000000000000 04000000 0102030405060708 00000000"));
    }

    private static Arguments bad(String name, String hex) {
        return Arguments.of(name, bytes(hex));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("malformed")
    void becomesInvalidMessage(String name, byte[] frame) {
        assertInvalid(frame, DmaLayout.SPEC);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("malformedQemuLayout")
    void becomesInvalidMessageInQemuLayout(String name, byte[] frame) {
        assertInvalid(frame, DmaLayout.QEMU);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("malformed")
    void closesTheFdsOfAnInvalidMessage(String name, byte[] frame) throws Exception {
        int fd = Fds.eventfd();
        EmbeddedChannel channel = new EmbeddedChannel(new VfioUserMessageDecoder());
        channel.writeInbound(new BytesWithFds(Goldens.buf(frame), FdSet.of(fd)));
        VfioUserInvalidMessage invalid = channel.readInbound();
        try {
            assertThat(invalid.fds().get(0)).isEqualTo(fd);
            Fds.assertOpen(fd);
        } finally {
            invalid.release();
            assertThat(channel.finishAndReleaseAll()).isFalse();
        }
        Fds.assertClosed(fd);
    }

    private static void assertInvalid(byte[] frame, DmaLayout layout) {
        EmbeddedChannel channel = CodecChannels.decoding(layout);
        ByteBuf in = Goldens.buf(frame);
        VfioUserHeader sent = VfioUserHeader.decode(in.duplicate());
        channel.writeInbound(in);
        Object decoded = channel.readInbound();
        try {
            assertThat(decoded).isInstanceOf(VfioUserInvalidMessage.class);
            VfioUserInvalidMessage invalid = (VfioUserInvalidMessage) decoded;
            assertThat(invalid.errno()).isEqualTo(Errno.EINVAL);
            assertThat(invalid.header()).isEqualTo(sent);
            assertThat(invalid.reason()).isNotBlank();
            assertThat(invalid.fds().isEmpty()).isTrue();

            VfioUserMessage reply = invalid.errorReply();
            assertThat(reply.header()).isEqualTo(new VfioUserHeader(sent.msgId(), sent.command(), 16, 0x21, 22));
            reply.release();

            // the connection lives on: the next message decodes
            channel.writeInbound(Goldens.buf("1500 0d00 10000000 00000000 00000000"));
            VfioUserMessage next = channel.readInbound();
            assertThat(next.command()).isEqualTo(VfioUserCommand.DEVICE_RESET);
            next.release();
        } finally {
            ReferenceCountUtil.release(decoded);
            assertThat(channel.finishAndReleaseAll()).isFalse();
        }
    }
}
