package io.vfiouser.codec.payload;

import static io.vfiouser.codec.payload.Payloads.requireLength;

import io.netty.buffer.ByteBuf;
import io.vfiouser.codec.VfioUserProtocolException;
import java.util.ArrayList;
import java.util.List;

/**
 * {@code VFIO_USER_DEVICE_GET_REGION_INFO} reply (spec §3.5): the kernel's {@code vfio_region_info} and a
 * capability chain. At most one fd accompanies it: the file to mmap for a region with {@link #FLAG_MMAP}.
 *
 * <pre>
 * P+0   u32 argsz       size of the complete answer: 32 + all caps (may exceed what the client offered)
 * P+4   u32 flags       READ 0x1, WRITE 0x2, MMAP 0x4, CAPS 0x8 (a chain is present)
 * P+8   u32 index
 * P+12  u32 cap_offset  offset of the first capability from P+0; 0 if none is included
 * P+16  u64 size        region size (0 = not implemented)
 * P+24  u64 offset      file offset of the region in the fd
 * P+32  ...             capability chain
 * </pre>
 *
 * <p>{@code cap_offset} is not a record component: encoding lays the {@link #caps()} out back to back from P+32
 * (cap_offset 32, each {@code next} pointing at the following one), or writes cap_offset 0 when there are none.
 * The CAPS flag written is the truth about the chain, whatever {@link #flags()} says: set with caps, clear without
 * (CAPS with cap_offset 0 is a reply QEMU and our decoder refuse; a record decoded from a chain of unknown
 * capabilities only has CAPS and no caps).
 * Decoding follows the chain when {@link #FLAG_CAPS} is set and skips capabilities of unknown ids; a chain that
 * starts before P+32, leaves the payload or does not move forward is {@code EINVAL}. The server truncates a
 * reply that does not fit the client's argsz by leaving the caps out (and the CAPS flag and fd with them).
 */
public record RegionInfo(long argsz, int flags, int index, long size, long offset, List<RegionCapability> caps)
        implements VfioUserPayload {
    /** Size of the fixed part; also the offset of the first capability. */
    public static final int FIXED_SIZE = 32;
    public static final int FLAG_READ = 0x1;
    public static final int FLAG_WRITE = 0x2;
    public static final int FLAG_MMAP = 0x4;
    public static final int FLAG_CAPS = 0x8;

    public RegionInfo {
        Payloads.requireU32(argsz, "argsz");
        caps = List.copyOf(caps);
    }

    /** The payload size of a reply carrying {@code caps}: the argsz of the complete answer. */
    public static int sizeWith(List<RegionCapability> caps) {
        int size = FIXED_SIZE;
        for (RegionCapability cap : caps) {
            size += cap.encodedSize();
        }
        return size;
    }

    /** {@code EINVAL} if shorter than 32 bytes or the capability chain is malformed. */
    public static RegionInfo decode(ByteBuf in) {
        requireLength(in, FIXED_SIZE, "DEVICE_GET_REGION_INFO reply");
        int base = in.readerIndex();
        int length = in.readableBytes();
        long argsz = in.readUnsignedIntLE();
        int flags = in.readIntLE();
        int index = in.readIntLE();
        long capOffset = in.readUnsignedIntLE();
        long size = in.readLongLE();
        long offset = in.readLongLE();
        List<RegionCapability> caps = (flags & FLAG_CAPS) == 0 ? List.of() : decodeCaps(in, base, length, capOffset);
        in.skipBytes(in.readableBytes());
        return new RegionInfo(argsz, flags, index, size, offset, caps);
    }

    private static List<RegionCapability> decodeCaps(ByteBuf in, int base, int length, long capOffset) {
        if (capOffset < FIXED_SIZE) {
            throw VfioUserProtocolException.invalid("region info cap_offset " + capOffset + " is below 32");
        }
        List<RegionCapability> caps = new ArrayList<>();
        long at = capOffset;
        while (true) {
            requireInside(at, RegionCapability.HEADER_SIZE, length);
            int p = base + (int) at;
            int id = in.getUnsignedShortLE(p);
            long next = in.getUnsignedIntLE(p + 4);
            RegionCapability cap = decodeCap(in, id, p, at, length);
            if (cap != null) {
                caps.add(cap);
            }
            if (next == 0) {
                return caps;
            }
            if (next <= at) {
                throw VfioUserProtocolException.invalid("region info capability at " + at + " points back to " + next);
            }
            at = next;
        }
    }

    private static RegionCapability decodeCap(ByteBuf in, int id, int p, long at, int length) {
        switch (id) {
            case SparseMmapCapability.ID -> {
                requireInside(at, 16, length);
                long count = in.getUnsignedIntLE(p + 8);
                requireInside(at, 16 + SparseMmapCapability.AREA_SIZE * count, length);
                SparseMmapCapability.Area[] areas = new SparseMmapCapability.Area[(int) count];
                for (int i = 0; i < areas.length; i++) {
                    int a = p + 16 + SparseMmapCapability.AREA_SIZE * i;
                    areas[i] = new SparseMmapCapability.Area(in.getLongLE(a), in.getLongLE(a + 8));
                }
                return new SparseMmapCapability(List.of(areas));
            }
            case TypeCapability.ID -> {
                requireInside(at, TypeCapability.SIZE, length);
                return new TypeCapability(in.getIntLE(p + 8), in.getIntLE(p + 12));
            }
            case MsixMappableCapability.ID -> {
                return MsixMappableCapability.INSTANCE;
            }
            default -> {
                return null;
            }
        }
    }

    private static void requireInside(long at, long size, int length) {
        if (at + size > length) {
            throw VfioUserProtocolException.invalid("region info capability at " + at + " of " + size
                    + " bytes leaves the " + length + "-byte payload");
        }
    }

    @Override
    public int encodedSize() {
        return sizeWith(caps);
    }

    @Override
    public void encode(ByteBuf out) {
        out.writeIntLE((int) argsz);
        out.writeIntLE(caps.isEmpty() ? flags & ~FLAG_CAPS : flags | FLAG_CAPS);
        out.writeIntLE(index);
        out.writeIntLE(caps.isEmpty() ? 0 : FIXED_SIZE);
        out.writeLongLE(size);
        out.writeLongLE(offset);
        int at = FIXED_SIZE;
        for (int i = 0; i < caps.size(); i++) {
            RegionCapability cap = caps.get(i);
            at += cap.encodedSize();
            out.writeShortLE(cap.id());
            out.writeShortLE(RegionCapability.VERSION);
            out.writeIntLE(i == caps.size() - 1 ? 0 : at);
            cap.encodeBody(out);
        }
    }
}
