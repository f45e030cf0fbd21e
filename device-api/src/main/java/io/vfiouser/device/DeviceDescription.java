package io.vfiouser.device;

import io.vfiouser.device.pci.Capability;
import io.vfiouser.device.pci.ExtendedCapability;
import io.vfiouser.device.pci.MsiCapability;
import io.vfiouser.device.pci.MsixCapability;
import io.vfiouser.device.pci.PciExpressCapability;
import io.vfiouser.device.pci.PciIdentity;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * The static description of a device: everything a client learns before any behaviour runs. Immutable, built
 * once, shared by every connection to the device. The behaviour lives in a {@link VfioUserDevice}.
 *
 * <pre>{@code
 * DeviceDescription d = DeviceDescription.builder("null", PciIdentity.of(0x4a56, 0x0001, 0xff0000))
 *         .region(Region.bar(0, 4096).build())
 *         .region(Region.bar(2, 1 << 20).bits64().mmappable(new MmapArea(512 << 10, 512 << 10)).build())
 *         .capability(new MsixCapability(4, 4, 0, 4, 2048))
 *         .capability(PciExpressCapability.ENDPOINT)
 *         .build();
 * }</pre>
 */
public final class DeviceDescription {
    private final String name;
    private final PciIdentity identity;
    private final List<Capability> capabilities;
    private final List<ExtendedCapability> extendedCapabilities;
    private final Region[] regions;
    private final boolean intx;
    private final boolean errorIrq;
    private final boolean requestIrq;
    private final boolean resetSupported;
    private final List<IoEventFd> ioEventFds;
    private final MigrationSupport migration;

    private DeviceDescription(Builder b) {
        this.name = b.name;
        this.identity = b.identity;
        this.capabilities = List.copyOf(b.capabilities);
        this.extendedCapabilities = List.copyOf(b.extendedCapabilities);
        this.regions = b.regions.clone();
        this.intx = b.intx;
        this.errorIrq = b.errorIrq;
        this.requestIrq = b.requestIrq;
        this.resetSupported = b.resetSupported;
        this.ioEventFds = List.copyOf(b.ioEventFds);
        this.migration = b.migration;
        validate();
    }

    public static Builder builder(String name, PciIdentity identity) {
        return new Builder(name, identity);
    }

    private void validate() {
        for (int i = 0; i <= Region.BAR5; i++) {
            Region r = regions[i];
            if (r != null && r.bits64() && regions[i + 1] != null) {
                throw new IllegalArgumentException("BAR" + i + " is 64-bit, so BAR" + (i + 1) + " must be unused");
            }
        }
        if (!extendedCapabilities.isEmpty() && !isExpress()) {
            throw new IllegalArgumentException("extended capabilities need a PCI Express capability");
        }
        long msix = capabilities.stream().filter(c -> c instanceof MsixCapability).count();
        long msi = capabilities.stream().filter(c -> c instanceof MsiCapability).count();
        long pcie = capabilities.stream().filter(c -> c instanceof PciExpressCapability).count();
        if (msix > 1 || msi > 1 || pcie > 1) {
            throw new IllegalArgumentException("at most one MSI, one MSI-X and one PCI Express capability");
        }
        msixCapability().ifPresent(m -> {
            checkInBar(m.tableBar(), m.tableOffset(), m.tableSize(), "MSI-X table");
            checkInBar(m.pbaBar(), m.pbaOffset(), m.pbaSize(), "MSI-X PBA");
        });
        int used = 0x40;
        for (Capability c : capabilities) {
            used += (c.size() + 3) & ~3;
        }
        if (used > 0x100) {
            throw new IllegalArgumentException("capabilities do not fit in the 192 bytes after the header");
        }
        int usedExt = 0;
        for (ExtendedCapability c : extendedCapabilities) {
            usedExt += (c.size() + 3) & ~3;
        }
        if (usedExt > 4096 - 0x100) {
            throw new IllegalArgumentException("extended capabilities do not fit");
        }
        for (IoEventFd e : ioEventFds) {
            Region r = region(e.region()).orElseThrow(
                    () -> new IllegalArgumentException("ioeventfd in missing region " + e.region()));
            if (e.offset() < 0 || e.offset() + Math.max(1, e.size()) > r.size()) {
                throw new IllegalArgumentException("ioeventfd outside region " + e.region());
            }
        }
    }

    private void checkInBar(int bar, long offset, long size, String what) {
        Region r = regions[bar];
        if (r == null || r.io() || offset + size > r.size()) {
            throw new IllegalArgumentException(what + " does not fit in memory BAR" + bar);
        }
        for (MmapArea a : r.mmapAreas()) {
            if (offset < a.offset() + a.size() && a.offset() < offset + size) {
                throw new IllegalArgumentException(what + " overlaps an mmappable area of BAR" + bar);
            }
        }
    }

    public String name() {
        return name;
    }

    public PciIdentity identity() {
        return identity;
    }

    /** Standard capabilities in the order they are laid out from 0x40. */
    public List<Capability> capabilities() {
        return capabilities;
    }

    /** Extended capabilities in the order they are laid out from 0x100. */
    public List<ExtendedCapability> extendedCapabilities() {
        return extendedCapabilities;
    }

    /** The region at {@code index} (0..6, 8), if the device has one. */
    public Optional<Region> region(int index) {
        if (index < 0 || index >= Region.COUNT || index == Region.CONFIG) {
            return Optional.empty();
        }
        return Optional.ofNullable(regions[index]);
    }

    /** All regions the device has, by increasing index. */
    public List<Region> regions() {
        List<Region> out = new ArrayList<>();
        for (Region r : regions) {
            if (r != null) {
                out.add(r);
            }
        }
        return out;
    }

    /** Whether the device has a PCI Express capability, and so a 4096-byte configuration space. */
    public boolean isExpress() {
        return capabilities.stream().anyMatch(c -> c instanceof PciExpressCapability);
    }

    /** The size of the configuration space: 4096 for PCI Express, else 256. */
    public int configSpaceSize() {
        return isExpress() ? 4096 : 256;
    }

    public Optional<MsixCapability> msixCapability() {
        return capabilities.stream().filter(c -> c instanceof MsixCapability).map(c -> (MsixCapability) c)
                .findFirst();
    }

    public Optional<MsiCapability> msiCapability() {
        return capabilities.stream().filter(c -> c instanceof MsiCapability).map(c -> (MsiCapability) c)
                .findFirst();
    }

    public Optional<PciExpressCapability> expressCapability() {
        return capabilities.stream().filter(c -> c instanceof PciExpressCapability)
                .map(c -> (PciExpressCapability) c).findFirst();
    }

    /** The number of vectors of an interrupt type (0 = not supported). */
    public int irqCount(IrqType type) {
        return switch (type) {
            case INTX -> intx ? 1 : 0;
            case MSI -> msiCapability().map(MsiCapability::vectors).orElse(0);
            case MSIX -> msixCapability().map(MsixCapability::vectors).orElse(0);
            case ERR -> errorIrq ? 1 : 0;
            case REQ -> requestIrq ? 1 : 0;
        };
    }

    /** Whether the device accepts DEVICE_RESET (reported in DEVICE_GET_INFO). */
    public boolean resetSupported() {
        return resetSupported;
    }

    public List<IoEventFd> ioEventFds() {
        return ioEventFds;
    }

    /** Whether and how the device can be live-migrated (empty: it cannot, DEVICE_FEATURE offers nothing). */
    public Optional<MigrationSupport> migration() {
        return Optional.ofNullable(migration);
    }

    @Override
    public String toString() {
        return name + " " + identity;
    }

    public static final class Builder {
        private final String name;
        private final PciIdentity identity;
        private final List<Capability> capabilities = new ArrayList<>();
        private final List<ExtendedCapability> extendedCapabilities = new ArrayList<>();
        private final Region[] regions = new Region[Region.COUNT];
        private final List<IoEventFd> ioEventFds = new ArrayList<>();
        private boolean intx;
        private boolean errorIrq = true;
        private boolean requestIrq = true;
        private boolean resetSupported = true;
        private MigrationSupport migration;

        private Builder(String name, PciIdentity identity) {
            this.name = Objects.requireNonNull(name, "name");
            this.identity = Objects.requireNonNull(identity, "identity");
            if (!name.matches("[A-Za-z0-9._-]{1,64}")) {
                throw new IllegalArgumentException("device name must be 1..64 of [A-Za-z0-9._-]: " + name);
            }
        }

        public Builder region(Region region) {
            if (regions[region.index()] != null) {
                throw new IllegalArgumentException("region " + region.index() + " given twice");
            }
            regions[region.index()] = region;
            return this;
        }

        public Builder capability(Capability capability) {
            capabilities.add(Objects.requireNonNull(capability));
            return this;
        }

        public Builder extendedCapability(ExtendedCapability capability) {
            extendedCapabilities.add(Objects.requireNonNull(capability));
            return this;
        }

        /** The device raises legacy INTx (pin INTA). */
        public Builder intx() {
            intx = true;
            return this;
        }

        /** Whether the ERR (AER) and REQ interrupt indexes have their one vector (default: both do). */
        public Builder errorAndRequestIrqs(boolean err, boolean req) {
            errorIrq = err;
            requestIrq = req;
            return this;
        }

        /** Whether DEVICE_RESET is accepted (default: yes). */
        public Builder resetSupported(boolean supported) {
            resetSupported = supported;
            return this;
        }

        public Builder ioEventFd(IoEventFd ioEventFd) {
            ioEventFds.add(Objects.requireNonNull(ioEventFd));
            return this;
        }

        /**
         * The device can be live-migrated: the MIGRATION device feature, the migration state machine, migration
         * data and dirty-page logging are offered (see {@link MigrationSupport}, {@link VfioUserMigration}).
         */
        public Builder migration(MigrationSupport support) {
            migration = Objects.requireNonNull(support, "support");
            return this;
        }

        public DeviceDescription build() {
            return new DeviceDescription(this);
        }
    }
}
