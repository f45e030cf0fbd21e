package io.vfiouser.codec.payload;

import static io.vfiouser.codec.payload.Payloads.requireLength;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.vfiouser.codec.VfioUserProtocolException;
import java.util.ArrayList;
import java.util.List;

/**
 * The data of the {@code DMA_LOGGING_START} and {@code DMA_LOGGING_STOP} device features (spec §3.16, the kernel's
 * {@code vfio_device_feature_dma_logging_control}); STOP carries the same layout and its content is ignored.
 *
 * <pre>
 * P+8   u64 page_size    logging granularity the client asks for (a hint; 0 is invalid)
 * P+16  u32 num_ranges
 * P+20  u32 reserved
 * P+24  num_ranges × { u64 iova, u64 length }
 * </pre>
 *
 * <p>In the kernel the ranges sit behind a user pointer; in vfio-user they follow inline, as here.
 *
 * @param ranges the ranges to log (libvfio-user logs every shared mapping whatever they say)
 */
public record DmaLoggingControl(long pageSize, List<Range> ranges) {
    public static final int FIXED_SIZE = 16;
    public static final int RANGE_SIZE = 16;

    /** One range to log. */
    public record Range(long iova, long length) {
    }

    public DmaLoggingControl {
        ranges = List.copyOf(ranges);
    }

    /**
     * Reads the control from the feature data (not consumed); {@code EINVAL} if shorter than 16 bytes or than
     * its ranges need.
     */
    public static DmaLoggingControl decode(ByteBuf data) {
        requireLength(data, FIXED_SIZE, "DMA_LOGGING control");
        int at = data.readerIndex();
        long pageSize = data.getLongLE(at);
        long count = Integer.toUnsignedLong(data.getIntLE(at + 8));
        if (count > (data.readableBytes() - FIXED_SIZE) / RANGE_SIZE) {
            throw VfioUserProtocolException.invalid("DMA_LOGGING control announces " + count + " ranges in "
                    + data.readableBytes() + " bytes");
        }
        List<Range> ranges = new ArrayList<>((int) count);
        for (int i = 0; i < count; i++) {
            int r = at + FIXED_SIZE + i * RANGE_SIZE;
            ranges.add(new Range(data.getLongLE(r), data.getLongLE(r + 8)));
        }
        return new DmaLoggingControl(pageSize, ranges);
    }

    public int encodedSize() {
        return FIXED_SIZE + ranges.size() * RANGE_SIZE;
    }

    /** The bytes, as a new heap buffer (the caller owns it). */
    public ByteBuf encode() {
        ByteBuf out = Unpooled.buffer(encodedSize(), encodedSize());
        out.writeLongLE(pageSize).writeIntLE(ranges.size()).writeIntLE(0);
        for (Range r : ranges) {
            out.writeLongLE(r.iova()).writeLongLE(r.length());
        }
        return out;
    }
}
