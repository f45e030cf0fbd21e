package io.vfiouser.it;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vfiouser.client.DeviceMigration;
import io.vfiouser.client.GuestMemory;
import io.vfiouser.client.VfioUserClient;
import io.vfiouser.client.VfioUserErrorReplyException;
import io.vfiouser.codec.VfioUserCommand;
import io.vfiouser.codec.payload.DmaMapRequest;
import io.vfiouser.codec.payload.MigDeviceState;
import io.vfiouser.examples.nvme.NvmeDevice;
import io.vfiouser.examples.nvme.NvmeOptions;
import io.vfiouser.transport.FdSet;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import io.vfiouser.client.MigrationDriver;
import io.vfiouser.examples.nulldev.NullDevice;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Live migration between two servers in this JVM (the driver in {@code client}): the null device while it works,
 * and a failed migration that leaves the source running.
 */
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

    @TempDir
    Path dir;

    @Test
    void aDestinationThatRefusesTheStateLeavesTheSourceRunning() throws Exception {
        try (GuestMemory sourceRam = GuestMemory.allocate(NullMigrationScenario.RAM, 1 << 20);
             GuestMemory destinationRam = GuestMemory.allocate(NullMigrationScenario.RAM, 1 << 20);
             ServerFixture source = new ServerFixture(NullDevice.description("src"), new NullDevice())) {
            // Another kind of device: it resumes, but refuses the null device's stream at its header.
            ServerFixture destination = new ServerFixture(NvmeDevice.description("dst"),
                    new NvmeDevice("dst", new NvmeOptions(dir.resolve("ns.img"), 1 << 20)));
            try {
                VfioUserClient s = source.client();
                assertThat(Wire.errno(s, VfioUserCommand.DMA_MAP, DmaMapRequest.of(3, 0, NullMigrationScenario.RAM,
                        1 << 20), FdSet.of(sourceRam.dupFd()))).isZero();
                NullMigrationScenario.register(s, NullDevice.SCRATCH, 0x1234);
                MigrationDriver driver = new MigrationDriver(s, destination.client(),
                        List.of(new MigrationDriver.MemoryPair(sourceRam, destinationRam)),
                        MigrationDriver.Options.DEFAULT);
                assertThatThrownBy(() -> driver.migrate(() -> { }))
                        .isInstanceOf(ExecutionException.class).hasCauseInstanceOf(VfioUserErrorReplyException.class);
                DeviceMigration m = new DeviceMigration(s);
                assertThat(m.state().get(20, TimeUnit.SECONDS)).as("the source runs on")
                        .isEqualTo(MigDeviceState.RUNNING);
                assertThat(NullMigrationScenario.register(s, NullDevice.SCRATCH)).isEqualTo(0x1234);
                assertThat(m.dirtyReport(NullMigrationScenario.RAM, 1 << 20, 4096))
                        .as("logging is off again").failsWithin(20, TimeUnit.SECONDS)
                        .withThrowableOfType(ExecutionException.class)
                        .withCauseInstanceOf(VfioUserErrorReplyException.class)
                        .satisfies(e -> assertThat(((VfioUserErrorReplyException) e.getCause()).errno())
                                .isEqualTo(22));
            } finally {
                destination.closeNested();
            }
        }
    }
}
