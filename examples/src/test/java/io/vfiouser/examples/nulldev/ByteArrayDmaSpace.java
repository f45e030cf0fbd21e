package io.vfiouser.examples.nulldev;

import io.vfiouser.device.Access;
import io.vfiouser.device.DmaException;
import io.vfiouser.device.DmaSpace;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.Executor;
import java.util.function.Function;

/**
 * Guest memory {@code [base, base + bytes.length)} backed by a byte array. Accesses outside fail with EFAULT.
 * Completions run on {@code executor} (asynchronously, as DMA messages would), and a write may be held back by
 * {@link #holdWrites()} until {@link #releaseWrites()}.
 */
final class ByteArrayDmaSpace implements DmaSpace {
    static final int EFAULT = 14;

    private final long base;
    private final byte[] bytes;
    private final Executor executor;
    private CompletableFuture<Void> writeGate = CompletableFuture.completedFuture(null);
    private int reads;
    private int writes;

    ByteArrayDmaSpace(long base, int size, Executor executor) {
        this.base = base;
        this.bytes = new byte[size];
        this.executor = executor;
    }

    byte[] bytes() {
        return bytes;
    }

    synchronized int reads() {
        return reads;
    }

    synchronized int writes() {
        return writes;
    }

    /** Later writes complete only after {@link #releaseWrites()}. */
    synchronized void holdWrites() {
        writeGate = new CompletableFuture<>();
    }

    synchronized void releaseWrites() {
        writeGate.complete(null);
    }

    @Override
    public CompletableFuture<Void> read(long address, ByteBuffer dst) {
        int n = dst.remaining();
        synchronized (this) {
            reads++;
        }
        return CompletableFuture.runAsync(() -> {
            int at = offsetOf(address, n);
            synchronized (bytes) {
                dst.put(bytes, at, n);
            }
        }, executor);
    }

    @Override
    public CompletableFuture<Void> write(long address, ByteBuffer src) {
        int n = src.remaining();
        CompletableFuture<Void> gate;
        synchronized (this) {
            writes++;
            gate = writeGate;
        }
        return gate.thenRunAsync(() -> {
            int at = offsetOf(address, n);
            synchronized (bytes) {
                src.get(bytes, at, n);
            }
        }, executor);
    }

    private int offsetOf(long address, long length) {
        if (!isMapped(address, length)) {
            throw new CompletionException(new DmaException(EFAULT,
                    "0x" + Long.toHexString(address) + "+" + length + " is not mapped"));
        }
        return (int) (address - base);
    }

    @Override
    public <T> T withSegment(long address, long length, Access access, Function<MemorySegment, T> action)
            throws DmaException {
        if (!isMapped(address, length)) {
            throw new DmaException(EFAULT, "not mapped");
        }
        MemorySegment segment = MemorySegment.ofArray(bytes).asSlice(address - base, length);
        return action.apply(access == Access.WRITE ? segment : segment.asReadOnly());
    }

    @Override
    public void markDirty(long address, long length) {
    }

    @Override
    public boolean isMapped(long address, long length) {
        return length >= 0 && address >= base && address - base <= bytes.length - length;
    }
}
