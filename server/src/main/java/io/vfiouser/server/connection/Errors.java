package io.vfiouser.server.connection;

import io.vfiouser.codec.VfioUserProtocolException;
import io.vfiouser.device.DmaException;
import io.vfiouser.transport.linux.Errno;
import io.vfiouser.transport.linux.ErrnoException;
import java.nio.channels.ClosedChannelException;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeoutException;

/** The one place that turns a failure into the errno of an error reply. */
final class Errors {
    private Errors() {
    }

    /** The errno a client is told for {@code failure}; EIO when nothing more specific is known. */
    static int errnoOf(Throwable failure) {
        Throwable t = unwrap(failure);
        if (t instanceof VfioUserProtocolException p) {
            return p.errno();
        }
        if (t instanceof DmaException d) {
            return d.errno();
        }
        if (t instanceof ErrnoException e) {
            return e.errno();
        }
        if (t instanceof IllegalArgumentException || t instanceof IndexOutOfBoundsException) {
            return Errno.EINVAL;
        }
        if (t instanceof UnsupportedOperationException) {
            return Errno.ENOTSUP;
        }
        if (t instanceof ClosedChannelException) {
            return Errno.ENOTCONN;
        }
        if (t instanceof TimeoutException) {
            return Errno.ETIMEDOUT;
        }
        return Errno.EIO;
    }

    /** Whether the failure is one the protocol expects (logged quietly) rather than a bug in a device. */
    static boolean isProtocolError(Throwable failure) {
        Throwable t = unwrap(failure);
        return t instanceof VfioUserProtocolException || t instanceof DmaException || t instanceof ErrnoException;
    }

    static Throwable unwrap(Throwable failure) {
        Throwable t = failure;
        while ((t instanceof CompletionException || t instanceof ExecutionException) && t.getCause() != null) {
            t = t.getCause();
        }
        return t;
    }
}
