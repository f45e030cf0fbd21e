package io.vfiouser.it.launcher;

import static org.assertj.core.api.Assertions.assertThat;

import io.vfiouser.client.VfioUserClient;
import io.vfiouser.server.VfioUserServer;
import io.vfiouser.server.launcher.RunningDevices;
import io.vfiouser.server.launcher.LauncherConfig;
import io.vfiouser.server.launcher.PluginRegistry;
import io.vfiouser.server.launcher.SocketActivation;
import io.vfiouser.transport.linux.Linux;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Entries that cannot start are reported with their cause and harm nothing: not the others, not other fds. */
class RunningDevicesFailuresTest {
    @TempDir
    Path dir;

    @Test
    void aWrongFdAnUnknownGroupAndATakenPathAreReportedAndTheRestRuns() throws Exception {
        int eventfd = Linux.eventfd(0, Linux.EFD_NONBLOCK);
        Path good = dir.resolve("good.sock");
        Path config = dir.resolve("d.json");
        Files.writeString(config, """
                {"devices": [
                  {"name": "wrongfd", "type": "null", "fd": %d},
                  {"name": "nogroup", "type": "null", "socket-path": "%s", "socket-group": "no-such-group-here"},
                  {"name": "good", "type": "gpio", "socket-path": "%s"},
                  {"name": "taken", "type": "null", "socket-path": "%s"}
                ]}""".formatted(eventfd, dir.resolve("nogroup.sock"), good, good));
        try (VfioUserServer server = VfioUserServer.builder().threads(1).build();
             PluginRegistry plugins = PluginRegistry.load(getClass().getClassLoader(), Optional.empty());
             RunningDevices host = new RunningDevices(server, plugins, SocketActivation.NONE, false)) {
            RunningDevices.Report report = host.apply(LauncherConfig.read(config, LauncherConfig.Defaults.NONE));
            assertThat(report.started()).containsExactly("good");
            assertThat(report.failed()).hasSize(3);
            assertThat(report.failed().get(0)).startsWith("wrongfd (null): fd " + eventfd)
                    .contains("not a listening unix stream socket");
            assertThat(report.failed().get(1)).startsWith("nogroup (null): ").contains("no such group");
            assertThat(report.failed().get(2)).startsWith("taken (null): ");
            // The eventfd was not adopted: it still works.
            Linux.eventfdWrite(eventfd, 1);
            assertThat(Linux.eventfdRead(eventfd)).isEqualTo(1);
            assertThat(dir.resolve("nogroup.sock")).doesNotExist();
            try (VfioUserClient client = VfioUserClient.connect(good)) {
                assertThat(client.isOpen()).isTrue();
            }
        } finally {
            Linux.close(eventfd);
        }
    }
}
