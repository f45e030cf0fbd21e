package io.vfiouser.server.connection;

import io.vfiouser.device.DeviceContext;
import io.vfiouser.device.DmaRange;
import io.vfiouser.device.IoEventFd;
import io.vfiouser.device.IrqType;
import io.vfiouser.device.MigrationState;
import io.vfiouser.device.ResetReason;
import io.vfiouser.device.VfioUserDevice;
import io.vfiouser.device.VfioUserMigration;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.util.ArrayDeque;
import java.util.Queue;
import java.util.concurrent.CompletableFuture;

/**
 * A {@link ScriptedDevice} that also migrates: every state change is recorded in the scripted device's calls
 * ({@code migration RUNNING STOP}), {@link #saveState} hands out the chunks a test queued, and {@link #loadState}
 * collects what a destination receives. Everything else goes to the scripted device, so a test holds quiesces and
 * accesses as usual.
 */
final class MigratingDevice implements VfioUserDevice, VfioUserMigration {
    final ScriptedDevice scripted;
    /** The device's own state a source hands out, one chunk per {@link #saveState} call (then nothing). */
    final Queue<byte[]> chunks = new ArrayDeque<>();
    /** What a destination's {@link #loadState} received, in order. */
    final ByteArrayOutputStream loaded = new ByteArrayOutputStream();

    MigratingDevice(ScriptedDevice scripted) {
        this.scripted = scripted;
    }

    @Override
    public CompletableFuture<Void> migrationStateChanged(MigrationState from, MigrationState to) {
        scripted.calls.add("migration " + from + " " + to);
        return DONE;
    }

    @Override
    public CompletableFuture<ByteBuffer> saveState(MigrationState state) {
        byte[] next = chunks.poll();
        return next == null ? NOTHING : CompletableFuture.completedFuture(ByteBuffer.wrap(next));
    }

    @Override
    public CompletableFuture<Void> loadState(ByteBuffer chunk) {
        scripted.calls.add("load " + chunk.remaining());
        byte[] b = new byte[chunk.remaining()];
        chunk.get(b);
        loaded.writeBytes(b);
        return DONE;
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
