package io.vfiouser.codec.payload;

import static io.vfiouser.codec.payload.Payloads.requireLength;

import io.netty.buffer.ByteBuf;
import io.vfiouser.codec.VfioUserProtocolException;
import java.util.List;

/**
 * {@code VFIO_USER_DEVICE_GET_REGION_IO_FDS} reply (spec §3.6); the fds the entries refer to travel with it.
 *
 * <pre>
 * P+0   u32 argsz   16 + count x entry size: the size of the complete answer
 * P+4   u32 flags   0
 * P+8   u32 index
 * P+12  u32 count   number of sub-regions
 * P+16  entries     {@link IoFdEntry}; none when the client's argsz was too small for them
 * </pre>
 *
 * <p>Encoding writes 40-byte entries. Decoding steps through the entries with the stride
 * {@code (argsz - 16) / count}, so that larger entries (libvfio-user writes 48 bytes) are read too, and reads
 * the fields at the spec's offsets; a payload of just the 16-byte header yields no entries.
 *
 * @param entries either empty (truncated reply) or {@code count} entries
 */
public record RegionIoFds(long argsz, int flags, int index, int count, List<IoFdEntry> entries)
        implements VfioUserPayload {
    public static final int FIXED_SIZE = 16;

    public RegionIoFds {
        Payloads.requireU32(argsz, "argsz");
        entries = List.copyOf(entries);
        if (!entries.isEmpty() && entries.size() != Integer.toUnsignedLong(count)) {
            throw new IllegalArgumentException(entries.size() + " entries but count " + count);
        }
    }

    /** The complete reply for region {@code index}: argsz and count computed from {@code entries}. */
    public static RegionIoFds of(int index, List<IoFdEntry> entries) {
        return new RegionIoFds(FIXED_SIZE + IoFdEntry.SIZE * entries.size(), 0, index, entries.size(), entries);
    }

    /** {@code EINVAL} if shorter than 16 bytes, the stride is below 40 or the entries leave the payload. */
    public static RegionIoFds decode(ByteBuf in) {
        requireLength(in, FIXED_SIZE, "DEVICE_GET_REGION_IO_FDS reply");
        long argsz = in.readUnsignedIntLE();
        int flags = in.readIntLE();
        int index = in.readIntLE();
        int count = in.readIntLE();
        long n = Integer.toUnsignedLong(count);
        if (n == 0 || !in.isReadable()) {
            in.skipBytes(in.readableBytes());
            return new RegionIoFds(argsz, flags, index, count, List.of());
        }
        long stride = (argsz - FIXED_SIZE) / n;
        if (stride < IoFdEntry.SIZE) {
            throw VfioUserProtocolException.invalid("DEVICE_GET_REGION_IO_FDS reply argsz "
                    + argsz + " gives " + n + " entries a stride below " + IoFdEntry.SIZE);
        }
        if (n * stride > in.readableBytes()) {
            throw VfioUserProtocolException.invalid("DEVICE_GET_REGION_IO_FDS reply: " + n + " entries of " + stride
                    + " bytes leave the " + (FIXED_SIZE + in.readableBytes()) + "-byte payload");
        }
        IoFdEntry[] entries = new IoFdEntry[(int) n];
        int base = in.readerIndex();
        for (int i = 0; i < entries.length; i++) {
            int p = base + (int) (i * stride);
            entries[i] = new IoFdEntry(in.getLongLE(p), in.getLongLE(p + 8), in.getIntLE(p + 16),
                    in.getIntLE(p + 20), in.getIntLE(p + 24), in.getLongLE(p + 32));
        }
        in.skipBytes(in.readableBytes());
        return new RegionIoFds(argsz, flags, index, count, List.of(entries));
    }

    @Override
    public int encodedSize() {
        return FIXED_SIZE + IoFdEntry.SIZE * entries.size();
    }

    @Override
    public void encode(ByteBuf out) {
        out.writeIntLE((int) argsz);
        out.writeIntLE(flags);
        out.writeIntLE(index);
        out.writeIntLE(count);
        for (IoFdEntry entry : entries) {
            out.writeLongLE(entry.offset());
            out.writeLongLE(entry.size());
            out.writeIntLE(entry.fdIndex());
            out.writeIntLE(entry.type());
            out.writeIntLE(entry.flags());
            out.writeIntLE(0);
            out.writeLongLE(entry.datamatch());
        }
    }
}
