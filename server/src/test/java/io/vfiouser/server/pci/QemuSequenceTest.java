package io.vfiouser.server.pci;

import static io.vfiouser.server.pci.Cfg.read16;
import static io.vfiouser.server.pci.Cfg.read32;
import static io.vfiouser.server.pci.Cfg.read8;
import static io.vfiouser.server.pci.Cfg.readBytes;
import static io.vfiouser.server.pci.Cfg.write16;
import static io.vfiouser.server.pci.Cfg.write32;
import static org.assertj.core.api.Assertions.assertThat;

import io.vfiouser.device.DeviceDescription;
import io.vfiouser.device.Region;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The configuration accesses QEMU's vfio-user-pci (and a Linux guest behind it) makes, replayed in order: none
 * may fail (digest 5.2 steps 7-10, 5.7 steps 2-5, 5.3).
 */
class QemuSequenceTest {
    private final Cfg.Recorder recorder = new Cfg.Recorder();

    /** What QEMU learns at realize. */
    private record Realized(byte[] image, long romSize, int[] barTypes, int msixControl, int msixTable, int msixPba,
                            int msiControl, int pin) {
    }

    /** Digest 5.2 steps 7 to 10 for a device whose regions are described by {@code d}. */
    private static Realized realize(ConfigSpace c, DeviceDescription d) {
        // Step 7: the whole space at once, then ROM sizing, then each present BAR's type.
        ByteBuffer all = ByteBuffer.allocate(c.size()).order(ByteOrder.LITTLE_ENDIAN);
        c.read(0, all);
        byte[] image = all.array();
        int orig = read32(c, 0x30);
        write32(c, 0x30, 0xFFFF_F800);
        int sized = read32(c, 0x30);
        write32(c, 0x30, orig);
        long romSize = ~(sized & 0xFFFF_F800L) + 1 & 0xFFFF_FFFFL;
        int[] barTypes = new int[6];
        for (int i = 0; i < 6; i++) {
            if (d.region(i).isPresent()) {
                barTypes[i] = read32(c, 0x10 + 4 * i);
            }
        }
        // Steps 8 and 9: the capability walk over the image it read.
        int msixControl = -1;
        int msixTable = -1;
        int msixPba = -1;
        int msiControl = -1;
        for (int p = image[0x34] & 0xFF; p != 0; p = image[p + 1] & 0xFF) {
            switch (image[p] & 0xFF) {
                case 0x11 -> {
                    msixControl = read16(c, p + 2);
                    msixTable = read32(c, p + 4);
                    msixPba = read32(c, p + 8);
                }
                case 0x05 -> msiControl = read16(c, p + 2);
                default -> {
                }
            }
        }
        // Step 10.
        int pin = read8(c, 0x3D);
        return new Realized(image, romSize, barTypes, msixControl, msixTable, msixPba, msiControl, pin);
    }

    /** Digest 5.7 steps 2 to 5 (step 4 is DEVICE_RESET, which resets the space). */
    private static List<Integer> machineReset(ConfigSpace c, int pmCap) {
        List<Integer> pmcsrReadBack = new ArrayList<>();
        int cmd = read16(c, 0x04);
        write16(c, 0x04, cmd & ~(0x1 | 0x2 | 0x4 | 0x400));
        if (pmCap > 0) {
            int pmcsr = read16(c, pmCap + 4);
            if ((pmcsr & 3) != 0) {
                write16(c, pmCap + 4, pmcsr & ~3);
                pmcsrReadBack.add(read16(c, pmCap + 4));
            }
        }
        c.reset();
        for (int i = 0; i < 6; i++) {
            write32(c, 0x10 + 4 * i, 0);
        }
        return pmcsrReadBack;
    }

    @Test
    void realizeAndFirstResetOfAFullDevice() {
        DeviceDescription d = Cfg.full();
        ConfigSpace c = new ConfigSpace(d, recorder);
        byte[] powerOn = readBytes(c, 0, c.size());

        Realized r = realize(c, d);
        assertThat(r.image()).hasSize(4096).isEqualTo(powerOn);
        assertThat(r.romSize()).isEqualTo(64 << 10);
        assertThat(r.barTypes()).containsExactly(0x0, 0x1, 0xC, 0x0, 0x4, 0x0);
        assertThat(r.msixControl()).isEqualTo(7);
        assertThat(r.msixTable()).isEqualTo(0x4);
        assertThat(r.msixPba()).isEqualTo(0x2004);
        assertThat(r.msiControl()).isEqualTo(0x0184);
        assertThat(r.pin()).isEqualTo(1);

        assertThat(machineReset(c, Cfg.PM)).isEmpty();
        assertThat(readBytes(c, 0, c.size())).isEqualTo(powerOn);
        assertThat(recorder.take()).isEmpty();
    }

    @Test
    void realizeOfAPlainDeviceFindsNoRomAndNoInterruptPin() {
        DeviceDescription d = Cfg.plain();
        ConfigSpace c = new ConfigSpace(d, recorder);
        Realized r = realize(c, d);
        assertThat(r.image()).hasSize(256);
        assertThat(r.romSize()).as("no ROM").isZero();
        assertThat(r.barTypes()).containsOnly(0);
        assertThat(r.msixControl()).isEqualTo(-1);
        assertThat(r.msiControl()).isEqualTo(-1);
        assertThat(r.pin()).isZero();
        machineReset(c, 0);
        assertThat(read32(c, 0x30)).isZero();
    }

    @Test
    void guestBringUpThenReboot() {
        DeviceDescription d = Cfg.full();
        ConfigSpace c = new ConfigSpace(d, recorder);
        byte[] powerOn = readBytes(c, 0, c.size());
        realize(c, d);
        machineReset(c, Cfg.PM);

        // Firmware / Linux BAR and ROM sizing with decoding off, then assignment.
        for (int reg = 0x10; reg <= 0x24; reg += 4) {
            int saved = read32(c, reg);
            write32(c, reg, 0xFFFF_FFFF);
            read32(c, reg);
            write32(c, reg, saved);
        }
        write32(c, 0x30, 0xFFFF_FFFE);
        assertThat(read32(c, 0x30)).isEqualTo(0xFFFF_0000);
        write32(c, 0x30, 0);
        write32(c, 0x10, 0xFE00_0000);
        write32(c, 0x14, 0xC000);
        write32(c, 0x18, 0xFD00_000C);
        write32(c, 0x1C, 0);
        write32(c, 0x20, 0xFC00_0004);
        write32(c, 0x24, 0x1);
        c.write(0x3C, ByteBuffer.wrap(new byte[] {0x0B}));
        write16(c, 0x04, read16(c, 0x04) | 0x7);
        assertThat(recorder.take()).containsExactly("command 0->7");

        // Linux PCIe setup: MPS/MRRS, ASPM, LTR, clearing DevSta.
        write16(c, Cfg.EXP + 8, read16(c, Cfg.EXP + 8) & ~0x70E0 | 0x5000);
        write16(c, Cfg.EXP + 16, read16(c, Cfg.EXP + 16) | 0x43);
        write16(c, Cfg.EXP + 40, read16(c, Cfg.EXP + 40) | 0x400);
        write16(c, Cfg.EXP + 10, read16(c, Cfg.EXP + 10));

        // MSI-X enable with the function masked, then unmasked; INTx disabled meanwhile.
        write16(c, 0x04, read16(c, 0x04) | 0x400);
        write16(c, Cfg.MSIX + 2, read16(c, Cfg.MSIX + 2) | 0xC000);
        write16(c, Cfg.MSIX + 2, read16(c, Cfg.MSIX + 2) & ~0x4000);
        assertThat(c.msixEnabled()).isTrue();
        assertThat(c.msixFunctionMasked()).isFalse();

        // A driver falling back to MSI.
        write16(c, Cfg.MSIX + 2, read16(c, Cfg.MSIX + 2) & ~0x8000);
        write32(c, Cfg.MSI + 4, 0xFEE0_0000);
        write32(c, Cfg.MSI + 8, 0);
        write16(c, Cfg.MSI + 12, 0x4021);
        write32(c, Cfg.MSI + 16, 0);
        write16(c, Cfg.MSI + 2, read16(c, Cfg.MSI + 2) & ~0x70 | 0x20);
        write16(c, Cfg.MSI + 2, read16(c, Cfg.MSI + 2) | 0x1);
        assertThat(c.msiEnabledVectors()).isEqualTo(4);

        // Suspend to D3hot and back; the device is left in D3hot for the reboot.
        write16(c, Cfg.PM + 4, read16(c, Cfg.PM + 4) & ~3 | 3);
        write16(c, Cfg.PM + 4, read16(c, Cfg.PM + 4) & ~3);
        write16(c, Cfg.PM + 4, read16(c, Cfg.PM + 4) | 3);
        assertThat(recorder.take()).containsExactly("command 7->407", "msix true true", "msix true false",
                "msix false false", "msi true 4");

        // Reboot: 5.7 with the PM transition to D0 first.
        assertThat(machineReset(c, Cfg.PM)).containsExactly(0x0008);
        assertThat(readBytes(c, 0, c.size())).isEqualTo(powerOn);
        assertThat(c.command()).isZero();
        assertThat(c.msiEnabled()).isFalse();
        assertThat(c.powerState()).isZero();
        assertThat(recorder.take()).as("only the command write of step 2 is heard").containsExactly("command 407->0");
    }

    @Test
    void oneMebibyteRomIsSizedAsQemuDoesIt() {
        DeviceDescription d = DeviceDescription.builder("rom", Cfg.IDENTITY)
                .region(Region.bar(Region.ROM, 1 << 20).readOnly().build()).build();
        ConfigSpace c = new ConfigSpace(d, recorder);
        assertThat(realize(c, d).romSize()).isEqualTo(1 << 20);
        assertThat(read32(c, 0x30)).isZero();
    }
}
