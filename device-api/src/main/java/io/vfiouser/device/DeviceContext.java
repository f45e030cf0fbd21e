package io.vfiouser.device;

import java.lang.foreign.MemorySegment;
import org.apache.logging.log4j.Logger;

/**
 * What a device gets while a client is attached: from {@link VfioUserDevice#attached} until
 * {@link VfioUserDevice#detached}.
 *
 * <h2>Threads</h2>
 * Every method may be called from any thread: from the device's callbacks, from {@link #scheduler()} tasks, and
 * from threads of the device's own, concurrently. {@link #dma()} accesses in flight hold their mapping (an unmap
 * waits for them); {@link #interrupts()} never blocks on the client (a full or tampered eventfd drops the
 * signal). After
 * {@link VfioUserDevice#detached} the context is the old client's: DMA through it fails (the mappings are gone)
 * and interrupts go nowhere, so a thread of the device's own should stop using it by then (the scheduler's tasks
 * stop by themselves).
 */
public interface DeviceContext {
    /**
     * Guest memory, as the client mapped it: {@link DmaSpace#read}/{@link DmaSpace#write} copy through the memory
     * the client shared as fds, and use DMA_READ/DMA_WRITE messages only where it shared none. Any thread.
     */
    DmaSpace dma();

    /**
     * The same guest memory, but {@link DmaSpace#read}/{@link DmaSpace#write} always go as DMA_READ/DMA_WRITE
     * messages to the client, also where it shared an fd: the client itself reads and writes its memory, as
     * libvfio-user's {@code vfu_sgl_read/write} have it do (a device ported from libvfio-user, or a client that
     * watches or translates every device access). Transfers are cut to the client's {@code max_data_xfer_size} and
     * go out in order with the rest of the server's messages; the range must be mapped with the needed permission
     * all the same. {@code withSegment}, {@code markDirty} and {@code isMapped} are those of {@link #dma()}.
     *
     * <p>A separate space rather than a flag per call: the choice belongs to a device (or to one of its engines),
     * which hands the space it chose to code that only knows {@link DmaSpace}, and {@link #dma()} keeps its
     * zero-copy path for everyone else.
     *
     * <p>The default, for contexts without a client to send messages to (test fakes), is {@link #dma()}: the device
     * reads and writes the same bytes either way. Any thread.
     */
    default DmaSpace dmaByMessage() {
        return dma();
    }

    /** Interrupts towards the client. Any thread. */
    Interrupts interrupts();

    /** The device's logger ({@code io.vfiouser.device.<name>}). Any thread. */
    Logger log();

    /**
     * A scheduler bound to this client: tasks on the connection's event loop, cancelled when the client leaves (see
     * {@link DeviceScheduler}). Any thread.
     *
     * <p>The default is for contexts made outside a server (test fakes written before the scheduler existed) and
     * throws {@link UnsupportedOperationException}; the server's contexts always have one.
     */
    default DeviceScheduler scheduler() {
        throw new UnsupportedOperationException("this DeviceContext (" + getClass().getName()
                + ") has no scheduler");
    }

    /**
     * The shared memory of a memory-backed region (the same bytes the client may mmap); valid for the life of
     * the device, across clients. For a hybrid region use {@link #areaMemory}. Any thread.
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
     * use {@code VarHandle} accesses (acquire/release) for values both sides write. Any thread.
     *
     * @throws IllegalArgumentException if the region has no such area
     */
    MemorySegment areaMemory(int region, int area);
}
