package io.vfiouser.it;

import static io.vfiouser.it.Wire.errno;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.vfiouser.client.VfioUserClient;
import io.vfiouser.codec.VfioUserCommand;
import io.vfiouser.codec.VfioUserMessage;
import io.vfiouser.codec.payload.RegionAccess;
import io.vfiouser.codec.payload.RegionInfo;
import io.vfiouser.codec.payload.RegionInfoRequest;
import io.vfiouser.codec.payload.SparseMmapCapability;
import io.vfiouser.device.DeviceContext;
import io.vfiouser.device.DeviceDescription;
import io.vfiouser.device.MmapArea;
import io.vfiouser.device.Region;
import io.vfiouser.device.RegionBacking;
import io.vfiouser.device.VfioUserDevice;
import io.vfiouser.device.pci.PciExpressCapability;
import io.vfiouser.device.pci.PciIdentity;
import io.vfiouser.server.VfioUserServer;
import io.vfiouser.transport.FdSet;
import io.vfiouser.transport.linux.Errno;
import io.vfiouser.transport.linux.ErrnoException;
import io.vfiouser.transport.linux.Linux;
import io.vfiouser.transport.testing.FdCount;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/**
 * Hybrid regions through a real socket: a device with SPDK's NVMe layout (BAR0 registers served by the device, a
 * doorbell page at 0x1000 the client mmaps), the client mapping the fd of the DEVICE_GET_REGION_INFO reply as QEMU
 * and SPDK do (one fd, the area at the reply's offset plus the area's offset) and seeing the bytes that message
 * accesses and the device see; and files the device supplies, closed exactly once on every path: the device
 * stopping, hosting refusing them (too small, unsealed where seals are required) and hosting failing after it
 * took them (the socket cannot be bound).
 */
class HybridRegionSocketTest {
    private static final ValueLayout.OfInt INT_LE = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final AtomicLong NAMES = new AtomicLong();
    private static final MmapArea DOORBELLS = new MmapArea(0x1000, 0x1000);

    private static DeviceDescription description(boolean deviceBacked) {
        Region.Builder bar0 = Region.bar(0, 0x4000).hybrid(DOORBELLS);
        if (deviceBacked) {
            bar0.deviceBacked();
        }
        return DeviceDescription.builder("hybrid", PciIdentity.of(0x4a56, 0x0006, 0x010802))
                .region(bar0.build())
                .capability(PciExpressCapability.ENDPOINT)
                .build();
    }

    /** Registers in an array outside the doorbell page; the file behind it, when it supplies one. */
    static final class DoorbellDevice implements VfioUserDevice {
        final byte[] registers = new byte[0x4000];
        volatile DeviceContext context;
        private final RegionBacking backing;

        DoorbellDevice(RegionBacking backing) {
            this.backing = backing;
        }

        @Override
        public RegionBacking regionBacking(int region) {
            return backing;
        }

        @Override
        public CompletableFuture<Void> regionRead(int region, long offset, ByteBuffer dst) {
            dst.put(registers, (int) offset, dst.remaining());
            return DONE;
        }

        @Override
        public CompletableFuture<Void> regionWrite(int region, long offset, ByteBuffer src) {
            src.get(registers, (int) offset, src.remaining());
            return DONE;
        }

        @Override
        public void attached(DeviceContext context) {
            this.context = context;
        }
    }

    /** A memfd with a name of its own, so "closed" can be told from "its number reused for another file". */
    private record File(int fd, String target) {
        static File create(long size, int seals) throws ErrnoException {
            int fd = Linux.memfdCreate("hybrid-it-" + ProcessHandle.current().pid() + "-" + NAMES.incrementAndGet());
            Linux.ftruncate(fd, size);
            if (seals != 0) {
                Linux.addSeals(fd, seals);
            }
            return new File(fd, Linux.fdTarget(fd));
        }

        boolean open() {
            try {
                return Linux.fdTarget(fd).equals(target);
            } catch (ErrnoException e) {
                return false;
            }
        }
    }

    /** The reply's fd (now the caller's) and the offset of region 0 in it. */
    private record Mappable(int fd, long offset) {
    }

    private static Mappable regionInfo(VfioUserClient client) throws Exception {
        VfioUserMessage reply = Wire.send(client, VfioUserCommand.DEVICE_GET_REGION_INFO,
                new RegionInfoRequest(256, 0));
        try {
            RegionInfo info = reply.payload(RegionInfo.class);
            assertThat(info.flags() & RegionInfo.FLAG_MMAP).isNotZero();
            assertThat(info.caps()).singleElement().isInstanceOfSatisfying(SparseMmapCapability.class,
                    c -> assertThat(c.areas()).containsExactly(new SparseMmapCapability.Area(0x1000, 0x1000)));
            // One fd: QEMU refuses more on a region reply, SPDK maps area i with the i-th.
            assertThat(reply.fds().size()).isEqualTo(1);
            return new Mappable(reply.fds().take(0), info.offset());
        } finally {
            reply.release();
        }
    }

    private static void write(VfioUserClient client, long offset, int value) throws Exception {
        ByteBuf data = Unpooled.buffer(4).writeIntLE(value);
        assertThat(errno(client, VfioUserCommand.REGION_WRITE,
                RegionAccess.inRegion(0).atOffset(offset).data(data))).isZero();
    }

    private static int read(VfioUserClient client, long offset) throws Exception {
        VfioUserMessage reply = Wire.send(client, VfioUserCommand.REGION_READ,
                RegionAccess.inRegion(0).atOffset(offset).count(4));
        try {
            assertThat(reply.header().isError()).as("errno %d", reply.header().error()).isFalse();
            return reply.payload(RegionAccess.class).data().getIntLE(0);
        } finally {
            reply.release();
        }
    }

    /** The client's mapping, the messages and the device agree on every byte of the doorbell page. */
    private static void allThreeViewsAgree(VfioUserClient client, DoorbellDevice device) throws Exception {
        Mappable m = regionInfo(client);
        try (Arena arena = Arena.ofConfined()) {
            // Both clients' rule: the area lies at the reply's offset plus the area's offset in the region.
            MemorySegment mapped = Linux.mmap(m.fd(), m.offset() + DOORBELLS.offset(), DOORBELLS.size(),
                    Linux.PROT_READ | Linux.PROT_WRITE, arena);
            mapped.set(INT_LE, 8, 0x11223344);                      // a doorbell written straight into memory
            assertThat(read(client, 0x1008)).isEqualTo(0x11223344);
            assertThat(device.context.areaMemory(0, 0).get(INT_LE, 8)).isEqualTo(0x11223344);

            write(client, 0x1FFC, 0x55667788);                      // by message
            assertThat(mapped.get(INT_LE, 0xFFC)).isEqualTo(0x55667788);

            device.context.areaMemory(0, 0).set(INT_LE, 0x40, 0x0BADCAFE);   // by the device
            assertThat(mapped.get(INT_LE, 0x40)).isEqualTo(0x0BADCAFE);
            assertThat(read(client, 0x1040)).isEqualTo(0x0BADCAFE);

            write(client, 0x14, 0x01020304);                        // a register: the device's
            assertThat(device.registers[0x14]).isEqualTo((byte) 4);
            assertThat(read(client, 0x14)).isEqualTo(0x01020304);
            assertThat(errno(client, VfioUserCommand.REGION_READ, RegionAccess.inRegion(0).atOffset(0xFFC).count(8)))
                    .as("across the area's boundary").isEqualTo(Errno.EINVAL);
        } finally {
            FdSet.closeQuietly(m.fd());
        }
    }

    @Test
    void theClientMapsTheServersMemoryAndSeesWhatMessagesAndTheDeviceSee() throws Exception {
        DoorbellDevice device = new DoorbellDevice(null);
        try (ServerFixture fixture = new ServerFixture(description(false), device)) {
            allThreeViewsAgree(fixture.client(), device);
        }
    }

    @Test
    void aDevicesOwnFileIsWhatTheClientMapsAndIsClosedOnceWhenTheDeviceStops() throws Exception {
        File file = File.create(0x20000, Linux.F_SEAL_SHRINK | Linux.F_SEAL_GROW);
        int own = Linux.dup(file.fd());
        DoorbellDevice device = new DoorbellDevice(RegionBacking.sealed(file.fd(), 0x10000));
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment devicesView = Linux.mmap(own, 0, 0x20000, Linux.PROT_READ | Linux.PROT_WRITE, arena);
            try (ServerFixture fixture = new ServerFixture(description(true), device)) {
                VfioUserClient client = fixture.client();
                Mappable m = regionInfo(client);
                FdSet.closeQuietly(m.fd());
                assertThat(m.offset()).as("the reply's offset is the device's").isEqualTo(0x10000);
                allThreeViewsAgree(client, device);
                assertThat(devicesView.get(INT_LE, 0x10000 + 0x1008)).as("in the device's own file")
                        .isEqualTo(0x11223344);
                assertThat(file.open()).as("the server holds the file while it serves").isTrue();
            }
            assertThat(file.open()).as("closed by the server when the device stopped").isFalse();
        } finally {
            FdSet.closeQuietly(own);
        }
    }

    @Test
    void filesHostingRefusesAreClosedAndNothingIsServed() throws Exception {
        long before = FdCount.now();
        Path dir = Files.createTempDirectory("vfio-user-it");
        try (VfioUserServer server = VfioUserServer.builder().threads(1).build()) {
            File tooSmall = File.create(0x1000, Linux.F_SEAL_SHRINK);
            assertThatThrownBy(() -> server.serve(description(true),
                    new DoorbellDevice(RegionBacking.sealed(tooSmall.fd(), 0)), dir.resolve("a.sock")))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("needs 8192");
            assertThat(tooSmall.open()).isFalse();

            File unsealed = File.create(0x4000, 0);
            assertThatThrownBy(() -> server.serve(description(true),
                    new DoorbellDevice(RegionBacking.sealed(unsealed.fd(), 0)), dir.resolve("b.sock")))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("F_SEAL_SHRINK");
            assertThat(unsealed.open()).isFalse();
            assertThat(server.devices()).isEmpty();
            assertThat(Files.exists(dir.resolve("a.sock")) || Files.exists(dir.resolve("b.sock"))).isFalse();
        } finally {
            Files.deleteIfExists(dir);
        }
        FdCount.awaitAtMost(before);
    }

    @Test
    void aFileTakenBeforeHostingFailsIsClosedWithTheRest() throws Exception {
        long before = FdCount.now();
        File file = File.create(0x4000, Linux.F_SEAL_SHRINK);
        try (VfioUserServer server = VfioUserServer.builder().threads(1).build()) {
            Path nowhere = Path.of("/nonexistent-" + NAMES.incrementAndGet(), "dev.sock");
            assertThatThrownBy(() -> server.serve(description(true),
                    new DoorbellDevice(RegionBacking.sealed(file.fd(), 0)), nowhere)).isNotNull();
            assertThat(file.open()).as("taken, then closed when the socket could not be bound").isFalse();
            assertThat(server.devices()).isEmpty();
        }
        FdCount.awaitAtMost(before);
    }
}
