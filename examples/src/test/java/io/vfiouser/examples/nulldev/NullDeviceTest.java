package io.vfiouser.examples.nulldev;

import static org.assertj.core.api.Assertions.assertThat;

import io.vfiouser.device.DeviceDescription;
import io.vfiouser.device.IrqType;
import io.vfiouser.device.MmapArea;
import io.vfiouser.device.Region;
import io.vfiouser.device.ResetReason;
import io.vfiouser.device.pci.MsixCapability;
import io.vfiouser.device.pci.PciExpressCapability;
import io.vfiouser.device.pci.PowerManagementCapability;
import io.vfiouser.examples.FakeDeviceContext;
import io.vfiouser.examples.nulldev.NullDevice.Access;
import io.vfiouser.examples.nulldev.NullDevice.Kind;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

class NullDeviceTest {
    private static final long GUEST_BASE = 0x1_0000_0000L;
    private static final int GUEST_SIZE = 4 << 20;

    private ExecutorService executor;
    private ByteArrayDmaSpace dma;
    private FakeDeviceContext context;
    private NullDevice device;

    @BeforeEach
    void setUp() {
        executor = Executors.newSingleThreadExecutor();
        dma = new ByteArrayDmaSpace(GUEST_BASE, GUEST_SIZE, executor);
        context = new FakeDeviceContext("null", dma).enable(IrqType.MSIX, NullDevice.MSIX_VECTORS);
        device = new NullDevice();
        device.attached(context);
    }

    @AfterEach
    void tearDown() throws InterruptedException {
        executor.shutdown();
        assertThat(executor.awaitTermination(10, TimeUnit.SECONDS)).isTrue();
    }

    @Test
    void descriptionBuildsWithTheAdvertisedResources() {
        DeviceDescription d = NullDevice.description("null");

        assertThat(d.name()).isEqualTo("null");
        assertThat(d.identity().vendorId()).isEqualTo(0x4a56);
        assertThat(d.identity().deviceId()).isEqualTo(0x0001);
        assertThat(d.identity().classCode()).isEqualTo(0xff0000);
        assertThat(d.regions()).extracting(Region::index).containsExactly(0, 2, 4);

        Region bar0 = d.region(0).orElseThrow();
        assertThat(bar0.size()).isEqualTo(4096);
        assertThat(bar0.memoryBacked()).isFalse();
        assertThat(bar0.io()).isFalse();

        Region bar2 = d.region(2).orElseThrow();
        assertThat(bar2.size()).isEqualTo(1 << 20);
        assertThat(bar2.bits64()).isTrue();
        assertThat(bar2.memoryBacked()).isTrue();
        assertThat(bar2.mmapAreas()).containsExactly(new MmapArea(512 << 10, 512 << 10));
        assertThat(d.region(3)).isEmpty();

        Region bar4 = d.region(4).orElseThrow();
        assertThat(bar4.size()).isEqualTo(4096);
        assertThat(bar4.memoryBacked()).isFalse();

        MsixCapability msix = d.msixCapability().orElseThrow();
        assertThat(msix.vectors()).isEqualTo(4);
        assertThat(msix.tableBar()).isEqualTo(4);
        assertThat(msix.tableOffset()).isZero();
        assertThat(msix.pbaBar()).isEqualTo(4);
        assertThat(msix.pbaOffset()).isEqualTo(2048);
        assertThat(d.capabilities()).contains(PciExpressCapability.ENDPOINT, PowerManagementCapability.DEFAULT);
        assertThat(d.isExpress()).isTrue();
        assertThat(d.configSpaceSize()).isEqualTo(4096);
        assertThat(d.irqCount(IrqType.MSIX)).isEqualTo(4);
        assertThat(d.irqCount(IrqType.INTX)).isZero();
        assertThat(d.irqCount(IrqType.MSI)).isZero();
    }

    @Test
    void scratchHoldsSixtyFourBitsAndPartialAccesses() {
        write(NullDevice.SCRATCH, 8, 0x0123_4567_89ab_cdefL);
        assertThat(read(NullDevice.SCRATCH, 8)).isEqualTo(0x0123_4567_89ab_cdefL);

        write(NullDevice.SCRATCH + 4, 4, 0xdead_beefL);
        assertThat(read(NullDevice.SCRATCH, 8)).isEqualTo(0xdead_beef_89ab_cdefL);
        assertThat(read(NullDevice.SCRATCH, 4)).isEqualTo(0x89ab_cdefL);
        assertThat(read(NullDevice.SCRATCH + 6, 2)).isEqualTo(0xdeadL);
        write(NullDevice.SCRATCH + 1, 1, 0x55);
        assertThat(read(NullDevice.SCRATCH, 8)).isEqualTo(0xdead_beef_89ab_55efL);
        assertThat(device.scratch()).isEqualTo(0xdead_beef_89ab_55efL);
    }

    @Test
    void doorbellFiresTheWrittenMsixVector() {
        write(NullDevice.DOORBELL, 4, 2);
        write(NullDevice.DOORBELL, 4, 0);
        write(NullDevice.DOORBELL, 8, 3);
        write(NullDevice.DOORBELL, 1, 1);

        assertThat(context.events()).containsExactly("msix 2", "msix 0", "msix 3", "msix 1");
        assertThat(read(NullDevice.DOORBELL, 4)).isZero();
    }

    @Test
    void doorbellIgnoresVectorsTheDeviceDoesNotHave() {
        write(NullDevice.DOORBELL, 4, 4);
        write(NullDevice.DOORBELL, 4, 0xffff_ffffL);
        write(NullDevice.DOORBELL + 4, 4, 1);       // upper half only: not a ring

        assertThat(context.events()).isEmpty();
    }

    @Test
    void dmaEngineCopiesBetweenGuestAddresses() {
        byte[] source = randomBytes(3 * NullDevice.DMA_CHUNK + 5, 1);
        System.arraycopy(source, 0, dma.bytes(), 0, source.length);
        long dst = GUEST_BASE + 3 * NullDevice.DMA_CHUNK + 4096;
        int length = GUEST_SIZE - (3 * NullDevice.DMA_CHUNK + 4096);

        program(GUEST_BASE, dst, length);
        CompletableFuture<Void> start = startWrite(NullDevice.CTRL_START);
        start.join();

        assertThat(read(NullDevice.DMA_STATUS, 8)).isEqualTo(NullDevice.STATUS_DONE);
        assertThat(slice(dma.bytes(), (int) (dst - GUEST_BASE), length)).isEqualTo(slice(source, 0, length));
        assertThat(dma.reads()).as("chunks of 1 MiB").isEqualTo(1);
        assertThat(context.events()).isEmpty();
    }

    @Test
    void largeCopiesGoInChunks() {
        byte[] source = randomBytes(NullDevice.DMA_CHUNK + 100, 2);
        System.arraycopy(source, 0, dma.bytes(), 0, source.length);
        long dst = GUEST_BASE + 2 * NullDevice.DMA_CHUNK;

        program(GUEST_BASE, dst, source.length);
        startWrite(NullDevice.CTRL_START).join();

        assertThat(device.dmaStatus()).isEqualTo(NullDevice.STATUS_DONE);
        assertThat(slice(dma.bytes(), 2 * NullDevice.DMA_CHUNK, source.length)).isEqualTo(source);
        assertThat(dma.reads()).isEqualTo(2);
        assertThat(dma.writes()).isEqualTo(2);
    }

    @Test
    void overlappingCopiesBehaveLikeMemmove() {
        int length = NullDevice.DMA_CHUNK + 4096;
        byte[] source = randomBytes(length, 3);
        System.arraycopy(source, 0, dma.bytes(), 0, length);

        program(GUEST_BASE, GUEST_BASE + 4096, length);          // forwards overlap: copied from the end
        startWrite(NullDevice.CTRL_START).join();
        assertThat(slice(dma.bytes(), 4096, length)).isEqualTo(source);

        program(GUEST_BASE + 4096, GUEST_BASE + 100, length);    // backwards overlap: copied from the start
        startWrite(NullDevice.CTRL_START).join();
        assertThat(slice(dma.bytes(), 100, length)).isEqualTo(source);
        assertThat(device.dmaStatus()).isEqualTo(NullDevice.STATUS_DONE);
    }

    @Test
    void theStartWriteCompletesOnlyWhenTheCopyIsDone() {
        dma.bytes()[0] = 42;
        dma.holdWrites();
        program(GUEST_BASE, GUEST_BASE + 64, 1);

        CompletableFuture<Void> start = startWrite(NullDevice.CTRL_START);

        assertThat(start).isNotDone();
        assertThat(device.quiesce()).isNotDone();
        dma.releaseWrites();
        start.join();
        assertThat(dma.bytes()[64]).isEqualTo((byte) 42);
        assertThat(device.dmaStatus()).isEqualTo(NullDevice.STATUS_DONE);
        assertThat(device.quiesce()).isDone();
    }

    @Test
    void completionInterruptFiresTheVectorInControlBits() {
        program(GUEST_BASE, GUEST_BASE + 4096, 16);

        startWrite(NullDevice.CTRL_START | NullDevice.CTRL_IRQ | (3L << NullDevice.CTRL_VECTOR_SHIFT)).join();

        assertThat(context.events()).containsExactly("msix 3");
    }

    @Test
    void unmappedSourceReportsEfault() {
        program(GUEST_BASE + GUEST_SIZE - 8, GUEST_BASE, 16);

        startWrite(NullDevice.CTRL_START | NullDevice.CTRL_IRQ | (1L << NullDevice.CTRL_VECTOR_SHIFT)).join();

        assertThat(read(NullDevice.DMA_STATUS, 8)).isEqualTo(ByteArrayDmaSpace.EFAULT);
        assertThat(context.events()).as("completion interrupt on failure too").containsExactly("msix 1");
    }

    @Test
    void unmappedDestinationReportsEfault() {
        program(GUEST_BASE, 0x1000, 16);

        startWrite(NullDevice.CTRL_START).join();

        assertThat(device.dmaStatus()).isEqualTo(ByteArrayDmaSpace.EFAULT);
    }

    @Test
    void tooLongAndWrappingCopiesReportEinval() {
        program(GUEST_BASE, GUEST_BASE, NullDevice.MAX_DMA_LENGTH + 1);
        startWrite(NullDevice.CTRL_START).join();
        assertThat(device.dmaStatus()).isEqualTo(NullDevice.EINVAL);

        program(-16L, GUEST_BASE, 32);
        startWrite(NullDevice.CTRL_START).join();
        assertThat(device.dmaStatus()).isEqualTo(NullDevice.EINVAL);
        assertThat(dma.reads()).isZero();
    }

    @Test
    void aCopyWithoutClientReportsEio() {
        device.detached();
        program(GUEST_BASE, GUEST_BASE + 64, 8);

        startWrite(NullDevice.CTRL_START).join();

        assertThat(device.dmaStatus()).isEqualTo(NullDevice.EIO);
    }

    @Test
    void zeroLengthCopyIsDoneAtOnceAndControlWithoutStartDoesNothing() {
        assertThat(device.dmaStatus()).isEqualTo(NullDevice.STATUS_IDLE);
        program(GUEST_BASE, GUEST_BASE + 64, 0);

        startWrite(0).join();
        assertThat(device.dmaStatus()).isEqualTo(NullDevice.STATUS_IDLE);

        startWrite(NullDevice.CTRL_START).join();
        assertThat(device.dmaStatus()).isEqualTo(NullDevice.STATUS_DONE);
        assertThat(read(NullDevice.DMA_CTRL, 8)).isZero();
        assertThat(read(NullDevice.DMA_SRC, 8)).isEqualTo(GUEST_BASE);
        assertThat(read(NullDevice.DMA_DST, 8)).isEqualTo(GUEST_BASE + 64);
        assertThat(read(NullDevice.DMA_LEN, 8)).isZero();
    }

    @Test
    void readOnlyAndUnusedOffsetsIgnoreWrites() {
        write(NullDevice.DMA_STATUS, 8, 99);
        write(NullDevice.ACCESS_COUNT, 8, 1000);
        write(0x40, 4, 0xffff_ffffL);
        write(0xff8, 8, -1L);

        assertThat(read(NullDevice.DMA_STATUS, 8)).isZero();
        assertThat(read(0x40, 4)).isZero();
        assertThat(read(0xff8, 8)).isZero();
        assertThat(read(NullDevice.ACCESS_COUNT, 8)).isEqualTo(8);
        assertThat(context.events()).isEmpty();
    }

    @Test
    void accessesAreCountedAndLogged() {
        write(NullDevice.SCRATCH, 8, 0x1122_3344_5566_7788L);
        read(NullDevice.SCRATCH + 4, 4);
        write(NullDevice.DOORBELL, 4, 1);
        long count = read(NullDevice.ACCESS_COUNT, 8);

        assertThat(count).isEqualTo(4);
        assertThat(device.accessCount()).isEqualTo(4);
        assertThat(device.accesses()).containsExactly(
                new Access(1, Kind.WRITE, 0x00, 8, 0x1122_3344_5566_7788L),
                new Access(2, Kind.READ, 0x04, 4, 0x1122_3344L),
                new Access(3, Kind.WRITE, 0x08, 4, 1),
                new Access(4, Kind.READ, 0x38, 8, 4));

        device.clearAccesses();
        assertThat(device.accesses()).isEmpty();
        assertThat(read(NullDevice.ACCESS_COUNT, 8)).as("clearing the log keeps the counter").isEqualTo(5);
        assertThat(device.accesses()).containsExactly(new Access(5, Kind.READ, 0x38, 8, 5));
    }

    @Test
    void otherRegionsAreNotLogged() {
        ByteBuffer b = ByteBuffer.allocate(8);
        device.regionRead(NullDevice.MSIX_BAR, 1024, b).join();
        device.regionWrite(NullDevice.MSIX_BAR, 1024, ByteBuffer.allocate(8)).join();

        assertThat(b.getLong(0)).isZero();
        assertThat(device.accesses()).isEmpty();
        assertThat(device.accessCount()).isZero();
    }

    @Test
    void theLogKeepsOnlyTheNewestEntries() {
        NullDevice small = new NullDevice(3);
        for (int i = 0; i < 5; i++) {
            ByteBuffer b = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(0, i);
            small.regionWrite(0, NullDevice.SCRATCH, b).join();
        }

        assertThat(small.accesses()).extracting(Access::sequence).containsExactly(3L, 4L, 5L);
        assertThat(small.accesses()).extracting(Access::value).containsExactly(2L, 3L, 4L);
        assertThat(small.accessCount()).isEqualTo(5);
    }

    @Test
    void theLogCanBeReadWhileTheDeviceIsAccessed() throws Exception {
        int perThread = 6000;
        ExecutorService pool = Executors.newFixedThreadPool(4);
        try {
            List<CompletableFuture<Void>> jobs = new ArrayList<>();
            for (int t = 0; t < 3; t++) {
                jobs.add(CompletableFuture.runAsync(() -> {
                    for (int i = 0; i < perThread; i++) {
                        read(NullDevice.SCRATCH, 8);
                    }
                }, pool));
            }
            jobs.add(CompletableFuture.runAsync(() -> {
                for (int i = 0; i < 200; i++) {
                    List<Access> snapshot = device.accesses();
                    assertThat(snapshot.size()).isLessThanOrEqualTo(NullDevice.DEFAULT_LOG_CAPACITY);
                }
            }, pool));
            CompletableFuture.allOf(jobs.toArray(CompletableFuture[]::new)).get(30, TimeUnit.SECONDS);
        } finally {
            pool.shutdownNow();
        }

        assertThat(device.accessCount()).isEqualTo(3L * perThread);
        List<Access> log = device.accesses();
        assertThat(log).hasSize(NullDevice.DEFAULT_LOG_CAPACITY);
        assertThat(log.getLast().sequence()).isEqualTo(3L * perThread);
    }

    @Test
    void resetClearsRegistersButKeepsTheLog() {
        write(NullDevice.SCRATCH, 8, 7);
        program(GUEST_BASE, GUEST_BASE + 64, 8);
        startWrite(NullDevice.CTRL_START).join();

        device.reset(ResetReason.CLIENT_REQUEST).join();

        assertThat(device.scratch()).isZero();
        assertThat(device.dmaStatus()).isEqualTo(NullDevice.STATUS_IDLE);
        assertThat(device.accessCount()).isZero();
        assertThat(read(NullDevice.DMA_LEN, 8)).isZero();
        assertThat(device.accesses()).hasSize(6);
    }

    @Test
    void resetWaitsForTheCopyInFlight() {
        dma.holdWrites();
        program(GUEST_BASE, GUEST_BASE + 64, 8);
        CompletableFuture<Void> start = startWrite(NullDevice.CTRL_START);

        CompletableFuture<Void> reset = device.reset(ResetReason.LOST_CONNECTION);

        assertThat(reset).isNotDone();
        dma.releaseWrites();
        start.join();
        reset.join();
        assertThat(device.dmaStatus()).isEqualTo(NullDevice.STATUS_IDLE);
    }

    private void program(long src, long dst, long length) {
        write(NullDevice.DMA_SRC, 8, src);
        write(NullDevice.DMA_DST, 8, dst);
        write(NullDevice.DMA_LEN, 8, length);
    }

    private CompletableFuture<Void> startWrite(long ctrl) {
        return device.regionWrite(0, NullDevice.DMA_CTRL, le(4, ctrl));
    }

    private long read(long offset, int size) {
        ByteBuffer b = ByteBuffer.allocate(size).order(ByteOrder.LITTLE_ENDIAN);
        device.regionRead(0, offset, b).join();
        assertThat(b.hasRemaining()).isFalse();
        long v = 0;
        for (int i = 0; i < size; i++) {
            v |= (b.get(i) & 0xffL) << (8 * i);
        }
        return v;
    }

    private void write(long offset, int size, long value) {
        device.regionWrite(0, offset, le(size, value)).join();
    }

    private static ByteBuffer le(int size, long value) {
        ByteBuffer b = ByteBuffer.allocate(size);
        for (int i = 0; i < size; i++) {
            b.put((byte) (value >>> (8 * i)));
        }
        return b.flip();
    }

    private static byte[] randomBytes(int n, long seed) {
        byte[] b = new byte[n];
        new Random(seed).nextBytes(b);
        return b;
    }

    private static byte[] slice(byte[] b, int from, int length) {
        byte[] out = new byte[length];
        System.arraycopy(b, from, out, 0, length);
        return out;
    }
}
