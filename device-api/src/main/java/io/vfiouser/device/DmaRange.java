package io.vfiouser.device;

/**
 * A range of guest (DMA) addresses the client mapped.
 *
 * @param address  first DMA address
 * @param size     length in bytes
 * @param readable whether the device may read it
 * @param writable whether the device may write it
 * @param shared   whether it is shared memory the server mapped (else reached through DMA messages)
 */
public record DmaRange(long address, long size, boolean readable, boolean writable, boolean shared) {
    /** Whether {@code [addr, addr + length)} lies inside. */
    public boolean contains(long addr, long length) {
        return length >= 0 && addr >= address && addr - address <= size - length;
    }
}
