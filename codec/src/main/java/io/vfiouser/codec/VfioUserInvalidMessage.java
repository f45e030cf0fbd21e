package io.vfiouser.codec;

import io.netty.util.AbstractReferenceCounted;
import io.vfiouser.transport.FdSet;
import java.util.Objects;

/**
 * A framed message the codec could not turn into a {@link VfioUserMessage}: an unknown command, invalid type
 * bits or a malformed payload (spec §6). {@link VfioUserMessageDecoder} passes it down the pipeline in place of
 * the message so that the dispatcher can answer {@link #errorReply()} (unless the header asks for no reply) and
 * keep the connection.
 *
 * <p>Ownership: it holds the fds that came with the message; reaching reference count 0 closes them. The
 * payload bytes were released by the decoder.
 */
public final class VfioUserInvalidMessage extends AbstractReferenceCounted {
    private final VfioUserHeader header;
    private final int errno;
    private final String reason;
    private final FdSet fds;

    public VfioUserInvalidMessage(VfioUserHeader header, int errno, String reason, FdSet fds) {
        this.header = Objects.requireNonNull(header, "header");
        this.errno = errno;
        this.reason = Objects.requireNonNull(reason, "reason");
        this.fds = Objects.requireNonNull(fds, "fds");
    }

    /** The header as received. */
    public VfioUserHeader header() {
        return header;
    }

    /** The errno to answer with. */
    public int errno() {
        return errno;
    }

    /** What was wrong, for logs. */
    public String reason() {
        return reason;
    }

    /** The fds that came with the message, closed when this is released. */
    public FdSet fds() {
        return fds;
    }

    /** The header-only error reply to this message: its id and command, flags 0x21, {@link #errno()}. */
    public VfioUserMessage errorReply() {
        return VfioUserMessage.errorReply(header, errno);
    }

    @Override
    public VfioUserInvalidMessage retain() {
        super.retain();
        return this;
    }

    @Override
    public VfioUserInvalidMessage touch() {
        return this;
    }

    @Override
    public VfioUserInvalidMessage touch(Object hint) {
        return this;
    }

    @Override
    protected void deallocate() {
        VfioUserMessage.closeFds(fds);
    }

    @Override
    public String toString() {
        return "VfioUserInvalidMessage(" + header + ", errno " + errno + ": " + reason + ", " + fds + ")";
    }
}
