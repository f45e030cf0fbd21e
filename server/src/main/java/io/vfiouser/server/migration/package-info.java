/**
 * Live migration (digest 3.16-3.18): the state machine's paths ({@link io.vfiouser.server.migration.MigrationPaths})
 * and the format of the migration data stream ({@link io.vfiouser.server.migration.MigrationRecord},
 * {@link io.vfiouser.server.migration.MigrationStreamReader}). The session glues them to the device.
 */
package io.vfiouser.server.migration;
