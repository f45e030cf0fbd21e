package io.vfiouser.codec.payload;

import io.netty.buffer.ByteBuf;

/**
 * {@code VFIO_REGION_INFO_CAP_TYPE} (id 2): the type of a device-specific region (index 9 and up).
 *
 * <pre>
 * +0   header (id 2, version 1, next)
 * +8   u32 type
 * +12  u32 subtype
 * </pre>
 */
public record TypeCapability(int type, int subtype) implements RegionCapability {
    public static final int ID = 2;
    public static final int SIZE = 16;

    @Override
    public int id() {
        return ID;
    }

    @Override
    public int encodedSize() {
        return SIZE;
    }

    @Override
    public void encodeBody(ByteBuf out) {
        out.writeIntLE(type);
        out.writeIntLE(subtype);
    }
}
