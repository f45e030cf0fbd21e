package io.vfiouser.server.pci;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vfiouser.codec.VfioUserProtocolException;
import io.vfiouser.device.DeviceDescription;
import io.vfiouser.device.Region;
import io.vfiouser.device.pci.MsiCapability;
import io.vfiouser.device.pci.MsixCapability;
import io.vfiouser.device.pci.PciExpressCapability;
import io.vfiouser.device.pci.PciIdentity;
import io.vfiouser.device.pci.PowerManagementCapability;
import io.vfiouser.device.pci.SerialNumberCapability;
import io.vfiouser.device.pci.VendorCapability;
import io.vfiouser.device.pci.VendorExtendedCapability;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;

/** Shared fixtures and little-endian access helpers for the configuration-space tests. */
final class Cfg {
    static final PciIdentity IDENTITY = new PciIdentity(0x1AF4, 0x1234, 0x1AF5, 0x5678, 0x020000, 0x02);

    // Where the capabilities of full() land (see the layout in ConfigSpace).
    static final int PM = 0x40;
    static final int MSI = 0x48;
    static final int MSIX = 0x60;
    static final int EXP = 0x6C;
    static final int VNDR = 0xA8;
    static final int DSN = 0x100;
    static final int VSEC = 0x10C;

    private Cfg() {
    }

    /**
     * A PCIe endpoint with every capability the framework knows: BAR0 32-bit memory 4 KiB, BAR1 I/O 256 bytes,
     * BAR2/3 64-bit prefetchable 1 MiB, BAR4/5 64-bit 16 KiB holding the MSI-X table and PBA, a 64 KiB ROM, INTx.
     */
    static DeviceDescription.Builder fullBuilder() {
        return DeviceDescription.builder("full", IDENTITY)
                .region(Region.bar(0, 4096).build())
                .region(Region.bar(1, 256).io().build())
                .region(Region.bar(2, 1 << 20).bits64().prefetchable().build())
                .region(Region.bar(4, 16384).bits64().build())
                .region(Region.bar(Region.ROM, 64 << 10).readOnly().build())
                .intx()
                .capability(PowerManagementCapability.DEFAULT)
                .capability(new MsiCapability(4))
                .capability(new MsixCapability(8, 4, 0, 4, 0x2000))
                .capability(PciExpressCapability.ENDPOINT)
                .capability(new VendorCapability(new byte[] {1, 2, 3, 4, 5}))
                .extendedCapability(new SerialNumberCapability(0x0123_4567_89AB_CDEFL))
                .extendedCapability(new VendorExtendedCapability(0xBEEF, 2, new byte[] {9, 8, 7, 6}));
    }

    static DeviceDescription full() {
        return fullBuilder().build();
    }

    /** A conventional device: one memory BAR, no capabilities, no INTx, no ROM. */
    static DeviceDescription plain() {
        return DeviceDescription.builder("plain", IDENTITY).region(Region.bar(0, 4096).build()).build();
    }

    static int read(ConfigSpace c, int offset, int width) {
        ByteBuffer b = ByteBuffer.allocate(width).order(ByteOrder.LITTLE_ENDIAN);
        c.read(offset, b);
        assertThat(b.hasRemaining()).isFalse();
        b.flip();
        return switch (width) {
            case 1 -> b.get() & 0xFF;
            case 2 -> b.getShort() & 0xFFFF;
            case 4 -> b.getInt();
            default -> throw new IllegalArgumentException("width " + width);
        };
    }

    static int read8(ConfigSpace c, int offset) {
        return read(c, offset, 1);
    }

    static int read16(ConfigSpace c, int offset) {
        return read(c, offset, 2);
    }

    static int read32(ConfigSpace c, int offset) {
        return read(c, offset, 4);
    }

    /** Writes and returns whether the write initiated an FLR. */
    static boolean write(ConfigSpace c, int offset, int width, int value) {
        ByteBuffer b = ByteBuffer.allocate(width).order(ByteOrder.LITTLE_ENDIAN);
        switch (width) {
            case 1 -> b.put((byte) value);
            case 2 -> b.putShort((short) value);
            case 4 -> b.putInt(value);
            default -> throw new IllegalArgumentException("width " + width);
        }
        b.flip();
        boolean flr = c.write(offset, b);
        assertThat(b.hasRemaining()).isFalse();
        return flr;
    }

    static boolean write8(ConfigSpace c, int offset, int value) {
        return write(c, offset, 1, value);
    }

    static boolean write16(ConfigSpace c, int offset, int value) {
        return write(c, offset, 2, value);
    }

    static boolean write32(ConfigSpace c, int offset, int value) {
        return write(c, offset, 4, value);
    }

    static void writeBytes(ConfigSpace c, int offset, byte... bytes) {
        c.write(offset, ByteBuffer.wrap(bytes));
    }

    static byte[] readBytes(ConfigSpace c, int offset, int length) {
        byte[] out = new byte[length];
        c.read(offset, ByteBuffer.wrap(out));
        return out;
    }

    /**
     * Asserts that a write of the {@code width} (up to 8) low little-endian bytes of {@code value} fails with
     * {@code errno}, changes nothing and leaves its buffer unconsumed.
     */
    static void assertRefused(ConfigSpace c, int errno, int offset, int width, long value) {
        byte[] before = readBytes(c, 0, c.size());
        ByteBuffer b = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(value).flip();
        b.limit(width);
        assertThatThrownBy(() -> c.write(offset, b))
                .isInstanceOfSatisfying(VfioUserProtocolException.class, e -> assertThat(e.errno()).isEqualTo(errno));
        assertThat(b.position()).as("a refused write is not consumed").isZero();
        assertThat(readBytes(c, 0, c.size())).as("a refused write changes nothing").isEqualTo(before);
    }

    /** Records listener calls as short strings. */
    static final class Recorder implements ConfigSpace.Listener {
        final List<String> events = new ArrayList<>();

        @Override
        public void commandChanged(int oldValue, int newValue) {
            events.add(String.format("command %x->%x", oldValue, newValue));
        }

        @Override
        public void msiControlChanged(boolean enabled, int enabledVectors) {
            events.add("msi " + enabled + " " + enabledVectors);
        }

        @Override
        public void msixControlChanged(boolean enabled, boolean functionMasked) {
            events.add("msix " + enabled + " " + functionMasked);
        }

        @Override
        public void msiMaskChanged(int mask) {
            events.add(String.format("msi-mask %x", mask));
        }

        List<String> take() {
            List<String> out = List.copyOf(events);
            events.clear();
            return out;
        }
    }
}
