package io.vfiouser.it;

import static io.vfiouser.it.Wire.errno;
import static io.vfiouser.it.Wire.ok;
import static io.vfiouser.it.Wire.rawErrno;
import static io.vfiouser.it.Wire.u32;
import static io.vfiouser.transport.linux.Errno.EEXIST;
import static io.vfiouser.transport.linux.Errno.EINVAL;
import static io.vfiouser.transport.linux.Errno.ENOENT;
import static io.vfiouser.transport.linux.Errno.ENOSPC;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.vfiouser.client.GuestMemory;
import io.vfiouser.client.VfioUserClient;
import io.vfiouser.codec.VfioUserCommand;
import io.vfiouser.codec.VfioUserMessage;
import io.vfiouser.codec.payload.DeviceFeature;
import io.vfiouser.codec.payload.DeviceInfo;
import io.vfiouser.codec.payload.DmaMapRequest;
import io.vfiouser.codec.payload.DmaUnmapReply;
import io.vfiouser.codec.payload.DmaUnmapRequest;
import io.vfiouser.codec.payload.IrqInfo;
import io.vfiouser.codec.payload.MigDataRead;
import io.vfiouser.codec.payload.RegionAccess;
import io.vfiouser.codec.payload.RegionInfo;
import io.vfiouser.codec.payload.RegionInfoRequest;
import io.vfiouser.codec.payload.RegionIoFds;
import io.vfiouser.codec.payload.RegionIoFdsRequest;
import io.vfiouser.codec.payload.RegionWriteMulti;
import io.vfiouser.codec.payload.RegionWriteMultiReply;
import io.vfiouser.codec.payload.SetIrqs;
import io.vfiouser.codec.payload.SparseMmapCapability;
import io.vfiouser.codec.payload.WriteMultiEntry;
import io.vfiouser.transport.FdSet;
import io.vfiouser.transport.linux.ErrnoException;
import io.vfiouser.transport.linux.Linux;
import io.vfiouser.transport.testing.FdCount;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.Test;

/**
 * The conformance cases of digest section 6.3, and the happy path of every command, against the example
 * {@code null} device (BAR0 registers, BAR2 1 MiB memory-backed with the upper half mmappable, BAR4 MSI-X with
 * 4 vectors, PCI Express), through a real socket.
 */
class ConformanceTest {
    private ServerFixture fixture;
    private VfioUserClient client;

    @BeforeEach
    void start() throws Exception {
        fixture = new ServerFixture();
        client = fixture.client();
    }

    @AfterEach
    void stop() throws Exception {
        fixture.close();
    }

    @Nested
    class DmaMap {
        @Test
        void fdBackedAndMessageModeMappingsAndTheirUnmaps() throws Exception {
            try (GuestMemory ram = GuestMemory.allocate(0x100000, 0x10000)) {
                assertThat(errno(client, VfioUserCommand.DMA_MAP, DmaMapRequest.of(3, 0, ram.iova(), ram.size()),
                        FdSet.of(ram.dupFd()))).isZero();
                assertThat(errno(client, VfioUserCommand.DMA_MAP, DmaMapRequest.of(1, 0, 0x400000, 0x1000)))
                        .isZero();
                VfioUserMessage reply = Wire.send(client, VfioUserCommand.DMA_UNMAP,
                        DmaUnmapRequest.of(0, ram.iova(), ram.size()));
                try {
                    DmaUnmapReply echo = reply.payload(DmaUnmapReply.class);
                    assertThat(echo.address()).isEqualTo(ram.iova());
                    assertThat(reply.header().messageSize()).isEqualTo(16 + 24);
                } finally {
                    reply.release();
                }
                assertThat(errno(client, VfioUserCommand.DMA_UNMAP, DmaUnmapRequest.of(2, 0, 0))).isZero();
                assertThat(errno(client, VfioUserCommand.DMA_UNMAP, DmaUnmapRequest.of(0, 0x400000, 0x1000)))
                        .isEqualTo(ENOENT);
            }
        }

        @Test
        void malformedRequestsAreRefused() throws Exception {
            assertThat(rawErrno(client, VfioUserCommand.DMA_MAP, u32(32, 3, 0, 0, 0))).isEqualTo(EINVAL);
            assertThat(errno(client, VfioUserCommand.DMA_MAP, new DmaMapRequest(24, 1, 0, 0x1000, 0x1000)))
                    .isEqualTo(EINVAL);
            assertThat(errno(client, VfioUserCommand.DMA_MAP, DmaMapRequest.of(0x11, 0, 0x1000, 0x1000)))
                    .isEqualTo(EINVAL);
            assertThat(errno(client, VfioUserCommand.DMA_MAP, DmaMapRequest.of(DmaMapRequest.FLAG_MMAP | 1, 0,
                    0x1000, 0x1000))).isEqualTo(EINVAL);
            assertThat(errno(client, VfioUserCommand.DMA_MAP, DmaMapRequest.of(1, 0, 0x1000, 0))).isEqualTo(EINVAL);
            assertThat(errno(client, VfioUserCommand.DMA_MAP, DmaMapRequest.of(1, 0, 0, (8L << 40) + 4096)))
                    .isEqualTo(ENOSPC);
        }

        @Test
        void overlapsAndRemaps() throws Exception {
            try (GuestMemory ram = GuestMemory.allocate(0x200000, 0x20000)) {
                long before = FdCount.now();
                DmaMapRequest map = DmaMapRequest.of(3, 0, ram.iova(), ram.size());
                assertThat(errno(client, VfioUserCommand.DMA_MAP, map, FdSet.of(ram.dupFd()))).isZero();
                // The identical mapping again succeeds and closes the new fd.
                assertThat(errno(client, VfioUserCommand.DMA_MAP, map, FdSet.of(ram.dupFd()))).isZero();
                assertThat(errno(client, VfioUserCommand.DMA_MAP, DmaMapRequest.of(3, 0x1000, ram.iova(),
                        ram.size()), FdSet.of(ram.dupFd()))).isEqualTo(EINVAL);
                assertThat(errno(client, VfioUserCommand.DMA_MAP, DmaMapRequest.of(3, 0, ram.iova() + 0x1000,
                        0x1000), FdSet.of(ram.dupFd()))).isEqualTo(EEXIST);
                assertThat(errno(client, VfioUserCommand.DMA_UNMAP, DmaUnmapRequest.of(0, ram.iova(), 0x1000)))
                        .isEqualTo(ENOENT);
                assertThat(errno(client, VfioUserCommand.DMA_UNMAP, DmaUnmapRequest.of(0, ram.iova(), ram.size())))
                        .isZero();
                FdCount.awaitAtMost(before);
            }
        }

        @Test
        void unmapRulesOfTheDigest() throws Exception {
            assertThat(rawErrno(client, VfioUserCommand.DMA_UNMAP, u32(24, 0, 0, 0))).isEqualTo(EINVAL);
            assertThat(errno(client, VfioUserCommand.DMA_UNMAP, new DmaUnmapRequest(16, 0, 0x1000, 0x1000, 0, 0)))
                    .isEqualTo(EINVAL);
            assertThat(errno(client, VfioUserCommand.DMA_UNMAP, DmaUnmapRequest.of(4, 0x1000, 0x1000)))
                    .isEqualTo(EINVAL);
            assertThat(errno(client, VfioUserCommand.DMA_UNMAP, DmaUnmapRequest.of(2, 0x1000, 0)))
                    .isEqualTo(EINVAL);
            assertThat(errno(client, VfioUserCommand.DMA_UNMAP, new DmaUnmapRequest(40, 1, 0x1000, 0x1000, 4096, 8)))
                    .isEqualTo(EINVAL);
        }
    }

    @Nested
    class Info {
        @Test
        void deviceInfo() throws Exception {
            ok(client, VfioUserCommand.DEVICE_GET_INFO, new DeviceInfo(64, 0, 0, 0), reply -> {
                DeviceInfo info = reply.payload(DeviceInfo.class);
                assertThat(reply.header().messageSize()).isEqualTo(32);
                assertThat(info.flags()).isEqualTo(DeviceInfo.FLAG_PCI | DeviceInfo.FLAG_RESET);
                assertThat(info.numRegions()).isEqualTo(9);
                assertThat(info.numIrqs()).isEqualTo(5);
            });
            assertThat(errno(client, VfioUserCommand.DEVICE_GET_INFO, new DeviceInfo(8, 0, 0, 0))).isEqualTo(EINVAL);
            assertThat(rawErrno(client, VfioUserCommand.DEVICE_GET_INFO, u32(16, 0))).isEqualTo(EINVAL);
        }

        @Test
        void regionInfoWithTheArgszDance() throws Exception {
            long before = FdCount.now();
            // BAR2 has a sparse-mmap capability: with argsz 32 the client learns the size it needs.
            int needed;
            VfioUserMessage first = Wire.send(client, VfioUserCommand.DEVICE_GET_REGION_INFO,
                    RegionInfoRequest.of(2));
            try {
                RegionInfo info = first.payload(RegionInfo.class);
                assertThat(info.size()).isEqualTo(1 << 20);
                assertThat(info.flags() & RegionInfo.FLAG_MMAP).isNotZero();
                assertThat(info.flags() & RegionInfo.FLAG_CAPS).isZero();
                assertThat(info.argsz()).isGreaterThan(32);
                assertThat(first.header().messageSize()).isEqualTo(16 + 32);
                assertThat(first.fds().isEmpty()).isTrue();
                needed = (int) info.argsz();
            } finally {
                first.release();
            }
            VfioUserMessage second = Wire.send(client, VfioUserCommand.DEVICE_GET_REGION_INFO,
                    new RegionInfoRequest(needed + 100, 2));
            try {
                RegionInfo info = second.payload(RegionInfo.class);
                assertThat(second.header().messageSize()).isEqualTo(16 + needed);
                assertThat(info.flags() & RegionInfo.FLAG_CAPS).isNotZero();
                assertThat(info.caps()).singleElement().isInstanceOfSatisfying(SparseMmapCapability.class,
                        c -> assertThat(c.areas()).containsExactly(
                                new SparseMmapCapability.Area(512 << 10, 512 << 10)));
                assertThat(second.fds().size()).isEqualTo(1);
                assertThat(Linux.fstat(second.fds().get(0)).size()).isEqualTo(1 << 20);
                // The region's memory is sealed: a client cannot shrink it under the server.
                int fd = second.fds().get(0);
                assertThatThrownBy(() -> Linux.ftruncate(fd, 4096)).isInstanceOf(ErrnoException.class);
            } finally {
                second.release();
            }
            ok(client, VfioUserCommand.DEVICE_GET_REGION_INFO, RegionInfoRequest.of(7),
                    r -> assertThat(r.payload(RegionInfo.class).size()).isEqualTo(4096));
            ok(client, VfioUserCommand.DEVICE_GET_REGION_INFO, RegionInfoRequest.of(1), r -> {
                assertThat(r.payload(RegionInfo.class).size()).isZero();
                assertThat(r.payload(RegionInfo.class).flags()).isZero();
            });
            assertThat(errno(client, VfioUserCommand.DEVICE_GET_REGION_INFO, RegionInfoRequest.of(9)))
                    .isEqualTo(EINVAL);
            assertThat(errno(client, VfioUserCommand.DEVICE_GET_REGION_INFO, new RegionInfoRequest(16, 0)))
                    .isEqualTo(EINVAL);
            FdCount.awaitAtMost(before);
        }

        @Test
        void regionIoFds() throws Exception {
            ok(client, VfioUserCommand.DEVICE_GET_REGION_IO_FDS, RegionIoFdsRequest.of(64, 0), r -> {
                assertThat(r.payload(RegionIoFds.class).count()).isZero();
                assertThat(r.payload(RegionIoFds.class).argsz()).isEqualTo(16);
            });
            assertThat(errno(client, VfioUserCommand.DEVICE_GET_REGION_IO_FDS, new RegionIoFdsRequest(64, 1, 0, 0)))
                    .isEqualTo(EINVAL);
            assertThat(errno(client, VfioUserCommand.DEVICE_GET_REGION_IO_FDS, new RegionIoFdsRequest(64, 0, 0, 1)))
                    .isEqualTo(EINVAL);
            assertThat(errno(client, VfioUserCommand.DEVICE_GET_REGION_IO_FDS, RegionIoFdsRequest.of(8, 0)))
                    .isEqualTo(EINVAL);
            assertThat(errno(client, VfioUserCommand.DEVICE_GET_REGION_IO_FDS, RegionIoFdsRequest.of(64, 9)))
                    .isEqualTo(EINVAL);
            assertThat(errno(client, VfioUserCommand.DEVICE_GET_REGION_IO_FDS, RegionIoFdsRequest.of(64, 1)))
                    .isEqualTo(EINVAL);
        }

        @Test
        void irqInfo() throws Exception {
            int[] counts = {0, 0, 4, 1, 1};
            for (int i = 0; i < 5; i++) {
                int index = i;
                ok(client, VfioUserCommand.DEVICE_GET_IRQ_INFO, IrqInfo.request(i), r -> {
                    IrqInfo info = r.payload(IrqInfo.class);
                    assertThat(info.index()).isEqualTo(index);
                    assertThat(info.count()).as("vectors of index %d", index).isEqualTo(counts[index]);
                    assertThat(info.flags() & IrqInfo.FLAG_EVENTFD).isNotZero();
                    assertThat(info.flags() & IrqInfo.FLAG_NORESIZE).isZero();
                    assertThat(r.header().messageSize()).isEqualTo(32);
                });
            }
            assertThat(errno(client, VfioUserCommand.DEVICE_GET_IRQ_INFO, IrqInfo.request(5))).isEqualTo(EINVAL);
            assertThat(errno(client, VfioUserCommand.DEVICE_GET_IRQ_INFO, new IrqInfo(8, 0, 2, 0)))
                    .isEqualTo(EINVAL);
        }
    }

    @Nested
    class SetIrqsRules {
        private static final int TRIGGER_EVENTFD = SetIrqs.ACTION_TRIGGER | SetIrqs.DATA_EVENTFD;
        private static final int TRIGGER_NONE = SetIrqs.ACTION_TRIGGER | SetIrqs.DATA_NONE;

        private int setIrqs(int flags, int index, int start, int count, int fdCount) throws Exception {
            int[] fds = new int[fdCount];
            for (int i = 0; i < fdCount; i++) {
                fds[i] = Linux.eventfd(0, Linux.EFD_NONBLOCK);
            }
            return errno(client, VfioUserCommand.DEVICE_SET_IRQS, SetIrqs.of(flags, index, start, count),
                    FdSet.of(fds));
        }

        @Test
        void theRowsOfTheDigest() throws Exception {
            long before = FdCount.now();
            assertThat(setIrqs(TRIGGER_EVENTFD, 5, 0, 1, 1)).isEqualTo(EINVAL);
            assertThat(setIrqs(SetIrqs.ACTION_TRIGGER | SetIrqs.ACTION_MASK | SetIrqs.DATA_NONE, 2, 0, 1, 0))
                    .isEqualTo(EINVAL);
            assertThat(setIrqs(SetIrqs.DATA_NONE, 2, 0, 1, 0)).isEqualTo(EINVAL);
            assertThat(rawErrno(client, VfioUserCommand.DEVICE_SET_IRQS, concat(u32(21,
                    SetIrqs.ACTION_TRIGGER | SetIrqs.DATA_NONE | SetIrqs.DATA_BOOL, 2, 0, 1), new byte[] {1})))
                    .isEqualTo(EINVAL);
            assertThat(setIrqs(TRIGGER_EVENTFD, 2, 4, 1, 1)).isEqualTo(EINVAL);
            assertThat(setIrqs(TRIGGER_EVENTFD, 2, 3, 2, 2)).isEqualTo(EINVAL);
            assertThat(setIrqs(SetIrqs.ACTION_MASK | SetIrqs.DATA_NONE, 3, 0, 1, 0)).isEqualTo(EINVAL);
            assertThat(setIrqs(TRIGGER_NONE, 2, 1, 0, 0)).isEqualTo(EINVAL);
            assertThat(setIrqs(SetIrqs.ACTION_MASK | SetIrqs.DATA_NONE, 2, 0, 0, 0)).isEqualTo(EINVAL);
            assertThat(setIrqs(TRIGGER_NONE, 2, 0, 1, 1)).as("fds with DATA_NONE").isEqualTo(EINVAL);
            assertThat(setIrqs(TRIGGER_EVENTFD, 2, 0, 2, 1)).as("fds != count").isEqualTo(EINVAL);
            assertThat(rawErrno(client, VfioUserCommand.DEVICE_SET_IRQS,
                    concat(u32(22, SetIrqs.ACTION_TRIGGER | SetIrqs.DATA_BOOL, 2, 0, 3), new byte[] {1, 0})))
                    .isEqualTo(EINVAL);
            FdCount.awaitAtMost(before);
        }

        @Test
        void qemusSequencesAreAccepted() throws Exception {
            long before = FdCount.now();
            // MSI-X: "enabled, no vectors", then a vector at a time, then disable.
            assertThat(setIrqs(TRIGGER_EVENTFD, 2, 0, 1, 0)).isZero();
            assertThat(setIrqs(TRIGGER_EVENTFD, 2, 0, 1, 1)).isZero();
            assertThat(setIrqs(TRIGGER_EVENTFD, 2, 1, 3, 3)).isZero();
            assertThat(setIrqs(TRIGGER_NONE, 2, 0, 0, 0)).isZero();
            // ERR notifier, then its removal at hot-unplug (no fd).
            assertThat(setIrqs(TRIGGER_EVENTFD, 3, 0, 1, 1)).isZero();
            assertThat(setIrqs(TRIGGER_EVENTFD, 3, 0, 1, 0)).isZero();
            // Disabling INTx on a device without INTx is accepted (QEMU does it when enabling MSI-X).
            assertThat(setIrqs(TRIGGER_NONE, 0, 0, 0, 0)).isZero();
            FdCount.awaitAtMost(before);
        }
    }

    @Nested
    class Regions {
        @Test
        void readsAndWritesOfEveryKindOfRegion() throws Exception {
            // BAR0 scratch register through the device.
            ByteBuf value = Unpooled.directBuffer(8).writeLongLE(0x1122334455667788L);
            assertThat(errno(client, VfioUserCommand.REGION_WRITE,
                    RegionAccess.inRegion(0).atOffset(0).data(value))).isZero();
            ok(client, VfioUserCommand.REGION_READ, RegionAccess.inRegion(0).atOffset(0).count(8), r -> {
                RegionAccess got = r.payload(RegionAccess.class);
                assertThat(got.count()).isEqualTo(8);
                assertThat(got.data().getLongLE(got.data().readerIndex())).isEqualTo(0x1122334455667788L);
                assertThat(r.header().messageSize()).isEqualTo(16 + 16 + 8);
            });
            // BAR2 memory-backed.
            ByteBuf bytes = Unpooled.directBuffer(64);
            for (int i = 0; i < 64; i++) {
                bytes.writeByte(i);
            }
            assertThat(errno(client, VfioUserCommand.REGION_WRITE,
                    RegionAccess.inRegion(2).atOffset(0x80000 - 32).data(bytes)))
                    .isZero();
            ok(client, VfioUserCommand.REGION_READ, RegionAccess.inRegion(2).atOffset(0x80000 - 32).count(64), r -> {
                ByteBuf d = r.payload(RegionAccess.class).data();
                for (int i = 0; i < 64; i++) {
                    assertThat(d.getByte(d.readerIndex() + i)).isEqualTo((byte) i);
                }
            });
            // Config space: the vendor and device ids.
            ok(client, VfioUserCommand.REGION_READ, RegionAccess.inRegion(7).atOffset(0).count(4), r -> {
                ByteBuf d = r.payload(RegionAccess.class).data();
                assertThat(d.getIntLE(d.readerIndex())).isEqualTo(0x0001_4a56);
            });
            // A zero-byte access echoes its header.
            ok(client, VfioUserCommand.REGION_READ, RegionAccess.inRegion(0).atOffset(0).count(0),
                    r -> assertThat(r.header().messageSize()).isEqualTo(32));
        }

        @Test
        void theRowsOfTheDigest() throws Exception {
            assertThat(rawErrno(client, VfioUserCommand.REGION_READ, u32(0, 0, 0))).isEqualTo(EINVAL);
            assertThat(errno(client, VfioUserCommand.REGION_READ,
                    RegionAccess.inRegion(9).atOffset(0).count(4))).isEqualTo(EINVAL);
            assertThat(errno(client, VfioUserCommand.REGION_READ,
                    RegionAccess.inRegion(1).atOffset(0).count(4))).isEqualTo(EINVAL);
            assertThat(errno(client, VfioUserCommand.REGION_READ,
                    RegionAccess.inRegion(0).atOffset(4093).count(4))).isEqualTo(EINVAL);
            assertThat(errno(client, VfioUserCommand.REGION_READ,
                    RegionAccess.inRegion(0).atOffset(-4).count(8))).isEqualTo(EINVAL);
            assertThat(errno(client, VfioUserCommand.REGION_READ,
                    RegionAccess.inRegion(2).atOffset(0).count((1 << 20) + 1)))
                    .isEqualTo(EINVAL);
            assertThat(rawErrno(client, VfioUserCommand.REGION_WRITE,
                    concat(u32(0, 0, 0, 8), new byte[4]))).isEqualTo(EINVAL);
        }

        @Test
        void writeMultiAppliesEveryEntryInOrder() throws Exception {
            List<WriteMultiEntry> entries = List.of(
                    new WriteMultiEntry(0, 0, 8, 0x1111), new WriteMultiEntry(0, 0, 4, 0x2222),
                    new WriteMultiEntry(0x100, 2, 8, 0x3333));
            ok(client, VfioUserCommand.REGION_WRITE_MULTI, new RegionWriteMulti(entries),
                    r -> assertThat(r.payload(RegionWriteMultiReply.class).completed()).isEqualTo(3));
            ok(client, VfioUserCommand.REGION_READ, RegionAccess.inRegion(0).atOffset(0).count(8), r -> {
                ByteBuf d = r.payload(RegionAccess.class).data();
                assertThat(d.getLongLE(d.readerIndex())).isEqualTo(0x2222);
            });
            ok(client, VfioUserCommand.REGION_READ, RegionAccess.inRegion(2).atOffset(0x100).count(8), r -> {
                ByteBuf d = r.payload(RegionAccess.class).data();
                assertThat(d.getLongLE(d.readerIndex())).isEqualTo(0x3333);
            });
        }

        @Test
        void postedWritesTakeEffectBeforeTheNextRead() throws Exception {
            for (int i = 1; i <= 200; i++) {
                ByteBuf v = Unpooled.directBuffer(8).writeLongLE(i);
                client.sendNoReply(VfioUserCommand.REGION_WRITE, RegionAccess.inRegion(0).atOffset(0).data(v));
            }
            ok(client, VfioUserCommand.REGION_READ, RegionAccess.inRegion(0).atOffset(0).count(8), r -> {
                ByteBuf d = r.payload(RegionAccess.class).data();
                assertThat(d.getLongLE(d.readerIndex())).isEqualTo(200);
            });
            assertThat(client.unexpectedMessages()).isEmpty();
        }
    }

    @Nested
    class ResetAndFeatures {
        @Test
        void deviceResetClearsTheRegisters() throws Exception {
            ByteBuf value = Unpooled.directBuffer(8).writeLongLE(42);
            assertThat(errno(client, VfioUserCommand.REGION_WRITE,
                    RegionAccess.inRegion(0).atOffset(0).data(value))).isZero();
            VfioUserMessage reply = Wire.send(client, VfioUserCommand.DEVICE_RESET, null);
            try {
                assertThat(reply.header().isError()).isFalse();
                assertThat(reply.header().messageSize()).isEqualTo(16);
            } finally {
                reply.release();
            }
            ok(client, VfioUserCommand.REGION_READ, RegionAccess.inRegion(0).atOffset(0).count(8), r -> {
                ByteBuf d = r.payload(RegionAccess.class).data();
                assertThat(d.getLongLE(d.readerIndex())).isZero();
            });
            assertThat(rawErrno(client, VfioUserCommand.DEVICE_RESET, u32(7))).as("payload ignored").isZero();
        }

        @Test
        void featuresAndMigrationDataAreRefusedWithoutMigrationSupport() throws Exception {
            // The null device migrates; the gpio example does not.
            fixture.close();
            fixture = new ServerFixture(io.vfiouser.examples.gpio.PciIdio16.description("gpio"),
                    new io.vfiouser.examples.gpio.PciIdio16());
            client = fixture.client();
            assertThat(rawErrno(client, VfioUserCommand.DEVICE_FEATURE, u32(8))).isEqualTo(EINVAL);
            assertThat(errno(client, VfioUserCommand.DEVICE_FEATURE, DeviceFeature.of(DeviceFeature.FEATURE_MIGRATION,
                    Unpooled.EMPTY_BUFFER))).isEqualTo(EINVAL);
            assertThat(errno(client, VfioUserCommand.DEVICE_FEATURE, DeviceFeature.of(DeviceFeature.GET
                    | DeviceFeature.SET | DeviceFeature.FEATURE_MIG_DEVICE_STATE, Unpooled.EMPTY_BUFFER))).isEqualTo(EINVAL);
            assertThat(errno(client, VfioUserCommand.DEVICE_FEATURE, DeviceFeature.of(DeviceFeature.PROBE
                    | DeviceFeature.FEATURE_MIGRATION, Unpooled.EMPTY_BUFFER))).isEqualTo(EINVAL);
            assertThat(errno(client, VfioUserCommand.MIG_DATA_READ, MigDataRead.of(16))).isEqualTo(EINVAL);
        }
    }

    static byte[] concat(byte[] a, byte[] b) {
        byte[] out = new byte[a.length + b.length];
        System.arraycopy(a, 0, out, 0, a.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }
}
