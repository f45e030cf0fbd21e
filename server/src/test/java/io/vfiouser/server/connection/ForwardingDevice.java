package io.vfiouser.server.connection;

import io.vfiouser.device.DeviceContext;
import io.vfiouser.device.DmaRange;
import io.vfiouser.device.IoEventFd;
import io.vfiouser.device.IrqType;
import io.vfiouser.device.ResetReason;
import io.vfiouser.device.VfioUserDevice;
import java.nio.ByteBuffer;
import java.util.concurrent.CompletableFuture;

/**
 * A device that hands every call to a {@link ScriptedDevice} (so its recording and holding work), for test devices
 * that add one behaviour of their own (migration, device-supplied backing) and override only that.
 */
abstract class ForwardingDevice implements VfioUserDevice {
    final ScriptedDevice scripted;

    ForwardingDevice(ScriptedDevice scripted) {
        this.scripted = scripted;
    }

    @Override
    public CompletableFuture<Void> regionRead(int region, long offset, ByteBuffer dst) {
        return scripted.regionRead(region, offset, dst);
    }

    @Override
    public CompletableFuture<Void> regionWrite(int region, long offset, ByteBuffer src) {
        return scripted.regionWrite(region, offset, src);
    }

    @Override
    public void attached(DeviceContext context) {
        scripted.attached(context);
    }

    @Override
    public void detached() {
        scripted.detached();
    }

    @Override
    public CompletableFuture<Void> reset(ResetReason reason) {
        return scripted.reset(reason);
    }

    @Override
    public CompletableFuture<Void> quiesce() {
        return scripted.quiesce();
    }

    @Override
    public void dmaMapped(DmaRange range) {
        scripted.dmaMapped(range);
    }

    @Override
    public void dmaUnmapped(DmaRange range) {
        scripted.dmaUnmapped(range);
    }

    @Override
    public void irqMaskChanged(IrqType type, int start, int count, boolean masked) {
        scripted.irqMaskChanged(type, start, count, masked);
    }

    @Override
    public void ioEventFdSignalled(IoEventFd ioEventFd, long count) {
        scripted.ioEventFdSignalled(ioEventFd, count);
    }

    @Override
    public void configWritten(int offset, int length) {
        scripted.configWritten(offset, length);
    }
}
