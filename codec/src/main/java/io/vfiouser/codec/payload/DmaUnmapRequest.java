package io.vfiouser.codec.payload;

import static io.vfiouser.codec.payload.Payloads.requireArgszAtLeast;
import static io.vfiouser.codec.payload.Payloads.requireArgszAtMost;
import static io.vfiouser.codec.payload.Payloads.requireLength;

import io.netty.buffer.ByteBuf;
import io.vfiouser.codec.VfioUserProtocolException;

/**
 * {@code VFIO_USER_DMA_UNMAP} request (spec §3.3); the reply is a {@link DmaUnmapReply}.
 *
 * <pre>
 * P+0   u32 argsz            max reply payload; 24, or 40 + bitmap size with GET_DIRTY_BITMAP
 * P+4   u32 flags            GET_DIRTY_BITMAP 0x1 (legacy), UNMAP_ALL 0x2
 * P+8   u64 address
 * P+16  u64 size
 * P+24  u64 bitmap.pgsize    only with GET_DIRTY_BITMAP
 * P+32  u64 bitmap.size      only with GET_DIRTY_BITMAP: bytes of bitmap the reply carries
 * </pre>
 *
 * <p>{@link #bitmapPageSize()} and {@link #bitmapSize()} are 0 and not encoded without GET_DIRTY_BITMAP.
 * Decoding checks the sizes (payload and argsz at least 24, or 40 and 40 + bitmap size with GET_DIRTY_BITMAP;
 * argsz at most 1 MiB); which flag combinations are valid is the dispatcher's to check.
 */
public record DmaUnmapRequest(long argsz, int flags, long address, long size, long bitmapPageSize, long bitmapSize)
        implements VfioUserPayload {
    public static final int SIZE = 24;
    /** Size with the bitmap header (GET_DIRTY_BITMAP). */
    public static final int SIZE_WITH_BITMAP = 40;
    public static final int FLAG_GET_DIRTY_BITMAP = 0x1;
    public static final int FLAG_UNMAP_ALL = 0x2;

    public DmaUnmapRequest {
        Payloads.requireU32(argsz, "argsz");
    }

    /** An unmap of one mapping without dirty bitmap; argsz 24. */
    public static DmaUnmapRequest of(int flags, long address, long size) {
        return new DmaUnmapRequest(SIZE, flags, address, size, 0, 0);
    }

    public static DmaUnmapRequest decode(ByteBuf in) {
        requireLength(in, SIZE, "DMA_UNMAP");
        int length = in.readableBytes();
        long argsz = in.readUnsignedIntLE();
        int flags = in.readIntLE();
        long address = in.readLongLE();
        long size = in.readLongLE();
        requireArgszAtLeast(argsz, SIZE, "DMA_UNMAP");
        requireArgszAtMost(argsz, Payloads.MAX_ARGSZ, "DMA_UNMAP");
        if ((flags & FLAG_GET_DIRTY_BITMAP) == 0) {
            return new DmaUnmapRequest(argsz, flags, address, size, 0, 0);
        }
        if (length < SIZE_WITH_BITMAP) {
            throw VfioUserProtocolException.invalid(
                    "DMA_UNMAP with GET_DIRTY_BITMAP has a " + length + "-byte payload, needs " + SIZE_WITH_BITMAP);
        }
        long bitmapPageSize = in.readLongLE();
        long bitmapSize = in.readLongLE();
        if (bitmapSize < 0 || bitmapSize > argsz - SIZE_WITH_BITMAP) {
            throw VfioUserProtocolException.invalid("DMA_UNMAP argsz " + argsz
                    + " cannot hold a bitmap of " + Long.toUnsignedString(bitmapSize) + " bytes");
        }
        return new DmaUnmapRequest(argsz, flags, address, size, bitmapPageSize, bitmapSize);
    }

    public boolean hasDirtyBitmap() {
        return (flags & FLAG_GET_DIRTY_BITMAP) != 0;
    }

    @Override
    public int encodedSize() {
        return hasDirtyBitmap() ? SIZE_WITH_BITMAP : SIZE;
    }

    @Override
    public void encode(ByteBuf out) {
        out.writeIntLE((int) argsz);
        out.writeIntLE(flags);
        out.writeLongLE(address);
        out.writeLongLE(size);
        if (hasDirtyBitmap()) {
            out.writeLongLE(bitmapPageSize);
            out.writeLongLE(bitmapSize);
        }
    }
}
