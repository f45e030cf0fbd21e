package io.vfiouser.server.dma;

import io.vfiouser.codec.payload.DmaMapRequest;
import io.vfiouser.device.DmaRange;
import io.vfiouser.transport.FdSet;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

/**
 * One DMA mapping: a range of DMA addresses, its permissions and, when the client passed an fd, the fd and the
 * shared memory mapped from it.
 *
 * <p>Lifetime: accesses {@link #acquire()} and {@link #release()} the mapping around every touch of its memory.
 * {@link #retire()} (unmap) refuses new accesses; when the last access in flight has released it, the memory is
 * unmapped (its arena closed), the fd closed, the table's listener told and {@link #released()} completed, exactly
 * once, on the thread that released last (or on the retiring thread when nothing was in flight).
 */
final class Mapping {
    private static final Logger LOG = LogManager.getLogger(Mapping.class);
    /** Set in {@link #state} once retired; the bits below count the accesses in flight. */
    private static final long RETIRED = 1L << 62;

    private final DmaRange range;
    private final long last;
    private final int flags;
    private final long fileOffset;
    private final FileIdentity file;
    private final int fd;
    private final Arena arena;
    private final MemorySegment memory;
    private final Consumer<DmaRange> onReleased;
    private final boolean sealed;
    private final AtomicLong state = new AtomicLong();
    private final CompletableFuture<Void> released = new CompletableFuture<>();
    /** The dirty-page log while logging runs (shared mappings only), else null. */
    private volatile DirtyBitmap dirty;

    /**
     * @param fd         the fd the mapping owns from now on, or -1 for message mode
     * @param arena      the arena that owns {@code memory}, or null for message mode
     * @param memory     exactly the mapped range, or null for message mode
     * @param onReleased told when the mapping is gone for good
     */
    Mapping(long address, long size, int flags, long fileOffset, FileIdentity file, int fd, Arena arena,
            MemorySegment memory, Consumer<DmaRange> onReleased) {
        this(address, size, flags, fileOffset, file, fd, arena, memory, onReleased, false);
    }

    /**
     * @param sealed whether the file behind the memory can no longer shrink (memfd {@code F_SEAL_SHRINK}): then
     *               no access can fault, and devices may work on the shared pages directly
     */
    Mapping(long address, long size, int flags, long fileOffset, FileIdentity file, int fd, Arena arena,
            MemorySegment memory, Consumer<DmaRange> onReleased, boolean sealed) {
        this.sealed = sealed;
        this.range = new DmaRange(address, size, (flags & DmaMapRequest.FLAG_READ) != 0,
                (flags & DmaMapRequest.FLAG_WRITE) != 0, memory != null);
        this.last = address + size - 1;
        this.flags = flags;
        this.fileOffset = fileOffset;
        this.file = file;
        this.fd = fd;
        this.arena = arena;
        this.memory = memory;
        this.onReleased = onReleased;
    }

    DmaRange range() {
        return range;
    }

    long start() {
        return range.address();
    }

    long size() {
        return range.size();
    }

    /** The last DMA address inside (unsigned). */
    long last() {
        return last;
    }

    boolean shared() {
        return memory != null;
    }

    /** Shared memory whose file cannot shrink: safe to hand to devices directly. */
    boolean sealed() {
        return sealed && memory != null;
    }

    boolean readable() {
        return range.readable();
    }

    boolean writable() {
        return range.writable();
    }

    /** The shared memory; only while acquired, and only for a {@link #shared()} mapping. */
    MemorySegment memory() {
        return memory;
    }

    /** Whether {@code [address, address + length)} lies inside (unsigned; {@code length} ≥ 0, no wrap-around). */
    boolean contains(long address, long length) {
        if (Long.compareUnsigned(address, start()) < 0 || Long.compareUnsigned(address, last) > 0) {
            return false;
        }
        return length == 0 || Long.compareUnsigned(length - 1, last - address) <= 0;
    }

    /** Whether a DMA_MAP of {@code address, size, ...} asks for exactly this mapping (an idempotent re-map). */
    boolean isSameAs(long address, long size, int flags, long fileOffset, FileIdentity file) {
        if (address != start() || size != size() || flags != this.flags || fileOffset != this.fileOffset) {
            return false;
        }
        return this.file == null ? file == null : this.file.sameFile(file);
    }

    /** Starts a fresh dirty-page log of {@code 1 << pageShift}-byte pages (shared mappings only). */
    void startLogging(int pageShift) {
        if (memory != null) {
            dirty = new DirtyBitmap(size(), pageShift);
        }
    }

    void stopLogging() {
        dirty = null;
    }

    /** The dirty-page log, or null when logging is off or the mapping is served by DMA messages. */
    DirtyBitmap dirtyLog() {
        return dirty;
    }

    /** Logs a write of {@code [address, address + length)} (DMA addresses, inside, length > 0), if logging. */
    void markDirty(long address, long length) {
        DirtyBitmap d = dirty;
        if (d != null) {
            d.mark(address - start(), length);
        }
    }

    /** Registers an access; false once the mapping is retired. */
    boolean acquire() {
        while (true) {
            long s = state.get();
            if ((s & RETIRED) != 0) {
                return false;
            }
            if (state.compareAndSet(s, s + 1)) {
                return true;
            }
        }
    }

    /** Ends an access registered by {@link #acquire()}. */
    void release() {
        long s = state.decrementAndGet();
        if (s == RETIRED) {
            dispose();
        }
    }

    /** Accesses in flight. */
    long inFlight() {
        return state.get() & (RETIRED - 1);
    }

    boolean isRetired() {
        return (state.get() & RETIRED) != 0;
    }

    /**
     * Refuses new accesses from now on; the mapping goes away once the accesses in flight have finished. Returns
     * {@link #released()}. Idempotent.
     */
    CompletableFuture<Void> retire() {
        long before = state.getAndUpdate(s -> s | RETIRED);
        if (before == 0) {
            dispose();
        }
        return released;
    }

    /** Completes when the mapping is gone: memory unmapped, fd closed, listener told. Never fails. */
    CompletableFuture<Void> released() {
        return released;
    }

    private void dispose() {
        try {
            if (arena != null) {
                arena.close();
            }
        } catch (RuntimeException e) {
            LOG.warn("unmapping guest memory {} failed; it stays mapped", range, e);
        } finally {
            if (fd >= 0) {
                FdSet.closeQuietly(fd);
            }
        }
        try {
            onReleased.accept(range);
        } catch (RuntimeException e) {
            LOG.warn("DMA listener failed for the unmap of {}", range, e);
        } finally {
            released.complete(null);
        }
    }

    @Override
    public String toString() {
        return "Mapping[0x" + Long.toHexString(start()) + "+0x" + Long.toHexString(size())
                + (readable() ? " R" : " -") + (writable() ? "W" : "-") + (shared() ? " fd " + fd : " message")
                + (isRetired() ? " retired" : "") + "]";
    }
}
