package io.vfiouser.examples.nvme;

import io.vfiouser.device.DmaException;
import io.vfiouser.device.DmaSpace;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Guest memory for the controller thread: blocking reads and writes through the framework's {@link DmaSpace}
 * that fail with an NVMe status instead of an exception. Blocking is fine here, because the controller thread is
 * never a server event loop; a range mapped without an fd is served by DMA messages whose replies the event loop
 * delivers meanwhile.
 */
final class GuestDma {
    /** How long one access may take before the command fails (a client that never answers a DMA message). */
    private static final long TIMEOUT_S = 30;

    private final DmaSpace dma;

    GuestDma(DmaSpace dma) {
        this.dma = dma;
    }

    /** Fills {@code dst} (position to limit) from guest memory at {@code address}. */
    void read(long address, ByteBuffer dst) throws CommandFailure {
        if (dst.hasRemaining()) {
            await(() -> dma.read(address, dst), address, dst.remaining());
        }
    }

    /** Copies {@code src} (position to limit) into guest memory at {@code address}. */
    void write(long address, ByteBuffer src) throws CommandFailure {
        if (src.hasRemaining()) {
            await(() -> dma.write(address, src), address, src.remaining());
        }
    }

    /** Whether {@code [address, address + length)} lies inside one mapping of the client. */
    boolean isMapped(long address, long length) {
        return dma.isMapped(address, length);
    }

    /** Fills {@code dst} from the guest ranges {@code segments}, in order. */
    void gather(List<PrpWalker.Segment> segments, ByteBuffer dst) throws CommandFailure {
        int at = dst.position();
        for (PrpWalker.Segment s : segments) {
            int n = (int) s.length();
            read(s.address(), dst.slice(at, n));
            at += n;
        }
        dst.position(at);
    }

    /** Copies {@code src} into the guest ranges {@code segments}, in order. */
    void scatter(List<PrpWalker.Segment> segments, ByteBuffer src) throws CommandFailure {
        int at = src.position();
        for (PrpWalker.Segment s : segments) {
            int n = (int) s.length();
            write(s.address(), src.slice(at, n));
            at += n;
        }
        src.position(at);
    }

    /** Reads {@code count} little-endian qwords (PRP list entries). */
    long[] readQwords(long address, int count) throws CommandFailure {
        ByteBuffer b = ByteBuffer.allocate(count * 8).order(ByteOrder.LITTLE_ENDIAN);
        read(address, b);
        long[] out = new long[count];
        for (int i = 0; i < count; i++) {
            out[i] = b.getLong(i * 8);
        }
        return out;
    }

    @FunctionalInterface
    private interface Transfer {
        java.util.concurrent.CompletableFuture<Void> start();
    }

    private static void await(Transfer transfer, long address, int length) throws CommandFailure {
        try {
            transfer.start().get(TIMEOUT_S, TimeUnit.SECONDS);
        } catch (ExecutionException | CompletionException e) {
            throw failure(address, length, e.getCause() == null ? e : e.getCause());
        } catch (RuntimeException e) {
            throw failure(address, length, e);
        } catch (TimeoutException e) {
            throw failure(address, length, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw failure(address, length, e);
        }
    }

    private static CommandFailure failure(long address, int length, Throwable cause) {
        String why = cause instanceof DmaException d ? "errno " + d.errno() : cause.toString();
        return new CommandFailure(Status.DATA_TRANSFER_ERROR,
                "DMA of " + length + " bytes at 0x" + Long.toHexString(address) + " failed: " + why);
    }
}
