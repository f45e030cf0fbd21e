package io.vfiouser.codec.payload;

import io.netty.buffer.ByteBuf;

/**
 * One capability of a {@link RegionInfo} reply's chain. On the wire each starts with an 8-byte header (id u16,
 * version u16, next u32 = offset of the next capability from the payload start, 0 for the last) followed by its
 * body; {@link RegionInfo} writes the headers, the capability its body.
 */
public sealed interface RegionCapability permits SparseMmapCapability, TypeCapability, MsixMappableCapability {
    /** Size of the capability header. */
    int HEADER_SIZE = 8;
    /** The version every capability of this protocol has. */
    int VERSION = 1;

    /** The capability id. */
    int id();

    /** Header and body size in bytes. */
    int encodedSize();

    /** Writes the body (what follows the 8-byte header). */
    void encodeBody(ByteBuf out);
}
