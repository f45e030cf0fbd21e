package io.vfiouser.codec;

import io.netty.channel.Channel;
import io.netty.util.AttributeKey;

/**
 * The wire layout of {@code DMA_READ}/{@code DMA_WRITE} payloads that carry data (spec §3.11, §3.12, §8).
 * The other payloads have one layout only.
 *
 * <p>The layout of a connection is the value of {@link #ATTRIBUTE} on its channel, read by
 * {@link VfioUserMessageDecoder} and {@link VfioUserMessageEncoder} for every message; when the attribute is
 * unset they use the default given to their constructors ({@link #SPEC} unless told otherwise). A server that
 * recognises QEMU sets the attribute to {@link #QEMU}.
 */
public enum DmaLayout {
    /** address u64 @0, count u64 @8, data @16 (the spec and libvfio-user). */
    SPEC,
    /** address u64 @0, count u32 @8, data @12, then 4 zero bytes (QEMU's {@code VFIOUserDMARW}). */
    QEMU;

    /** The per-channel layout; unset means the handler's default. */
    public static final AttributeKey<DmaLayout> ATTRIBUTE = AttributeKey.valueOf(DmaLayout.class, "layout");

    /** The layout set on {@code channel}, or {@code defaultLayout} if none is set. */
    public static DmaLayout of(Channel channel, DmaLayout defaultLayout) {
        DmaLayout layout = channel.attr(ATTRIBUTE).get();
        return layout != null ? layout : defaultLayout;
    }
}
