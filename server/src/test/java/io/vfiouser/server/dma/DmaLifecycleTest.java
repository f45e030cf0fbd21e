package io.vfiouser.server.dma;

import static io.vfiouser.server.dma.DmaTesting.RW;
import static io.vfiouser.server.dma.DmaTesting.TIMEOUT_SECONDS;
import static io.vfiouser.server.dma.DmaTesting.assertClosed;
import static io.vfiouser.server.dma.DmaTesting.await;
import static io.vfiouser.server.dma.DmaTesting.errnoOf;
import static io.vfiouser.server.dma.DmaTesting.memfd;
import static io.vfiouser.server.dma.DmaTesting.pattern;
import static io.vfiouser.server.dma.ServerDmaSpaceTest.catchDma;
import static org.assertj.core.api.Assertions.assertThat;

import io.vfiouser.device.Access;
import io.vfiouser.device.DmaException;
import io.vfiouser.server.dma.DmaTesting.RecordingListener;
import io.vfiouser.transport.linux.Errno;
import io.vfiouser.transport.testing.FdCount;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Unmap and clear against accesses in flight. */
class DmaLifecycleTest {
    private static final long BASE = 0x1_0000_0000L;
    private static final int SIZE = 1 << 20;

    private long fdsBefore;
    private RecordingListener listener;
    private DmaTable table;
    private ServerDmaSpace dma;
    private ExecutorService devices;

    @BeforeEach
    void setUp() {
        fdsBefore = FdCount.now();
        listener = new RecordingListener();
        table = new DmaTable(listener);
        dma = direct(); // these tests look at the shared memory's lifetime
        devices = Executors.newCachedThreadPool();
    }

    private ServerDmaSpace direct() {
        return new ServerDmaSpace(table, new FakeMessenger(0, 16, 16), DirtyLog.NONE, SegmentMode.DIRECT);
    }

    @AfterEach
    void tearDown() throws InterruptedException {
        table.clear();
        devices.shutdownNow();
        assertThat(devices.awaitTermination(TIMEOUT_SECONDS, TimeUnit.SECONDS)).isTrue();
        FdCount.awaitAtMost(fdsBefore);
    }

    /** A device access that stays inside {@code withSegment} until {@code leave} opens. */
    private Future<Byte> blockedAccess(long address, CountDownLatch inside, CountDownLatch leave,
            AtomicReference<MemorySegment> seen) {
        return devices.submit(() -> dma.withSegment(address, 16, Access.READ, segment -> {
            seen.set(segment);
            inside.countDown();
            try {
                leave.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            byte b = segment.get(ValueLayout.JAVA_BYTE, 0); // still mapped while inside
            listener.event("access done");
            return b;
        }));
    }

    @Test
    void unmapWaitsForAnAccessInFlightThenUnmaps() throws Exception {
        int fd = memfd(SIZE);
        await(table.map(BASE, SIZE, 0, RW, fd));
        CountDownLatch inside = new CountDownLatch(1);
        CountDownLatch leave = new CountDownLatch(1);
        AtomicReference<MemorySegment> seen = new AtomicReference<>();
        Future<Byte> access = blockedAccess(BASE + 100, inside, leave, seen);
        assertThat(inside.await(TIMEOUT_SECONDS, TimeUnit.SECONDS)).isTrue();

        CompletableFuture<Void> unmap = table.unmap(BASE, SIZE, 0);

        assertThat(unmap).isNotDone();
        assertThat(table.size()).isZero();
        assertThat(FdCount.isOpen(fd)).isTrue();
        assertThat(seen.get().scope().isAlive()).isTrue();
        // new accesses fail at once, whichever way they come
        DmaException refused = catchDma(() -> dma.withSegment(BASE, 8, Access.READ, s -> 0));
        assertThat(refused.errno()).isEqualTo(Errno.EFAULT);
        assertThat(errnoOf(dma.read(BASE, ByteBuffer.allocate(8)))).isEqualTo(Errno.EFAULT);
        assertThat(dma.isMapped(BASE, 8)).isFalse();
        assertThat(listener.unmapped()).isEmpty();

        leave.countDown();
        assertThat(access.get(TIMEOUT_SECONDS, TimeUnit.SECONDS)).isEqualTo(pattern(100));
        await(unmap);
        assertThat(seen.get().scope().isAlive()).isFalse();
        assertClosed(fd);
        assertThat(listener.events()).containsExactly("mapped 100000000", "access done", "unmapped 100000000");
    }

    @Test
    void unmapAlsoWaitsForACopyModeAccessAndItsWriteBack() throws Exception {
        dma = new ServerDmaSpace(table, new FakeMessenger(0, 16, 16));
        int fd = memfd(SIZE);
        await(table.map(BASE, SIZE, 0, RW, fd));
        CountDownLatch inside = new CountDownLatch(1);
        CountDownLatch leave = new CountDownLatch(1);
        Future<Object> access = devices.submit(() -> dma.withSegment(BASE, 16, Access.WRITE, segment -> {
            inside.countDown();
            try {
                leave.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            segment.set(ValueLayout.JAVA_BYTE, 0, (byte) 0x7E);
            return null;
        }));
        assertThat(inside.await(TIMEOUT_SECONDS, TimeUnit.SECONDS)).isTrue();
        CompletableFuture<Void> unmap = table.unmap(BASE, SIZE, 0);
        assertThat(unmap).isNotDone();
        assertThat(FdCount.isOpen(fd)).isTrue();
        leave.countDown();
        access.get(TIMEOUT_SECONDS, TimeUnit.SECONDS);
        await(unmap);
        assertClosed(fd);
    }

    @Test
    void anAccessThatLostTheRaceWithUnmapIsRefused() throws Exception {
        await(table.map(BASE, SIZE, 0, RW, memfd(SIZE)));
        Mapping m = table.find(BASE);
        await(table.unmap(BASE, SIZE, 0));
        assertThat(m.acquire()).isFalse(); // looked up before the unmap, acquired after it
        assertThat(m.isRetired()).isTrue();
    }

    @Test
    void aSegmentKeptPastWithSegmentFailsAfterUnmapInsteadOfTouchingFreedMemory() throws Exception {
        await(table.map(BASE, SIZE, 0, RW, memfd(SIZE)));
        await(table.map(BASE + SIZE, SIZE, 0, RW, memfd(SIZE)));
        MemorySegment leaked = dma.withSegment(BASE, 64, Access.READ, s -> s);
        await(table.unmap(BASE, SIZE, 0));

        DmaException e = catchDma(() -> dma.withSegment(BASE + SIZE, 8, Access.READ,
                s -> leaked.get(ValueLayout.JAVA_BYTE, 0)));
        assertThat(e.errno()).isEqualTo(Errno.EFAULT);
        assertThat(e.getCause()).isInstanceOf(IllegalStateException.class);
    }

    @Test
    void clearDropsMappingsWithAccessesInFlightWithoutWaiting() throws Exception {
        int busyFd = memfd(SIZE);
        int idleFd = memfd(SIZE);
        await(table.map(BASE, SIZE, 0, RW, busyFd));
        await(table.map(BASE + SIZE, SIZE, 0, RW, idleFd));
        await(table.map(BASE + 2L * SIZE, SIZE, 0, RW, -1));
        CountDownLatch inside = new CountDownLatch(2);
        CountDownLatch leave = new CountDownLatch(1);
        AtomicReference<MemorySegment> seen = new AtomicReference<>();
        Future<Byte> first = blockedAccess(BASE, inside, leave, seen);
        Future<Byte> second = blockedAccess(BASE + 4096, inside, leave, new AtomicReference<>());
        assertThat(inside.await(TIMEOUT_SECONDS, TimeUnit.SECONDS)).isTrue();

        table.clear(); // returns at once

        assertThat(table.size()).isZero();
        assertClosed(idleFd);
        assertThat(FdCount.isOpen(busyFd)).isTrue();
        assertThat(seen.get().scope().isAlive()).isTrue();
        assertThat(listener.unmapped()).extracting(r -> r.address()).containsExactlyInAnyOrder(BASE + SIZE,
                BASE + 2L * SIZE);
        assertThat(catchDma(() -> dma.withSegment(BASE, 8, Access.READ, s -> 0)).errno()).isEqualTo(Errno.EFAULT);

        leave.countDown();
        assertThat(first.get(TIMEOUT_SECONDS, TimeUnit.SECONDS)).isEqualTo(pattern(0));
        assertThat(second.get(TIMEOUT_SECONDS, TimeUnit.SECONDS)).isEqualTo(pattern(4096));
        // the last access released the mapping before it returned: unmapped, fd closed, listener told
        assertClosed(busyFd);
        assertThat(seen.get().scope().isAlive()).isFalse();
        assertThat(listener.unmapped()).hasSize(3);
    }

    @Test
    void unmapAllWaitsForEveryAccessInFlight() throws Exception {
        await(table.map(BASE, SIZE, 0, RW, memfd(SIZE)));
        await(table.map(BASE + SIZE, SIZE, 0, RW, memfd(SIZE)));
        CountDownLatch inside = new CountDownLatch(1);
        CountDownLatch leave = new CountDownLatch(1);
        Future<Byte> access = blockedAccess(BASE + SIZE, inside, leave, new AtomicReference<>());
        assertThat(inside.await(TIMEOUT_SECONDS, TimeUnit.SECONDS)).isTrue();

        CompletableFuture<Void> all = table.unmap(0, 0, 0x2);
        assertThat(all).isNotDone();
        assertThat(listener.unmapped()).hasSize(1);
        leave.countDown();
        access.get(TIMEOUT_SECONDS, TimeUnit.SECONDS);
        await(all);
        assertThat(listener.unmapped()).hasSize(2);
    }

    @Test
    void readAndWriteCountAsAccessesInFlight() throws Exception {
        await(table.map(BASE, SIZE, 0, RW, memfd(SIZE)));
        Mapping m = table.find(BASE);
        CountDownLatch inside = new CountDownLatch(1);
        CountDownLatch leave = new CountDownLatch(1);
        Future<Byte> access = blockedAccess(BASE, inside, leave, new AtomicReference<>());
        assertThat(inside.await(TIMEOUT_SECONDS, TimeUnit.SECONDS)).isTrue();
        await(dma.read(BASE, ByteBuffer.allocate(64)));
        assertThat(m.inFlight()).isEqualTo(1);
        leave.countDown();
        access.get(TIMEOUT_SECONDS, TimeUnit.SECONDS);
        assertThat(m.inFlight()).isZero();
    }

    @Test
    void manyDevicesRacingManyUnmapsNeverTouchUnmappedMemory() throws Exception {
        int threads = 4;
        int rounds = 50; // each unmap closes a shared arena: a handshake with every thread
        AtomicBoolean stop = new AtomicBoolean();
        AtomicLong ok = new AtomicLong();
        AtomicLong refused = new AtomicLong();
        List<Future<?>> workers = new ArrayList<>();
        for (int t = 0; t < threads; t++) {
            workers.add(devices.submit(() -> {
                ByteBuffer buffer = ByteBuffer.allocateDirect(256);
                while (!stop.get()) {
                    try {
                        dma.withSegment(BASE + 512, 256, Access.WRITE, s -> {
                            s.fill((byte) 1);
                            return s.get(ValueLayout.JAVA_LONG_UNALIGNED, 8);
                        });
                        buffer.clear();
                        dma.read(BASE, buffer).join();
                        ok.incrementAndGet();
                    } catch (DmaException | java.util.concurrent.CompletionException e) {
                        refused.incrementAndGet();
                    }
                }
                return null;
            }));
        }
        for (int r = 0; r < rounds; r++) {
            await(table.map(BASE, 4096, 0, RW, memfd(4096)));
            await(table.unmap(BASE, 4096, 0));
        }
        stop.set(true);
        for (Future<?> w : workers) {
            w.get(TIMEOUT_SECONDS, TimeUnit.SECONDS);
        }
        assertThat(ok.get() + refused.get()).isPositive();
        assertThat(listener.unmapped()).hasSize(rounds);
    }
}
