package io.vfiouser.server.connection;

import static io.vfiouser.server.connection.ConnectionChannel.command;
import static io.vfiouser.server.connection.ConnectionChannel.hex;
import static io.vfiouser.server.connection.ConnectionChannel.le;
import static io.vfiouser.server.connection.UnitDevices.BAR0;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vfiouser.codec.VfioUserCommand;
import io.vfiouser.codec.VfioUserHeader;
import io.vfiouser.device.DmaException;
import io.vfiouser.device.MigrationSupport;
import io.vfiouser.server.ConnectionLimits;
import io.vfiouser.server.ServerOptions;
import io.vfiouser.transport.linux.Errno;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import org.junit.jupiter.api.Test;

/**
 * DMA_MAP and DMA_UNMAP through the connection's real pipeline, without a socket (digest 3.2, 3.3, 6.3): golden
 * request bytes in odd chunks, the exact replies, the errno of every refused case, the quiesce that comes first,
 * NO_REPLY, arrival order behind a device that completes later, the limits on mappings and fds, and every fd the
 * client passes closed exactly once (the test keeps its own memfd and counts the fds on it).
 */
class DmaCommandsTest {
    private static final int READ = 0x1;
    private static final int WRITE = 0x2;
    private static final int GET_DIRTY_BITMAP = 0x1;
    private static final int UNMAP_ALL = 0x2;

    private final ScriptedDevice device = new ScriptedDevice();

    /** DMA_MAP: argsz u32, flags u32, offset u64, address u64, size u64 (digest 3.2). */
    static byte[] map(int msgId, long argsz, int flags, long offset, long address, long size) {
        return command(msgId, VfioUserCommand.DMA_MAP, le(4, argsz, 4, flags, 8, offset, 8, address, 8, size));
    }

    static byte[] map(int msgId, int flags, long offset, long address, long size) {
        return map(msgId, 32, flags, offset, address, size);
    }

    /** DMA_UNMAP: argsz u32, flags u32, address u64, size u64 (digest 3.3). */
    static byte[] unmap(int msgId, long argsz, int flags, long address, long size) {
        return command(msgId, VfioUserCommand.DMA_UNMAP, le(4, argsz, 4, flags, 8, address, 8, size));
    }

    static byte[] unmap(int msgId, long address, long size) {
        return unmap(msgId, 24, 0, address, size);
    }

    private static ServerOptions limits(int maxDmaMappings, int maxClientFds) {
        return ServerOptions.DEFAULT.withLimits(ConnectionLimits.DEFAULT.toBuilder().maxDmaMappings(maxDmaMappings)
                .maxClientFds(maxClientFds).build());
    }

    private static byte[] dmaRead(ScriptedDevice device, long address, int length) throws Exception {
        ByteBuffer dst = ByteBuffer.allocate(length);
        device.context.dma().read(address, dst).get();
        return dst.array();
    }

    // ------------------------------------------------------------------------------------------- DMA_MAP

    /**
     * The device is quiesced before the mapping exists (the reply waits for the quiesce), then told dmaMapped; the
     * mapping is the client's file at the given offset, in both directions.
     */
    @Test
    void mapQuiescesFirstThenTheDeviceReachesTheClientsFile() throws Exception {
        try (TestFds.Memfd memory = TestFds.memfd(0x8000);
             ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.basic(), device)) {
            device.takeCalls();
            memory.write(0x1010, hex("cafe"));
            CompletableFuture<Void> quiesced = device.holdNextQuiesce();
            c.send(command(1, VfioUserCommand.DMA_MAP, hex(
                    "20000000 03000000 0010000000000000 0000010000000000 0040000000000000")), memory.give());
            assertThat(device.takeCalls()).containsExactly("quiesce");
            c.assertNoReply();
            quiesced.complete(null);
            assertThat(c.reply().bytes()).isEqualTo(hex("0100 0200 10000000 01000000 00000000"));
            assertThat(device.takeCalls()).containsExactly("dmaMapped 0x10000 0x4000");
            assertThat(dmaRead(device, 0x10010, 2)).isEqualTo(hex("cafe"));
            device.context.dma().write(0x13ffe, ByteBuffer.wrap(hex("beef"))).get();
            assertThat(memory.read(0x4ffe, 2)).isEqualTo(hex("beef"));
            assertThat(memory.open()).as("the mapping holds the fd").isEqualTo(2);
        }
    }

    /** argsz is a u32 of at least 32; above that it is only the reply room (none is needed), however large. */
    @Test
    void mapArgszIsAnUnsignedMinimum() throws Exception {
        try (TestFds.Memfd memory = TestFds.memfd(0x4000);
             ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.basic(), device)) {
            device.takeCalls();
            c.send(map(1, 31, READ | WRITE, 0, 0x10000, 0x1000), memory.give());
            c.assertError(1, VfioUserCommand.DMA_MAP, Errno.EINVAL);
            c.send(map(2, 0, READ | WRITE, 0, 0x10000, 0x1000));
            c.assertError(2, VfioUserCommand.DMA_MAP, Errno.EINVAL);
            byte[] shortPayload = java.util.Arrays.copyOf(le(4, 32, 4, 3, 8, 0, 8, 0x10000, 8, 0x1000), 31);
            c.send(command(3, VfioUserCommand.DMA_MAP, shortPayload), memory.give());
            c.assertError(3, VfioUserCommand.DMA_MAP, Errno.EINVAL);
            assertThat(device.takeCalls()).as("a malformed DMA_MAP never quiesces the device").isEmpty();
            assertThat(memory.open()).as("the fds of refused maps are closed").isEqualTo(1);

            c.send(map(4, 0x8000_0000L, READ | WRITE, 0, 0x10000, 0x1000), memory.give());
            c.assertOk(4, VfioUserCommand.DMA_MAP);
            c.send(map(5, 0xFFFF_FFFFL, READ, 0x1000, 0x20000, 0x1000), memory.give());
            c.assertOk(5, VfioUserCommand.DMA_MAP);
            assertThat(device.takeCalls()).containsExactly("quiesce", "dmaMapped 0x10000 0x1000", "quiesce",
                    "dmaMapped 0x20000 0x1000");
        }
    }

    /** READ and WRITE only (no MMAP/FILE_IO extension); the flags are the mapping's protection. */
    @Test
    void mapFlagsAreReadAndWriteOnly() throws Exception {
        try (TestFds.Memfd memory = TestFds.memfd(0x4000);
             ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.basic(), device)) {
            int id = 1;
            for (int flags : new int[] {0x4, 0x8, 0x5, 0x100, 0x8000_0000}) {
                c.send(map(id, flags, 0, 0x10000, 0x1000), memory.give());
                c.assertError(id++, VfioUserCommand.DMA_MAP, Errno.EINVAL);
            }
            assertThat(memory.open()).isEqualTo(1);
            c.send(map(10, READ, 0, 0x10000, 0x1000), memory.give());
            c.assertOk(10, VfioUserCommand.DMA_MAP);
            memory.write(0, hex("0102"));
            assertThat(dmaRead(device, 0x10000, 2)).isEqualTo(hex("0102"));
            assertThatThrownBy(() -> device.context.dma().write(0x10000, ByteBuffer.wrap(hex("ff"))).get())
                    .isInstanceOf(ExecutionException.class)
                    .cause().isInstanceOfSatisfying(DmaException.class,
                            e -> assertThat(e.errno()).isEqualTo(Errno.EACCES));
            assertThat(memory.read(0, 1)).isEqualTo(hex("01"));
        }
    }

    @Test
    void mapSizesAreChecked() throws Exception {
        try (TestFds.Memfd memory = TestFds.memfd(0x2000);
             ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.basic(), device)) {
            c.send(map(1, READ | WRITE, 0, 0x10000, 0), memory.give());
            c.assertError(1, VfioUserCommand.DMA_MAP, Errno.EINVAL);
            c.send(map(2, READ | WRITE, 0, 0x10000, (8L << 40) + 1));
            c.assertError(2, VfioUserCommand.DMA_MAP, Errno.ENOSPC);
            c.send(map(3, READ | WRITE, 0, 0xFFFF_FFFF_FFFF_F000L, 0x2000));
            c.assertError(3, VfioUserCommand.DMA_MAP, Errno.EINVAL);
            c.send(map(4, READ | WRITE, 0x1000, 0x10000, 0x2000), memory.give());
            c.assertError(4, VfioUserCommand.DMA_MAP, Errno.EINVAL); // beyond the end of the file
            assertThat(memory.open()).isEqualTo(1);
            c.send(map(5, READ | WRITE, 0, 0xFFFF_FFFF_FFFF_F000L, 0x1000));
            c.assertOk(5, VfioUserCommand.DMA_MAP); // the last page of the address space, without fd
            c.send(map(6, READ | WRITE, 0, 0x1_0000_0000L, 8L << 40));
            c.assertOk(6, VfioUserCommand.DMA_MAP); // 8 TiB is the largest
        }
    }

    /**
     * An overlap is EEXIST (the spec's errno); the same range again is EINVAL unless it is the same mapping (same
     * file, offset, flags), which succeeds without a second dmaMapped and closes the new fd.
     */
    @Test
    void overlappingMaps() throws Exception {
        try (TestFds.Memfd memory = TestFds.memfd(0x8000);
             TestFds.Memfd other = TestFds.memfd(0x8000);
             ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.basic(), device)) {
            c.send(map(1, READ | WRITE, 0x1000, 0x10000, 0x2000), memory.give());
            c.assertOk(1, VfioUserCommand.DMA_MAP);
            device.takeCalls();
            c.send(map(2, READ | WRITE, 0, 0x11000, 0x2000), memory.give());
            c.assertError(2, VfioUserCommand.DMA_MAP, Errno.EEXIST);
            c.send(map(3, READ | WRITE, 0, 0xF000, 0x1001));
            c.assertError(3, VfioUserCommand.DMA_MAP, Errno.EEXIST);
            c.send(map(4, READ | WRITE, 0, 0x10000, 0x2000), memory.give());
            c.assertError(4, VfioUserCommand.DMA_MAP, Errno.EINVAL); // another offset
            c.send(map(5, READ | WRITE, 0x1000, 0x10000, 0x2000), other.give());
            c.assertError(5, VfioUserCommand.DMA_MAP, Errno.EINVAL); // another file
            c.send(map(6, READ, 0x1000, 0x10000, 0x2000), memory.give());
            c.assertError(6, VfioUserCommand.DMA_MAP, Errno.EINVAL); // other flags
            c.send(map(7, READ | WRITE, 0x1000, 0x10000, 0x2000));
            c.assertError(7, VfioUserCommand.DMA_MAP, Errno.EINVAL); // no fd
            c.send(map(8, READ | WRITE, 0x1000, 0x10000, 0x2000), memory.give());
            c.assertOk(8, VfioUserCommand.DMA_MAP); // the same mapping again
            assertThat(device.takeCalls()).as("quiesced each time, mapped nothing new").containsOnly("quiesce")
                    .hasSize(7);
            assertThat(memory.open()).as("only the first mapping's fd is held").isEqualTo(2);
            assertThat(other.open()).isEqualTo(1);
            c.send(map(9, READ | WRITE, 0, 0x12000, 0x1000), other.give());
            c.assertOk(9, VfioUserCommand.DMA_MAP); // adjacent, not overlapping
        }
    }

    @Test
    void mapWithTwoFdsIsRefusedAndBothAreClosed() throws Exception {
        try (TestFds.Memfd memory = TestFds.memfd(0x4000);
             ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.basic(), device)) {
            device.takeCalls();
            c.send(map(1, READ | WRITE, 0, 0x10000, 0x1000), memory.give(), memory.give());
            c.assertError(1, VfioUserCommand.DMA_MAP, Errno.EINVAL);
            assertThat(memory.open()).isEqualTo(1);
            assertThat(device.takeCalls()).doesNotContain("dmaMapped 0x10000 0x1000");
            c.send(map(2, READ | WRITE, 0, 0x10000, 0x1000), memory.give());
            c.assertOk(2, VfioUserCommand.DMA_MAP);
        }
    }

    /** {@code max_dma_maps} (ConnectionLimits.maxDmaMappings): one more mapping is ENOSPC, its fd closed. */
    @Test
    void theMappingBoundIsEnospc() throws Exception {
        try (TestFds.Memfd memory = TestFds.memfd(0x4000);
             ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.basic(), device, limits(2, 64))) {
            c.send(map(1, READ | WRITE, 0, 0x10000, 0x1000), memory.give());
            c.assertOk(1, VfioUserCommand.DMA_MAP);
            c.send(map(2, READ | WRITE, 0, 0x20000, 0x1000));
            c.assertOk(2, VfioUserCommand.DMA_MAP);
            c.send(map(3, READ | WRITE, 0, 0x30000, 0x1000), memory.give());
            c.assertError(3, VfioUserCommand.DMA_MAP, Errno.ENOSPC);
            c.send(map(4, READ | WRITE, 0, 0x40000, 0x1000));
            c.assertError(4, VfioUserCommand.DMA_MAP, Errno.ENOSPC);
            assertThat(memory.open()).isEqualTo(2);
            c.send(unmap(5, 0x20000, 0x1000));
            c.assertOk(5, VfioUserCommand.DMA_UNMAP);
            c.send(map(6, READ | WRITE, 0, 0x30000, 0x1000), memory.give());
            c.assertOk(6, VfioUserCommand.DMA_MAP);
        }
    }

    /**
     * The client's fd budget (ConnectionLimits.maxClientFds): a mapping with an fd beyond it is EMFILE and its fd
     * closed; a mapping without fd needs none; an unmap gives the fd back.
     */
    @Test
    void theClientFdBudgetIsEmfile() throws Exception {
        try (TestFds.Memfd memory = TestFds.memfd(0x4000);
             ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.basic(), device, limits(16, 1))) {
            c.send(map(1, READ | WRITE, 0, 0x10000, 0x1000), memory.give());
            c.assertOk(1, VfioUserCommand.DMA_MAP);
            c.send(map(2, READ | WRITE, 0x1000, 0x20000, 0x1000), memory.give());
            c.assertError(2, VfioUserCommand.DMA_MAP, Errno.EMFILE);
            assertThat(memory.open()).isEqualTo(2);
            c.send(map(3, READ | WRITE, 0, 0x30000, 0x1000));
            c.assertOk(3, VfioUserCommand.DMA_MAP);
            c.send(unmap(4, 0x10000, 0x1000));
            c.assertOk(4, VfioUserCommand.DMA_UNMAP);
            assertThat(memory.open()).isEqualTo(1);
            c.send(map(5, READ | WRITE, 0x1000, 0x20000, 0x1000), memory.give());
            c.assertOk(5, VfioUserCommand.DMA_MAP);
        }
    }

    // ------------------------------------------------------------------------------------------- DMA_UNMAP

    /**
     * The device is quiesced first; the reply echoes the 24-byte request once the mapping is gone: dmaUnmapped told,
     * the fd closed, and the device's accesses to the range fail with EFAULT.
     */
    @Test
    void unmapQuiescesFirstEchoesTheRequestAndClosesTheFd() throws Exception {
        try (TestFds.Memfd memory = TestFds.memfd(0x4000);
             ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.basic(), device)) {
            c.send(map(1, READ | WRITE, 0, 0x10000, 0x4000), memory.give());
            c.assertOk(1, VfioUserCommand.DMA_MAP);
            device.takeCalls();
            CompletableFuture<Void> quiesced = device.holdNextQuiesce();
            c.send(command(2, VfioUserCommand.DMA_UNMAP, hex(
                    "18000000 00000000 0000010000000000 0040000000000000")));
            assertThat(device.takeCalls()).containsExactly("quiesce");
            c.assertNoReply();
            assertThat(memory.open()).isEqualTo(2);
            quiesced.complete(null);
            assertThat(c.reply().bytes()).isEqualTo(hex(
                    "0200 0300 28000000 01000000 00000000  18000000 00000000 0000010000000000 0040000000000000"));
            assertThat(device.takeCalls()).containsExactly("dmaUnmapped 0x10000 0x4000");
            assertThat(memory.open()).isEqualTo(1);
            assertThatThrownBy(() -> dmaRead(device, 0x10000, 1)).cause()
                    .isInstanceOfSatisfying(DmaException.class, e -> assertThat(e.errno()).isEqualTo(Errno.EFAULT));
        }
    }

    @Test
    void unmapRules() throws Exception {
        try (TestFds.Memfd memory = TestFds.memfd(0x4000);
             ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.basic(), device)) {
            c.send(map(1, READ | WRITE, 0, 0x10000, 0x2000), memory.give());
            c.assertOk(1, VfioUserCommand.DMA_MAP);
            c.send(unmap(2, 0x20000, 0x1000));
            c.assertError(2, VfioUserCommand.DMA_UNMAP, Errno.ENOENT); // unknown
            c.send(unmap(3, 0x10000, 0x1000));
            c.assertError(3, VfioUserCommand.DMA_UNMAP, Errno.ENOENT); // not the whole mapping
            c.send(unmap(4, 0x11000, 0x1000));
            c.assertError(4, VfioUserCommand.DMA_UNMAP, Errno.ENOENT); // not its start
            c.send(unmap(5, 23, 0, 0x10000, 0x2000));
            c.assertError(5, VfioUserCommand.DMA_UNMAP, Errno.EINVAL); // argsz too small
            c.send(unmap(6, (1 << 20) + 1, 0, 0x10000, 0x2000));
            c.assertError(6, VfioUserCommand.DMA_UNMAP, Errno.EINVAL); // argsz above 1 MiB
            c.send(unmap(7, 0xFFFF_FFFFL, 0, 0x10000, 0x2000));
            c.assertError(7, VfioUserCommand.DMA_UNMAP, Errno.EINVAL); // as a u32, not -1
            c.send(command(8, VfioUserCommand.DMA_UNMAP, java.util.Arrays.copyOf(le(4, 24, 4, 0, 8, 0x10000), 23)));
            c.assertError(8, VfioUserCommand.DMA_UNMAP, Errno.EINVAL); // payload too short
            c.send(unmap(9, 24, 0x4, 0x10000, 0x2000));
            c.assertError(9, VfioUserCommand.DMA_UNMAP, Errno.EINVAL); // unknown flag
            c.send(unmap(10, 24, UNMAP_ALL, 0x10000, 0));
            c.assertError(10, VfioUserCommand.DMA_UNMAP, Errno.EINVAL); // UNMAP_ALL with an address
            c.send(unmap(11, 24, UNMAP_ALL, 0, 0x2000));
            c.assertError(11, VfioUserCommand.DMA_UNMAP, Errno.EINVAL); // UNMAP_ALL with a size
            c.send(command(12, VfioUserCommand.DMA_UNMAP,
                    le(4, 48, 4, UNMAP_ALL | GET_DIRTY_BITMAP, 8, 0, 8, 0, 8, 4096, 8, 8)));
            c.assertError(12, VfioUserCommand.DMA_UNMAP, Errno.EINVAL); // UNMAP_ALL with a bitmap
            assertThat(memory.open()).as("nothing refused unmapped it").isEqualTo(2);
            c.send(unmap(13, 1 << 20, 0, 0x10000, 0x2000));
            ConnectionChannel.Reply r = c.assertOk(13, VfioUserCommand.DMA_UNMAP);
            assertThat(r.payload()).isEqualTo(le(4, 1 << 20, 4, 0, 8, 0x10000, 8, 0x2000));
            assertThat(memory.open()).isEqualTo(1);
        }
    }

    @Test
    void unmapAllRemovesEveryMappingAndClosesEveryFd() throws Exception {
        try (TestFds.Memfd memory = TestFds.memfd(0x4000);
             ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.basic(), device)) {
            c.send(map(1, READ | WRITE, 0, 0x10000, 0x1000), memory.give());
            c.send(map(2, READ | WRITE, 0x1000, 0x20000, 0x1000), memory.give());
            c.send(map(3, READ | WRITE, 0, 0x30000, 0x1000));
            assertThat(c.replies()).extracting(ConnectionChannel.Reply::error).containsExactly(0, 0, 0);
            assertThat(memory.open()).isEqualTo(3);
            device.takeCalls();
            c.send(unmap(4, 24, UNMAP_ALL, 0, 0));
            assertThat(c.assertOk(4, VfioUserCommand.DMA_UNMAP).payload()).isEqualTo(le(4, 24, 4, 2, 8, 0, 8, 0));
            assertThat(device.takeCalls()).first().isEqualTo("quiesce");
            assertThat(device.calls).isEmpty();
            assertThat(memory.open()).isEqualTo(1);
            c.send(unmap(5, 0x10000, 0x1000));
            c.assertError(5, VfioUserCommand.DMA_UNMAP, Errno.ENOENT);
            c.send(unmap(6, 24, UNMAP_ALL, 0, 0));
            c.assertOk(6, VfioUserCommand.DMA_UNMAP); // nothing left: still fine
        }
    }

    /**
     * The legacy dirty bitmap (digest 3.3): only while dirty-page logging runs, with argsz room for it and its exact
     * size; the reply is the request, the bitmap header and the pages the device wrote, LSB first.
     */
    @Test
    void unmapWithTheDirtyBitmapOfTheDevicesWrites() throws Exception {
        MigratingDevice migrating = new MigratingDevice(device);
        try (TestFds.Memfd memory = TestFds.memfd(0x4000);
             ConnectionChannel c = ConnectionChannel.negotiated(
                     UnitDevices.migratable(MigrationSupport.PRE_COPY), migrating)) {
            c.send(map(1, READ | WRITE, 0, 0x10000, 0x4000), memory.give());
            c.assertOk(1, VfioUserCommand.DMA_MAP);
            byte[] withBitmap = command(2, VfioUserCommand.DMA_UNMAP,
                    le(4, 48, 4, GET_DIRTY_BITMAP, 8, 0x10000, 8, 0x4000, 8, 4096, 8, 8));
            c.send(withBitmap);
            c.assertError(2, VfioUserCommand.DMA_UNMAP, Errno.EINVAL); // logging is not running

            // DEVICE_FEATURE SET DMA_LOGGING_START: page size 4096, no ranges (digest 3.16)
            c.send(command(3, VfioUserCommand.DEVICE_FEATURE, le(4, 24, 4, 0x20006, 8, 4096, 4, 0, 4, 0)));
            c.assertOk(3, VfioUserCommand.DEVICE_FEATURE);
            device.context.dma().write(0x11000, ByteBuffer.wrap(hex("01"))).get();
            device.context.dma().write(0x13fff, ByteBuffer.wrap(hex("02"))).get();

            c.send(command(4, VfioUserCommand.DMA_UNMAP,
                    le(4, 47, 4, GET_DIRTY_BITMAP, 8, 0x10000, 8, 0x4000, 8, 4096, 8, 8)));
            c.assertError(4, VfioUserCommand.DMA_UNMAP, Errno.EINVAL); // argsz cannot hold the bitmap
            c.send(command(5, VfioUserCommand.DMA_UNMAP,
                    le(4, 56, 4, GET_DIRTY_BITMAP, 8, 0x10000, 8, 0x4000, 8, 4096, 8, 16)));
            c.assertError(5, VfioUserCommand.DMA_UNMAP, Errno.EINVAL); // not the bitmap's size
            c.send(command(6, VfioUserCommand.DMA_UNMAP,
                    le(4, 48, 4, GET_DIRTY_BITMAP, 8, 0x10000, 8, 0x4000, 8, 3000, 8, 8)));
            c.assertError(6, VfioUserCommand.DMA_UNMAP, Errno.EINVAL); // page size not a power of two
            c.send(command(7, VfioUserCommand.DMA_UNMAP,
                    java.util.Arrays.copyOf(le(4, 48, 4, GET_DIRTY_BITMAP, 8, 0x10000, 8, 0x4000, 8, 4096), 39)));
            c.assertError(7, VfioUserCommand.DMA_UNMAP, Errno.EINVAL); // no room for the bitmap header
            assertThat(memory.open()).isEqualTo(2);

            c.send(command(8, VfioUserCommand.DMA_UNMAP,
                    le(4, 48, 4, GET_DIRTY_BITMAP, 8, 0x10000, 8, 0x4000, 8, 4096, 8, 8)));
            assertThat(c.reply().bytes()).isEqualTo(hex("0800 0300 40000000 01000000 00000000"
                    + "30000000 01000000 0000010000000000 0040000000000000 0010000000000000 0800000000000000"
                    + "0a00000000000000"));
            assertThat(memory.open()).isEqualTo(1);
        }
    }

    // ------------------------------------------------------------------------------------------- NO_REPLY, order

    @Test
    void noReplyMapsAndUnmapsTakeEffectAndAreNeverAnswered() throws Exception {
        try (TestFds.Memfd memory = TestFds.memfd(0x4000);
             ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.basic(), device)) {
            device.takeCalls();
            int noReply = VfioUserHeader.NO_REPLY;
            c.send(command(1, VfioUserCommand.DMA_MAP, noReply, le(4, 32, 4, 3, 8, 0, 8, 0x10000, 8, 0x1000)),
                    memory.give());
            c.send(command(2, VfioUserCommand.DMA_MAP, noReply, le(4, 32, 4, 3, 8, 0, 8, 0x10800, 8, 0x1000)),
                    memory.give());
            c.send(command(3, VfioUserCommand.DMA_MAP, noReply, le(4, 31, 4, 3, 8, 0, 8, 0x20000, 8, 0x1000)));
            c.send(command(4, VfioUserCommand.DMA_UNMAP, noReply, le(4, 24, 4, 0, 8, 0x30000, 8, 0x1000)));
            c.assertNoReply();
            assertThat(device.takeCalls()).containsExactly("quiesce", "dmaMapped 0x10000 0x1000", "quiesce",
                    "quiesce");
            assertThat(memory.open()).isEqualTo(2);
            c.send(command(5, VfioUserCommand.DMA_UNMAP, noReply, le(4, 24, 4, 0, 8, 0x10000, 8, 0x1000)));
            c.assertNoReply();
            assertThat(device.takeCalls()).containsExactly("quiesce", "dmaUnmapped 0x10000 0x1000");
            assertThat(memory.open()).isEqualTo(1);
        }
    }

    /**
     * Behind a region access the device has not completed, a DMA_MAP and a DMA_UNMAP wait (not even their quiesce
     * runs), then take effect and are answered in arrival order.
     */
    @Test
    void mapsBehindAPendingAccessWaitTheirTurn() throws Exception {
        try (TestFds.Memfd memory = TestFds.memfd(0x4000);
             ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.basic(), device)) {
            device.takeCalls();
            CompletableFuture<Void> held = device.holdNextAccess();
            c.send(command(1, VfioUserCommand.REGION_READ, le(8, 0, 4, BAR0, 4, 4)));
            c.send(map(2, READ | WRITE, 0, 0x10000, 0x1000), memory.give());
            c.send(unmap(3, 0x10000, 0x1000));
            c.send(unmap(4, 0x10000, 0x1000));
            assertThat(device.takeCalls()).containsExactly("read 0 0x0 4");
            c.assertNoReply();
            held.complete(null);
            List<ConnectionChannel.Reply> replies = c.replies();
            assertThat(replies).extracting(ConnectionChannel.Reply::msgId).containsExactly(1, 2, 3, 4);
            assertThat(replies).extracting(ConnectionChannel.Reply::error).containsExactly(0, 0, 0, Errno.ENOENT);
            assertThat(device.takeCalls()).containsExactly("quiesce", "dmaMapped 0x10000 0x1000", "quiesce",
                    "dmaUnmapped 0x10000 0x1000", "quiesce");
            assertThat(memory.open()).isEqualTo(1);
        }
    }

    /** A failing quiesce fails the command with its errno; nothing is mapped and the fd is closed. */
    @Test
    void aFailedQuiesceFailsTheMapWithItsErrno() throws Exception {
        try (TestFds.Memfd memory = TestFds.memfd(0x4000);
             ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.basic(), device)) {
            device.takeCalls();
            CompletableFuture<Void> quiesced = device.holdNextQuiesce();
            c.send(map(1, READ | WRITE, 0, 0x10000, 0x1000), memory.give());
            quiesced.completeExceptionally(new io.vfiouser.codec.VfioUserProtocolException(Errno.EBUSY, "busy"));
            c.assertError(1, VfioUserCommand.DMA_MAP, Errno.EBUSY);
            assertThat(device.takeCalls()).containsExactly("quiesce");
            assertThat(memory.open()).isEqualTo(1);
        }
    }
}
