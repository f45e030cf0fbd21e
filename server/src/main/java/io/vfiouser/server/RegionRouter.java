package io.vfiouser.server;

import io.vfiouser.codec.VfioUserProtocolException;
import io.vfiouser.device.Region;
import io.vfiouser.device.VfioUserDevice;
import io.vfiouser.server.irq.IrqTable;
import io.vfiouser.transport.linux.Errno;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;

/**
 * Where a REGION_READ or REGION_WRITE goes, after the checks every access gets (digest 3.9, 3.10, 6.3): the
 * configuration space, the emulated MSI-X table and PBA, a memory-backed region's shared memory, or the device.
 */
final class RegionRouter {
    private final DeviceRuntime runtime;
    private final IrqTable irqs;
    private final int maxDataTransferSize;
    private final boolean hasMsi;

    RegionRouter(DeviceRuntime runtime, IrqTable irqs, int maxDataTransferSize) {
        this.runtime = runtime;
        this.irqs = irqs;
        this.maxDataTransferSize = maxDataTransferSize;
        this.hasMsi = runtime.description().msiCapability().isPresent();
    }

    /** The size of region {@code index} as reported to the client (0: the device has none). */
    long size(int index) {
        if (index == Region.CONFIG) {
            return runtime.config().size();
        }
        return runtime.description().region(index).map(Region::size).orElse(0L);
    }

    CompletableFuture<Void> read(int index, long offset, ByteBuffer dst) {
        check(index, offset, dst.remaining(), false);
        if (index == Region.CONFIG) {
            if (hasMsi) {
                runtime.config().setMsiPending(irqs.msiPending());
            }
            runtime.config().read((int) offset, dst);
            return VfioUserDevice.DONE;
        }
        if (irqs.msix().covers(index, offset, dst.remaining())) {
            irqs.msix().read(index, offset, dst);
            return VfioUserDevice.DONE;
        }
        Optional<RegionMemory> memory = runtime.memory(index);
        if (memory.isPresent()) {
            MemorySegment.copy(memory.get().segment(), offset, MemorySegment.ofBuffer(dst), 0, dst.remaining());
            dst.position(dst.limit());
            return VfioUserDevice.DONE;
        }
        return runtime.device().regionRead(index, offset, dst);
    }

    CompletableFuture<Void> write(int index, long offset, ByteBuffer src) {
        check(index, offset, src.remaining(), true);
        if (index == Region.CONFIG) {
            int length = src.remaining();
            runtime.config().write((int) offset, src);
            runtime.device().configWritten((int) offset, length);
            return VfioUserDevice.DONE;
        }
        if (irqs.msix().covers(index, offset, src.remaining())) {
            irqs.msix().write(index, offset, src);
            return VfioUserDevice.DONE;
        }
        Optional<RegionMemory> memory = runtime.memory(index);
        if (memory.isPresent()) {
            MemorySegment.copy(MemorySegment.ofBuffer(src), 0, memory.get().segment(), offset, src.remaining());
            src.position(src.limit());
            return VfioUserDevice.DONE;
        }
        return runtime.device().regionWrite(index, offset, src);
    }

    /** A write of at most 8 bytes held in a long (REGION_WRITE_MULTI entries). */
    CompletableFuture<Void> write(int index, long offset, int count, long value) {
        ByteBuffer src = ByteBuffer.allocate(8).order(java.nio.ByteOrder.LITTLE_ENDIAN).putLong(0, value);
        src.limit(count);
        return write(index, offset, src);
    }

    private void check(int index, long offset, int count, boolean write) {
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
        if (index != Region.CONFIG) {
            Region r = runtime.description().region(index).orElseThrow();
            if (write ? !r.writable() : !r.readable()) {
                throw new VfioUserProtocolException(Errno.EINVAL, (write ? "write to read-only" : "read of write-only")
                        + " region " + index);
            }
        }
    }
}
