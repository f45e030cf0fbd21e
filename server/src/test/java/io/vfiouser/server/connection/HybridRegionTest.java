package io.vfiouser.server.connection;

import static io.vfiouser.server.connection.ConnectionChannel.command;
import static io.vfiouser.server.connection.ConnectionChannel.concat;
import static io.vfiouser.server.connection.ConnectionChannel.hex;
import static io.vfiouser.server.connection.ConnectionChannel.le;
import static io.vfiouser.server.connection.UnitDevices.BAR0;
import static io.vfiouser.server.connection.UnitDevices.BAR2;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vfiouser.codec.VfioUserCommand;
import io.vfiouser.device.Access;
import io.vfiouser.transport.FdSet;
import io.vfiouser.transport.linux.Errno;
import io.vfiouser.transport.linux.Linux;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import org.junit.jupiter.api.Test;

/**
 * Hybrid regions through the connection's real pipeline, without a socket: the DEVICE_GET_REGION_INFO reply of a
 * device-served region with two mmappable areas (bytes and fd), message accesses inside an area served from its
 * memory and outside it by the device, EINVAL across an area's boundary, the device's and the client's views of
 * an area agreeing, and the fast path keeping off the areas.
 */
class HybridRegionTest {
    private static final ValueLayout.OfInt INT_LE = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private final ScriptedDevice device = new ScriptedDevice();

    static byte[] read(int msgId, int region, long offset, int count) {
        return command(msgId, VfioUserCommand.REGION_READ, le(8, offset, 4, region, 4, count));
    }

    static byte[] write(int msgId, int region, long offset, byte[] data) {
        return command(msgId, VfioUserCommand.REGION_WRITE, concat(le(8, offset, 4, region, 4, data.length), data));
    }

    static byte[] regionInfo(int msgId, int argsz, int index) {
        return command(msgId, VfioUserCommand.DEVICE_GET_REGION_INFO, le(4, argsz, 4, 0, 4, index, 4, 0, 8, 0, 8, 0));
    }

    @Test
    void regionInfoOfAHybridRegionHasTheSparseCapabilityWithBothAreasAndOneFd() throws Exception {
        try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.hybrid(), device)) {
            c.send(regionInfo(4, 32, BAR0));
            ConnectionChannel.Reply shortReply = c.assertOk(4, VfioUserCommand.DEVICE_GET_REGION_INFO);
            // argsz 32 is too small for the capability: the size needed, MMAP but not CAPS, no fd.
            assertThat(shortReply.payload()).isEqualTo(hex(
                    "50000000 07000000 00000000 00000000  0040000000000000 0000000000000000"));
            assertThat(shortReply.fds()).isEmpty();

            c.send(regionInfo(5, 0x50, BAR0));
            ConnectionChannel.Reply r = c.assertOk(5, VfioUserCommand.DEVICE_GET_REGION_INFO);
            try {
                assertThat(r.payload()).isEqualTo(hex(
                        // argsz 80, READ|WRITE|MMAP|CAPS, index 0, cap_offset 32, size 0x4000, file offset 0
                        "50000000 0f000000 00000000 20000000  0040000000000000 0000000000000000"
                        // SPARSE_MMAP id 1 version 1 next 0, nr_areas 2, reserved
                        + "0100 0100 00000000 02000000 00000000"
                        + "0010000000000000 0010000000000000  0030000000000000 0010000000000000"));
                assertThat(r.fds()).as("one fd for the region, whatever its number of areas").hasSize(1);
                // The server's memfd holds the span up to the last area's end, and cannot shrink.
                assertThat(Linux.fstat(r.fds()[0]).size()).isEqualTo(0x4000);
                int fd = r.fds()[0];
                assertThatThrownBy(() -> Linux.ftruncate(fd, 0x1000)).isInstanceOf(
                        io.vfiouser.transport.linux.ErrnoException.class);
            } finally {
                r.closeFds();
            }
        }
    }

    @Test
    void accessesInsideAnAreaAreServedFromItsMemoryAndOutsideByTheDevice() throws Exception {
        device.regions[BAR0][0x10] = 0x33;
        try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.hybrid(), device)) {
            device.takeCalls();
            c.send(write(1, BAR0, 0x1008, hex("a1a2a3a4")));
            c.assertOk(1, VfioUserCommand.REGION_WRITE);
            c.send(write(2, BAR0, 0x3FFC, hex("b1b2b3b4")));
            c.assertOk(2, VfioUserCommand.REGION_WRITE);
            c.send(read(3, BAR0, 0x1008, 4));
            assertThat(c.assertOk(3, VfioUserCommand.REGION_READ).payload()).endsWith(0xa1, 0xa2, 0xa3, 0xa4);
            assertThat(device.takeCalls()).as("accesses inside the areas never reach the device").isEmpty();

            c.send(read(4, BAR0, 0x10, 4));
            assertThat(c.assertOk(4, VfioUserCommand.REGION_READ).payload()).endsWith(0x33, 0, 0, 0);
            c.send(write(5, BAR0, 0xFFC, hex("01020304")));
            c.assertOk(5, VfioUserCommand.REGION_WRITE);
            assertThat(device.takeCalls()).containsExactly("read 0 0x10 4", "write 0 0xffc 4");
            assertThat(device.regions[BAR0][0xFFC]).isEqualTo((byte) 1);
        }
    }

    @Test
    void anAccessAcrossAnAreaBoundaryIsRefusedWithEinvalAndReachesNoOne() throws Exception {
        try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.hybrid(), device)) {
            device.takeCalls();
            c.send(read(1, BAR0, 0xFFC, 8));
            c.assertError(1, VfioUserCommand.REGION_READ, Errno.EINVAL);
            c.send(write(2, BAR0, 0x1FFC, hex("0102030405060708")));
            c.assertError(2, VfioUserCommand.REGION_WRITE, Errno.EINVAL);
            c.send(read(3, BAR0, 0, 0x4000));
            c.assertError(3, VfioUserCommand.REGION_READ, Errno.EINVAL);
            assertThat(device.takeCalls()).isEmpty();
            assertThat(device.context.areaMemory(BAR0, 1).get(ValueLayout.JAVA_BYTE, 0xFFC))
                    .as("nothing of the refused write landed").isZero();
        }
    }

    @Test
    void theDeviceWritesAnAreaAndTheClientReadsItByMessageAndTheOtherWayRound() throws Exception {
        try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.hybrid(), device)) {
            MemorySegment area1 = device.context.areaMemory(BAR0, 1);
            assertThat(area1.byteSize()).isEqualTo(0x1000);
            area1.set(INT_LE, 0x20, 0xCAFEF00D);
            c.send(read(1, BAR0, 0x3020, 4));
            assertThat(c.assertOk(1, VfioUserCommand.REGION_READ).payload()).endsWith(0x0d, 0xf0, 0xfe, 0xca);

            c.send(write(2, BAR0, 0x1000, hex("11223344")));
            c.assertOk(2, VfioUserCommand.REGION_WRITE);
            assertThat(device.context.areaMemory(BAR0, 0).get(INT_LE, 0)).isEqualTo(0x44332211);
            assertThatThrownBy(() -> device.context.areaMemory(BAR0, 2)).isInstanceOf(IllegalArgumentException.class);
            assertThatThrownBy(() -> device.context.regionMemory(BAR0)).isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("areaMemory");
            assertThatThrownBy(() -> device.context.areaMemory(BAR2, 0)).as("BAR2 is memory-backed without areas")
                    .isInstanceOf(IllegalArgumentException.class);
        }
    }

    @Test
    void theClientsMappingOfTheReplysFdSeesWhatMessagesAndTheDeviceSee() throws Exception {
        try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.hybrid(), device);
             Arena arena = Arena.ofConfined()) {
            c.send(regionInfo(1, 0x50, BAR0));
            ConnectionChannel.Reply r = c.assertOk(1, VfioUserCommand.DEVICE_GET_REGION_INFO);
            MemorySegment mapped;
            try {
                long fileOffset = r.le().getLong(16 + 24);
                // QEMU's layout: every area of the region at the reply's offset + the area's offset in one fd.
                mapped = Linux.mmap(r.fds()[0], fileOffset + 0x3000, 0x1000,
                        Linux.PROT_READ | Linux.PROT_WRITE, arena);
            } finally {
                r.closeFds();
            }
            c.send(write(2, BAR0, 0x3100, hex("5a5b5c5d")));
            c.assertOk(2, VfioUserCommand.REGION_WRITE);
            assertThat(mapped.get(INT_LE, 0x100)).isEqualTo(0x5d5c5b5a);
            mapped.set(INT_LE, 0x200, 0x01020304);
            c.send(read(3, BAR0, 0x3200, 4));
            assertThat(c.assertOk(3, VfioUserCommand.REGION_READ).payload()).endsWith(4, 3, 2, 1);
            assertThat(device.context.areaMemory(BAR0, 1).get(INT_LE, 0x200)).isEqualTo(0x01020304);
        }
    }

    @Test
    void theFastPathLeavesAreasAndTheirBoundariesToTheGeneralPath() throws Exception {
        try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.hybrid(), device)) {
            RegionRouter router = c.connection.regions();
            assertThat(router.goesToDevice(BAR0, 0x10, 4, Access.READ)).isTrue();
            assertThat(router.goesToDevice(BAR0, 0x2000, 8, Access.WRITE)).isTrue();
            assertThat(router.goesToDevice(BAR0, 0x1000, 4, Access.READ)).isFalse();
            assertThat(router.goesToDevice(BAR0, 0x1FFC, 4, Access.WRITE)).isFalse();
            assertThat(router.goesToDevice(BAR0, 0xFFC, 8, Access.READ)).as("straddles into area 0").isFalse();
            assertThat(router.goesToDevice(BAR0, 0x2FFC, 8, Access.READ)).as("straddles into area 1").isFalse();
            assertThat(router.goesToDevice(BAR2, 0, 4, Access.READ)).isFalse();
        }
    }

    @Test
    void aFileBackedAreaIsMappedAtTheDevicesOffset() throws Exception {
        int memfd = Linux.memfdCreate("unit-hybrid-backing");
        Linux.ftruncate(memfd, 0x10000);
        Linux.addSeals(memfd, Linux.F_SEAL_SHRINK);
        int own = Linux.dup(memfd);
        BackingDevice backed = new BackingDevice().supply(BAR0,
                i -> io.vfiouser.device.RegionBacking.sealed(memfd, 0x8000));
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment file = Linux.mmap(own, 0, 0x10000, Linux.PROT_READ | Linux.PROT_WRITE, arena);
            try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.hybridWith(
                    io.vfiouser.device.Region.bar(BAR0, 0x4000).hybrid(UnitDevices.HYBRID_AREA0).deviceBacked()
                            .build()), backed)) {
                c.send(write(1, BAR0, 0x1010, hex("deadbeef")));
                c.assertOk(1, VfioUserCommand.REGION_WRITE);
                assertThat(file.get(INT_LE, 0x8000 + 0x1010)).isEqualTo(0xefbeadde);
                c.send(regionInfo(2, 0x40, BAR0));
                ConnectionChannel.Reply r = c.assertOk(2, VfioUserCommand.DEVICE_GET_REGION_INFO);
                try {
                    assertThat(r.le().getLong(16 + 24)).as("the reply's file offset").isEqualTo(0x8000);
                    assertThat(r.fds()).hasSize(1);
                    assertThat(Linux.fstat(r.fds()[0]).size()).isEqualTo(0x10000);
                } finally {
                    r.closeFds();
                }
            }
        } finally {
            FdSet.closeQuietly(own);
        }
    }

    @Test
    void anUnsealedFileThatShrinksUnderAnAreaAnswersEioInsteadOfFaultingTheServer() throws Exception {
        int memfd = Linux.memfdCreate("unit-hybrid-unsealed");
        Linux.ftruncate(memfd, 0x2000);
        int clients = Linux.dup(memfd);
        BackingDevice backed = new BackingDevice().supply(BAR0,
                i -> io.vfiouser.device.RegionBacking.unsealed(memfd, 0));
        try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.hybridWith(
                io.vfiouser.device.Region.bar(BAR0, 0x4000).hybrid(UnitDevices.HYBRID_AREA0).deviceBacked()
                        .build()), backed)) {
            c.send(write(1, BAR0, 0x1000, hex("01020304")));
            c.assertOk(1, VfioUserCommand.REGION_WRITE);
            Linux.ftruncate(clients, 0);
            c.send(read(2, BAR0, 0x1000, 4));
            c.assertError(2, VfioUserCommand.REGION_READ, Errno.EIO);
            c.send(write(3, BAR0, 0x1800, hex("01020304")));
            c.assertError(3, VfioUserCommand.REGION_WRITE, Errno.EIO);
            c.send(read(4, BAR0, 0x10, 4));
            c.assertOk(4, VfioUserCommand.REGION_READ);
        } finally {
            FdSet.closeQuietly(clients);
        }
    }
}
