package io.vfiouser.codec.payload;

import static io.vfiouser.codec.payload.Payloads.requireArgszAtLeast;
import static io.vfiouser.codec.payload.Payloads.requireLength;

import io.netty.buffer.ByteBuf;

/**
 * {@code VFIO_USER_DEVICE_GET_INFO} request and reply (spec §3.4), 16 bytes each:
 *
 * <pre>
 * P+0   u32 argsz        request: max reply (16); reply: 16
 * P+4   u32 flags        reply: RESET 0x1, PCI 0x2
 * P+8   u32 num_regions  reply: region indexes
 * P+12  u32 num_irqs     reply: IRQ indexes
 * </pre>
 */
public record DeviceInfo(long argsz, int flags, int numRegions, int numIrqs) implements VfioUserPayload {
    public static final int SIZE = 16;
    /** The device accepts {@code DEVICE_RESET}. */
    public static final int FLAG_RESET = 0x1;
    /** The device is a PCI device. */
    public static final int FLAG_PCI = 0x2;

    public DeviceInfo {
        Payloads.requireU32(argsz, "argsz");
    }

    /** The request: argsz 16, all else 0. */
    public static DeviceInfo request() {
        return new DeviceInfo(SIZE, 0, 0, 0);
    }

    /** A reply with argsz 16. */
    public static DeviceInfo reply(int flags, int numRegions, int numIrqs) {
        return new DeviceInfo(SIZE, flags, numRegions, numIrqs);
    }

    /** {@code EINVAL} if the payload or argsz is below 16. */
    public static DeviceInfo decodeRequest(ByteBuf in) {
        DeviceInfo info = decodeReply(in);
        requireArgszAtLeast(info.argsz, SIZE, "DEVICE_GET_INFO");
        return info;
    }

    /** {@code EINVAL} if the payload is below 16. */
    public static DeviceInfo decodeReply(ByteBuf in) {
        requireLength(in, SIZE, "DEVICE_GET_INFO");
        return new DeviceInfo(in.readUnsignedIntLE(), in.readIntLE(), in.readIntLE(), in.readIntLE());
    }

    @Override
    public int encodedSize() {
        return SIZE;
    }

    @Override
    public void encode(ByteBuf out) {
        out.writeIntLE((int) argsz);
        out.writeIntLE(flags);
        out.writeIntLE(numRegions);
        out.writeIntLE(numIrqs);
    }
}
