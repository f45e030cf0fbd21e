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
 */
public record ClientOptions(int maxDataTransferSize, int maxMsgFds, int minor, boolean negotiate,
                            DmaLayout dmaLayout) {
    /** As QEMU announces itself: 1 MiB transfers, 16 fds, version 0.0, negotiating on connect, spec DMA layout. */
    public static final ClientOptions DEFAULT = new ClientOptions(1 << 20, 16, 0, true, DmaLayout.SPEC);

    public ClientOptions {
        Objects.requireNonNull(dmaLayout, "dmaLayout");
        if (maxDataTransferSize < 1 || maxMsgFds < 0 || minor < 0 || minor > 0xFFFF) {
            throw new IllegalArgumentException("bad client options");
        }
    }

    /** The same options, without negotiating on connect (for tests of what comes before VERSION). */
    public ClientOptions withoutNegotiation() {
        return new ClientOptions(maxDataTransferSize, maxMsgFds, minor, false, dmaLayout);
    }

    public ClientOptions withMinor(int minor) {
        return new ClientOptions(maxDataTransferSize, maxMsgFds, minor, negotiate, dmaLayout);
    }

    public ClientOptions withDmaLayout(DmaLayout layout) {
        return new ClientOptions(maxDataTransferSize, maxMsgFds, minor, negotiate, layout);
    }
}
