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
     * the device, across clients.
     */
    MemorySegment regionMemory(int region);
}
