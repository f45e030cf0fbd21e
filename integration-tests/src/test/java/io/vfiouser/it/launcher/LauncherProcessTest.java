package io.vfiouser.it.launcher;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.vfiouser.client.VfioUserClient;
import io.vfiouser.codec.VfioUserCommand;
import io.vfiouser.codec.VfioUserMessage;
import io.vfiouser.codec.payload.RegionAccess;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The launcher jar as operators run it, as a real process: plugins from a folder (one built here, one broken),
 * a YAML configuration with broken entries, a peer-uid allow-list, SIGTERM with clients attached, and systemd
 * socket activation with two inherited sockets.
 */
class LauncherProcessTest {
    /** The examples' plain jar: a plugin jar like any other (the shaded one would bring the whole server along). */
    private static final Path EXAMPLES_JAR = examplesJar();

    private static Path examplesJar() {
        try (java.util.stream.Stream<Path> files = Files.list(Path.of("..", "examples", "target"))) {
            return files.filter(f -> f.getFileName().toString().matches("vfio-user-examples-[0-9].*[0-9T]\\.jar"))
                    .findFirst().orElseThrow(() -> new AssertionError("the examples jar is built before the tests"));
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    @TempDir
    Path dir;

    private static int ownUid() throws Exception {
        return (Integer) Files.getAttribute(Path.of("/proc/self"), "unix:uid");
    }

    private static int readRegister(VfioUserClient client, int region, long offset) throws Exception {
        VfioUserMessage reply = client.call(VfioUserCommand.REGION_READ,
                RegionAccess.inRegion(region).atOffset(offset).count(4))
                .get(20, TimeUnit.SECONDS);
        try {
            ByteBuf d = reply.payload(RegionAccess.class).data();
            return d.getIntLE(d.readerIndex());
        } finally {
            reply.release();
        }
    }

    @Test
    void pluginsFromAFolderBrokenOnesReportedAllowListAndCleanSigterm() throws Exception {
        Path plugins = dir.resolve("plugins");
        TestPlugins.build(dir, "plugins/magic.jar", "org.example.magic.MagicPlugin", TestPlugins.MAGIC_PLUGIN,
                "org.example.magic.MagicPlugin");
        // A jar whose services file names a class that is not there.
        TestPlugins.jar(plugins.resolve("broken.jar"), null, "org.example.broken.Missing");
        Path magic = dir.resolve("magic0.sock");
        Path nullSock = dir.resolve("null0.sock");
        Path refused = dir.resolve("refused0.sock");
        Path config = dir.resolve("devices.yaml");
        Files.writeString(config, """
                devices:
                  - name: magic0
                    type: magic
                    socket-path: %s
                    settings: {magic-value: 4660}
                  - name: typo0
                    type: magic
                    socket-path: %s
                    settings: {magic-valu: 1}
                  - name: unknown0
                    type: no-such-type
                    socket-path: %s
                  - name: null0
                    type: null
                    socket-path: %s
                  - name: refused0
                    type: magic
                    socket-path: %s
                    allowed-uids: [%d]
                    settings: {magic-value: 1}
                  - type: null
                """.formatted(magic, dir.resolve("typo0.sock"), dir.resolve("unknown0.sock"), nullSock, refused,
                ownUid() + 4242));
        // The server jar has no devices of its own; the examples jar on the plugins path brings null, gpio, nvme.
        Files.copy(EXAMPLES_JAR, plugins.resolve("examples.jar"));
        try (LauncherProcess p = LauncherProcess.start(dir.resolve("log.txt"),
                List.of("--config", config.toString(), "--plugins", plugins.toString(), "--trace"))) {
            p.awaitLog("device(s) running");
            String log = p.log();
            assertThat(log).contains("3 device(s) running, 3 not started").doesNotContain("running: magic0");
            assertThat(log).containsPattern("broken.jar: a plugin failed to load: .*org.example.broken.Missing");
            assertThat(log).containsPattern("typo0 \\(magic\\): not started: settings .*magic-valu");
            assertThat(log).contains("unknown0 (no-such-type): not started: unknown device type 'no-such-type'");
            assertThat(log).containsPattern("device entry 6: needs a name");
            assertThat(dir.resolve("typo0.sock")).doesNotExist();
            assertThat(dir.resolve("unknown0.sock")).doesNotExist();
            assertThat(Files.getPosixFilePermissions(magic))
                    .containsExactlyInAnyOrder(PosixFilePermission.OWNER_READ, PosixFilePermission.OWNER_WRITE);

            // A peer uid that is not on the allow-list is refused at accept and logged.
            assertThatThrownBy(() -> VfioUserClient.connect(refused).close()).isNotNull();
            p.awaitLog("refused0: refused a connection from uid " + ownUid());

            VfioUserClient magicClient = VfioUserClient.connect(magic);
            VfioUserClient nullClient = VfioUserClient.connect(nullSock);
            try {
                assertThat(readRegister(magicClient, 0, 0)).isEqualTo(4660);
                VfioUserMessage w = magicClient.call(VfioUserCommand.REGION_WRITE,
                        RegionAccess.inRegion(0).atOffset(4)
                                .data(Unpooled.buffer(4).writeIntLE(77))).get(20, TimeUnit.SECONDS);
                w.release();
                assertThat(readRegister(magicClient, 0, 4)).isEqualTo(77);
                assertThat(readRegister(nullClient, 7, 0) & 0xffff).as("null vendor id").isEqualTo(0x4a56);

                // --trace: one line per message each way, with id, command, kind, sizes, fds and flags.
                p.awaitLog("magic0 -> #");
                assertThat(p.log()).containsPattern("magic0 <- #\\d+ VERSION command size=\\d+ payload=\\d+ fds=0")
                        .containsPattern("magic0 <- #\\d+ REGION_WRITE command size=36 payload=20 fds=0 flags=0x0")
                        .containsPattern("magic0 -> #\\d+ REGION_READ reply size=36 payload=20 fds=0 flags=0x1");
                // SIGUSR1: every device's counters, one line each.
                // bash's built-in kill: no procps needed on the machine (Java itself can only send TERM and KILL).
                assertThat(new ProcessBuilder("bash", "-c", "kill -USR1 " + p.process.pid()).start()
                        .waitFor()).isZero();
                p.awaitLog("magic0: messages=");
                assertThat(p.log()).containsPattern("magic0: messages=4 .*commands=\\{VERSION=1, REGION_READ=2, "
                        + "REGION_WRITE=1\\}");

                // SIGTERM with both clients attached: they see EOF, the sockets go, the exit status is 0.
                assertThat(p.terminate()).as("exit status; log:%n%s", p.log()).isZero();
                magicClient.closeFuture().get(20, TimeUnit.SECONDS);
                nullClient.closeFuture().get(20, TimeUnit.SECONDS);
                assertThat(magic).doesNotExist();
                assertThat(nullSock).doesNotExist();
                assertThat(refused).doesNotExist();
                assertThat(p.log()).contains("stopped");
            } finally {
                magicClient.close();
                nullClient.close();
            }
        }
    }

    @Test
    void socketActivationWithTwoInheritedSocketsMappedByNameAndOrder() throws Exception {
        // systemd passes listening sockets as fds 3, 4, ... with LISTEN_PID naming the receiving process. The JVM
        // cannot hand fds to a child, so python3 (which CI installs for the --fd test too, and which is more
        // widely present than systemd-socket-activate) plays systemd: it binds two sockets, moves them to fds 3
        // and 4, sets LISTEN_PID to its own pid and execs the launcher, which keeps that pid.
        Assumptions.assumeTrue(Files.isExecutable(Path.of("/usr/bin/python3"))
                || Files.isExecutable(Path.of("/usr/local/bin/python3"))
                || Files.isExecutable(Path.of(System.getProperty("user.home"), ".pyenv/shims/python3")),
                "python3 is needed to pass fds");
        Path first = dir.resolve("first.sock");
        Path second = dir.resolve("second.sock");
        Path config = dir.resolve("devices.json");
        // "gpio0" asks for the socket named "second"; "null0" takes the next unclaimed one in order: "first".
        Files.writeString(config, """
                {"devices": [
                  {"name": "gpio0", "type": "gpio", "fd-name": "second"},
                  {"name": "null0", "type": "null"}
                ]}""");
        String systemd = String.join("\n",
                "import os, socket, sys",
                "socks = []",
                "for i, path in enumerate(sys.argv[1:3]):",
                "    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)",
                "    s.bind(path); s.listen(8)",
                "    os.dup2(s.fileno(), 3 + i); os.set_inheritable(3 + i, True)",
                "    socks.append(s)",
                "os.environ['LISTEN_PID'] = str(os.getpid())",
                "os.environ['LISTEN_FDS'] = '2'",
                "os.environ['LISTEN_FDNAMES'] = 'first:second'",
                "os.execv(sys.argv[3], sys.argv[3:])");
        List<String> command = new java.util.ArrayList<>(List.of("python3", "-c", systemd, first.toString(),
                second.toString()));
        command.addAll(LauncherProcess.javaJar());
        Path plugins = Files.createDirectories(dir.resolve("plugins"));
        Files.copy(EXAMPLES_JAR, plugins.resolve("examples.jar"));
        command.addAll(List.of("--config", config.toString(), "--plugins", plugins.toString()));
        try (LauncherProcess p = LauncherProcess.start(dir.resolve("log.txt"), new ProcessBuilder(command))) {
            p.awaitLog("device(s) running");
            assertThat(p.log()).contains("2 device(s) running");
            try (VfioUserClient a = VfioUserClient.connect(first); VfioUserClient b = VfioUserClient.connect(second)) {
                assertThat(readRegister(a, 7, 0) & 0xffff).as("null on 'first'").isEqualTo(0x4a56);
                assertThat(readRegister(b, 7, 0) & 0xffff).as("gpio on 'second'").isEqualTo(0x494f);
                assertThat(p.terminate()).isZero();
                a.closeFuture().get(20, TimeUnit.SECONDS);
                b.closeFuture().get(20, TimeUnit.SECONDS);
            }
            // The socket files belong to whoever created them (systemd): the launcher leaves them.
            assertThat(first).exists();
            assertThat(second).exists();
        }
    }
}
