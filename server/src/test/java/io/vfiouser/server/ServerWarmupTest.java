package io.vfiouser.server;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * The start-up warm-up talks a whole VMM start-up through a real socket to its throwaway device (every reply a
 * success) and leaves nothing behind: no listed device, no temporary directory, no fd. How fast a first client is
 * then answered is a benchmark's business (docs/performance.md, "Cold start").
 */
class ServerWarmupTest {
    @Test
    void aWarmUpConversationSucceedsAndLeavesNothingBehind() throws Exception {
        try (VfioUserServer server = VfioUserServer.builder().threads(1).build()) {
            ServerWarmup.run(server); // the first run of this JVM pays for class loading: not counted below
            List<String> fds = openFds();
            List<Path> dirs = warmupDirs();
            assertThat(ServerWarmup.run(server)).as("every warm-up command answered without error").isTrue();
            assertThat(server.devices()).as("the throwaway device is not listed").isEmpty();
            assertThat(warmupDirs()).as("the temporary socket directory is gone").isEqualTo(dirs);
            assertThat(openFds()).as("fds after a warm-up").isEqualTo(fds);
        }
    }

    private static List<Path> warmupDirs() throws IOException {
        try (Stream<Path> entries = Files.list(Path.of(System.getProperty("java.io.tmpdir")))) {
            return entries.filter(p -> p.getFileName().toString().startsWith("vfio-user-warmup")).sorted().toList();
        }
    }

    /** What each fd of the process refers to, sorted (numbers may be reused; what they name must match). */
    private static List<String> openFds() throws IOException {
        try (Stream<Path> entries = Files.list(Path.of("/proc/self/fd"))) {
            return entries.map(p -> {
                try {
                    return Files.readSymbolicLink(p).toString().replaceAll("\\[\\d+\\]", "[]");
                } catch (IOException e) {
                    return "gone";
                }
            }).filter(t -> !t.equals("gone")).sorted().toList();
        }
    }
}
