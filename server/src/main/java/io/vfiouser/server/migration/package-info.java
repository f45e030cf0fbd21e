/**
 * Live migration (digest 3.16-3.18): the DEVICE_FEATURE operations
 * ({@link io.vfiouser.server.migration.DeviceFeatures}), the state machine's paths
 * ({@link io.vfiouser.server.migration.MigrationPaths}), the phases of a saving session
 * ({@link io.vfiouser.server.migration.SavePhase}) and the format of the migration data stream
 * ({@link io.vfiouser.server.migration.MigrationRecord}, {@link io.vfiouser.server.migration.MigrationStreamReader}).
 * The connection's {@code ConnectionMigration} glues them to the device.
 */
package io.vfiouser.server.migration;
