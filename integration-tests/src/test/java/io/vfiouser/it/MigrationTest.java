package io.vfiouser.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.vfiouser.client.GuestMemory;
import io.vfiouser.client.MigrationDriver;
import io.vfiouser.examples.nulldev.NullDevice;
import org.junit.jupiter.api.Test;

/** Live migration of the null device between two servers in this JVM (the driver in {@code client}). */
class MigrationTest {

    @Test
    void theNullDeviceMigratesWhileItsDmaEngineRuns() throws Exception {
        try (GuestMemory sourceRam = GuestMemory.allocate(NullMigrationScenario.RAM, NullMigrationScenario.RAM_SIZE);
             GuestMemory destinationRam = GuestMemory.allocate(NullMigrationScenario.RAM,
                     NullMigrationScenario.RAM_SIZE);
             ServerFixture source = new ServerFixture(NullDevice.description("src"), new NullDevice())) {
            ServerFixture destination = new ServerFixture(NullDevice.description("dst"), new NullDevice());
            try {
                MigrationDriver.Report report = NullMigrationScenario.run(source.client(), destination.client(),
                        sourceRam, destinationRam);
                assertThat(report.stopCopyBytes()).as("BAR2 travels in STOP_COPY").isGreaterThan(1 << 20);
            } finally {
                destination.closeNested(); // the source fixture's close checks fds and buffers for both
            }
        }
    }
}
