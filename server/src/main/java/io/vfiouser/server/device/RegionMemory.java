package io.vfiouser.server.device;

import io.vfiouser.device.Region;
import io.vfiouser.transport.FdSet;
import io.vfiouser.transport.linux.ErrnoException;
import io.vfiouser.transport.linux.Linux;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * The shared memory behind a memory-backed region: a memfd of the region's size, mapped into the server. The
 * same pages are what a client mmaps from the fd handed out with DEVICE_GET_REGION_INFO. The memfd is sealed
 * against shrinking and growing, so no client can make the server's accesses fault. Lives as long as the hosted
 * device, across clients.
 */
public final class RegionMemory implements AutoCloseable {
    private final Region region;
    private final int memfd;
    private final Arena arena;
    private final MemorySegment segment;

    public RegionMemory(String deviceName, Region region) throws ErrnoException {
        this.region = region;
        this.memfd = Linux.memfdCreate("vfio-user-" + deviceName + "-region" + region.index());
        this.arena = Arena.ofShared();
        try {
            Linux.ftruncate(memfd, region.size());
            // The client gets this fd to mmap: sealed, it cannot shrink the file under the server's own mapping.
            Linux.addSeals(memfd, Linux.F_SEAL_SHRINK | Linux.F_SEAL_GROW | Linux.F_SEAL_SEAL);
            this.segment = Linux.mmap(memfd, 0, region.size(), Linux.PROT_READ | Linux.PROT_WRITE, arena);
        } catch (ErrnoException | RuntimeException e) {
            arena.close();
            FdSet.closeQuietly(memfd);
            throw e;
        }
    }

    public Region region() {
        return region;
    }

    public MemorySegment segment() {
        return segment;
    }

    /** A duplicate of the memfd for a reply; the reply owns it. */
    public int dupFd() throws ErrnoException {
        return Linux.dup(memfd);
    }

    @Override
    public void close() {
        arena.close();
        FdSet.closeQuietly(memfd);
    }
}
