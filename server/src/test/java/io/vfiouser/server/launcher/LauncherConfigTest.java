package io.vfiouser.server.launcher;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LauncherConfigTest {
    @TempDir
    Path dir;

    @Test
    void yamlWithDefaultsEndpointsAndBrokenEntries() throws Exception {
        Path file = dir.resolve("d.yaml");
        Files.writeString(file, """
                socket-mode: "0660"
                allowed-uids: [107]
                release-timeout: 2.5
                devices:
                  - {name: a, type: null, socket-path: /run/a.sock}
                  - {name: b, type: nvme, fd: 7, socket-mode: "0600", allowed-uids: [], settings: {backing: /x}}
                  - {name: c, type: gpio, fd-name: web}
                  - {name: d, type: gpio}
                  - {name: e, type: gpio, socket-path: /e, fd: 3}
                  - {name: a, type: gpio, socket-path: /a2}
                  - {name: f, type: gpio, socket-pth: /f}
                  - {type: gpio}
                """);
        LauncherConfig c = LauncherConfig.read(file, LauncherConfig.Defaults.NONE);
        assertThat(c.releaseTimeout()).isEqualTo(Duration.ofMillis(2500));
        assertThat(c.devices()).extracting(DeviceSpec::name).containsExactly("a", "b", "c", "d");
        DeviceSpec a = c.devices().get(0);
        assertThat(a.endpoint()).isEqualTo(new DeviceSpec.SocketPath("/run/a.sock"));
        assertThat(a.policy().fileMode()).isEqualTo(0660);
        assertThat(a.policy().allowedUids()).containsExactly(107);
        DeviceSpec b = c.devices().get(1);
        assertThat(b.endpoint()).isEqualTo(new DeviceSpec.InheritedFd(7));
        assertThat(b.policy().fileMode()).isEqualTo(0600);
        assertThat(b.policy().allowedUids()).isEmpty();
        assertThat(b.settings().get("backing").asText()).isEqualTo("/x");
        assertThat(c.devices().get(2).endpoint()).isEqualTo(new DeviceSpec.ActivatedByName("web"));
        assertThat(c.devices().get(3).endpoint()).isEqualTo(new DeviceSpec.ActivatedInOrder());
        assertThat(c.problems()).hasSize(4);
        assertThat(c.problems().get(0)).contains("entry 5 (e)").contains("at most one of");
        assertThat(c.problems().get(1)).contains("entry 6 (a)").contains("used twice");
        assertThat(c.problems().get(2)).contains("entry 7 (f)").contains("socket-pth");
        assertThat(c.problems().get(3)).contains("entry 8").contains("needs a name");
    }

    @Test
    void sameEntryReadTwiceIsEqualSoAReloadLeavesItAlone() throws Exception {
        Path file = dir.resolve("d.json");
        Files.writeString(file, "{\"devices\": [{\"name\": \"n\", \"type\": \"nvme\", \"socket-path\": \"/s\","
                + " \"settings\": {\"backing\": \"/b\", \"size\": \"1M\"}}]}");
        DeviceSpec one = LauncherConfig.read(file, LauncherConfig.Defaults.NONE).devices().get(0);
        DeviceSpec two = LauncherConfig.read(file, LauncherConfig.Defaults.NONE).devices().get(0);
        assertThat(one).isEqualTo(two);
        Files.writeString(file, "{\"devices\": [{\"name\": \"n\", \"type\": \"nvme\", \"socket-path\": \"/s\","
                + " \"settings\": {\"backing\": \"/b\", \"size\": \"2M\"}}]}");
        assertThat(LauncherConfig.read(file, LauncherConfig.Defaults.NONE).devices().get(0)).isNotEqualTo(one);
    }

    @Test
    void commandLineDefaultsApplyUnlessTheFileSaysOtherwise() throws Exception {
        Path file = dir.resolve("d.json");
        Files.writeString(file, "{\"devices\": [{\"name\": \"n\", \"type\": \"null\", \"socket-path\": \"/s\"}]}");
        LauncherConfig c = LauncherConfig.read(file,
                new LauncherConfig.Defaults(Optional.of("0640"), Optional.of("kvm"), List.of(1, 2)));
        assertThat(c.devices().get(0).policy().fileMode()).isEqualTo(0640);
        assertThat(c.devices().get(0).policy().group()).contains("kvm");
        assertThat(c.devices().get(0).policy().allowedUids()).isEqualTo(Set.of(1, 2));
    }

    @Test
    void aBrokenFileIsAnErrorNamingTheFile() throws Exception {
        Path file = dir.resolve("d.yaml");
        Files.writeString(file, "devices: [\n  {name: x\n");
        assertThatThrownBy(() -> LauncherConfig.read(file, LauncherConfig.Defaults.NONE))
                .isInstanceOf(IOException.class).hasMessageContaining("d.yaml");
        Files.writeString(file, "devicez: []\n");
        assertThatThrownBy(() -> LauncherConfig.read(file, LauncherConfig.Defaults.NONE))
                .isInstanceOf(IOException.class).hasMessageContaining("devicez");
        Files.writeString(file, "socket-mode: \"rw\"\ndevices: [{name: x, type: null, socket-path: /x}]\n");
        assertThat(LauncherConfig.read(file, LauncherConfig.Defaults.NONE).problems())
                .singleElement().asString().contains("octal");
    }

    @Test
    void socketActivationVariables() {
        assertThat(SocketActivation.from(Map.of(), 5).isEmpty()).isTrue();
        assertThat(SocketActivation.from(Map.of("LISTEN_PID", "6", "LISTEN_FDS", "2"), 5).isEmpty())
                .as("variables meant for another process").isTrue();
        assertThat(SocketActivation.from(Map.of("LISTEN_PID", "5", "LISTEN_FDS", "3", "LISTEN_FDNAMES", "a::c"), 5)
                .sockets()).containsExactly(new SocketActivation.Socket(3, "a"),
                new SocketActivation.Socket(4, "unknown"), new SocketActivation.Socket(5, "c"));
        assertThatThrownBy(() -> SocketActivation.from(Map.of("LISTEN_PID", "5", "LISTEN_FDS", "x"), 5))
                .isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void singleDeviceCommandLine() {
        LauncherArguments a = LauncherArguments.parse(new String[] {"nvme", "--socket-path=/s", "--backing=/b",
            "--size=64M", "--socket-mode=0660", "--allow-uid=1,2", "--trace"});
        DeviceSpec spec = a.singleDevice().devices().get(0);
        assertThat(spec.name()).isEqualTo("nvme");
        assertThat(spec.endpoint()).isEqualTo(new DeviceSpec.SocketPath("/s"));
        assertThat(spec.settings().toString()).isEqualTo("{\"backing\":\"/b\",\"size\":\"64M\"}");
        assertThat(spec.policy().fileMode()).isEqualTo(0660);
        assertThat(a.trace()).isTrue();
        assertThat(LauncherArguments.parse(new String[] {"null"}).singleDevice().devices().get(0).endpoint())
                .isEqualTo(new DeviceSpec.ActivatedInOrder());
        assertThat(LauncherArguments.parse(new String[] {"null", "--fd=3"}).singleDevice().devices().get(0)
                .endpoint()).isEqualTo(new DeviceSpec.InheritedFd(3));
        assertThatThrownBy(() -> LauncherArguments.parse(new String[] {"null", "--fd=3", "--socket-path=/x"}))
                .hasMessageContaining("only one");
        assertThatThrownBy(() -> LauncherArguments.parse(new String[] {"--config", "x", "--bogus=1"}))
                .hasMessageContaining("--bogus");
        assertThatThrownBy(() -> LauncherArguments.parse(new String[] {"--socket-path=/x"}))
                .hasMessageContaining("--config FILE or a device type");
    }
}
