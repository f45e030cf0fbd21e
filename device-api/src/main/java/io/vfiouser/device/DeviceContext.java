package io.vfiouser.device;

import java.lang.foreign.MemorySegment;
import org.apache.logging.log4j.Logger;

/** What a device gets while a client is attached. */
public interface DeviceContext {
    /** Guest memory, as the client mapped it. */
    DmaSpace dma();

    /** Interrupts towards the client. */
    Interrupts interrupts();

    /** The device's logger ({@code io.vfiouser.device.<name>}). */
    Logger log();

    /**
     * The shared memory of a memory-backed region (the same bytes the client may mmap); valid for the life of
     * the device, across clients. For a hybrid region use {@link #areaMemory}.
     *
     * @throws IllegalArgumentException if {@code region} is not memory-backed
     */
    MemorySegment regionMemory(int region);

    /**
     * The shared memory of mmappable area {@code area} (its index in {@link Region#mmapAreas()}) of a memory-backed
     * or hybrid region: offset 0 is the area's first byte. The client sees the same bytes through its mapping and
     * through REGION_READ/REGION_WRITE inside the area, so what the device writes here the client reads, and the
     * other way round. The server owns the mapping: it is valid while the device is hosted, across clients, and
     * every access after the device stopped being served fails with {@link IllegalStateException} instead of
     * touching unmapped memory. Device code runs concurrently with the client's own accesses through its mapping:
     * use {@code VarHandle} accesses (acquire/release) for values both sides write.
     *
     * @throws IllegalArgumentException if the region has no such area
     */
    MemorySegment areaMemory(int region, int area);
}
