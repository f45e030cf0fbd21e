package io.vfiouser.server.launcher;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code --list}: the devices a configuration describes, where the running launcher logs only their count. */
class LauncherListTest {
    @Test
    void listsEveryDeviceWithItsEndpointAndTheEntriesLeftOut(@TempDir Path dir) throws Exception {
        Path config = Files.writeString(dir.resolve("devices.yaml"), """
                devices:
                  - {name: a, type: null, socket-path: /run/a.sock}
                  - {name: b, type: gpio, fd: 3}
                  - {name: c, type: nvme, fd-name: nvme, settings: {backing: /x, size: 0x100000}}
                  - {type: null}
                """);
        LauncherArguments a = LauncherArguments.parse(new String[] {"--config", config.toString(), "--list"});
        assertThat(a.listDevices()).isTrue();
        java.util.List<String> lines = Launcher.listing(LauncherConfig.read(config, a.defaults()));
        assertThat(lines).hasSize(4).startsWith(
                "a\tnull\t/run/a.sock",
                "b\tgpio\tfd 3",
                "c\tnvme\tsocket-activated nvme");
        assertThat(lines.get(3)).startsWith("not started: ").contains("device entry 4: needs a name");
    }

    @Test
    void listsTheCommandLineDevice() {
        LauncherArguments a = LauncherArguments.parse(new String[] {"null", "--socket-path=/tmp/n.sock", "--list",
            "--name=n0"});
        assertThat(Launcher.listing(a.singleDevice())).containsExactly("n0\tnull\t/tmp/n.sock");
    }
}
