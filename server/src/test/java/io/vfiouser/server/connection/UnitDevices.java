package io.vfiouser.server.connection;

import io.vfiouser.device.DeviceDescription;
import io.vfiouser.device.MigrationSupport;
import io.vfiouser.device.MmapArea;
import io.vfiouser.device.pci.PciIdentity;
import io.vfiouser.device.Region;
import io.vfiouser.device.pci.PciExpressCapability;

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
}
