package io.vfiouser.it;

import static io.vfiouser.it.Wire.errno;
import static org.assertj.core.api.Assertions.assertThat;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.vfiouser.client.DeviceMigration;
import io.vfiouser.client.GuestMemory;
import io.vfiouser.client.VfioUserClient;
import io.vfiouser.codec.VfioUserCommand;
import io.vfiouser.codec.VfioUserMessage;
import io.vfiouser.codec.payload.DeviceFeature;
import io.vfiouser.codec.payload.DmaLoggingControl;
import io.vfiouser.codec.payload.DmaLoggingReport;
import io.vfiouser.codec.payload.DmaMapRequest;
import io.vfiouser.codec.payload.DmaUnmapReply;
import io.vfiouser.codec.payload.DmaUnmapRequest;
import io.vfiouser.codec.payload.RegionAccess;
import io.vfiouser.examples.nulldev.NullDevice;
import io.vfiouser.transport.FdSet;
import java.util.BitSet;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Dirty-page logging through the socket (digest 3.3, 3.16): DMA_LOGGING_START/STOP/REPORT and the legacy bitmap of
 * DMA_UNMAP, their refusals, and bitmaps that hold exactly the pages the device wrote through its DMA space.
 */
class DirtyLoggingTest {
    private static final int EINVAL = 22;
    private static final int ENOENT = 2;
    private static final int ENOTSUP = 95;
    private static final long RAM = 0x4000_0000L;
    private static final int RAM_SIZE = 4 << 20;
    private static final long MSG = 0x8000_0000L;
    private static final int PAGE = 4096;

    private ServerFixture fixture;
    private VfioUserClient client;
    private DeviceMigration migration;
    private GuestMemory ram;

    @BeforeEach
    void start() throws Exception {
        ram = GuestMemory.allocate(RAM, RAM_SIZE); // before the fixture, which checks for fds left open
        fixture = new ServerFixture();
        client = fixture.client();
        migration = new DeviceMigration(client);
        assertThat(errno(client, VfioUserCommand.DMA_MAP, DmaMapRequest.of(3, 0, RAM, RAM_SIZE),
                FdSet.of(ram.dupFd()))).isZero();
        client.serveDma(ram); // not used for RAM itself (it has an fd)
    }

    @AfterEach
    void stop() throws Exception {
        try {
            fixture.close();
        } finally {
            ram.close();
        }
    }

    private int logging(int feature, long pageSize) throws Exception {
        return errno(client, VfioUserCommand.DEVICE_FEATURE, DeviceFeature.of(DeviceFeature.SET | feature,
                new DmaLoggingControl(pageSize, List.of(new DmaLoggingControl.Range(RAM, RAM_SIZE))).encode()));
    }

    private int report(long iova, long length, long pageSize) throws Exception {
        long bitmap = Math.max(0, DmaLoggingReport.bitmapSize(length, pageSize));
        return errno(client, VfioUserCommand.DEVICE_FEATURE, new DeviceFeature((int) (32 + bitmap),
                DeviceFeature.GET | DeviceFeature.FEATURE_DMA_LOGGING_REPORT,
                new DmaLoggingReport(iova, length, pageSize).encode()));
    }

    private BitSet dirty(long iova, long length, long pageSize) throws Exception {
        return BitSet.valueOf(migration.dirtyReport(iova, length, pageSize).get(20, TimeUnit.SECONDS));
    }

    private void register(int offset, long value) throws Exception {
        assertThat(errno(client, VfioUserCommand.REGION_WRITE,
                RegionAccess.inRegion(0).atOffset(offset).data(Unpooled.buffer(8).writeLongLE(value)))).isZero();
    }

    /** The null device's DMA engine copies {@code length} bytes from {@code src} to {@code dst}. */
    private void deviceCopy(long src, long dst, long length) throws Exception {
        register(NullDevice.DMA_SRC, src);
        register(NullDevice.DMA_DST, dst);
        register(NullDevice.DMA_LEN, length);
        register(NullDevice.DMA_CTRL, NullDevice.CTRL_START);
        Wire.ok(client, VfioUserCommand.REGION_READ,
                RegionAccess.inRegion(0).atOffset(NullDevice.DMA_STATUS).count(8), r -> {
            ByteBuf d = r.payload(RegionAccess.class).data();
            assertThat(d.getLongLE(d.readerIndex())).as("copy status").isEqualTo(NullDevice.STATUS_DONE);
        });
    }

    private static BitSet pages(long first, long last) {
        BitSet b = new BitSet();
        b.set((int) first, (int) last + 1);
        return b;
    }

    @Test
    void startStopAndReportRefuseWhatTheDigestRefuses() throws Exception {
        assertThat(report(RAM, RAM_SIZE, PAGE)).as("not logging").isEqualTo(EINVAL);
        assertThat(logging(DeviceFeature.FEATURE_DMA_LOGGING_START, 0)).isEqualTo(EINVAL);
        assertThat(logging(DeviceFeature.FEATURE_DMA_LOGGING_START, 3000)).isEqualTo(EINVAL);
        assertThat(logging(DeviceFeature.FEATURE_DMA_LOGGING_START, PAGE)).isZero();
        assertThat(logging(DeviceFeature.FEATURE_DMA_LOGGING_START, PAGE)).as("again, same page size").isZero();
        assertThat(logging(DeviceFeature.FEATURE_DMA_LOGGING_START, 2 * PAGE)).isEqualTo(EINVAL);
        assertThat(errno(client, VfioUserCommand.DMA_MAP, DmaMapRequest.of(3, 0, MSG, 1 << 20))).isZero();

        assertThat(report(RAM, RAM_SIZE, PAGE)).isZero();
        assertThat(report(RAM, 16L << 20, 1)).as("a bitmap (2 MiB) larger than one message").isEqualTo(EINVAL);
        assertThat(report(0x1000, PAGE, PAGE)).as("nothing mapped there").isEqualTo(ENOENT);
        assertThat(report(RAM + PAGE, PAGE, PAGE)).as("inside a mapping, not at its start").isEqualTo(ENOTSUP);
        assertThat(report(RAM, RAM_SIZE + PAGE, PAGE)).as("beyond the mapping").isEqualTo(ENOENT);
        assertThat(report(RAM, RAM_SIZE, 3000)).as("page size not a power of two").isEqualTo(EINVAL);
        assertThat(report(RAM, PAGE, 2 * PAGE)).as("page size above the length").isEqualTo(EINVAL);
        assertThat(report(MSG, 1 << 20, PAGE)).as("a mapping without fd").isEqualTo(EINVAL);
        assertThat(errno(client, VfioUserCommand.DEVICE_FEATURE, new DeviceFeature(32 + 8 * 16 - 1,
                DeviceFeature.GET | DeviceFeature.FEATURE_DMA_LOGGING_REPORT,
                new DmaLoggingReport(RAM, RAM_SIZE, PAGE).encode()))).as("argsz without room for the bitmap")
                .isEqualTo(EINVAL);
        assertThat(errno(client, VfioUserCommand.DEVICE_FEATURE, new DeviceFeature(64,
                DeviceFeature.GET | DeviceFeature.FEATURE_DMA_LOGGING_REPORT, Unpooled.buffer(16).writeZero(16))))
                .as("report data below 24 bytes").isEqualTo(EINVAL);

        assertThat(logging(DeviceFeature.FEATURE_DMA_LOGGING_STOP, 0)).isZero();
        assertThat(report(RAM, RAM_SIZE, PAGE)).as("stopped").isEqualTo(EINVAL);
        assertThat(logging(DeviceFeature.FEATURE_DMA_LOGGING_STOP, 0)).as("stopping twice").isZero();
        assertThat(logging(DeviceFeature.FEATURE_DMA_LOGGING_START, 2 * PAGE)).as("a new page size").isZero();
    }

    @Test
    void theReportHoldsExactlyThePagesTheDeviceWrote() throws Exception {
        assertThat(logging(DeviceFeature.FEATURE_DMA_LOGGING_START, PAGE)).isZero();
        assertThat(dirty(RAM, RAM_SIZE, PAGE)).as("nothing written yet").isEqualTo(new BitSet());

        deviceCopy(RAM, RAM + (2 << 20) + 100, 3 * PAGE); // bytes 100 into page 512 up to 100 into page 515
        deviceCopy(RAM, RAM + 7 * PAGE - 1, 2);           // the last byte of page 6, the first of page 7
        deviceCopy(RAM + PAGE, RAM + 1023L * PAGE, PAGE); // page 1023, the last
        BitSet expected = pages(512, 515);
        expected.or(pages(6, 7));
        expected.set(1023);
        assertThat(dirty(RAM, RAM_SIZE, PAGE)).isEqualTo(expected);
        assertThat(dirty(RAM, RAM_SIZE, PAGE)).as("a report clears what it reported").isEqualTo(new BitSet());

        // Other page sizes: larger pages OR the logged ones, smaller ones repeat them.
        deviceCopy(RAM, RAM + 5 * PAGE, 1);
        deviceCopy(RAM, RAM + (3 << 20), 1);
        assertThat(dirty(RAM, RAM_SIZE, 1 << 20)).isEqualTo(bits(0, 3));
        deviceCopy(RAM, RAM + 5 * PAGE, 1);
        assertThat(dirty(RAM, RAM_SIZE, 1024)).isEqualTo(pages(20, 23));

        // A report of the first part of the mapping leaves the rest for later.
        deviceCopy(RAM, RAM + 3, 1);
        deviceCopy(RAM, RAM + 9 * PAGE, 1);
        assertThat(dirty(RAM, 8 * PAGE, PAGE)).isEqualTo(pages(0, 0));
        assertThat(dirty(RAM, RAM_SIZE, PAGE)).isEqualTo(pages(9, 9));
    }

    private static BitSet bits(int... set) {
        BitSet b = new BitSet();
        for (int i : set) {
            b.set(i);
        }
        return b;
    }

    @Test
    void writesThroughDmaMessagesAreNotLoggedAndLaterMappingsAre() throws Exception {
        assertThat(logging(DeviceFeature.FEATURE_DMA_LOGGING_START, PAGE)).isZero();
        try (GuestMemory later = GuestMemory.allocate(0x6000_0000L, 1 << 20);
             GuestMemory viaMessages = GuestMemory.allocate(MSG, 1 << 20)) { // closed before the fixture
            client.serveDma(viaMessages);
            assertThat(errno(client, VfioUserCommand.DMA_MAP, DmaMapRequest.of(3, 0, later.iova(), 1 << 20),
                    FdSet.of(later.dupFd()))).isZero();
            assertThat(errno(client, VfioUserCommand.DMA_MAP, DmaMapRequest.of(3, 0, MSG, 1 << 20))).isZero();
            deviceCopy(RAM, later.iova() + 10 * PAGE, 2 * PAGE);
            deviceCopy(RAM, MSG + PAGE, PAGE);
            assertThat(dirty(later.iova(), 1 << 20, PAGE)).isEqualTo(pages(10, 11));
            assertThat(dirty(RAM, RAM_SIZE, PAGE)).as("only read").isEqualTo(new BitSet());
            assertThat(errno(client, VfioUserCommand.DMA_UNMAP, DmaUnmapRequest.of(0, later.iova(), 1 << 20)))
                    .isZero();
            assertThat(errno(client, VfioUserCommand.DMA_UNMAP, DmaUnmapRequest.of(0, MSG, 1 << 20))).isZero();
        }
    }

    @Test
    void unmapWithGetDirtyBitmapReturnsTheLogOfTheMappingItRemoves() throws Exception {
        int withBitmap = DmaUnmapRequest.FLAG_GET_DIRTY_BITMAP;
        long bitmapSize = DmaLoggingReport.bitmapSize(RAM_SIZE, PAGE);
        DmaUnmapRequest request = new DmaUnmapRequest((int) (40 + bitmapSize), withBitmap, RAM, RAM_SIZE, PAGE,
                bitmapSize);
        assertThat(errno(client, VfioUserCommand.DMA_UNMAP, request)).as("not logging").isEqualTo(EINVAL);
        assertThat(logging(DeviceFeature.FEATURE_DMA_LOGGING_START, PAGE)).isZero();
        assertThat(errno(client, VfioUserCommand.DMA_UNMAP, new DmaUnmapRequest((int) (40 + bitmapSize + 8),
                withBitmap, RAM, RAM_SIZE, PAGE, bitmapSize + 8))).as("bitmap size").isEqualTo(EINVAL);
        assertThat(errno(client, VfioUserCommand.DMA_UNMAP, new DmaUnmapRequest((int) (40 + bitmapSize),
                withBitmap, RAM, RAM_SIZE, 3000, bitmapSize))).as("page size").isEqualTo(EINVAL);
        assertThat(errno(client, VfioUserCommand.DMA_UNMAP, new DmaUnmapRequest(40, withBitmap
                | DmaUnmapRequest.FLAG_UNMAP_ALL, 0, 0, PAGE, 0))).as("with UNMAP_ALL").isEqualTo(EINVAL);
        assertThat(errno(client, VfioUserCommand.DMA_UNMAP, new DmaUnmapRequest((int) (40 + bitmapSize),
                withBitmap, RAM + PAGE, RAM_SIZE, PAGE, bitmapSize))).as("no such mapping").isEqualTo(ENOENT);

        deviceCopy(RAM, RAM + 33 * PAGE + 5, PAGE); // pages 33, 34
        VfioUserMessage reply = Wire.send(client, VfioUserCommand.DMA_UNMAP, request);
        try {
            assertThat(reply.header().isError()).isFalse();
            DmaUnmapReply r = reply.payload(DmaUnmapReply.class);
            assertThat(r.bitmapPageSize()).isEqualTo(PAGE);
            assertThat(r.bitmapSize()).isEqualTo(bitmapSize);
            ByteBuf b = r.bitmap();
            byte[] bytes = new byte[b.readableBytes()];
            b.getBytes(b.readerIndex(), bytes);
            assertThat(BitSet.valueOf(bytes)).isEqualTo(pages(33, 34));
        } finally {
            reply.release();
        }
        assertThat(errno(client, VfioUserCommand.DMA_UNMAP, DmaUnmapRequest.of(0, RAM, RAM_SIZE)))
                .as("the mapping is gone").isEqualTo(ENOENT);
    }
}
