package io.vfiouser.examples.nvme;

import io.vfiouser.transport.linux.Errno;
import io.vfiouser.transport.linux.ErrnoException;
import io.vfiouser.transport.linux.Linux;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.AsynchronousFileChannel;
import java.nio.channels.CompletionHandler;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The storage behind namespace 1: a regular file, opened twice. Large transfers go through an
 * {@link AsynchronousFileChannel}, so commands on several queues are in flight at once and no caller thread waits
 * for them; small ones ({@link #readNow}, {@link #writeNow}) are positional reads and writes on a plain
 * {@link FileChannel} in the caller's thread, which for the page-cache hits they usually are costs a few
 * microseconds, far less than handing the work to an I/O thread and the result back. Both channels reach the same
 * page cache, and a flush (fdatasync) covers what either wrote. (A {@link FileChannel} closes itself when a
 * thread in it is interrupted; nothing interrupts the controller thread but the device's own close, after which
 * the file is closed anyway.) The namespace covers the first {@link #size()} bytes of the file in blocks of
 * {@link #BLOCK_SIZE} bytes.
 *
 * <p>Nothing maps the file: every transfer is a positional read or write of its own bytes, so a namespace may be
 * far larger than memory (a sparse file of terabytes on a small machine) and the page cache keeps what it likes.
 * A third handle, a plain fd, serves {@link #deallocate}: Dataset Management's deallocate punches holes
 * ({@code fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)}), which frees the blocks in the backing file and
 * makes them read as zeros, as DLFEAT promises; on a file system that cannot punch holes it writes zeros instead.
 */
final class NamespaceFile implements AutoCloseable {
    /** The logical block size (LBA format 0: 512-byte blocks, no metadata). */
    static final int BLOCK_SIZE = 512;
    static final int BLOCK_SHIFT = 9;
    private static final int ZERO_CHUNK = 1 << 20;
    private static final ByteBuffer ZEROES = ByteBuffer.allocateDirect(ZERO_CHUNK).asReadOnlyBuffer();

    private final Path path;
    private final long size;
    private final ExecutorService io;
    private final AsynchronousFileChannel channel;
    private final FileChannel direct;
    /** The fd for fallocate, which no Java channel offers; closed once, in {@link #close}. */
    private final int fd;
    /** Set once the file system has answered that it cannot punch holes: zeros are written from then on. */
    private volatile boolean cannotPunch;

    private NamespaceFile(Path path, long size, ExecutorService io, AsynchronousFileChannel channel,
            FileChannel direct, int fd) {
        this.path = path;
        this.size = size;
        this.io = io;
        this.channel = channel;
        this.direct = direct;
        this.fd = fd;
    }

    /**
     * Opens {@code path}, creating it when missing. With {@code size} &gt; 0 the namespace has that size and a
     * shorter file is extended (never truncated); with {@code size} 0 the file must exist and its size is used.
     */
    static NamespaceFile open(Path path, long size, String threadName) throws IOException {
        long bytes = size;
        if (bytes == 0) {
            if (!Files.exists(path)) {
                throw new IllegalArgumentException("backing file " + path + " does not exist: give --size");
            }
            bytes = Files.size(path);
        }
        if (bytes < BLOCK_SIZE || bytes % BLOCK_SIZE != 0) {
            throw new IllegalArgumentException("namespace size must be a positive multiple of " + BLOCK_SIZE
                    + " bytes: " + bytes);
        }
        AtomicInteger n = new AtomicInteger();
        ExecutorService io = Executors.newFixedThreadPool(4, r -> {
            Thread t = new Thread(r, threadName + "-io-" + n.incrementAndGet());
            t.setDaemon(true);
            return t;
        });
        try {
            AsynchronousFileChannel channel = AsynchronousFileChannel.open(path,
                    Set.of(StandardOpenOption.READ, StandardOpenOption.WRITE, StandardOpenOption.CREATE), io);
            FileChannel direct;
            try {
                if (channel.size() < bytes) {
                    // Sparse extension: blocks never written read as zeros.
                    channel.write(ByteBuffer.wrap(new byte[1]), bytes - 1).get();
                }
                direct = FileChannel.open(path, StandardOpenOption.READ, StandardOpenOption.WRITE);
            } catch (Exception e) {
                channel.close();
                throw new IOException("cannot size " + path + " to " + bytes + " bytes", e);
            }
            int fd;
            try {
                fd = Linux.open(path.toString(), Linux.O_RDWR);
            } catch (ErrnoException e) {
                channel.close();
                direct.close();
                throw new IOException("cannot open " + path + ": " + e.getMessage(), e);
            }
            return new NamespaceFile(path, bytes, io, channel, direct, fd);
        } catch (IOException | RuntimeException e) {
            io.shutdownNow();
            throw e;
        }
    }

    Path path() {
        return path;
    }

    /** The namespace size in bytes. */
    long size() {
        return size;
    }

    /** The namespace size in logical blocks. */
    long blocks() {
        return size >>> BLOCK_SHIFT;
    }

    /** Reads {@code dst.remaining()} bytes at {@code offset}; bytes past the end of the file read as zeros. */
    CompletableFuture<Void> read(long offset, ByteBuffer dst) {
        CompletableFuture<Void> done = new CompletableFuture<>();
        readMore(offset, dst, done);
        return done;
    }

    private void readMore(long offset, ByteBuffer dst, CompletableFuture<Void> done) {
        if (!dst.hasRemaining()) {
            done.complete(null);
            return;
        }
        channel.read(dst, offset, null, new CompletionHandler<Integer, Void>() {
            @Override
            public void completed(Integer n, Void a) {
                if (n < 0) {
                    while (dst.hasRemaining()) {
                        dst.put((byte) 0);
                    }
                    done.complete(null);
                } else {
                    readMore(offset + n, dst, done);
                }
            }

            @Override
            public void failed(Throwable e, Void a) {
                done.completeExceptionally(e);
            }
        });
    }

    /**
     * Reads {@code dst.remaining()} bytes at {@code offset} in this thread (bytes past the end of the file read as
     * zeros). For small transfers: the caller waits for the disk on a page-cache miss.
     */
    void readNow(long offset, ByteBuffer dst) throws IOException {
        long at = offset;
        while (dst.hasRemaining()) {
            int n = direct.read(dst, at);
            if (n < 0) {
                while (dst.hasRemaining()) {
                    dst.put((byte) 0);
                }
                return;
            }
            at += n;
        }
    }

    /** Writes {@code src.remaining()} bytes at {@code offset} in this thread. For small transfers. */
    void writeNow(long offset, ByteBuffer src) throws IOException {
        long at = offset;
        while (src.hasRemaining()) {
            at += direct.write(src, at);
        }
    }

    /** Writes {@code src.remaining()} bytes at {@code offset}. */
    CompletableFuture<Void> write(long offset, ByteBuffer src) {
        CompletableFuture<Void> done = new CompletableFuture<>();
        writeMore(offset, src, done);
        return done;
    }

    private void writeMore(long offset, ByteBuffer src, CompletableFuture<Void> done) {
        if (!src.hasRemaining()) {
            done.complete(null);
            return;
        }
        channel.write(src, offset, null, new CompletionHandler<Integer, Void>() {
            @Override
            public void completed(Integer n, Void a) {
                writeMore(offset + n, src, done);
            }

            @Override
            public void failed(Throwable e, Void a) {
                done.completeExceptionally(e);
            }
        });
    }

    /** Writes {@code length} zero bytes at {@code offset}, a chunk at a time. */
    CompletableFuture<Void> writeZeroes(long offset, long length) {
        if (length <= 0) {
            return CompletableFuture.completedFuture(null);
        }
        int n = (int) Math.min(ZERO_CHUNK, length);
        return write(offset, ZEROES.duplicate().limit(n)).thenCompose(v -> writeZeroes(offset + n, length - n));
    }

    /**
     * Deallocates {@code length} bytes at {@code offset} on an I/O thread (a large range can take the file system
     * a while): the range reads as zeros afterwards and its whole blocks no longer take space in the backing file.
     */
    CompletableFuture<Void> deallocate(long offset, long length) {
        if (length <= 0) {
            return CompletableFuture.completedFuture(null);
        }
        if (cannotPunch) {
            return writeZeroes(offset, length);
        }
        return CompletableFuture.supplyAsync(() -> punch(offset, length), io)
                .thenCompose(punched -> punched ? CompletableFuture.completedFuture(null)
                        : writeZeroes(offset, length));
    }

    /** Punches the hole; false when the file system cannot, which is remembered. */
    private boolean punch(long offset, long length) {
        try {
            Linux.fallocate(fd, Linux.FALLOC_FL_PUNCH_HOLE | Linux.FALLOC_FL_KEEP_SIZE, offset, length);
            return true;
        } catch (ErrnoException e) {
            if (e.errno() == Errno.ENOTSUP) {
                cannotPunch = true;
                return false;
            }
            throw new java.io.UncheckedIOException(new IOException("deallocate " + length + " bytes at " + offset
                    + " of " + path + ": " + e.getMessage(), e));
        }
    }

    /** Makes every completed write durable (fdatasync), on an I/O thread. */
    CompletableFuture<Void> flush() {
        return CompletableFuture.runAsync(() -> {
            try {
                channel.force(false);
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        }, io);
    }

    @Override
    public void close() {
        try {
            channel.force(false);
        } catch (IOException ignored) {
            // Closing anyway; the data is in the page cache.
        }
        try {
            channel.close();
        } catch (IOException ignored) {
            // Nothing more to do for a channel that failed to close.
        }
        try {
            direct.close();
        } catch (IOException ignored) {
            // As above.
        }
        io.shutdownNow();
        try {
            Linux.close(fd);
        } catch (ErrnoException ignored) {
            // The fd is gone either way (close never leaves it open on Linux).
        }
    }
}
