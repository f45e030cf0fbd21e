package io.vfiouser.server.connection;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.vfiouser.codec.VfioUserProtocolException;
import io.vfiouser.device.MigrationState;
import io.vfiouser.device.MigrationSupport;
import io.vfiouser.device.Region;
import io.vfiouser.device.VfioUserDevice;
import io.vfiouser.device.VfioUserMigration;
import io.vfiouser.server.device.DeviceRuntime;
import io.vfiouser.server.device.LogText;
import io.vfiouser.server.device.RegionMemory;
import io.vfiouser.server.irq.IrqTable;
import io.vfiouser.server.migration.DeviceFeatures;
import io.vfiouser.server.migration.MigrationPaths;
import io.vfiouser.server.migration.MigrationRecord;
import io.vfiouser.server.migration.MigrationStreamReader;
import io.vfiouser.server.migration.SavePhase;
import io.vfiouser.transport.linux.Errno;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayDeque;
import java.util.List;
import java.util.concurrent.CompletableFuture;

/**
 * The migration state of one client's device (digest 3.16-3.18, 6.3): the state machine, the saving side of a
 * source (PRE_COPY, STOP_COPY) and the loading side of a destination (RESUMING). Which commands each state accepts
 * is {@link CommandRules}'s. Runs on the connection's command path, one command at a time; its futures may complete
 * on device threads while the connection waits for them.
 *
 * <p>A new client finds the device RUNNING; a reset (DEVICE_RESET, FLR, the client leaving) ends any migration and
 * brings the device back to RUNNING (see {@link VfioUserMigration} for what the device is told).
 */
final class ConnectionMigration implements DeviceFeatures.StateMachine {
    /** The device side of a device that declares migration support but keeps no state of its own. */
    private static final VfioUserMigration FRAMEWORK_ONLY = new VfioUserMigration() {
    };
    /** Memory-backed regions travel in records of at most this many bytes. */
    private static final int REGION_CHUNK = 1 << 20;

    private final DeviceRuntime runtime;
    private final IrqTable irqs;
    private final ConfigInterrupts configInterrupts;
    private final ByteBufAllocator alloc;
    private final MigrationSupport support;
    private final VfioUserMigration device;
    private volatile MigrationState state = MigrationState.RUNNING;
    private Source source;
    private MigrationStreamReader sink;
    /** A loaded interrupt state whose pending interrupts fire when the device runs again. */
    private boolean firePendingOnRun;

    /** What the saving side still has to send. */
    private static final class Source {
        final ArrayDeque<ByteBuffer> out = new ArrayDeque<>();
        /** Memory-backed regions still to copy, one chunk at a time (so a large BAR is never copied whole). */
        final ArrayDeque<Region> regions = new ArrayDeque<>();
        long regionOffset;
        SavePhase phase = SavePhase.HEADER;
    }

    ConnectionMigration(DeviceRuntime runtime, IrqTable irqs, ConfigInterrupts configInterrupts,
                        ByteBufAllocator alloc) {
        this.runtime = runtime;
        this.irqs = irqs;
        this.configInterrupts = configInterrupts;
        this.alloc = alloc;
        this.support = runtime.description().migration().orElse(null);
        VfioUserDevice behaviour = runtime.device();
        this.device = behaviour instanceof VfioUserMigration m ? m : FRAMEWORK_ONLY;
    }

    /** Whether the device declared migration support (else every device feature is refused). */
    boolean supported() {
        return support != null;
    }

    @Override
    public boolean preCopy() {
        return support != null && support.preCopy();
    }

    @Override
    public MigrationState state() {
        return state;
    }

    // ---------------------------------------------------------------------------------------- transitions

    /**
     * MIG_DEVICE_STATE SET: moves to {@code code} one arc at a time ({@link MigrationPaths}); completes when the
     * target is reached. EINVAL for a state out of range or one that cannot be reached; a failing arc stops the
     * way there with its errno, in the state before that arc (after a failed RESUMING→STOP: ERROR).
     */
    @Override
    public CompletableFuture<Void> setState(int code) {
        MigrationState target = MigrationState.ofCode(code);
        if (target == null) {
            return failed("migration state " + Integer.toUnsignedString(code) + " does not exist");
        }
        return walk(target);
    }

    private CompletableFuture<Void> walk(MigrationState target) {
        MigrationState from = state;
        if (from == target) {
            return VfioUserDevice.DONE;
        }
        MigrationState next = MigrationPaths.nextHop(from, target, preCopy());
        if (next == null) {
            return failed("migration state " + target + " cannot be reached from " + from);
        }
        return arc(from, next).thenCompose(ok -> walk(target));
    }

    private CompletableFuture<Void> arc(MigrationState from, MigrationState to) {
        if (from == MigrationState.RESUMING && to == MigrationState.STOP && (sink == null || !sink.complete())) {
            state = MigrationState.ERROR;
            boolean corrupt = sink != null && sink.failed();
            sink = null;
            runtime.warnings().warn("{}: the migration data written is {}: the device is in ERROR until reset",
                    runtime.name(), corrupt ? "invalid" : "incomplete");
            return failed("the migration data written is incomplete or invalid: the device is in ERROR");
        }
        CompletableFuture<Void> stopped = from.running() && !to.running() ? quiesce() : VfioUserDevice.DONE;
        return stopped.thenCompose(ok -> call(() -> device.migrationStateChanged(from, to))).handle((ok, err) -> {
            if (err != null) {
                if (from == MigrationState.RESUMING) {
                    state = MigrationState.ERROR;
                    sink = null;
                }
                throw new java.util.concurrent.CompletionException(Errors.unwrap(err));
            }
            enter(from, to);
            return null;
        });
    }

    /** The framework's part of an arc that the device has taken. */
    private void enter(MigrationState from, MigrationState to) {
        switch (to) {
            case PRE_COPY -> source = new Source();
            case STOP_COPY -> {
                if (from != MigrationState.PRE_COPY) {
                    source = new Source();
                }
            }
            case RESUMING -> sink = new MigrationStreamReader();
            case STOP, RUNNING -> {
                source = null;
                sink = null;
            }
            default -> {
            }
        }
        state = to;
        runtime.log().debug("{}: migration state {} -> {}", runtime.name(), from, to);
        if (to == MigrationState.RUNNING && firePendingOnRun) {
            firePendingOnRun = false;
            irqs.firePending();
        }
    }

    /**
     * After a reset (DEVICE_RESET, FLR, the client leaving): any migration is over, the device runs. A device that
     * was not RUNNING is told so ({@code (state, RUNNING)}); its failure is logged, not reported.
     */
    CompletableFuture<Void> afterReset() {
        MigrationState was = state;
        source = null;
        sink = null;
        firePendingOnRun = false;
        state = MigrationState.RUNNING;
        if (was == MigrationState.RUNNING) {
            return VfioUserDevice.DONE;
        }
        runtime.log().info("{}: reset ends the migration (was {})", runtime.name(), was);
        return call(() -> device.migrationStateChanged(was, MigrationState.RUNNING)).exceptionally(err -> {
            runtime.warnings().warn("{}: migrationStateChanged({}, RUNNING) after reset failed", runtime.name(), was,
                    Errors.unwrap(err));
            return null;
        });
    }

    // ------------------------------------------------------------------------------------------- saving

    /**
     * MIG_DATA_READ: up to {@code size} bytes of the stream into a new buffer the caller owns (fewer: nothing more
     * for now; none in STOP_COPY: the end). EINVAL outside PRE_COPY and STOP_COPY.
     */
    CompletableFuture<ByteBuf> read(int size) {
        Source src = source;
        if (src == null || (state != MigrationState.PRE_COPY && state != MigrationState.STOP_COPY)) {
            return failed("MIG_DATA_READ in migration state " + state);
        }
        // Sized by what is queued, not by what the client asked for (its max_data_xfer_size may be up to 2 GiB).
        ByteBuf buf = alloc.buffer(Math.min(size, 64 * 1024), size);
        CompletableFuture<Void> filled;
        try {
            filled = fill(src, buf, size);
        } catch (RuntimeException e) {
            filled = CompletableFuture.failedFuture(e);
        }
        return filled.handle((ok, err) -> {
            if (err != null) {
                buf.release();
                throw new java.util.concurrent.CompletionException(Errors.unwrap(err));
            }
            return buf;
        });
    }

    private CompletableFuture<Void> fill(Source src, ByteBuf buf, int size) {
        while (buf.readableBytes() < size) {
            ByteBuffer head = src.out.peek();
            if (head != null) {
                int n = Math.min(head.remaining(), size - buf.readableBytes());
                buf.writeBytes(head.slice(head.position(), n));
                head.position(head.position() + n);
                if (!head.hasRemaining()) {
                    src.out.poll();
                }
                continue;
            }
            switch (src.phase) {
                case HEADER -> {
                    var id = runtime.description().identity();
                    src.out.add(MigrationRecord.header(id.vendorId(), id.deviceId(), id.classCode(),
                            runtime.config().size()));
                    src.phase = SavePhase.LIVE;
                    continue;
                }
                case LIVE -> {
                    if (state == MigrationState.STOP_COPY) {
                        src.phase = SavePhase.FRAMEWORK;
                        continue;
                    }
                }
                case FRAMEWORK -> {
                    queueFrameworkState(src);
                    src.phase = SavePhase.REGIONS;
                    continue;
                }
                case REGIONS -> {
                    if (src.regions.isEmpty()) {
                        src.phase = SavePhase.FINAL;
                    } else {
                        queueRegionChunk(src);
                    }
                    continue;
                }
                case FINAL -> {
                }
                case END -> {
                    src.out.add(MigrationRecord.of(MigrationRecord.END, new byte[0]));
                    src.phase = SavePhase.DONE;
                    continue;
                }
                case DONE -> {
                    return VfioUserDevice.DONE;
                }
            }
            // LIVE in PRE_COPY or FINAL: the device's own state, chunk by chunk.
            MigrationState phase = state;
            CompletableFuture<ByteBuffer> chunk = call(() -> device.saveState(phase));
            if (chunk.isDone() && !chunk.isCompletedExceptionally()) {
                if (!take(src, chunk.join())) {
                    break;
                }
                continue;
            }
            return chunk.thenCompose(c -> take(src, c) ? fill(src, buf, size) : VfioUserDevice.DONE);
        }
        return VfioUserDevice.DONE;
    }

    /**
     * Queues a device buffer; an empty one ends the device's part in STOP_COPY, and in PRE_COPY means nothing more
     * for now (false).
     */
    private boolean take(Source src, ByteBuffer chunk) {
        if (chunk == null || !chunk.hasRemaining()) {
            if (src.phase == SavePhase.FINAL) {
                src.phase = SavePhase.END;
                return true;
            }
            return false;
        }
        src.out.add(MigrationRecord.of(MigrationRecord.DEVICE, chunk));
        return true;
    }

    /** Configuration space and interrupt state now; the memory-backed regions chunk by chunk, as read. */
    private void queueFrameworkState(Source src) {
        src.out.add(MigrationRecord.of(MigrationRecord.CONFIG, runtime.config().saveImage()));
        src.out.add(MigrationRecord.of(MigrationRecord.IRQS, irqs.saveState()));
        for (Region r : runtime.description().regions()) {
            if (r.memoryBacked()) {
                src.regions.add(r);
            }
        }
        src.regionOffset = 0;
    }

    private void queueRegionChunk(Source src) {
        Region r = src.regions.peek();
        MemorySegment memory = runtime.memory(r.index()).orElseThrow().segment();
        long offset = src.regionOffset;
        int n = (int) Math.min(REGION_CHUNK, memory.byteSize() - offset);
        ByteBuffer record = ByteBuffer.allocate(MigrationRecord.HEAD_SIZE + 12 + n).order(ByteOrder.LITTLE_ENDIAN);
        record.putInt(MigrationRecord.REGION).putInt(12 + n).putInt(0).putInt(r.index()).putLong(offset);
        MemorySegment.ofArray(record.array()).asSlice(MigrationRecord.HEAD_SIZE + 12, n)
                .copyFrom(memory.asSlice(offset, n));
        src.out.add(MigrationRecord.seal(record.position(0)));
        src.regionOffset += n;
        if (src.regionOffset >= memory.byteSize()) {
            src.regions.poll();
            src.regionOffset = 0;
        }
    }

    // ------------------------------------------------------------------------------------------ loading

    /**
     * MIG_DATA_WRITE: the next piece of the stream; completes when the records it completes are loaded. A record
     * that fails its checks or its loading fails the write and the whole stream: the device then holds partial
     * state, and leaving RESUMING puts it in ERROR.
     */
    CompletableFuture<Void> write(ByteBuffer data) {
        MigrationStreamReader reader = sink;
        if (reader == null || state != MigrationState.RESUMING) {
            return failed("MIG_DATA_WRITE in migration state " + state);
        }
        List<MigrationStreamReader.Record> records;
        boolean failedBefore = reader.failed();
        try {
            records = reader.feed(data);
        } catch (VfioUserProtocolException e) {
            if (!failedBefore) {
                runtime.warnings().warn("{}: migration data refused: {}", runtime.name(),
                        LogText.escape(e.getMessage()));
            }
            return CompletableFuture.failedFuture(e);
        }
        CompletableFuture<Void> chain = VfioUserDevice.DONE;
        for (MigrationStreamReader.Record r : records) {
            chain = chain.thenCompose(ok -> load(r));
        }
        return chain.whenComplete((ok, err) -> {
            if (err != null) {
                reader.fail();
                runtime.warnings().warn("{}: migration record not loaded: {}", runtime.name(),
                        LogText.escape(String.valueOf(Errors.unwrap(err).getMessage())));
            }
        });
    }

    private CompletableFuture<Void> load(MigrationStreamReader.Record r) {
        ByteBuffer body = r.body();
        try {
            switch (r.tag()) {
                case MigrationRecord.HEADER -> checkHeader(body);
                case MigrationRecord.DEVICE -> {
                    return call(() -> device.loadState(body.asReadOnlyBuffer().order(ByteOrder.LITTLE_ENDIAN)));
                }
                case MigrationRecord.CONFIG -> {
                    runtime.config().restoreImage(bytes(body));
                    configInterrupts.sync();
                }
                case MigrationRecord.IRQS -> {
                    irqs.restoreState(bytes(body));
                    firePendingOnRun = true;
                }
                case MigrationRecord.REGION -> loadRegion(body);
                case MigrationRecord.END -> {
                }
                default -> throw invalid("unknown migration record " + r.tag());
            }
            return VfioUserDevice.DONE;
        } catch (RuntimeException e) {
            return CompletableFuture.failedFuture(e);
        }
    }

    private void checkHeader(ByteBuffer b) {
        var id = runtime.description().identity();
        if (b.remaining() != 20 || b.getInt(0) != MigrationRecord.MAGIC) {
            throw invalid("not a migration stream of this framework");
        }
        if (b.getInt(4) != MigrationRecord.VERSION) {
            throw invalid("migration stream version " + b.getInt(4) + ", this server reads " + MigrationRecord.VERSION);
        }
        if ((b.getShort(8) & 0xFFFF) != id.vendorId() || (b.getShort(10) & 0xFFFF) != id.deviceId()
                || b.getInt(12) != id.classCode() || b.getInt(16) != runtime.config().size()) {
            throw invalid("the migration stream comes from another kind of device");
        }
    }

    private void loadRegion(ByteBuffer b) {
        if (b.remaining() < 12) {
            throw invalid("a region record of " + b.remaining() + " bytes");
        }
        int index = b.getInt(0);
        long offset = b.getLong(4);
        int n = b.remaining() - 12;
        MemorySegment memory = runtime.memory(index).filter(m -> m.region().memoryBacked())
                .map(RegionMemory::segment)
                .orElseThrow(() -> invalid("region " + index + " is not memory-backed here"));
        if (offset < 0 || offset > memory.byteSize() - n) {
            throw invalid("region record of " + n + " bytes at " + offset + " outside region " + index);
        }
        memory.asSlice(offset, n).copyFrom(MemorySegment.ofBuffer(b.slice(b.position() + 12, n)));
    }

    private static byte[] bytes(ByteBuffer b) {
        byte[] out = new byte[b.remaining()];
        b.get(b.position(), out);
        return out;
    }

    // --------------------------------------------------------------------------------------------- misc

    private CompletableFuture<Void> quiesce() {
        return call(() -> runtime.device().quiesce());
    }

    /** Calls into the device; a throw or a null future becomes a failed future. */
    private static <T> CompletableFuture<T> call(java.util.function.Supplier<CompletableFuture<T>> action) {
        try {
            CompletableFuture<T> f = action.get();
            return f != null ? f : CompletableFuture.failedFuture(new NullPointerException("no future returned"));
        } catch (RuntimeException e) {
            return CompletableFuture.failedFuture(e);
        }
    }

    private static VfioUserProtocolException invalid(String message) {
        return new VfioUserProtocolException(Errno.EINVAL, message);
    }

    private static <T> CompletableFuture<T> failed(String message) {
        return CompletableFuture.failedFuture(invalid(message));
    }
}
