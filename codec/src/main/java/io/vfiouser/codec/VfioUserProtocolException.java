package io.vfiouser.codec;

import io.vfiouser.transport.linux.Errno;

/**
 * A protocol violation that is answered with an error reply carrying {@link #errno()}; the connection lives on.
 * Payload decoders and {@link VfioUserCapabilities} throw it; {@link VfioUserMessageDecoder} is the one place
 * that turns it into a {@link VfioUserInvalidMessage}, and the dispatcher may throw it too.
 *
 * <p>No stack trace is captured: the exception is an expected outcome of bad input, and its message says what
 * was wrong.
 */
public final class VfioUserProtocolException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    private final int errno;

    /**
     * @param errno the positive Linux errno to answer with
     * @param message what was wrong, for logs
     */
    public VfioUserProtocolException(int errno, String message) {
        this(errno, message, null);
    }

    public VfioUserProtocolException(int errno, String message, Throwable cause) {
        super(message, cause, false, false);
        if (errno <= 0) {
            throw new IllegalArgumentException("errno must be positive: " + errno);
        }
        this.errno = errno;
    }

    /** An {@code EINVAL} violation, the errno of every malformed message. */
    public static VfioUserProtocolException invalid(String message) {
        return new VfioUserProtocolException(Errno.EINVAL, message);
    }

    /** The Linux errno to put into the error reply. */
    public int errno() {
        return errno;
    }

    @Override
    public String toString() {
        return "VfioUserProtocolException(" + Errno.name(errno) + "): " + getMessage();
    }
}
