package io.vfiouser.examples.nvme;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.PooledByteBufAllocator;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;

/**
 * The NVM command set on namespace 1 (NVMe 1.4 NVM Command Set, 6): Flush, Write, Read, Write Zeroes and Dataset
 * Management. Validation, PRP walking and the guest side of the data run on the controller thread.
 *
 * <p>The file side of a read or write of up to {@link #SYNC_LIMIT} bytes runs right there too, as a positional
 * read or write on the controller thread, and the command completes before {@link #execute} returns: the
 * controller posts its completion without another hop. At queue depth 1 that takes two of the three thread
 * wake-ups of an I/O away (an I/O thread for the file, the controller thread again for the result), which cost
 * far more CPU than a page-cache hit. Larger transfers go to the file asynchronously, so one long transfer does not
 * hold up the doorbells and commands of the other queues; their read data goes back to the guest on the I/O thread
 * and the controller posts the completion when it learns of it.
 */
final class IoCommands {
    static final int FLUSH = 0x00;
    static final int WRITE = 0x01;
    static final int READ = 0x02;
    static final int WRITE_ZEROES = 0x08;
    static final int DATASET_MANAGEMENT = 0x09;

    private static final int NSID_ALL = 0xFFFF_FFFF;
    /** Force Unit Access (dword 12 bit 30): the data is durable before the command completes. */
    private static final int FUA = 1 << 30;
    /** Dataset Management attribute: deallocate. */
    private static final int DSM_DEALLOCATE = 1 << 2;
    private static final int DSM_RANGE_SIZE = 16;
    /** Write Zeroes: Deallocate (dword 12 bit 25). */
    private static final int WRITE_ZEROES_DEALLOCATE = 1 << 25;
    /** The largest read or write whose file side runs synchronously on the controller thread. */
    static final int SYNC_LIMIT = 128 * 1024;
    private static final CompletableFuture<Completion> DONE_OK = CompletableFuture.completedFuture(Completion.OK);

    private final NvmeController c;

    IoCommands(NvmeController controller) {
        this.c = controller;
    }

    CompletableFuture<Completion> execute(Command cmd) throws CommandFailure {
        if (cmd.fuse() != 0 || cmd.psdt() != 0) {
            throw new CommandFailure(Status.INVALID_FIELD, "fused operations and SGLs are not supported");
        }
        return switch (cmd.opcode()) {
            case FLUSH -> flush(cmd);
            case WRITE -> write(cmd);
            case READ -> read(cmd);
            case WRITE_ZEROES -> writeZeroes(cmd);
            case DATASET_MANAGEMENT -> datasetManagement(cmd);
            default -> throw new CommandFailure(Status.INVALID_OPCODE,
                    "I/O opcode 0x" + Integer.toHexString(cmd.opcode()));
        };
    }

    private CompletableFuture<Completion> flush(Command cmd) throws CommandFailure {
        if (cmd.nsid() != 1 && cmd.nsid() != NSID_ALL) {
            throw new CommandFailure(Status.INVALID_NAMESPACE, "namespace " + Integer.toUnsignedString(cmd.nsid()));
        }
        return ok(c.namespace.flush());
    }

    /*
     * The data of a read or write waits in a pooled direct buffer: the file channel reads into and writes from it
     * without the JDK's own temporary direct copy (which a heap buffer costs), and nothing of up to 4 MiB is
     * allocated and zeroed per command.
     */
    private static ByteBuf dataBuffer(int bytes) {
        return PooledByteBufAllocator.DEFAULT.directBuffer(bytes, bytes);
    }

    private CompletableFuture<Completion> write(Command cmd) throws CommandFailure {
        int bytes = transferLength(cmd);
        List<PrpWalker.Segment> segments = walk(cmd, bytes);
        ByteBuf buffer = dataBuffer(bytes);
        CompletableFuture<Void> written = null;
        try {
            ByteBuffer data = buffer.nioBuffer(0, bytes);
            c.dma.gather(segments, data);
            data.flip();
            c.logs.writeCommands++;
            c.logs.blocksWritten += cmd.blockCount();
            if (bytes <= SYNC_LIMIT) {
                writeNow(offset(cmd), data);
            } else {
                written = c.namespace.write(offset(cmd), data);
            }
        } catch (CommandFailure | RuntimeException e) {
            buffer.release();
            throw e;
        }
        if (written == null) {
            buffer.release();
            return needsFlush(cmd) ? ok(c.namespace.flush()) : DONE_OK;
        }
        written.whenComplete((v, e) -> buffer.release());
        return ok(durable(cmd, written));
    }

    private CompletableFuture<Completion> read(Command cmd) throws CommandFailure {
        int bytes = transferLength(cmd);
        List<PrpWalker.Segment> segments = walk(cmd, bytes);
        ByteBuf buffer = dataBuffer(bytes);
        ByteBuffer data = buffer.nioBuffer(0, bytes);
        c.logs.readCommands++;
        c.logs.blocksRead += cmd.blockCount();
        if (bytes <= SYNC_LIMIT) {
            try {
                readNow(offset(cmd), data);
                data.flip();
                c.dma.scatter(segments, data);
            } finally {
                buffer.release();
            }
            return DONE_OK;
        }
        // The guest copy runs on the I/O thread that finished the read: the controller's GuestDma is safe to use
        // from any thread, and the command counts as in flight (quiesce and reset wait) until the controller has
        // seen the result.
        GuestDma dma = c.dma;
        CompletableFuture<Void> read;
        try {
            read = c.namespace.read(offset(cmd), data);
        } catch (RuntimeException e) {
            buffer.release();
            throw e;
        }
        CompletableFuture<Completion> done = read.thenApply(v -> {
            data.flip();
            try {
                dma.scatter(segments, data);
                return Completion.OK;
            } catch (CommandFailure e) {
                return Completion.error(e.status());
            }
        });
        done.whenComplete((v, e) -> buffer.release());
        return done;
    }

    private void readNow(long offset, ByteBuffer data) {
        try {
            c.namespace.readNow(offset, data);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private void writeNow(long offset, ByteBuffer data) {
        try {
            c.namespace.writeNow(offset, data);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** With Deallocate (DEAC) set the blocks are deallocated, which reads as zeros too (DLFEAT bit 3). */
    private CompletableFuture<Completion> writeZeroes(Command cmd) throws CommandFailure {
        checkRange(cmd);
        long length = (long) cmd.blockCount() << NamespaceFile.BLOCK_SHIFT;
        if ((cmd.cdw12() & WRITE_ZEROES_DEALLOCATE) != 0) {
            return ok(durable(cmd, c.namespace.deallocate(offset(cmd), length)));
        }
        return ok(durable(cmd, c.namespace.writeZeroes(offset(cmd), length)));
    }

    /**
     * Deallocate punches holes in the backing file ({@link NamespaceFile#deallocate}): the space goes back to the
     * host's file system and the blocks read as zeros afterwards (DLFEAT). The other attributes are hints, taken
     * as no-ops; every range is still checked.
     */
    private CompletableFuture<Completion> datasetManagement(Command cmd) throws CommandFailure {
        checkNamespace(cmd);
        int ranges = (cmd.cdw10() & 0xFF) + 1;
        boolean deallocate = (cmd.cdw11() & DSM_DEALLOCATE) != 0;
        ByteBuffer list = ByteBuffer.allocate(ranges * DSM_RANGE_SIZE).order(ByteOrder.LITTLE_ENDIAN);
        c.dma.gather(walk(cmd, list.capacity()), list);
        List<long[]> extents = new ArrayList<>();
        for (int i = 0; i < ranges; i++) {
            int at = i * DSM_RANGE_SIZE;
            long blocks = list.getInt(at + 4) & 0xFFFF_FFFFL;
            long start = list.getLong(at + 8);
            if (blocks == 0) {
                continue;
            }
            if (!inRange(start, blocks)) {
                throw new CommandFailure(Status.LBA_OUT_OF_RANGE, "DSM range " + start + "+" + blocks);
            }
            extents.add(new long[] {start << NamespaceFile.BLOCK_SHIFT, blocks << NamespaceFile.BLOCK_SHIFT});
        }
        if (!deallocate) {
            return CompletableFuture.completedFuture(Completion.OK);
        }
        CompletableFuture<Void> all = CompletableFuture.completedFuture(null);
        for (long[] r : extents) {
            all = all.thenCompose(v -> c.namespace.deallocate(r[0], r[1]));
        }
        return ok(all);
    }

    // ------------------------------------------------------------------------------------------- helpers

    private static CompletableFuture<Completion> ok(CompletableFuture<Void> work) {
        return work.thenApply(v -> Completion.OK);
    }

    /** With FUA or the volatile write cache off, a write is flushed before it completes. */
    private CompletableFuture<Void> durable(Command cmd, CompletableFuture<Void> written) {
        if (needsFlush(cmd)) {
            return written.thenCompose(v -> c.namespace.flush());
        }
        return written;
    }

    private boolean needsFlush(Command cmd) {
        return (cmd.cdw12() & FUA) != 0 || !c.features.volatileWriteCache;
    }

    private void checkNamespace(Command cmd) throws CommandFailure {
        if (cmd.nsid() != 1) {
            throw new CommandFailure(Status.INVALID_NAMESPACE, "namespace " + Integer.toUnsignedString(cmd.nsid()));
        }
    }

    private void checkRange(Command cmd) throws CommandFailure {
        checkNamespace(cmd);
        if (!inRange(cmd.startingLba(), cmd.blockCount())) {
            throw new CommandFailure(Status.LBA_OUT_OF_RANGE,
                    "LBA " + Long.toUnsignedString(cmd.startingLba()) + "+" + cmd.blockCount());
        }
    }

    private boolean inRange(long start, long blocks) {
        long size = c.namespace.blocks();
        return Long.compareUnsigned(start, size) < 0 && blocks <= size - start;
    }

    /** Checks namespace, range and MDTS; the transfer length in bytes. */
    private int transferLength(Command cmd) throws CommandFailure {
        checkRange(cmd);
        long bytes = (long) cmd.blockCount() << NamespaceFile.BLOCK_SHIFT;
        if (bytes > NvmeController.maxTransfer()) {
            throw new CommandFailure(Status.INVALID_FIELD, "transfer of " + bytes + " bytes exceeds MDTS");
        }
        return (int) bytes;
    }

    private List<PrpWalker.Segment> walk(Command cmd, int bytes) throws CommandFailure {
        return PrpWalker.walk(cmd.prp1(), cmd.prp2(), bytes, c.dma::readQwords);
    }

    private static long offset(Command cmd) {
        return cmd.startingLba() << NamespaceFile.BLOCK_SHIFT;
    }
}
