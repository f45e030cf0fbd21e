package io.vfiouser.codec.payload;

import io.netty.buffer.ByteBuf;
import java.util.List;

/**
 * {@code VFIO_REGION_INFO_CAP_SPARSE_MMAP} (id 1): the parts of a region that may be mmapped.
 *
 * <pre>
 * +0   header (id 1, version 1, next)
 * +8   u32 nr_areas
 * +12  u32 reserved
 * +16  nr_areas x { u64 offset, u64 size }   offsets relative to the region start
 * </pre>
 */
public record SparseMmapCapability(List<Area> areas) implements RegionCapability {
    public static final int ID = 1;
    public static final int AREA_SIZE = 16;

    /** One mmappable area, relative to the region start. */
    public record Area(long offset, long size) {
    }

    public SparseMmapCapability {
        areas = List.copyOf(areas);
    }

    @Override
    public int id() {
        return ID;
    }

    @Override
    public int encodedSize() {
        return HEADER_SIZE + 8 + AREA_SIZE * areas.size();
    }

    @Override
    public void encodeBody(ByteBuf out) {
        out.writeIntLE(areas.size());
        out.writeIntLE(0);
        for (Area area : areas) {
            out.writeLongLE(area.offset());
            out.writeLongLE(area.size());
        }
    }
}
