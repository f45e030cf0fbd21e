package io.vfiouser.it;

import static io.vfiouser.it.Wire.errno;
import static org.assertj.core.api.Assertions.assertThat;

import io.vfiouser.client.GuestMemory;
import io.vfiouser.client.MigrationDriver;
import io.vfiouser.client.VfioUserClient;
import io.vfiouser.codec.VfioUserCommand;
import io.vfiouser.codec.payload.DmaMapRequest;
import io.vfiouser.examples.nulldev.NullDevice;
import io.vfiouser.examples.nvme.NvmeDevice;
import io.vfiouser.examples.nvme.NvmeOptions;
import io.vfiouser.transport.FdSet;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A benchmark, not a test (tag {@code migration-bench}, left out of the normal run): downtime (from the source's
 * STOP_COPY request to the destination's RUNNING reply) and bytes moved by {@link MigrationDriver} for the
 * {@code null} and {@code nvme} example devices, each migration between two fresh servers in this JVM. Run with
 * {@code mvn -B -o test -pl integration-tests -am -Dgroups=migration-bench -Dvfu.excludedGroups=
 * -Dtest=MigrationBenchmark -Dsurefire.failIfNoSpecifiedTests=false}; the table goes to standard output and to
 * {@code integration-tests/target/migration-bench.md}.
 *
 * <p>Scenarios: {@code null idle} (MSI-X programmed, 8 MiB guest memory, no workload); {@code null + DMA} (the
 * {@link NullMigrationScenario}: the DMA engine copies inside guest memory through pre-copy, then everything is
 * verified); {@code nvme} (controller enabled, one I/O queue pair, 16 writes of 4 KiB submitted just before the
 * stop); {@code null idle, two processes} (as {@code null idle}, between two examples-jar processes: needs
 * {@code mvn verify} or {@code package} to have built the jar). The VMM is assumed to track its own CPU writes, so guest memory is not copied again while stopped.
 */
@Tag("migration-bench")
class MigrationBenchmark {
    private static final int WARMUP = 3;
    private static final int RUNS = 15;

    @TempDir
    Path dir;

    private record Row(String scenario, List<MigrationDriver.Report> reports) {
        long downtime(double quantile) {
            long[] d = reports.stream().mapToLong(MigrationDriver.Report::downtimeNanos).sorted().toArray();
            return d[(int) Math.min(d.length - 1, Math.round(quantile * (d.length - 1)))];
        }

        /** The median of one component of the downtime, in ms. */
        double median(java.util.function.ToLongFunction<MigrationDriver.Report> f) {
            long[] d = reports.stream().mapToLong(f).sorted().toArray();
            return d[d.length / 2] / 1e6;
        }

        double mean(java.util.function.ToLongFunction<MigrationDriver.Report> f) {
            return reports.stream().mapToLong(f).average().orElse(0);
        }
    }

    @Test
    void downtimeAndBytes() throws Exception {
        List<Row> rows = new ArrayList<>();
        rows.add(measure("null idle", this::nullIdle));
        rows.add(measure("null + DMA workload", this::nullWithWorkload));
        rows.add(measure("nvme, 16 writes in flight", this::nvme));
        rows.add(acrossProcesses());
        StringBuilder out = new StringBuilder();
        out.append("| scenario | runs | downtime median | p90 | min | device state bytes (pre-copy + stop-copy) "
                + "| dirty pages copied (of them while stopped) |\n");
        out.append("|---|---|---|---|---|---|---|\n");
        for (Row r : rows) {
            out.append(String.format(Locale.ROOT, "| %s | %d | %.2f ms | %.2f ms | %.2f ms | %.0f + %.0f | %.1f (%.1f) |%n",
                    r.scenario(), r.reports().size(), r.downtime(0.5) / 1e6, r.downtime(0.9) / 1e6,
                    r.downtime(0) / 1e6, r.mean(MigrationDriver.Report::preCopyBytes),
                    r.mean(MigrationDriver.Report::stopCopyBytes), r.mean(MigrationDriver.Report::pagesCopied),
                    r.mean(MigrationDriver.Report::finalPages)));
        }
        out.append("\n| scenario | stop (quiesce) | state read + written | final dirty copy | resume |\n");
        out.append("|---|---|---|---|---|\n");
        for (Row r : rows) {
            out.append(String.format(Locale.ROOT, "| %s | %.2f ms | %.2f ms | %.2f ms | %.2f ms |%n", r.scenario(),
                    r.median(MigrationDriver.Report::stopNanos), r.median(MigrationDriver.Report::stateNanos),
                    r.median(MigrationDriver.Report::memoryNanos), r.median(MigrationDriver.Report::resumeNanos)));
        }
        System.out.println(out);
        Files.writeString(Path.of("target", "migration-bench.md"), out);
    }

    @FunctionalInterface
    private interface Scenario {
        MigrationDriver.Report run(int iteration) throws Exception;
    }

    private Row measure(String name, Scenario scenario) throws Exception {
        for (int i = 0; i < WARMUP; i++) {
            scenario.run(i);
        }
        List<MigrationDriver.Report> reports = new ArrayList<>();
        for (int i = 0; i < RUNS; i++) {
            reports.add(scenario.run(WARMUP + i));
        }
        return new Row(name, reports);
    }

    /** {@code null idle} between two examples processes (started once; each run connects two new clients). */
    private Row acrossProcesses() throws Exception {
        Path jar = Path.of("..", "examples", "target", "vfio-user-examples.jar");
        assertThat(jar).as("the examples jar (mvn verify builds it)").exists();
        Path s = dir.resolve("src.sock");
        Path d = dir.resolve("dst.sock");
        Process source = ExamplesLauncherTest.start(List.of("null", "--socket-path=" + s),
                ProcessBuilder.Redirect.DISCARD);
        Process destination = ExamplesLauncherTest.start(List.of("null", "--socket-path=" + d),
                ProcessBuilder.Redirect.DISCARD);
        try {
            ExamplesLauncherTest.awaitSocket(s, source);
            ExamplesLauncherTest.awaitSocket(d, destination);
            return measure("null idle, two processes", i -> {
                try (GuestMemory sourceRam = GuestMemory.allocate(NullMigrationScenario.RAM,
                             NullMigrationScenario.RAM_SIZE);
                     GuestMemory destinationRam = GuestMemory.allocate(NullMigrationScenario.RAM,
                             NullMigrationScenario.RAM_SIZE);
                     VfioUserClient sc = ExamplesLauncherTest.connectWithRetry(s, source);
                     VfioUserClient dc = ExamplesLauncherTest.connectWithRetry(d, destination)) {
                    map(sc, sourceRam, NullMigrationScenario.RAM, NullMigrationScenario.RAM_SIZE);
                    map(dc, destinationRam, NullMigrationScenario.RAM, NullMigrationScenario.RAM_SIZE);
                    int[] se = NullMigrationScenario.interrupts(sc, true);
                    int[] de = NullMigrationScenario.interrupts(dc, false);
                    try {
                        return new MigrationDriver(sc, dc, List.of(new MigrationDriver.MemoryPair(sourceRam,
                                destinationRam)), MigrationDriver.Options.DEFAULT).migrate(() -> { });
                    } finally {
                        closeAll(se);
                        closeAll(de);
                    }
                }
            });
        } finally {
            source.destroyForcibly();
            destination.destroyForcibly();
            source.waitFor();
            destination.waitFor();
        }
    }

    private MigrationDriver.Report nullIdle(int iteration) throws Exception {
        try (GuestMemory sourceRam = GuestMemory.allocate(NullMigrationScenario.RAM, NullMigrationScenario.RAM_SIZE);
             GuestMemory destinationRam = GuestMemory.allocate(NullMigrationScenario.RAM,
                     NullMigrationScenario.RAM_SIZE);
             ServerFixture source = new ServerFixture(NullDevice.description("src"), new NullDevice())) {
            ServerFixture destination = new ServerFixture(NullDevice.description("dst"), new NullDevice());
            try {
                VfioUserClient s = source.client();
                VfioUserClient d = destination.client();
                map(s, sourceRam, NullMigrationScenario.RAM, NullMigrationScenario.RAM_SIZE);
                map(d, destinationRam, NullMigrationScenario.RAM, NullMigrationScenario.RAM_SIZE);
                int[] se = NullMigrationScenario.interrupts(s, true);
                int[] de = NullMigrationScenario.interrupts(d, false);
                try {
                    return new MigrationDriver(s, d, List.of(new MigrationDriver.MemoryPair(sourceRam,
                            destinationRam)), MigrationDriver.Options.DEFAULT).migrate(() -> { });
                } finally {
                    closeAll(se);
                    closeAll(de);
                }
            } finally {
                destination.closeNested();
            }
        }
    }

    private MigrationDriver.Report nullWithWorkload(int iteration) throws Exception {
        try (GuestMemory sourceRam = GuestMemory.allocate(NullMigrationScenario.RAM, NullMigrationScenario.RAM_SIZE);
             GuestMemory destinationRam = GuestMemory.allocate(NullMigrationScenario.RAM,
                     NullMigrationScenario.RAM_SIZE);
             ServerFixture source = new ServerFixture(NullDevice.description("src"), new NullDevice())) {
            ServerFixture destination = new ServerFixture(NullDevice.description("dst"), new NullDevice());
            try {
                return NullMigrationScenario.run(source.client(), destination.client(), sourceRam, destinationRam);
            } finally {
                destination.closeNested();
            }
        }
    }

    private MigrationDriver.Report nvme(int iteration) throws Exception {
        long ram = 0x2_0000_0000L;
        int ramSize = 16 << 20;
        Path backing = dir.resolve("ns-" + iteration + ".img");
        try (GuestMemory sourceRam = GuestMemory.allocate(ram, ramSize);
             GuestMemory destinationRam = GuestMemory.allocate(ram, ramSize);
             ServerFixture source = new ServerFixture(NvmeDevice.description("src"),
                     new NvmeDevice("src", new NvmeOptions(backing, 16 << 20)))) {
            ServerFixture destination = new ServerFixture(NvmeDevice.description("dst"),
                    new NvmeDevice("dst", new NvmeOptions(backing, 16 << 20)));
            VfioUserClient s = source.client();
            VfioUserClient d = destination.client();
            NvmeHostDriver host = new NvmeHostDriver(s, sourceRam);
            try {
                map(s, sourceRam, ram, ramSize);
                map(d, destinationRam, ram, ramSize);
                host.enableMsix(2);
                host.enable(16);
                host.createIoQueues(1, 64);
                NvmeHostDriver.Queue io = host.queue(1);
                long buffer = host.alloc(4096);
                for (int i = 0; i < 16; i++) {
                    host.post(io, NvmeHostDriver.io(0x01, 8L * i, 8, buffer, 0));
                }
                host.ring(io);
                return new MigrationDriver(s, d, List.of(new MigrationDriver.MemoryPair(sourceRam, destinationRam)),
                        MigrationDriver.Options.DEFAULT).migrate(() -> { });
            } finally {
                host.close();
                destination.closeNested();
                Files.deleteIfExists(backing);
            }
        }
    }

    private static void map(VfioUserClient client, GuestMemory memory, long iova, int size) throws Exception {
        assertThat(errno(client, VfioUserCommand.DMA_MAP, DmaMapRequest.of(3, 0, iova, size),
                FdSet.of(memory.dupFd()))).isZero();
    }

    private static void closeAll(int[] fds) {
        for (int fd : fds) {
            io.vfiouser.transport.FdSet.closeQuietly(fd);
        }
    }
}
