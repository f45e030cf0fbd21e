package io.vfiouser.device;

import java.nio.ByteBuffer;
import java.util.concurrent.CompletableFuture;

/**
 * The behaviour half of live migration, for a device with state of its own: implemented by the same object as
 * its {@link VfioUserDevice}, for a device whose description declares {@link MigrationSupport}. Every method has a
 * default, so a device implements only what it needs.
 *
 * <h2>The stream</h2>
 * A device's state leaves the source as a stream the client reads (MIG_DATA_READ) and enters the destination as
 * the same stream the client writes (MIG_DATA_WRITE). The framework writes its own records into it (configuration
 * space, interrupts, memory-backed regions) and frames the device's: each buffer {@link #saveState} returns
 * arrives whole, in order, at the destination's {@link #loadState}, however the client cuts the stream into
 * messages. A buffer holds what the device likes (a version byte first is wise).
 *
 * <h2>Calls</h2>
 * Like all device callbacks: one at a time per device, in the order of the client's commands, on no particular
 * thread; a returned future may complete later and the next command waits for it. A failed future (or a thrown
 * exception) fails the client's command with the errno {@link VfioUserDevice}'s table gives it: the errno a
 * {@code DmaException} or {@code ErrnoException} carries, EINVAL for {@code IllegalArgumentException}, ENOTSUP for
 * {@code UnsupportedOperationException}, EIO for anything else.
 *
 * <ol>
 * <li><b>Source, pre-copy</b> (only with {@link MigrationSupport#preCopy()}): {@code migrationStateChanged(RUNNING,
 * PRE_COPY)}, then {@code saveState(PRE_COPY)} whenever the client wants more data; the device keeps running and
 * returns what it can send already (state that rarely changes), and an empty buffer for "nothing more now" (it may
 * be asked again later).</li>
 * <li><b>Source, stop and copy</b>: {@code migrationStateChanged(PRE_COPY or RUNNING, STOP)} or {@code (PRE_COPY,
 * STOP_COPY)}: the device stops. The framework has quiesced it just before ({@link VfioUserDevice#quiesce()});
 * from now on it must start no DMA, raise no interrupt and change no state by itself until it is told
 * {@link MigrationState#RUNNING} again, even though region accesses (in STOP) still reach it. Then
 * {@code saveState(STOP_COPY)} repeatedly: the rest of the state, an empty buffer at the end. Region accesses are
 * refused in STOP_COPY, so the state holds still while it is saved.</li>
 * <li><b>Destination</b>: {@code migrationStateChanged(STOP, RESUMING)}, then {@code loadState(chunk)} for every
 * buffer the source saved, in order; then {@code migrationStateChanged(RESUMING, STOP)}, where a device that did
 * not get everything it needs fails the future (the client's SET fails and the device is in ERROR), and finally
 * {@code (STOP, RUNNING)}: the device goes on where the source stopped, using the DMA mappings and interrupt
 * eventfds the destination's client set up.</li>
 * </ol>
 *
 * <p>The framework moves between non-adjacent states one arc at a time (RUNNING to STOP_COPY is RUNNING→STOP,
 * STOP→STOP_COPY), so every call of {@link #migrationStateChanged} is one of the arcs of the state machine: RUNNING
 * ⇄ STOP, RUNNING ⇄ PRE_COPY, PRE_COPY → STOP_COPY, STOP ⇄ STOP_COPY (back: saving ends), STOP ⇄ RESUMING (back:
 * loading ends). One exception: a reset (DEVICE_RESET, FLR, the client leaving) in the middle of a migration ends
 * it, and after the device's {@link VfioUserDevice#reset} it is told {@code (whatever state it was in, RUNNING)}.
 */
public interface VfioUserMigration {
    /** A completed future with an empty buffer: "no device state (now)". */
    CompletableFuture<ByteBuffer> NOTHING = CompletableFuture.completedFuture(ByteBuffer.allocate(0));

    /**
     * The device moves from {@code from} to {@code to} (see the class comment for which pairs occur). Completes
     * when the device is in the new state. A failure refuses this arc: the client's SET fails with its errno and
     * the device stays in {@code from} (on a multi-arc way, in the state the arcs before reached), except that a
     * failed RESUMING→STOP leaves the device in ERROR.
     */
    default CompletableFuture<Void> migrationStateChanged(MigrationState from, MigrationState to) {
        return VfioUserDevice.DONE;
    }

    /**
     * The next part of the device's state, in {@code state} PRE_COPY (while running: what can be sent early) or
     * STOP_COPY (stopped: the rest). An empty buffer means "nothing more": for now in PRE_COPY, for good in
     * STOP_COPY. The framework takes the buffer's remaining bytes (at most 16 MiB per buffer: split larger state)
     * and does not keep the buffer.
     */
    default CompletableFuture<ByteBuffer> saveState(MigrationState state) {
        return NOTHING;
    }

    /**
     * One buffer the source's {@link #saveState} returned (non-empty), in order, in RESUMING. The buffer is valid
     * until the future completes.
     */
    default CompletableFuture<Void> loadState(ByteBuffer chunk) {
        return CompletableFuture.failedFuture(new IllegalArgumentException(
                "this device saved no state of its own, but the stream carries some"));
    }
}
