package io.vfiouser.server.connection;

import io.vfiouser.codec.VfioUserProtocolException;
import io.vfiouser.device.Access;
import io.vfiouser.device.DmaException;
import io.vfiouser.device.Region;
import io.vfiouser.device.VfioUserDevice;
import io.vfiouser.server.device.DeviceRuntime;
import io.vfiouser.server.device.RegionMemory;
import io.vfiouser.server.dma.MemoryFaults;
import io.vfiouser.server.irq.IrqTable;
import io.vfiouser.server.irq.MsixTableEmulation;
import io.vfiouser.transport.linux.Errno;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.concurrent.CompletableFuture;

/**
 * Where a REGION_READ or REGION_WRITE goes, after the checks every access gets (digest 3.9, 3.10, 6.3): the
 * configuration space, the emulated MSI-X table and PBA, a memory-backed region's shared memory, an mmappable
 * area of a hybrid region, or the device.
 *
 * <p>A hybrid region's access inside one of its areas is served from the area's memory, so it agrees with what the
 * client sees through its mapping; one outside every area goes to the device; one that lies partly inside an area
 * is refused with EINVAL rather than split, so a device never sees half of an access (SPDK's client, too, serves
 * an access from an area only when it lies wholly inside). Memory the client may shrink (a device's unsealed file)
 * is copied under {@link MemoryFaults}, a fault answering EIO.
 *
 * <p>Every access passes through here, so the region table is kept in arrays built once from the (immutable)
 * description: the checks look nothing up and allocate nothing.
 */
final class RegionRouter {
    private final DeviceRuntime runtime;
    private final IrqTable irqs;
    private final DeviceResets resets;
    private final MsixTableEmulation msix;
    private final int maxDataTransferSize;
    private final boolean hasMsi;
    /** Per region index: size (0: absent), access flags. The configuration space's size is asked each time. */
    private final long[] sizes = new long[Region.COUNT];
    private final boolean[] readable = new boolean[Region.COUNT];
    private final boolean[] writable = new boolean[Region.COUNT];

    RegionRouter(DeviceRuntime runtime, IrqTable irqs, DeviceResets resets, int maxDataTransferSize) {
        this.runtime = runtime;
        this.irqs = irqs;
        this.resets = resets;
        this.msix = irqs.msix();
        this.maxDataTransferSize = maxDataTransferSize;
        this.hasMsi = runtime.description().msiCapability().isPresent();
        for (Region r : runtime.description().regions()) {
            if (r.index() != Region.CONFIG) {
                sizes[r.index()] = r.size();
                readable[r.index()] = r.readable();
                writable[r.index()] = r.writable();
            }
        }
    }

    /** The size of region {@code index} as reported to the client (0: the device has none). */
    long size(int index) {
        if (index == Region.CONFIG) {
            return runtime.config().size();
        }
        return index >= 0 && index < Region.COUNT ? sizes[index] : 0;
    }

    CompletableFuture<Void> read(int index, long offset, ByteBuffer dst) {
        check(index, offset, dst.remaining(), Access.READ);
        if (index == Region.CONFIG) {
            if (hasMsi) {
                runtime.config().setMsiPending(irqs.msiPending());
            }
            runtime.config().read((int) offset, dst);
            return VfioUserDevice.DONE;
        }
        if (msix.covers(index, offset, dst.remaining())) {
            msix.read(index, offset, dst);
            return VfioUserDevice.DONE;
        }
        RegionMemory memory = runtime.memoryOrNull(index);
        if (memory != null) {
            MemorySegment from = shared(memory, index, offset, dst.remaining());
            if (from != null) {
                copy(memory, from, 0, MemorySegment.ofBuffer(dst), 0, dst.remaining());
                dst.position(dst.limit());
                return VfioUserDevice.DONE;
            }
        }
        return runtime.device().regionRead(index, offset, dst);
    }

    /**
     * A write; one to configuration space that initiates an FLR completes when the reset is over, so the write's
     * reply says the function is back.
     */
    CompletableFuture<Void> write(int index, long offset, ByteBuffer src) {
        check(index, offset, src.remaining(), Access.WRITE);
        if (index == Region.CONFIG) {
            int length = src.remaining();
            boolean flr = runtime.config().write((int) offset, src);
            runtime.device().configWritten((int) offset, length);
            return flr ? resets.functionLevelReset() : VfioUserDevice.DONE;
        }
        if (msix.covers(index, offset, src.remaining())) {
            msix.write(index, offset, src);
            return VfioUserDevice.DONE;
        }
        RegionMemory memory = runtime.memoryOrNull(index);
        if (memory != null) {
            MemorySegment to = shared(memory, index, offset, src.remaining());
            if (to != null) {
                copy(memory, MemorySegment.ofBuffer(src), 0, to, 0, src.remaining());
                src.position(src.limit());
                return VfioUserDevice.DONE;
            }
        }
        return runtime.device().regionWrite(index, offset, src);
    }

    /**
     * The shared memory an access is served from, starting at the access's first byte: the region's for a
     * memory-backed region, the area's for an access inside an area of a hybrid region; null for an access the
     * device serves (outside every area). EINVAL for an access straddling an area's boundary.
     */
    private static MemorySegment shared(RegionMemory memory, int index, long offset, int count) {
        if (memory.region().memoryBacked()) {
            return memory.segment().asSlice(offset, count);
        }
        int area = memory.areaOf(offset, count);
        if (area == -2) {
            throw new VfioUserProtocolException(Errno.EINVAL, "access " + offset + "+" + count + " of region "
                    + index + " lies partly inside an mmappable area");
        }
        return area < 0 ? null : memory.area(area).asSlice(offset - memory.areaOffset(area), count);
    }

    /** A copy to or from shared memory; guarded when the file behind it may shrink under the server. */
    private static void copy(RegionMemory memory, MemorySegment src, long srcOffset, MemorySegment dst,
                             long dstOffset, int count) {
        if (memory.shrinkSealed()) {
            MemorySegment.copy(src, srcOffset, dst, dstOffset, count);
            return;
        }
        try {
            MemoryFaults.copy(src, srcOffset, dst, dstOffset, count, 0);
        } catch (DmaException e) {
            throw new VfioUserProtocolException(Errno.EIO, "region " + memory.region().index()
                    + ": the file behind its shared memory shrank");
        }
    }

    /** A write of at most 8 bytes held in a long (REGION_WRITE_MULTI entries). */
    CompletableFuture<Void> write(int index, long offset, int count, long value) {
        ByteBuffer src = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(0, value);
        src.limit(count);
        return write(index, offset, src);
    }

    /**
     * Whether an access goes straight to the device's {@link VfioUserDevice#regionRead}/{@code regionWrite}:
     * it passes every check, and neither the configuration space, the MSI-X table or PBA, a memory-backed
     * region, nor an mmappable area of a hybrid region serves it or holds part of it. Such accesses can take {@link RegionFastPath}; everything else, including every access
     * that fails a check, takes the general path and gets its errno there.
     */
    boolean goesToDevice(int index, long offset, int count, Access access) {
        if (index < 0 || index >= Region.COUNT || index == Region.CONFIG || count <= 0 || offset < 0) {
            return false;
        }
        long size = sizes[index];
        return count <= maxDataTransferSize && offset <= size - count
                && (access == Access.WRITE ? writable[index] : readable[index])
                && !msix.covers(index, offset, count)
                && outsideSharedMemory(index, offset, count);
    }

    private boolean outsideSharedMemory(int index, long offset, int count) {
        RegionMemory memory = runtime.memoryOrNull(index);
        return memory == null || !memory.region().memoryBacked() && memory.areaOf(offset, count) == -1;
    }

    private void check(int index, long offset, int count, Access access) {
        if (index < 0 || index >= Region.COUNT) {
            throw new VfioUserProtocolException(Errno.EINVAL, "no region " + index);
        }
        long size = size(index);
        if (size == 0) {
            throw new VfioUserProtocolException(Errno.EINVAL, "region " + index + " is not implemented");
        }
        if (count > maxDataTransferSize) {
            throw new VfioUserProtocolException(Errno.EINVAL, "access of " + count + " bytes exceeds "
                    + maxDataTransferSize);
        }
        if (offset < 0 || count < 0 || offset > size - count) {
            throw new VfioUserProtocolException(Errno.EINVAL, "access " + offset + "+" + count
                    + " outside region " + index + " of " + size + " bytes");
        }
        if (index != Region.CONFIG && !(access == Access.WRITE ? writable[index] : readable[index])) {
            throw new VfioUserProtocolException(Errno.EINVAL,
                    (access == Access.WRITE ? "write to read-only" : "read of write-only") + " region " + index);
        }
    }
}
