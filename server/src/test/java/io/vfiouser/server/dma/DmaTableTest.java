package io.vfiouser.server.dma;

import static io.vfiouser.server.dma.DmaTesting.READ;
import static io.vfiouser.server.dma.DmaTesting.RW;
import static io.vfiouser.server.dma.DmaTesting.WRITE;
import static io.vfiouser.server.dma.DmaTesting.assertClosed;
import static io.vfiouser.server.dma.DmaTesting.await;
import static io.vfiouser.server.dma.DmaTesting.errnoOf;
import static io.vfiouser.server.dma.DmaTesting.memfd;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vfiouser.device.DmaRange;
import io.vfiouser.server.dma.DmaTesting.RecordingListener;
import io.vfiouser.transport.FdSet;
import io.vfiouser.transport.linux.Errno;
import io.vfiouser.transport.linux.Linux;
import io.vfiouser.transport.testing.FdCount;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

class DmaTableTest {
    private static final long MIB = 1 << 20;

    private long fdsBefore;
    private RecordingListener listener;
    private DmaTable table;

    @BeforeEach
    void setUp() {
        fdsBefore = FdCount.now();
        listener = new RecordingListener();
        table = new DmaTable(listener);
    }

    @AfterEach
    void tearDown() throws InterruptedException {
        table.clear();
        FdCount.awaitAtMost(fdsBefore);
    }

    @Test
    void mapsAndUnmapsSharedMemory() throws Exception {
        int fd = memfd(MIB);
        await(table.map(0x100000, MIB, 0, RW, fd));

        DmaRange range = new DmaRange(0x100000, MIB, true, true, true);
        assertThat(table.ranges()).containsExactly(range);
        assertThat(table.size()).isEqualTo(1);
        assertThat(listener.mapped()).containsExactly(range);
        assertThat(FdCount.isOpen(fd)).isTrue();
        assertThat(table.find(0x100000 + MIB - 1).range()).isEqualTo(range);
        assertThat(table.find(0x100000 + MIB)).isNull();
        assertThat(table.find(0xFFFFF)).isNull();

        await(table.unmap(0x100000, MIB, 0));
        assertThat(table.size()).isZero();
        assertThat(listener.unmapped()).containsExactly(range);
        assertClosed(fd);
    }

    @Test
    void mapsAndUnmapsMessageModeMemory() throws Exception {
        await(table.map(0x2000, 0x3000, 0, READ, -1));
        await(table.map(0x5000, 0x1000, 0, WRITE, -1));

        assertThat(table.ranges()).containsExactly(new DmaRange(0x2000, 0x3000, true, false, false),
                new DmaRange(0x5000, 0x1000, false, true, false));
        await(table.unmap(0x2000, 0x3000, 0));
        assertThat(table.ranges()).containsExactly(new DmaRange(0x5000, 0x1000, false, true, false));
        assertThat(listener.unmapped()).containsExactly(new DmaRange(0x2000, 0x3000, true, false, false));
    }

    @Test
    void ordersMappingsAsUnsignedAddresses() throws Exception {
        long high = 0x8000_0000_0000_0000L;
        long top = -0x1000L; // 0xffff_ffff_ffff_f000: the range ends exactly at 2^64
        await(table.map(high, 0x1000, 0, RW, -1));
        await(table.map(top, 0x1000, 0, RW, -1));
        await(table.map(0x1000, 0x1000, 0, RW, -1));

        assertThat(table.ranges()).extracting(DmaRange::address).containsExactly(0x1000L, high, top);
        assertThat(table.find(high + 0xFFF).start()).isEqualTo(high);
        assertThat(table.find(-1L).start()).isEqualTo(top);
        assertThat(table.find(high - 1)).isNull();
        assertThat(errnoOf(table.map(high - 0x800, 0x1000, 0, RW, -1))).isEqualTo(Errno.EEXIST);
    }

    @Test
    void rejectsUnknownMapFlagsAndClosesTheFd() throws Exception {
        for (int flags : new int[] {0x4, 0x8, RW | 0x4, 0x100, 0x8000_0000}) {
            int fd = memfd(4096);
            assertThat(errnoOf(table.map(0x1000, 4096, 0, flags, fd))).as("flags %x", flags).isEqualTo(Errno.EINVAL);
            assertClosed(fd);
        }
        assertThat(table.size()).isZero();
    }

    @Test
    void rejectsSizeZero() throws Exception {
        int fd = memfd(4096);
        assertThat(errnoOf(table.map(0x1000, 0, 0, RW, fd))).isEqualTo(Errno.EINVAL);
        assertClosed(fd);
        assertThat(errnoOf(table.map(0x1000, 0, 0, RW, -1))).isEqualTo(Errno.EINVAL);
    }

    @Test
    void rejectsMoreThanEightTebibytesWithEnospc() throws Exception {
        int fd = memfd(4096);
        assertThat(errnoOf(table.map(0, DmaTable.MAX_MAPPING_SIZE + 1, 0, RW, fd))).isEqualTo(Errno.ENOSPC);
        assertClosed(fd);
        assertThat(errnoOf(table.map(0, -1L, 0, RW, -1))).isEqualTo(Errno.ENOSPC);
        await(table.map(0, DmaTable.MAX_MAPPING_SIZE, 0, RW, -1)); // message mode: nothing to back it
        assertThat(table.ranges()).containsExactly(new DmaRange(0, DmaTable.MAX_MAPPING_SIZE, true, true, false));
    }

    @Test
    void rejectsRangesWrappingPastTwoToTheSixtyFour() throws Exception {
        int fd = memfd(8192);
        assertThat(errnoOf(table.map(-0x1000L, 0x2000, 0, RW, fd))).isEqualTo(Errno.EINVAL);
        assertClosed(fd);
        assertThat(errnoOf(table.map(-1L, 2, 0, RW, -1))).isEqualTo(Errno.EINVAL);
        await(table.map(-1L, 1, 0, RW, -1));
    }

    @Test
    void identicalRemapSucceedsAndClosesTheNewFd() throws Exception {
        int fd = memfd(2 * MIB);
        int sameFile = Linux.dup(fd);
        await(table.map(0x40000000L, MIB, 4096, RW, fd));

        await(table.map(0x40000000L, MIB, 4096, RW, sameFile));

        assertClosed(sameFile);
        assertThat(FdCount.isOpen(fd)).isTrue();
        assertThat(table.size()).isEqualTo(1);
        assertThat(listener.mapped()).hasSize(1);
        await(table.unmap(0x40000000L, MIB, 0));
        assertClosed(fd);
    }

    @Test
    void identicalMessageModeRemapSucceeds() throws Exception {
        await(table.map(0x1000, 0x1000, 0, READ, -1));
        await(table.map(0x1000, 0x1000, 0, READ, -1));
        assertThat(table.size()).isEqualTo(1);
        assertThat(listener.mapped()).hasSize(1);
    }

    @Test
    void sameRangeWithAnotherOffsetFileOrProtectionIsEinval() throws Exception {
        int fd = memfd(2 * MIB);
        int spare = Linux.dup(fd);
        await(table.map(0x100000, MIB, 0, RW, fd));

        int otherOffset = Linux.dup(spare);
        assertThat(errnoOf(table.map(0x100000, MIB, 4096, RW, otherOffset))).isEqualTo(Errno.EINVAL);
        assertClosed(otherOffset);

        int otherProtection = Linux.dup(spare);
        assertThat(errnoOf(table.map(0x100000, MIB, 0, READ, otherProtection))).isEqualTo(Errno.EINVAL);
        assertClosed(otherProtection);

        int otherFile = memfd(2 * MIB);
        assertThat(errnoOf(table.map(0x100000, MIB, 0, RW, otherFile))).isEqualTo(Errno.EINVAL);
        assertClosed(otherFile);

        assertThat(errnoOf(table.map(0x100000, MIB, 0, RW, -1))).isEqualTo(Errno.EINVAL);

        FdSet.closeQuietly(spare);
        assertThat(table.ranges()).containsExactly(new DmaRange(0x100000, MIB, true, true, true));
        assertThat(FdCount.isOpen(fd)).isTrue();
    }

    @Test
    void messageModeRangeRemappedWithAnFdIsEinval() throws Exception {
        await(table.map(0x100000, 0x1000, 0, RW, -1));
        int fd = memfd(4096);
        assertThat(errnoOf(table.map(0x100000, 0x1000, 0, RW, fd))).isEqualTo(Errno.EINVAL);
        assertClosed(fd);
    }

    @Test
    void anyOtherOverlapIsEexist() throws Exception {
        await(table.map(0x10000, 0x10000, 0, RW, -1));
        long[][] overlaps = {
            {0x8000, 0x10000}, // over the start
            {0x18000, 0x10000}, // over the end
            {0x0, 0x100000}, // around
            {0x12000, 0x1000}, // inside
            {0x10000, 0x8000}, // same start, shorter
            {0x10000, 0x20000}, // same start, longer
            {0x1FFFF, 1}, // the last byte
        };
        for (long[] o : overlaps) {
            int fd = memfd(0x100000);
            assertThat(errnoOf(table.map(o[0], o[1], 0, RW, fd))).as("[%x +%x)", o[0], o[1]).isEqualTo(Errno.EEXIST);
            assertClosed(fd);
        }
        await(table.map(0xF000, 0x1000, 0, RW, -1)); // adjacent below
        await(table.map(0x20000, 0x1000, 0, RW, -1)); // adjacent above
        assertThat(table.size()).isEqualTo(3);
    }

    @Test
    void aFullTableIsEnospc() throws Exception {
        table = new DmaTable(listener, 2);
        await(table.map(0x1000, 0x1000, 0, RW, -1));
        await(table.map(0x2000, 0x1000, 0, RW, -1));
        int fd = memfd(4096);
        assertThat(errnoOf(table.map(0x3000, 0x1000, 0, RW, fd))).isEqualTo(Errno.ENOSPC);
        assertClosed(fd);
        await(table.map(0x2000, 0x1000, 0, RW, -1)); // an identical re-map does not need room

        await(table.unmap(0x1000, 0x1000, 0));
        await(table.map(0x3000, 0x1000, 0, RW, -1));
        assertThat(table.size()).isEqualTo(2);
        assertThatThrownBy(() -> new DmaTable(listener, 0)).isInstanceOf(IllegalArgumentException.class);
        assertThat(new DmaTable().maxMappings()).isEqualTo(DmaTable.DEFAULT_MAX_MAPPINGS);
    }

    @Test
    void aFileTooSmallForOffsetPlusSizeIsEinval() throws Exception {
        int small = memfd(8192);
        assertThat(errnoOf(table.map(0x1000, 8192 + 1, 0, RW, small))).isEqualTo(Errno.EINVAL);
        assertClosed(small);

        int offsetTooFar = memfd(8192);
        assertThat(errnoOf(table.map(0x1000, 4096, 4097, RW, offsetTooFar))).isEqualTo(Errno.EINVAL);
        assertClosed(offsetTooFar);

        int offsetBeyond = memfd(8192);
        assertThat(errnoOf(table.map(0x1000, 1, 8193, RW, offsetBeyond))).isEqualTo(Errno.EINVAL);
        assertClosed(offsetBeyond);

        int negativeOffset = memfd(8192);
        assertThat(errnoOf(table.map(0x1000, 4096, -4096L, RW, negativeOffset))).isEqualTo(Errno.EINVAL);
        assertClosed(negativeOffset);

        int exact = memfd(8192);
        await(table.map(0x1000, 4096, 4096, RW, exact)); // offset + size == file size
        assertThat(table.size()).isEqualTo(1);
    }

    @Test
    void anMmapFailureFailsWithItsErrno() throws Exception {
        int eventFd = Linux.eventfd(0, 0); // not mappable: mmap says ENODEV
        assertThat(errnoOf(table.map(0x1000, 4096, 0, RW, eventFd))).isEqualTo(Errno.ENODEV);
        assertClosed(eventFd);

        int[] sockets = Linux.socketPair(false);
        assertThat(errnoOf(table.map(0x1000, 4096, 0, READ, sockets[0]))).isEqualTo(Errno.ENODEV);
        assertClosed(sockets[0]);
        FdSet.closeQuietly(sockets[1]);
        assertThat(table.size()).isZero();
        assertThat(listener.mapped()).isEmpty();
    }

    @Test
    void aBadFdFailsWithEbadf() throws Exception {
        assertThat(errnoOf(table.map(0x1000, 4096, 0, RW, Integer.MAX_VALUE))).isEqualTo(Errno.EBADF);
    }

    @Test
    void unmapNeedsAnExactMatch() throws Exception {
        await(table.map(0x10000, 0x2000, 0, RW, -1));
        assertThat(errnoOf(table.unmap(0x10000, 0x1000, 0))).isEqualTo(Errno.ENOENT);
        assertThat(errnoOf(table.unmap(0x11000, 0x1000, 0))).isEqualTo(Errno.ENOENT);
        assertThat(errnoOf(table.unmap(0x10000, 0x3000, 0))).isEqualTo(Errno.ENOENT);
        assertThat(errnoOf(table.unmap(0x20000, 0x2000, 0))).isEqualTo(Errno.ENOENT);
        assertThat(table.size()).isEqualTo(1);
        await(table.unmap(0x10000, 0x2000, 0));
        assertThat(errnoOf(table.unmap(0x10000, 0x2000, 0))).isEqualTo(Errno.ENOENT);
    }

    @Test
    void unmapFlagRules() throws Exception {
        await(table.map(0x10000, 0x2000, 0, RW, -1));
        assertThat(errnoOf(table.unmap(0x10000, 0x2000, 0x4))).isEqualTo(Errno.EINVAL);
        assertThat(errnoOf(table.unmap(0x10000, 0x2000, 0x100))).isEqualTo(Errno.EINVAL);
        // GET_DIRTY_BITMAP: dirty-page logging is not active
        assertThat(errnoOf(table.unmap(0x10000, 0x2000, 0x1))).isEqualTo(Errno.EINVAL);
        assertThat(errnoOf(table.unmap(0, 0, 0x3))).isEqualTo(Errno.EINVAL);
        // UNMAP_ALL needs address and size 0
        assertThat(errnoOf(table.unmap(0x10000, 0x2000, 0x2))).isEqualTo(Errno.EINVAL);
        assertThat(errnoOf(table.unmap(0, 0x2000, 0x2))).isEqualTo(Errno.EINVAL);
        assertThat(errnoOf(table.unmap(0x10000, 0, 0x2))).isEqualTo(Errno.EINVAL);
        assertThat(table.size()).isEqualTo(1);
    }

    @Test
    void unmapAllRemovesEverything() throws Exception {
        int a = memfd(MIB);
        int b = memfd(MIB);
        await(table.map(0x100000, MIB, 0, RW, a));
        await(table.map(0x200000, MIB, 0, READ, b));
        await(table.map(0x300000, MIB, 0, RW, -1));

        CompletableFuture<Void> all = table.unmap(0, 0, 0x2);
        await(all);

        assertThat(table.size()).isZero();
        assertClosed(a);
        assertClosed(b);
        assertThat(listener.unmapped()).extracting(DmaRange::address)
                .containsExactlyInAnyOrder(0x100000L, 0x200000L, 0x300000L);
        await(table.unmap(0, 0, 0x2)); // nothing left: still fine
    }

    @Test
    void clearDropsEverythingAndTheTableStaysUsable() throws Exception {
        int fd = memfd(MIB);
        await(table.map(0x100000, MIB, 0, RW, fd));
        await(table.map(0x300000, MIB, 0, RW, -1));

        table.clear();

        assertThat(table.size()).isZero();
        assertClosed(fd);
        assertThat(listener.unmapped()).hasSize(2);
        await(table.map(0x100000, MIB, 0, RW, -1));
        assertThat(table.size()).isEqualTo(1);
    }

    @Test
    void listenerFailuresDoNotBreakTheTable() throws Exception {
        DmaTable.Listener throwing = new DmaTable.Listener() {
            @Override
            public void mapped(DmaRange range) {
                throw new IllegalStateException("device bug");
            }

            @Override
            public void unmapped(DmaRange range) {
                throw new IllegalStateException("device bug");
            }
        };
        DmaTable t = new DmaTable(throwing);
        int fd = memfd(4096);
        await(t.map(0x1000, 4096, 0, RW, fd));
        assertThat(t.size()).isEqualTo(1);
        await(t.unmap(0x1000, 4096, 0));
        assertClosed(fd);
        assertThat(t.size()).isZero();
    }

    @Test
    void theUnmapFutureIsTheCallersOwn() throws Exception {
        await(table.map(0x1000, 0x1000, 0, RW, -1));
        CompletableFuture<Void> unmap = table.unmap(0x1000, 0x1000, 0);
        await(unmap);
        unmap.obtrudeException(new IllegalStateException("caller meddling"));
        await(table.map(0x1000, 0x1000, 0, RW, -1));
        await(table.unmap(0, 0, 0x2));
        assertThat(listener.events()).containsExactly("mapped 1000", "unmapped 1000", "mapped 1000", "unmapped 1000");
        assertThat(table.ranges()).isEqualTo(List.of());
    }
}
