package io.vfiouser.server.dma;

import static io.vfiouser.server.dma.DmaTesting.READ;
import static io.vfiouser.server.dma.DmaTesting.RW;
import static io.vfiouser.server.dma.DmaTesting.WRITE;
import static io.vfiouser.server.dma.DmaTesting.await;
import static io.vfiouser.server.dma.DmaTesting.errnoOf;
import static io.vfiouser.server.dma.DmaTesting.memfd;
import static io.vfiouser.server.dma.DmaTesting.pattern;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vfiouser.codec.VfioUserProtocolException;
import io.vfiouser.device.Access;
import io.vfiouser.device.DmaException;
import io.vfiouser.server.dma.FakeMessenger.Call;
import io.vfiouser.transport.FdSet;
import io.vfiouser.transport.linux.Errno;
import io.vfiouser.transport.linux.Linux;
import io.vfiouser.transport.testing.FdCount;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ReadOnlyBufferException;
import java.nio.channels.ClosedChannelException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

class ServerDmaSpaceTest {
    private static final long SHARED = 0x100000;
    private static final long MESSAGE = 0x200000;
    private static final int SIZE = 64 * 1024;

    /** A dirty log that records its calls. */
    record Mark(long address, long length) {
    }

    static final class RecordingDirtyLog implements DirtyLog {
        final List<Mark> marks = new ArrayList<>();

        @Override
        public synchronized void markDirty(long address, long length) {
            marks.add(new Mark(address, length));
        }

        synchronized List<Mark> marks() {
            return new ArrayList<>(marks);
        }
    }

    private long fdsBefore;
    private DmaTable table;
    private FakeMessenger client;
    private RecordingDirtyLog dirty;
    private ServerDmaSpace dma;
    /** The test's own view of the memfd behind SHARED. */
    private Arena testArena;
    private MemorySegment file;
    private int fileFd;

    @BeforeEach
    void setUp() throws Exception {
        fdsBefore = FdCount.now();
        table = new DmaTable();
        client = new FakeMessenger(MESSAGE, SIZE, 4096);
        dirty = new RecordingDirtyLog();
        dma = new ServerDmaSpace(table, client, dirty, SegmentMode.COPY);
        fileFd = memfd(2 * SIZE);
        testArena = Arena.ofShared();
        file = Linux.mmap(fileFd, 0, 2 * SIZE, Linux.PROT_READ | Linux.PROT_WRITE, testArena);
        // SHARED: the second half of the file; MESSAGE: served by the fake client; a gap lies between them
        await(table.map(SHARED, SIZE, SIZE, RW, Linux.dup(fileFd)));
        await(table.map(MESSAGE, SIZE, 0, RW, -1));
    }

    private ServerDmaSpace dma(SegmentMode mode) {
        return new ServerDmaSpace(table, client, dirty, mode);
    }

    @AfterEach
    void tearDown() throws InterruptedException {
        table.clear();
        testArena.close();
        FdSet.closeQuietly(fileFd);
        FdCount.awaitAtMost(fdsBefore);
    }

    @Test
    void devicesWorkOnACopyOfUnsealedMemoryAndOnTheSharedPagesOfSealedMemory() throws Exception {
        // Unsealed (the default fixture): a write through the segment reaches guest memory only afterwards.
        byte before = file.get(ValueLayout.JAVA_BYTE, SIZE + 5);
        dma.withSegment(SHARED + 5, 8, Access.WRITE, seg -> {
            seg.set(ValueLayout.JAVA_BYTE, 0, (byte) (before + 1));
            assertThat(file.get(ValueLayout.JAVA_BYTE, SIZE + 5)).as("a private copy").isEqualTo(before);
            return null;
        });
        assertThat(file.get(ValueLayout.JAVA_BYTE, SIZE + 5)).isEqualTo((byte) (before + 1));

        // Sealed against shrinking (as QEMU's memory-backend-memfd is): the device works on the shared pages.
        int sealedFd = memfd(SIZE);
        Linux.addSeals(sealedFd, Linux.F_SEAL_SHRINK);
        try (Arena view = Arena.ofShared()) {
            MemorySegment guest = Linux.mmap(sealedFd, 0, SIZE, Linux.PROT_READ | Linux.PROT_WRITE, view);
            await(table.map(0x400000, SIZE, 0, RW, Linux.dup(sealedFd)));
            dma.withSegment(0x400000 + 7, 8, Access.WRITE, seg -> {
                seg.set(ValueLayout.JAVA_BYTE, 0, (byte) 0x5A);
                assertThat(guest.get(ValueLayout.JAVA_BYTE, 7)).as("the shared pages").isEqualTo((byte) 0x5A);
                return null;
            });
        } finally {
            FdSet.closeQuietly(sealedFd);
        }
    }

    @Test
    void readsSharedMemory() throws Exception {
        ByteBuffer dst = ByteBuffer.allocate(1000);
        await(dma.read(SHARED + 10, dst));
        assertThat(dst.position()).isEqualTo(1000);
        for (int i = 0; i < 1000; i++) {
            assertThat(dst.get(i)).isEqualTo(pattern(SIZE + 10 + i));
        }
        assertThat(client.calls()).isEmpty();
        assertThat(dirty.marks()).isEmpty();
    }

    @Test
    void writesSharedMemoryAndLogsIt() throws Exception {
        ByteBuffer src = ByteBuffer.allocateDirect(300);
        for (int i = 0; i < 300; i++) {
            src.put((byte) (0x80 + i));
        }
        src.flip();
        await(dma.write(SHARED + SIZE - 300, src));
        assertThat(src.remaining()).isZero();
        for (int i = 0; i < 300; i++) {
            assertThat(file.get(ValueLayout.JAVA_BYTE, 2L * SIZE - 300 + i)).isEqualTo((byte) (0x80 + i));
        }
        assertThat(dirty.marks()).containsExactly(new Mark(SHARED + SIZE - 300, 300));
    }

    @Test
    void readsAndWritesMessageModeMemoryInChunks() throws Exception {
        ByteBuffer dst = ByteBuffer.allocate(10_000);
        await(dma.read(MESSAGE + 8, dst));
        assertThat(dst.array()).isEqualTo(Arrays.copyOfRange(client.memory, 8, 10_008));
        assertThat(client.calls()).containsExactly(new Call(Access.READ, MESSAGE + 8, 4096),
                new Call(Access.READ, MESSAGE + 8 + 4096, 4096),
                new Call(Access.READ, MESSAGE + 8 + 8192, 10_000 - 8192));

        byte[] data = new byte[5000];
        Arrays.fill(data, (byte) 0x33);
        ByteBuffer src = ByteBuffer.wrap(data);
        await(dma.write(MESSAGE + 100, src));
        assertThat(src.remaining()).isZero();
        assertThat(Arrays.copyOfRange(client.memory, 100, 5100)).isEqualTo(data);
        assertThat(client.calls()).hasSize(5);
        assertThat(client.violations()).isEmpty();
        assertThat(dirty.marks()).containsExactly(new Mark(MESSAGE + 100, 5000));
    }

    @Test
    void aTransferMaySpanAdjacentMappingsOfBothKinds() throws Exception {
        // [0x300000, +4096) shared (file offset 0), then [0x301000, +4096) by messages
        await(table.map(0x300000, 4096, 0, RW, Linux.dup(fileFd)));
        FakeMessenger second = new FakeMessenger(0x301000, 4096, 1024);
        ServerDmaSpace space = new ServerDmaSpace(table, second);
        await(table.map(0x301000, 4096, 0, RW, -1));

        ByteBuffer dst = ByteBuffer.allocate(2048);
        await(space.read(0x300000 + 3072, dst));

        for (int i = 0; i < 1024; i++) {
            assertThat(dst.get(i)).isEqualTo(pattern(3072 + i));
        }
        assertThat(Arrays.copyOfRange(dst.array(), 1024, 2048)).isEqualTo(Arrays.copyOf(second.memory, 1024));
        assertThat(second.calls()).containsExactly(new Call(Access.READ, 0x301000, 1024));

        ByteBuffer src = ByteBuffer.allocate(2048);
        Arrays.fill(src.array(), (byte) 0x44);
        await(space.write(0x300000 + 3072, src));
        assertThat(file.get(ValueLayout.JAVA_BYTE, 4095)).isEqualTo((byte) 0x44);
        assertThat(second.memory[1023]).isEqualTo((byte) 0x44);
        assertThat(second.memory[1024]).isNotEqualTo((byte) 0x44);
        assertThat(space.isMapped(0x300000, 8192)).isFalse(); // not inside ONE mapping
    }

    @Test
    void unmappedBytesAnywhereInTheRangeAreEfaultAndNothingIsSent() throws Exception {
        assertThat(errnoOf(dma.read(MESSAGE + SIZE - 10, ByteBuffer.allocate(20)))).isEqualTo(Errno.EFAULT);
        assertThat(errnoOf(dma.read(MESSAGE - 10, ByteBuffer.allocate(20)))).isEqualTo(Errno.EFAULT);
        assertThat(errnoOf(dma.write(0x10, ByteBuffer.allocate(20)))).isEqualTo(Errno.EFAULT);
        assertThat(errnoOf(dma.read(-10L, ByteBuffer.allocate(20)))).isEqualTo(Errno.EFAULT); // wraps
        assertThat(client.calls()).isEmpty();
    }

    @Test
    void permissionsAreEnforcedWithEacces() throws Exception {
        await(table.map(0x400000, 4096, 0, READ, Linux.dup(fileFd)));
        await(table.map(0x401000, 4096, 0, WRITE, Linux.dup(fileFd)));
        await(table.map(0x500000, 4096, 0, READ, -1));
        await(table.map(0x501000, 4096, 0, WRITE, -1));

        assertThat(errnoOf(dma.write(0x400000, ByteBuffer.allocate(8)))).isEqualTo(Errno.EACCES);
        assertThat(errnoOf(dma.read(0x401000, ByteBuffer.allocate(8)))).isEqualTo(Errno.EACCES);
        assertThat(errnoOf(dma.write(0x500000, ByteBuffer.allocate(8)))).isEqualTo(Errno.EACCES);
        assertThat(errnoOf(dma.read(0x501000, ByteBuffer.allocate(8)))).isEqualTo(Errno.EACCES);
        assertThat(errnoOf(dma.read(0x400000 + 4090, ByteBuffer.allocate(12)))).isEqualTo(Errno.EACCES);
        assertThat(client.calls()).isEmpty();
        ServerDmaSpace other = new ServerDmaSpace(table, new FakeMessenger(0x500000, 8192, 4096));
        await(other.read(0x500000, ByteBuffer.allocate(8)));
        await(other.write(0x501000, ByteBuffer.allocate(8)));
    }

    @ParameterizedTest
    @EnumSource(SegmentMode.class)
    void withSegmentEnforcesPermissionsWithEacces(SegmentMode mode) throws Exception {
        ServerDmaSpace dma = dma(mode);
        await(table.map(0x400000, 4096, 0, READ, Linux.dup(fileFd)));
        await(table.map(0x401000, 4096, 0, WRITE, Linux.dup(fileFd)));
        assertThat(errnoThrown(() -> dma.withSegment(0x400000, 8, Access.WRITE, s -> 0))).isEqualTo(Errno.EACCES);
        assertThat(errnoThrown(() -> dma.withSegment(0x401000, 8, Access.READ, s -> 0))).isEqualTo(Errno.EACCES);
        assertThat(catchDma(() -> dma.withSegment(0x400000, 8, Access.WRITE, s -> 0)))
                .hasMessageStartingWith("DMA WRITE of Mapping[0x400000+0x1000 R-");
        assertThat(catchDma(() -> dma.withSegment(0x401000, 8, Access.READ, s -> 0)))
                .hasMessageStartingWith("DMA READ of Mapping[0x401000+0x1000 -W");
        byte first = dma.withSegment(0x400000, 8, Access.READ, s -> s.get(ValueLayout.JAVA_BYTE, 0));
        assertThat(first).isEqualTo(pattern(0));
        int written = dma.withSegment(0x401000, 8, Access.WRITE, s -> {
            s.set(ValueLayout.JAVA_BYTE, 0, (byte) 0x11);
            return 1;
        });
        assertThat(written).isEqualTo(1);
        assertThat(file.get(ValueLayout.JAVA_BYTE, 0)).isEqualTo((byte) 0x11);
    }

    @ParameterizedTest
    @EnumSource(SegmentMode.class)
    void mappingsWithoutReadOrWriteRefuseBoth(SegmentMode mode) throws Exception {
        ServerDmaSpace dma = dma(mode);
        await(table.map(0x600000, 4096, 0, 0, Linux.dup(fileFd))); // mapped PROT_NONE
        assertThat(errnoOf(dma.read(0x600000, ByteBuffer.allocate(8)))).isEqualTo(Errno.EACCES);
        assertThat(errnoOf(dma.write(0x600000, ByteBuffer.allocate(8)))).isEqualTo(Errno.EACCES);
        assertThat(errnoThrown(() -> dma.withSegment(0x600000, 8, Access.READ, s -> 0))).isEqualTo(Errno.EACCES);
    }

    @ParameterizedTest
    @EnumSource(SegmentMode.class)
    void withSegmentGivesASliceOfTheSharedMemory(SegmentMode mode) throws Exception {
        ServerDmaSpace dma = dma(mode);
        long value = dma.withSegment(SHARED + 4096, 64, Access.READ, s -> {
            assertThat(s.byteSize()).isEqualTo(64);
            assertThat(s.isReadOnly()).isTrue();
            return s.get(ValueLayout.JAVA_BYTE, 63) & 0xFFL;
        });
        assertThat((byte) value).isEqualTo(pattern(SIZE + 4096 + 63));
        assertThat(dirty.marks()).isEmpty();

        dma.withSegment(SHARED + 8, 16, Access.WRITE, s -> {
            assertThat(s.isReadOnly()).isFalse();
            s.fill((byte) 0x77);
            return null;
        });
        assertThat(file.get(ValueLayout.JAVA_BYTE, SIZE + 8)).isEqualTo((byte) 0x77);
        assertThat(file.get(ValueLayout.JAVA_BYTE, SIZE + 23)).isEqualTo((byte) 0x77);
        assertThat(file.get(ValueLayout.JAVA_BYTE, SIZE + 24)).isEqualTo(pattern(SIZE + 24));
        assertThat(dirty.marks()).containsExactly(new Mark(SHARED + 8, 16));
    }

    @ParameterizedTest
    @EnumSource(SegmentMode.class)
    void aReadOnlySegmentRefusesWrites(SegmentMode mode) {
        ServerDmaSpace dma = dma(mode);
        assertThatThrownBy(() -> dma.withSegment(SHARED, 8, Access.READ, s -> {
            s.set(ValueLayout.JAVA_BYTE, 0, (byte) 1);
            return null;
        })).isInstanceOf(IllegalArgumentException.class);
        assertThat(file.get(ValueLayout.JAVA_BYTE, SIZE)).isEqualTo(pattern(SIZE));
    }

    @ParameterizedTest
    @EnumSource(SegmentMode.class)
    void withSegmentNeedsOneSharedMappingHoldingTheWholeRange(SegmentMode mode) throws Exception {
        ServerDmaSpace dma = dma(mode);
        assertThat(errnoThrown(() -> dma.withSegment(SHARED + SIZE - 4, 8, Access.READ, s -> 0)))
                .isEqualTo(Errno.EFAULT);
        assertThat(errnoThrown(() -> dma.withSegment(0x10, 8, Access.READ, s -> 0))).isEqualTo(Errno.EFAULT);
        DmaException message = catchDma(() -> dma.withSegment(MESSAGE, 8, Access.READ, s -> 0));
        assertThat(message.errno()).isEqualTo(Errno.EFAULT);
        assertThat(message.getMessage()).contains("read()/write()");
        assertThatThrownBy(() -> dma.withSegment(SHARED, -1, Access.READ, s -> 0))
                .isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> dma.withSegment(SHARED, 8, null, s -> 0))
                .isInstanceOf(NullPointerException.class).hasMessage("access");
        long lastByte = dma.withSegment(SHARED + SIZE - 1, 1, Access.READ, s -> s.byteSize());
        assertThat(lastByte).isEqualTo(1L);
        long whole = dma.withSegment(SHARED, SIZE, Access.READ, s -> s.byteSize());
        assertThat(whole).isEqualTo(SIZE);
    }

    @ParameterizedTest
    @EnumSource(SegmentMode.class)
    void exceptionsOfTheDeviceFunctionPassThrough(SegmentMode mode) {
        ServerDmaSpace dma = dma(mode);
        IllegalStateException bug = new IllegalStateException("device bug");
        assertThatThrownBy(() -> dma.withSegment(SHARED, 8, Access.WRITE, s -> {
            throw bug;
        })).isSameAs(bug);
        StackOverflowError error = new StackOverflowError();
        assertThatThrownBy(() -> dma.withSegment(SHARED, 8, Access.READ, s -> {
            throw error;
        })).isSameAs(error);
        assertThat(table.find(SHARED).inFlight()).isZero();
        assertThat(dirty.marks()).hasSize(1); // the write may have happened before the failure
    }

    @Test
    void isMappedLooksForOneMapping() {
        assertThat(dma.isMapped(SHARED, SIZE)).isTrue();
        assertThat(dma.isMapped(SHARED + SIZE - 1, 1)).isTrue();
        assertThat(dma.isMapped(SHARED + SIZE - 1, 2)).isFalse();
        assertThat(dma.isMapped(MESSAGE, 16)).isTrue();
        assertThat(dma.isMapped(SHARED - 1, 1)).isFalse();
        assertThat(dma.isMapped(SHARED, 0)).isTrue();
        assertThat(dma.isMapped(SHARED, -1)).isFalse();
        assertThat(dma.isMapped(-1L, 1)).isFalse();
    }

    @Test
    void markDirtyGoesToTheDirtyLog() {
        dma.markDirty(0x1234, 99);
        assertThat(dirty.marks()).containsExactly(new Mark(0x1234, 99));
        dma.dirtyLog(DirtyLog.NONE);
        assertThat(dma.dirtyLog()).isSameAs(DirtyLog.NONE);
        dma.markDirty(0x1234, 99);
        assertThat(dirty.marks()).hasSize(1);
        assertThat(dma.table()).isSameAs(table);
        assertThat(new ServerDmaSpace(table, client).dirtyLog()).isSameAs(DirtyLog.NONE);
    }

    @Test
    void emptyTransfersSucceedWithoutMessages() throws Exception {
        await(dma.read(0x10, ByteBuffer.allocate(0)));
        await(dma.write(MESSAGE, ByteBuffer.allocate(0)));
        assertThat(client.calls()).isEmpty();
        assertThat(dirty.marks()).isEmpty();
    }

    @Test
    void aReadOnlyBufferCannotBeReadInto() {
        CompletableFuture<Void> f = dma.read(SHARED, ByteBuffer.allocate(8).asReadOnlyBuffer());
        assertThat(f).failsWithin(5, TimeUnit.SECONDS).withThrowableOfType(ExecutionException.class)
                .withCauseInstanceOf(ReadOnlyBufferException.class);
    }

    @Test
    void clientErrorsBecomeDmaExceptionsWithTheirErrno() throws Exception {
        client.failAt(1, new VfioUserProtocolException(Errno.EPERM, "bus master off"));
        ByteBuffer dst = ByteBuffer.allocate(10_000);
        CompletableFuture<Void> refused = dma.read(MESSAGE, dst);
        assertThat(errnoOf(refused)).isEqualTo(Errno.EPERM);
        assertThat(client.calls()).hasSize(2);
        assertThat(dst.position()).isZero();
        assertThat(refused).failsWithin(5, TimeUnit.SECONDS).withThrowableOfType(ExecutionException.class)
                .withMessageContaining("DMA_READ of 10000 bytes at 0x");

        client.failAt(2, new ClosedChannelException());
        CompletableFuture<Void> gone = dma.write(MESSAGE, ByteBuffer.allocate(10));
        assertThat(errnoOf(gone)).isEqualTo(Errno.EIO);
        assertThat(gone).failsWithin(5, TimeUnit.SECONDS).withThrowableOfType(ExecutionException.class)
                .withMessageContaining("DMA_WRITE of 10 bytes at 0x");
        assertThat(dirty.marks()).hasSize(1); // writes are logged even when they fail: some may have landed
    }

    @Test
    void messageRepliesMayArriveLater() throws Exception {
        client.manual = true;
        ByteBuffer dst = ByteBuffer.allocate(6000);
        CompletableFuture<Void> f = dma.read(MESSAGE, dst);
        assertThat(f).isNotDone();
        assertThat(client.completeNext()).isTrue();
        assertThat(f).isNotDone();
        assertThat(client.completeNext()).isTrue();
        await(f);
        assertThat(dst.position()).isEqualTo(6000);
        assertThat(dst.array()).isEqualTo(Arrays.copyOf(client.memory, 6000));
    }

    @Test
    void messageTransfersDoNotHoldTheMapping() throws Exception {
        client.manual = true;
        CompletableFuture<Void> f = dma.read(MESSAGE, ByteBuffer.allocate(100));
        CompletableFuture<Void> unmap = table.unmap(MESSAGE, SIZE, 0);
        await(unmap); // does not wait for the client's reply (QEMU would deadlock)
        assertThat(client.completeNext()).isTrue();
        await(f);
    }

    @ParameterizedTest
    @EnumSource(SegmentMode.class)
    void onlyTheBytesTheDeviceChangedReachTheGuest(SegmentMode mode) throws Exception {
        ServerDmaSpace dma = dma(mode);
        dma.withSegment(SHARED, 64, Access.WRITE, s -> {
            file.set(ValueLayout.JAVA_BYTE, SIZE + 10, (byte) 0x10); // the guest writes meanwhile
            s.set(ValueLayout.JAVA_BYTE, 20, (byte) 0x20);
            s.set(ValueLayout.JAVA_INT_UNALIGNED, 30, 0x30313233);
            s.set(ValueLayout.JAVA_BYTE, 40, pattern(SIZE + 40)); // same value: nothing to write
            return null;
        });
        assertThat(file.get(ValueLayout.JAVA_BYTE, SIZE + 10)).isEqualTo((byte) 0x10);
        assertThat(file.get(ValueLayout.JAVA_BYTE, SIZE + 20)).isEqualTo((byte) 0x20);
        assertThat(file.get(ValueLayout.JAVA_INT_UNALIGNED, SIZE + 30)).isEqualTo(0x30313233);
        for (int i = 0; i < 64; i++) {
            if (i != 10 && i != 20 && (i < 30 || i >= 34)) {
                assertThat(file.get(ValueLayout.JAVA_BYTE, SIZE + i)).as("byte %d", i).isEqualTo(pattern(SIZE + i));
            }
        }
    }

    @ParameterizedTest
    @EnumSource(SegmentMode.class)
    void writesOfAFailingDeviceFunctionReachTheGuest(SegmentMode mode) {
        ServerDmaSpace dma = dma(mode);
        assertThatThrownBy(() -> dma.withSegment(SHARED, 64, Access.WRITE, s -> {
            s.set(ValueLayout.JAVA_BYTE, 5, (byte) 0x55);
            throw new IllegalStateException("half done");
        })).hasMessage("half done");
        assertThat(file.get(ValueLayout.JAVA_BYTE, SIZE + 5)).isEqualTo((byte) 0x55);
    }

    @Test
    void copyModeShowsASnapshotAndDirectModeTheLiveMemory() throws Exception {
        byte copied = dma(SegmentMode.COPY).withSegment(SHARED, 8, Access.READ, s -> {
            file.set(ValueLayout.JAVA_BYTE, SIZE, (byte) 0x61);
            return s.get(ValueLayout.JAVA_BYTE, 0);
        });
        assertThat(copied).isEqualTo(pattern(SIZE));
        byte live = dma(SegmentMode.DIRECT).withSegment(SHARED, 8, Access.READ, s -> {
            file.set(ValueLayout.JAVA_BYTE, SIZE, (byte) 0x62);
            return s.get(ValueLayout.JAVA_BYTE, 0);
        });
        assertThat(live).isEqualTo((byte) 0x62);
        assertThat(dma.segmentMode()).isEqualTo(SegmentMode.COPY);
    }

    @ParameterizedTest
    @EnumSource(SegmentMode.class)
    void segmentsKeepTheGuestAddressAlignmentModuloEight(SegmentMode mode) throws Exception {
        ServerDmaSpace dma = dma(mode);
        long aligned = dma.withSegment(SHARED + 8, 16, Access.READ, s -> s.get(ValueLayout.JAVA_LONG, 8));
        assertThat(aligned).isEqualTo(file.get(ValueLayout.JAVA_LONG, SIZE + 16));
        int four = dma.withSegment(SHARED + 4, 8, Access.WRITE, s -> {
            s.set(ValueLayout.JAVA_INT, 4, 0x01020304);
            return s.get(ValueLayout.JAVA_INT, 0);
        });
        assertThat(four).isEqualTo(file.get(ValueLayout.JAVA_INT, SIZE + 4));
        assertThat(file.get(ValueLayout.JAVA_INT, SIZE + 8)).isEqualTo(0x01020304);
        long atomic = dma.withSegment(SHARED + 24, 8, Access.WRITE,
                s -> (long) ValueLayout.JAVA_LONG.varHandle().getAndAdd(s, 0L, 1L));
        assertThat(file.get(ValueLayout.JAVA_LONG, SIZE + 24)).isEqualTo(atomic + 1);
    }

    @Test
    void copyModeCopiesAtMostMaxCopyBytes() throws Exception {
        long big = ServerDmaSpace.MAX_COPY + 4096;
        int fd = Linux.memfdCreate("big"); // sparse: nothing is touched
        Linux.ftruncate(fd, big);
        await(table.map(0x1_0000_0000L, big, 0, RW, fd));
        DmaException tooBig = catchDma(
                () -> dma.withSegment(0x1_0000_0000L, ServerDmaSpace.MAX_COPY + 1, Access.READ, s -> 0));
        assertThat(tooBig.errno()).isEqualTo(Errno.E2BIG);
        long direct = dma(SegmentMode.DIRECT).withSegment(0x1_0000_0000L, ServerDmaSpace.MAX_COPY + 1, Access.READ,
                s -> s.byteSize());
        assertThat(direct).isEqualTo(ServerDmaSpace.MAX_COPY + 1);
    }

    interface DmaCall {
        Object run() throws DmaException;
    }

    static DmaException catchDma(DmaCall call) {
        try {
            call.run();
        } catch (DmaException e) {
            return e;
        }
        throw new AssertionError("no DmaException");
    }

    static int errnoThrown(DmaCall call) {
        return catchDma(call).errno();
    }

    @Test
    void whileTheTableLogsEveryWritePathMarksThePagesItWroteAndReadsMarkNothing() throws Exception {
        assertThat(table.startDirtyLogging(4096)).isEqualTo(4096);
        int pages = (int) (SIZE / 4096);
        int words = (pages + 63) / 64;
        await(dma.write(SHARED + 4095, java.nio.ByteBuffer.allocate(2)));                  // pages 0, 1
        dma.withSegment(SHARED + 5 * 4096, 10, Access.WRITE, seg -> null);                         // page 5
        dma.withSegment(SHARED + 7 * 4096, 10, Access.READ, seg -> null);                        // read: nothing
        await(dma.read(SHARED + 9 * 4096, java.nio.ByteBuffer.allocate(8)));               // read: nothing
        dma.markDirty(SHARED + 12 * 4096, 1);                                              // page 12
        await(dma.write(MESSAGE, java.nio.ByteBuffer.allocate(8)));                        // message mode: not logged
        long[] bitmap = table.dirtyReport(SHARED, SIZE, 4096);
        assertThat(bitmap).hasSize(words);
        assertThat(bitmap[0]).isEqualTo(0b1_0000_0010_0011L);
        for (int w = 1; w < words; w++) {
            assertThat(bitmap[w]).isZero();
        }
        dma(SegmentMode.DIRECT).withSegment(SHARED + 14 * 4096, 1, Access.WRITE, seg -> null);     // page 14, direct
        assertThat(table.dirtyReport(SHARED, SIZE, 4096)[0]).isEqualTo(1L << 14);
        table.stopDirtyLogging();
        await(dma.write(SHARED, java.nio.ByteBuffer.allocate(2)));
        assertThat(table.startDirtyLogging(4096)).isEqualTo(4096);
        assertThat(table.dirtyReport(SHARED, SIZE, 4096)).as("a fresh log").containsOnly(0L);
    }
}
