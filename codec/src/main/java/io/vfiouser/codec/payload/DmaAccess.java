package io.vfiouser.codec.payload;

import static io.vfiouser.codec.payload.Payloads.requireLength;

import io.netty.buffer.ByteBuf;
import io.vfiouser.codec.DmaLayout;
import io.vfiouser.codec.VfioUserProtocolException;

/**
 * {@code VFIO_USER_DMA_READ} and {@code VFIO_USER_DMA_WRITE} payloads, sent by the server (spec §3.11, §3.12).
 * The payloads that carry data (READ reply, WRITE request) have two wire layouts, chosen by {@link DmaLayout}:
 *
 * <pre>
 * SPEC:  P+0 u64 address | P+8 u64 count | P+16 data (count bytes)
 * QEMU:  P+0 u64 address | P+8 u32 count | P+12 data (count bytes) | 4 zero bytes
 * </pre>
 *
 * Both are {@code 16 + count} bytes long. The READ request (no data) is {@code address u64, count u64}, which
 * QEMU reads as {@code address, u32 count, 4 unused bytes}: the same bytes for any count below 2^32.
 *
 * <p>The WRITE reply is decoded by its length, whatever the layout: none (QEMU) gives a {@code null}
 * payload, 12 bytes give {@code address, u32 count} (spec table), 16 or more {@code address, u64 count}
 * (libvfio-user). It is encoded as 16 bytes.
 *
 * @param count u64 byte count ({@code data}'s length when data is present)
 * @param data the transferred bytes (owned; released with the message), or {@code null}
 */
public record DmaAccess(long address, long count, ByteBuf data) implements VfioUserPayload {
    public static final int FIXED_SIZE = 16;
    /** Bytes before the data in the QEMU layout. */
    public static final int QEMU_FIXED_SIZE = 12;
    /** Zero bytes after the data in the QEMU layout. */
    public static final int QEMU_PADDING = 4;
    /** Length of the spec's short DMA_WRITE reply (address, u32 count). */
    public static final int SHORT_REPLY_SIZE = 12;

    public DmaAccess {
        Payloads.requireDataLength(data, count, "DMA access");
    }

    /** A READ request or WRITE reply. */
    public static DmaAccess of(long address, long count) {
        return new DmaAccess(address, count, null);
    }

    /** A WRITE request or READ reply carrying {@code data}; ownership of {@code data} moves in. */
    public static DmaAccess withData(long address, ByteBuf data) {
        return new DmaAccess(address, data.readableBytes(), data);
    }

    public static DmaAccess decodeReadRequest(ByteBuf in, DmaLayout layout) {
        requireLength(in, FIXED_SIZE, "DMA_READ");
        long address = in.readLongLE();
        long count = layout == DmaLayout.SPEC ? in.readLongLE() : in.readUnsignedIntLE();
        in.skipBytes(in.readableBytes());
        return new DmaAccess(address, count, null);
    }

    public static DmaAccess decodeReadReply(ByteBuf in, DmaLayout layout) {
        return decodeWithData(in, layout, "DMA_READ reply");
    }

    public static DmaAccess decodeWriteRequest(ByteBuf in, DmaLayout layout) {
        return decodeWithData(in, layout, "DMA_WRITE");
    }

    /** See the class comment: by length, 0, 12 or at least 16 bytes; other lengths are {@code EINVAL}. */
    public static DmaAccess decodeWriteReply(ByteBuf in, DmaLayout layout) {
        int length = in.readableBytes();
        if (length == 0) {
            return null;
        }
        requireLength(in, SHORT_REPLY_SIZE, "DMA_WRITE reply");
        long address = in.readLongLE();
        long count = length < FIXED_SIZE ? in.readUnsignedIntLE() : in.readLongLE();
        in.skipBytes(in.readableBytes());
        return new DmaAccess(address, count, null);
    }

    private static DmaAccess decodeWithData(ByteBuf in, DmaLayout layout, String what) {
        requireLength(in, FIXED_SIZE, what);
        long address = in.readLongLE();
        if (layout == DmaLayout.SPEC) {
            long count = in.readLongLE();
            return new DmaAccess(address, count, Payloads.readExactly(in, count, what));
        }
        long count = in.readUnsignedIntLE();
        if (in.readableBytes() != count + QEMU_PADDING) {
            throw VfioUserProtocolException.invalid(what + " (QEMU layout) carries "
                    + (in.readableBytes() - QEMU_PADDING) + " data bytes but announces " + count);
        }
        ByteBuf data = in.readSlice((int) count);
        in.skipBytes(QEMU_PADDING);
        return new DmaAccess(address, count, data);
    }

    @Override
    public int encodedSize() {
        return FIXED_SIZE + (data == null ? 0 : data.readableBytes());
    }

    @Override
    public void encode(ByteBuf out) {
        encode(out, DmaLayout.SPEC);
    }

    /**
     * SPEC: address and u64 count. QEMU: address and u32 count, the encoder adds the 4 zero bytes; but a payload
     * without data is written with its u64 count in both layouts (the same bytes for any count below 2^32), so that
     * a larger count, which the decoders read from 16-byte payloads, is not cut to 32 bits.
     */
    @Override
    public void encode(ByteBuf out, DmaLayout layout) {
        out.writeLongLE(address);
        if (layout == DmaLayout.SPEC || data == null) {
            out.writeLongLE(count);
        } else {
            out.writeIntLE((int) count);
        }
    }
}
