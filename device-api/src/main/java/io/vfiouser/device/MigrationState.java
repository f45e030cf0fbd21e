package io.vfiouser.device;

/**
 * The migration states of a device, numbered as the kernel's {@code vfio_device_mig_state} and the
 * MIG_DEVICE_STATE device feature number them. A device starts (and, after a reset or a new client, starts
 * again) in {@link #RUNNING}.
 *
 * <ul>
 * <li>{@link #RUNNING}: normal operation.</li>
 * <li>{@link #PRE_COPY}: still running normally, while the client reads a first part of the device's state.</li>
 * <li>{@link #STOP}: stopped: no DMA, no interrupts, no change of state the device makes by itself.</li>
 * <li>{@link #STOP_COPY}: stopped, while the client reads the rest of the device's state.</li>
 * <li>{@link #RESUMING}: stopped, while the client writes a saved state into the device.</li>
 * <li>{@link #ERROR}: a transition failed (a state that could not be loaded); only a reset leaves it.</li>
 * <li>{@link #RUNNING_P2P}, {@link #PRE_COPY_P2P}: peer-to-peer quiescing; not supported by this framework.</li>
 * </ul>
 */
public enum MigrationState {
    ERROR(0), STOP(1), RUNNING(2), STOP_COPY(3), RESUMING(4), RUNNING_P2P(5), PRE_COPY(6), PRE_COPY_P2P(7);

    private static final MigrationState[] BY_CODE = values();

    private final int code;

    MigrationState(int code) {
        this.code = code;
    }

    /** The number on the wire ({@code vfio_device_mig_state}). */
    public int code() {
        return code;
    }

    /** The state numbered {@code code}, or null for a number outside 0..7. */
    public static MigrationState ofCode(int code) {
        return code >= 0 && code < BY_CODE.length ? BY_CODE[code] : null;
    }

    /** Whether the device runs (may do DMA and raise interrupts) in this state. */
    public boolean running() {
        return this == RUNNING || this == PRE_COPY;
    }
}
