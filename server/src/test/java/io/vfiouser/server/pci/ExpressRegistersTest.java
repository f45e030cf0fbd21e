package io.vfiouser.server.pci;

import static io.vfiouser.server.pci.Cfg.EXP;
import static io.vfiouser.server.pci.Cfg.assertRefused;
import static io.vfiouser.server.pci.Cfg.read16;
import static io.vfiouser.server.pci.Cfg.read32;
import static io.vfiouser.server.pci.Cfg.readBytes;
import static io.vfiouser.server.pci.Cfg.write16;
import static io.vfiouser.server.pci.Cfg.write32;
import static io.vfiouser.server.pci.Cfg.write8;
import static org.assertj.core.api.Assertions.assertThat;

import io.vfiouser.device.DeviceDescription;
import io.vfiouser.device.pci.PciExpressCapability;
import io.vfiouser.device.pci.PciExpressCapability.DeviceType;
import io.vfiouser.transport.linux.Errno;
import org.junit.jupiter.api.Test;

class ExpressRegistersTest {
    private final Cfg.Recorder recorder = new Cfg.Recorder();
    private final ConfigSpace full = new ConfigSpace(Cfg.full(), recorder);

    private ConfigSpace express(DeviceType type, boolean flr) {
        return new ConfigSpace(DeviceDescription.builder("pcie", Cfg.IDENTITY)
                .capability(new PciExpressCapability(type, flr)).build(), recorder);
    }

    @Test
    void controlRegistersAreStored() {
        write16(full, EXP + 8, 0x5F3F);
        assertThat(read16(full, EXP + 8)).isEqualTo(0x5F3F);
        write16(full, EXP + 16, 0xFFFF);
        assertThat(read16(full, EXP + 16)).isEqualTo(0x03CB);
        write16(full, EXP + 40, 0xFFFF);
        assertThat(read16(full, EXP + 40)).isEqualTo(0xFFFF);
        write16(full, EXP + 48, 0x0003);
        assertThat(read16(full, EXP + 48)).isEqualTo(0x0003);
        assertThat(recorder.take()).isEmpty();
    }

    @Test
    void readOnlyRegistersIgnoreWrites() {
        byte[] before = readBytes(full, EXP, 0x3C);
        write16(full, EXP + 2, 0xFFFF);
        write32(full, EXP + 4, 0);
        write16(full, EXP + 10, 0xFFFF);
        write32(full, EXP + 12, 0xFFFF_FFFF);
        write16(full, EXP + 18, 0xFFFF);
        for (int r = 20; r < 36; r += 2) {
            write16(full, EXP + r, 0xFFFF);
        }
        write32(full, EXP + 36, 0xFFFF_FFFF);
        write16(full, EXP + 42, 0xFFFF);
        write32(full, EXP + 44, 0xFFFF_FFFF);
        write16(full, EXP + 50, 0xFFFF);
        write32(full, EXP + 52, 0xFFFF_FFFF);
        write32(full, EXP + 56, 0xFFFF_FFFF);
        assertThat(readBytes(full, EXP, 0x3C)).isEqualTo(before);
        write8(full, EXP + 24, 0xFF);
        assertThat(read16(full, EXP + 24)).as("an endpoint has no slot control: byte write ignored").isZero();
    }

    @Test
    void partialControlRegisterWritesAreEinval() {
        for (int r : new int[] {8, 16, 40, 48}) {
            assertRefused(full, Errno.EINVAL, EXP + r, 1, 0x01);
            assertRefused(full, Errno.EINVAL, EXP + r + 1, 1, 0x01);
            assertRefused(full, Errno.EINVAL, EXP + r + 1, 2, 0x0101);
            assertRefused(full, Errno.EINVAL, EXP + r - 1, 2, 0x0101);
        }
        write32(full, EXP + 8, 0xFFFF_0000);
        assertThat(read32(full, EXP + 8)).as("dword over DevCtl and DevSta").isZero();
        write32(full, EXP + 6, 0x2810_FFFF);
        assertThat(read16(full, EXP + 8)).as("dword covering DevCtl").isEqualTo(0x2810);
    }

    @Test
    void flrWhenAdvertised() {
        write16(full, 0x04, 0x0006);
        recorder.take();
        assertThat(write16(full, EXP + 8, 0x2810)).as("no FLR without Initiate FLR").isFalse();
        assertThat(write16(full, EXP + 8, 0x8000 | 0x2810)).as("the write initiates an FLR").isTrue();
        assertThat(recorder.take()).isEmpty();
        assertThat(read16(full, EXP + 8)).as("Initiate FLR reads 0").isEqualTo(0x2810);
        assertThat(write32(full, EXP + 8, 0x0000_8000)).isTrue();
        assertThat(read16(full, EXP + 8)).isZero();
    }

    @Test
    void theCallerResetsTheSpaceAfterTheFlrWrite() {
        ConfigSpace c = new ConfigSpace(Cfg.full(), recorder);
        write16(c, 0x04, 0x0406);
        if (write16(c, EXP + 8, 0x80F0)) {
            c.reset();
        }
        assertThat(recorder.take()).containsExactly("command 0->406");
        assertThat(c.command()).isZero();
        assertThat(read16(c, EXP + 8)).isEqualTo(0x2810);
        assertThat(c.intxDisabled()).isFalse();
    }

    @Test
    void flrWithoutTheDevCapBitIsEinval() {
        ConfigSpace c = express(DeviceType.ENDPOINT, false);
        assertRefused(c, Errno.EINVAL, 0x48, 2, 0x8000);
        assertRefused(c, Errno.EINVAL, 0x48, 4, 0x0000_8000);
        assertThat(recorder.take()).isEmpty();
        write16(c, 0x48, 0x0010);
        assertThat(read16(c, 0x48)).isEqualTo(0x0010);
    }

    @Test
    void rootComplexIntegratedEndpointHasNoLinkRegisters() {
        ConfigSpace c = express(DeviceType.RC_INTEGRATED_ENDPOINT, true);
        write8(c, 0x50, 0x03);
        write16(c, 0x50, 0xFFFF);
        write16(c, 0x70, 0xFFFF);
        assertThat(read32(c, 0x50)).isZero();
        assertThat(read32(c, 0x70)).isZero();
        assertRefused(c, Errno.EINVAL, 0x48, 1, 0);
        assertThat(write16(c, 0x48, 0x8000)).isTrue();
    }

    @Test
    void headerAloneIsEperm() {
        assertRefused(full, Errno.EPERM, EXP, 2, 0);
        assertRefused(full, Errno.EPERM, EXP + 1, 1, 0);
    }
}
