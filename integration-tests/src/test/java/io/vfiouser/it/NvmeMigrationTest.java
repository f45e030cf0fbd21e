package io.vfiouser.it;

import static io.vfiouser.it.Wire.errno;
import static org.assertj.core.api.Assertions.assertThat;

import io.vfiouser.client.GuestMemory;
import io.vfiouser.client.MigrationDriver;
import io.vfiouser.client.VfioUserClient;
import io.vfiouser.codec.VfioUserCommand;
import io.vfiouser.codec.payload.DmaMapRequest;
import io.vfiouser.examples.nvme.DoorbellMode;
import io.vfiouser.examples.nvme.NvmeDevice;
import io.vfiouser.examples.nvme.NvmeOptions;
import io.vfiouser.it.NvmeHostDriver.Cqe;
import io.vfiouser.it.NvmeHostDriver.Queue;
import io.vfiouser.transport.FdSet;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * An NVMe controller migrated in the middle of a write workload: the host keeps writes in flight on an I/O queue
 * (and an Asynchronous Event Request parked) while the driver stops the source, moves the controller's state and
 * guest memory, and starts the destination on the same namespace file (shared storage). The host then carries on
 * against the destination. Every submitted command completes exactly once, on one side or the other, and every
 * write is in the namespace afterwards.
 */
class NvmeMigrationTest {
    static final long RAM = 0x2_0000_0000L;
    static final int RAM_SIZE = 16 << 20;
    static final long NS_SIZE = 16 << 20;
    private static final int WRITES = 300;
    private static final int BLOCKS = 8; // 4 KiB per write
    /** The source sees at most this many writes submitted by the workload (then 16 more just before the stop). */
    private static final int MIDPOINT = WRITES / 2;

    @TempDir
    Path dir;

    /** The host's view of what it submitted and what completed. */
    private static final class Ledger {
        final Map<Integer, Integer> outstanding = new HashMap<>(); // cid -> write number
        volatile int completed; // polled by the main thread while the workload runs

        void submitted(int cid, int write) {
            assertThat(outstanding.put(cid, write)).as("cid %d reused while outstanding", cid).isNull();
        }

        void completed(Cqe c) {
            assertThat(c.status()).as("status of cid %d", c.cid()).isZero();
            assertThat(outstanding.remove(c.cid())).as("cid %d completes once, and was submitted", c.cid())
                    .isNotNull();
            completed++;
        }
    }

    private static void fill(MemorySegment data, int write) {
        for (long i = 0; i < data.byteSize(); i += 8) {
            data.set(ValueLayout.JAVA_LONG_UNALIGNED, i, (long) write << 32 | i);
        }
    }

    @Test
    void noCompletedWriteIsLostAndEveryCommandCompletesExactlyOnce() throws Exception {
        migrateMidWorkload(DoorbellMode.WRITE);
    }

    /**
     * The same with shadow doorbells: the pages' addresses travel with the controller state, and the destination
     * reads the host's shadow values (which came with guest memory) and publishes its EventIdx anew.
     */
    @Test
    void withShadowDoorbellsTheDestinationCarriesOnFromTheShadowPage() throws Exception {
        migrateMidWorkload(DoorbellMode.SHADOW);
    }

    /**
     * The same with the doorbell page mmappable (the driver's doorbell messages land in the source's page, where
     * its watcher sees them): the page does not travel, so the destination watches its own page from the queue
     * positions that came with the state, and the host's doorbells there are seen as changes from them.
     */
    @Test
    void withMmapDoorbellsTheDestinationWatchesItsPageFromTheMigratedPositions() throws Exception {
        migrateMidWorkload(DoorbellMode.MMAP);
    }

    private void migrateMidWorkload(DoorbellMode mode) throws Exception {
        Path backing = dir.resolve("ns.img");
        NvmeDevice sourceDevice = new NvmeDevice("src", new NvmeOptions(backing, NS_SIZE, mode));
        try (GuestMemory sourceRam = GuestMemory.allocate(RAM, RAM_SIZE);
             GuestMemory destinationRam = GuestMemory.allocate(RAM, RAM_SIZE);
             ServerFixture source = new ServerFixture(sourceDevice.description(), sourceDevice)) {
            // Both controllers on the same file: shared storage. The fixtures close the devices.
            NvmeDevice destinationDevice = new NvmeDevice("dst", new NvmeOptions(backing, NS_SIZE, mode));
            ServerFixture destination = new ServerFixture(destinationDevice.description(), destinationDevice);
            try {
                run(source.client(), destination.client(), sourceRam, destinationRam, backing,
                        mode == DoorbellMode.SHADOW);
            } finally {
                destination.closeNested();
            }
        }
    }

    /** The scenario over two connected clients of NVMe devices on {@code backing}, with guest memory at RAM. */
    static void run(VfioUserClient sourceClient, VfioUserClient destinationClient, GuestMemory sourceRam,
            GuestMemory destinationRam, Path backing) throws Exception {
        run(sourceClient, destinationClient, sourceRam, destinationRam, backing, false);
    }

    /** The scenario; with {@code shadow}, the host uses shadow doorbells from before the workload. */
    static void run(VfioUserClient sourceClient, VfioUserClient destinationClient, GuestMemory sourceRam,
            GuestMemory destinationRam, Path backing, boolean shadow) throws Exception {
        assertThat(errno(sourceClient, VfioUserCommand.DMA_MAP, DmaMapRequest.of(3, 0, RAM, RAM_SIZE),
                FdSet.of(sourceRam.dupFd()))).isZero();
        assertThat(errno(destinationClient, VfioUserCommand.DMA_MAP, DmaMapRequest.of(3, 0, RAM, RAM_SIZE),
                FdSet.of(destinationRam.dupFd()))).isZero();
        Ledger ledger = new Ledger();
        long[] buffers = new long[WRITES];
        NvmeHostDriver host = new NvmeHostDriver(sourceClient, sourceRam);
        NvmeHostDriver moved = null;
        try {
            host.enableMsix(2);
            Queue admin = host.enable(16);
            host.createIoQueues(1, 64);
            if (shadow) {
                assertThat(host.configureShadowDoorbells().status()).as("Doorbell Buffer Config").isZero();
            }
            Queue io = host.queue(1);
            for (int w = 0; w < WRITES; w++) {
                buffers[w] = host.alloc(BLOCKS * 512);
                fill(host.at(buffers[w], BLOCKS * 512), w);
            }
            int aer = host.submit(admin, NvmeHostDriver.Sqe.of(0x0C, 0));

            // The workload: writes with up to 48 in flight, up to the midpoint, until the guest is stopped.
            AtomicBoolean stop = new AtomicBoolean();
            AtomicReference<Throwable> failure = new AtomicReference<>();
            int[] nextWrite = {0};
            Thread workload = new Thread(() -> {
                try {
                    while (!stop.get()) {
                        while (io.room() > 0 && ledger.outstanding.size() < 48 && nextWrite[0] < MIDPOINT) {
                            int w = nextWrite[0]++;
                            ledger.submitted(host.post(io, NvmeHostDriver.io(0x01, (long) w * BLOCKS, BLOCKS,
                                    buffers[w], 0)), w);
                        }
                        host.ring(io);
                        while (host.hasCompletion(io)) {
                            ledger.completed(host.next(io));
                        }
                    }
                } catch (Throwable t) {
                    failure.set(t);
                }
            }, "nvme-workload");
            workload.start();
            MigrationDriver driver = new MigrationDriver(sourceClient, destinationClient,
                    List.of(new MigrationDriver.MemoryPair(sourceRam, destinationRam)),
                    MigrationDriver.Options.DEFAULT.withCopyAllWhenStopped(true));
            MigrationDriver.Report report = driver.migrate(() -> {
                NvmeHostDriver.await("the workload is mid-way", () -> ledger.completed >= WRITES / 3
                        || failure.get() != null);
                stop.set(true);
                try {
                    workload.join();
                    // The last act of the guest: a batch the host never waits for on this side. At the stop these
                    // are in flight, completed but not consumed, or not fetched yet.
                    for (int i = 0; i < 16 && io.room() > 0; i++) {
                        int w = nextWrite[0]++;
                        ledger.submitted(host.post(io, NvmeHostDriver.io(0x01, (long) w * BLOCKS, BLOCKS,
                                buffers[w], 0)), w);
                    }
                    host.ring(io);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                } catch (Exception e) {
                    failure.set(e);
                }
            });
            assertThat(failure.get()).as("the workload").isNull();
            assertThat(report.stopCopyBytes()).isPositive();
            int completedOnSource = ledger.completed;
            int outstandingAtStop = ledger.outstanding.size();
            assertThat(outstandingAtStop).as("writes the host had not seen complete at the stop")
                    .isGreaterThanOrEqualTo(16);
            assertThat(nextWrite[0]).as("mid-way").isLessThan(WRITES);

            // The host carries on against the destination.
            moved = host.migratedTo(destinationClient, destinationRam);
            moved.assignVectors(2);
            while (nextWrite[0] < WRITES || !ledger.outstanding.isEmpty()) {
                while (io.room() > 0 && ledger.outstanding.size() < 48 && nextWrite[0] < WRITES) {
                    int w = nextWrite[0]++;
                    ledger.submitted(moved.post(io, NvmeHostDriver.io(0x01, (long) w * BLOCKS, BLOCKS, buffers[w],
                            0)), w);
                }
                moved.ring(io);
                ledger.completed(moved.next(io));
                while (moved.hasCompletion(io)) {
                    ledger.completed(moved.next(io));
                }
            }
            assertThat(ledger.completed).as("every write completed once").isEqualTo(WRITES);
            assertThat(completedOnSource).isLessThan(WRITES);

            // The parked event request migrated: an invalid doorbell on the destination completes it (a tail past
            // the end of the admin SQ: shadow doorbells leave the admin queue's alone, and mmapped doorbells are
            // watched for the queues that exist only).
            moved.doorbell(0, 16);
            Cqe event = moved.next(admin);
            assertThat(event.cid()).as("the AER submitted to the source").isEqualTo(aer);

            // Every write is in the namespace: read them back through the destination.
            long readBuffer = moved.alloc(BLOCKS * 512);
            for (int w = 0; w < WRITES; w++) {
                moved.ok(io, NvmeHostDriver.io(0x02, (long) w * BLOCKS, BLOCKS, readBuffer, 0));
                MemorySegment expected = MemorySegment.ofArray(new byte[BLOCKS * 512]);
                fill(expected, w);
                assertThat(moved.at(readBuffer, BLOCKS * 512).mismatch(expected)).as("write %d", w).isEqualTo(-1);
            }
            assertThat(Files.size(backing)).isEqualTo(NS_SIZE);
        } finally {
            host.close();
            if (moved != null) {
                moved.close();
            }
        }
    }
}
