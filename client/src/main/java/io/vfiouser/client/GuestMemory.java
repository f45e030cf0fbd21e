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

    /** A duplicate of the memfd, for a DMA_MAP message (the message owns and closes it). */
    public int dupFd() throws ErrnoException {
        return Linux.dup(memfd);
    }

    /** The memfd itself, still owned by this object. */
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
