package io.vfiouser.it.qemu;

import io.vfiouser.device.DeviceContext;
import io.vfiouser.device.DmaRange;
import io.vfiouser.device.IoEventFd;
import io.vfiouser.device.IrqType;
import io.vfiouser.device.ResetReason;
import io.vfiouser.device.VfioUserDevice;
import io.vfiouser.examples.nvme.NvmeDevice;
import java.nio.ByteBuffer;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The NVMe example device with counts of the doorbell writes that reach it (REGION_WRITE to BAR0 from 0x1000): all
 * of them, and those of the I/O queues' SQ tails and CQ heads (doorbell index 2y and 2y + 1, y &gt; 0), plus the
 * ioeventfd signals. What a guest sends as doorbell messages, whatever the doorbell mode. Also every region write
 * that reaches the device and every configuration space write, so that the REGION_WRITE messages the framework
 * served itself without the device (the mmapped doorbell page's, the MSI-X table's) can be told from the server's
 * count of them.
 */
final class DoorbellCountingDevice implements VfioUserDevice {
    private static final int DOORBELLS = 0x1000;

    private final VfioUserDevice device;
    final AtomicLong doorbells = new AtomicLong();
    final AtomicLong ioSqDoorbells = new AtomicLong();
    final AtomicLong ioCqDoorbells = new AtomicLong();
    final AtomicLong ioEventFds = new AtomicLong();
    final AtomicLong regionWrites = new AtomicLong();
    final AtomicLong configWrites = new AtomicLong();

    DoorbellCountingDevice(VfioUserDevice device) {
        this.device = device;
    }

    @Override
    public CompletableFuture<Void> regionRead(int region, long offset, ByteBuffer dst) {
        return device.regionRead(region, offset, dst);
    }

    @Override
    public CompletableFuture<Void> regionWrite(int region, long offset, ByteBuffer src) {
        regionWrites.incrementAndGet();
        if (region == NvmeDevice.REGISTER_BAR && offset >= DOORBELLS) {
            doorbells.incrementAndGet();
            long index = (offset - DOORBELLS) / 4;
            if (index >= 2) {
                (index % 2 == 0 ? ioSqDoorbells : ioCqDoorbells).incrementAndGet();
            }
        }
        return device.regionWrite(region, offset, src);
    }

    @Override
    public void attached(DeviceContext context) {
        device.attached(context);
    }

    @Override
    public void detached() {
        device.detached();
    }

    @Override
    public CompletableFuture<Void> reset(ResetReason reason) {
        return device.reset(reason);
    }

    @Override
    public CompletableFuture<Void> quiesce() {
        return device.quiesce();
    }

    @Override
    public void dmaMapped(DmaRange range) {
        device.dmaMapped(range);
    }

    @Override
    public void dmaUnmapped(DmaRange range) {
        device.dmaUnmapped(range);
    }

    @Override
    public void irqMaskChanged(IrqType type, int start, int count, boolean masked) {
        device.irqMaskChanged(type, start, count, masked);
    }

    @Override
    public void ioEventFdSignalled(IoEventFd ioEventFd, long count) {
        ioEventFds.addAndGet(count);
        device.ioEventFdSignalled(ioEventFd, count);
    }

    @Override
    public void configWritten(int offset, int length) {
        configWrites.incrementAndGet();
        device.configWritten(offset, length);
    }
}
