package io.vfiouser.device;

/**
 * The static half of live migration: that a device can be migrated, and how. A device opts in with
 * {@link DeviceDescription.Builder#migration(MigrationSupport)}; the client then finds the MIGRATION device feature
 * (with STOP_COPY, and PRE_COPY when {@link #preCopy()}), the migration state machine and dirty-page logging.
 *
 * <p>The framework migrates its own share of the device by itself: the configuration space, the interrupt state
 * (MSI-X table and pending bits, MSI pending bits, the INTx level) and the contents of memory-backed regions. A
 * device whose state is all there migrates with no code of its own. A device with state of its own (registers,
 * queues) implements {@link VfioUserMigration} as well, next to its {@link VfioUserDevice}.
 *
 * @param preCopy whether the device offers the PRE_COPY state (a first part of its state is read while it still
 *                runs); without it the client goes from RUNNING through STOP to STOP_COPY
 */
public record MigrationSupport(boolean preCopy) {
    /** STOP_COPY and PRE_COPY: what libvfio-user announces. */
    public static final MigrationSupport PRE_COPY = new MigrationSupport(true);
    /** STOP_COPY only. */
    public static final MigrationSupport STOP_COPY_ONLY = new MigrationSupport(false);
}
