package io.vfiouser.examples.nvme;

/**
 * A command cannot go on: it completes with {@link #status()}. Thrown only inside command handling (PRP walking,
 * DMA, validation) and always turned into a completion entry, never out of the device.
 */
final class CommandFailure extends Exception {
    private final int status;

    CommandFailure(int status, String message) {
        super(message, null, false, false);
        this.status = status;
    }

    /** The NVMe Status Field the command completes with. */
    int status() {
        return status;
    }
}
