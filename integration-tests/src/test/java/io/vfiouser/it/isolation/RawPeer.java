package io.vfiouser.it.isolation;

import io.vfiouser.transport.linux.ErrnoException;
import io.vfiouser.transport.linux.Linux;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/**
 * A client that is nothing but a non-blocking socket (no event loop, no vfio-user client): for tests that need a
 * peer which connects and then does exactly what the test says, such as never sending VERSION, never reading, or
 * hanging up while it waits. It reads only when asked; closing it closes its fd. (It uses the project's own
 * syscalls rather than java.nio, whose first use leaves a descriptor of its own open for good, which the fd checks
 * of the fixtures would count as a leak.)
 */
public final class RawPeer implements AutoCloseable {
    private static final ValueLayout.OfShort SHORT = ValueLayout.JAVA_SHORT_UNALIGNED;
    private static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT_UNALIGNED;

    private final int fd;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment in = arena.allocate(64 << 10);
    private long filled;
    private boolean eof;
    private boolean closed;

    private RawPeer(int fd) {
        this.fd = fd;
    }

    /**
     * Connects to {@code socket}: done as soon as the connection is in the listen backlog (the server need not have
     * accepted it yet). Retries while the backlog is full.
     */
    public static RawPeer connect(Path socket) throws ErrnoException, InterruptedException {
        int fd = Linux.socketUnix();
        try {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(Conditions.DEADLINE_S);
            while (!Linux.connect(fd, socket.toString())) {
                if (System.nanoTime() > deadline) {
                    throw new AssertionError("the listen backlog of " + socket + " stayed full");
                }
                Thread.sleep(1);
            }
        } catch (ErrnoException | RuntimeException | InterruptedException | Error e) {
            Linux.close(fd);
            throw e;
        }
        return new RawPeer(fd);
    }

    /** Sends a VERSION 0.0 request with message id {@code id} and no capabilities. */
    public void sendVersion(int id) throws ErrnoException {
        MemorySegment m = arena.allocate(20);
        m.set(SHORT, 0, (short) id);
        m.set(SHORT, 2, (short) 1);
        m.set(INT, 4, 20);
        long sent = Linux.send(fd, m.address(), 20);
        if (sent != 20) {
            throw new AssertionError("VERSION did not fit in the socket: " + sent);
        }
    }

    /**
     * Waits until a whole message has arrived and returns its header's {@code msg_id | error << 16} (the error is 0
     * for a successful reply); fails if the server closes the connection first or nothing comes within the
     * deadline of {@link Conditions}.
     */
    public long awaitReply() throws ErrnoException, InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(Conditions.DEADLINE_S);
        while (true) {
            pump();
            if (filled >= 16) {
                int size = in.get(INT, 4);
                if (filled >= size) {
                    int id = Short.toUnsignedInt(in.get(SHORT, 0));
                    int flags = in.get(INT, 8);
                    int error = (flags & 0x20) != 0 ? in.get(INT, 12) : 0;
                    MemorySegment.copy(in, size, in, 0, filled - size);
                    filled -= size;
                    return id | ((long) error << 16);
                }
            }
            if (eof) {
                throw new AssertionError("the server closed the connection instead of replying");
            }
            if (System.nanoTime() > deadline) {
                throw new AssertionError("no reply within " + Conditions.DEADLINE_S + " s");
            }
            Thread.sleep(1);
        }
    }

    /** Writes all of {@code bytes}, waiting while the socket buffer is full. */
    public void write(byte[] bytes) throws ErrnoException, InterruptedException {
        try (Arena scratch = Arena.ofConfined()) {
            MemorySegment segment = scratch.allocate(bytes.length);
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

    /**
     * Everything the server sends from now until it closes the connection (a reset counts as closed); fails if it
     * has not closed it within the deadline of {@link Conditions}, or sends more than 64 KiB.
     */
    public byte[] readUntilEof() throws ErrnoException, InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(Conditions.DEADLINE_S);
        while (true) {
            try {
                pump();
            } catch (ErrnoException e) {
                if (e.errno() != io.vfiouser.transport.linux.Errno.ECONNRESET) {
                    throw e;
                }
                eof = true;
            }
            if (eof) {
                byte[] all = in.asSlice(0, filled).toArray(ValueLayout.JAVA_BYTE);
                filled = 0;
                return all;
            }
            if (filled == in.byteSize()) {
                throw new AssertionError("the server sent more than " + filled + " bytes without closing");
            }
            if (System.nanoTime() > deadline) {
                throw new AssertionError("the server did not close the connection; it sent " + filled + " bytes");
            }
            Thread.sleep(1);
        }
    }

    /**
     * Everything the server has sent since the last call, possibly nothing; does not wait. A reset counts as the
     * end of the stream, which {@link #closedByServer()} then reports: for a peer that reads a stream of any
     * length as it comes (the buffer of {@link #readUntilEof()} holds 64 KiB).
     */
    public byte[] take() throws ErrnoException {
        try {
            pump();
        } catch (ErrnoException e) {
            if (e.errno() != io.vfiouser.transport.linux.Errno.ECONNRESET) {
                throw e;
            }
            eof = true;
        }
        byte[] all = in.asSlice(0, filled).toArray(ValueLayout.JAVA_BYTE);
        filled = 0;
        return all;
    }

    /** Whether any byte from the server has arrived by now; does not wait. */
    public boolean hasData() throws ErrnoException {
        pump();
        return filled > 0;
    }

    /** Whether the server has closed the connection by now (reading whatever came before); does not wait. */
    public boolean closedByServer() throws ErrnoException {
        pump();
        return eof;
    }

    /** Waits until the server closes the connection. */
    public void awaitClosedByServer() throws InterruptedException {
        Conditions.await("the server closed the connection", () -> {
            try {
                return closedByServer();
            } catch (ErrnoException e) {
                return true; // ECONNRESET: closed too
            }
        });
    }

    private void pump() throws ErrnoException {
        while (!eof && filled < in.byteSize()) {
            long n = Linux.read(fd, in.asSlice(filled));
            if (n == 0) {
                eof = true;
            }
            if (n <= 0) {
                return;
            }
            filled += n;
        }
    }

    @Override
    public void close() throws ErrnoException {
        if (!closed) {
            closed = true;
            Linux.close(fd);
            arena.close();
        }
    }
}
