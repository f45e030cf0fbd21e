package io.vfiouser.server.dma;

import io.vfiouser.device.Access;
import java.nio.ByteBuffer;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;

/**
 * A {@link DmaMessenger} that accepts transfers of any size and hands them to another messenger in chunks of at
 * most {@link DmaMessenger#maxTransferSize()} bytes (read afresh for every transfer, as it is only known after
 * negotiation). Chunks go out one at a time, in address order: the next is sent when the previous one completed,
 * and the first failure ends the transfer.
 */
public final class ChunkingMessenger implements DmaMessenger {
    private final DmaMessenger delegate;

    public ChunkingMessenger(DmaMessenger delegate) {
        this.delegate = Objects.requireNonNull(delegate, "delegate");
    }

    /** {@code messenger} itself if it chunks already, else a chunking wrapper. */
    public static ChunkingMessenger of(DmaMessenger messenger) {
        return messenger instanceof ChunkingMessenger c ? c : new ChunkingMessenger(messenger);
    }

    /** Reads {@code dst.remaining()} bytes in chunks; on success the position of {@code dst} is at its limit. */
    @Override
    public CompletableFuture<Void> read(long address, ByteBuffer dst) {
        return transfer(address, dst, Access.READ);
    }

    /** Writes {@code src.remaining()} bytes in chunks; on success the position of {@code src} is at its limit. */
    @Override
    public CompletableFuture<Void> write(long address, ByteBuffer src) {
        return transfer(address, src, Access.WRITE);
    }

    /** The chunk size of the messenger underneath. */
    @Override
    public int maxTransferSize() {
        return delegate.maxTransferSize();
    }

    private CompletableFuture<Void> transfer(long address, ByteBuffer buffer, Access access) {
        int chunk = delegate.maxTransferSize();
        if (chunk <= 0) {
            return CompletableFuture.failedFuture(
                    new IllegalStateException("the messenger's max transfer size is " + chunk));
        }
        int start = buffer.position();
        int length = buffer.remaining();
        int chunks = length == 0 ? 0 : (int) ((length + (long) chunk - 1) / chunk);
        CompletableFuture<Void> result = new CompletableFuture<>();
        Steps.sequentially(chunks, i -> {
            int offset = (int) ((long) i * chunk);
            int n = Math.min(chunk, length - offset);
            ByteBuffer piece = buffer.slice(start + offset, n);
            long at = address + offset;
            return switch (access) {
                case READ -> delegate.read(at, piece);
                case WRITE -> delegate.write(at, piece);
            };
        }).whenComplete((ok, failure) -> {
            if (failure != null) {
                result.completeExceptionally(failure);
            } else {
                buffer.position(start + length);
                result.complete(null);
            }
        });
        return result;
    }
}
