package io.vfiouser.codec.payload;

import io.netty.buffer.ByteBuf;
import io.vfiouser.codec.DmaLayout;

/**
 * The payload of a vfio-user message: everything after the 16-byte header.
 *
 * <p>Encoding writes {@link #encode(ByteBuf, DmaLayout)}, then {@link #data()}, then zero bytes up to
 * {@link #encodedSize()}; only {@link DmaAccess} in the {@link DmaLayout#QEMU} layout needs that padding.
 * A payload holding a {@link #data()} buffer owns it; the {@link io.vfiouser.codec.VfioUserMessage} that carries
 * the payload releases it.
 */
public sealed interface VfioUserPayload
        permits VersionPayload, DmaMapRequest, DmaUnmapRequest, DmaUnmapReply, DeviceInfo, RegionInfoRequest,
                RegionInfo, RegionIoFdsRequest, RegionIoFds, IrqInfo, SetIrqs, RegionAccess, DmaAccess,
                RegionWriteMulti, RegionWriteMultiReply, DeviceFeature, MigDataRead, MigData {

    /** The payload's size on the wire in bytes; the same in every {@link DmaLayout}. */
    int encodedSize();

    /** Writes the payload except {@link #data()} and the padding after it, in the spec layout. */
    void encode(ByteBuf out);

    /** Writes the payload except {@link #data()} and the padding after it, in the given DMA layout. */
    default void encode(ByteBuf out, DmaLayout layout) {
        encode(out);
    }

    /** The variable bytes at the end of the payload (readable bytes only), or {@code null} if it has none. */
    default ByteBuf data() {
        return null;
    }
}
