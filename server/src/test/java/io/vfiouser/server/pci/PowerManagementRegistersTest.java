package io.vfiouser.server.pci;

import static io.vfiouser.server.pci.Cfg.PM;
import static io.vfiouser.server.pci.Cfg.assertRefused;
import static io.vfiouser.server.pci.Cfg.read16;
import static io.vfiouser.server.pci.Cfg.write16;
import static io.vfiouser.server.pci.Cfg.write32;
import static org.assertj.core.api.Assertions.assertThat;

import io.vfiouser.device.DeviceDescription;
import io.vfiouser.device.pci.PowerManagementCapability;
import io.vfiouser.transport.linux.Errno;
import org.junit.jupiter.api.Test;

class PowerManagementRegistersTest {
    private final ConfigSpace full = new ConfigSpace(Cfg.full(), null);

    private static ConfigSpace withPmc(int pmc) {
        return new ConfigSpace(DeviceDescription.builder("pm", Cfg.IDENTITY)
                .capability(new PowerManagementCapability(pmc)).build(), null);
    }

    @Test
    void powerStateIsStored() {
        write16(full, PM + 4, 0x0003);
        assertThat(full.powerState()).isEqualTo(3);
        assertThat(read16(full, PM + 4)).as("D3hot, No_Soft_Reset kept").isEqualTo(0x000B);
        write16(full, PM + 4, 0x0000);
        assertThat(full.powerState()).isZero();
        assertThat(read16(full, PM + 4)).isEqualTo(0x0008);
        write16(full, PM + 4, 0xFFFF);
        assertThat(read16(full, PM + 4)).as("only the state is writable without PME").isEqualTo(0x000B);
    }

    @Test
    void unsupportedStatesAreIgnored() {
        write16(full, PM + 4, 0x0003);
        write16(full, PM + 4, 0x0001);
        assertThat(full.powerState()).as("no D1").isEqualTo(3);
        write16(full, PM + 4, 0x0002);
        assertThat(full.powerState()).as("no D2").isEqualTo(3);
        assertThat(read16(full, PM + 4)).isEqualTo(0x000B);

        ConfigSpace d1d2 = withPmc(0x0603);
        write16(d1d2, 0x44, 0x0001);
        assertThat(d1d2.powerState()).isEqualTo(1);
        write16(d1d2, 0x44, 0x0002);
        assertThat(d1d2.powerState()).isEqualTo(2);
    }

    @Test
    void pmeEnableIsWritableOnlyWithPmeSupport() {
        ConfigSpace pme = withPmc(0xC803);
        write16(pme, 0x44, 0x0100);
        assertThat(read16(pme, 0x44)).isEqualTo(0x0108);
        write16(full, PM + 4, 0x0100);
        assertThat(read16(full, PM + 4)).isEqualTo(0x0008);
    }

    @Test
    void onlyPmcsrIsWritable() {
        assertRefused(full, Errno.ENOTSUP, PM + 2, 2, 0xFFFF);
        assertRefused(full, Errno.ENOTSUP, PM + 3, 1, 0xFF);
        assertRefused(full, Errno.ENOTSUP, PM + 6, 1, 0xFF);
        assertRefused(full, Errno.ENOTSUP, PM + 6, 2, 0xFFFF);
        assertRefused(full, Errno.ENOTSUP, PM, 4, 0xFFFF_FFFF);
        assertRefused(full, Errno.EPERM, PM, 2, 0x0000);
        assertRefused(full, Errno.EPERM, PM + 1, 1, 0x00);
        write32(full, PM + 4, 0xFFFF_0003);
        assertThat(full.powerState()).as("dword over PMCSR, BSE, Data").isEqualTo(3);
        assertThat(read16(full, PM + 6)).isZero();
        assertThat(read16(full, PM + 2)).isEqualTo(0x0003);
    }
}
