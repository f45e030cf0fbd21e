package io.vfiouser.codec.payload;

import static io.vfiouser.codec.payload.Payloads.requireLength;

import io.netty.buffer.ByteBuf;
import io.vfiouser.codec.VfioUserProtocolException;

/**
 * {@code VFIO_USER_DMA_UNMAP} reply (spec §3.3): the request's 24 bytes echoed; with GET_DIRTY_BITMAP also the
 * 16-byte bitmap header and {@code bitmapSize} bytes of bitmap (1 bit per page, LSB first). A header-only reply,
 * which QEMU also accepts, decodes to a {@code null} payload.
 *
 * @param bitmap the dirty bitmap (owned; released with the message) if and only if GET_DIRTY_BITMAP is set
 */
public record DmaUnmapReply(long argsz, int flags, long address, long size, long bitmapPageSize, long bitmapSize,
        ByteBuf bitmap) implements VfioUserPayload {

    public DmaUnmapReply {
        Payloads.requireU32(argsz, "argsz");
        boolean withBitmap = (flags & DmaUnmapRequest.FLAG_GET_DIRTY_BITMAP) != 0;
        if (withBitmap != (bitmap != null)) {
            throw new IllegalArgumentException("a bitmap goes with GET_DIRTY_BITMAP, and only with it");
        }
        Payloads.requireDataLength(bitmap, bitmapSize, "DMA_UNMAP bitmap");
    }

    /** The reply to an unmap without dirty bitmap: the request echoed. */
    public static DmaUnmapReply echo(DmaUnmapRequest request) {
        return new DmaUnmapReply(request.argsz(), request.flags(), request.address(), request.size(), 0, 0, null);
    }

    /** The reply to a GET_DIRTY_BITMAP unmap: the request echoed with {@code bitmap} (ownership moves in). */
    public static DmaUnmapReply withBitmap(DmaUnmapRequest request, ByteBuf bitmap) {
        return new DmaUnmapReply(request.argsz(), request.flags(), request.address(), request.size(),
                request.bitmapPageSize(), bitmap.readableBytes(), bitmap);
    }

    /** A header-only reply decodes to {@code null}; otherwise {@code EINVAL} if shorter than its layout. */
    public static DmaUnmapReply decode(ByteBuf in) {
        if (!in.isReadable()) {
            return null;
        }
        requireLength(in, DmaUnmapRequest.SIZE, "DMA_UNMAP reply");
        int length = in.readableBytes();
        long argsz = in.readUnsignedIntLE();
        int flags = in.readIntLE();
        long address = in.readLongLE();
        long size = in.readLongLE();
        if ((flags & DmaUnmapRequest.FLAG_GET_DIRTY_BITMAP) == 0) {
            return new DmaUnmapReply(argsz, flags, address, size, 0, 0, null);
        }
        if (length < DmaUnmapRequest.SIZE_WITH_BITMAP) {
            throw VfioUserProtocolException.invalid("DMA_UNMAP reply with GET_DIRTY_BITMAP has a " + length
                    + "-byte payload, needs " + DmaUnmapRequest.SIZE_WITH_BITMAP);
        }
        long bitmapPageSize = in.readLongLE();
        long bitmapSize = in.readLongLE();
        ByteBuf bitmap = Payloads.readAtLeast(in, bitmapSize, "DMA_UNMAP reply");
        return new DmaUnmapReply(argsz, flags, address, size, bitmapPageSize, bitmapSize, bitmap);
    }

    @Override
    public ByteBuf data() {
        return bitmap;
    }

    @Override
    public int encodedSize() {
        return bitmap == null ? DmaUnmapRequest.SIZE : DmaUnmapRequest.SIZE_WITH_BITMAP + bitmap.readableBytes();
    }

    @Override
    public void encode(ByteBuf out) {
        out.writeIntLE((int) argsz);
        out.writeIntLE(flags);
        out.writeLongLE(address);
        out.writeLongLE(size);
        if (bitmap != null) {
            out.writeLongLE(bitmapPageSize);
            out.writeLongLE(bitmapSize);
        }
    }
}
