package io.vfiouser.it;

import static io.vfiouser.it.Wire.errno;
import static io.vfiouser.it.Wire.ok;
import static org.assertj.core.api.Assertions.assertThat;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.vfiouser.client.GuestMemory;
import io.vfiouser.client.MigrationDriver;
import io.vfiouser.client.VfioUserClient;
import io.vfiouser.codec.VfioUserCommand;
import io.vfiouser.codec.payload.DmaMapRequest;
import io.vfiouser.codec.payload.RegionAccess;
import io.vfiouser.codec.payload.SetIrqs;
import io.vfiouser.examples.nulldev.NullDevice;
import io.vfiouser.transport.FdSet;
import io.vfiouser.transport.linux.Linux;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;
import java.util.Random;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

/**
 * A null device migrated while its DMA engine copies inside guest memory: the driver moves it from the source
 * client's server to the destination client's, and afterwards the destination has the source's registers, BAR2
 * contents, configuration space and MSI-X state, guest memory equal to the source's (copied only through the
 * dirty log), and works on: its doorbell fires the destination's eventfd, its DMA engine copies.
 */
final class NullMigrationScenario {
    static final long RAM = 0x1_0000_0000L;
    static final int RAM_SIZE = 8 << 20;
    private static final int BAR2_HALF = NullDevice.MEMORY_BAR_SIZE / 2;

    private NullMigrationScenario() {
    }

    static void register(VfioUserClient client, int offset, long value) throws Exception {
        assertThat(errno(client, VfioUserCommand.REGION_WRITE,
                RegionAccess.inRegion(NullDevice.REGISTER_BAR).atOffset(offset)
                        .data(Unpooled.buffer(8).writeLongLE(value))))
                .isZero();
    }

    static byte[] read(VfioUserClient client, int region, long offset, int length) throws Exception {
        byte[] out = new byte[length];
        ok(client, VfioUserCommand.REGION_READ, RegionAccess.inRegion(region).atOffset(offset).count(length), r -> {
            ByteBuf d = r.payload(RegionAccess.class).data();
            d.getBytes(d.readerIndex(), out);
        });
        return out;
    }

    static long register(VfioUserClient client, int offset) throws Exception {
        return java.nio.ByteBuffer.wrap(read(client, NullDevice.REGISTER_BAR, offset, 8))
                .order(java.nio.ByteOrder.LITTLE_ENDIAN).getLong();
    }

    private static void copy(VfioUserClient client, long src, long dst, long length) throws Exception {
        register(client, NullDevice.DMA_SRC, src);
        register(client, NullDevice.DMA_DST, dst);
        register(client, NullDevice.DMA_LEN, length);
        register(client, NullDevice.DMA_CTRL, NullDevice.CTRL_START);
    }

    /** MSI-X on, every vector unmasked, and the four eventfds assigned; returns the eventfds (caller closes). */
    static int[] interrupts(VfioUserClient client, boolean programTable) throws Exception {
        int[] events = new int[NullDevice.MSIX_VECTORS];
        int[] dups = new int[events.length];
        for (int i = 0; i < events.length; i++) {
            events[i] = Linux.eventfd(0, Linux.EFD_NONBLOCK);
            dups[i] = Linux.dup(events[i]);
        }
        assertThat(errno(client, VfioUserCommand.DEVICE_SET_IRQS,
                SetIrqs.of(SetIrqs.ACTION_TRIGGER | SetIrqs.DATA_EVENTFD, 2, 0, events.length), FdSet.of(dups)))
                .isZero();
        if (programTable) {
            int cap = DmaAndInterruptsTest.findCapability(client, 0x11);
            assertThat(errno(client, VfioUserCommand.REGION_WRITE,
                    RegionAccess.inRegion(7).atOffset(cap + 2).data(Unpooled.buffer(2).writeShortLE(0x8000)))).isZero();
            for (int v = 0; v < events.length; v++) {
                ByteBuf entry = Unpooled.buffer(16).writeLongLE(0xFEE0_0000L + v).writeIntLE(0x40 + v).writeIntLE(0);
                assertThat(errno(client, VfioUserCommand.REGION_WRITE,
                        RegionAccess.inRegion(NullDevice.MSIX_BAR).atOffset(NullDevice.MSIX_TABLE_OFFSET + 16L * v)
                                .data(entry))).isZero();
            }
        }
        return events;
    }

    /**
     * Runs the scenario over two connected clients (of two servers with a null device each) and guest memory the
     * test owns; returns the driver's report.
     */
    static MigrationDriver.Report run(VfioUserClient source, VfioUserClient destination, GuestMemory sourceRam,
            GuestMemory destinationRam) throws Exception {
        assertThat(errno(source, VfioUserCommand.DMA_MAP, DmaMapRequest.of(3, 0, RAM, RAM_SIZE),
                FdSet.of(sourceRam.dupFd()))).isZero();
        assertThat(errno(destination, VfioUserCommand.DMA_MAP, DmaMapRequest.of(3, 0, RAM, RAM_SIZE),
                FdSet.of(destinationRam.dupFd()))).isZero();
        int[] sourceEvents = interrupts(source, true);
        int[] destinationEvents = interrupts(destination, false); // the VMM sets up its eventfds; the rest migrates
        try {
            MemorySegment ram = sourceRam.segment();
            Random random = new Random(42);
            for (long i = 0; i < RAM_SIZE; i += 8) {
                ram.set(ValueLayout.JAVA_LONG_UNALIGNED, i, random.nextLong());
            }
            register(source, NullDevice.SCRATCH, 0x1122_3344_5566_7788L);
            byte[] pattern = new byte[4096];
            random.nextBytes(pattern);
            assertThat(errno(source, VfioUserCommand.REGION_WRITE,
                    RegionAccess.inRegion(NullDevice.MEMORY_BAR).atOffset(0x100)
                            .data(Unpooled.wrappedBuffer(pattern)))).isZero();
            assertThat(errno(source, VfioUserCommand.REGION_WRITE,
                    RegionAccess.inRegion(NullDevice.MEMORY_BAR).atOffset(BAR2_HALF + 0x2000L)
                            .data(Unpooled.wrappedBuffer(pattern)))).isZero();

            // The workload: the DMA engine copies pages around guest memory until the guest stops.
            AtomicBoolean stop = new AtomicBoolean();
            AtomicInteger copies = new AtomicInteger();
            AtomicReference<Throwable> failure = new AtomicReference<>();
            Thread workload = new Thread(() -> {
                Random r = new Random(7);
                try {
                    while (!stop.get()) {
                        long from = RAM + r.nextInt(RAM_SIZE / 2);
                        long to = RAM + RAM_SIZE / 2 + r.nextInt(RAM_SIZE / 2 - 20_000);
                        copy(source, from, to, 1 + r.nextInt(20_000));
                        copies.incrementAndGet();
                    }
                } catch (Throwable t) {
                    failure.set(t);
                }
            }, "null-workload");
            workload.start();
            MigrationDriver driver = new MigrationDriver(source, destination,
                    List.of(new MigrationDriver.MemoryPair(sourceRam, destinationRam)),
                    MigrationDriver.Options.DEFAULT.withPreCopyRounds(4));
            MigrationDriver.Report report = driver.migrate(() -> {
                while (copies.get() < 20 && failure.get() == null) {
                    Thread.onSpinWait(); // let the workload dirty some pages during pre-copy
                }
                stop.set(true);
                try {
                    workload.join();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            });
            assertThat(failure.get()).as("the workload ran").isNull();
            assertThat(report.rounds()).isPositive();
            assertThat(report.pagesCopied()).as("the workload dirtied pages").isPositive();

            // Guest memory: equal, though only the pages the log reported were copied after the first copy.
            assertThat(destinationRam.segment().mismatch(sourceRam.segment())).as("guest memory").isEqualTo(-1);
            // Registers (the source in STOP still answers region reads), BAR2, configuration space.
            for (int reg : new int[] {NullDevice.SCRATCH, NullDevice.DMA_SRC, NullDevice.DMA_DST, NullDevice.DMA_LEN,
                    NullDevice.DMA_STATUS}) {
                assertThat(register(destination, reg)).as("register 0x%x", reg).isEqualTo(register(source, reg));
            }
            assertThat(register(destination, NullDevice.SCRATCH)).isEqualTo(0x1122_3344_5566_7788L);
            for (int at = 0; at < NullDevice.MEMORY_BAR_SIZE; at += 256 << 10) {
                assertThat(read(destination, NullDevice.MEMORY_BAR, at, 256 << 10))
                        .as("BAR2 at 0x%x", at).isEqualTo(read(source, NullDevice.MEMORY_BAR, at, 256 << 10));
            }
            assertThat(read(destination, NullDevice.MEMORY_BAR, 0x100, 4096)).isEqualTo(pattern);
            assertThat(read(destination, 7, 0, 4096)).as("configuration space").isEqualTo(read(source, 7, 0, 4096));
            assertThat(read(destination, NullDevice.MSIX_BAR, 0, 64)).as("MSI-X table")
                    .isEqualTo(read(source, NullDevice.MSIX_BAR, 0, 64));

            // The destination works on: MSI-X as the source's guest programmed it, the DMA engine on its memory.
            register(destination, NullDevice.DOORBELL, 1);
            assertThat(Linux.eventfdRead(destinationEvents[1])).as("the destination's vector 1").isEqualTo(1);
            assertThat(Linux.eventfdRead(sourceEvents[1])).as("nothing from the stopped source").isEqualTo(-1);
            copy(destination, RAM, RAM + 4096, 4096);
            assertThat(register(destination, NullDevice.DMA_STATUS)).isEqualTo(NullDevice.STATUS_DONE);
            assertThat(destinationRam.segment().asSlice(4096, 4096).mismatch(destinationRam.segment().asSlice(0, 4096)))
                    .isEqualTo(-1);
            return report;
        } finally {
            for (int fd : sourceEvents) {
                Linux.close(fd);
            }
            for (int fd : destinationEvents) {
                Linux.close(fd);
            }
        }
    }
}
