package io.vfiouser.codec;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.vfiouser.codec.payload.DmaLoggingControl;
import io.vfiouser.codec.payload.DmaLoggingReport;
import io.vfiouser.codec.payload.MigDeviceState;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The data layouts inside DEVICE_FEATURE (spec §3.16): golden bytes both ways, and the size checks of decoding.
 * The enclosing DEVICE_FEATURE messages are in {@link Goldens}.
 */
class FeatureDataTest {

    private static String hex(ByteBuf b) {
        try {
            return ByteBufUtil.hexDump(b);
        } finally {
            b.release();
        }
    }

    private static ByteBuf buf(String hex) {
        return Goldens.buf(hex);
    }

    @Test
    void migDeviceState() {
        String golden = "06000000" + "00000000"; // PRE_COPY, data_fd 0
        assertThat(hex(MigDeviceState.of(MigDeviceState.PRE_COPY).encode())).isEqualTo(golden);
        ByteBuf in = buf(golden + "ffff");
        assertThat(MigDeviceState.decode(in)).isEqualTo(new MigDeviceState(6, 0));
        assertThat(in.readerIndex()).as("not consumed").isZero();
        in.release();
        ByteBuf shortData = buf("0600");
        assertThatThrownBy(() -> MigDeviceState.decode(shortData)).isInstanceOf(VfioUserProtocolException.class);
        shortData.release();
    }

    @Test
    void dmaLoggingControlWithRanges() {
        String golden = "0010000000000000" + "02000000" + "00000000"      // page 4096, 2 ranges, reserved
                + "0000100000000000" + "0000040000000000"                  // [0x100000, +0x40000)
                + "0000000001000000" + "0000200000000000";                 // [0x100000000, +0x200000)
        DmaLoggingControl control = new DmaLoggingControl(4096, List.of(
                new DmaLoggingControl.Range(0x10_0000, 0x4_0000),
                new DmaLoggingControl.Range(0x1_0000_0000L, 0x20_0000)));
        assertThat(hex(control.encode())).isEqualTo(golden);
        ByteBuf in = buf(golden);
        assertThat(DmaLoggingControl.decode(in)).isEqualTo(control);
        in.release();
    }

    @Test
    void dmaLoggingControlRefusesMoreRangesThanItCarries() {
        ByteBuf in = buf("0010000000000000" + "02000000" + "00000000" + "0000100000000000" + "0000040000000000");
        assertThatThrownBy(() -> DmaLoggingControl.decode(in))
                .isInstanceOfSatisfying(VfioUserProtocolException.class, e -> assertThat(e.errno()).isEqualTo(22));
        in.release();
        ByteBuf tooShort = buf("00100000000000000000");
        assertThatThrownBy(() -> DmaLoggingControl.decode(tooShort)).isInstanceOf(VfioUserProtocolException.class);
        tooShort.release();
    }

    @Test
    void dmaLoggingReport() {
        String golden = "0000100000000000" + "0000040000000000" + "0010000000000000";
        DmaLoggingReport report = new DmaLoggingReport(0x10_0000, 0x4_0000, 4096);
        assertThat(hex(report.encode())).isEqualTo(golden);
        ByteBuf in = buf(golden);
        assertThat(DmaLoggingReport.decode(in)).isEqualTo(report);
        in.release();
        assertThat(report.bitmapSize()).as("64 pages: one u64").isEqualTo(8);
    }

    @Test
    void bitmapSizesRoundUpToWholeWords() {
        assertThat(DmaLoggingReport.bitmapSize(4096, 4096)).isEqualTo(8);
        assertThat(DmaLoggingReport.bitmapSize(1, 4096)).isEqualTo(8);
        assertThat(DmaLoggingReport.bitmapSize(65 * 4096L, 4096)).isEqualTo(16);
        assertThat(DmaLoggingReport.bitmapSize(0, 4096)).isZero();
        assertThat(DmaLoggingReport.bitmapSize(4096, 3000)).as("not a power of two").isEqualTo(-1);
        assertThat(DmaLoggingReport.bitmapSize(4096, 0)).isEqualTo(-1);
        assertThat(DmaLoggingReport.bitmapSize(-1L, 1)).as("more than fits in an int").isEqualTo(-1);
    }
}
