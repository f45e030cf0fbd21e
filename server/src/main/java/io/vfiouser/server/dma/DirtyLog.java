package io.vfiouser.server.dma;

/**
 * Where writes to guest memory are recorded for dirty-page logging (live migration). {@link ServerDmaSpace} calls
 * it for every write the device makes: {@link ServerDmaSpace#write}, {@link ServerDmaSpace#withSegment} with
 * {@link io.vfiouser.device.Access#WRITE}, and explicit {@link ServerDmaSpace#markDirty} calls. Ranges may lie in mappings the client
 * serves with DMA messages; the client sees those writes itself, so an implementation that keeps bitmaps only for
 * shared mappings ignores them.
 *
 * <p>Called from any thread, concurrently, before the mapping written to can finish unmapping; implementations
 * must be thread-safe and must not block.
 */
@FunctionalInterface
public interface DirtyLog {
    /** Records nothing: dirty-page logging is off. */
    DirtyLog NONE = (address, length) -> {
    };

    /** Records that {@code [address, address + length)} (DMA addresses) was written. */
    void markDirty(long address, long length);
}
