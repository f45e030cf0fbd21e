package io.vfiouser.server.pci;

import static io.vfiouser.server.pci.Cfg.assertRefused;
import static io.vfiouser.server.pci.Cfg.read16;
import static io.vfiouser.server.pci.Cfg.read32;
import static io.vfiouser.server.pci.Cfg.write16;
import static io.vfiouser.server.pci.Cfg.write32;
import static io.vfiouser.server.pci.Cfg.write8;
import static org.assertj.core.api.Assertions.assertThat;

import io.vfiouser.device.DeviceDescription;
import io.vfiouser.device.Region;
import io.vfiouser.transport.linux.Errno;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** BAR and expansion ROM sizing and programming. */
class BarEmulationTest {
    private final ConfigSpace full = new ConfigSpace(Cfg.full(), null);

    /** Sizes a BAR the way firmware and Linux do: save, write all-ones, read, restore. */
    private static int size32(ConfigSpace c, int register) {
        int saved = read32(c, register);
        write32(c, register, 0xFFFF_FFFF);
        int mask = read32(c, register);
        write32(c, register, saved);
        assertThat(read32(c, register)).isEqualTo(saved);
        return mask;
    }

    @Test
    void memoryBar32() {
        assertThat(size32(full, 0x10)).isEqualTo(0xFFFF_F000);
        write32(full, 0x10, 0xFEDC_1234);
        assertThat(read32(full, 0x10)).isEqualTo(0xFEDC_1000);
    }

    @Test
    void ioBar() {
        assertThat(size32(full, 0x14)).isEqualTo(0xFFFF_FF01);
        write32(full, 0x14, 0xC000);
        assertThat(read32(full, 0x14)).isEqualTo(0xC001);
        write32(full, 0x14, 0x1234);
        assertThat(read32(full, 0x14)).isEqualTo(0x1201);
    }

    @Test
    void prefetchable64BitBarBelow4GiB() {
        assertThat(size32(full, 0x18)).isEqualTo(0xFFF0_000C);
        assertThat(size32(full, 0x1C)).as("upper dword fully writable").isEqualTo(0xFFFF_FFFF);
        write32(full, 0x18, 0xFFFF_FFFF);
        write32(full, 0x1C, 0xFFFF_FFFF);
        long mask = (long) read32(full, 0x1C) << 32 | read32(full, 0x18) & 0xFFFF_FFF0L;
        assertThat(~mask + 1).isEqualTo(1 << 20);
        write32(full, 0x18, 0x8010_0000);
        write32(full, 0x1C, 0x0000_0001);
        assertThat(read32(full, 0x18)).isEqualTo(0x8010_000C);
        assertThat(read32(full, 0x1C)).as("placed above 4 GiB").isEqualTo(1);
    }

    @Test
    void pairAsOneEightByteWrite() {
        ByteBuffer b = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(-1L).flip();
        full.write(0x18, b);
        assertThat(read32(full, 0x18)).isEqualTo(0xFFF0_000C);
        assertThat(read32(full, 0x1C)).isEqualTo(0xFFFF_FFFF);
    }

    @ParameterizedTest
    @ValueSource(longs = {1L << 32, 1L << 33, 1L << 40})
    void bar64AtOrAbove4GiB(long size) {
        ConfigSpace c = new ConfigSpace(DeviceDescription.builder("big", Cfg.IDENTITY)
                .region(Region.bar(0, size).bits64().build()).build(), null);
        assertThat(read32(c, 0x10)).isEqualTo(0x4);
        write32(c, 0x10, 0xFFFF_FFFF);
        write32(c, 0x14, 0xFFFF_FFFF);
        assertThat(read32(c, 0x10)).as("no writable low address bits").isEqualTo(0x4);
        assertThat(read32(c, 0x14)).isEqualTo((int) (~(size - 1) >>> 32));
        long mask = (long) read32(c, 0x14) << 32 | read32(c, 0x10) & 0xFFFF_FFF0L;
        assertThat(~mask + 1).isEqualTo(size);
        write32(c, 0x14, 0x0000_0123);
        assertThat(read32(c, 0x14)).isEqualTo(0x0000_0123 & (int) (~(size - 1) >>> 32));
    }

    @Test
    void largest32BitBar() {
        ConfigSpace c = new ConfigSpace(DeviceDescription.builder("2g", Cfg.IDENTITY)
                .region(Region.bar(5, 1L << 31).prefetchable().build()).build(), null);
        assertThat(size32(c, 0x24)).isEqualTo(0x8000_0008);
    }

    @Test
    void unusedBarsReadZeroAndIgnoreWrites() {
        ConfigSpace plain = new ConfigSpace(Cfg.plain(), null);
        for (int register = 0x14; register <= 0x24; register += 4) {
            write32(plain, register, 0xFFFF_FFFF);
            assertThat(read32(plain, register)).isZero();
            write32(plain, register, 0x1234_5678);
            assertThat(read32(plain, register)).isZero();
        }
    }

    @Test
    void partialBarWrites() {
        write16(full, 0x12, 0xFFFF);
        assertThat(read32(full, 0x10)).isEqualTo(0xFFFF_0000);
        write8(full, 0x11, 0xFF);
        assertThat(read32(full, 0x10)).isEqualTo(0xFFFF_F000);
        write16(full, 0x10, 0);
        assertThat(read32(full, 0x10)).isEqualTo(0xFFFF_0000);
        assertThat(read16(full, 0x12)).isEqualTo(0xFFFF);
        assertRefused(full, Errno.EINVAL, 0x12, 4, 0xFFFF_FFFF);
    }

    @Test
    void romWithARegion() {
        assertThat(size32(full, 0x30)).as("all-ones: mask and enable").isEqualTo(0xFFFF_0001);
        write32(full, 0x30, 0xFFFF_F800);
        assertThat(read32(full, 0x30)).as("QEMU's sizing value").isEqualTo(0xFFFF_0000);
        write32(full, 0x30, 0xFFFF_FFFE);
        assertThat(read32(full, 0x30)).isEqualTo(0xFFFF_0000);
        write32(full, 0x30, 0xC001_2341);
        assertThat(read32(full, 0x30)).isEqualTo(0xC001_0001);
        write32(full, 0x30, 0);
        assertThat(read32(full, 0x30)).isZero();
    }

    @Test
    void romOfMinimumSize() {
        ConfigSpace c = new ConfigSpace(DeviceDescription.builder("rom", Cfg.IDENTITY)
                .region(Region.bar(Region.ROM, 2048).readOnly().build()).build(), null);
        write32(c, 0x30, 0xFFFF_F800);
        assertThat(read32(c, 0x30)).isEqualTo(0xFFFF_F800);
    }

    @ParameterizedTest
    @ValueSource(ints = {0xFFFF_F800, 0, 0xFFFF_FFFE, 0xFFFF_FFFF, 0x1234_5678, 1})
    void romWithoutARegionReadsZeroAndIgnoresEveryWrite(int value) {
        ConfigSpace plain = new ConfigSpace(Cfg.plain(), null);
        write32(plain, 0x30, value);
        assertThat(read32(plain, 0x30)).isZero();
    }
}
