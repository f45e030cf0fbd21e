package io.vfiouser.server.dma;

import static io.vfiouser.server.dma.DmaTesting.RW;
import static io.vfiouser.server.dma.DmaTesting.await;
import static io.vfiouser.server.dma.DmaTesting.errnoOf;
import static io.vfiouser.server.dma.DmaTesting.memfd;
import static io.vfiouser.server.dma.DmaTesting.pattern;
import static io.vfiouser.server.dma.ServerDmaSpaceTest.catchDma;
import static org.assertj.core.api.Assertions.assertThat;

import io.vfiouser.device.Access;
import io.vfiouser.device.DmaException;
import io.vfiouser.transport.FdSet;
import io.vfiouser.transport.linux.Errno;
import io.vfiouser.transport.linux.Linux;
import io.vfiouser.transport.testing.FdCount;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.util.concurrent.CompletableFuture;
import java.util.function.Function;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The client shrinks the file behind a mapping: accesses beyond the new end raise SIGBUS, which must come out as
 * {@link DmaException} EIO, never as an {@link Error}, interpreted and JIT-compiled, and leave the JVM working.
 */
class MemoryFaultsTest {
    private static final long BASE = 0x4000_0000L;
    private static final long MAPPED = 2 << 20;
    private static final long KEPT = 4096;
    private static final long BEYOND = BASE + (1 << 20);
    private static final int JIT_ROUNDS = 100_000;
    private static final VarHandle LONG_HANDLE = ValueLayout.JAVA_LONG_UNALIGNED.varHandle();

    private long fdsBefore;
    private int fileFd;
    private DmaTable table;
    /** The default: device code works on copies. */
    private ServerDmaSpace dma;
    /** Zero-copy: device code touches the shared memory; these tests only load int/long values from it. */
    private ServerDmaSpace direct;

    @BeforeEach
    void setUp() throws Exception {
        fdsBefore = FdCount.now();
        fileFd = memfd(MAPPED);
        table = new DmaTable();
        dma = new ServerDmaSpace(table, new FakeMessenger(0, 16, 16));
        direct = new ServerDmaSpace(table, new FakeMessenger(0, 16, 16), DirtyLog.NONE, SegmentMode.DIRECT);
        await(table.map(BASE, MAPPED, 0, RW, Linux.dup(fileFd)));
        Linux.ftruncate(fileFd, KEPT); // the client shrinks its memfd after mapping it
    }

    @AfterEach
    void tearDown() throws Exception {
        // the JVM is alive and the memory that is left still works
        byte kept = dma.withSegment(BASE + 8, 1, Access.READ, s -> s.get(ValueLayout.JAVA_BYTE, 0));
        assertThat(kept).isEqualTo(pattern(8));
        await(table.unmap(BASE, MAPPED, 0));
        FdSet.closeQuietly(fileFd);
        FdCount.awaitAtMost(fdsBefore);
    }

    private static int faultsOf(ServerDmaSpace space, int rounds, long address, long length, Access access,
            Function<MemorySegment, ?> action) {
        int faults = 0;
        for (int i = 0; i < rounds; i++) {
            try {
                space.withSegment(address, length, access, action);
            } catch (DmaException e) {
                assertThat(e.errno()).isEqualTo(Errno.EIO);
                faults++;
            }
        }
        return faults;
    }

    @Test
    void accessesBeyondTheNewEndFailWithEio() throws Exception {
        for (ServerDmaSpace space : new ServerDmaSpace[] {dma, direct}) {
            DmaException e = catchDma(
                    () -> space.withSegment(BEYOND, 8, Access.READ, s -> s.get(ValueLayout.JAVA_LONG, 0)));
            assertThat(e.errno()).isEqualTo(Errno.EIO);
            assertThat(MemoryFaults.isMemoryFault(e.getCause())).isTrue();
            assertThat(catchDma(() -> space.withSegment(BASE + KEPT - 8, 16, Access.WRITE, s -> {
                s.set(ValueLayout.JAVA_LONG_UNALIGNED, 8, 1L);
                return s.get(ValueLayout.JAVA_LONG_UNALIGNED, 8);
            })).errno()).isEqualTo(Errno.EIO);
        }

        assertThat(errnoOf(dma.read(BEYOND, ByteBuffer.allocate(4096)))).isEqualTo(Errno.EIO);
        assertThat(errnoOf(dma.write(BEYOND, ByteBuffer.allocateDirect(64)))).isEqualTo(Errno.EIO);
        // across the new end: the first part is there, the rest is not
        assertThat(errnoOf(dma.read(BASE + KEPT - 8, ByteBuffer.allocate(16)))).isEqualTo(Errno.EIO);

        ByteBuffer kept = ByteBuffer.allocate((int) KEPT);
        await(dma.read(BASE, kept));
        assertThat(kept.get((int) KEPT - 1)).isEqualTo(pattern(KEPT - 1));
        assertThat(table.find(BASE).inFlight()).isZero();
    }

    @Test
    void narrowReadsFailWithEioWhenCompiledInCopyMode() {
        // In DIRECT mode this very function crashed the JVM once compiled (see SegmentMode).
        int faults = faultsOf(dma, JIT_ROUNDS, BEYOND, 4096, Access.READ, s -> s.get(ValueLayout.JAVA_BYTE, 100));
        assertThat(faults).isEqualTo(JIT_ROUNDS);
        faults = faultsOf(dma, JIT_ROUNDS / 10, BEYOND, 64, Access.READ,
                s -> s.get(ValueLayout.JAVA_CHAR_UNALIGNED, 3));
        assertThat(faults).isEqualTo(JIT_ROUNDS / 10);
    }

    @Test
    void writesFailWithEioWhenCompiledInCopyMode() {
        int faults = faultsOf(dma, JIT_ROUNDS, BEYOND, 4096, Access.WRITE, s -> {
            s.set(ValueLayout.JAVA_LONG_UNALIGNED, 8, 42L);
            return null;
        });
        assertThat(faults).isEqualTo(JIT_ROUNDS);
    }

    @Test
    void smallCopiesFailWithEioWhenCompiledInCopyMode() {
        // below 64 bytes the JDK copies with a Java loop of single loads and stores
        int faults = 0;
        for (int i = 0; i < JIT_ROUNDS; i++) {
            Access access = (i & 1) == 0 ? Access.WRITE : Access.READ;
            faults += faultsOf(dma, 1, BEYOND + (i & 7), 1 + (i % 63), access, s -> 0);
        }
        assertThat(faults).isEqualTo(JIT_ROUNDS);
    }

    @Test
    void wideReadsFailWithEioWhenCompiledInDirectMode() {
        int faults = faultsOf(direct, JIT_ROUNDS, BEYOND, 4096, Access.READ,
                s -> s.get(ValueLayout.JAVA_LONG_UNALIGNED, 100));
        assertThat(faults).isEqualTo(JIT_ROUNDS);
        faults = faultsOf(direct, JIT_ROUNDS / 10, BEYOND, 64, Access.READ, s -> s.get(ValueLayout.JAVA_INT, 4));
        assertThat(faults).isEqualTo(JIT_ROUNDS / 10);
    }

    @Test
    void writesFailWithEioWhenCompiledInDirectMode() {
        int faults = faultsOf(direct, JIT_ROUNDS, BEYOND, 4096, Access.WRITE, s -> {
            s.set(ValueLayout.JAVA_BYTE, 8, (byte) 42);
            s.set(ValueLayout.JAVA_LONG_UNALIGNED, 16, 42L);
            return null;
        });
        assertThat(faults).isEqualTo(JIT_ROUNDS);
    }

    @Test
    void varHandleAccessesFailWithEioWhenCompiledInDirectMode() {
        int faults = faultsOf(direct, JIT_ROUNDS, BEYOND, 64, Access.READ, s -> (long) LONG_HANDLE.get(s, 16L));
        assertThat(faults).isEqualTo(JIT_ROUNDS);
    }

    @Test
    void loopsOverGuestMemoryFailWithEioWhenCompiledInDirectMode() {
        int faults = faultsOf(direct, JIT_ROUNDS / 10, BEYOND, 4096, Access.READ, s -> {
            long sum = 0;
            for (long o = 0; o < 4096; o += 8) {
                sum += s.get(ValueLayout.JAVA_LONG_UNALIGNED, o);
            }
            return sum;
        });
        assertThat(faults).isEqualTo(JIT_ROUNDS / 10);
    }

    @Test
    void bulkCopiesOfReadAndWriteFailWithEioWhenCompiled() {
        ByteBuffer heap = ByteBuffer.allocate(4096);
        ByteBuffer directBuffer = ByteBuffer.allocateDirect(64);
        int faults = 0;
        for (int i = 0; i < JIT_ROUNDS; i++) {
            heap.clear();
            directBuffer.clear();
            CompletableFuture<Void> f =
                    (i & 1) == 0 ? dma.read(BEYOND, heap) : dma.write(BEYOND + 4096, directBuffer);
            assertThat(f).isCompletedExceptionally();
            try {
                f.join();
            } catch (java.util.concurrent.CompletionException e) {
                assertThat(e.getCause()).isInstanceOf(DmaException.class);
                assertThat(((DmaException) e.getCause()).errno()).isEqualTo(Errno.EIO);
                faults++;
            }
        }
        assertThat(faults).isEqualTo(JIT_ROUNDS);
    }

    @Test
    void theFaultWinsWhenTheDeviceThrowsOnTheGarbageItRead() {
        // Compiled code runs on after the faulting load (with an undefined value) until the next safepoint poll.
        int faults = faultsOf(direct, JIT_ROUNDS, BEYOND, 64, Access.READ, s -> {
            long descriptor = s.get(ValueLayout.JAVA_LONG_UNALIGNED, 0);
            throw new IllegalStateException("descriptor " + descriptor + " makes no sense");
        });
        assertThat(faults).isEqualTo(JIT_ROUNDS);
    }

    @Test
    void aFaultTheDeviceWrapsIsStillRecognised() {
        int faults = faultsOf(direct, JIT_ROUNDS / 10, BEYOND, 64, Access.READ, s -> {
            try {
                return s.get(ValueLayout.JAVA_LONG_UNALIGNED, 0);
            } catch (Throwable t) {
                throw new RuntimeException("wrapped", t);
            }
        });
        assertThat(faults).isEqualTo(JIT_ROUNDS / 10);
    }

    @Test
    void memoryFaultsRecognisesHotSpotsError() {
        InternalError fault = new InternalError("a fault occurred in an unsafe memory access operation");
        assertThat(MemoryFaults.isMemoryFault(fault)).isTrue();
        assertThat(MemoryFaults.isMemoryFault(new RuntimeException(new RuntimeException(fault)))).isTrue();
        assertThat(MemoryFaults.isMemoryFault(new InternalError("something else"))).isFalse();
        assertThat(MemoryFaults.isMemoryFault(new InternalError())).isFalse();
        assertThat(MemoryFaults.isMemoryFault(null)).isFalse();
    }

    @Test
    void memoryFaultsTranslatesClosedArenasAndPassesTheRest() throws Exception {
        MemorySegment gone;
        try (Arena arena = Arena.ofShared()) {
            gone = arena.allocate(16);
        }
        DmaException closed = catchDma(() -> MemoryFaults.apply(gone, 0x1000, s -> s.get(ValueLayout.JAVA_BYTE, 0)));
        assertThat(closed.errno()).isEqualTo(Errno.EFAULT);
        DmaException copied = catchDma(() -> {
            MemoryFaults.copy(gone, 0, MemorySegment.ofArray(new byte[16]), 0, 16, 0x1000);
            return null;
        });
        assertThat(copied.errno()).isEqualTo(Errno.EFAULT);

        try (Arena arena = Arena.ofConfined()) {
            MemorySegment live = arena.allocate(16);
            long size = MemoryFaults.apply(live, 0, s -> s.byteSize());
            assertThat(size).isEqualTo(16L);
            IllegalStateException other = new IllegalStateException("not about arenas");
            try {
                MemoryFaults.apply(live, 0, s -> {
                    throw other;
                });
            } catch (IllegalStateException e) {
                assertThat(e).isSameAs(other);
            }
        }
        MemoryFaults.barrier(); // nothing pending: a no-op
    }

    @Test
    void faultsInTheMemoryFaultsCopyAreEio() {
        Mapping m = table.find(BASE);
        assertThat(m.acquire()).isTrue();
        try {
            MemorySegment dst = MemorySegment.ofArray(new byte[64]);
            DmaException e = catchDma(() -> {
                MemoryFaults.copy(m.memory(), BEYOND - BASE, dst, 0, 64, BEYOND);
                return null;
            });
            assertThat(e.errno()).isEqualTo(Errno.EIO);
            DmaException other = catchDma(() -> {
                MemoryFaults.copy(dst, 0, m.memory(), BEYOND - BASE, 64, BEYOND);
                return null;
            });
            assertThat(other.errno()).isEqualTo(Errno.EIO);
        } finally {
            m.release();
        }
    }
}
