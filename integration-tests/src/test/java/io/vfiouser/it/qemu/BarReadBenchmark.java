package io.vfiouser.it.qemu;

import static org.assertj.core.api.Assertions.assertThat;

import io.vfiouser.examples.nulldev.NullDevice;
import io.vfiouser.server.VfioUserServer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * A benchmark, not a test (tag {@code qemu-bench}, left out of the normal run): from inside a TCG guest, the time
 * for 100 000 4-byte reads of a BAR0 register of the null device through our server, and of QEMU's built-in
 * {@code edu} device in the same guest as the in-process baseline. Run it with
 * {@code mvn -B test -pl integration-tests -am -Dgroups=qemu-bench -Dvfu.excludedGroups= -Dtest=BarReadBenchmark -Dsurefire.failIfNoSpecifiedTests=false};
 * the figures are printed and kept in {@code target/qemu-runs/bar-read-*}.
 */
@Tag("qemu-bench")
class BarReadBenchmark {
    private static final int READS = 100_000;

    static final String SCRIPT = """
            null=$(vfu_pci_dev 4a56 0001)
            edu=$(vfu_pci_dev 1234 11e8)
            echo 1 >"$null/enable"
            echo 1 >"$edu/enable"
            for round in 1 2 3; do
              vfu_result null-$round "$(/vfu/bar-read "$null/resource0" 0 %1$d)"
              vfu_result edu-$round "$(/vfu/bar-read "$edu/resource0" 0 %1$d)"
            done
            """.formatted(READS);

    @Test
    void barReadsThroughOurServerAgainstQemusOwnDevice() throws Exception {
        QemuGuest guest = QemuGuest.create("bar-read");
        Path source = Path.of("qemu", "bench", "bar-read.c");
        Path binary = guest.dir().resolve("bar-read");
        Process gcc = new ProcessBuilder("gcc", "-O2", "-static", "-o", binary.toString(), source.toString())
                .inheritIO().start();
        assertThat(gcc.waitFor(120, TimeUnit.SECONDS) && gcc.exitValue() == 0).as("gcc -static bar-read.c").isTrue();
        guest.file("vfu/bar-read", Files.readAllBytes(binary));
        try (VfioUserServer server = VfioUserServer.builder().build()) {
            server.serve(NullDevice.description("null"), new NullDevice(), guest.socket("null"));
            guest.device(guest.socket("null"));
            guest.qemuArgs("-device", "edu");
            QemuGuest.Run run = guest.run(SCRIPT);
            String why = run.describe();
            assertThat(run.exitCode()).as(why).isZero();
            StringBuilder report = new StringBuilder("bar-read, " + READS + " reads per round (ns per read):\n");
            for (int round = 1; round <= 3; round++) {
                long ours = nsPerRead(run.results().get("null-" + round));
                long edu = nsPerRead(run.results().get("edu-" + round));
                report.append(String.format("round %d: vfio-user null %d, edu %d, ratio %.1f%n", round, ours, edu,
                        (double) ours / edu));
            }
            System.out.print(report);
            Files.writeString(guest.dir().resolve("report.txt"), report);
        }
    }

    private static long nsPerRead(String result) {
        assertThat(result).as("bar-read output").contains("ns_per_read=");
        String v = result.substring(result.indexOf("ns_per_read=") + "ns_per_read=".length()).split(" ")[0];
        return Long.parseLong(v);
    }
}
