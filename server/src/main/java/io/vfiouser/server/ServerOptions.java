package io.vfiouser.server;

import io.vfiouser.codec.DmaLayout;
import io.vfiouser.server.dma.SegmentMode;
import java.util.Objects;

/**
 * What the server announces and enforces on every connection.
 *
 * @param maxDataTransferSize the most data bytes one REGION/DMA read or write may carry ({@code max_data_xfer_size})
 * @param maxMsgFds           the most fds the server accepts on one message ({@code max_msg_fds})
 * @param socketFileMode      permission bits of the socket files the server creates
 * @param dmaLayout           how DMA_READ/DMA_WRITE payloads are laid out for clients that mapped memory without
 *                            an fd: QEMU's layout (the default, digest 3.11/3.12) or the spec's
 * @param dmaSegments         how devices reach guest memory the client shared with an fd that is not sealed
 *                            against shrinking: through a private copy ({@link SegmentMode#COPY}, the default,
 *                            safe with any client) or directly ({@link SegmentMode#DIRECT}, zero-copy, for trusted
 *                            clients; see {@link SegmentMode} for what an untrusted one could do). Memory sealed
 *                            with {@code F_SEAL_SHRINK} (QEMU's memfd backend) is always reached directly.
 * @param limits              what one client may hold of the server (queued bytes, held connections, timeouts, DMA
 *                            mappings, fds, log lines)
 */
public record ServerOptions(int maxDataTransferSize, int maxMsgFds, int socketFileMode, DmaLayout dmaLayout,
                            SegmentMode dmaSegments, ConnectionLimits limits) {
    /**
     * 1 MiB transfers, 16 fds a message (QEMU accepts at most 16), socket files 0600, QEMU's DMA layout, private
     * copies of unsealed guest memory, {@link ConnectionLimits#DEFAULT}.
     */
    public static final ServerOptions DEFAULT =
            new ServerOptions(1 << 20, 16, 0600, DmaLayout.QEMU, SegmentMode.COPY, ConnectionLimits.DEFAULT);

    /** Fixed payload bytes that may come on top of the data of one message (the largest fixed part is 32). */
    public static final int MAX_FIXED_PAYLOAD = 64;

    public ServerOptions {
        Objects.requireNonNull(dmaLayout, "dmaLayout");
        Objects.requireNonNull(dmaSegments, "dmaSegments");
        Objects.requireNonNull(limits, "limits");
        if (maxDataTransferSize < 4096 || maxDataTransferSize > (64 << 20)) {
            throw new IllegalArgumentException("maxDataTransferSize must be 4 KiB..64 MiB: " + maxDataTransferSize);
        }
        if (maxMsgFds < 1 || maxMsgFds > 253) {
            throw new IllegalArgumentException("maxMsgFds must be 1..253: " + maxMsgFds);
        }
        if ((socketFileMode & ~0777) != 0) {
            throw new IllegalArgumentException("socketFileMode must be permission bits: " + socketFileMode);
        }
    }

    /** The largest message the server reads: header, fixed payload and data. */
    public int maxMessageSize() {
        return 16 + MAX_FIXED_PAYLOAD + maxDataTransferSize;
    }

    /** These options with the default {@link ConnectionLimits}. */
    public ServerOptions(int maxDataTransferSize, int maxMsgFds, int socketFileMode, DmaLayout dmaLayout,
                         SegmentMode dmaSegments) {
        this(maxDataTransferSize, maxMsgFds, socketFileMode, dmaLayout, dmaSegments, ConnectionLimits.DEFAULT);
    }

    public ServerOptions withSocketFileMode(int mode) {
        return new ServerOptions(maxDataTransferSize, maxMsgFds, mode, dmaLayout, dmaSegments, limits);
    }

    public ServerOptions withDmaLayout(DmaLayout layout) {
        return new ServerOptions(maxDataTransferSize, maxMsgFds, socketFileMode, layout, dmaSegments, limits);
    }

    public ServerOptions withDmaSegments(SegmentMode mode) {
        return new ServerOptions(maxDataTransferSize, maxMsgFds, socketFileMode, dmaLayout, mode, limits);
    }

    public ServerOptions withLimits(ConnectionLimits limits) {
        return new ServerOptions(maxDataTransferSize, maxMsgFds, socketFileMode, dmaLayout, dmaSegments, limits);
    }
}
