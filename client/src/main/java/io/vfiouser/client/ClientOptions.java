package io.vfiouser.client;

import io.vfiouser.codec.DmaLayout;
import java.util.Objects;

/**
 * How a {@link VfioUserClient} presents itself.
 *
 * @param maxDataTransferSize {@code max_data_xfer_size} it announces and accepts
 * @param maxMsgFds           {@code max_msg_fds} it announces and accepts on one message
 * @param minor               the protocol minor version it asks for
 * @param negotiate           whether {@code connect} sends VERSION by itself
 * @param dmaLayout           how it reads and writes DMA_READ/DMA_WRITE payloads
 * @param twinSocket          whether it asks for a twin socket in VERSION ({@code twin_socket.supported}): the
 *                            server's own requests then come on a socket of their own, which the server passes
 *                            with its VERSION reply
 */
public record ClientOptions(int maxDataTransferSize, int maxMsgFds, int minor, boolean negotiate,
                            DmaLayout dmaLayout, boolean twinSocket) {
    /**
     * As QEMU announces itself: 1 MiB transfers, 16 fds, version 0.0, negotiating on connect, spec DMA layout, no
     * twin socket.
     */
    public static final ClientOptions DEFAULT = new ClientOptions(1 << 20, 16, 0, true, DmaLayout.SPEC, false);

    public ClientOptions {
        Objects.requireNonNull(dmaLayout, "dmaLayout");
        if (maxDataTransferSize < 1 || maxMsgFds < 0 || minor < 0 || minor > 0xFFFF) {
            throw new IllegalArgumentException("bad client options");
        }
    }

    /** Options without a twin socket. */
    public ClientOptions(int maxDataTransferSize, int maxMsgFds, int minor, boolean negotiate, DmaLayout dmaLayout) {
        this(maxDataTransferSize, maxMsgFds, minor, negotiate, dmaLayout, false);
    }

    /** The same options, without negotiating on connect (for tests of what comes before VERSION). */
    public ClientOptions withoutNegotiation() {
        return new ClientOptions(maxDataTransferSize, maxMsgFds, minor, false, dmaLayout, twinSocket);
    }

    public ClientOptions withMinor(int minor) {
        return new ClientOptions(maxDataTransferSize, maxMsgFds, minor, negotiate, dmaLayout, twinSocket);
    }

    public ClientOptions withDmaLayout(DmaLayout layout) {
        return new ClientOptions(maxDataTransferSize, maxMsgFds, minor, negotiate, layout, twinSocket);
    }

    public ClientOptions withMaxDataTransferSize(int size) {
        return new ClientOptions(size, maxMsgFds, minor, negotiate, dmaLayout, twinSocket);
    }

    /** The same options, asking for a twin socket (or not). */
    public ClientOptions withTwinSocket(boolean twin) {
        return new ClientOptions(maxDataTransferSize, maxMsgFds, minor, negotiate, dmaLayout, twin);
    }
}
