package io.vfiouser.codec;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.embedded.EmbeddedChannel;
import io.vfiouser.codec.payload.DeviceFeature;
import io.vfiouser.codec.payload.DmaAccess;
import io.vfiouser.codec.payload.DmaUnmapReply;
import io.vfiouser.codec.payload.DmaUnmapRequest;
import io.vfiouser.codec.payload.IoFdEntry;
import io.vfiouser.codec.payload.MigData;
import io.vfiouser.codec.payload.MsixMappableCapability;
import io.vfiouser.codec.payload.RegionAccess;
import io.vfiouser.codec.payload.RegionCapability;
import io.vfiouser.codec.payload.RegionInfo;
import io.vfiouser.codec.payload.RegionIoFds;
import io.vfiouser.codec.payload.RegionWriteMulti;
import io.vfiouser.codec.payload.SetIrqs;
import io.vfiouser.codec.payload.SparseMmapCapability;
import io.vfiouser.codec.payload.TypeCapability;
import io.vfiouser.codec.payload.WriteMultiEntry;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Invariants of the payload records and decoding details the golden messages do not show. */
class PayloadRecordsTest {

    @Test
    void dataMustMatchItsAnnouncedLength() {
        ByteBuf four = Unpooled.wrappedBuffer(new byte[4]);
        assertThatThrownBy(() -> new RegionAccess(0, 0, 3, four)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new DmaAccess(0, 5, four)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new MigData(12, 2, four)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new SetIrqs(24, SetIrqs.DATA_BOOL | SetIrqs.ACTION_TRIGGER, 1, 0, 3, four))
                .isInstanceOf(IllegalArgumentException.class);
        four.release();
    }

    @Test
    void boolDataGoesWithTheBoolFlagOnly() {
        ByteBuf one = Unpooled.wrappedBuffer(new byte[1]);
        assertThatThrownBy(() -> new SetIrqs(21, SetIrqs.DATA_EVENTFD | SetIrqs.ACTION_TRIGGER, 1, 0, 1, one))
                .isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new SetIrqs(20, SetIrqs.DATA_BOOL | SetIrqs.ACTION_TRIGGER, 1, 0, 1, null))
                .isInstanceOf(IllegalArgumentException.class);
        SetIrqs set = SetIrqs.of(SetIrqs.DATA_NONE | SetIrqs.ACTION_MASK, 0, 0, 1);
        assertThat(set.dataType()).isEqualTo(SetIrqs.DATA_NONE);
        assertThat(set.action()).isEqualTo(SetIrqs.ACTION_MASK);
        one.release();
    }

    /** argsz is a u32 in SET_IRQS as in every request: 2^31 and above decode, and encode back unchanged. */
    @Test
    void setIrqsArgszIsAU32() {
        ByteBuf wire = Unpooled.buffer(SetIrqs.FIXED_SIZE);
        wire.writeIntLE(0x8000_0000).writeIntLE(SetIrqs.DATA_NONE | SetIrqs.ACTION_TRIGGER).writeIntLE(2)
                .writeIntLE(0).writeIntLE(0);
        SetIrqs decoded = SetIrqs.decode(wire.duplicate());
        assertThat(decoded.argsz()).isEqualTo(0x8000_0000L);
        ByteBuf out = Unpooled.buffer(SetIrqs.FIXED_SIZE);
        decoded.encode(out);
        assertThat(out).isEqualTo(wire);
        wire.release();
        out.release();
    }

    @Test
    void bitmapGoesWithGetDirtyBitmapOnly() {
        assertThatThrownBy(() -> new DmaUnmapReply(48, 1, 0, 0, 4096, 8, null))
                .isInstanceOf(IllegalArgumentException.class);
        assertThat(DmaUnmapReply.echo(DmaUnmapRequest.of(DmaUnmapRequest.FLAG_UNMAP_ALL, 0, 0)).encodedSize())
                .isEqualTo(24);
    }

    @Test
    void ioFdEntriesAreEitherAllOrNone() {
        IoFdEntry entry = new IoFdEntry(0, 4, 0, IoFdEntry.TYPE_IOEVENTFD, 0, 0);
        assertThatThrownBy(() -> new RegionIoFds(96, 0, 2, 2, List.of(entry)))
                .isInstanceOf(IllegalArgumentException.class);
        assertThat(RegionIoFds.of(2, List.of()).argsz()).isEqualTo(16);
    }

    @Test
    void writeMultiEntriesHoldOneToEightBytes() {
        assertThatThrownBy(() -> new WriteMultiEntry(0, 0, 0, 0)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new WriteMultiEntry(0, 0, 9, 0)).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void writeMultiWithNoEntries() {
        ByteBuf payload = Unpooled.wrappedBuffer(Hex.bytes("0000000000000000"));
        assertThat(RegionWriteMulti.decode(payload).entries()).isEmpty();
        payload.release();
    }

    @Test
    void deviceFeatureFlags() {
        DeviceFeature feature = new DeviceFeature(16, DeviceFeature.PROBE | DeviceFeature.SET
                | DeviceFeature.FEATURE_DMA_LOGGING_START, Unpooled.EMPTY_BUFFER);
        assertThat(feature.feature()).isEqualTo(DeviceFeature.FEATURE_DMA_LOGGING_START);
        assertThat(feature.isProbe()).isTrue();
        assertThat(feature.isSet()).isTrue();
        assertThat(feature.isGet()).isFalse();
    }

    @Test
    void regionInfoSizeCountsItsCaps() {
        List<RegionCapability> caps = List.of(
                new SparseMmapCapability(List.of(new SparseMmapCapability.Area(0, 4096))), new TypeCapability(3, 1));
        assertThat(RegionInfo.sizeWith(caps)).isEqualTo(32 + 32 + 16);
        assertThat(new RegionInfo(80, 0xf, 9, 4096, 0, caps).encodedSize()).isEqualTo(80);
    }

    @Test
    void regionInfoSkipsUnknownCapabilities() {
        ByteBuf payload = Unpooled.wrappedBuffer(Hex.bytes("""
                38000000 0b000000 09000000 20000000 0001000000000000 0000000000000000
                0900 0100 28000000                     # unknown id 9, next 40
                0300 0100 00000000                     # MSIX_MAPPABLE
                """));
        assertThat(RegionInfo.decode(payload).caps()).containsExactly(MsixMappableCapability.INSTANCE);
        payload.release();
    }

    @Test
    void dmaWriteReplyOfThirteenBytesIsReadAsTheShortForm() {
        ByteBuf payload = Unpooled.wrappedBuffer(Hex.bytes("0020000000000000 04000000 00"));
        assertThat(DmaAccess.decodeWriteReply(payload, DmaLayout.SPEC)).isEqualTo(DmaAccess.of(0x2000, 4));
        payload.release();
    }

    @Test
    void qemuLayoutReadsOnlyTheLowHalfOfTheCount() {
        ByteBuf payload = Unpooled.wrappedBuffer(Hex.bytes("0010000000000000 08000000 ffffffff"));
        assertThat(DmaAccess.decodeReadRequest(payload, DmaLayout.QEMU)).isEqualTo(DmaAccess.of(0x1000, 8));
        payload.release();
    }

    /** Found by MessageDecoderFuzzTest: the u64 count of a DMA_WRITE reply was written as 32 bits. */
    @Test
    void qemuLayoutWritesTheWholeCountOfAPayloadWithoutData() {
        VfioUserMessage reply = VfioUserMessage.reply(Goldens.request(2, VfioUserCommand.DMA_WRITE),
                DmaAccess.of(0x2000, 0x1_0000_0004L));
        EmbeddedChannel encoder = CodecChannels.encoding(DmaLayout.QEMU);
        EmbeddedChannel decoder = CodecChannels.decoding(DmaLayout.QEMU);
        List<Object> decoded = List.of();
        try {
            encoder.writeOutbound(reply);
            byte[] bytes = CodecChannels.concat(CodecChannels.outboundBuffers(encoder));
            assertThat(bytes).isEqualTo(Hex.bytes("""
                    0200 0c00 20000000 01000000 00000000
                    0020000000000000 0400000001000000      # address 0x2000, u64 count 2^32 + 4
                    """));
            decoder.writeInbound(Goldens.buf(bytes));
            decoded = CodecChannels.inbound(decoder);
            assertThat(decoded).hasSize(1);
            assertThat(((VfioUserMessage) decoded.get(0)).payload()).isEqualTo(DmaAccess.of(0x2000, 0x1_0000_0004L));
        } finally {
            CodecChannels.releaseAll(decoded);
            assertThat(encoder.finishAndReleaseAll()).isFalse();
            assertThat(decoder.finishAndReleaseAll()).isFalse();
        }
    }

    /**
     * Found by MessageDecoderFuzzTest: a reply decoded from a chain of unknown capabilities (CAPS, no caps) was
     * encoded with CAPS and cap_offset 0, which the decoder (like QEMU) refuses.
     */
    @Test
    void regionInfoWritesTheCapsFlagOnlyWithCaps() {
        ByteBuf payload = Unpooled.wrappedBuffer(Hex.bytes("""
                30000000 0b000000 09000000 20000000 0001000000000000 0000000000000000
                0900 0100 00000000 00000000 00000000   # unknown id 9, last
                """));
        RegionInfo unknownOnly = RegionInfo.decode(payload);
        payload.release();
        assertThat(unknownOnly.flags() & RegionInfo.FLAG_CAPS).isNotZero();
        assertThat(unknownOnly.caps()).isEmpty();
        ByteBuf encoded = Unpooled.buffer();
        unknownOnly.encode(encoded);
        assertThat(Hex.of(encoded)).isEqualTo(Hex.bytes(
                "30000000 03000000 09000000 00000000 0001000000000000 0000000000000000"));
        assertThat(RegionInfo.decode(encoded))
                .isEqualTo(new RegionInfo(48, RegionInfo.FLAG_READ | RegionInfo.FLAG_WRITE, 9, 256, 0, List.of()));
        encoded.release();
    }
}
