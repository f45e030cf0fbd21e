package io.vfiouser.codec.payload;

import static io.vfiouser.codec.payload.Payloads.requireArgszAtLeast;
import static io.vfiouser.codec.payload.Payloads.requireLength;

import io.netty.buffer.ByteBuf;

/**
 * {@code VFIO_USER_DMA_MAP} request (spec §3.2); the reply has no payload. At most one fd accompanies it: the file
 * that backs the guest memory, to be mapped at {@link #offset()}. The message owns that fd and closes it once sent
 * (the server maps its own copy), so a client that keeps the memory sends a duplicate ({@code GuestMemory.dupFd()}
 * or {@code FdSet.ofDuplicates}). Without an fd the server reaches the range through DMA_READ/DMA_WRITE messages
 * the client answers. {@code of(flags, offset, address, size)}: {@code offset} is the position in the file,
 * {@code address} the guest (DMA) address the device uses; for memory mapped from its start, offset 0.
 *
 * <pre>
 * P+0   u32 argsz    32
 * P+4   u32 flags    READ 0x1, WRITE 0x2 (libvfio-user extensions MMAP 0x4, FILE_IO 0x8)
 * P+8   u64 offset   file offset within the fd; 0 without fd
 * P+16  u64 address  DMA address (IOVA)
 * P+24  u64 size     length in bytes
 * </pre>
 */
public record DmaMapRequest(long argsz, int flags, long offset, long address, long size) implements VfioUserPayload {
    public static final int SIZE = 32;
    public static final int FLAG_READ = 0x1;
    public static final int FLAG_WRITE = 0x2;
    /** libvfio-user extension: map the fd (the default when an fd is present). */
    public static final int FLAG_MMAP = 0x4;
    /** libvfio-user extension: access the fd with pread/pwrite instead of mmap. */
    public static final int FLAG_FILE_IO = 0x8;

    public DmaMapRequest {
        Payloads.requireU32(argsz, "argsz");
    }

    /** A request with {@code argsz} 32. */
    public static DmaMapRequest of(int flags, long offset, long address, long size) {
        return new DmaMapRequest(SIZE, flags, offset, address, size);
    }

    /** {@code EINVAL} if the payload or argsz is below 32. */
    public static DmaMapRequest decode(ByteBuf in) {
        requireLength(in, SIZE, "DMA_MAP");
        long argsz = in.readUnsignedIntLE();
        requireArgszAtLeast(argsz, SIZE, "DMA_MAP");
        return new DmaMapRequest(argsz, in.readIntLE(), in.readLongLE(), in.readLongLE(), in.readLongLE());
    }

    @Override
    public int encodedSize() {
        return SIZE;
    }

    @Override
    public void encode(ByteBuf out) {
        out.writeIntLE((int) argsz);
        out.writeIntLE(flags);
        out.writeLongLE(offset);
        out.writeLongLE(address);
        out.writeLongLE(size);
    }
}
