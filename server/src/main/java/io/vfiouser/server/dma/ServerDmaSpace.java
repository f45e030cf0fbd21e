package io.vfiouser.server.dma;

import io.vfiouser.codec.VfioUserProtocolException;
import io.vfiouser.device.Access;
import io.vfiouser.device.DmaException;
import io.vfiouser.device.DmaSpace;
import io.vfiouser.transport.linux.Errno;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ReadOnlyBufferException;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.function.Function;

/**
 * The {@link DmaSpace} a device sees, over the {@link DmaTable} of its client's connection.
 *
 * <ul>
 * <li>{@link #read}/{@link #write} copy through the shared memory of mappings with an fd, and send DMA_READ /
 * DMA_WRITE messages (chunked to the client's {@code max_data_xfer_size}) for mappings without one. A range may
 * span adjacent mappings of either kind; each part goes its own way, in address order. Errors: the futures fail
 * with {@link DmaException}: EFAULT (a byte of the range is not mapped, or the range wraps past 2^64), EACCES
 * (read of a mapping without READ, write to one without WRITE), EIO (the memory behind a shared mapping is gone;
 * for message mode: the client failed the message without an errno or the connection is gone), or the errno of
 * the client's error reply. On success the buffer's position has advanced to its limit; the buffer must not be
 * touched before the future completes.</li>
 * <li>{@link #withSegment} runs the device's function on the memory of one shared mapping (read-only for
 * {@link Access#READ}) and holds the mapping for the duration of the call: an unmap waits for it. What the
 * function gets depends on the mapping and the {@link SegmentMode}: the shared memory itself when the client's memfd
 * is sealed against shrinking (QEMU's memory-backend-memfd is, by default), else a private copy
 * ({@link SegmentMode#COPY}, the default: no client can crash the JVM) or the shared memory itself
 * ({@link SegmentMode#DIRECT}: zero-copy, for clients that
 * cannot shrink their memory). Errors: EFAULT (not inside one mapping; mapping without fd: "use read/write";
 * mapping being unmapped), EACCES (as above), EIO (the client shrank the file behind the memory: see
 * {@link MemoryFaults}), E2BIG (COPY of more than {@link #MAX_COPY} bytes).</li>
 * <li>{@link #byMessage()} is the same space with one difference: its {@code read}/{@code write} send DMA_READ /
 * DMA_WRITE messages for every mapping, shared ones included, as libvfio-user's {@code vfu_sgl_read/write} do. The
 * range must still be mapped with the needed permission (EFAULT, EACCES as above: the server asks the client only
 * for memory the client granted); chunks, errors and order are those of message mode.</li>
 * </ul>
 *
 * <p>Message-mode transfers do not hold their mapping: an unmap does not wait for DMA messages in flight, since
 * the client would have to answer them while it waits for its unmap reply (digest 1.6: QEMU serves DMA messages on
 * its main loop, which is blocked while it waits, so waiting would stall both sides until QEMU's timeout). Writes
 * are reported to the {@link DirtyLog}; while the table's dirty-page logging runs, writes to shared mappings are
 * also logged on the mapping, before the mapping is released.
 */
public final class ServerDmaSpace implements DmaSpace {
    /** The largest range {@link #withSegment} copies in {@link SegmentMode#COPY} (larger: E2BIG). */
    public static final long MAX_COPY = 1L << 30;

    private final DmaTable table;
    private final ChunkingMessenger messenger;
    private final SegmentMode segmentMode;
    private volatile DirtyLog dirtyLog;
    private final DmaSpace byMessage = new ByMessage();

    /** A DMA space without dirty-page logging, with {@link SegmentMode#COPY}. */
    public ServerDmaSpace(DmaTable table, DmaMessenger messenger) {
        this(table, messenger, DirtyLog.NONE, SegmentMode.COPY);
    }

    public ServerDmaSpace(DmaTable table, DmaMessenger messenger, DirtyLog dirtyLog, SegmentMode segmentMode) {
        this.table = Objects.requireNonNull(table, "table");
        this.messenger = ChunkingMessenger.of(Objects.requireNonNull(messenger, "messenger"));
        this.dirtyLog = Objects.requireNonNull(dirtyLog, "dirtyLog");
        this.segmentMode = Objects.requireNonNull(segmentMode, "segmentMode");
    }

    public DmaTable table() {
        return table;
    }

    public SegmentMode segmentMode() {
        return segmentMode;
    }

    public DirtyLog dirtyLog() {
        return dirtyLog;
    }

    /** Replaces the dirty log (e.g. {@link DirtyLog#NONE} when logging stops); takes effect for later writes. */
    public void dirtyLog(DirtyLog log) {
        this.dirtyLog = Objects.requireNonNull(log, "log");
    }

    /**
     * This space with {@code read}/{@code write} that always go as DMA messages to the client, also where it shared
     * an fd ({@code DeviceContext.dmaByMessage()}); {@code withSegment}, {@code markDirty} and {@code isMapped} are
     * this space's own.
     */
    public DmaSpace byMessage() {
        return byMessage;
    }

    @Override
    public CompletableFuture<Void> read(long address, ByteBuffer dst) {
        return read(address, dst, false);
    }

    @Override
    public CompletableFuture<Void> write(long address, ByteBuffer src) {
        return transfer(address, src, Access.WRITE, false);
    }

    private CompletableFuture<Void> read(long address, ByteBuffer dst, boolean byMessage) {
        if (dst.isReadOnly()) {
            return CompletableFuture.failedFuture(new ReadOnlyBufferException());
        }
        return transfer(address, dst, Access.READ, byMessage);
    }

    /**
     * Copies through shared memory where the client shared an fd (unless {@code byMessage}), and by DMA messages
     * elsewhere, part after part in address order.
     */
    private CompletableFuture<Void> transfer(long address, ByteBuffer buffer, Access access, boolean byMessage) {
        int start = buffer.position();
        int length = buffer.remaining();
        List<Part> parts;
        try {
            parts = plan(address, length, access);
        } catch (DmaException e) {
            return CompletableFuture.failedFuture(e);
        }
        CompletableFuture<Void> result = new CompletableFuture<>();
        Steps.sequentially(parts.size(), i -> {
            Part part = parts.get(i);
            ByteBuffer piece = buffer.slice(start + part.bufferOffset, (int) part.length);
            if (part.mapping.shared() && !byMessage) {
                try {
                    copyShared(part, piece, access);
                    return CompletableFuture.completedFuture(null);
                } catch (DmaException e) {
                    return CompletableFuture.failedFuture(e);
                }
            }
            return switch (access) {
                case READ -> messenger.read(part.address, piece);
                case WRITE -> messenger.write(part.address, piece);
            };
        }).whenComplete((ok, failure) -> {
            if (access == Access.WRITE && length > 0) {
                dirtyLog.markDirty(address, length);
            }
            if (failure == null) {
                buffer.position(start + length);
                result.complete(null);
            } else {
                result.completeExceptionally(asDmaException(failure, address, length, access));
            }
        });
        return result;
    }

    /** A piece of a transfer that lies in one mapping. */
    private record Part(Mapping mapping, long address, int bufferOffset, long length) {
    }

    /** Splits {@code [address, address + length)} at mapping boundaries; every byte must be mapped and allowed. */
    private List<Part> plan(long address, int length, Access access) throws DmaException {
        List<Part> parts = new ArrayList<>(1);
        if (length == 0) {
            return parts;
        }
        if (Long.compareUnsigned(address + length - 1, address) < 0) {
            throw new DmaException(Errno.EFAULT, "DMA range at " + DmaTable.hex(address) + " of " + length
                    + " bytes wraps past 2^64");
        }
        long cursor = address;
        int done = 0;
        while (done < length) {
            Mapping m = table.find(cursor);
            if (m == null) {
                throw new DmaException(Errno.EFAULT, "DMA range at " + DmaTable.hex(address) + " of " + length
                        + " bytes: nothing is mapped at " + DmaTable.hex(cursor));
            }
            checkPermission(m, access);
            long n = Math.min(length - done, m.last() - cursor + 1);
            parts.add(new Part(m, cursor, done, n));
            cursor += n;
            done += (int) n;
        }
        return parts;
    }

    private static void copyShared(Part part, ByteBuffer piece, Access access) throws DmaException {
        Mapping m = part.mapping;
        if (!m.acquire()) {
            throw beingUnmapped(part.address);
        }
        try {
            long offset = part.address - m.start();
            MemorySegment buffer = MemorySegment.ofBuffer(piece);
            switch (access) {
                case READ -> MemoryFaults.copy(m.memory(), offset, buffer, 0, part.length, part.address);
                case WRITE -> {
                    try {
                        MemoryFaults.copy(buffer, 0, m.memory(), offset, part.length, part.address);
                    } finally {
                        m.markDirty(part.address, part.length); // while held: an unmap's bitmap cannot miss it
                    }
                }
            }
        } finally {
            m.release();
        }
    }

    private static DmaException asDmaException(Throwable failure, long address, int length, Access access) {
        Throwable t = Steps.unwrap(failure);
        if (t instanceof DmaException d) {
            return d;
        }
        int errno = t instanceof VfioUserProtocolException p ? p.errno() : Errno.EIO;
        return new DmaException(errno, "DMA_" + access.name() + " of " + length + " bytes at "
                + DmaTable.hex(address) + " failed: " + t, t);
    }

    @Override
    public <T> T withSegment(long address, long length, Access access, Function<MemorySegment, T> action)
            throws DmaException {
        Objects.requireNonNull(access, "access");
        Objects.requireNonNull(action, "action");
        if (length < 0) {
            throw new IllegalArgumentException("negative length " + length);
        }
        Mapping m = table.find(address, length);
        if (m == null) {
            throw notMapped(address, length);
        }
        checkPermission(m, access);
        if (!m.shared()) {
            throw new DmaException(Errno.EFAULT, "guest memory at " + DmaTable.hex(address)
                    + " was mapped without a file descriptor: reach it with read()/write() (DMA messages)");
        }
        if (!m.acquire()) {
            throw beingUnmapped(address);
        }
        try {
            MemorySegment guest = m.memory().asSlice(address - m.start(), length);
            if (segmentMode == SegmentMode.DIRECT || m.sealed()) {
                return MemoryFaults.apply(access == Access.WRITE ? guest : guest.asReadOnly(), address, action);
            }
            return withCopy(guest, address, access, action);
        } finally {
            if (access == Access.WRITE) {
                if (length > 0) {
                    m.markDirty(address, length); // while held: an unmap's bitmap cannot miss it
                }
                dirtyLog.markDirty(address, length);
            }
            m.release();
        }
    }

    /** {@link SegmentMode#COPY}: the device gets a private copy; the bytes it changed go back afterwards. */
    private static <T> T withCopy(MemorySegment guest, long address, Access access,
            Function<MemorySegment, T> action) throws DmaException {
        long length = guest.byteSize();
        if (length > MAX_COPY) {
            throw new DmaException(Errno.E2BIG, "withSegment of " + length + " bytes at " + DmaTable.hex(address)
                    + " copies at most " + MAX_COPY + " bytes; use read()/write()");
        }
        MemorySegment work = privateCopy(address, length);
        MemoryFaults.copy(guest, 0, work, 0, length, address);
        if (access == Access.READ) {
            return action.apply(work.asReadOnly());
        }
        MemorySegment before = privateCopy(address, length);
        MemorySegment.copy(work, 0, before, 0, length);
        T result;
        try {
            result = action.apply(work);
        } catch (Throwable t) {
            try {
                writeBack(guest, address, before, work);
            } catch (DmaException e) {
                t.addSuppressed(e);
            }
            throw t;
        }
        writeBack(guest, address, before, work);
        return result;
    }

    /** Heap memory of {@code length} bytes aligned like {@code address} modulo 8. */
    private static MemorySegment privateCopy(long address, long length) {
        long misalignment = address & 7;
        long words = (misalignment + length + 7) >>> 3;
        return MemorySegment.ofArray(new long[(int) words]).asSlice(misalignment, length);
    }

    /** Copies the runs of bytes where {@code after} differs from {@code before} to {@code guest}. */
    private static void writeBack(MemorySegment guest, long address, MemorySegment before, MemorySegment after)
            throws DmaException {
        long n = after.byteSize();
        long i = 0;
        while (i < n) {
            long m = after.asSlice(i).mismatch(before.asSlice(i));
            if (m < 0) {
                return;
            }
            long start = i + m;
            long end = start + 1;
            while (end < n && after.get(ValueLayout.JAVA_BYTE, end) != before.get(ValueLayout.JAVA_BYTE, end)) {
                end++;
            }
            MemoryFaults.copy(after, start, guest, start, end - start, address + start);
            i = end;
        }
    }

    /** Logs the write in the table's dirty-page log (when logging runs) and reports it to the {@link DirtyLog}. */
    @Override
    public void markDirty(long address, long length) {
        table.markDirty(address, length);
        dirtyLog.markDirty(address, length);
    }

    @Override
    public boolean isMapped(long address, long length) {
        return length >= 0 && table.find(address, length) != null;
    }

    /** The view {@link #byMessage()} returns: only the path of {@code read}/{@code write} differs. */
    private final class ByMessage implements DmaSpace {
        @Override
        public CompletableFuture<Void> read(long address, ByteBuffer dst) {
            return ServerDmaSpace.this.read(address, dst, true);
        }

        @Override
        public CompletableFuture<Void> write(long address, ByteBuffer src) {
            return transfer(address, src, Access.WRITE, true);
        }

        @Override
        public <T> T withSegment(long address, long length, Access access, Function<MemorySegment, T> action)
                throws DmaException {
            return ServerDmaSpace.this.withSegment(address, length, access, action);
        }

        @Override
        public void markDirty(long address, long length) {
            ServerDmaSpace.this.markDirty(address, length);
        }

        @Override
        public boolean isMapped(long address, long length) {
            return ServerDmaSpace.this.isMapped(address, length);
        }
    }

    /** EACCES unless the client's DMA_MAP granted the permission {@code access} needs. */
    private static void checkPermission(Mapping m, Access access) throws DmaException {
        boolean permitted = switch (access) {
            case READ -> m.readable();
            case WRITE -> m.writable();
        };
        if (!permitted) {
            throw new DmaException(Errno.EACCES, "DMA " + access + " of " + m + " is not permitted");
        }
    }

    private static DmaException notMapped(long address, long length) {
        return new DmaException(Errno.EFAULT, "DMA range at " + DmaTable.hex(address) + " of " + length
                + " bytes is not inside one mapping");
    }

    private static DmaException beingUnmapped(long address) {
        return new DmaException(Errno.EFAULT, "guest memory at " + DmaTable.hex(address) + " is being unmapped");
    }
}
