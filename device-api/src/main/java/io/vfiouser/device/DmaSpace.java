package io.vfiouser.device;

import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.util.concurrent.CompletableFuture;
import java.util.function.Function;

/**
 * Guest memory as the client mapped it with DMA_MAP. Ranges the client shared as fds are reached directly through
 * {@link MemorySegment}s whose lifetime the framework controls: an unmap waits until accesses in flight are done,
 * and an access after unmap fails with {@link DmaException} instead of touching unmapped memory. Ranges mapped
 * without an fd are reached through DMA_READ/DMA_WRITE messages to the client ({@link #read}/{@link #write} do
 * either, transparently).
 */
public interface DmaSpace {
    /** Copies {@code dst.remaining()} bytes of guest memory at {@code address} into {@code dst}. */
    CompletableFuture<Void> read(long address, ByteBuffer dst);

    /** Copies {@code src.remaining()} bytes into guest memory at {@code address}; logged as dirty. */
    CompletableFuture<Void> write(long address, ByteBuffer src);

    /**
     * Runs {@code action} on the guest memory {@code [address, address + length)} of one shared mapping, which
     * stays mapped until it returns; the segment must not be used afterwards. By default the segment is a private
     * copy of the guest bytes whose changes are written back when {@code action} returns (also when it throws):
     * a client can shrink the file behind its memory at any time, and the JVM's recovery from the resulting
     * SIGBUS is not memory-safe for narrow loads in compiled code, so devices never touch the shared pages
     * directly unless the server is configured for it. With {@link Access#READ} the segment is read-only and the
     * mapping needs READ permission; with {@link Access#WRITE} the segment is writable, the mapping needs WRITE
     * permission, and the range is logged as dirty. Throws {@link DmaException} when the range is not inside one
     * shared mapping with the needed permission, or the memory behind it is gone.
     */
    <T> T withSegment(long address, long length, Access access, Function<MemorySegment, T> action)
            throws DmaException;

    /** Records that the device wrote {@code [address, address + length)} (for dirty-page logging). */
    void markDirty(long address, long length);

    /** Whether {@code [address, address + length)} lies inside one mapping. */
    boolean isMapped(long address, long length);
}
