package io.vfiouser.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.epoll.EpollIoHandler;
import io.vfiouser.client.ClientOptions;
import io.vfiouser.client.GuestMemory;
import io.vfiouser.client.VfioUserClient;
import io.vfiouser.codec.VfioUserCommand;
import io.vfiouser.codec.VfioUserMessage;
import io.vfiouser.codec.payload.DmaMapRequest;
import io.vfiouser.codec.payload.RegionAccess;
import io.vfiouser.codec.payload.SetIrqs;
import io.vfiouser.examples.nulldev.NullDevice;
import io.vfiouser.server.HostedDevice;
import io.vfiouser.server.VfioUserServer;
import io.vfiouser.transport.FdSet;
import io.vfiouser.transport.linux.Linux;
import io.vfiouser.transport.testing.FdCount;
import io.vfiouser.transport.testing.LeakDetection;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * Many devices in one JVM, a client on each at once: each sees only its own state, and clients killed at random
 * points leave the others unaffected and leak nothing.
 */
class ManyDevicesTest {
    private static final int DEVICES = 200;

    @Test
    void twoHundredDevicesEachWithItsOwnClient() throws Exception {
        long fdsBefore = FdCount.now();
        Path dir = Files.createTempDirectory("vfio-user-many");
        EventLoopGroup clientLoops = new MultiThreadIoEventLoopGroup(2, EpollIoHandler.newFactory());
        List<VfioUserClient> clients = new ArrayList<>();
        List<HostedDevice> hosted = new ArrayList<>();
        try (VfioUserServer server = VfioUserServer.builder().build()) {
            for (int i = 0; i < DEVICES; i++) {
                hosted.add(server.serve(NullDevice.description("null" + i), new NullDevice(),
                        dir.resolve("d" + i + ".sock")));
            }
            for (int i = 0; i < DEVICES; i++) {
                clients.add(VfioUserClient.connect(clientLoops, dir.resolve("d" + i + ".sock"), ClientOptions.DEFAULT));
            }
            // Every client writes its own value into its device's scratch register, all at once.
            List<CompletableFuture<VfioUserMessage>> writes = new ArrayList<>();
            for (int i = 0; i < DEVICES; i++) {
                ByteBuf v = Unpooled.directBuffer(8).writeLongLE(1000L + i);
                writes.add(clients.get(i).send(VfioUserCommand.REGION_WRITE,
                        RegionAccess.inRegion(0).atOffset(0).data(v)));
            }
            for (CompletableFuture<VfioUserMessage> w : writes) {
                VfioUserMessage r = w.get(30, TimeUnit.SECONDS);
                assertThat(r.header().isError()).isFalse();
                r.release();
            }
            for (int i = 0; i < DEVICES; i++) {
                assertThat(scratch(clients.get(i))).as("device %d", i).isEqualTo(1000L + i);
            }

            // Kill a third of the clients at random points: mid-message, with mappings and eventfds, or plainly.
            Random random = new Random(7);
            List<Integer> killed = new ArrayList<>();
            for (int i = 0; i < DEVICES; i += 3) {
                VfioUserClient victim = clients.get(i);
                switch (random.nextInt(3)) {
                    case 0 -> {
                        ByteBuf half = Unpooled.directBuffer(24);
                        half.writeShortLE(victim.nextId()).writeShortLE(10).writeIntLE(64).writeIntLE(0)
                                .writeIntLE(0).writeLongLE(0);
                        victim.sendRaw(half, FdSet.of(Linux.eventfd(0, 0)), -1).get(30, TimeUnit.SECONDS);
                    }
                    case 1 -> {
                        try (GuestMemory ram = GuestMemory.allocate(0x10000, 0x10000)) {
                            VfioUserMessage r = victim.send(VfioUserCommand.DMA_MAP,
                                    DmaMapRequest.of(3, 0, ram.iova(), ram.size()), FdSet.of(ram.dupFd()))
                                    .get(30, TimeUnit.SECONDS);
                            r.release();
                        }
                        VfioUserMessage r = victim.send(VfioUserCommand.DEVICE_SET_IRQS,
                                SetIrqs.of(SetIrqs.ACTION_TRIGGER | SetIrqs.DATA_EVENTFD, 3, 0, 1),
                                FdSet.of(Linux.eventfd(0, 0))).get(30, TimeUnit.SECONDS);
                        r.release();
                    }
                    default -> { }
                }
                victim.close();
                killed.add(i);
            }
            for (int i : killed) {
                awaitNoClient(hosted.get(i));
            }
            // The survivors still see their own values, and the killed devices serve a new client.
            for (int i = 0; i < DEVICES; i++) {
                if (killed.contains(i)) {
                    try (VfioUserClient again = VfioUserClient.connect(clientLoops, dir.resolve("d" + i + ".sock"),
                            ClientOptions.DEFAULT)) {
                        assertThat(scratch(again)).as("device %d after its client was killed", i).isZero();
                    }
                } else {
                    assertThat(scratch(clients.get(i))).as("device %d", i).isEqualTo(1000L + i);
                }
            }
        } finally {
            for (VfioUserClient c : clients) {
                c.close();
            }
            clientLoops.shutdownGracefully(0, 1, TimeUnit.SECONDS).sync();
        }
        try (var files = Files.list(dir)) {
            assertThat(files.toList()).as("socket files removed at shutdown").isEmpty();
        }
        Files.delete(dir);
        FdCount.awaitAtMost(fdsBefore);
        LeakDetection.assertNoLeaks();
    }

    private static long scratch(VfioUserClient client) throws Exception {
        VfioUserMessage r = client.send(VfioUserCommand.REGION_READ,
                RegionAccess.inRegion(0).atOffset(0).count(8)).get(30, TimeUnit.SECONDS);
        try {
            ByteBuf d = r.payload(RegionAccess.class).data();
            return d.getLongLE(d.readerIndex());
        } finally {
            r.release();
        }
    }

    private static void awaitNoClient(HostedDevice device) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (device.hasClient()) {
            assertThat(System.nanoTime()).as("client of %s gone", device).isLessThan(deadline);
            Thread.sleep(2);
        }
    }
}
