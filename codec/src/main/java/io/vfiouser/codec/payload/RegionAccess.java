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

    /** A READ request, or a WRITE reply. */
    public static RegionAccess of(long offset, int region, int count) {
        return new RegionAccess(offset, region, count, null);
    }

    /** A WRITE request or READ reply carrying {@code data}; ownership of {@code data} moves in. */
    public static RegionAccess withData(long offset, int region, ByteBuf data) {
        return new RegionAccess(offset, region, data.readableBytes(), data);
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
