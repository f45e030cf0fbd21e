package io.vfiouser.server.irq;

import io.netty.buffer.Unpooled;
import io.vfiouser.codec.payload.SetIrqs;
import io.vfiouser.device.DeviceDescription;
import io.vfiouser.device.IrqType;
import io.vfiouser.device.Region;
import io.vfiouser.device.pci.MsiCapability;
import io.vfiouser.device.pci.MsixCapability;
import io.vfiouser.device.pci.PciIdentity;

/** Device descriptions and SET_IRQS requests for the tests. */
final class Devices {
    static final int TABLE_BAR = 4;
    static final long TABLE_OFFSET = 0x2000;
    static final int PBA_BAR = 4;
    static final long PBA_OFFSET = 0x3000;
    static final int MSIX_VECTORS = 20;
    static final int MSI_VECTORS = 4;

    static final int TRIGGER_EVENTFD = SetIrqs.ACTION_TRIGGER | SetIrqs.DATA_EVENTFD;
    static final int TRIGGER_NONE = SetIrqs.ACTION_TRIGGER | SetIrqs.DATA_NONE;
    static final int TRIGGER_BOOL = SetIrqs.ACTION_TRIGGER | SetIrqs.DATA_BOOL;
    static final int MASK_NONE = SetIrqs.ACTION_MASK | SetIrqs.DATA_NONE;
    static final int UNMASK_NONE = SetIrqs.ACTION_UNMASK | SetIrqs.DATA_NONE;
    static final int MASK_BOOL = SetIrqs.ACTION_MASK | SetIrqs.DATA_BOOL;
    static final int UNMASK_BOOL = SetIrqs.ACTION_UNMASK | SetIrqs.DATA_BOOL;
    static final int MASK_EVENTFD = SetIrqs.ACTION_MASK | SetIrqs.DATA_EVENTFD;
    static final int UNMASK_EVENTFD = SetIrqs.ACTION_UNMASK | SetIrqs.DATA_EVENTFD;

    private Devices() {
    }

    /** INTx, 4 MSI vectors, 20 MSI-X vectors (table and PBA in BAR4), ERR and REQ. */
    static DeviceDescription full() {
        return withMsix(MSIX_VECTORS);
    }

    static DeviceDescription withMsix(int vectors) {
        return DeviceDescription.builder("irq-test", PciIdentity.of(0x4a56, 0x0001, 0xff0000))
                .region(Region.bar(0, 0x1000).build())
                .region(Region.bar(TABLE_BAR, 0x8000).build())
                .intx()
                .capability(new MsiCapability(MSI_VECTORS))
                .capability(new MsixCapability(vectors, TABLE_BAR, TABLE_OFFSET, PBA_BAR, PBA_OFFSET))
                .build();
    }

    /** No INTx, MSI or MSI-X; ERR and REQ as given. */
    static DeviceDescription bare(boolean err, boolean req) {
        return DeviceDescription.builder("irq-bare", PciIdentity.of(0x4a56, 0x0002, 0xff0000))
                .region(Region.bar(0, 0x1000).build())
                .errorAndRequestIrqs(err, req)
                .build();
    }

    static SetIrqs req(int flags, IrqType type, int start, int count) {
        return SetIrqs.of(flags, type.index(), start, count);
    }

    /** A DATA_BOOL request; the caller releases {@code data()}. */
    static SetIrqs bools(int flags, IrqType type, int start, int... values) {
        byte[] b = new byte[values.length];
        for (int i = 0; i < values.length; i++) {
            b[i] = (byte) values[i];
        }
        return SetIrqs.withBools(flags, type.index(), start, Unpooled.wrappedBuffer(b));
    }
}
