package io.vfiouser.server.pci;

import static io.vfiouser.server.pci.Cfg.MSIX;
import static io.vfiouser.server.pci.Cfg.assertRefused;
import static io.vfiouser.server.pci.Cfg.read16;
import static io.vfiouser.server.pci.Cfg.read32;
import static io.vfiouser.server.pci.Cfg.write16;
import static io.vfiouser.server.pci.Cfg.write32;
import static io.vfiouser.server.pci.Cfg.write8;
import static org.assertj.core.api.Assertions.assertThat;

import io.vfiouser.transport.linux.Errno;
import org.junit.jupiter.api.Test;

class MsixRegistersTest {
    private final Cfg.Recorder recorder = new Cfg.Recorder();
    private final ConfigSpace full = new ConfigSpace(Cfg.full(), recorder);

    @Test
    void enableAndFunctionMask() {
        write16(full, MSIX + 2, 0xC000);
        assertThat(full.msixEnabled()).isTrue();
        assertThat(full.msixFunctionMasked()).isTrue();
        assertThat(read16(full, MSIX + 2)).isEqualTo(0xC007);
        assertThat(recorder.take()).containsExactly("msix true true");

        write16(full, MSIX + 2, 0x8000);
        assertThat(full.msixFunctionMasked()).isFalse();
        assertThat(recorder.take()).containsExactly("msix true false");

        write16(full, MSIX + 2, 0xBFFF);
        assertThat(read16(full, MSIX + 2)).as("table size read-only").isEqualTo(0x8007);
        assertThat(recorder.take()).as("nothing changed").isEmpty();

        write8(full, MSIX + 3, 0x40);
        assertThat(full.msixEnabled()).isFalse();
        assertThat(full.msixFunctionMasked()).isTrue();
        assertThat(recorder.take()).containsExactly("msix false true");

        write16(full, MSIX + 2, 0);
        assertThat(recorder.take()).containsExactly("msix false false");
    }

    @Test
    void tableAndPbaAreReadOnly() {
        write32(full, MSIX + 4, 0xFFFF_FFFF);
        write32(full, MSIX + 8, 0);
        assertThat(read32(full, MSIX + 4)).isEqualTo(0x4);
        assertThat(read32(full, MSIX + 8)).isEqualTo(0x2004);
    }

    @Test
    void headerAloneIsEperm() {
        assertRefused(full, Errno.EPERM, MSIX, 2, 0xFFFF);
        assertRefused(full, Errno.EPERM, MSIX, 1, 0xFF);
        write32(full, MSIX, 0x8000_0000);
        assertThat(full.msixEnabled()).as("dword at the start reaches control").isTrue();
        assertThat(read16(full, MSIX)).isEqualTo(0x6C11);
    }
}
