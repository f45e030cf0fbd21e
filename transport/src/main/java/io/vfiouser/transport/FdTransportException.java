package io.vfiouser.transport;

import java.io.IOException;

/**
 * File descriptors arrived where the stream can no longer be trusted: truncated control data, fds that belong to
 * no frame boundary, or more fds than the peer may send. The channel that raises it closes.
 */
public final class FdTransportException extends IOException {
    public FdTransportException(String message) {
        super(message);
    }
}
