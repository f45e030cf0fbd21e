package io.vfiouser.codec;

import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelHandlerContext;

/**
 * Serves some frames where they lie in {@link VfioUserFrameDecoder}'s cumulation, instead of having them sliced
 * off and sent down the pipeline: the way a server answers its commonest small commands without creating an
 * object per message. The decoder offers every complete frame that carries no fds, in stream order, after every
 * frame before it has gone down the pipeline; a frame the shortcut declines goes down the pipeline as usual.
 */
@FunctionalInterface
public interface VfioUserFrameShortcut {
    /**
     * Serves the frame at {@code frame[start, start + size)} (header included, {@code size} already checked against
     * the maximum) and returns {@code true}, or returns {@code false} having changed nothing. The shortcut must not
     * keep {@code frame} or change its indexes; the decoder skips the frame's bytes when it was served.
     *
     * @param ctx the frame decoder's context (for its allocator and channel)
     */
    boolean serve(ChannelHandlerContext ctx, ByteBuf frame, int start, int size);
}
