package io.vfiouser.codec.payload;

import io.netty.buffer.ByteBuf;

/**
 * {@code VFIO_REGION_INFO_CAP_MSIX_MAPPABLE} (id 3): the client may mmap over the MSI-X table. Header only.
 */
public record MsixMappableCapability() implements RegionCapability {
    public static final int ID = 3;
    public static final MsixMappableCapability INSTANCE = new MsixMappableCapability();

    @Override
    public int id() {
        return ID;
    }

    @Override
    public int encodedSize() {
        return HEADER_SIZE;
    }

    @Override
    public void encodeBody(ByteBuf out) {
    }
}
