package io.vfiouser.server.connection;

import io.vfiouser.device.MigrationState;
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
final class MigratingDevice extends ForwardingDevice implements VfioUserMigration {
    /** The device's own state a source hands out, one chunk per {@link #saveState} call (then nothing). */
    final Queue<byte[]> chunks = new ArrayDeque<>();
    /** What a destination's {@link #loadState} received, in order. */
    final ByteArrayOutputStream loaded = new ByteArrayOutputStream();

    MigratingDevice(ScriptedDevice scripted) {
        super(scripted);
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
}
