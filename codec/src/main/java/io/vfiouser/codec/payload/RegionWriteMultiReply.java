package io.vfiouser.codec.payload;

import static io.vfiouser.codec.payload.Payloads.requireLength;

import io.netty.buffer.ByteBuf;

/**
 * {@code VFIO_USER_REGION_WRITE_MULTI} reply (spec §3.15): {@code P+0 u64 wr_cnt}, the number of writes done.
 */
public record RegionWriteMultiReply(long completed) implements VfioUserPayload {
    public static final int SIZE = 8;

    public static RegionWriteMultiReply decode(ByteBuf in) {
        requireLength(in, SIZE, "REGION_WRITE_MULTI reply");
        long completed = in.readLongLE();
        in.skipBytes(in.readableBytes());
        return new RegionWriteMultiReply(completed);
    }

    @Override
    public int encodedSize() {
        return SIZE;
    }

    @Override
    public void encode(ByteBuf out) {
        out.writeLongLE(completed);
    }
}
