package io.vfiouser.server.pci;

import static io.vfiouser.server.pci.Cfg.DSN;
import static io.vfiouser.server.pci.Cfg.VNDR;
import static io.vfiouser.server.pci.Cfg.VSEC;
import static io.vfiouser.server.pci.Cfg.assertRefused;
import static io.vfiouser.server.pci.Cfg.read32;
import static io.vfiouser.server.pci.Cfg.readBytes;
import static io.vfiouser.server.pci.Cfg.write32;
import static io.vfiouser.server.pci.Cfg.write8;
import static io.vfiouser.server.pci.Cfg.writeBytes;
import static org.assertj.core.api.Assertions.assertThat;

import io.vfiouser.device.DeviceDescription;
import io.vfiouser.device.pci.PciExpressCapability;
import io.vfiouser.device.pci.VendorCapability;
import io.vfiouser.transport.linux.Errno;
import org.junit.jupiter.api.Test;

/** Vendor-specific capability, Device Serial Number and vendor-specific extended capability. */
class VendorCapabilitiesTest {
    private final ConfigSpace full = new ConfigSpace(Cfg.full(), null);

    @Test
    void vendorDataIsWritable() {
        write32(full, VNDR + 4, 0xDDCC_BBAA);
        assertThat(readBytes(full, VNDR, 8)).containsExactly(0x09, 0x00, 8, 1, 0xAA, 0xBB, 0xCC, 0xDD);
        write8(full, VNDR + 3, 0x77);
        assertThat(readBytes(full, VNDR + 3, 1)).containsExactly(0x77);
        writeBytes(full, VNDR + 2, (byte) 0xFF, (byte) 0x55);
        assertThat(readBytes(full, VNDR, 4)).as("length byte ignored").containsExactly(0x09, 0x00, 8, 0x55);
        write32(full, VNDR, 0x6600_FFFF);
        assertThat(readBytes(full, VNDR, 4)).containsExactly(0x09, 0x00, 8, 0x66);
    }

    @Test
    void vendorHeaderAloneIsEperm() {
        assertRefused(full, Errno.EPERM, VNDR, 2, 0);
        assertRefused(full, Errno.EPERM, VNDR + 2, 1, 0);
        assertRefused(full, Errno.EPERM, VNDR + 1, 2, 0);
    }

    @Test
    void vendorCapabilityWithoutData() {
        ConfigSpace c = new ConfigSpace(DeviceDescription.builder("v", Cfg.IDENTITY)
                .capability(new VendorCapability(new byte[0]))
                .capability(new VendorCapability(new byte[] {42})).build(), null);
        assertThat(readBytes(c, 0x40, 8)).containsExactly(0x09, 0x44, 3, 0, 0x09, 0x00, 4, 42);
        assertRefused(c, Errno.EPERM, 0x40, 3, 0);
        assertRefused(c, Errno.EPERM, 0x40, 4, -1);
        write32(c, 0x44, -1);
        assertThat(readBytes(c, 0x40, 8)).containsExactly(0x09, 0x44, 3, 0, 0x09, 0x00, 4, 0xFF);
    }

    @Test
    void serialNumberIsReadOnly() {
        assertRefused(full, Errno.EPERM, DSN, 4, 0);
        assertRefused(full, Errno.EPERM, DSN, 1, 0);
        assertRefused(full, Errno.EPERM, DSN + 4, 4, 0);
        assertRefused(full, Errno.EPERM, DSN + 8, 2, 0);
        assertRefused(full, Errno.EPERM, DSN + 11, 1, 0);
    }

    @Test
    void vendorExtendedDataIsWritable() {
        write32(full, VSEC + 8, 0x1122_3344);
        assertThat(read32(full, VSEC + 8)).isEqualTo(0x1122_3344);
        writeBytes(full, VSEC + 4, new byte[] {-1, -1, -1, -1, 0x55, 0x66});
        assertThat(read32(full, VSEC + 4)).as("VSEC header ignored").isEqualTo(0xBEEF | 2 << 16 | 12 << 20);
        assertThat(read32(full, VSEC + 8)).isEqualTo(0x1122_6655);
        assertRefused(full, Errno.EPERM, VSEC, 4, 0);
        assertRefused(full, Errno.EPERM, VSEC + 4, 4, 0);
        assertRefused(full, Errno.EPERM, VSEC, 8, 0);
    }

    @Test
    void emptyExtendedListIgnoresWrites() {
        ConfigSpace c = new ConfigSpace(DeviceDescription.builder("pcie", Cfg.IDENTITY)
                .capability(PciExpressCapability.ENDPOINT).build(), null);
        write32(c, 0x100, 0xFFFF_FFFF);
        assertThat(read32(c, 0x100)).isZero();
    }
}
