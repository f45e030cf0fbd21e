package io.vfiouser.examples.nulldev;

import io.vfiouser.device.DeviceContext;
import io.vfiouser.device.DeviceDescription;
import io.vfiouser.device.DmaException;
import io.vfiouser.device.DmaSpace;
import io.vfiouser.device.MigrationState;
import io.vfiouser.device.MigrationSupport;
import io.vfiouser.device.MmapArea;
import io.vfiouser.device.Region;
import io.vfiouser.device.ResetReason;
import io.vfiouser.device.VfioUserDevice;
import io.vfiouser.device.VfioUserMigration;
import io.vfiouser.device.pci.MsixCapability;
import io.vfiouser.device.pci.PciExpressCapability;
import io.vfiouser.device.pci.PciIdentity;
import io.vfiouser.device.pci.PowerManagementCapability;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;

/**
 * A test and benchmark device: a small register file, a doorbell that fires MSI-X vectors, a DMA copy engine, a
 * 1 MiB memory BAR and a log of every register access.
 *
 * <h2>Resources</h2>
 * PCI id 4a56:0001, class 0xff0000, PCI Express endpoint (with FLR), power management, MSI-X with
 * {@value #MSIX_VECTORS} vectors; no INTx.
 * <ul>
 * <li>BAR0: 4 KiB of registers served by this class (below).</li>
 * <li>BAR2: 1 MiB, 64-bit, memory-backed: the framework serves it from shared memory; the upper 512 KiB may be
 * mmapped by the client, the lower half is reached through region accesses on the same memory.</li>
 * <li>BAR4: 4 KiB; the MSI-X table at 0 and the PBA at 2048, both emulated by the framework. The rest of BAR4 reads
 * 0 and ignores writes.</li>
 * </ul>
 *
 * <h2>BAR0 registers</h2>
 * Each register is a 64-bit little-endian slot; accesses of 1, 2, 4 or 8 bytes read or write the bytes they cover
 * (an access spanning two slots touches both).
 * <table>
 * <caption>Register map</caption>
 * <tr><th>Offset</th><th>Name</th><th>Access</th><th>Meaning</th></tr>
 * <tr><td>0x00</td><td>SCRATCH</td><td>RW</td><td>64 bits that read back what was written.</td></tr>
 * <tr><td>0x08</td><td>DOORBELL</td><td>W</td><td>A write covering 0x08 fires MSI-X vector <i>n</i>, <i>n</i> =
 * bits 31:0 of the value written (unwritten bytes count as 0); vectors outside 0..{@value #MSIX_VECTORS}-1 are
 * ignored. A masked vector becomes pending (framework). Reads 0.</td></tr>
 * <tr><td>0x10</td><td>DMA_SRC</td><td>RW</td><td>Guest (DMA) address the engine copies from.</td></tr>
 * <tr><td>0x18</td><td>DMA_DST</td><td>RW</td><td>Guest address the engine copies to.</td></tr>
 * <tr><td>0x20</td><td>DMA_LEN</td><td>RW</td><td>Bytes to copy, at most {@value #MAX_DMA_LENGTH}.</td></tr>
 * <tr><td>0x28</td><td>DMA_CTRL</td><td>W</td><td>A write covering 0x28 with bit 0 ({@link #CTRL_START}) set
 * copies DMA_LEN bytes from DMA_SRC to DMA_DST through {@link DmaSpace#read}/{@link DmaSpace#write}, in chunks of
 * up to {@value #DMA_CHUNK} bytes (overlapping ranges are copied as by memmove). The write completes only when the
 * copy has finished and DMA_STATUS is updated. With bit 1 ({@link #CTRL_IRQ}) set, MSI-X vector bits 15:8 fires
 * when the copy ends, successfully or not. Reads 0.</td></tr>
 * <tr><td>0x30</td><td>DMA_STATUS</td><td>R</td><td>{@link #STATUS_IDLE} (0) before any copy, {@link #STATUS_DONE}
 * (1) after a successful one, else the Linux errno of the failure: EFAULT/EACCES/EIO from the DMA space, EINVAL for
 * a length over the limit or an address range that wraps, EIO when no client is attached.</td></tr>
 * <tr><td>0x38</td><td>ACCESS_COUNT</td><td>R</td><td>The number of BAR0 accesses (reads and writes) since the
 * last reset, this read included.</td></tr>
 * <tr><td>0x40-0xfff</td><td></td><td></td><td>Read 0, writes ignored.</td></tr>
 * </table>
 *
 * <p>Every BAR0 access is also recorded, with its offset, size, value and direction, in a bounded log
 * ({@link #accesses()}, {@link #clearAccesses()}) that keeps the newest {@code logCapacity} entries; the log
 * survives resets.
 *
 * <h2>Migration</h2>
 * The device migrates (STOP_COPY and PRE_COPY): the framework carries configuration space, MSI-X state and the
 * BAR2 memory; the device adds its BAR0 registers (one buffer in STOP_COPY: a version byte and the six register
 * values). A copy in flight finishes before the device stops (quiesce). The access log stays behind: it belongs to
 * the process that observed the accesses.
 */
public final class NullDevice implements VfioUserDevice, VfioUserMigration {
    public static final int SCRATCH = 0x00;
    public static final int DOORBELL = 0x08;
    public static final int DMA_SRC = 0x10;
    public static final int DMA_DST = 0x18;
    public static final int DMA_LEN = 0x20;
    public static final int DMA_CTRL = 0x28;
    public static final int DMA_STATUS = 0x30;
    public static final int ACCESS_COUNT = 0x38;

    /** DMA_CTRL: start a copy. */
    public static final long CTRL_START = 1L;
    /** DMA_CTRL: fire the MSI-X vector in bits 15:8 when the copy ends. */
    public static final long CTRL_IRQ = 1L << 1;
    /** DMA_CTRL: the shift of the completion vector. */
    public static final int CTRL_VECTOR_SHIFT = 8;

    public static final long STATUS_IDLE = 0;
    public static final long STATUS_DONE = 1;

    /** Linux errno values reported in DMA_STATUS. */
    public static final int EIO = 5;
    public static final int EINVAL = 22;

    /** The largest copy the engine accepts (64 MiB). */
    public static final long MAX_DMA_LENGTH = 64L << 20;
    /** The engine moves data in chunks of at most this many bytes (1 MiB). */
    public static final int DMA_CHUNK = 1 << 20;

    public static final int MSIX_VECTORS = 4;
    public static final int REGISTER_BAR = 0;
    public static final int REGISTER_BAR_SIZE = 4096;
    public static final int MEMORY_BAR = 2;
    public static final int MEMORY_BAR_SIZE = 1 << 20;
    public static final int MSIX_BAR = 4;
    public static final int MSIX_BAR_SIZE = 4096;
    public static final int MSIX_TABLE_OFFSET = 0;
    public static final int MSIX_PBA_OFFSET = 2048;
    /** The log capacity of {@link #NullDevice()}. */
    public static final int DEFAULT_LOG_CAPACITY = 16384;

    private static final int REGISTERS_END = 0x40;

    /** One BAR0 access. */
    public enum Kind { READ, WRITE }

    /**
     * One recorded BAR0 access.
     *
     * @param sequence the access's number since the device was created (1 = first), for ordering across drops
     * @param kind     read or write
     * @param offset   offset in BAR0
     * @param size     bytes accessed
     * @param value    the little-endian value read or written (its first 8 bytes for larger accesses)
     */
    public record Access(long sequence, Kind kind, long offset, int size, long value) {
    }

    private final int logCapacity;
    /** The access log: a ring of the newest accesses in parallel arrays (no object per access), guarded by itself. */
    private final long[] log;
    private final long[] logOffset;
    private final long[] logValue;
    private final int[] logSize;
    private final boolean[] logWrite;
    private int logNext;
    private int logCount;
    private long sequence;

    // Register state, guarded by this.
    private DeviceContext context;
    private long scratch;
    private long dmaSrc;
    private long dmaDst;
    private long dmaLen;
    private long dmaStatus;
    private long accessCount;
    private CompletableFuture<Void> copyInFlight = DONE;

    public NullDevice() {
        this(DEFAULT_LOG_CAPACITY);
    }

    /** A device whose access log keeps the newest {@code logCapacity} accesses. */
    public NullDevice(int logCapacity) {
        if (logCapacity < 1) {
            throw new IllegalArgumentException("log capacity must be positive: " + logCapacity);
        }
        this.logCapacity = logCapacity;
        this.log = new long[logCapacity];
        this.logOffset = new long[logCapacity];
        this.logValue = new long[logCapacity];
        this.logSize = new int[logCapacity];
        this.logWrite = new boolean[logCapacity];
    }

    /** The description of a null device named {@code name}. */
    public static DeviceDescription description(String name) {
        return DeviceDescription.builder(name, PciIdentity.of(0x4a56, 0x0001, 0xff0000))
                .region(Region.bar(REGISTER_BAR, REGISTER_BAR_SIZE).build())
                .region(Region.bar(MEMORY_BAR, MEMORY_BAR_SIZE).bits64()
                        .mmappable(new MmapArea(MEMORY_BAR_SIZE / 2, MEMORY_BAR_SIZE / 2)).build())
                .region(Region.bar(MSIX_BAR, MSIX_BAR_SIZE).build())
                .capability(PowerManagementCapability.DEFAULT)
                .capability(new MsixCapability(MSIX_VECTORS, MSIX_BAR, MSIX_TABLE_OFFSET, MSIX_BAR, MSIX_PBA_OFFSET))
                .capability(PciExpressCapability.ENDPOINT)
                .migration(MigrationSupport.PRE_COPY)
                .build();
    }

    @Override
    public CompletableFuture<Void> regionRead(int region, long offset, ByteBuffer dst) {
        if (region != REGISTER_BAR) {
            while (dst.hasRemaining()) {
                dst.put((byte) 0);
            }
            return DONE;
        }
        int size = dst.remaining();
        int position = dst.position();
        long value = 0;
        synchronized (this) {
            accessCount++;
            for (int i = 0; i < size; i++) {
                long at = offset + i;
                byte b = (byte) (registerValue(at & ~7L) >>> (8 * (int) (at & 7)));
                dst.put(position + i, b);
                value |= i < 8 ? (b & 0xffL) << (8 * i) : 0;
            }
        }
        dst.position(position + size);
        record(Kind.READ, offset, size, value);
        return DONE;
    }

    @Override
    public CompletableFuture<Void> regionWrite(int region, long offset, ByteBuffer src) {
        if (region != REGISTER_BAR) {
            src.position(src.limit());
            return DONE;
        }
        int size = src.remaining();
        int position = src.position();
        long value = 0;
        for (int i = 0; i < Math.min(8, size); i++) {
            value |= (src.get(position + i) & 0xffL) << (8 * i);
        }
        record(Kind.WRITE, offset, size, value);
        List<Effect> effects = List.of();
        synchronized (this) {
            accessCount++;
            int i = 0;
            while (i < size) {
                long at = offset + i;
                int first = (int) (at & 7);
                int count = Math.min(8 - first, size - i);
                long written = 0;
                long mask = 0;
                for (int b = 0; b < count; b++) {
                    written |= (src.get(position + i + b) & 0xffL) << (8 * (first + b));
                    mask |= 0xffL << (8 * (first + b));
                }
                Effect effect = writeRegister(at & ~7L, written, mask);
                if (effect != null) {
                    if (effects.isEmpty()) {
                        effects = new ArrayList<>(1);
                    }
                    effects.add(effect);
                }
                i += count;
            }
        }
        src.position(position + size);
        CompletableFuture<Void> result = DONE;
        for (Effect effect : effects) {
            result = result.thenCompose(v -> effect.run());
        }
        return result;
    }

    /** What a register write sets off beyond storing a value: run outside the lock, complete when finished. */
    @FunctionalInterface
    private interface Effect {
        CompletableFuture<Void> run();
    }

    /** What a register reads; caller holds the lock. */
    private long registerValue(long slot) {
        if (slot == SCRATCH) {
            return scratch;
        } else if (slot == DMA_SRC) {
            return dmaSrc;
        } else if (slot == DMA_DST) {
            return dmaDst;
        } else if (slot == DMA_LEN) {
            return dmaLen;
        } else if (slot == DMA_STATUS) {
            return dmaStatus;
        } else if (slot == ACCESS_COUNT) {
            return accessCount;
        }
        return 0;
    }

    /**
     * Applies a write of {@code written} (the bits under {@code mask}) to the register at {@code slot}; caller holds
     * the lock. Returns the doorbell or copy the write sets off, or null.
     */
    private Effect writeRegister(long slot, long written, long mask) {
        if (slot == SCRATCH) {
            scratch = (scratch & ~mask) | written;
        } else if (slot == DMA_SRC) {
            dmaSrc = (dmaSrc & ~mask) | written;
        } else if (slot == DMA_DST) {
            dmaDst = (dmaDst & ~mask) | written;
        } else if (slot == DMA_LEN) {
            dmaLen = (dmaLen & ~mask) | written;
        } else if (slot == DOORBELL && (mask & 0xff) != 0) {
            DeviceContext ctx = context;
            int vector = (int) written;
            return () -> {
                ring(ctx, vector);
                return DONE;
            };
        } else if (slot == DMA_CTRL && (mask & 0xff) != 0 && (written & CTRL_START) != 0) {
            DeviceContext ctx = context;
            long src = dmaSrc;
            long dst = dmaDst;
            long length = dmaLen;
            return () -> startCopy(ctx, src, dst, length, written);
        }
        return null;
    }

    private static void ring(DeviceContext ctx, int vector) {
        if (ctx == null) {
            return;
        }
        if (vector < 0 || vector >= MSIX_VECTORS) {
            ctx.log().debug("doorbell: no MSI-X vector {}", Integer.toUnsignedString(vector));
            return;
        }
        ctx.interrupts().triggerMsix(vector);
    }

    /**
     * Runs one copy with the registers as they were when START was written, then records DMA_STATUS and fires the
     * completion vector if asked; the future never completes exceptionally.
     */
    private CompletableFuture<Void> startCopy(DeviceContext ctx, long src, long dst, long length, long ctrl) {
        CompletableFuture<Void> copy;
        if (ctx == null) {
            copy = CompletableFuture.failedFuture(new DmaException(EIO, "no client attached"));
        } else if (Long.compareUnsigned(length, MAX_DMA_LENGTH) > 0) {
            copy = CompletableFuture.failedFuture(
                    new DmaException(EINVAL, "length " + Long.toUnsignedString(length) + " over the limit"));
        } else if (length > 0 && (wraps(src, length) || wraps(dst, length))) {
            copy = CompletableFuture.failedFuture(new DmaException(EINVAL, "address range wraps"));
        } else {
            copy = copy(ctx.dma(), src, dst, length);
        }
        CompletableFuture<Void> finished = copy.handle((v, error) -> {
            long status = error == null ? STATUS_DONE : errno(error);
            if (error != null && ctx != null) {
                ctx.log().debug("DMA copy of {} bytes {} -> {} failed: {}", Long.toUnsignedString(length),
                        Long.toHexString(src), Long.toHexString(dst), error.toString());
            }
            synchronized (this) {
                dmaStatus = status;
            }
            if ((ctrl & CTRL_IRQ) != 0) {
                ring(ctx, (int) ((ctrl >>> CTRL_VECTOR_SHIFT) & 0xff));
            }
            return null;
        });
        synchronized (this) {
            copyInFlight = finished;
        }
        return finished;
    }

    private static boolean wraps(long address, long length) {
        return Long.compareUnsigned(address + length - 1, address) < 0;
    }

    /** Copies {@code length} bytes from {@code src} to {@code dst}, chunk by chunk, as memmove would. */
    static CompletableFuture<Void> copy(DmaSpace dma, long src, long dst, long length) {
        if (length == 0) {
            return DONE;
        }
        ByteBuffer buffer = ByteBuffer.allocate((int) Math.min(length, DMA_CHUNK)).order(ByteOrder.LITTLE_ENDIAN);
        boolean backwards = Long.compareUnsigned(dst, src) > 0 && Long.compareUnsigned(dst - src, length) < 0;
        return copyChunk(dma, buffer, src, dst, length, 0, backwards);
    }

    private static CompletableFuture<Void> copyChunk(DmaSpace dma, ByteBuffer buffer, long src, long dst,
                                                     long length, long done, boolean backwards) {
        if (done == length) {
            return DONE;
        }
        int n = (int) Math.min(buffer.capacity(), length - done);
        long at = backwards ? length - done - n : done;
        buffer.clear().limit(n);
        CompletableFuture<Void> step;
        try {
            step = dma.read(src + at, buffer)
                    .thenCompose(v -> dma.write(dst + at, buffer.flip()));
        } catch (RuntimeException e) {
            step = CompletableFuture.failedFuture(e);
        }
        return step.thenCompose(v -> copyChunk(dma, buffer, src, dst, length, done + n, backwards));
    }

    private static long errno(Throwable error) {
        Throwable e = error;
        while ((e instanceof CompletionException || e instanceof ExecutionException) && e.getCause() != null) {
            e = e.getCause();
        }
        return e instanceof DmaException d ? d.errno() : EIO;
    }

    private void record(Kind kind, long offset, int size, long value) {
        synchronized (log) {
            log[logNext] = ++sequence;
            logOffset[logNext] = offset;
            logValue[logNext] = value;
            logSize[logNext] = size;
            logWrite[logNext] = kind == Kind.WRITE;
            logNext = (logNext + 1) % logCapacity;
            logCount = Math.min(logCount + 1, logCapacity);
        }
    }

    /** The recorded BAR0 accesses, oldest first (at most the newest {@code logCapacity}). */
    public List<Access> accesses() {
        synchronized (log) {
            List<Access> out = new ArrayList<>(logCount);
            for (int n = 0; n < logCount; n++) {
                int i = Math.floorMod(logNext - logCount + n, logCapacity);
                out.add(new Access(log[i], logWrite[i] ? Kind.WRITE : Kind.READ, logOffset[i], logSize[i],
                        logValue[i]));
            }
            return List.copyOf(out);
        }
    }

    /** Forgets the recorded accesses (the ACCESS_COUNT register is not affected). */
    public void clearAccesses() {
        synchronized (log) {
            logCount = 0;
        }
    }

    /** BAR0 accesses since the last reset, as ACCESS_COUNT reads. */
    public synchronized long accessCount() {
        return accessCount;
    }

    /** The scratch register. */
    public synchronized long scratch() {
        return scratch;
    }

    /** The DMA_STATUS register. */
    public synchronized long dmaStatus() {
        return dmaStatus;
    }

    @Override
    public synchronized void attached(DeviceContext context) {
        this.context = Objects.requireNonNull(context, "context");
    }

    @Override
    public synchronized void detached() {
        context = null;
    }

    /** Completes when a copy in flight has finished (a copy only starts from a DMA_CTRL write). */
    @Override
    public synchronized CompletableFuture<Void> quiesce() {
        return copyInFlight;
    }

    /** Registers to 0 (status idle, access count 0), after any copy in flight has finished. */
    @Override
    public CompletableFuture<Void> reset(ResetReason reason) {
        CompletableFuture<Void> inFlight;
        synchronized (this) {
            inFlight = copyInFlight;
        }
        return inFlight.thenRun(() -> {
            synchronized (this) {
                scratch = 0;
                dmaSrc = 0;
                dmaDst = 0;
                dmaLen = 0;
                dmaStatus = STATUS_IDLE;
                accessCount = 0;
            }
        });
    }

    // ------------------------------------------------------------------------------------------ migration

    /** The version byte of the saved registers. */
    private static final byte STATE_VERSION = 1;
    private static final int STATE_SIZE = 1 + 6 * 8;
    /** Whether this saving session has handed out the registers already. */
    private boolean registersSaved;

    @Override
    public synchronized CompletableFuture<Void> migrationStateChanged(MigrationState from, MigrationState to) {
        if (to == MigrationState.PRE_COPY || to == MigrationState.STOP_COPY && from != MigrationState.PRE_COPY) {
            registersSaved = false;
        }
        return DONE;
    }

    /** Nothing in PRE_COPY (the registers may still change); the registers, once, in STOP_COPY. */
    @Override
    public synchronized CompletableFuture<ByteBuffer> saveState(MigrationState state) {
        if (state != MigrationState.STOP_COPY || registersSaved) {
            return NOTHING;
        }
        registersSaved = true;
        ByteBuffer b = ByteBuffer.allocate(STATE_SIZE).order(ByteOrder.LITTLE_ENDIAN);
        b.put(STATE_VERSION).putLong(scratch).putLong(dmaSrc).putLong(dmaDst).putLong(dmaLen).putLong(dmaStatus)
                .putLong(accessCount);
        return CompletableFuture.completedFuture(b.flip());
    }

    @Override
    public synchronized CompletableFuture<Void> loadState(ByteBuffer chunk) {
        ByteBuffer b = chunk.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        if (b.remaining() != STATE_SIZE || b.get() != STATE_VERSION) {
            return CompletableFuture.failedFuture(new IllegalArgumentException(
                    "null device state of " + chunk.remaining() + " bytes, or of another version"));
        }
        scratch = b.getLong();
        dmaSrc = b.getLong();
        dmaDst = b.getLong();
        dmaLen = b.getLong();
        dmaStatus = b.getLong();
        accessCount = b.getLong();
        return DONE;
    }
}
