package io.vfiouser.server.device;

import io.vfiouser.device.MmapArea;
import io.vfiouser.device.Region;
import io.vfiouser.device.RegionBacking;
import io.vfiouser.transport.FdSet;
import io.vfiouser.transport.linux.ErrnoException;
import io.vfiouser.transport.linux.Linux;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;

/**
 * The shared memory of a memory-backed or hybrid region: one file (the server's memfd, or the file the device
 * supplied), mapped into the server, and handed to the client (a duplicate) with DEVICE_GET_REGION_INFO. Every area
 * of a region lives in that one file, at {@link #fileOffset()} plus its offset in the region, because QEMU takes
 * exactly one fd per region reply (see {@code docs/device-authoring.md}, "Several areas").
 *
 * <p>A memory-backed region is mapped whole; a hybrid region area by area (the server touches no byte outside
 * its areas). The server's memfd is sealed against shrinking and growing, so no client can make the server's
 * accesses fault; a device's file is checked ({@link #adopt}). Lives as long as the hosted device, across clients;
 * {@link #close} unmaps (later accesses fail with {@link IllegalStateException}) and closes the fd, once.
 */
public final class RegionMemory implements AutoCloseable {
    private static final int S_IFREG = 0100000;

    private final Region region;
    private final int fd;
    private final long fileOffset;
    private final boolean shrinkSealed;
    private final Arena arena;
    /** The whole region (memory-backed), else null. */
    private final MemorySegment whole;
    /** Per area, in the order of {@link Region#mmapAreas()}. */
    private final MemorySegment[] areas;
    private final long[] areaStart;
    private final long[] areaEnd;

    private RegionMemory(Region region, int fd, long fileOffset, boolean shrinkSealed) throws ErrnoException {
        this.region = region;
        this.fd = fd;
        this.fileOffset = fileOffset;
        this.shrinkSealed = shrinkSealed;
        List<MmapArea> list = region.mmapAreas();
        this.areas = new MemorySegment[list.size()];
        this.areaStart = new long[list.size()];
        this.areaEnd = new long[list.size()];
        this.arena = Arena.ofShared();
        int prot = Linux.PROT_READ | Linux.PROT_WRITE;
        try {
            this.whole = region.memoryBacked() ? Linux.mmap(fd, fileOffset, region.size(), prot, arena) : null;
            for (int i = 0; i < areas.length; i++) {
                MmapArea a = list.get(i);
                areaStart[i] = a.offset();
                areaEnd[i] = a.offset() + a.size();
                areas[i] = whole != null ? whole.asSlice(a.offset(), a.size())
                        : Linux.mmap(fd, fileOffset + a.offset(), a.size(), prot, arena);
            }
        } catch (ErrnoException | RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    /** A memfd of the server's, sealed against shrinking and growing, sized for the region's shared span. */
    public static RegionMemory create(String deviceName, Region region) throws ErrnoException {
        int memfd = Linux.memfdCreate("vfio-user-" + deviceName + "-region" + region.index());
        try {
            Linux.ftruncate(memfd, region.sharedSpan());
            // The client gets this fd to mmap: sealed, it cannot shrink the file under the server's own mapping.
            Linux.addSeals(memfd, Linux.F_SEAL_SHRINK | Linux.F_SEAL_GROW | Linux.F_SEAL_SEAL);
            return new RegionMemory(region, memfd, 0, true);
        } catch (ErrnoException | RuntimeException e) {
            FdSet.closeQuietly(memfd);
            throw e;
        }
    }

    /**
     * Takes the file a device supplied: checks it and maps it, or closes it and throws. Either way the fd is no
     * longer the caller's.
     *
     * @throws IllegalArgumentException the fd is refused: not a regular file, too short, or without a required seal
     */
    public static RegionMemory adopt(String deviceName, Region region, RegionBacking backing) throws ErrnoException {
        int fd = backing.fd();
        try {
            String what = deviceName + " region " + region.index() + ": the device's backing fd ";
            var stat = Linux.fstat(fd);
            if (stat.type() != S_IFREG) {
                throw new IllegalArgumentException(what + "is not a regular file (type 0" + Integer.toOctalString(
                        stat.type()) + ")");
            }
            long needed = backing.offset() + region.sharedSpan();
            if (stat.size() < needed) {
                throw new IllegalArgumentException(what + "has " + stat.size() + " bytes, the region needs "
                        + needed + " (offset " + backing.offset() + " + " + region.sharedSpan() + ")");
            }
            int seals = seals(fd);
            for (RegionBacking.Seal s : backing.requiredSeals()) {
                if ((seals & bit(s)) == 0) {
                    throw new IllegalArgumentException(what + "lacks the required seal F_SEAL_" + s);
                }
            }
            return new RegionMemory(region, fd, backing.offset(), (seals & Linux.F_SEAL_SHRINK) != 0);
        } catch (ErrnoException | RuntimeException e) {
            FdSet.closeQuietly(fd);
            throw e;
        }
    }

    /** The file's seals; none for a file that cannot be sealed (F_GET_SEALS fails with EINVAL). */
    private static int seals(int fd) {
        try {
            return Linux.getSeals(fd);
        } catch (ErrnoException e) {
            return 0;
        }
    }

    private static int bit(RegionBacking.Seal seal) {
        return switch (seal) {
            case SHRINK -> Linux.F_SEAL_SHRINK;
            case GROW -> Linux.F_SEAL_GROW;
            case SEAL -> Linux.F_SEAL_SEAL;
        };
    }

    public Region region() {
        return region;
    }

    /** The whole region of a memory-backed region. */
    public MemorySegment segment() {
        if (whole == null) {
            throw new IllegalStateException("region " + region.index() + " is hybrid: only its areas are mapped");
        }
        return whole;
    }

    /** The memory of area {@code i} (its index in {@link Region#mmapAreas()}). */
    public MemorySegment area(int i) {
        return areas[i];
    }

    /** The number of mmappable areas. */
    public int areaCount() {
        return areas.length;
    }

    /**
     * The area that holds all of {@code [offset, offset + count)}, -1 when the access touches no area, and
     * {@code -2} when it lies partly inside an area (straddles a boundary). No allocation: the hot path asks.
     */
    public int areaOf(long offset, int count) {
        long end = offset + count;
        for (int i = 0; i < areaStart.length; i++) {
            if (offset >= areaStart[i] && end <= areaEnd[i]) {
                return i;
            }
            if (offset < areaEnd[i] && areaStart[i] < end) {
                return -2;
            }
        }
        return -1;
    }

    /** The offset of the area's first byte in its region. */
    public long areaOffset(int i) {
        return areaStart[i];
    }

    /** Where region offset 0 lies in the file: the {@code offset} of the DEVICE_GET_REGION_INFO reply. */
    public long fileOffset() {
        return fileOffset;
    }

    /**
     * Whether the file cannot shrink (sealed), so accesses need no fault guard. The server's memfd always is; a
     * device's file may not be ({@link RegionBacking#unsealed}).
     */
    public boolean shrinkSealed() {
        return shrinkSealed;
    }

    /** A duplicate of the fd for a reply; the reply owns it. */
    public int dupFd() throws ErrnoException {
        return Linux.dup(fd);
    }

    @Override
    public void close() {
        arena.close();
        FdSet.closeQuietly(fd);
    }
}
