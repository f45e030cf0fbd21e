package io.vfiouser.codec.payload;

import static io.vfiouser.codec.payload.Payloads.requireLength;

import io.netty.buffer.ByteBuf;
import java.util.Objects;

/**
 * {@code VFIO_USER_DEVICE_FEATURE} request and reply (spec §3.16), the kernel's {@code vfio_device_feature}:
 *
 * <pre>
 * P+0   u32 argsz   request: max reply payload; GET reply: total size
 * P+4   u32 flags   feature index (bits 0-15) | GET 0x10000 | SET 0x20000 | PROBE 0x40000
 * P+8   data        feature specific, possibly empty
 * </pre>
 *
 * <p>Decoding requires 8 bytes; whether the argsz fits the operation and which operations a feature supports
 * are the dispatcher's to check.
 *
 * @param data the feature data (owned; released with the message), never {@code null}
 */
public record DeviceFeature(long argsz, int flags, ByteBuf data) implements VfioUserPayload {
    public static final int FIXED_SIZE = 8;
    /** The feature index bits of {@link #flags()}. */
    public static final int FEATURE_MASK = 0xFFFF;
    public static final int GET = 0x10000;
    public static final int SET = 0x20000;
    public static final int PROBE = 0x40000;

    public static final int FEATURE_MIGRATION = 1;
    public static final int FEATURE_MIG_DEVICE_STATE = 2;
    public static final int FEATURE_DMA_LOGGING_START = 6;
    public static final int FEATURE_DMA_LOGGING_STOP = 7;
    public static final int FEATURE_DMA_LOGGING_REPORT = 8;

    /** {@code FEATURE_MIGRATION} data flag: the device supports STOP_COPY. */
    public static final long MIGRATION_STOP_COPY = 0x1;
    /** {@code FEATURE_MIGRATION} data flag: the device supports the P2P states. */
    public static final long MIGRATION_P2P = 0x2;
    /** {@code FEATURE_MIGRATION} data flag: the device supports PRE_COPY. */
    public static final long MIGRATION_PRE_COPY = 0x4;

    public DeviceFeature {
        Payloads.requireU32(argsz, "argsz");
        Objects.requireNonNull(data, "data (use Unpooled.EMPTY_BUFFER for none)");
    }

    /** A payload with argsz = 8 + data length; ownership of {@code data} moves in. */
    public static DeviceFeature of(int flags, ByteBuf data) {
        return new DeviceFeature(FIXED_SIZE + data.readableBytes(), flags, data);
    }

    public static DeviceFeature decode(ByteBuf in) {
        requireLength(in, FIXED_SIZE, "DEVICE_FEATURE");
        long argsz = in.readUnsignedIntLE();
        int flags = in.readIntLE();
        return new DeviceFeature(argsz, flags, in.readSlice(in.readableBytes()));
    }

    /** The feature index. */
    public int feature() {
        return flags & FEATURE_MASK;
    }

    public boolean isGet() {
        return (flags & GET) != 0;
    }

    public boolean isSet() {
        return (flags & SET) != 0;
    }

    public boolean isProbe() {
        return (flags & PROBE) != 0;
    }

    @Override
    public int encodedSize() {
        return FIXED_SIZE + data.readableBytes();
    }

    @Override
    public void encode(ByteBuf out) {
        out.writeIntLE((int) argsz);
        out.writeIntLE(flags);
    }
}
