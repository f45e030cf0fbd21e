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
 * <p>A {@linkplain #hybrid() hybrid} region is served by the device except in its mmappable areas: they live in
 * shared memory the client maps, and the framework serves the client's message accesses inside an area from that
 * memory, so they agree with what the client sees through its mapping. An access that lies partly inside an area
 * and partly outside is refused with EINVAL (a register access is never half served from memory). The device
 * reaches an area's memory with {@link DeviceContext#areaMemory}. SPDK's NVMe doorbell page is such an area.
 *
 * <p>The shared memory is a memfd of the server's, or, with {@link Backing#DEVICE}, a file the device supplies when
 * it is hosted ({@link VfioUserDevice#regionBacking}, {@link RegionBacking}).
 *
 * @param index         region index: 0..5 for BARs, 6 ROM, 8 VGA
 * @param size          size in bytes; BARs: a power of two, at least 16 (memory) or 4 (I/O)
 * @param readable      whether a client may read it
 * @param writable      whether a client may write it
 * @param io            an I/O-space BAR (else memory space)
 * @param bits64        a 64-bit memory BAR (takes the next index too, which must stay unused)
 * @param prefetchable  a prefetchable memory BAR
 * @param memoryBacked  served from framework-owned shared memory instead of the device's handlers
 * @param mmapAreas     parts of the region the client may mmap (offsets within the region); on a region that is not
 *                      memory-backed they make it {@linkplain #hybrid() hybrid}; at most one fd goes with a region's
 *                      DEVICE_GET_REGION_INFO reply, so every area of a region lives in one file
 * @param backing       who supplies the file behind the shared memory, when the region has any
 */
public record Region(int index, long size, boolean readable, boolean writable, boolean io, boolean bits64,
                     boolean prefetchable, boolean memoryBacked, List<MmapArea> mmapAreas, Backing backing) {
    public static final int BAR0 = 0;
    public static final int BAR5 = 5;
    public static final int ROM = 6;
    public static final int CONFIG = 7;
    public static final int VGA = 8;
    /** The number of region indexes a PCI device reports. */
    public static final int COUNT = 9;

    /** Who supplies the file behind a region's shared memory. */
    public enum Backing {
        /** The server creates a sealed memfd for it. */
        SERVER,
        /** The device hands over a file of its own when it is hosted ({@link VfioUserDevice#regionBacking}). */
        DEVICE
    }

    public Region {
        Objects.requireNonNull(mmapAreas, "mmapAreas");
        Objects.requireNonNull(backing, "backing");
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
        if (backing == Backing.DEVICE && !memoryBacked && mmapAreas.isEmpty()) {
            throw new IllegalArgumentException("region " + index
                    + ": a device-supplied backing needs a memory-backed region or mmappable areas");
        }
        if (!mmapAreas.isEmpty() && io) {
            throw new IllegalArgumentException("region " + index + ": an I/O BAR cannot be mmapped");
        }
        long end = 0;
        for (MmapArea a : mmapAreas.stream().sorted(java.util.Comparator.comparingLong(MmapArea::offset)).toList()) {
            if (a.offset() + a.size() > size) {
                throw new IllegalArgumentException("region " + index + ": mmap area " + a + " is outside");
            }
            if (a.offset() < end) {
                throw new IllegalArgumentException("region " + index + ": mmap area " + a + " overlaps another");
            }
            end = a.offset() + a.size();
        }
    }

    /** A region with the server's memfd behind its shared memory, if it has any ({@link Backing#SERVER}). */
    public Region(int index, long size, boolean readable, boolean writable, boolean io, boolean bits64,
                  boolean prefetchable, boolean memoryBacked, List<MmapArea> mmapAreas) {
        this(index, size, readable, writable, io, bits64, prefetchable, memoryBacked, mmapAreas, Backing.SERVER);
    }

    /** Served by the device except in its mmappable areas, which live in shared memory. */
    public boolean hybrid() {
        return !memoryBacked && !mmapAreas.isEmpty();
    }

    /** Whether the region has shared memory: it is memory-backed or hybrid. */
    public boolean hasSharedMemory() {
        return memoryBacked || !mmapAreas.isEmpty();
    }

    /**
     * The bytes of the file the region's shared memory needs from its start: the whole region when it is
     * memory-backed, else up to the end of its last area.
     */
    public long sharedSpan() {
        if (memoryBacked) {
            return size;
        }
        return mmapAreas.stream().mapToLong(a -> a.offset() + a.size()).max().orElse(0);
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
        private Backing backing = Backing.SERVER;

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

        /**
         * Served by the device's handlers except in {@code areas}, which live in shared memory the client may
         * mmap; the framework serves message accesses inside them from that memory (see the class comment).
         */
        public Builder hybrid(MmapArea... areas) {
            if (areas.length == 0) {
                throw new IllegalArgumentException("a hybrid region has at least one mmappable area");
            }
            memoryBacked = false;
            mmapAreas = List.of(areas);
            return this;
        }

        /**
         * The device supplies the file behind the shared memory (a memory-backed region's, or a hybrid region's
         * areas'), with {@link VfioUserDevice#regionBacking} when it is hosted.
         */
        public Builder deviceBacked() {
            backing = Backing.DEVICE;
            return this;
        }

        public Region build() {
            return new Region(index, size, readable, writable, io, bits64, prefetchable, memoryBacked, mmapAreas,
                    backing);
        }
    }
}
