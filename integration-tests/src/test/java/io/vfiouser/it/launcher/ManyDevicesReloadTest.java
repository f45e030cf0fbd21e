package io.vfiouser.it.launcher;

import static org.assertj.core.api.Assertions.assertThat;

import io.netty.buffer.ByteBuf;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.epoll.EpollIoHandler;
import io.vfiouser.client.ClientOptions;
import io.vfiouser.client.VfioUserClient;
import io.vfiouser.codec.VfioUserCommand;
import io.vfiouser.codec.VfioUserMessage;
import io.vfiouser.codec.payload.RegionAccess;
import io.vfiouser.codec.payload.SetIrqs;
import io.vfiouser.device.IrqType;
import io.vfiouser.device.pci.PciIdentity;
import io.vfiouser.examples.gpio.PciIdio16;
import io.vfiouser.examples.nulldev.NullDevice;
import io.vfiouser.examples.nvme.NvmeDevice;
import io.vfiouser.server.VfioUserServer;
import io.vfiouser.server.launcher.RunningDevices;
import io.vfiouser.server.launcher.LauncherConfig;
import io.vfiouser.server.launcher.PluginRegistry;
import io.vfiouser.server.launcher.SocketActivation;
import io.vfiouser.transport.FdSet;
import io.vfiouser.transport.linux.Linux;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import javax.management.ObjectName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * One launcher (in process, through {@link RunningDevices}, the API the launcher runs on) hosting 100 devices of
 * three types from one configuration file, each serving its own client through its socket; then a reload that
 * removes 10 and adds 10 while the other 90 clients keep working without noticing.
 */
class ManyDevicesReloadTest {
    private static final int DEVICES = 100;
    private static final String[] TYPES = {"null", "gpio", "nvme"};

    @TempDir
    Path dir;

    private String entry(int i) {
        String type = TYPES[i % TYPES.length];
        String settings = type.equals("nvme")
                ? ", \"settings\": {\"backing\": \"" + dir.resolve("disk" + i + ".img") + "\", \"size\": \"1M\"}"
                : "";
        return "{\"name\": \"dev" + i + "\", \"type\": \"" + type + "\", \"socket-path\": \""
                + dir.resolve("dev" + i + ".sock") + "\"" + settings + "}";
    }

    private Path writeConfig(String name, List<Integer> devices) throws Exception {
        List<String> entries = devices.stream().map(this::entry).toList();
        Path file = dir.resolve(name);
        Files.writeString(file, "{\"release-timeout\": 60, \"devices\": [\n" + String.join(",\n", entries) + "\n]}");
        return file;
    }

    /** Vendor and device id from configuration space, as one 32-bit value. */
    private static int pciId(VfioUserClient client) throws Exception {
        VfioUserMessage reply = client.call(VfioUserCommand.REGION_READ, RegionAccess.inRegion(7).atOffset(0).count(4))
                .get(30, TimeUnit.SECONDS);
        try {
            ByteBuf d = reply.payload(RegionAccess.class).data();
            return d.getIntLE(d.readerIndex());
        } finally {
            reply.release();
        }
    }

    /** What device {@code i}'s type says its ids are. */
    private static int expectedId(int i) {
        PciIdentity id = switch (TYPES[i % TYPES.length]) {
            case "null" -> NullDevice.description("x").identity();
            case "gpio" -> PciIdio16.description("x").identity();
            default -> NvmeDevice.description("x").identity();
        };
        return id.vendorId() | id.deviceId() << 16;
    }

    @Test
    void hundredDevicesOfThreeTypesThenAReloadAddingTenAndRemovingTen() throws Exception {
        List<Integer> first = new ArrayList<>();
        for (int i = 0; i < DEVICES; i++) {
            first.add(i);
        }
        EventLoopGroup clientLoops = new MultiThreadIoEventLoopGroup(2, EpollIoHandler.newFactory());
        Map<Integer, VfioUserClient> clients = new LinkedHashMap<>();
        List<Integer> requestFds = new ArrayList<>();
        try (VfioUserServer server = VfioUserServer.builder().threads(2).build();
             PluginRegistry plugins = PluginRegistry.load(getClass().getClassLoader(), Optional.empty());
             RunningDevices host = new RunningDevices(server, plugins, SocketActivation.NONE, true)) {
            assertThat(plugins.problems()).isEmpty();
            RunningDevices.Report report = host.apply(
                    LauncherConfig.read(writeConfig("one.json", first), LauncherConfig.Defaults.NONE));
            assertThat(report.failed()).isEmpty();
            assertThat(report.started()).hasSize(DEVICES);
            for (int i = 0; i < DEVICES; i++) {
                VfioUserClient c = VfioUserClient.connect(clientLoops, dir.resolve("dev" + i + ".sock"),
                        ClientOptions.DEFAULT);
                clients.put(i, c);
                assertThat(pciId(c)).as("dev%d answers as its type", i).isEqualTo(expectedId(i));
            }
            assertThat(ManagementFactory.getPlatformMBeanServer().isRegistered(RunningDevices.objectName("dev7")))
                    .isTrue();

            // The devices 0..9 go; five of their clients registered a REQ eventfd and let go when it fires, the
            // other five are disconnected at once. Devices 100..109 come.
            for (int i = 0; i < 5; i++) {
                int efd = Linux.eventfd(0, Linux.EFD_NONBLOCK);
                requestFds.add(efd);
                VfioUserMessage r = clients.get(i).call(VfioUserCommand.DEVICE_SET_IRQS,
                        SetIrqs.of(SetIrqs.ACTION_TRIGGER | SetIrqs.DATA_EVENTFD, IrqType.REQ.index(), 0, 1),
                        FdSet.of(Linux.dup(efd))).get(30, TimeUnit.SECONDS);
                assertThat(r.header().isError()).isFalse();
                r.release();
            }
            List<Integer> second = new ArrayList<>();
            for (int i = 10; i < DEVICES + 10; i++) {
                second.add(i);
            }
            Path reloaded = writeConfig("two.json", second);
            CompletableFuture<RunningDevices.Report> reload = CompletableFuture.supplyAsync(() -> {
                try {
                    return host.apply(LauncherConfig.read(reloaded, LauncherConfig.Defaults.NONE));
                } catch (Exception e) {
                    throw new java.util.concurrent.CompletionException(e);
                }
            });
            for (int i = 0; i < 5; i++) {
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
                while (Linux.eventfdRead(requestFds.get(i)) != 1) {
                    assertThat(System.nanoTime()).as("REQ fired for dev%d", i).isLessThan(deadline);
                    Thread.sleep(5);
                }
                assertThat(clients.get(i).isOpen()).as("dev%d's client is asked, not yet dropped", i).isTrue();
                clients.remove(i).close(); // the client lets go, as QEMU does after unplugging the device
            }
            report = reload.get(60, TimeUnit.SECONDS);
            assertThat(report.failed()).isEmpty();
            assertThat(report.stopped()).hasSize(10);
            assertThat(report.started()).hasSize(10);
            assertThat(report.unchanged()).hasSize(DEVICES - 10);
            for (int i = 5; i < 10; i++) {
                clients.remove(i).closeFuture().get(30, TimeUnit.SECONDS);
            }
            for (int i = 0; i < 10; i++) {
                assertThat(dir.resolve("dev" + i + ".sock")).doesNotExist();
                assertThat(ManagementFactory.getPlatformMBeanServer()
                        .isRegistered(RunningDevices.objectName("dev" + i))).isFalse();
            }
            // The 90 others kept their clients, which see no error, and the 10 new ones serve.
            for (Map.Entry<Integer, VfioUserClient> e : clients.entrySet()) {
                assertThat(e.getValue().isOpen()).as("dev%d's client", e.getKey()).isTrue();
                assertThat(pciId(e.getValue())).isEqualTo(expectedId(e.getKey()));
                assertThat(e.getValue().unexpectedMessages()).isEmpty();
            }
            for (int i = DEVICES; i < DEVICES + 10; i++) {
                VfioUserClient c = VfioUserClient.connect(clientLoops, dir.resolve("dev" + i + ".sock"),
                        ClientOptions.DEFAULT);
                clients.put(i, c);
                assertThat(pciId(c)).as("new dev%d", i).isEqualTo(expectedId(i));
            }
            ObjectName dev20 = RunningDevices.objectName("dev20");
            Object commands = ManagementFactory.getPlatformMBeanServer().getAttribute(dev20, "MessagesIn");
            assertThat((Long) commands).as("VERSION and the reads were counted").isGreaterThanOrEqualTo(3L);
        } finally {
            for (VfioUserClient c : clients.values()) {
                c.close();
            }
            for (int fd : requestFds) {
                Linux.close(fd);
            }
            clientLoops.shutdownGracefully(0, 1, TimeUnit.SECONDS).syncUninterruptibly();
        }
    }
}
