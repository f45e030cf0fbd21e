package io.vfiouser.codec.payload;

import static io.vfiouser.codec.payload.Payloads.requireArgszAtLeast;
import static io.vfiouser.codec.payload.Payloads.requireLength;

import io.netty.buffer.ByteBuf;

/**
 * {@code VFIO_USER_DEVICE_GET_IRQ_INFO} request and reply (spec §3.7), 16 bytes each:
 *
 * <pre>
 * P+0   u32 argsz
 * P+4   u32 flags   reply: EVENTFD 0x1, MASKABLE 0x2, AUTOMASKED 0x4, NORESIZE 0x8
 * P+8   u32 index   IRQ type (PCI: INTx 0, MSI 1, MSI-X 2, ERR 3, REQ 4)
 * P+12  u32 count   reply: number of vectors
 * </pre>
 */
public record IrqInfo(long argsz, int flags, int index, int count) implements VfioUserPayload {
    public static final int SIZE = 16;
    public static final int FLAG_EVENTFD = 0x1;
    public static final int FLAG_MASKABLE = 0x2;
    public static final int FLAG_AUTOMASKED = 0x4;
    public static final int FLAG_NORESIZE = 0x8;

    public IrqInfo {
        Payloads.requireU32(argsz, "argsz");
    }

    /** The request for IRQ index {@code index}, argsz 16. */
    public static IrqInfo request(int index) {
        return new IrqInfo(SIZE, 0, index, 0);
    }

    /** A reply with argsz 16. */
    public static IrqInfo reply(int flags, int index, int count) {
        return new IrqInfo(SIZE, flags, index, count);
    }

    /** {@code EINVAL} if the payload or argsz is below 16. */
    public static IrqInfo decodeRequest(ByteBuf in) {
        IrqInfo info = decodeReply(in);
        requireArgszAtLeast(info.argsz, SIZE, "DEVICE_GET_IRQ_INFO");
        return info;
    }

    /** {@code EINVAL} if the payload is below 16. */
    public static IrqInfo decodeReply(ByteBuf in) {
        requireLength(in, SIZE, "DEVICE_GET_IRQ_INFO");
        return new IrqInfo(in.readUnsignedIntLE(), in.readIntLE(), in.readIntLE(), in.readIntLE());
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
