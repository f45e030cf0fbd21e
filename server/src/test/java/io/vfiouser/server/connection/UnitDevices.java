package io.vfiouser.server.connection;

import io.vfiouser.device.DeviceDescription;
import io.vfiouser.device.IoEventFd;
import io.vfiouser.device.MigrationSupport;
import io.vfiouser.device.MmapArea;
import io.vfiouser.device.pci.MsiCapability;
import io.vfiouser.device.pci.MsixCapability;
import io.vfiouser.device.pci.PciIdentity;
import io.vfiouser.device.Region;
import io.vfiouser.device.pci.PciExpressCapability;
import java.util.OptionalLong;

/** The device descriptions of the connection's unit tests. */
final class UnitDevices {
    /** BAR0: 4 KiB of registers the device serves. */
    static final int BAR0 = 0;
    /** BAR2: 8 KiB of memory-backed (shared) memory the server serves itself. */
    static final int BAR2 = 2;
    /** Region index of the configuration space. */
    static final int CONFIG = Region.CONFIG;
    /** The PCIe capability sits first, right after the 64-byte header: DevCtl at +8. */
    static final int EXPRESS_DEVCTL = 0x48;

    /** Hybrid BAR0's first mmappable area: 4 KiB at 0x1000. */
    static final MmapArea HYBRID_AREA0 = new MmapArea(0x1000, 0x1000);
    /** Hybrid BAR0's second mmappable area: 4 KiB at 0x3000. */
    static final MmapArea HYBRID_AREA1 = new MmapArea(0x3000, 0x1000);

    private UnitDevices() {
    }

    /**
     * BAR0 hybrid, 16 KiB: registers the device serves, except its two mmappable areas ({@link #HYBRID_AREA0},
     * {@link #HYBRID_AREA1}); BAR2 memory-backed as in {@link #basic()}.
     */
    static DeviceDescription hybrid() {
        return hybridWith(Region.bar(BAR0, 0x4000).hybrid(HYBRID_AREA0, HYBRID_AREA1).build(),
                Region.bar(BAR2, 0x2000).memoryBacked().build());
    }

    /** A device with the given regions, PCIe with FLR. */
    static DeviceDescription hybridWith(Region... regions) {
        DeviceDescription.Builder b = DeviceDescription.builder("unit-hybrid",
                PciIdentity.of(0x4a56, 0x0004, 0xff0000));
        for (Region r : regions) {
            b.region(r);
        }
        return b.capability(new PciExpressCapability(PciExpressCapability.DeviceType.ENDPOINT, true)).build();
    }

    /** BAR0 (device registers), BAR2 (memory-backed), INTx, PCIe with FLR, DEVICE_RESET supported. */
    static DeviceDescription basic() {
        return DeviceDescription.builder("unit", PciIdentity.of(0x4a56, 0x0003, 0xff0000))
                .region(Region.bar(BAR0, 0x1000).build())
                .region(Region.bar(BAR2, 0x2000).memoryBacked().build())
                .capability(new PciExpressCapability(PciExpressCapability.DeviceType.ENDPOINT, true))
                .intx()
                .resetSupported(true)
                .build();
    }

    /** {@link #basic()} that declares migration support ({@code support}: PRE_COPY or STOP_COPY only). */
    static DeviceDescription migratable(MigrationSupport support) {
        return DeviceDescription.builder("unit-mig", PciIdentity.of(0x4a56, 0x0004, 0xff0000))
                .region(Region.bar(BAR0, 0x1000).build())
                .region(Region.bar(BAR2, 0x2000).memoryBacked().build())
                .capability(new PciExpressCapability(PciExpressCapability.DeviceType.ENDPOINT, true))
                .intx()
                .resetSupported(true)
                .migration(support)
                .build();
    }

    /** BAR4 of {@link #full()}: the MSI-X table at 0 and its PBA at {@link #MSIX_PBA}. */
    static final int BAR4 = 4;
    /** The MSI-X PBA's offset in {@link #BAR4}. */
    static final int MSIX_PBA = 0x800;
    /** Vectors of MSI and of MSI-X in {@link #full()}. */
    static final int VECTORS = 4;
    /** The doorbells of {@link #full()} in BAR0: any 4-byte write at 0x100, a 2-byte write of 0xabcd at 0x108. */
    static final IoEventFd DOORBELL = new IoEventFd(BAR0, 0x100, 4, OptionalLong.empty());
    static final IoEventFd DOORBELL_MATCH = new IoEventFd(BAR0, 0x108, 2, OptionalLong.of(0xabcd));
    /** The mmappable areas of {@link #full()}'s BAR2 (16 KiB): its first page and its last two. */
    static final MmapArea AREA_LOW = new MmapArea(0, 0x1000);
    static final MmapArea AREA_HIGH = new MmapArea(0x2000, 0x2000);

    /**
     * Everything a region and interrupt query can meet: BAR0 (device registers, two doorbells), BAR2 (16 KiB of
     * shared memory, two mmappable areas), BAR4 (MSI-X table and PBA), INTx, MSI and MSI-X with
     * {@link #VECTORS} vectors each, ERR and REQ, PCIe with FLR, DEVICE_RESET supported.
     */
    static DeviceDescription full() {
        return DeviceDescription.builder("unit-full", PciIdentity.of(0x4a56, 0x0004, 0xff0000))
                .region(Region.bar(BAR0, 0x1000).build())
                .region(Region.bar(BAR2, 0x4000).mmappable(AREA_LOW, AREA_HIGH).build())
                .region(Region.bar(BAR4, 0x1000).build())
                .capability(new MsiCapability(VECTORS))
                .capability(new MsixCapability(VECTORS, BAR4, 0, BAR4, MSIX_PBA))
                .capability(new PciExpressCapability(PciExpressCapability.DeviceType.ENDPOINT, true))
                .intx()
                .ioEventFd(DOORBELL)
                .ioEventFd(DOORBELL_MATCH)
                .build();
    }

    /** {@link #basic()} without DEVICE_RESET, without ERR and REQ. */
    static DeviceDescription withoutReset() {
        return DeviceDescription.builder("unit-noreset", PciIdentity.of(0x4a56, 0x0005, 0xff0000))
                .region(Region.bar(BAR0, 0x1000).build())
                .errorAndRequestIrqs(false, false)
                .resetSupported(false)
                .build();
    }
}
