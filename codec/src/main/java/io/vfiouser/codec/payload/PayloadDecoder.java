package io.vfiouser.codec.payload;

import io.netty.buffer.ByteBuf;
import io.vfiouser.codec.DmaLayout;
import java.util.function.Function;

/**
 * Decodes one payload layout. {@code payload}'s readable bytes are exactly the payload; slices in the result are
 * not retained. Throws {@link io.vfiouser.codec.VfioUserProtocolException} for a malformed payload.
 */
@FunctionalInterface
public interface PayloadDecoder {
    /** For messages without a payload: yields {@code null} and ignores any bytes. */
    PayloadDecoder NONE = (payload, layout) -> null;

    VfioUserPayload decode(ByteBuf payload, DmaLayout layout);

    /** Adapts a decoder whose layout is the same in every {@link DmaLayout}. */
    static PayloadDecoder of(Function<ByteBuf, ? extends VfioUserPayload> decoder) {
        return (payload, layout) -> decoder.apply(payload);
    }
}
