package io.vfiouser.server.pci;

import static io.vfiouser.server.pci.Cfg.DSN;
import static io.vfiouser.server.pci.Cfg.EXP;
import static io.vfiouser.server.pci.Cfg.MSI;
import static io.vfiouser.server.pci.Cfg.MSIX;
import static io.vfiouser.server.pci.Cfg.PM;
import static io.vfiouser.server.pci.Cfg.VNDR;
import static io.vfiouser.server.pci.Cfg.VSEC;
import static io.vfiouser.server.pci.Cfg.read16;
import static io.vfiouser.server.pci.Cfg.read32;
import static io.vfiouser.server.pci.Cfg.read8;
import static io.vfiouser.server.pci.Cfg.readBytes;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vfiouser.device.DeviceDescription;
import io.vfiouser.device.Region;
import io.vfiouser.device.pci.MsiCapability;
import io.vfiouser.device.pci.PciExpressCapability;
import io.vfiouser.device.pci.PciExpressCapability.DeviceType;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The image a client (QEMU) reads at startup. */
class ConfigSpaceImageTest {
    private final ConfigSpace full = new ConfigSpace(Cfg.full(), null);

    @Test
    void headerOfAFullDevice() {
        assertThat(full.size()).isEqualTo(4096);
        assertThat(read16(full, 0x00)).isEqualTo(0x1AF4);
        assertThat(read16(full, 0x02)).isEqualTo(0x1234);
        assertThat(read16(full, 0x04)).as("command").isZero();
        assertThat(read16(full, 0x06)).as("status: capabilities list").isEqualTo(0x0010);
        assertThat(read32(full, 0x08)).as("class code and revision").isEqualTo(0x0200_0002);
        assertThat(read8(full, 0x09)).as("programming interface").isZero();
        assertThat(read8(full, 0x0A)).as("sub-class").isZero();
        assertThat(read8(full, 0x0B)).as("base class").isEqualTo(0x02);
        assertThat(read32(full, 0x0C)).as("cache line, latency, header type 0, BIST").isZero();
        assertThat(read32(full, 0x10)).as("BAR0: 32-bit memory").isZero();
        assertThat(read32(full, 0x14)).as("BAR1: I/O").isEqualTo(0x1);
        assertThat(read32(full, 0x18)).as("BAR2: 64-bit prefetchable").isEqualTo(0xC);
        assertThat(read32(full, 0x1C)).as("BAR3: upper half of BAR2").isZero();
        assertThat(read32(full, 0x20)).as("BAR4: 64-bit").isEqualTo(0x4);
        assertThat(read32(full, 0x24)).as("BAR5: upper half of BAR4").isZero();
        assertThat(read32(full, 0x28)).as("CardBus CIS").isZero();
        assertThat(read16(full, 0x2C)).isEqualTo(0x1AF5);
        assertThat(read16(full, 0x2E)).isEqualTo(0x5678);
        assertThat(read32(full, 0x30)).as("ROM: disabled, address 0").isZero();
        assertThat(read8(full, 0x34)).as("capabilities pointer").isEqualTo(0x40);
        assertThat(read32(full, 0x34) >>> 8).as("reserved").isZero();
        assertThat(read32(full, 0x38)).as("reserved").isZero();
        assertThat(read8(full, 0x3C)).as("interrupt line").isZero();
        assertThat(read8(full, 0x3D)).as("interrupt pin INTA").isEqualTo(1);
        assertThat(read16(full, 0x3E)).as("min_gnt, max_lat").isZero();
    }

    @Test
    void capabilityChainWalk() {
        List<String> found = new ArrayList<>();
        for (int p = read8(full, 0x34); p != 0; p = read8(full, p + 1)) {
            assertThat(p % 4).as("aligned").isZero();
            assertThat(p).isBetween(0x40, 0xFC);
            found.add(String.format("%02x@%02x", read8(full, p), p));
        }
        assertThat(found).containsExactly("01@40", "05@48", "11@60", "10@6c", "09@a8");
        assertThat(full.capabilities()).containsExactly(
                new CapabilityLayout(0x01, PM, 8, false),
                new CapabilityLayout(0x05, MSI, 24, false),
                new CapabilityLayout(0x11, MSIX, 12, false),
                new CapabilityLayout(0x10, EXP, 0x3C, false),
                new CapabilityLayout(0x09, VNDR, 8, false));
        assertThat(full.capabilityOffset(0x11)).isEqualTo(MSIX);
        assertThat(full.capabilityOffset(0x10)).isEqualTo(EXP);
        assertThat(full.capabilityOffset(0x12)).isEqualTo(-1);
    }

    @Test
    void capabilityRegisters() {
        assertThat(read16(full, PM + 2)).as("PMC").isEqualTo(0x0003);
        assertThat(read16(full, PM + 4)).as("PMCSR: D0, No_Soft_Reset").isEqualTo(0x0008);
        assertThat(read16(full, PM + 6)).as("BSE, Data").isZero();

        assertThat(read16(full, MSI + 2)).as("MSI control: MMC 4 vectors, 64-bit, PVM").isEqualTo(0x0184);
        for (int r = 4; r < 24; r += 4) {
            assertThat(read32(full, MSI + r)).as("MSI +%d", r).isZero();
        }

        assertThat(read16(full, MSIX + 2)).as("MSI-X control: table size 8").isEqualTo(7);
        assertThat(read32(full, MSIX + 4)).as("table in BAR4 at 0").isEqualTo(0x4);
        assertThat(read32(full, MSIX + 8)).as("PBA in BAR4 at 0x2000").isEqualTo(0x2004);

        assertThat(read16(full, EXP + 2)).as("PCIe v2 endpoint").isEqualTo(0x0002);
        assertThat(read32(full, EXP + 4)).as("DevCap: FLR, RBER, MPS 128").isEqualTo(0x1000_8000);
        assertThat(read16(full, EXP + 8)).as("DevCtl").isEqualTo(0x2810);
        assertThat(read16(full, EXP + 10)).as("DevSta").isZero();
        assertThat(read32(full, EXP + 12)).as("LnkCap: x1 2.5 GT/s").isEqualTo(0x11);
        assertThat(read16(full, EXP + 16)).as("LnkCtl").isZero();
        assertThat(read16(full, EXP + 18)).as("LnkSta: x1 2.5 GT/s").isEqualTo(0x11);
        for (int r = 20; r < 36; r += 4) {
            assertThat(read32(full, EXP + r)).as("slot/root +%d", r).isZero();
        }
        assertThat(read32(full, EXP + 36)).as("DevCap2").isZero();
        assertThat(read32(full, EXP + 40)).as("DevCtl2, DevSta2").isZero();
        assertThat(read32(full, EXP + 44)).as("LnkCap2").isEqualTo(0x2);
        assertThat(read32(full, EXP + 48)).as("LnkCtl2 target 2.5 GT/s, LnkSta2").isEqualTo(0x1);
        assertThat(read32(full, EXP + 52)).isZero();
        assertThat(read32(full, EXP + 56)).isZero();

        assertThat(readBytes(full, VNDR, 8)).containsExactly(0x09, 0x00, 8, 1, 2, 3, 4, 5);
        assertThat(readBytes(full, VNDR + 8, 0x100 - VNDR - 8)).as("unused standard space").containsOnly(0);
    }

    @Test
    void extendedCapabilities() {
        assertThat(read32(full, DSN)).as("DSN header, next = VSEC").isEqualTo(0x0003 | 1 << 16 | VSEC << 20);
        assertThat(read32(full, DSN + 4)).isEqualTo(0x89AB_CDEF);
        assertThat(read32(full, DSN + 8)).isEqualTo(0x0123_4567);
        assertThat(read32(full, VSEC)).as("VSEC header, last").isEqualTo(0x000B | 1 << 16);
        assertThat(read32(full, VSEC + 4)).as("VSEC id, rev, length").isEqualTo(0xBEEF | 2 << 16 | 12 << 20);
        assertThat(readBytes(full, VSEC + 8, 4)).containsExactly(9, 8, 7, 6);
        assertThat(readBytes(full, VSEC + 12, 4096 - VSEC - 12)).containsOnly(0);
        assertThat(full.extendedCapabilities()).containsExactly(
                new CapabilityLayout(0x03, DSN, 12, true), new CapabilityLayout(0x0B, VSEC, 12, true));
        assertThat(full.extendedCapabilityOffset(0x0B)).isEqualTo(VSEC);
        assertThat(full.extendedCapabilityOffset(0x03)).isEqualTo(DSN);
        assertThat(full.extendedCapabilityOffset(0x01)).isEqualTo(-1);
    }

    @Test
    void wholeSpaceInOneReadMatchesPieces() {
        ByteBuffer all = ByteBuffer.allocate(4096);
        full.read(0, all);
        assertThat(all.hasRemaining()).isFalse();
        ByteBuffer pieces = ByteBuffer.allocate(4096).order(ByteOrder.LITTLE_ENDIAN);
        for (int off = 0; off < 4096; off += 4) {
            pieces.putInt(read32(full, off));
        }
        assertThat(pieces.array()).isEqualTo(all.array());
        ByteBuffer direct = ByteBuffer.allocateDirect(16);
        full.read(0, direct);
        direct.flip();
        byte[] first = new byte[16];
        direct.get(first);
        assertThat(first).isEqualTo(Arrays.copyOf(all.array(), 16));
    }

    @Test
    void readIntoTheMiddleOfABuffer() {
        ByteBuffer b = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
        b.position(2).limit(6);
        full.read(0, b);
        assertThat(b.position()).isEqualTo(6);
        assertThat(b.getInt(2)).isEqualTo(0x1234_1AF4);
        assertThat(b.getShort(0)).isZero();
    }

    @Test
    void plainDeviceHasNoCapabilitiesNoPinAnd256Bytes() {
        ConfigSpace plain = new ConfigSpace(Cfg.plain(), null);
        assertThat(plain.size()).isEqualTo(256);
        assertThat(read16(plain, 0x06)).as("no capabilities list").isZero();
        assertThat(read8(plain, 0x34)).isZero();
        assertThat(read8(plain, 0x3D)).as("no INTx: pin 0").isZero();
        assertThat(readBytes(plain, 0x14, 0x18)).as("BAR1..5 unused, no ROM").containsOnly(0);
        assertThat(readBytes(plain, 0x40, 0xC0)).containsOnly(0);
        assertThat(plain.capabilities()).isEmpty();
        assertThat(plain.extendedCapabilities()).isEmpty();
        assertThat(plain.capabilityOffset(0x05)).isEqualTo(-1);
        assertThat(plain.extendedCapabilityOffset(0x03)).isEqualTo(-1);
        assertThat(plain.msiEnabled()).isFalse();
        assertThat(plain.msiEnabledVectors()).isZero();
        assertThat(plain.msiMask()).isZero();
        assertThat(plain.msiPending()).isZero();
        assertThat(plain.msixEnabled()).isFalse();
        assertThat(plain.msixFunctionMasked()).isFalse();
        assertThat(plain.powerState()).isZero();
        assertThatThrownBy(() -> plain.setMsiPending(1)).isInstanceOf(IllegalStateException.class);
    }

    @Test
    void conventionalDeviceWithMsiOnly() {
        DeviceDescription d = DeviceDescription.builder("msi", Cfg.IDENTITY).capability(new MsiCapability(1)).build();
        ConfigSpace c = new ConfigSpace(d, null);
        assertThat(c.size()).isEqualTo(256);
        assertThat(read16(c, 0x06)).isEqualTo(0x10);
        assertThat(read8(c, 0x34)).isEqualTo(0x40);
        assertThat(read16(c, 0x40)).as("id 5, last").isEqualTo(0x0005);
        assertThat(read16(c, 0x42)).as("MMC 0").isEqualTo(0x0180);
    }

    @Test
    void expressDeviceWithoutExtendedCapabilitiesReadsZeroAt0x100() {
        DeviceDescription d = DeviceDescription.builder("pcie", Cfg.IDENTITY)
                .capability(PciExpressCapability.ENDPOINT).build();
        ConfigSpace c = new ConfigSpace(d, null);
        assertThat(c.size()).isEqualTo(4096);
        assertThat(read32(c, 0x100)).isZero();
        assertThat(readBytes(c, 0x100, 0xF00)).containsOnly(0);
        assertThat(c.extendedCapabilities()).isEmpty();
    }

    @Test
    void deviceTypesAndFlr() {
        ConfigSpace legacy = new ConfigSpace(DeviceDescription.builder("legacy", Cfg.IDENTITY)
                .capability(new PciExpressCapability(DeviceType.LEGACY_ENDPOINT, false)).build(), null);
        assertThat(read16(legacy, 0x42)).isEqualTo(0x0012);
        assertThat(read32(legacy, 0x44)).as("no FLR bit").isEqualTo(0x8000);
        assertThat(read32(legacy, 0x4C)).as("a link").isEqualTo(0x11);

        ConfigSpace rcie = new ConfigSpace(DeviceDescription.builder("rcie", Cfg.IDENTITY)
                .capability(new PciExpressCapability(DeviceType.RC_INTEGRATED_ENDPOINT, true)).build(), null);
        assertThat(read16(rcie, 0x42)).isEqualTo(0x0092);
        assertThat(read32(rcie, 0x44)).isEqualTo(0x1000_8000);
        assertThat(read32(rcie, 0x4C)).as("no link: LnkCap").isZero();
        assertThat(read32(rcie, 0x50)).as("no link: LnkCtl, LnkSta").isZero();
        assertThat(read32(rcie, 0x6C)).as("no link: LnkCap2").isZero();
        assertThat(read32(rcie, 0x70)).as("no link: LnkCtl2").isZero();
    }

    @Test
    void romSmallerThan2KiBIsRefused() {
        assertThatThrownBy(() -> Region.bar(Region.ROM, 1024).readOnly().build())
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("2 KiB");
    }
}
