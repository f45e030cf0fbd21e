package io.vfiouser.client;

import io.vfiouser.transport.FdSet;
import io.vfiouser.transport.linux.ErrnoException;
import io.vfiouser.transport.linux.Linux;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * Guest memory as a client owns it: a memfd mapped into this process, to be handed to a server with DMA_MAP (the
 * server maps the same pages) or served through DMA_READ/DMA_WRITE messages when mapped without an fd.
 * {@link #close()} unmaps it and closes the memfd.
 *
 * <p>Sharing it, as a VMM shares guest RAM:
 *
 * <pre>{@code
 * GuestMemory ram = GuestMemory.allocate(0x10000000L, 1 << 20);
 * client.call(VfioUserCommand.DMA_MAP,
 *         DmaMapRequest.of(DmaMapRequest.FLAG_READ | DmaMapRequest.FLAG_WRITE, 0, ram.iova(), ram.size()),
 *         FdSet.ofDuplicates(ram.fd())).get().release();   // the message closes its duplicate once sent
 * ram.segment().set(ValueLayout.JAVA_INT, 0, 42);          // the device reads 42 at 0x10000000
 * }</pre>
 *
 * Without an fd (the same request with {@code FdSet.EMPTY}) the server reads and writes the memory with DMA_READ
 * and DMA_WRITE messages, which the client answers from the memories given to
 * {@link VfioUserClient#serveDma(GuestMemory)}: call it before the DMA_MAP. The memory stays this object's in both
 * cases: DMA_UNMAP it (or close the client) before {@link #close()}, as a VMM unmaps before it frees RAM; the
 * server's mapping of a shared fd is its own, but a DMA message the client must answer from a closed memory fails.
 */
public final class GuestMemory implements AutoCloseable {
    private final long iova;
    private final long size;
    private final int memfd;
    private final Arena arena;
    private final MemorySegment segment;

    private GuestMemory(long iova, long size, int memfd, Arena arena, MemorySegment segment) {
        this.iova = iova;
        this.size = size;
        this.memfd = memfd;
        this.arena = arena;
        this.segment = segment;
    }

    /** {@code size} bytes of zeroed shared memory that the guest sees at DMA address {@code iova}. */
    public static GuestMemory allocate(long iova, long size) throws ErrnoException {
        int fd = Linux.memfdCreate("vfio-user-guest");
        Arena arena = Arena.ofShared();
        try {
            Linux.ftruncate(fd, size);
            MemorySegment segment = Linux.mmap(fd, 0, size, Linux.PROT_READ | Linux.PROT_WRITE, arena);
            return new GuestMemory(iova, size, fd, arena, segment);
        } catch (ErrnoException | RuntimeException e) {
            arena.close();
            FdSet.closeQuietly(fd);
            throw e;
        }
    }

    /** The DMA address of the first byte. */
    public long iova() {
        return iova;
    }

    public long size() {
        return size;
    }

    /** The whole memory, for reading and writing what the "guest" sees. */
    public MemorySegment segment() {
        return segment;
    }

    /** Whether {@code [address, address + length)} lies inside this memory. */
    public boolean contains(long address, long length) {
        return length >= 0 && address >= iova && address - iova <= size - length;
    }

    /** The memory at DMA address {@code address}; throws if the range is not inside. */
    public MemorySegment at(long address, long length) {
        if (!contains(address, length)) {
            throw new IndexOutOfBoundsException("0x" + Long.toHexString(address) + "+" + length + " outside "
                    + this);
        }
        return segment.asSlice(address - iova, length);
    }

    /** A duplicate of the memfd, for a DMA_MAP message (the message owns and closes it), as {@code ofDuplicates}. */
    public int dupFd() throws ErrnoException {
        return Linux.dup(memfd);
    }

    /** The memfd itself, still owned by this object: never hand it to {@code FdSet.of}, which would close it. */
    public int fd() {
        return memfd;
    }

    @Override
    public void close() {
        arena.close();
        FdSet.closeQuietly(memfd);
    }

    @Override
    public String toString() {
        return "GuestMemory[0x" + Long.toHexString(iova) + "+0x" + Long.toHexString(size) + "]";
    }
}
