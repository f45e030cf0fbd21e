package io.vfiouser.transport;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufHolder;
import io.netty.channel.DefaultChannelConfig;
import io.netty.channel.MessageSizeEstimator;

/**
 * Configuration of a {@link UnixChannel}: Netty's defaults, a size estimator that counts the bytes of
 * {@link BytesWithFds} for writability, and EPOLLIN dropped when auto-read is switched off.
 */
public final class UnixChannelConfig extends DefaultChannelConfig {
    /** Counts bytes of ByteBufs, holders and {@link BytesWithFds}, so all of them drive backpressure. */
    static final MessageSizeEstimator SIZE_ESTIMATOR = () -> msg -> {
        if (msg instanceof ByteBuf buf) {
            return buf.readableBytes();
        }
        if (msg instanceof BytesWithFds bytes) {
            return bytes.content().readableBytes();
        }
        if (msg instanceof ByteBufHolder holder) {
            return holder.content().readableBytes();
        }
        return 8;
    };

    private final Runnable onAutoReadCleared;

    UnixChannelConfig(UnixChannel channel, Runnable onAutoReadCleared) {
        super(channel);
        this.onAutoReadCleared = onAutoReadCleared;
        setMessageSizeEstimator(SIZE_ESTIMATOR);
    }

    @Override
    protected void autoReadCleared() {
        onAutoReadCleared.run();
    }
}
