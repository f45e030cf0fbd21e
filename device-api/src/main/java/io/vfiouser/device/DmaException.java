package io.vfiouser.device;

/** A DMA access failed: unmapped, not permitted, or the memory behind it is gone. Carries an errno. */
public final class DmaException extends Exception {
    private final int errno;

    public DmaException(int errno, String message) {
        super(message);
        this.errno = errno;
    }

    public DmaException(int errno, String message, Throwable cause) {
        super(message, cause);
        this.errno = errno;
    }

    /** A Linux errno: EFAULT (not mapped), EACCES (not permitted), EIO (memory gone). */
    public int errno() {
        return errno;
    }
}
