package io.vfiouser.codec.payload;

import static io.vfiouser.codec.payload.Payloads.requireArgszAtLeast;
import static io.vfiouser.codec.payload.Payloads.requireLength;

import io.netty.buffer.ByteBuf;

/**
 * {@code VFIO_USER_MIG_DATA_READ} request (spec §3.17); the reply is a {@link MigData}.
 *
 * <pre>
 * P+0   u32 argsz   at least 8 + size
 * P+4   u32 size    bytes wanted
 * </pre>
 */
public record MigDataRead(long argsz, int size) implements VfioUserPayload {
    public static final int SIZE = 8;

    public MigDataRead {
        Payloads.requireU32(argsz, "argsz");
    }

    /** A request for {@code size} bytes with argsz 8 + size. */
    public static MigDataRead of(int size) {
        return new MigDataRead(SIZE + size, size);
    }

    /** {@code EINVAL} if the payload is below 8 bytes or argsz below 8 + size. */
    public static MigDataRead decode(ByteBuf in) {
        requireLength(in, SIZE, "MIG_DATA_READ");
        long argsz = in.readUnsignedIntLE();
        int size = in.readIntLE();
        requireArgszAtLeast(argsz, SIZE + Integer.toUnsignedLong(size), "MIG_DATA_READ");
        in.skipBytes(in.readableBytes());
        return new MigDataRead(argsz, size);
    }

    @Override
    public int encodedSize() {
        return SIZE;
    }

    @Override
    public void encode(ByteBuf out) {
        out.writeIntLE((int) argsz);
        out.writeIntLE(size);
    }
}
