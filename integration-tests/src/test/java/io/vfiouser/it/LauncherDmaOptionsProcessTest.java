package io.vfiouser.it;

import static io.vfiouser.it.Wire.errno;
import static org.assertj.core.api.Assertions.assertThat;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.vfiouser.client.ClientOptions;
import io.vfiouser.client.GuestMemory;
import io.vfiouser.client.VfioUserClient;
import io.vfiouser.codec.DmaLayout;
import io.vfiouser.codec.VfioUserCommand;
import io.vfiouser.codec.payload.DmaMapRequest;
import io.vfiouser.codec.payload.RegionAccess;
import io.vfiouser.examples.nulldev.NullDevice;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The launcher's {@code --dma-layout} and {@code --exit-on-disconnect}, on the examples jar run as a process the
 * way a VMM or libvfio-user's sample client runs a backend.
 */
class LauncherDmaOptionsProcessTest {
    private static final long RAM = 0x1000_0000L;
    private static final int RAM_SIZE = 1 << 20;

    @TempDir
    Path dir;

    private static String log(Path log) throws Exception {
        return Files.exists(log) ? Files.readString(log) : "";
    }

    private static void awaitLog(Process process, Path log, String text) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (!log(log).contains(text)) {
            assertThat(process.isAlive()).as("running while waiting for '%s'; log:%n%s", text, log(log)).isTrue();
            assertThat(System.nanoTime()).as("'%s' logged in time; log:%n%s", text, log(log)).isLessThan(deadline);
            Thread.sleep(20);
        }
    }

    private static void writeRegister(VfioUserClient client, int offset, long value) throws Exception {
        ByteBuf v = Unpooled.directBuffer(8).writeLongLE(value);
        assertThat(errno(client, VfioUserCommand.REGION_WRITE, RegionAccess.inRegion(0).atOffset(offset).data(v))).isZero();
    }

    /**
     * The null device's DMA engine copies guest memory mapped without an fd: every byte goes through DMA_READ and
     * DMA_WRITE in the layout the launcher was told, which the client speaks too.
     */
    @ParameterizedTest
    @EnumSource(DmaLayout.class)
    void theLayoutOptionSetsTheLayoutOfTheServersDmaMessages(DmaLayout layout) throws Exception {
        Path socket = dir.resolve("null.sock");
        Path log = dir.resolve("log.txt");
        Process process = ExamplesLauncherTest.start(List.of("null", "--socket-path=" + socket,
                "--dma-layout=" + layout.name().toLowerCase()), ProcessBuilder.Redirect.to(log.toFile()));
        try {
            ExamplesLauncherTest.awaitSocket(socket, process);
            try (VfioUserClient client = VfioUserClient.connect(socket, ClientOptions.DEFAULT.withDmaLayout(layout));
                 GuestMemory ram = GuestMemory.allocate(RAM, RAM_SIZE)) {
                client.serveDma(ram);
                assertThat(errno(client, VfioUserCommand.DMA_MAP, DmaMapRequest.of(3, 0, RAM, RAM_SIZE))).isZero();
                for (int i = 0; i < 4096; i++) {
                    ram.segment().set(ValueLayout.JAVA_BYTE, i, (byte) (i * 13 + 1));
                }
                writeRegister(client, NullDevice.DMA_SRC, RAM);
                writeRegister(client, NullDevice.DMA_DST, RAM + 0x8000);
                writeRegister(client, NullDevice.DMA_LEN, 4096);
                writeRegister(client, NullDevice.DMA_CTRL, NullDevice.CTRL_START);
                long[] status = new long[1];
                Wire.ok(client, VfioUserCommand.REGION_READ, RegionAccess.inRegion(0).atOffset(NullDevice.DMA_STATUS).count(8), r -> {
                    ByteBuf d = r.payload(RegionAccess.class).data();
                    status[0] = d.getLongLE(d.readerIndex());
                });
                assertThat(status[0]).as("log:%n%s", log(log)).isEqualTo(NullDevice.STATUS_DONE);
                assertThat(ram.segment().asSlice(0x8000, 4096).mismatch(ram.segment().asSlice(0, 4096))).isEqualTo(-1);
                assertThat(client.serverRequestsAnswered()).isEqualTo(2);
            }
            process.destroy();
            assertThat(process.waitFor(30, TimeUnit.SECONDS)).isTrue();
        } finally {
            process.destroyForcibly();
        }
    }

    /** One VM, one backend: the launcher exits with status 0 when its client leaves, its socket file removed. */
    @Test
    void exitOnDisconnectEndsTheLauncherWhenItsClientLeaves() throws Exception {
        Path socket = dir.resolve("null.sock");
        Path log = dir.resolve("log.txt");
        Process process = ExamplesLauncherTest.start(List.of("null", "--socket-path=" + socket,
                "--exit-on-disconnect"), ProcessBuilder.Redirect.to(log.toFile()));
        try {
            ExamplesLauncherTest.awaitSocket(socket, process);
            awaitLog(process, log, "exits when its client leaves");
            try (VfioUserClient client = VfioUserClient.connect(socket)) {
                assertThat(errno(client, VfioUserCommand.REGION_READ, RegionAccess.inRegion(7).atOffset(0).count(4))).isZero();
                assertThat(process.isAlive()).isTrue();
            }
            assertThat(process.waitFor(60, TimeUnit.SECONDS)).as("exits after its client left; log:%n%s", log(log))
                    .isTrue();
            assertThat(process.exitValue()).as("log:%n%s", log(log)).isZero();
            assertThat(log(log)).contains("the client left; exiting (--exit-on-disconnect)");
            assertThat(socket).as("socket file removed").doesNotExist();
        } finally {
            process.destroyForcibly();
        }
    }

    /** With more than one device the option is refused before anything starts: which client would end it? */
    @Test
    void exitOnDisconnectIsRefusedWithMoreThanOneDevice() throws Exception {
        Path config = dir.resolve("devices.yaml");
        Files.writeString(config, """
                devices:
                  - name: a
                    type: null
                    socket-path: %s
                  - name: b
                    type: null
                    socket-path: %s
                """.formatted(dir.resolve("a.sock"), dir.resolve("b.sock")));
        Path log = dir.resolve("log.txt");
        Process process = ExamplesLauncherTest.start(List.of("--config", config.toString(), "--exit-on-disconnect"),
                ProcessBuilder.Redirect.to(log.toFile()));
        try {
            assertThat(process.waitFor(60, TimeUnit.SECONDS)).isTrue();
            assertThat(process.exitValue()).as("a usage error; log:%n%s", log(log)).isEqualTo(2);
            assertThat(log(log)).contains("--exit-on-disconnect serves exactly one device; the configuration has 2");
            assertThat(dir.resolve("a.sock")).doesNotExist();
        } finally {
            process.destroyForcibly();
        }
    }
}
