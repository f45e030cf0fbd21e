package io.vfiouser.codec.payload;

import static io.vfiouser.codec.payload.Payloads.requireArgszAtLeast;
import static io.vfiouser.codec.payload.Payloads.requireLength;

import io.netty.buffer.ByteBuf;
import java.util.Objects;

/**
 * Migration data: the {@code VFIO_USER_MIG_DATA_READ} reply and the {@code VFIO_USER_MIG_DATA_WRITE} request
 * (spec §3.17, §3.18), which share one layout; the WRITE reply has no payload.
 *
 * <pre>
 * P+0   u32 argsz   READ reply: 8 + bytes returned; WRITE request: at least 8 + size
 * P+4   u32 size    bytes of data
 * P+8   data        size bytes
 * </pre>
 *
 * <p>Decoding requires the payload to hold {@code size} data bytes; bytes after them are ignored (libvfio-user
 * pads its READ replies to the requested size). A WRITE request also needs argsz of at least 8 + size.
 *
 * @param data the migration data (owned; released with the message)
 */
public record MigData(long argsz, int size, ByteBuf data) implements VfioUserPayload {
    public static final int FIXED_SIZE = 8;

    public MigData {
        Payloads.requireU32(argsz, "argsz");
        Objects.requireNonNull(data, "data");
        Payloads.requireDataLength(data, Integer.toUnsignedLong(size), "migration");
    }

    /** A payload with argsz = 8 + data length; ownership of {@code data} moves in. */
    public static MigData of(ByteBuf data) {
        return new MigData(FIXED_SIZE + data.readableBytes(), data.readableBytes(), data);
    }

    public static MigData decodeReadReply(ByteBuf in) {
        return decode(in, false, "MIG_DATA_READ reply");
    }

    public static MigData decodeWriteRequest(ByteBuf in) {
        return decode(in, true, "MIG_DATA_WRITE");
    }

    private static MigData decode(ByteBuf in, boolean checkArgsz, String what) {
        requireLength(in, FIXED_SIZE, what);
        long argsz = in.readUnsignedIntLE();
        int size = in.readIntLE();
        if (checkArgsz) {
            requireArgszAtLeast(argsz, FIXED_SIZE + Integer.toUnsignedLong(size), what);
        }
        ByteBuf data = Payloads.readAtLeast(in, Integer.toUnsignedLong(size), what);
        return new MigData(argsz, size, data);
    }

    @Override
    public int encodedSize() {
        return FIXED_SIZE + data.readableBytes();
    }

    @Override
    public void encode(ByteBuf out) {
        out.writeIntLE((int) argsz);
        out.writeIntLE(size);
    }
}
