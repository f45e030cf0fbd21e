package io.vfiouser.server.pci;

import static io.vfiouser.server.pci.Cfg.MSI;
import static io.vfiouser.server.pci.Cfg.assertRefused;
import static io.vfiouser.server.pci.Cfg.read16;
import static io.vfiouser.server.pci.Cfg.read32;
import static io.vfiouser.server.pci.Cfg.write16;
import static io.vfiouser.server.pci.Cfg.write32;
import static io.vfiouser.server.pci.Cfg.write8;
import static org.assertj.core.api.Assertions.assertThat;

import io.vfiouser.device.DeviceDescription;
import io.vfiouser.device.pci.MsiCapability;
import io.vfiouser.transport.linux.Errno;
import org.junit.jupiter.api.Test;

class MsiRegistersTest {
    private final Cfg.Recorder recorder = new Cfg.Recorder();
    private final ConfigSpace full = new ConfigSpace(Cfg.full(), recorder);

    private ConfigSpace withVectors(int vectors) {
        return new ConfigSpace(DeviceDescription.builder("msi", Cfg.IDENTITY)
                .capability(new MsiCapability(vectors)).build(), recorder);
    }

    @Test
    void enableAndMultipleMessageEnable() {
        write16(full, MSI + 2, 0x0020);
        assertThat(recorder.take()).as("MME while disabled changes nothing enabled").isEmpty();
        assertThat(full.msiEnabledVectors()).isZero();

        write16(full, MSI + 2, 0x0021);
        assertThat(read16(full, MSI + 2)).isEqualTo(0x01A5);
        assertThat(full.msiEnabled()).isTrue();
        assertThat(full.msiEnabledVectors()).isEqualTo(4);
        assertThat(recorder.take()).containsExactly("msi true 4");

        write16(full, MSI + 2, 0x0011);
        assertThat(full.msiEnabledVectors()).isEqualTo(2);
        assertThat(recorder.take()).containsExactly("msi true 2");

        write16(full, MSI + 2, 0x0011);
        assertThat(recorder.take()).as("same value, no call").isEmpty();

        write16(full, MSI + 2, 0x0000);
        assertThat(full.msiEnabled()).isFalse();
        assertThat(full.msiEnabledVectors()).isZero();
        assertThat(recorder.take()).containsExactly("msi false 0");
    }

    @Test
    void readOnlyControlBitsIgnored() {
        write16(full, MSI + 2, 0xFF8F);
        assertThat(read16(full, MSI + 2)).as("only enable taken; MMC, 64-bit, PVM kept").isEqualTo(0x0185);
        assertThat(full.msiEnabledVectors()).isEqualTo(1);
        assertThat(recorder.take()).containsExactly("msi true 1");
    }

    @Test
    void mmeAboveMmcIsEinval() {
        assertRefused(full, Errno.EINVAL, MSI + 2, 2, 0x0031);
        assertRefused(full, Errno.EINVAL, MSI + 2, 1, 0x70);
        assertRefused(full, Errno.EINVAL, MSI + 2, 2, 0xFFFF);
        assertRefused(full, Errno.EINVAL, MSI, 4, 0x0031_0000);
        assertThat(recorder.take()).isEmpty();
        ConfigSpace one = withVectors(1);
        assertRefused(one, Errno.EINVAL, 0x42, 2, 0x0011);
        write16(one, 0x42, 0x0001);
        assertThat(one.msiEnabledVectors()).isEqualTo(1);
    }

    @Test
    void dwordWriteAtTheCapabilityStartReachesControl() {
        write32(full, MSI, 0x0021_6005);
        assertThat(read32(full, MSI)).as("header ignored").isEqualTo(0x01A5_6005);
        assertThat(full.msiEnabledVectors()).isEqualTo(4);
        assertRefused(full, Errno.EPERM, MSI, 2, 0);
    }

    @Test
    void addressDataAndMask() {
        write32(full, MSI + 4, 0xFEE0_1003);
        write32(full, MSI + 8, 0x1234_5678);
        write16(full, MSI + 12, 0x4041);
        assertThat(read32(full, MSI + 4)).as("bits 1:0 read 0").isEqualTo(0xFEE0_1000);
        assertThat(read32(full, MSI + 8)).isEqualTo(0x1234_5678);
        assertThat(read32(full, MSI + 12)).isEqualTo(0x4041);
        write32(full, MSI + 12, 0xFFFF_FFFF);
        assertThat(read32(full, MSI + 12)).as("reserved half read-only").isEqualTo(0xFFFF);

        write32(full, MSI + 16, 0xFFFF_FFFF);
        assertThat(read32(full, MSI + 16)).as("one bit per vector").isEqualTo(0xF);
        assertThat(full.msiMask()).isEqualTo(0xF);
        assertThat(recorder.take()).containsExactly("msi-mask f");
        write32(full, MSI + 16, 0xFFFF_FFFF);
        assertThat(recorder.take()).isEmpty();
        write8(full, MSI + 16, 0x05);
        assertThat(full.msiMask()).isEqualTo(0x5);
        assertThat(recorder.take()).containsExactly("msi-mask 5");
    }

    @Test
    void pendingBitsAreSetByTheIrqLayerOnly() {
        write32(full, MSI + 20, 0xFFFF_FFFF);
        assertThat(read32(full, MSI + 20)).isZero();
        full.setMsiPending(0xFF);
        assertThat(read32(full, MSI + 20)).isEqualTo(0xF);
        assertThat(full.msiPending()).isEqualTo(0xF);
        full.setMsiPending(0x2);
        assertThat(read32(full, MSI + 20)).isEqualTo(0x2);
    }

    @Test
    void thirtyTwoVectors() {
        ConfigSpace c = withVectors(32);
        assertThat(read16(c, 0x42)).isEqualTo(0x018A);
        write16(c, 0x42, 0x0051);
        assertThat(c.msiEnabledVectors()).isEqualTo(32);
        write32(c, 0x50, 0xFFFF_FFFF);
        assertThat(c.msiMask()).isEqualTo(0xFFFF_FFFF);
        c.setMsiPending(0x8000_0001);
        assertThat(c.msiPending()).isEqualTo(0x8000_0001);
        assertThat(recorder.take()).containsExactly("msi true 32", "msi-mask ffffffff");
    }
}
