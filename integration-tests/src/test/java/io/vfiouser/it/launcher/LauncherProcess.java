package io.vfiouser.it.launcher;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** {@code server/target/vfio-user-server.jar} as a process, its stderr and stdout in a log file. */
final class LauncherProcess implements AutoCloseable {
    static final Path SERVER_JAR = Path.of("..", "server", "target", "vfio-user-server.jar");
    private static final long TIMEOUT_S = 90;

    final Process process;
    final Path log;

    private LauncherProcess(Process process, Path log) {
        this.process = process;
        this.log = log;
    }

    static String java() {
        return ProcessHandle.current().info().command().orElse("java");
    }

    /** {@code java -jar vfio-user-server.jar args...}. */
    static LauncherProcess start(Path log, List<String> args) throws IOException {
        List<String> command = new ArrayList<>(javaJar());
        command.addAll(args);
        return start(log, new ProcessBuilder(command));
    }

    /** The command line that runs the jar, for wrappers. */
    static List<String> javaJar() {
        assertThat(SERVER_JAR).as("the server jar is built before the integration tests").exists();
        return List.of(java(), "--enable-native-access=ALL-UNNAMED", "-jar", SERVER_JAR.toString());
    }

    static LauncherProcess start(Path log, ProcessBuilder builder) throws IOException {
        Process p = builder.redirectErrorStream(true).redirectOutput(log.toFile()).start();
        return new LauncherProcess(p, log);
    }

    String log() throws IOException {
        return Files.exists(log) ? Files.readString(log) : "";
    }

    /** Waits until the log contains {@code text}; fails if the process ends first or after the timeout. */
    void awaitLog(String text) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(TIMEOUT_S);
        while (!log().contains(text)) {
            assertThat(process.isAlive()).as("launcher running while waiting for '%s'; log:%n%s", text, log())
                    .isTrue();
            assertThat(System.nanoTime()).as("'%s' logged in time; log:%n%s", text, log()).isLessThan(deadline);
            Thread.sleep(20);
        }
    }

    /** SIGTERM, then the exit status. */
    int terminate() throws Exception {
        process.destroy();
        assertThat(process.waitFor(TIMEOUT_S, TimeUnit.SECONDS)).as("exits after SIGTERM; log:%n%s", log()).isTrue();
        return process.exitValue();
    }

    @Override
    public void close() {
        process.destroyForcibly();
    }
}
