package io.vfiouser.server.dma;

import static io.vfiouser.codec.payload.DmaMapRequest.FLAG_READ;
import static io.vfiouser.codec.payload.DmaMapRequest.FLAG_WRITE;
import static io.vfiouser.codec.payload.DmaUnmapRequest.FLAG_GET_DIRTY_BITMAP;
import static io.vfiouser.codec.payload.DmaUnmapRequest.FLAG_UNMAP_ALL;

import io.vfiouser.codec.VfioUserProtocolException;
import io.vfiouser.device.DmaRange;
import io.vfiouser.transport.FdBudget;
import io.vfiouser.transport.FdSet;
import io.vfiouser.transport.linux.Errno;
import io.vfiouser.transport.linux.ErrnoException;
import io.vfiouser.transport.linux.FileStat;
import io.vfiouser.transport.linux.Linux;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentSkipListMap;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

/**
 * The DMA mappings of one client connection (DMA_MAP / DMA_UNMAP, digest 3.2, 3.3, 6.3).
 *
 * <p>A mapping with an fd is mapped {@code MAP_SHARED} into a {@link Arena#ofShared() shared arena} the mapping
 * owns, together with the fd; devices reach it only through {@link ServerDmaSpace}, which counts the accesses in
 * flight. An unmap takes the mapping out of the table at once (new accesses fail with {@code EFAULT}) and
 * completes when the accesses in flight have finished and the memory is unmapped and the fd closed.
 *
 * <h2>Errors</h2> The futures fail with {@link VfioUserProtocolException} carrying the errno of the error reply:
 * <table>
 * <caption>DMA_MAP</caption>
 * <tr><td>flags other than READ (0x1) / WRITE (0x2) (libvfio-user's MMAP/FILE_IO extension is not offered)</td>
 * <td>EINVAL</td></tr>
 * <tr><td>size 0</td><td>EINVAL</td></tr>
 * <tr><td>size above 8 TiB</td><td>ENOSPC</td></tr>
 * <tr><td>address + size beyond 2^64</td><td>EINVAL</td></tr>
 * <tr><td>the fd cannot be examined (fstat)</td><td>fstat's errno (EBADF)</td></tr>
 * <tr><td>same address and size as a mapping, same flags, file offset and file (st_dev/st_ino)</td>
 * <td>success, nothing changes, the new fd is closed</td></tr>
 * <tr><td>same address and size, but another offset, file, flags, or fd vs. no fd</td><td>EINVAL</td></tr>
 * <tr><td>any other overlap with a mapping</td><td>EEXIST (the spec's errno; libvfio-user says EINVAL)</td></tr>
 * <tr><td>{@code maxMappings} mappings exist already</td><td>ENOSPC (libvfio-user says EINVAL)</td></tr>
 * <tr><td>an fd, and the client's {@link FdBudget} is spent (its fds are held by mappings and interrupt eventfds
 * already)</td><td>EMFILE: what the kernel says when a process has no fd left, which is what this client would
 * otherwise bring about for everyone</td></tr>
 * <tr><td>regular file smaller than offset + size</td><td>EINVAL</td></tr>
 * <tr><td>mmap fails</td><td>mmap's errno (e.g. ENODEV for an fd that cannot be mapped, EACCES)</td></tr>
 * </table>
 * <table>
 * <caption>DMA_UNMAP</caption>
 * <tr><td>flags other than GET_DIRTY_BITMAP (0x1) / UNMAP_ALL (0x2)</td><td>EINVAL</td></tr>
 * <tr><td>GET_DIRTY_BITMAP through {@link #unmap} (use {@link #unmapWithDirtyBitmap})</td><td>EINVAL</td></tr>
 * <tr><td>UNMAP_ALL with address or size not 0</td><td>EINVAL</td></tr>
 * <tr><td>no mapping with exactly this address and size</td><td>ENOENT</td></tr>
 * </table>
 * <h2>Dirty-page logging</h2> While logging runs ({@link #startDirtyLogging}), every shared mapping (and every
 * one mapped later) keeps a {@link DirtyBitmap}; {@link ServerDmaSpace} marks the pages the device writes while it
 * holds the mapping, so no write is lost to a concurrent report or unmap. {@link #dirtyReport} reads and clears a
 * mapping's log; {@link #unmapWithDirtyBitmap} returns the log of the mapping it removes (the legacy DMA_UNMAP
 * bitmap). Mappings without fd are never logged: the client sees those writes itself.
 *
 * <p>Every fd handed to {@link #map} belongs to the table from the call on and is closed on every path: failure,
 * identical re-map, unmap, {@link #clear()}. A mapping keeps its fd until it is released, and counts it in the
 * {@link FdBudget} for as long.
 *
 * <h2>Threads</h2> Lookups ({@link ServerDmaSpace}) are lock-free and may run on any thread. {@link #map},
 * {@link #unmap} and {@link #clear} serialise on the table; the futures they return complete on the thread that
 * finishes the last access in flight, or on the calling thread when nothing is in flight.
 */
public final class DmaTable implements DirtyLog {
    private static final Logger LOG = LogManager.getLogger(DmaTable.class);

    /**
     * The largest limit on mappings, the spec's and QEMU's {@code max_dma_maps}; the server's own default is
     * {@code ConnectionLimits.maxDmaMappings}, lower.
     */
    public static final int DEFAULT_MAX_MAPPINGS = 65535;
    /** The largest mapping accepted (libvfio-user's limit on x86-64); larger ones fail with ENOSPC. */
    public static final long MAX_MAPPING_SIZE = 8L << 40;
    /** mmap offsets are rounded down to this; the mapping then starts inside the first page. */
    static final long PAGE_SIZE = 4096;
    private static final int S_IFREG = 0100000;

    /**
     * Told about mappings as they come and go, so the server can tell the device. Runs under the table's lock or
     * on a device thread finishing an access: it must not block, and must not call {@link #map}, {@link #unmap}
     * or {@link #clear} (lookups are fine). Exceptions are logged and otherwise ignored.
     */
    public interface Listener {
        /** Tells nobody. */
        Listener NONE = new Listener() {
            @Override
            public void mapped(DmaRange range) {
            }

            @Override
            public void unmapped(DmaRange range) {
            }
        };

        /** A new mapping is in the table and reachable (not called for an identical re-map). */
        void mapped(DmaRange range);

        /**
         * A mapping is gone for good, after an unmap or {@link #clear()}: no access to it is in flight, its memory
         * is unmapped and its fd closed. Called just before the unmap's future completes.
         */
        void unmapped(DmaRange range);
    }

    private final Listener listener;
    private final int maxMappings;
    private final FdBudget fdBudget;
    /** Mappings by start address, ordered as unsigned numbers; never overlapping; only live (unretired) ones. */
    private final ConcurrentSkipListMap<Long, Mapping> mappings = new ConcurrentSkipListMap<>(Long::compareUnsigned);
    /** log2 of the dirty-logging page size while logging runs, else -1. */
    private volatile int logPageShift = -1;
    /** The page size DMA_LOGGING_START asked for, while logging runs. */
    private long logRequestedPageSize;

    /** A table without listener and with {@link #DEFAULT_MAX_MAPPINGS}. */
    public DmaTable() {
        this(Listener.NONE);
    }

    public DmaTable(Listener listener) {
        this(listener, DEFAULT_MAX_MAPPINGS);
    }

    /**
     * @param listener    told about mappings that come and go
     * @param maxMappings how many mappings may exist at once (≥ 1); the server should announce it as
     *                    {@code max_dma_maps}
     */
    public DmaTable(Listener listener, int maxMappings) {
        this(listener, maxMappings, FdBudget.unlimited());
    }

    /**
     * @param listener    told about mappings that come and go
     * @param maxMappings how many mappings may exist at once (≥ 1); the server should announce it as
     *                    {@code max_dma_maps}
     * @param fdBudget    the client's fds, shared with its other fd holders: each mapping with an fd takes one
     *                    from it until the fd is closed
     */
    public DmaTable(Listener listener, int maxMappings, FdBudget fdBudget) {
        if (maxMappings < 1) {
            throw new IllegalArgumentException("maxMappings must be at least 1: " + maxMappings);
        }
        this.listener = Objects.requireNonNull(listener, "listener");
        this.maxMappings = maxMappings;
        this.fdBudget = Objects.requireNonNull(fdBudget, "fdBudget");
    }

    public int maxMappings() {
        return maxMappings;
    }

    /**
     * DMA_MAP: maps {@code [address, address + size)} with the DMA_MAP {@code flags}, backed by {@code fd} at
     * {@code fileOffset}, or reached through DMA messages when {@code fd} is -1 (the file offset is then ignored).
     * Takes ownership of {@code fd}. Completes at once; see the class documentation for the errors.
     */
    public CompletableFuture<Void> map(long address, long size, long fileOffset, int flags, int fd) {
        try {
            mapOrThrow(address, size, fd < 0 ? 0 : fileOffset, flags, fd);
            return CompletableFuture.completedFuture(null);
        } catch (RuntimeException e) {
            // mapOrThrow closed the fd already unless the mapping took it
            return CompletableFuture.failedFuture(e);
        }
    }

    private void mapOrThrow(long address, long size, long fileOffset, int flags, int fd) {
        boolean fdTaken = false;
        try {
            if ((flags & ~(FLAG_READ | FLAG_WRITE)) != 0) {
                throw invalid(Errno.EINVAL, "DMA_MAP flags 0x" + Integer.toHexString(flags)
                        + ": only READ (0x1) and WRITE (0x2) are supported");
            }
            if (size == 0) {
                throw invalid(Errno.EINVAL, "DMA_MAP of size 0");
            }
            if (Long.compareUnsigned(size, MAX_MAPPING_SIZE) > 0) {
                throw invalid(Errno.ENOSPC, "DMA_MAP of " + Long.toUnsignedString(size) + " bytes; at most 8 TiB");
            }
            if (Long.compareUnsigned(address + size - 1, address) < 0) {
                throw invalid(Errno.EINVAL, "DMA_MAP at " + hex(address) + " of " + hex(size) + " bytes wraps");
            }
            FileStat stat = null;
            FileIdentity file = null;
            if (fd >= 0) {
                stat = fstat(fd);
                file = FileIdentity.of(fd);
            }
            synchronized (this) {
                Mapping overlap = overlapping(address, address + size - 1);
                if (overlap != null) {
                    if (overlap.start() == address && overlap.size() == size) {
                        if (overlap.isSameAs(address, size, flags, fileOffset, file)) {
                            LOG.debug("identical re-map of {}", overlap);
                            return; // the new fd is closed below
                        }
                        throw invalid(Errno.EINVAL, "DMA_MAP of " + range(address, size)
                                + " with another offset, file or protection than " + overlap);
                    }
                    throw invalid(Errno.EEXIST, "DMA_MAP of " + range(address, size) + " overlaps " + overlap);
                }
                if (mappings.size() >= maxMappings) {
                    throw invalid(Errno.ENOSPC, "DMA_MAP: the table holds " + maxMappings + " mappings already");
                }
                Mapping mapping;
                if (fd < 0) {
                    mapping = new Mapping(address, size, flags, 0, null, -1, null, null, listener::unmapped);
                } else {
                    if (!fdBudget.tryAcquire(1)) {
                        throw invalid(Errno.EMFILE, "DMA_MAP of " + range(address, size) + ": the client holds "
                                + fdBudget.limit() + " fds already (DMA mappings and interrupt eventfds)");
                    }
                    try {
                        mapping = mapShared(address, size, fileOffset, flags, fd, stat, file);
                    } catch (RuntimeException | Error e) {
                        fdBudget.release(1);
                        throw e;
                    }
                }
                fdTaken = true;
                int shift = logPageShift;
                if (shift >= 0) {
                    mapping.startLogging(shift);
                }
                mappings.put(address, mapping);
                try {
                    listener.mapped(mapping.range());
                } catch (RuntimeException e) {
                    LOG.warn("DMA listener failed for the map of {}", mapping.range(), e);
                }
            }
        } finally {
            if (!fdTaken && fd >= 0) {
                FdSet.closeQuietly(fd);
            }
        }
    }

    /** Whether {@code fd} is a memfd sealed against shrinking (QEMU seals its memory-backend-memfd by default). */
    private static boolean cannotShrink(int fd) {
        try {
            return (Linux.getSeals(fd) & Linux.F_SEAL_SHRINK) != 0;
        } catch (ErrnoException e) {
            return false; // not a memfd (EINVAL): it may shrink
        }
    }

    private Mapping mapShared(long address, long size, long fileOffset, int flags, int fd, FileStat stat,
            FileIdentity file) {
        if (stat.type() == S_IFREG && (Long.compareUnsigned(fileOffset, stat.size()) > 0
                || Long.compareUnsigned(size, stat.size() - fileOffset) > 0)) {
            throw invalid(Errno.EINVAL, "DMA_MAP of " + hex(size) + " bytes at file offset " + hex(fileOffset)
                    + ", but the file has " + stat.size() + " bytes");
        }
        long pageOffset = fileOffset & (PAGE_SIZE - 1);
        int prot = ((flags & FLAG_READ) != 0 ? Linux.PROT_READ : 0)
                | ((flags & FLAG_WRITE) != 0 ? Linux.PROT_READ | Linux.PROT_WRITE : 0);
        Arena arena = Arena.ofShared();
        try {
            MemorySegment whole = Linux.mmap(fd, fileOffset - pageOffset, size + pageOffset, prot, arena);
            MemorySegment memory = whole.asSlice(pageOffset, size);
            return new Mapping(address, size, flags, fileOffset, file, fd, arena, memory, released -> {
                fdBudget.release(1); // the mapping has closed its fd
                listener.unmapped(released);
            }, cannotShrink(fd));
        } catch (ErrnoException e) {
            arena.close();
            throw new VfioUserProtocolException(e.errno(), "DMA_MAP of " + range(address, size) + ": "
                    + e.getMessage(), e);
        } catch (RuntimeException | Error e) {
            arena.close();
            throw e;
        }
    }

    private static FileStat fstat(int fd) {
        try {
            return Linux.fstat(fd);
        } catch (ErrnoException e) {
            throw new VfioUserProtocolException(e.errno(), "DMA_MAP fd " + fd + ": " + e.getMessage(), e);
        }
    }

    /** The mapping that overlaps {@code [first, last]} (unsigned, inclusive), or null. */
    private Mapping overlapping(long first, long last) {
        Map.Entry<Long, Mapping> below = mappings.floorEntry(last);
        if (below == null) {
            return null;
        }
        Mapping m = below.getValue();
        return Long.compareUnsigned(m.last(), first) >= 0 ? m : null;
    }

    /**
     * DMA_UNMAP: removes the mapping with exactly this address and size, or every mapping with
     * {@code UNMAP_ALL} (address and size 0). New accesses fail at once; the future completes when the accesses
     * in flight have finished and the memory is unmapped and the fd closed. See the class documentation for the
     * errors.
     */
    public CompletableFuture<Void> unmap(long address, long size, int flags) {
        if ((flags & ~(FLAG_GET_DIRTY_BITMAP | FLAG_UNMAP_ALL)) != 0) {
            return failed(Errno.EINVAL, "DMA_UNMAP flags 0x" + Integer.toHexString(flags));
        }
        if ((flags & FLAG_GET_DIRTY_BITMAP) != 0) {
            return dirtyBitmapUnmap(address, size, flags);
        }
        if ((flags & FLAG_UNMAP_ALL) != 0) {
            if (address != 0 || size != 0) {
                return failed(Errno.EINVAL, "DMA_UNMAP with UNMAP_ALL needs address and size 0, got "
                        + range(address, size));
            }
            return CompletableFuture.allOf(retireAll().toArray(CompletableFuture[]::new));
        }
        Mapping mapping;
        synchronized (this) {
            mapping = mappings.get(address);
            if (mapping == null || mapping.size() != size) {
                return failed(Errno.ENOENT, "DMA_UNMAP of " + range(address, size) + ": no such mapping"
                        + (mapping == null ? "" : " (there is " + mapping + ")"));
            }
            mappings.remove(address);
        }
        return mapping.retire().copy();
    }

    private CompletableFuture<Void> dirtyBitmapUnmap(long address, long size, int flags) {
        return failed(Errno.EINVAL, "DMA_UNMAP flags 0x" + Integer.toHexString(flags) + " of " + range(address, size)
                + ": GET_DIRTY_BITMAP goes through unmapWithDirtyBitmap");
    }

    /**
     * DMA_UNMAP with GET_DIRTY_BITMAP (legacy dirty logging, digest 3.3): removes the mapping with exactly this
     * address and size like {@link #unmap} and completes, once it is gone, with its dirty bitmap in
     * {@code pageSize}-byte pages (u64 words, LSB first), read and cleared. A mapping without fd reports no page.
     * Fails with EINVAL for UNMAP_ALL or unknown flags, while logging is off, for a page size that is not a power
     * of two or a {@code bitmapSize} other than the bitmap's (whole u64 words); ENOENT as {@link #unmap}.
     */
    public CompletableFuture<long[]> unmapWithDirtyBitmap(long address, long size, int flags, long pageSize,
            long bitmapSize) {
        if (flags != FLAG_GET_DIRTY_BITMAP) {
            return failed(Errno.EINVAL, "DMA_UNMAP flags 0x" + Integer.toHexString(flags)
                    + ": GET_DIRTY_BITMAP goes alone");
        }
        if (logPageShift < 0) {
            return failed(Errno.EINVAL, "DMA_UNMAP of " + range(address, size)
                    + " with GET_DIRTY_BITMAP, but dirty-page logging is not active");
        }
        long expected = io.vfiouser.codec.payload.DmaLoggingReport.bitmapSize(size, pageSize);
        if (expected < 0 || expected != bitmapSize) {
            return failed(Errno.EINVAL, "DMA_UNMAP dirty bitmap of " + bitmapSize + " bytes in pages of "
                    + pageSize + " for " + range(address, size) + " (needs " + expected + ")");
        }
        Mapping mapping;
        synchronized (this) {
            mapping = mappings.get(address);
            if (mapping == null || mapping.size() != size) {
                return failed(Errno.ENOENT, "DMA_UNMAP of " + range(address, size) + ": no such mapping");
            }
            mappings.remove(address);
        }
        int words = (int) (expected / 8);
        return mapping.retire().thenApply(ok -> {
            DirtyBitmap log = mapping.dirtyLog();
            return log == null ? new long[words] : log.takeAndClear(0, size, pageSize, words);
        });
    }

    // ------------------------------------------------------------------------------------ dirty logging

    /**
     * DMA_LOGGING_START: logs writes to every shared mapping, present and future, in pages of
     * {@code max(pageSize, 4096)} bytes; returns that page size. Starting again with the same page size keeps the
     * logs as they are (libvfio-user does the same).
     *
     * @throws VfioUserProtocolException EINVAL for a page size that is 0 or not a power of two, or one other
     *                                   than the running log's
     */
    public synchronized long startDirtyLogging(long pageSize) {
        if (pageSize <= 0 || Long.bitCount(pageSize) != 1) {
            throw invalid(Errno.EINVAL, "DMA_LOGGING_START page size " + Long.toUnsignedString(pageSize)
                    + " is not a power of two");
        }
        int shift = Long.numberOfTrailingZeros(Math.max(pageSize, PAGE_SIZE));
        int running = logPageShift;
        if (running >= 0) {
            if (pageSize != logRequestedPageSize) {
                throw invalid(Errno.EINVAL, "DMA_LOGGING_START with page size " + pageSize
                        + " while logging with page size " + logRequestedPageSize);
            }
            return 1L << running;
        }
        for (Mapping m : mappings.values()) {
            m.startLogging(shift);
        }
        logRequestedPageSize = pageSize;
        logPageShift = shift;
        return 1L << shift;
    }

    /** DMA_LOGGING_STOP: stops logging and drops the logs (nothing happens if logging is off). */
    public synchronized void stopDirtyLogging() {
        logPageShift = -1;
        for (Mapping m : mappings.values()) {
            m.stopLogging();
        }
    }

    /** Whether dirty-page logging runs. */
    public boolean isLogging() {
        return logPageShift >= 0;
    }

    /**
     * DMA_LOGGING_REPORT: reads and clears the log of {@code [iova, iova + length)}, which must start at a
     * mapping's start and lie inside it, as a bitmap of {@code pageSize}-byte pages (u64 words, LSB first; see
     * {@link DirtyBitmap#takeAndClear}).
     *
     * @throws VfioUserProtocolException EINVAL: logging off, length 0, page size not a power of two or larger than
     *                                   the length, a mapping without fd; ENOENT: nothing mapped at {@code iova}
     *                                   or the range leaves the mapping; ENOTSUP: {@code iova} inside a mapping
     *                                   but not at its start (digest 3.16)
     */
    public long[] dirtyReport(long iova, long length, long pageSize) {
        if (logPageShift < 0) {
            throw invalid(Errno.EINVAL, "DMA_LOGGING_REPORT while dirty-page logging is not active");
        }
        if (length == 0 || pageSize <= 0 || Long.bitCount(pageSize) != 1
                || Long.compareUnsigned(pageSize, length) > 0) {
            throw invalid(Errno.EINVAL, "DMA_LOGGING_REPORT of " + range(iova, length) + " in pages of "
                    + Long.toUnsignedString(pageSize));
        }
        Mapping m = find(iova);
        if (m == null) {
            throw invalid(Errno.ENOENT, "DMA_LOGGING_REPORT: nothing is mapped at " + hex(iova));
        }
        if (m.start() != iova) {
            throw invalid(Errno.ENOTSUP, "DMA_LOGGING_REPORT at " + hex(iova) + " inside " + m
                    + ": reports start at a mapping's start");
        }
        if (!m.contains(iova, length)) {
            throw invalid(Errno.ENOENT, "DMA_LOGGING_REPORT of " + range(iova, length) + " leaves " + m);
        }
        DirtyBitmap log = m.dirtyLog();
        if (!m.shared() || log == null) {
            throw invalid(Errno.EINVAL, "DMA_LOGGING_REPORT of " + m + ": only mappings with an fd are logged");
        }
        int words = (int) (io.vfiouser.codec.payload.DmaLoggingReport.bitmapSize(length, pageSize) / 8);
        return log.takeAndClear(0, length, pageSize, words);
    }

    /**
     * Logs a write of {@code [address, address + length)} to the shared mappings it touches (a device's explicit
     * {@code markDirty}; {@link ServerDmaSpace} marks its own writes on the mapping it holds). Nothing when logging
     * is off; unmapped bytes are ignored.
     */
    @Override
    public void markDirty(long address, long length) {
        if (logPageShift < 0 || length <= 0) {
            return;
        }
        long cursor = address;
        long end = address + length; // callers keep ranges below 2^64
        while (Long.compareUnsigned(cursor, end) < 0) {
            Mapping m = find(cursor);
            if (m == null) {
                Map.Entry<Long, Mapping> next = mappings.higherEntry(cursor);
                if (next == null || Long.compareUnsigned(next.getKey(), end) >= 0) {
                    return;
                }
                cursor = next.getKey();
                continue;
            }
            long n = Long.compareUnsigned(end - 1, m.last()) <= 0 ? end - cursor : m.last() - cursor + 1;
            m.markDirty(cursor, n);
            cursor += n;
            if (n <= 0) {
                return;
            }
        }
    }

    /**
     * Drops every mapping without waiting (the client is gone): new accesses fail at once; each mapping's memory
     * is unmapped and its fd closed when its last access in flight finishes (at once if none is).
     */
    public void clear() {
        retireAll();
    }

    private List<CompletableFuture<Void>> retireAll() {
        List<Mapping> removed;
        synchronized (this) {
            removed = new ArrayList<>(mappings.values());
            mappings.clear();
        }
        List<CompletableFuture<Void>> released = new ArrayList<>(removed.size());
        for (Mapping m : removed) {
            released.add(m.retire());
        }
        return released;
    }

    /** How many mappings the table holds (unmaps in progress not counted). */
    public int size() {
        return mappings.size();
    }

    /** The mappings, by address (unsigned order). */
    public List<DmaRange> ranges() {
        List<DmaRange> ranges = new ArrayList<>(mappings.size());
        for (Mapping m : mappings.values()) {
            ranges.add(m.range());
        }
        return ranges;
    }

    /** The mapping containing {@code address}, or null. Lock-free. */
    Mapping find(long address) {
        Map.Entry<Long, Mapping> e = mappings.floorEntry(address);
        if (e == null) {
            return null;
        }
        Mapping m = e.getValue();
        return Long.compareUnsigned(address, m.last()) <= 0 ? m : null;
    }

    /** The one mapping containing all of {@code [address, address + length)}, or null. Lock-free. */
    Mapping find(long address, long length) {
        Mapping m = find(address);
        return m != null && m.contains(address, length) ? m : null;
    }

    private static <T> CompletableFuture<T> failed(int errno, String message) {
        return CompletableFuture.failedFuture(new VfioUserProtocolException(errno, message));
    }

    private static VfioUserProtocolException invalid(int errno, String message) {
        return new VfioUserProtocolException(errno, message);
    }

    static String hex(long value) {
        return "0x" + Long.toHexString(value);
    }

    private static String range(long address, long size) {
        return "[" + hex(address) + ", +" + hex(size) + ")";
    }

    @Override
    public String toString() {
        return "DmaTable" + mappings.values();
    }
}
