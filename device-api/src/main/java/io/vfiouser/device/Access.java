package io.vfiouser.device;

/**
 * The direction of a memory access, named from the side that performs it, so that a call says what it will do
 * ({@code dma.withSegment(address, length, Access.WRITE, segment -> ...)}) where a bare {@code true} said nothing.
 *
 * <p>For guest memory ({@link DmaSpace}) the device is the side that accesses: {@link #READ} means the device
 * reads guest memory (the mapping needs the client's READ permission, and the memory is not changed), {@link #WRITE}
 * means the device writes it (the mapping needs WRITE, and the bytes are logged as dirty for migration). For a
 * region access (REGION_READ, REGION_WRITE) the client is the side that accesses: {@link #READ} means the client
 * reads the region, {@link #WRITE} means it writes the region.
 */
public enum Access {
    /** The accessing side reads: the device reads guest memory, or the client reads a region. */
    READ,
    /** The accessing side writes: the device writes guest memory, or the client writes a region. */
    WRITE
}
