package io.vfiouser.codec.payload;

import static io.vfiouser.codec.payload.Payloads.requireArgszAtLeast;
import static io.vfiouser.codec.payload.Payloads.requireLength;

import io.netty.buffer.ByteBuf;

/**
 * {@code VFIO_USER_DEVICE_SET_IRQS} request (spec §3.8); the reply has no payload. With DATA_EVENTFD, 0 to
 * {@code count} eventfds accompany it (0 fds de-assigns the sub-indexes). The message's {@code FdSet} owns them and
 * closes them once sent, so a client that reads its eventfds to see interrupts sends duplicates
 * ({@code FdSet.ofDuplicates(eventfds)}) and keeps its own; the server writes 1 to the eventfd of a vector each
 * time it fires, and the client's read returns how many times since the last read. For example, all MSI-X vectors
 * of a device with 4: {@code SetIrqs.of(DATA_EVENTFD | ACTION_TRIGGER, 2, 0, 4)} with four eventfds; masking vector
 * 1: {@code SetIrqs.of(DATA_NONE | ACTION_MASK, 2, 1, 1)} without fds.
 *
 * <pre>
 * P+0   u32 argsz   request size including data; QEMU sends 20 for eventfds
 * P+4   u32 flags   data type: NONE 0x01, BOOL 0x02, EVENTFD 0x04; action: MASK 0x08, UNMASK 0x10, TRIGGER 0x20
 * P+8   u32 index   IRQ type
 * P+12  u32 start   first sub-index
 * P+16  u32 count   number of sub-indexes
 * P+20  u8[count]   one byte per sub-index, with DATA_BOOL only
 * </pre>
 *
 * <p>Decoding requires payload and argsz (a u32) of at least 20 and, when the BOOL bit is set, exactly
 * {@code count} bytes after the fixed part; nobody checks these again. That exactly one data-type and one action
 * bit are set, the index and range and the fd count are the interrupt table's to check, against the device.
 *
 * @param argsz the u32 on the wire
 * @param data the BOOL bytes (owned; released with the message) if and only if {@link #DATA_BOOL} is set
 */
public record SetIrqs(long argsz, int flags, int index, int start, int count, ByteBuf data)
        implements VfioUserPayload {
    public static final int FIXED_SIZE = 20;
    public static final int DATA_NONE = 0x01;
    public static final int DATA_BOOL = 0x02;
    public static final int DATA_EVENTFD = 0x04;
    public static final int ACTION_MASK = 0x08;
    public static final int ACTION_UNMASK = 0x10;
    public static final int ACTION_TRIGGER = 0x20;
    /** The data-type bits of {@link #flags()}. */
    public static final int DATA_TYPE_BITS = DATA_NONE | DATA_BOOL | DATA_EVENTFD;
    /** The action bits of {@link #flags()}. */
    public static final int ACTION_BITS = ACTION_MASK | ACTION_UNMASK | ACTION_TRIGGER;

    public SetIrqs {
        if (((flags & DATA_BOOL) != 0) != (data != null)) {
            throw new IllegalArgumentException("BOOL data goes with DATA_BOOL, and only with it");
        }
        Payloads.requireDataLength(data, Integer.toUnsignedLong(count), "SET_IRQS");
    }

    /** A request without BOOL data; argsz 20 (eventfds travel as fds). */
    public static SetIrqs of(int flags, int index, int start, int count) {
        return new SetIrqs(FIXED_SIZE, flags, index, start, count, null);
    }

    /** A DATA_BOOL request; {@code flags} must include {@link #DATA_BOOL}, ownership of {@code data} moves in. */
    public static SetIrqs withBools(int flags, int index, int start, ByteBuf data) {
        return new SetIrqs(FIXED_SIZE + data.readableBytes(), flags, index, start, data.readableBytes(), data);
    }

    public static SetIrqs decode(ByteBuf in) {
        requireLength(in, FIXED_SIZE, "DEVICE_SET_IRQS");
        long argsz = in.readUnsignedIntLE();
        requireArgszAtLeast(argsz, FIXED_SIZE, "DEVICE_SET_IRQS");
        int flags = in.readIntLE();
        int index = in.readIntLE();
        int start = in.readIntLE();
        int count = in.readIntLE();
        ByteBuf data = null;
        if ((flags & DATA_BOOL) != 0) {
            data = Payloads.readExactly(in, Integer.toUnsignedLong(count), "DEVICE_SET_IRQS with DATA_BOOL");
        } else {
            in.skipBytes(in.readableBytes());
        }
        return new SetIrqs(argsz, flags, index, start, count, data);
    }

    /** The data-type bits. */
    public int dataType() {
        return flags & DATA_TYPE_BITS;
    }

    /** The action bits. */
    public int action() {
        return flags & ACTION_BITS;
    }

    @Override
    public int encodedSize() {
        return FIXED_SIZE + (data == null ? 0 : data.readableBytes());
    }

    @Override
    public void encode(ByteBuf out) {
        out.writeIntLE((int) argsz);
        out.writeIntLE(flags);
        out.writeIntLE(index);
        out.writeIntLE(start);
        out.writeIntLE(count);
    }
}
