package io.vfiouser.codec.payload;

import static io.vfiouser.codec.payload.Payloads.requireLength;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;

/**
 * The data of the {@code MIG_DEVICE_STATE} device feature (spec §3.16, the kernel's
 * {@code vfio_device_feature_mig_state}): what a SET asks for and what a GET reports.
 *
 * <pre>
 * P+8   u32 device_state   a vfio_device_mig_state value (ERROR 0 .. PRE_COPY_P2P 7)
 * P+12  u32 data_fd        unused by vfio-user (migration data travels in MIG_DATA_READ/WRITE); 0 in replies
 * </pre>
 */
public record MigDeviceState(int deviceState, int dataFd) {
    public static final int SIZE = 8;

    public static final int ERROR = 0;
    public static final int STOP = 1;
    public static final int RUNNING = 2;
    public static final int STOP_COPY = 3;
    public static final int RESUMING = 4;
    public static final int RUNNING_P2P = 5;
    public static final int PRE_COPY = 6;
    public static final int PRE_COPY_P2P = 7;

    /** A state with data_fd 0. */
    public static MigDeviceState of(int deviceState) {
        return new MigDeviceState(deviceState, 0);
    }

    /** Reads the 8 bytes from the feature data (not consumed); {@code EINVAL} if there are fewer. */
    public static MigDeviceState decode(ByteBuf data) {
        requireLength(data, SIZE, "MIG_DEVICE_STATE data");
        int at = data.readerIndex();
        return new MigDeviceState(data.getIntLE(at), data.getIntLE(at + 4));
    }

    /** The 8 bytes, as a new heap buffer (the caller owns it). */
    public ByteBuf encode() {
        return Unpooled.buffer(SIZE, SIZE).writeIntLE(deviceState).writeIntLE(dataFd);
    }
}
