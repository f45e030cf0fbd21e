package io.vfiouser.codec.payload;

import static io.vfiouser.codec.payload.Payloads.requireArgszAtLeast;
import static io.vfiouser.codec.payload.Payloads.requireLength;

import io.netty.buffer.ByteBuf;

/**
 * {@code VFIO_USER_DEVICE_GET_REGION_INFO} request (spec §3.5), 32 bytes of which only argsz and index mean
 * anything; the other fields are written as 0 and ignored when read:
 *
 * <pre>
 * P+0   u32 argsz       reply buffer size the client offers (at least 32)
 * P+4   u32 flags       0
 * P+8   u32 index       region index
 * P+12  u32 cap_offset  0
 * P+16  u64 size        0
 * P+24  u64 offset      0
 * </pre>
 */
public record RegionInfoRequest(long argsz, int index) implements VfioUserPayload {
    public static final int SIZE = 32;

    public RegionInfoRequest {
        Payloads.requireU32(argsz, "argsz");
    }

    /** A request offering the minimal reply size, 32. */
    public static RegionInfoRequest of(int index) {
        return new RegionInfoRequest(SIZE, index);
    }

    /** {@code EINVAL} if the payload or argsz is below 32. */
    public static RegionInfoRequest decode(ByteBuf in) {
        requireLength(in, SIZE, "DEVICE_GET_REGION_INFO");
        long argsz = in.readUnsignedIntLE();
        requireArgszAtLeast(argsz, SIZE, "DEVICE_GET_REGION_INFO");
        in.skipBytes(4);
        int index = in.readIntLE();
        in.skipBytes(in.readableBytes());
        return new RegionInfoRequest(argsz, index);
    }

    @Override
    public int encodedSize() {
        return SIZE;
    }

    @Override
    public void encode(ByteBuf out) {
        out.writeIntLE((int) argsz);
        out.writeIntLE(0);
        out.writeIntLE(index);
        out.writeIntLE(0);
        out.writeLongLE(0);
        out.writeLongLE(0);
    }
}
