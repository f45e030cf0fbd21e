package io.vfiouser.codec.payload;

import static io.vfiouser.codec.payload.Payloads.requireLength;

import io.netty.buffer.ByteBuf;

/**
 * {@code VFIO_USER_REGION_READ} and {@code VFIO_USER_REGION_WRITE} payloads (spec §3.9, §3.10):
 *
 * <pre>
 * P+0   u64 offset  offset in the region
 * P+8   u32 region  region index
 * P+12  u32 count   bytes to access
 * P+16  data        count bytes: READ reply and WRITE request only
 * </pre>
 *
 * <p>READ request and WRITE reply carry no data ({@link #data()} is {@code null}); READ reply and WRITE
 * request carry exactly {@code count} bytes, else {@code EINVAL}. A header-only READ or WRITE reply (libvfio-user
 * answers a count of 0 that way) decodes to a {@code null} payload.
 *
 * @param data the accessed bytes (owned; released with the message), or {@code null}
 */
public record RegionAccess(long offset, int region, int count, ByteBuf data) implements VfioUserPayload {
    public static final int FIXED_SIZE = 16;

    public RegionAccess {
        Payloads.requireDataLength(data, Integer.toUnsignedLong(count), "region access");
    }

    /**
     * Starts an access to region {@code region}; the offset follows by name, then the count or the data:
     * {@code RegionAccess.inRegion(2).atOffset(0x10).count(4)} (a READ request, or a WRITE reply) or
     * {@code RegionAccess.inRegion(2).atOffset(0x10).data(bytes)} (a WRITE request, or a READ reply).
     *
     * <p>Why a chain rather than a factory of three numbers: the wire struct has the offset first, the device API
     * ({@code regionRead(region, offset, ...)}) the region first, and both are plain integers, so a swapped pair
     * would compile and address the wrong register. Naming each at the call site leaves no order to remember.
     */
    public static InRegion inRegion(int region) {
        return new InRegion(region);
    }

    /** An access that knows its region and waits for its offset ({@link #inRegion}). */
    public record InRegion(int region) {
        public At atOffset(long offset) {
            return new At(region, offset);
        }
    }

    /** An access that knows where it goes and waits for its size or its data ({@link #inRegion}). */
    public record At(int region, long offset) {
        /** A READ request, or a WRITE reply: {@code count} bytes, no data. */
        public RegionAccess count(int count) {
            return new RegionAccess(offset, region, count, null);
        }

        /**
         * A WRITE request or READ reply carrying {@code data} (its readable bytes); ownership of {@code data} moves
         * in.
         */
        public RegionAccess data(ByteBuf data) {
            return new RegionAccess(offset, region, data.readableBytes(), data);
        }
    }

    public static RegionAccess decodeReadRequest(ByteBuf in) {
        return decodeWithoutData(in, "REGION_READ");
    }

    public static RegionAccess decodeReadReply(ByteBuf in) {
        return in.isReadable() ? decodeWithData(in, "REGION_READ reply") : null;
    }

    public static RegionAccess decodeWriteRequest(ByteBuf in) {
        return decodeWithData(in, "REGION_WRITE");
    }

    public static RegionAccess decodeWriteReply(ByteBuf in) {
        return in.isReadable() ? decodeWithoutData(in, "REGION_WRITE reply") : null;
    }

    private static RegionAccess decodeWithoutData(ByteBuf in, String what) {
        requireLength(in, FIXED_SIZE, what);
        RegionAccess access = new RegionAccess(in.readLongLE(), in.readIntLE(), in.readIntLE(), null);
        in.skipBytes(in.readableBytes());
        return access;
    }

    private static RegionAccess decodeWithData(ByteBuf in, String what) {
        requireLength(in, FIXED_SIZE, what);
        long offset = in.readLongLE();
        int region = in.readIntLE();
        int count = in.readIntLE();
        ByteBuf data = Payloads.readExactly(in, Integer.toUnsignedLong(count), what);
        return new RegionAccess(offset, region, count, data);
    }

    @Override
    public int encodedSize() {
        return FIXED_SIZE + (data == null ? 0 : data.readableBytes());
    }

    @Override
    public void encode(ByteBuf out) {
        out.writeLongLE(offset);
        out.writeIntLE(region);
        out.writeIntLE(count);
    }
}
