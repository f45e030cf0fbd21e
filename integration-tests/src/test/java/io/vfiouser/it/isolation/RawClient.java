package io.vfiouser.it.isolation;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

/**
 * A client that speaks raw bytes over a blocking {@link SocketChannel}, for abuse no real client library would
 * commit: pipelining without ever reading replies, sending arbitrary VERSION JSON, closing at any point. It
 * reads only when told to ({@link #readMessage()}), so a test decides whether the server's replies pile up.
 */
public final class RawClient implements AutoCloseable {
    public static final int VERSION = 1;
    public static final int REGION_READ = 9;
    public static final int REGION_WRITE = 10;

    private final SocketChannel channel;

    private RawClient(SocketChannel channel) {
        this.channel = channel;
    }

    /**
     * Makes the JDK open the socket it keeps for the rest of the process (NIO's pre-close socket pair, created
     * with its socket dispatcher), so that a fixture counting fds before and after does not see it as a leak.
     */
    public static void loadNio() throws IOException {
        SocketChannel.open(StandardProtocolFamily.UNIX).close();
    }

    /** Connects to {@code socket} without negotiating. */
    public static RawClient connect(Path socket) throws IOException {
        SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX);
        try {
            ch.connect(UnixDomainSocketAddress.of(socket));
        } catch (IOException e) {
            ch.close();
            throw e;
        }
        return new RawClient(ch);
    }

    /** Connects and negotiates version 0.2 with an empty capability object; fails unless the server agrees. */
    public static RawClient negotiated(Path socket) throws IOException {
        RawClient c = connect(socket);
        try {
            c.write(version(0, "{}"));
            ByteBuffer reply = c.readMessage();
            if ((reply.getInt(8) & 0x20) != 0 || reply.getShort(2) != VERSION) {
                throw new IOException("VERSION refused with errno " + reply.getInt(12));
            }
            return c;
        } catch (IOException | RuntimeException e) {
            c.close();
            throw e;
        }
    }

    /** A VERSION command (0.2) carrying {@code json} and its NUL. */
    public static ByteBuffer version(int id, String json) {
        byte[] text = json.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = header(id, VERSION, 16 + 4 + text.length + 1, 0);
        b.putShort((short) 0).putShort((short) 2).put(text).put((byte) 0);
        return b.flip();
    }

    /** A REGION_READ of {@code count} bytes at {@code offset} of {@code region}. */
    public static ByteBuffer regionRead(int id, int region, long offset, int count) {
        ByteBuffer b = header(id, REGION_READ, 32, 0);
        b.putLong(offset).putInt(region).putInt(count);
        return b.flip();
    }

    /** A REGION_WRITE of the 8 bytes of {@code value} at {@code offset} of {@code region}. */
    public static ByteBuffer regionWrite(int id, int region, long offset, long value) {
        ByteBuffer b = header(id, REGION_WRITE, 40, 0);
        b.putLong(offset).putInt(region).putInt(8).putLong(value);
        return b.flip();
    }

    /** A DMA_MAP of {@code size} bytes at {@code address}, readable and writable, without an fd (message mode). */
    public static ByteBuffer dmaMapWithoutFd(int id, long address, long size) {
        ByteBuffer b = header(id, 2, 48, 0);
        b.putInt(32).putInt(3).putLong(0).putLong(address).putLong(size);
        return b.flip();
    }

    /** A reply to a server's command {@code request}: its header with the reply flag, then {@code payload}. */
    public static ByteBuffer replyTo(ByteBuffer request, byte[] payload) {
        ByteBuffer b = header(request.getShort(0) & 0xFFFF, request.getShort(2) & 0xFFFF, 16 + payload.length, 1);
        return b.put(payload).flip();
    }

    /** A header-only message: {@code command} with no payload (most commands refuse it with EINVAL). */
    public static ByteBuffer headerOnly(int id, int command) {
        return header(id, command, 16, 0).flip();
    }

    private static ByteBuffer header(int id, int command, int size, int flags) {
        ByteBuffer b = ByteBuffer.allocate(size).order(ByteOrder.LITTLE_ENDIAN);
        return b.putShort((short) id).putShort((short) command).putInt(size).putInt(flags).putInt(0);
    }

    /** Writes all of {@code bytes}, blocking while the socket is full. */
    public void write(ByteBuffer bytes) throws IOException {
        while (bytes.hasRemaining()) {
            channel.write(bytes);
        }
    }

    /**
     * Switches the socket to non-blocking mode: {@link #offer} then never waits, so the thread that writes can
     * also be the one that stops and closes (closing a channel another thread is blocked on would keep its fd
     * open until that thread wakes).
     */
    public RawClient nonBlocking() throws IOException {
        channel.configureBlocking(false);
        return this;
    }

    /** Writes what the socket takes of {@code bytes} now (non-blocking mode); returns the number of bytes. */
    public int offer(ByteBuffer bytes) throws IOException {
        return channel.write(bytes);
    }

    /** Reads one whole message (blocking); its header starts at index 0, little-endian. */
    public ByteBuffer readMessage() throws IOException {
        ByteBuffer header = readFully(ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN));
        int size = header.getInt(4);
        if (size < 16) {
            throw new IOException("bad msg_size " + size);
        }
        ByteBuffer all = ByteBuffer.allocate(size).order(ByteOrder.LITTLE_ENDIAN).put(header.rewind());
        return readFully(all).rewind();
    }

    /**
     * {@link #readMessage()} that gives up after {@code timeout}: it then closes the connection (which ends the
     * blocked read) and fails, so that a server that never answers fails a test instead of hanging it.
     */
    public ByteBuffer readMessage(java.time.Duration timeout) throws Exception {
        java.util.concurrent.CompletableFuture<ByteBuffer> read = new java.util.concurrent.CompletableFuture<>();
        // A platform thread: a virtual one would make the JDK open its poller's epoll fds for good.
        Thread reader = Thread.ofPlatform().daemon().start(() -> {
            try {
                read.complete(readMessage());
            } catch (Throwable t) {
                read.completeExceptionally(t);
            }
        });
        try {
            return read.get(timeout.toMillis(), java.util.concurrent.TimeUnit.MILLISECONDS);
        } catch (java.util.concurrent.TimeoutException e) {
            close();
            reader.join();
            throw new java.io.IOException("no message from the server within " + timeout);
        }
    }

    private ByteBuffer readFully(ByteBuffer b) throws IOException {
        while (b.hasRemaining()) {
            if (channel.read(b) < 0) {
                throw new IOException("the server closed the connection");
            }
        }
        return b;
    }

    @Override
    public void close() throws IOException {
        channel.close();
    }
}
