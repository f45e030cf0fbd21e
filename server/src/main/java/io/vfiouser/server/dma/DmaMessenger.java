package io.vfiouser.server.dma;

import java.nio.ByteBuffer;
import java.util.concurrent.CompletableFuture;

/**
 * Server-to-client DMA messages ({@code VFIO_USER_DMA_READ}/{@code VFIO_USER_DMA_WRITE}, digest 3.11/3.12) for
 * guest memory the client mapped without a file descriptor. The connection's {@code ServerDmaRequests} implement it;
 * the wire layout (spec or QEMU) is its business.
 *
 * <p>One call is one message: callers never ask for more than {@link #maxTransferSize()} bytes at once
 * ({@link ChunkingMessenger} splits larger transfers). Implementations must not block the calling thread on the
 * client's reply.
 */
public interface DmaMessenger {
    /**
     * Reads {@code dst.remaining()} bytes of guest memory at {@code address} into {@code dst} with one DMA_READ.
     * On success the buffer's position has advanced to its limit. Fails with the client's errno (as a
     * {@code VfioUserProtocolException}) or with the reason the message could not be sent.
     */
    CompletableFuture<Void> read(long address, ByteBuffer dst);

    /**
     * Writes {@code src.remaining()} bytes to guest memory at {@code address} with one DMA_WRITE. The buffer may be
     * consumed (its position advanced) as soon as the call returns.
     */
    CompletableFuture<Void> write(long address, ByteBuffer src);

    /** The largest count one message may carry: the client's {@code max_data_xfer_size} (positive). */
    int maxTransferSize();
}
