package io.vfiouser.server.pci;

import static io.vfiouser.server.pci.Cfg.EXP;
import static io.vfiouser.server.pci.Cfg.MSI;
import static io.vfiouser.server.pci.Cfg.MSIX;
import static io.vfiouser.server.pci.Cfg.PM;
import static io.vfiouser.server.pci.Cfg.VNDR;
import static io.vfiouser.server.pci.Cfg.VSEC;
import static io.vfiouser.server.pci.Cfg.read16;
import static io.vfiouser.server.pci.Cfg.read32;
import static io.vfiouser.server.pci.Cfg.readBytes;
import static io.vfiouser.server.pci.Cfg.write16;
import static io.vfiouser.server.pci.Cfg.write32;
import static io.vfiouser.server.pci.Cfg.write8;
import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class ResetTest {
    private final Cfg.Recorder recorder = new Cfg.Recorder();
    private final ConfigSpace c = new ConfigSpace(Cfg.full(), recorder);

    @Test
    void resetRestoresThePowerOnImageSilently() {
        byte[] powerOn = readBytes(c, 0, c.size());

        write16(c, 0x04, 0x0507);
        c.signalStatusErrors(PciRegisters.STATUS_RECEIVED_MASTER_ABORT);
        write8(c, 0x0C, 0x10);
        write32(c, 0x10, 0xFE00_0000);
        write32(c, 0x1C, 0x1);
        write32(c, 0x30, 0xC000_0001);
        write8(c, 0x3C, 0x0B);
        write16(c, PM + 4, 0x0003);
        write32(c, MSI + 4, 0xFEE0_0000);
        write16(c, MSI + 2, 0x0021);
        write32(c, MSI + 16, 0x3);
        c.setMsiPending(0x4);
        write16(c, MSIX + 2, 0xC000);
        write16(c, EXP + 8, 0x5000);
        write16(c, EXP + 16, 0x0003);
        write16(c, EXP + 40, 0x0400);
        write16(c, EXP + 48, 0x0002);
        write32(c, VNDR + 4, 0);
        write32(c, VSEC + 8, 0);
        assertThat(readBytes(c, 0, c.size())).isNotEqualTo(powerOn);
        recorder.take();

        c.reset();

        assertThat(readBytes(c, 0, c.size())).isEqualTo(powerOn);
        assertThat(recorder.take()).as("reset does not call the listener").isEmpty();
        assertThat(c.command()).isZero();
        assertThat(c.busMasterEnabled()).isFalse();
        assertThat(c.intxDisabled()).isFalse();
        assertThat(c.status()).isEqualTo(PciRegisters.STATUS_CAPABILITIES);
        assertThat(read32(c, 0x10)).isZero();
        assertThat(read32(c, 0x18)).isEqualTo(0xC);
        assertThat(read32(c, 0x1C)).isZero();
        assertThat(read32(c, 0x30)).isZero();
        assertThat(c.powerState()).isZero();
        assertThat(c.msiEnabled()).isFalse();
        assertThat(c.msiEnabledVectors()).isZero();
        assertThat(c.msiMask()).isZero();
        assertThat(c.msiPending()).isZero();
        assertThat(c.msixEnabled()).isFalse();
        assertThat(c.msixFunctionMasked()).isFalse();
        assertThat(read16(c, EXP + 8)).isEqualTo(0x2810);
    }

    @Test
    void changesAfterResetAreHeardAgain() {
        write16(c, 0x04, 0x0006);
        write16(c, MSI + 2, 0x0001);
        write16(c, MSIX + 2, 0x8000);
        write32(c, MSI + 16, 0x1);
        recorder.take();
        c.reset();
        write16(c, 0x04, 0x0006);
        write16(c, MSI + 2, 0x0001);
        write16(c, MSIX + 2, 0x8000);
        write32(c, MSI + 16, 0x1);
        assertThat(recorder.take()).containsExactly("command 0->6", "msi true 1", "msix true false", "msi-mask 1");
    }

    @Test
    void resetIsRepeatable() {
        byte[] powerOn = readBytes(c, 0, c.size());
        c.reset();
        c.reset();
        assertThat(readBytes(c, 0, c.size())).isEqualTo(powerOn);
    }
}
