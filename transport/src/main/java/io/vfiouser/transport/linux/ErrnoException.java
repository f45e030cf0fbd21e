package io.vfiouser.transport.linux;

import java.io.IOException;

/** A failed Linux call: names the call and carries its errno. */
public final class ErrnoException extends IOException {
    private final String call;
    private final int errno;

    public ErrnoException(String call, int errno) {
        super(call + " failed: " + Errno.name(errno) + " (" + errno + ")");
        this.call = call;
        this.errno = errno;
    }

    /** The name of the call that failed, e.g. {@code "recvmsg"}. */
    public String call() {
        return call;
    }

    /** The Linux errno the call reported. */
    public int errno() {
        return errno;
    }
}
