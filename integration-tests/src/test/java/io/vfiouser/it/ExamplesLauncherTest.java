package io.vfiouser.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.netty.buffer.ByteBuf;
import io.vfiouser.client.VfioUserClient;
import io.vfiouser.codec.VfioUserCommand;
import io.vfiouser.codec.VfioUserMessage;
import io.vfiouser.codec.payload.DeviceInfo;
import io.vfiouser.codec.payload.RegionAccess;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The runnable examples jar the way a VMM runs a backend program: {@code --socket-path=PATH} or an inherited
 * listening {@code --fd=N}, never daemonized, stopped cleanly by SIGTERM with its socket file removed.
 */
class ExamplesLauncherTest {
    private static final Path JAR = Path.of("..", "examples", "target", "vfio-user-examples.jar");

    @TempDir
    Path dir;

    static String java() {
        return ProcessHandle.current().info().command().orElse("java");
    }

    static Process start(List<String> args, ProcessBuilder.Redirect out) throws Exception {
        List<String> command = new java.util.ArrayList<>(List.of(java(), "--enable-native-access=ALL-UNNAMED",
                "-jar", JAR.toString()));
        command.addAll(args);
        return new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(out).start();
    }

    static void awaitSocket(Path socket, Process process) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (!Files.exists(socket)) {
            assertThat(process.isAlive()).as("the examples process is running").isTrue();
            assertThat(System.nanoTime()).as("socket %s appears", socket).isLessThan(deadline);
            Thread.sleep(20);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"null", "gpio"})
    void servesOnASocketPathAndStopsCleanlyOnSigterm(String device) throws Exception {
        assertThat(JAR).as("the examples jar is built before the integration tests").exists();
        Path socket = dir.resolve(device + ".sock");
        Path log = dir.resolve("log.txt");
        Process process = start(List.of(device, "--socket-path=" + socket), ProcessBuilder.Redirect.to(log.toFile()));
        try {
            awaitSocket(socket, process);
            assertThat(Files.getPosixFilePermissions(socket))
                    .containsExactlyInAnyOrder(PosixFilePermission.OWNER_READ, PosixFilePermission.OWNER_WRITE);
            try (VfioUserClient client = VfioUserClient.connect(socket)) {
                VfioUserMessage info = client.call(VfioUserCommand.DEVICE_GET_INFO, DeviceInfo.request())
                        .get(20, TimeUnit.SECONDS);
                assertThat(info.payload(DeviceInfo.class).numRegions()).isEqualTo(9);
                info.release();
                VfioUserMessage id = client.call(VfioUserCommand.REGION_READ,
                        RegionAccess.inRegion(7).atOffset(0).count(4))
                        .get(20, TimeUnit.SECONDS);
                ByteBuf d = id.payload(RegionAccess.class).data();
                assertThat(d.getUnsignedShortLE(d.readerIndex())).isEqualTo(device.equals("gpio") ? 0x494f : 0x4a56);
                id.release();
            }
            process.destroy(); // SIGTERM
            assertThat(process.waitFor(30, TimeUnit.SECONDS)).as("exits after SIGTERM").isTrue();
            assertThat(process.exitValue()).isIn(0, 143);
            assertThat(socket).as("socket file removed").doesNotExist();
        } finally {
            process.destroyForcibly();
        }
    }

    @Test
    void servesOnAnInheritedListeningFd() throws Exception {
        // A parent (systemd, libvirt) creates and binds the socket and the backend inherits it as --fd=N. The JVM
        // closes every fd but 0-2 in the processes it starts, so a small python parent plays that part.
        Assumptions.assumeTrue(Files.isExecutable(Path.of("/usr/bin/python3"))
                || Files.isExecutable(Path.of("/usr/local/bin/python3")), "python3 is needed to pass an fd");
        Path socket = dir.resolve("inherited.sock");
        Path log = dir.resolve("log.txt");
        String parent = String.join("\n",
                "import os, socket, sys",
                "s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)",
                "s.bind(sys.argv[1]); s.listen(8)",
                "os.dup2(s.fileno(), 3); os.set_inheritable(3, True)",
                "os.execv(sys.argv[2], sys.argv[2:])");
        Process process = new ProcessBuilder("python3", "-c", parent, socket.toString(), java(),
                "--enable-native-access=ALL-UNNAMED", "-jar", JAR.toString(), "null", "--fd=3")
                .redirectErrorStream(true).redirectOutput(log.toFile()).start();
        try {
            awaitSocket(socket, process);
            try (VfioUserClient client = connectWithRetry(socket, process)) {
                VfioUserMessage info = client.call(VfioUserCommand.DEVICE_GET_INFO, DeviceInfo.request())
                        .get(20, TimeUnit.SECONDS);
                assertThat(info.payload(DeviceInfo.class).numIrqs()).isEqualTo(5);
                info.release();
            }
            process.destroy();
            assertThat(process.waitFor(30, TimeUnit.SECONDS)).isTrue();
            assertThat(Files.readString(log)).contains("serving");
            // The socket file belongs to whoever created it: the backend leaves it.
            assertThat(socket).exists();
        } finally {
            process.destroyForcibly();
        }
    }

    static VfioUserClient connectWithRetry(Path socket, Process process) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (true) {
            try {
                return VfioUserClient.connect(socket);
            } catch (Exception e) {
                assertThat(process.isAlive()).as("the examples process is running").isTrue();
                if (System.nanoTime() > deadline) {
                    throw e;
                }
                Thread.sleep(50);
            }
        }
    }
}
