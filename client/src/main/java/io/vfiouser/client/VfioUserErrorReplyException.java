package io.vfiouser.client;

import io.vfiouser.codec.VfioUserHeader;
import io.vfiouser.transport.linux.Errno;

/** The server answered a command with an error reply. */
public final class VfioUserErrorReplyException extends RuntimeException {
    private final VfioUserHeader header;

    public VfioUserErrorReplyException(VfioUserHeader header) {
        super("error reply " + Errno.name(header.error()) + " to " + header);
        this.header = header;
    }

    /** The errno of the reply. */
    public int errno() {
        return header.error();
    }

    public VfioUserHeader header() {
        return header;
    }
}
