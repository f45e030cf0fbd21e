package io.vfiouser.server.pci;

import static io.vfiouser.server.pci.Cfg.assertRefused;
import static io.vfiouser.server.pci.Cfg.read16;
import static io.vfiouser.server.pci.Cfg.read32;
import static io.vfiouser.server.pci.Cfg.read8;
import static io.vfiouser.server.pci.Cfg.readBytes;
import static io.vfiouser.server.pci.Cfg.write16;
import static io.vfiouser.server.pci.Cfg.write32;
import static io.vfiouser.server.pci.Cfg.write8;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vfiouser.codec.VfioUserProtocolException;
import io.vfiouser.transport.linux.Errno;
import java.nio.ByteBuffer;
import org.assertj.core.api.ThrowableAssert.ThrowingCallable;
import org.junit.jupiter.api.Test;

/** Command, Status and the other registers of the type 0 header; range checks. */
class HeaderWriteRulesTest {
    private final Cfg.Recorder recorder = new Cfg.Recorder();
    private final ConfigSpace full = new ConfigSpace(Cfg.full(), recorder);

    @Test
    void commandStoresKnownBitsAndIgnoresOthers() {
        write16(full, 0x04, 0xFFFF);
        assertThat(read16(full, 0x04)).isEqualTo(0x0577);
        assertThat(full.command()).isEqualTo(0x0577);
        assertThat(full.busMasterEnabled()).isTrue();
        assertThat(full.intxDisabled()).isTrue();
        assertThat(recorder.take()).containsExactly("command 0->577");

        write16(full, 0x04, 0x0006);
        assertThat(full.command()).isEqualTo(0x0006);
        assertThat(full.intxDisabled()).isFalse();
        assertThat(recorder.take()).containsExactly("command 577->6");

        write16(full, 0x04, 0x0006 | 0x0008 | 0x0200);
        assertThat(full.command()).as("SPECIAL and FAST_BACK ignored").isEqualTo(0x0006);
        assertThat(recorder.take()).as("no change, no call").isEmpty();

        write8(full, 0x05, 0x04);
        assertThat(full.command()).as("byte write of the upper half").isEqualTo(0x0406);
        assertThat(recorder.take()).containsExactly("command 6->406");

        write16(full, 0x04, 0);
        assertThat(full.busMasterEnabled()).isFalse();
        assertThat(recorder.take()).containsExactly("command 406->0");
    }

    @Test
    void statusErrorBitsAreRw1c() {
        full.signalStatusErrors(PciRegisters.STATUS_RECEIVED_MASTER_ABORT | PciRegisters.STATUS_DETECTED_PARITY_ERROR
                | PciRegisters.STATUS_MASTER_PARITY_ERROR);
        assertThat(full.status()).isEqualTo(0xA110);
        assertThat(read16(full, 0x06)).isEqualTo(0xA110);

        write16(full, 0x06, 0x2000);
        assertThat(read16(full, 0x06)).isEqualTo(0x8110);
        write16(full, 0x06, 0);
        assertThat(read16(full, 0x06)).as("writing 0 clears nothing").isEqualTo(0x8110);
        write8(full, 0x07, 0x80);
        assertThat(read16(full, 0x06)).as("byte write clears only its own bits").isEqualTo(0x0110);
        write16(full, 0x06, 0xFFFF);
        assertThat(read16(full, 0x06)).as("capabilities bit is read-only").isEqualTo(0x0010);

        full.signalStatusErrors(PciRegisters.STATUS_ERRORS);
        assertThat(full.status()).isEqualTo(0xF910);
        write32(full, 0x04, 0xFFFF_0006);
        assertThat(read32(full, 0x04)).as("command and status in one dword").isEqualTo(0x0010_0006);
        assertThatThrownBy(() -> full.signalStatusErrors(PciRegisters.STATUS_CAPABILITIES))
                .isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void readOnlyRegistersIgnoreWrites() {
        byte[] before = readBytes(full, 0, 0x40);
        for (int offset : new int[] {0x00, 0x08, 0x28, 0x2C, 0x34, 0x38}) {
            write32(full, offset, 0xFFFF_FFFF);
        }
        write8(full, 0x0E, 0x80);
        write8(full, 0x0F, 0x40);
        write8(full, 0x3D, 0x04);
        write16(full, 0x3E, 0xFFFF);
        write16(full, 0x0A, 0xFFFF);
        write16(full, 0x02, 0xFFFF);
        assertThat(readBytes(full, 0, 0x40)).isEqualTo(before);
        assertThat(recorder.take()).isEmpty();
    }

    @Test
    void storedRegisters() {
        write8(full, 0x0C, 0x10);
        write8(full, 0x0D, 0x40);
        write8(full, 0x3C, 0x0B);
        assertThat(read8(full, 0x0C)).isEqualTo(0x10);
        assertThat(read8(full, 0x0D)).isEqualTo(0x40);
        assertThat(read8(full, 0x3C)).isEqualTo(0x0B);
        write32(full, 0x3C, 0xFFFF_FFFF);
        assertThat(read32(full, 0x3C)).as("line stored, pin and the rest read-only").isEqualTo(0x0000_01FF);
        write32(full, 0x0C, 0xFFFF_FFFF);
        assertThat(read32(full, 0x0C)).isEqualTo(0x0000_FFFF);
    }

    @Test
    void writeStartingMidRegisterMustEndInIt() {
        assertRefused(full, Errno.EINVAL, 0x05, 2, 0xFFFF);
        assertRefused(full, Errno.EINVAL, 0x0A, 4, 0xFFFF_FFFF);
        assertRefused(full, Errno.EINVAL, 0x11, 4, 0xFFFF_FFFF);
        assertRefused(full, Errno.EINVAL, 0x2D, 2, 0xFFFF);
        assertRefused(full, Errno.EINVAL, 0x3A, 4, 0xFFFF_FFFF);
        write16(full, 0x0A, 0);
        write8(full, 0x32, 0);
        write16(full, 0x36, 0xFFFF);
        write32(full, 0x34, 0xFFFF_FFFF);
        assertThat(read32(full, 0x34)).isEqualTo(0x40);
    }

    @Test
    void writeAcrossTheHeaderEnd() {
        write32(full, 0x3C, 0x0000_0005);
        assertRefused(full, Errno.EPERM, 0x3E, 4, 0xFFFF_FFFF);
        assertThat(read8(full, 0x3C)).isEqualTo(5);
        ByteBuffer b = ByteBuffer.allocate(10);
        b.put(0, (byte) 0x0A);
        b.put(8, (byte) 0x03);
        full.write(0x3C, b);
        assertThat(read8(full, 0x3C)).as("header piece written").isEqualTo(0x0A);
        assertThat(read16(full, 0x40)).as("PM header ignored").isEqualTo(0x4801);
        assertThat(full.powerState()).as("PMCSR written").isEqualTo(3);
    }

    @Test
    void outOfRangeAccessesAreEinval() {
        ConfigSpace plain = new ConfigSpace(Cfg.plain(), null);
        assertEinval(() -> plain.read(256, ByteBuffer.allocate(1)));
        assertEinval(() -> plain.read(255, ByteBuffer.allocate(2)));
        assertEinval(() -> plain.read(-1, ByteBuffer.allocate(1)));
        assertEinval(() -> plain.read(0, ByteBuffer.allocate(257)));
        assertEinval(() -> plain.write(256, ByteBuffer.allocate(4)));
        assertEinval(() -> plain.write(-4, ByteBuffer.allocate(4)));
        assertEinval(() -> full.read(4095, ByteBuffer.allocate(2)));
        assertEinval(() -> full.read(Integer.MAX_VALUE, ByteBuffer.allocate(4)));
        assertEinval(() -> full.write(4096, ByteBuffer.allocate(1)));
        assertEinval(() -> full.write(4093, ByteBuffer.allocate(4)));
        plain.read(256, ByteBuffer.allocate(0));
        plain.write(256, ByteBuffer.allocate(0));
        full.read(4092, ByteBuffer.allocate(4));
        full.write(4092, ByteBuffer.allocate(4));
    }

    @Test
    void unusedSpaceIgnoresWrites() {
        ConfigSpace plain = new ConfigSpace(Cfg.plain(), null);
        plain.write(0x40, ByteBuffer.wrap(new byte[0xC0]).put(0, (byte) 1).put(0xBF, (byte) 1));
        assertThat(readBytes(plain, 0x40, 0xC0)).containsOnly(0);
        write32(full, 0xB0, -1);
        write32(full, 0xFC, -1);
        write32(full, 0x200, -1);
        write32(full, 0xFFC, -1);
        assertThat(read32(full, 0xB0) | read32(full, 0xFC) | read32(full, 0x200) | read32(full, 0xFFC)).isZero();
    }

    private static void assertEinval(ThrowingCallable call) {
        assertThatThrownBy(call).isInstanceOfSatisfying(VfioUserProtocolException.class,
                e -> assertThat(e.errno()).isEqualTo(Errno.EINVAL));
    }
}
