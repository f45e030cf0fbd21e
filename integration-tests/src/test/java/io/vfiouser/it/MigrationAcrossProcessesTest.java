package io.vfiouser.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.vfiouser.client.GuestMemory;
import io.vfiouser.client.MigrationDriver;
import io.vfiouser.client.VfioUserClient;
import io.vfiouser.transport.testing.FdCount;
import io.vfiouser.transport.testing.LeakDetection;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Live migration between two server processes, as in production: the examples jar started twice, the Java client
 * as the VMM moving the device from one to the other while it works: the null device while its DMA engine runs
 * ({@link NullMigrationScenario}), an NVMe controller in the middle of a write workload on a namespace file both
 * processes open ({@link NvmeMigrationTest}).
 */
class MigrationAcrossProcessesTest {
    private static final Path JAR = Path.of("..", "examples", "target", "vfio-user-examples.jar");

    @TempDir
    Path dir;

    @Test
    void theNullDeviceMovesToAnotherProcess() throws Exception {
        assertThat(JAR).as("the examples jar is built before the integration tests").exists();
        long fdsBefore = FdCount.now();
        Path sourceSocket = dir.resolve("src.sock");
        Path destinationSocket = dir.resolve("dst.sock");
        Process source = ExamplesLauncherTest.start(List.of("null", "--socket-path=" + sourceSocket),
                ProcessBuilder.Redirect.to(dir.resolve("src.log").toFile()));
        Process destination = ExamplesLauncherTest.start(List.of("null", "--socket-path=" + destinationSocket),
                ProcessBuilder.Redirect.to(dir.resolve("dst.log").toFile()));
        try {
            ExamplesLauncherTest.awaitSocket(sourceSocket, source);
            ExamplesLauncherTest.awaitSocket(destinationSocket, destination);
            try (GuestMemory sourceRam = GuestMemory.allocate(NullMigrationScenario.RAM,
                         NullMigrationScenario.RAM_SIZE);
                 GuestMemory destinationRam = GuestMemory.allocate(NullMigrationScenario.RAM,
                         NullMigrationScenario.RAM_SIZE);
                 VfioUserClient sourceClient = ExamplesLauncherTest.connectWithRetry(sourceSocket, source);
                 VfioUserClient destinationClient = ExamplesLauncherTest.connectWithRetry(destinationSocket,
                         destination)) {
                MigrationDriver.Report report = NullMigrationScenario.run(sourceClient, destinationClient, sourceRam,
                        destinationRam);
                assertThat(report.downtimeNanos()).isPositive();
            }
            source.destroy();
            destination.destroy();
            assertThat(source.waitFor(30, TimeUnit.SECONDS)).isTrue();
            assertThat(destination.waitFor(30, TimeUnit.SECONDS)).isTrue();
        } finally {
            source.destroyForcibly();
            destination.destroyForcibly();
        }
        FdCount.awaitAtMost(fdsBefore);
        LeakDetection.assertNoLeaks();
    }

    @Test
    void anNvmeControllerMovesToAnotherProcessInTheMiddleOfAWriteWorkload() throws Exception {
        assertThat(JAR).exists();
        long fdsBefore = FdCount.now();
        Path backing = dir.resolve("ns.img");
        Path sourceSocket = dir.resolve("src.sock");
        Path destinationSocket = dir.resolve("dst.sock");
        String size = "--size=" + (NvmeMigrationTest.NS_SIZE >> 20) + "M";
        Process source = ExamplesLauncherTest.start(List.of("nvme", "--socket-path=" + sourceSocket,
                "--backing=" + backing, size), ProcessBuilder.Redirect.to(dir.resolve("src.log").toFile()));
        ExamplesLauncherTest.awaitSocket(sourceSocket, source); // the source creates the file
        Process destination = ExamplesLauncherTest.start(List.of("nvme", "--socket-path=" + destinationSocket,
                "--backing=" + backing, size), ProcessBuilder.Redirect.to(dir.resolve("dst.log").toFile()));
        try {
            ExamplesLauncherTest.awaitSocket(destinationSocket, destination);
            try (GuestMemory sourceRam = GuestMemory.allocate(NvmeMigrationTest.RAM, NvmeMigrationTest.RAM_SIZE);
                 GuestMemory destinationRam = GuestMemory.allocate(NvmeMigrationTest.RAM, NvmeMigrationTest.RAM_SIZE);
                 VfioUserClient sourceClient = ExamplesLauncherTest.connectWithRetry(sourceSocket, source);
                 VfioUserClient destinationClient = ExamplesLauncherTest.connectWithRetry(destinationSocket,
                         destination)) {
                NvmeMigrationTest.run(sourceClient, destinationClient, sourceRam, destinationRam, backing);
            }
            source.destroy();
            destination.destroy();
            assertThat(source.waitFor(30, TimeUnit.SECONDS)).isTrue();
            assertThat(destination.waitFor(30, TimeUnit.SECONDS)).isTrue();
        } finally {
            source.destroyForcibly();
            destination.destroyForcibly();
        }
        FdCount.awaitAtMost(fdsBefore);
        LeakDetection.assertNoLeaks();
    }
}
