package io.vfiouser.device;

import java.util.List;
import java.util.Objects;

/**
 * One region of a PCI device: a BAR (index 0..5), the expansion ROM (6) or VGA (8). The configuration space
 * (index 7) is the framework's and is described by the {@link DeviceDescription} itself.
 *
 * <p>Accesses go to the device's {@link VfioUserDevice#regionRead}/{@link VfioUserDevice#regionWrite}, except where
 * the framework serves them itself: a {@linkplain #memoryBacked() memory-backed} region lives in shared memory the
 * framework creates (a memfd), and its {@linkplain #mmapAreas() mmappable areas} are handed to the client to map;
 * an MSI-X table or PBA placed in the region is emulated by the framework.
 *
 * @param index         region index: 0..5 for BARs, 6 ROM, 8 VGA
 * @param size          size in bytes; BARs: a power of two, at least 16 (memory) or 4 (I/O)
 * @param readable      whether a client may read it
 * @param writable      whether a client may write it
 * @param io            an I/O-space BAR (else memory space)
 * @param bits64        a 64-bit memory BAR (takes the next index too, which must stay unused)
 * @param prefetchable  a prefetchable memory BAR
 * @param memoryBacked  served from framework-owned shared memory instead of the device's handlers
 * @param mmapAreas     parts of a memory-backed region the client may mmap (offsets within the region)
 */
public record Region(int index, long size, boolean readable, boolean writable, boolean io, boolean bits64,
                     boolean prefetchable, boolean memoryBacked, List<MmapArea> mmapAreas) {
    public static final int BAR0 = 0;
    public static final int BAR5 = 5;
    public static final int ROM = 6;
    public static final int CONFIG = 7;
    public static final int VGA = 8;
    /** The number of region indexes a PCI device reports. */
    public static final int COUNT = 9;

    public Region {
        Objects.requireNonNull(mmapAreas, "mmapAreas");
        mmapAreas = List.copyOf(mmapAreas);
        if (index < 0 || index >= COUNT || index == CONFIG) {
            throw new IllegalArgumentException("region index must be 0..6 or 8: " + index);
        }
        if (size <= 0) {
            throw new IllegalArgumentException("region " + index + ": size must be positive");
        }
        if (index <= BAR5 || index == ROM) {
            if (Long.bitCount(size) != 1) {
                throw new IllegalArgumentException("BAR/ROM " + index + ": size must be a power of two: " + size);
            }
            if (size < (io ? 4 : 16)) {
                throw new IllegalArgumentException("BAR " + index + ": too small: " + size);
            }
        }
        if (index == ROM && (size < 2048 || io || bits64 || prefetchable)) {
            throw new IllegalArgumentException("the expansion ROM is a 32-bit memory region of at least 2 KiB");
        }
        if (io && (bits64 || prefetchable || index > BAR5)) {
            throw new IllegalArgumentException("region " + index + ": I/O BARs are 32-bit and not prefetchable");
        }
        if (bits64 && (index > 4)) {
            throw new IllegalArgumentException("a 64-bit BAR takes two indexes: BAR0..BAR4 only");
        }
        if (size > 0xFFFF_FFFFL && !bits64) {
            throw new IllegalArgumentException("region " + index + ": 4 GiB or more needs a 64-bit BAR");
        }
        if (!mmapAreas.isEmpty() && !memoryBacked) {
            throw new IllegalArgumentException("region " + index + ": mmappable areas need a memory-backed region");
        }
        for (MmapArea a : mmapAreas) {
            if (a.offset() + a.size() > size) {
                throw new IllegalArgumentException("region " + index + ": mmap area " + a + " is outside");
            }
        }
    }

    /** A memory BAR of {@code size} bytes, read-write, 32-bit, served by the device. */
    public static Builder bar(int index, long size) {
        return new Builder(index, size);
    }

    /** Whether this region has mmappable areas. */
    public boolean mappable() {
        return !mmapAreas.isEmpty();
    }

    /** Builds a {@link Region}; everything but index and size has the common default. */
    public static final class Builder {
        private final int index;
        private final long size;
        private boolean readable = true;
        private boolean writable = true;
        private boolean io;
        private boolean bits64;
        private boolean prefetchable;
        private boolean memoryBacked;
        private List<MmapArea> mmapAreas = List.of();

        private Builder(int index, long size) {
            this.index = index;
            this.size = size;
        }

        public Builder readOnly() {
            writable = false;
            return this;
        }

        public Builder io() {
            io = true;
            return this;
        }

        public Builder bits64() {
            bits64 = true;
            return this;
        }

        public Builder prefetchable() {
            prefetchable = true;
            return this;
        }

        /** Served from framework-owned shared memory, no mmappable area. */
        public Builder memoryBacked() {
            memoryBacked = true;
            return this;
        }

        /** Served from framework-owned shared memory; {@code areas} may be mmapped by the client. */
        public Builder mmappable(MmapArea... areas) {
            memoryBacked = true;
            mmapAreas = List.of(areas);
            return this;
        }

        public Region build() {
            return new Region(index, size, readable, writable, io, bits64, prefetchable, memoryBacked, mmapAreas);
        }
    }
}
