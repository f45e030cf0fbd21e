package io.vfiouser.it;

import io.vfiouser.it.isolation.Conditions;
import io.vfiouser.transport.linux.ErrnoException;
import io.vfiouser.transport.linux.Linux;
import io.vfiouser.transport.linux.MsgHdr;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

/**
 * A vfio-user client that puts on the wire exactly what SPDK's user-space client does
 * ({@code lib/vfio_user/host/vfio_user.c}, {@code vfio_user_pci.c}; see docs/clients.md): one request at a time,
 * every message with id 0 and flags 0, the whole request in one {@code sendmsg} with fds only on DMA_MAP and
 * DMA_UNMAP, the reply read as its 16-byte header first (with any fds) and then its payload. No VERSION JSON, no
 * SET_IRQS. Its payloads are the C structures SPDK sends, byte for byte, including the 4064-byte
 * DEVICE_GET_REGION_INFO request.
 *
 * <p>It uses the project's own system calls on a non-blocking socket and waits for the reply by polling with a
 * deadline. It owns the fds replies bring until {@link Reply#closeFds()}; closing the client closes its socket.
 */
final class SpdkWireClient implements AutoCloseable {
    static final int VERSION = 1;
    static final int DMA_MAP = 2;
    static final int DMA_UNMAP = 3;
    static final int DEVICE_GET_INFO = 4;
    static final int DEVICE_GET_REGION_INFO = 5;
    static final int REGION_READ = 9;
    static final int REGION_WRITE = 10;

    /** SPDK's request buffer for region info ({@code vfio_device_map_bars_and_config_region}: 4096 bytes). */
    static final int REGION_INFO_BUFFER = 4096;
    private static final int HEADER = 16;

    /** A reply as SPDK reads it. */
    record Reply(int msgId, int command, int flags, int error, byte[] payload, int[] fds) {
        boolean isError() {
            return (flags & 0x20) != 0;
        }

        ByteBuffer data() {
            return ByteBuffer.wrap(payload).order(ByteOrder.LITTLE_ENDIAN);
        }

        void closeFds() throws ErrnoException {
            for (int fd : fds) {
                Linux.close(fd);
            }
        }
    }

    private final int socket;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment buffer = arena.allocate(1 << 20);
    private final MsgHdr msg = new MsgHdr();
    private boolean closed;

    private SpdkWireClient(int socket) {
        this.socket = socket;
    }

    /** Connects as {@code vfio_user_dev_setup} does, and sends nothing yet. */
    static SpdkWireClient connect(Path path) throws ErrnoException {
        int fd = Linux.socketUnix();
        try {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(Conditions.DEADLINE_S);
            while (!Linux.connect(fd, path.toString())) {
                if (System.nanoTime() > deadline) {
                    throw new AssertionError("cannot connect to " + path);
                }
                LockSupport.parkNanos(1_000_000);
            }
        } catch (ErrnoException | RuntimeException | Error e) {
            Linux.close(fd);
            throw e;
        }
        return new SpdkWireClient(fd);
    }

    /** Sends one request (id 0) with {@code fds} and returns its reply. The fds stay the caller's. */
    Reply request(int command, byte[] payload, int... fds) throws ErrnoException {
        int size = HEADER + payload.length;
        MemorySegment out = buffer.asSlice(0, size);
        out.set(ValueLayout.JAVA_SHORT_UNALIGNED, 0, (short) 0);
        out.set(ValueLayout.JAVA_SHORT_UNALIGNED, 2, (short) command);
        out.set(ValueLayout.JAVA_INT_UNALIGNED, 4, size);
        out.set(ValueLayout.JAVA_INT_UNALIGNED, 8, 0);
        out.set(ValueLayout.JAVA_INT_UNALIGNED, 12, 0);
        MemorySegment.copy(payload, 0, out, ValueLayout.JAVA_BYTE, HEADER, payload.length);
        long sent = 0;
        long deadline = deadline();
        while (sent < size) {
            msg.iov(0, out.address() + sent, size - sent);
            msg.prepareSend(1, fds, sent == 0 ? fds.length : 0);
            long n = Linux.sendmsg(socket, msg);
            if (n > 0) {
                sent += n;
            } else {
                waitOrFail(deadline, "sending command " + command);
            }
        }
        int[] received = new int[0];
        MemorySegment header = buffer.asSlice(0, HEADER);
        int got = 0;
        while (got < HEADER) {
            msg.iov(0, header.address() + got, HEADER - got);
            msg.prepareReceive(1);
            long n = Linux.recvmsg(socket, msg);
            if (n == 0) {
                throw new AssertionError("the server closed the connection instead of answering " + command);
            }
            if (n > 0) {
                received = append(received, msg.receivedFds());
                got += (int) n;
            } else {
                waitOrFail(deadline, "the reply header to command " + command);
            }
        }
        int msgId = Short.toUnsignedInt(header.get(ValueLayout.JAVA_SHORT_UNALIGNED, 0));
        int replyCommand = Short.toUnsignedInt(header.get(ValueLayout.JAVA_SHORT_UNALIGNED, 2));
        int replySize = header.get(ValueLayout.JAVA_INT_UNALIGNED, 4);
        int flags = header.get(ValueLayout.JAVA_INT_UNALIGNED, 8);
        int error = header.get(ValueLayout.JAVA_INT_UNALIGNED, 12);
        MemorySegment body = buffer.asSlice(HEADER, replySize - HEADER);
        long have = 0;
        while (have < body.byteSize()) {
            long n = Linux.read(socket, body.asSlice(have));
            if (n == 0) {
                throw new AssertionError("the server closed the connection inside the reply to " + command);
            }
            if (n > 0) {
                have += n;
            } else {
                waitOrFail(deadline, "the reply payload to command " + command);
            }
        }
        return new Reply(msgId, replyCommand, flags, error, body.toArray(ValueLayout.JAVA_BYTE), received);
    }

    private static long deadline() {
        return System.nanoTime() + TimeUnit.SECONDS.toNanos(Conditions.DEADLINE_S);
    }

    private static void waitOrFail(long deadline, String what) {
        if (System.nanoTime() > deadline) {
            throw new AssertionError("timed out: " + what);
        }
        LockSupport.parkNanos(20_000);
    }

    private static int[] append(int[] a, int[] b) {
        if (b.length == 0) {
            return a;
        }
        int[] out = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    // ---------------------------------------------------------------------------------- SPDK's payloads

    /** {@code struct vfio_user_version} with major 0, minor 1 and no data: 4 bytes, no JSON, no NUL. */
    static byte[] version() {
        return le(4).putShort((short) 0).putShort((short) 1).array();
    }

    /** {@code struct vfio_user_device_info} with argsz 16. */
    static byte[] deviceInfo() {
        return le(16).putInt(16).array();
    }

    /**
     * {@code vfio_user_get_dev_region_info}: argsz = buffer - sizeof(struct vfio_region_info) = 4064, and that many
     * bytes sent, the index set and the rest zero.
     */
    static byte[] regionInfo(int index) {
        int argsz = REGION_INFO_BUFFER - 32;
        return le(argsz).putInt(argsz).putInt(0).putInt(index).array();
    }

    /** {@code struct vfio_user_region_access} of a read: offset, region, count, no data. */
    static byte[] regionRead(int region, long offset, int count) {
        return le(16).putLong(offset).putInt(region).putInt(count).array();
    }

    static byte[] regionWrite(int region, long offset, byte[] data) {
        return le(16 + data.length).putLong(offset).putInt(region).putInt(data.length).put(data).array();
    }

    /** {@code struct vfio_user_dma_map}: argsz 32, READ | WRITE, the file offset, IOVA (= SPDK's vaddr), size. */
    static byte[] dmaMap(long iova, long size, long offset) {
        return le(32).putInt(32).putInt(3).putLong(offset).putLong(iova).putLong(size).array();
    }

    /** {@code struct vfio_user_dma_unmap}: argsz 24, no flags, IOVA, size (SPDK attaches the region's fd). */
    static byte[] dmaUnmap(long iova, long size) {
        return le(24).putInt(24).putInt(0).putLong(iova).putLong(size).array();
    }

    static ByteBuffer le(int size) {
        return ByteBuffer.allocate(size).order(ByteOrder.LITTLE_ENDIAN);
    }

    @Override
    public void close() throws ErrnoException {
        if (!closed) {
            closed = true;
            Linux.close(socket);
            arena.close();
        }
    }
}
