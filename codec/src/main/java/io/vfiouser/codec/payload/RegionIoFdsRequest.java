package io.vfiouser.codec.payload;

import static io.vfiouser.codec.payload.Payloads.requireArgszAtLeast;
import static io.vfiouser.codec.payload.Payloads.requireArgszAtMost;
import static io.vfiouser.codec.payload.Payloads.requireLength;

import io.netty.buffer.ByteBuf;

/**
 * {@code VFIO_USER_DEVICE_GET_REGION_IO_FDS} request (spec §3.6), 16 bytes:
 *
 * <pre>
 * P+0   u32 argsz   max reply payload (16..1 MiB)
 * P+4   u32 flags   must be 0 (the dispatcher checks)
 * P+8   u32 index   region index
 * P+12  u32 count   must be 0 (the dispatcher checks)
 * </pre>
 */
public record RegionIoFdsRequest(long argsz, int flags, int index, int count) implements VfioUserPayload {
    public static final int SIZE = 16;

    public RegionIoFdsRequest {
        Payloads.requireU32(argsz, "argsz");
    }

    public static RegionIoFdsRequest of(int argsz, int index) {
        return new RegionIoFdsRequest(argsz, 0, index, 0);
    }

    /** {@code EINVAL} if the payload is below 16 or argsz outside 16..1 MiB. */
    public static RegionIoFdsRequest decode(ByteBuf in) {
        requireLength(in, SIZE, "DEVICE_GET_REGION_IO_FDS");
        long argsz = in.readUnsignedIntLE();
        requireArgszAtLeast(argsz, SIZE, "DEVICE_GET_REGION_IO_FDS");
        requireArgszAtMost(argsz, Payloads.MAX_ARGSZ, "DEVICE_GET_REGION_IO_FDS");
        return new RegionIoFdsRequest(argsz, in.readIntLE(), in.readIntLE(), in.readIntLE());
    }

    @Override
    public int encodedSize() {
        return SIZE;
    }

    @Override
    public void encode(ByteBuf out) {
        out.writeIntLE((int) argsz);
        out.writeIntLE(flags);
        out.writeIntLE(index);
        out.writeIntLE(count);
    }
}
