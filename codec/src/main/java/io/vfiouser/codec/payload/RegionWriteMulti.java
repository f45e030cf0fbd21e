package io.vfiouser.codec.payload;

import static io.vfiouser.codec.payload.Payloads.requireLength;

import io.netty.buffer.ByteBuf;
import io.vfiouser.codec.VfioUserProtocolException;
import java.util.List;

/**
 * {@code VFIO_USER_REGION_WRITE_MULTI} request (spec §3.15): posted small writes, applied in order.
 *
 * <pre>
 * P+0   u64 wr_cnt   number of entries
 * P+8   wr_cnt x {@link WriteMultiEntry} (24 bytes each)
 * </pre>
 *
 * <p>Decoding requires the payload to hold {@code wr_cnt} entries, each with a count of 1 to 8.
 */
public record RegionWriteMulti(List<WriteMultiEntry> entries) implements VfioUserPayload {
    public static final int FIXED_SIZE = 8;

    public RegionWriteMulti {
        entries = List.copyOf(entries);
    }

    public static RegionWriteMulti decode(ByteBuf in) {
        requireLength(in, FIXED_SIZE, "REGION_WRITE_MULTI");
        long n = in.readLongLE();
        if (n < 0 || n > in.readableBytes() / WriteMultiEntry.SIZE) {
            throw VfioUserProtocolException.invalid("REGION_WRITE_MULTI announces " + Long.toUnsignedString(n)
                    + " entries but carries " + in.readableBytes() + " bytes of entries");
        }
        WriteMultiEntry[] entries = new WriteMultiEntry[(int) n];
        for (int i = 0; i < entries.length; i++) {
            long offset = in.readLongLE();
            int region = in.readIntLE();
            int count = in.readIntLE();
            long data = in.readLongLE();
            if (count < 1 || count > WriteMultiEntry.MAX_COUNT) {
                throw VfioUserProtocolException.invalid("REGION_WRITE_MULTI entry " + i + " has count "
                        + Integer.toUnsignedString(count) + ", not 1.." + WriteMultiEntry.MAX_COUNT);
            }
            entries[i] = new WriteMultiEntry(offset, region, count, data);
        }
        in.skipBytes(in.readableBytes());
        return new RegionWriteMulti(List.of(entries));
    }

    @Override
    public int encodedSize() {
        return FIXED_SIZE + WriteMultiEntry.SIZE * entries.size();
    }

    @Override
    public void encode(ByteBuf out) {
        out.writeLongLE(entries.size());
        for (WriteMultiEntry entry : entries) {
            out.writeLongLE(entry.offset());
            out.writeIntLE(entry.region());
            out.writeIntLE(entry.count());
            out.writeLongLE(entry.data());
        }
    }
}
