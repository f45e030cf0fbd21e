package io.vfiouser.codec.payload;

/**
 * One write of a {@link RegionWriteMulti} request, 24 bytes:
 *
 * <pre>
 * +0   u64 offset
 * +8   u32 region
 * +12  u32 count   1..8
 * +16  u8[8] data  the first count bytes are written
 * </pre>
 *
 * @param data the 8 data bytes as a little-endian u64: byte {@code i} is {@code (data >>> 8*i) & 0xFF}
 */
public record WriteMultiEntry(long offset, int region, int count, long data) {
    public static final int SIZE = 24;
    /** Largest {@link #count()}: the data field holds 8 bytes. */
    public static final int MAX_COUNT = 8;

    public WriteMultiEntry {
        if (count < 1 || count > MAX_COUNT) {
            throw new IllegalArgumentException("count must be 1.." + MAX_COUNT + ": " + count);
        }
    }
}
