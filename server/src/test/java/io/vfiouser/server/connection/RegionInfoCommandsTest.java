package io.vfiouser.server.connection;

import static io.vfiouser.server.connection.ConnectionChannel.command;
import static io.vfiouser.server.connection.ConnectionChannel.concat;
import static io.vfiouser.server.connection.ConnectionChannel.le;
import static io.vfiouser.server.connection.UnitDevices.BAR0;
import static io.vfiouser.server.connection.UnitDevices.BAR2;
import static io.vfiouser.server.connection.UnitDevices.BAR4;
import static io.vfiouser.server.connection.UnitDevices.CONFIG;
import static org.assertj.core.api.Assertions.assertThat;

import io.vfiouser.codec.VfioUserCommand;
import io.vfiouser.codec.VfioUserHeader;
import io.vfiouser.transport.linux.Errno;
import io.vfiouser.transport.linux.Linux;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * DEVICE_GET_REGION_INFO and DEVICE_GET_REGION_IO_FDS through the connection's real pipeline (digest 3.5, 3.6,
 * 6.3): the exact replies for the configuration space, an absent region, a plain BAR and an mmappable BAR with its
 * sparse-mmap capability (argsz too small: the full argsz, no capability, no fd; big enough: the capability and
 * one fd that maps the region's memory), the doorbell entries and their eventfds (a signal reaches the device's
 * {@code ioEventFdSignalled}), and every refused request.
 */
class RegionInfoCommandsTest {
    private static final int READ = 1;
    private static final int WRITE = 2;
    private static final int MMAP = 4;
    private static final int CAPS = 8;
    /** BAR2's sparse-mmap capability (16 + 2 areas of 16) after the 32-byte fixed part. */
    private static final int BAR2_FULL = 32 + 16 + 32;

    private final ScriptedDevice device = new ScriptedDevice();

    private static byte[] regionInfo(int msgId, long argsz, long index) {
        return command(msgId, VfioUserCommand.DEVICE_GET_REGION_INFO, le(4, argsz, 4, 0, 4, index, 4, 0, 8, 0, 8, 0));
    }

    private static byte[] ioFds(int msgId, long argsz, int flags, long index, int count) {
        return command(msgId, VfioUserCommand.DEVICE_GET_REGION_IO_FDS, le(4, argsz, 4, flags, 4, index, 4, count));
    }

    /** The fixed 32 bytes of a region-info reply. */
    private static byte[] info(long argsz, int flags, int index, int capOffset, long size) {
        return le(4, argsz, 4, flags, 4, index, 4, capOffset, 8, size, 8, 0);
    }

    // -------------------------------------------------------------------------------- DEVICE_GET_REGION_INFO

    @Test
    void configSpaceIsReadWriteAndAsLargeAsThePcieConfigSpace() throws Exception {
        try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.full(), device)) {
            c.send(regionInfo(0x0201, 32, CONFIG));
            assertThat(c.assertOk(0x0201, VfioUserCommand.DEVICE_GET_REGION_INFO).bytes()).isEqualTo(
                    ConnectionChannel.hex("0102 0500 30000000 01000000 00000000  20000000 03000000 07000000 00000000"
                            + " 0010000000000000 0000000000000000"));
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 3, 5, 6, 8})
    void anAbsentRegionHasSizeAndFlagsZero(int index) throws Exception {
        try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.full(), device)) {
            c.send(regionInfo(1, 32, index));
            assertThat(c.assertOk(1, VfioUserCommand.DEVICE_GET_REGION_INFO).payload()).isEqualTo(
                    info(32, 0, index, 0, 0));
        }
    }

    @Test
    void aPlainBarHasItsSizeNoMmapNoFd() throws Exception {
        try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.full(), device)) {
            c.send(regionInfo(1, 32, BAR0));
            ConnectionChannel.Reply r = c.assertOk(1, VfioUserCommand.DEVICE_GET_REGION_INFO);
            assertThat(r.payload()).isEqualTo(info(32, READ | WRITE, BAR0, 0, 0x1000));
            assertThat(r.fds()).isEmpty();
            c.send(regionInfo(2, 0xFFFFFFFFL, BAR4));
            r = c.assertOk(2, VfioUserCommand.DEVICE_GET_REGION_INFO);
            assertThat(r.payload()).as("not padded to argsz").isEqualTo(info(32, READ | WRITE, BAR4, 0, 0x1000));
        }
    }

    /** argsz below the capability's needs: the 32 bytes with the full argsz, MMAP but not CAPS, and no fd. */
    @ParameterizedTest
    @ValueSource(longs = {32, 33, BAR2_FULL - 1})
    void anMmappableBarAskedWithTooSmallAnArgszTellsTheFullArgszWithoutCapsOrFd(long argsz) throws Exception {
        try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.full(), device)) {
            c.send(regionInfo(3, argsz, BAR2));
            ConnectionChannel.Reply r = c.assertOk(3, VfioUserCommand.DEVICE_GET_REGION_INFO);
            assertThat(r.payload()).isEqualTo(info(BAR2_FULL, READ | WRITE | MMAP, BAR2, 0, 0x4000));
            assertThat(r.fds()).as("no fd without the capability").isEmpty();
        }
    }

    /**
     * argsz big enough (or larger: never padded): the sparse-mmap capability at 32 with both areas, CAPS, and
     * exactly one fd, which maps the region's own memory (a REGION_WRITE shows through it).
     */
    @ParameterizedTest
    @ValueSource(longs = {BAR2_FULL, 4096, 0xFFFFFFFFL})
    void anMmappableBarAskedWithEnoughArgszGetsTheSparseCapabilityAndOneFd(long argsz) throws Exception {
        try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.full(), device)) {
            c.send(regionInfo(4, argsz, BAR2));
            ConnectionChannel.Reply r = c.assertOk(4, VfioUserCommand.DEVICE_GET_REGION_INFO);
            try {
                assertThat(r.payload()).isEqualTo(concat(info(BAR2_FULL, READ | WRITE | MMAP | CAPS, BAR2, 32,
                                0x4000),
                        le(2, 1, 2, 1, 4, 0),                 // SPARSE_MMAP, version 1, last
                        le(4, 2, 4, 0),                       // two areas
                        le(8, 0, 8, 0x1000, 8, 0x2000, 8, 0x2000)));
                assertThat(r.fds()).hasSize(1);
                c.send(command(5, VfioUserCommand.REGION_WRITE, concat(le(8, 0x2ff8, 4, BAR2, 4, 8),
                        le(8, 0x1122334455667788L))));
                c.assertOk(5, VfioUserCommand.REGION_WRITE);
                try (Arena arena = Arena.ofConfined()) {
                    MemorySegment mapped = Linux.mmap(r.fds()[0], 0, 0x4000, Linux.PROT_READ, arena);
                    assertThat(mapped.get(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN),
                            0x2ff8)).isEqualTo(0x1122334455667788L);
                }
            } finally {
                r.closeFds();
            }
        }
    }

    /**
     * Info commands behind a device access that has not completed wait for it, and come out in arrival order, each
     * with its own fds: the region's memfd with the region info, the two doorbells with the io fds.
     */
    @Test
    void infoCommandsWaitBehindAPendingAccessAndKeepTheirFds() throws Exception {
        try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.full(), device)) {
            CompletableFuture<Void> held = device.holdNextAccess();
            c.sendAll(command(1, VfioUserCommand.REGION_READ, le(8, 0, 4, BAR0, 4, 4)), regionInfo(2, 4096, BAR2),
                    ioFds(3, 4096, 0, BAR0, 0), regionInfo(4, 32, 9));
            c.assertNoReply();
            held.complete(null);
            List<ConnectionChannel.Reply> replies = c.replies();
            try {
                assertThat(replies).extracting(ConnectionChannel.Reply::msgId).containsExactly(1, 2, 3, 4);
                assertThat(replies).extracting(r -> r.fds().length).containsExactly(0, 1, 2, 0);
                assertThat(TestFds.target(replies.get(1).fds()[0])).startsWith("/memfd:");
                assertThat(Linux.isEventFd(replies.get(2).fds()[0])).isTrue();
                assertThat(replies.get(3).error()).isEqualTo(Errno.EINVAL);
            } finally {
                replies.forEach(ConnectionChannel.Reply::closeFds);
            }
        }
    }

    @Test
    void regionInfoRefusals() throws Exception {
        try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.full(), device)) {
            c.send(regionInfo(1, 31, BAR0));
            c.assertError(1, VfioUserCommand.DEVICE_GET_REGION_INFO, Errno.EINVAL);
            c.send(regionInfo(2, 0, BAR0));
            c.assertError(2, VfioUserCommand.DEVICE_GET_REGION_INFO, Errno.EINVAL);
            c.send(regionInfo(3, 32, 9));
            c.assertError(3, VfioUserCommand.DEVICE_GET_REGION_INFO, Errno.EINVAL);
            c.send(regionInfo(4, 32, 0xFFFFFFFFL));
            c.assertError(4, VfioUserCommand.DEVICE_GET_REGION_INFO, Errno.EINVAL);
            c.send(command(5, VfioUserCommand.DEVICE_GET_REGION_INFO, le(4, 32, 4, 0, 4, 0, 4, 0, 8, 0, 4, 0)));
            c.assertError(5, VfioUserCommand.DEVICE_GET_REGION_INFO, Errno.EINVAL);
            c.send(command(6, VfioUserCommand.DEVICE_GET_REGION_INFO, VfioUserHeader.NO_REPLY,
                    le(4, 32, 4, 0, 4, 9, 4, 0, 8, 0, 8, 0)));
            c.send(command(7, VfioUserCommand.DEVICE_GET_REGION_INFO, VfioUserHeader.NO_REPLY,
                    le(4, 4096, 4, 0, 4, BAR2, 4, 0, 8, 0, 8, 0)));
            c.assertNoReply();
            c.send(regionInfo(8, 32, BAR0));
            c.assertOk(8, VfioUserCommand.DEVICE_GET_REGION_INFO);
        }
    }

    // ------------------------------------------------------------------------------ DEVICE_GET_REGION_IO_FDS

    /**
     * BAR0's two doorbells: 40-byte entries in description order, fd_index into the reply's fds, DATAMATCH on the
     * second; a signal on an fd reaches the device as {@code ioEventFdSignalled} with the count.
     */
    @Test
    void ioFdsListTheDoorbellsAndTheirEventfdsReachTheDevice() throws Exception {
        try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.full(), device)) {
            c.send(ioFds(0x11, 16 + 80, 0, BAR0, 0));
            ConnectionChannel.Reply r = c.assertOk(0x11, VfioUserCommand.DEVICE_GET_REGION_IO_FDS);
            try {
                assertThat(r.bytes()).isEqualTo(concat(
                        le(2, 0x11, 2, 6, 4, 16 + 16 + 80, 4, VfioUserHeader.REPLY, 4, 0),
                        le(4, 96, 4, 0, 4, BAR0, 4, 2),
                        le(8, 0x100, 8, 4, 4, 0, 4, 0, 4, 0, 4, 0, 8, 0),
                        le(8, 0x108, 8, 2, 4, 1, 4, 0, 4, 1, 4, 0, 8, 0xabcd)));
                assertThat(r.fds()).hasSize(2);
                for (int fd : r.fds()) {
                    assertThat(Linux.isEventFd(fd)).isTrue();
                }
                device.takeCalls();
                TestFds.signal(r.fds()[0]);
                TestFds.signal(r.fds()[1]);
                TestFds.signal(r.fds()[1]);
                assertThat(c.watchers.poll()).isEqualTo(2);
                assertThat(device.takeCalls()).containsExactlyInAnyOrder("doorbell 0 0x100 1", "doorbell 0 0x108 2");
            } finally {
                r.closeFds();
            }
            // The client closing its copies does not stop the doorbells; asking again hands out new copies.
            c.send(ioFds(0x12, 4096, 0, BAR0, 0));
            ConnectionChannel.Reply again = c.assertOk(0x12, VfioUserCommand.DEVICE_GET_REGION_IO_FDS);
            try {
                TestFds.signal(again.fds()[0]);
                assertThat(c.watchers.poll()).isEqualTo(1);
                assertThat(device.takeCalls()).containsExactly("doorbell 0 0x100 1");
            } finally {
                again.closeFds();
            }
        }
    }

    @Test
    void theDoorbellsCloseWithTheConnection() throws Exception {
        ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.full(), device);
        assertThat(c.watchers.open()).isEqualTo(2);
        c.close();
        assertThat(c.watchers.open()).isZero();
    }

    /** argsz too small for the entries: the 16-byte header with the full argsz and count, no entries, no fds. */
    @ParameterizedTest
    @ValueSource(longs = {16, 56, 95})
    void ioFdsWithTooSmallAnArgszTellTheFullArgszWithoutEntriesOrFds(long argsz) throws Exception {
        try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.full(), device)) {
            c.send(ioFds(1, argsz, 0, BAR0, 0));
            ConnectionChannel.Reply r = c.assertOk(1, VfioUserCommand.DEVICE_GET_REGION_IO_FDS);
            assertThat(r.payload()).isEqualTo(le(4, 96, 4, 0, 4, BAR0, 4, 2));
            assertThat(r.fds()).isEmpty();
        }
    }

    @Test
    void aRegionWithoutDoorbellsHasCountZero() throws Exception {
        try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.full(), device)) {
            c.send(ioFds(1, 16, 0, BAR2, 0));
            assertThat(c.assertOk(1, VfioUserCommand.DEVICE_GET_REGION_IO_FDS).payload()).isEqualTo(
                    le(4, 16, 4, 0, 4, BAR2, 4, 0));
            c.send(ioFds(2, 4096, 0, CONFIG, 0));
            assertThat(c.assertOk(2, VfioUserCommand.DEVICE_GET_REGION_IO_FDS).payload()).isEqualTo(
                    le(4, 16, 4, 0, 4, CONFIG, 4, 0));
        }
    }

    @Test
    void ioFdsRefusals() throws Exception {
        try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.full(), device)) {
            c.send(ioFds(1, 96, 1, BAR0, 0));
            c.assertError(1, VfioUserCommand.DEVICE_GET_REGION_IO_FDS, Errno.EINVAL);
            c.send(ioFds(2, 96, 0, BAR0, 1));
            c.assertError(2, VfioUserCommand.DEVICE_GET_REGION_IO_FDS, Errno.EINVAL);
            c.send(ioFds(3, 96, 0, 1, 0));
            c.assertError(3, VfioUserCommand.DEVICE_GET_REGION_IO_FDS, Errno.EINVAL);
            c.send(ioFds(4, 96, 0, 9, 0));
            c.assertError(4, VfioUserCommand.DEVICE_GET_REGION_IO_FDS, Errno.EINVAL);
            c.send(ioFds(5, 96, 0, 0xFFFFFFFFL, 0));
            c.assertError(5, VfioUserCommand.DEVICE_GET_REGION_IO_FDS, Errno.EINVAL);
            c.send(ioFds(6, 15, 0, BAR0, 0));
            c.assertError(6, VfioUserCommand.DEVICE_GET_REGION_IO_FDS, Errno.EINVAL);
            c.send(ioFds(7, (1 << 20) + 1, 0, BAR0, 0));
            c.assertError(7, VfioUserCommand.DEVICE_GET_REGION_IO_FDS, Errno.EINVAL);
            c.send(ioFds(8, 0xFFFFFFFFL, 0, BAR0, 0));
            c.assertError(8, VfioUserCommand.DEVICE_GET_REGION_IO_FDS, Errno.EINVAL);
            c.send(command(9, VfioUserCommand.DEVICE_GET_REGION_IO_FDS, le(4, 96, 4, 0, 4, BAR0)));
            c.assertError(9, VfioUserCommand.DEVICE_GET_REGION_IO_FDS, Errno.EINVAL);
            c.send(command(10, VfioUserCommand.DEVICE_GET_REGION_IO_FDS, VfioUserHeader.NO_REPLY,
                    le(4, 96, 4, 0, 4, BAR0, 4, 0)));
            c.send(command(11, VfioUserCommand.DEVICE_GET_REGION_IO_FDS, VfioUserHeader.NO_REPLY,
                    le(4, 96, 4, 1, 4, BAR0, 4, 0)));
            c.assertNoReply();
            c.send(ioFds(12, 1 << 20, 0, BAR0, 0));
            c.assertOk(12, VfioUserCommand.DEVICE_GET_REGION_IO_FDS).closeFds();
        }
    }
}
