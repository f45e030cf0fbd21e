package io.vfiouser.it.isolation;

import io.vfiouser.transport.linux.Errno;
import io.vfiouser.transport.linux.ErrnoException;
import io.vfiouser.transport.linux.Linux;
import java.io.ByteArrayOutputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/**
 * A bare client socket with no event loop and no codec: it sends exactly the bytes a test gives it and reads only
 * when asked, so it can play a client that breaks framing, or one that never reads. Built on the transport's own
 * {@link Linux} calls rather than {@code java.nio}, whose first use opens the JDK's I/O pollers, fds the fixtures'
 * fd check would count as leaked.
 */
public final class RawConnection implements AutoCloseable {
    private final int fd;
    private boolean closed;

    private RawConnection(int fd) {
        this.fd = fd;
    }

    /** Connects to {@code socket} (the server accepts it; nothing is sent). */
    public static RawConnection open(Path socket) throws ErrnoException, InterruptedException {
        int fd = Linux.socketUnix();
        try {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(Conditions.DEADLINE_S);
            while (!Linux.connect(fd, socket.toString())) {
                if (System.nanoTime() > deadline) {
                    throw new AssertionError("could not connect to " + socket);
                }
                Thread.sleep(1);
            }
        } catch (ErrnoException | RuntimeException | InterruptedException | Error e) {
            Linux.close(fd);
            throw e;
        }
        return new RawConnection(fd);
    }

    /** Writes all of {@code bytes}, waiting while the socket buffer is full. */
    public void write(byte[] bytes) throws ErrnoException, InterruptedException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment segment = arena.allocate(bytes.length);
            MemorySegment.copy(bytes, 0, segment, ValueLayout.JAVA_BYTE, 0, bytes.length);
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(Conditions.DEADLINE_S);
            long done = 0;
            while (done < bytes.length) {
                long n = Linux.write(fd, segment.asSlice(done));
                if (n > 0) {
                    done += n;
                } else if (System.nanoTime() > deadline) {
                    throw new AssertionError("the server did not read " + (bytes.length - done) + " bytes");
                } else {
                    Thread.sleep(1);
                }
            }
        }
    }

    /** Everything the server sends until it closes the connection (fails if it has not within the deadline). */
    public byte[] readUntilEof() throws ErrnoException, InterruptedException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buffer = arena.allocate(4096);
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(Conditions.DEADLINE_S);
            while (true) {
                long n;
                try {
                    n = Linux.read(fd, buffer);
                } catch (ErrnoException e) {
                    if (e.errno() == Errno.ECONNRESET) {
                        return out.toByteArray();
                    }
                    throw e;
                }
                if (n == 0) {
                    return out.toByteArray();
                }
                if (n > 0) {
                    out.write(buffer.asSlice(0, n).toArray(ValueLayout.JAVA_BYTE), 0, (int) n);
                } else if (System.nanoTime() > deadline) {
                    throw new AssertionError("the server did not close the connection; it sent " + out.size()
                            + " bytes");
                } else {
                    Thread.sleep(1);
                }
            }
        }
    }

    @Override
    public void close() throws ErrnoException {
        if (!closed) {
            closed = true;
            Linux.close(fd);
        }
    }
}
