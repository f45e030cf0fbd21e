package io.vfiouser.codec.payload;

import static io.vfiouser.codec.payload.Payloads.requireLength;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;

/**
 * The data of the {@code DMA_LOGGING_REPORT} device feature (spec §3.16, the kernel's
 * {@code vfio_device_feature_dma_logging_report}): the range a GET asks about; its reply repeats these 24 bytes
 * and adds the dirty bitmap.
 *
 * <pre>
 * P+8   u64 iova
 * P+16  u64 length
 * P+24  u64 page_size    one bitmap bit per page of this size
 * P+32  bitmap           reply only: {@link #bitmapSize()} bytes, an array of u64; page p is bit p % 64 of word
 *                        p / 64 (bit p % 8 of byte p / 8); bits beyond the range are 0
 * </pre>
 */
public record DmaLoggingReport(long iova, long length, long pageSize) {
    public static final int SIZE = 24;

    /** Reads the 24 bytes from the feature data (not consumed); {@code EINVAL} if there are fewer. */
    public static DmaLoggingReport decode(ByteBuf data) {
        requireLength(data, SIZE, "DMA_LOGGING_REPORT data");
        int at = data.readerIndex();
        return new DmaLoggingReport(data.getLongLE(at), data.getLongLE(at + 8), data.getLongLE(at + 16));
    }

    /**
     * Bytes of bitmap for {@code length} bytes in pages of {@code pageSize}: one bit per page, rounded up to whole
     * u64 words; -1 if {@code pageSize} is not a power of two or the bitmap would not fit in an int.
     */
    public static long bitmapSize(long length, long pageSize) {
        if (pageSize <= 0 || Long.bitCount(pageSize) != 1) {
            return -1;
        }
        long pages = Long.divideUnsigned(length, pageSize) + (Long.remainderUnsigned(length, pageSize) != 0 ? 1 : 0);
        long words = (pages >>> 6) + ((pages & 63) != 0 ? 1 : 0);
        return words < 0 || words > Integer.MAX_VALUE / 8 ? -1 : words * 8;
    }

    /** The size of the bitmap this report's reply carries (see {@link #bitmapSize(long, long)}). */
    public long bitmapSize() {
        return bitmapSize(length, pageSize);
    }

    /** The 24 bytes, as a new heap buffer (the caller owns it). */
    public ByteBuf encode() {
        return Unpooled.buffer(SIZE, SIZE).writeLongLE(iova).writeLongLE(length).writeLongLE(pageSize);
    }
}
