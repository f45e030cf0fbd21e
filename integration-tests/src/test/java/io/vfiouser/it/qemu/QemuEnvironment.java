package io.vfiouser.it.qemu;

import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;

/**
 * The real-QEMU test environment built by {@code integration-tests/qemu/build-env.sh}: a QEMU with the vfio-user
 * client, a guest kernel, the base initramfs and the benchmark tools' initramfs (fio), which benchmarks append.
 *
 * <p>By default the first test that needs it runs the script (which reuses its cache when present, and builds it
 * from Debian packages otherwise, as root) and every QEMU test <b>fails</b> if the script fails. With
 * {@code -Dvfu.qemu=skip} the script is not run and the QEMU tests are skipped, loudly.
 */
record QemuEnvironment(Path qemu, Path kernel, Path baseInitrd, Path benchInitrd, String kernelVersion,
                      String qemuVersion) {

    /** The system property that, set to {@code skip}, skips the QEMU tests instead of building the environment. */
    static final String MODE_PROPERTY = "vfu.qemu";
    private static final long BUILD_TIMEOUT_MINUTES = 30;

    private static QemuEnvironment environment;
    private static String failure;

    /** The environment, built on first use; aborts (skips) the calling test under -Dvfu.qemu=skip, fails it if the
     * environment cannot be built. */
    static synchronized QemuEnvironment get() {
        if ("skip".equals(System.getProperty(MODE_PROPERTY))) {
            String message = "\n*** QEMU END-TO-END TESTS SKIPPED: -D" + MODE_PROPERTY + "=skip forbids building the"
                    + " environment (integration-tests/qemu/build-env.sh); these tests prove nothing in this run ***\n";
            System.err.println(message);
            Assumptions.abort(message);
        }
        if (environment != null) {
            return environment;
        }
        if (failure != null) {
            fail(failure);
        }
        try {
            environment = build();
            System.err.println("QEMU environment: " + environment);
            return environment;
        } catch (Exception e) {
            failure = "the QEMU test environment could not be built: " + e.getMessage()
                    + "\n(run integration-tests/qemu/build-env.sh as root to see why, or pass -D" + MODE_PROPERTY
                    + "=skip to skip these tests)";
            return fail(failure, e);
        }
    }

    private static QemuEnvironment build() throws IOException, InterruptedException {
        Path script = findScript();
        Path out = Files.createTempFile("vfu-build-env", ".out");
        Path err = Files.createTempFile("vfu-build-env", ".err");
        try {
            // The script's result, KEY=VALUE lines, goes to stdout; its progress and errors to stderr, which is
            // echoed to the test output afterwards and quoted in the failure.
            Process process = new ProcessBuilder("bash", script.toString())
                    .redirectOutput(out.toFile())
                    .redirectError(err.toFile())
                    .redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()))
                    .start();
            if (!process.waitFor(BUILD_TIMEOUT_MINUTES, TimeUnit.MINUTES)) {
                process.descendants().forEach(ProcessHandle::destroyForcibly);
                process.destroyForcibly();
                throw new IOException(script + " did not finish within " + BUILD_TIMEOUT_MINUTES + " minutes");
            }
            List<String> lines = Files.readAllLines(out, StandardCharsets.UTF_8);
            List<String> progress = Files.readAllLines(err, StandardCharsets.UTF_8);
            progress.forEach(System.err::println);
            if (process.exitValue() != 0) {
                throw new IOException(script + " exited with " + process.exitValue() + "; its messages:\n"
                        + String.join("\n", progress.subList(Math.max(0, progress.size() - 40), progress.size())));
            }
            Map<String, String> values = new HashMap<>();
            for (String line : lines) {
                int eq = line.indexOf('=');
                if (line.startsWith("VFU_QEMU_") && eq > 0) {
                    values.put(line.substring(0, eq), line.substring(eq + 1));
                }
            }
            QemuEnvironment env = new QemuEnvironment(Path.of(require(values, "VFU_QEMU_BIN")),
                    Path.of(require(values, "VFU_QEMU_KERNEL")), Path.of(require(values, "VFU_QEMU_INITRD")),
                    Path.of(require(values, "VFU_QEMU_BENCH_INITRD")), require(values, "VFU_QEMU_KERNEL_VERSION"),
                    require(values, "VFU_QEMU_VERSION"));
            for (Path p : List.of(env.qemu, env.kernel, env.baseInitrd, env.benchInitrd)) {
                if (!Files.isReadable(p)) {
                    throw new IOException(script + " reported " + p + ", which does not exist");
                }
            }
            return env;
        } finally {
            Files.deleteIfExists(out);
            Files.deleteIfExists(err);
        }
    }

    private static String require(Map<String, String> values, String key) throws IOException {
        String v = values.get(key);
        if (v == null || v.isBlank()) {
            throw new IOException("build-env.sh reported no " + key + " (got " + values + ")");
        }
        return v;
    }

    /** The script, from the module directory (Surefire's working directory) or the repository root. */
    private static Path findScript() throws IOException {
        Path cwd = Path.of(System.getProperty("user.dir")).toAbsolutePath();
        for (Path candidate : List.of(cwd.resolve("qemu/build-env.sh"),
                cwd.resolve("integration-tests/qemu/build-env.sh"))) {
            if (Files.isRegularFile(candidate)) {
                return candidate;
            }
        }
        throw new IOException("integration-tests/qemu/build-env.sh not found from " + cwd);
    }
}
