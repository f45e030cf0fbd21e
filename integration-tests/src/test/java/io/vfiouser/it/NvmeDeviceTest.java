package io.vfiouser.it;

import static io.vfiouser.it.NvmeHostDriver.CSTS;
import static io.vfiouser.it.NvmeHostDriver.PAGE;
import static io.vfiouser.it.NvmeHostDriver.io;
import static io.vfiouser.it.Wire.errno;
import static org.assertj.core.api.Assertions.assertThat;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.vfiouser.client.ClientOptions;
import io.vfiouser.client.GuestMemory;
import io.vfiouser.client.VfioUserClient;
import io.vfiouser.codec.DmaLayout;
import io.vfiouser.codec.VfioUserCommand;
import io.vfiouser.codec.payload.DmaMapRequest;
import io.vfiouser.codec.payload.RegionAccess;
import io.vfiouser.examples.nvme.NvmeDevice;
import io.vfiouser.examples.nvme.NvmeOptions;
import io.vfiouser.it.NvmeHostDriver.Cqe;
import io.vfiouser.it.NvmeHostDriver.Queue;
import io.vfiouser.it.NvmeHostDriver.Sqe;
import io.vfiouser.server.ServerOptions;
import io.vfiouser.transport.FdSet;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The NVMe example controller driven end to end through the socket by a small host driver: registers, admin and
 * I/O queues in shared guest memory, MSI-X and INTx through eventfds, every PRP shape, the NVM commands, error
 * statuses, resets and shutdown, and the data in the backing file.
 */
class NvmeDeviceTest {
    private static final long RAM = 0x4000_0000L;
    private static final long RAM_SIZE = 32L << 20;
    private static final long NS_SIZE = 16L << 20;
    private static final long NS_BLOCKS = NS_SIZE / 512;

    // Admin and I/O opcodes.
    private static final int FLUSH = 0x00;
    private static final int WRITE = 0x01;
    private static final int READ = 0x02;
    private static final int WRITE_ZEROES = 0x08;
    private static final int DSM = 0x09;

    private Path dir;
    private Path backing;
    private ServerFixture fixture;
    private GuestMemory ram;
    private NvmeHostDriver host;

    @BeforeEach
    void start() throws Exception {
        start(ServerOptions.DEFAULT, ClientOptions.DEFAULT, true);
    }

    private void start(ServerOptions serverOptions, ClientOptions clientOptions, boolean shared) throws Exception {
        dir = Files.createTempDirectory("nvme-it");
        backing = dir.resolve("ns1.img");
        NvmeDevice device = new NvmeDevice("test-nvme", new NvmeOptions(backing, NS_SIZE));
        fixture = new ServerFixture(NvmeDevice.description("test-nvme"), device, serverOptions);
        VfioUserClient client = fixture.client(clientOptions);
        ram = GuestMemory.allocate(RAM, RAM_SIZE);
        if (shared) {
            assertThat(errno(client, VfioUserCommand.DMA_MAP, DmaMapRequest.of(3, 0, RAM, RAM_SIZE),
                    FdSet.of(ram.dupFd()))).isZero();
        } else {
            client.serveDma(ram);
            assertThat(errno(client, VfioUserCommand.DMA_MAP, DmaMapRequest.of(3, 0, RAM, RAM_SIZE))).isZero();
        }
        host = new NvmeHostDriver(client, ram);
    }

    @AfterEach
    void stop() throws Exception {
        host.close();
        ram.close();
        fixture.close();
        Files.deleteIfExists(backing);
        Files.deleteIfExists(dir);
    }

    // ------------------------------------------------------------------------------------------- helpers

    /** A data buffer as PRPs: the guest ranges in transfer order, and PRP1/PRP2 pointing at them. */
    record Transfer(long prp1, long prp2, List<long[]> ranges) {
        void fill(NvmeHostDriver h, byte[] data) {
            int at = 0;
            for (long[] r : ranges) {
                MemorySegment.copy(MemorySegment.ofArray(data), at, h.at(r[0], r[1]), 0, r[1]);
                at += (int) r[1];
            }
        }

        byte[] contents(NvmeHostDriver h, int length) {
            byte[] out = new byte[length];
            int at = 0;
            for (long[] r : ranges) {
                MemorySegment.copy(h.at(r[0], r[1]), 0, MemorySegment.ofArray(out), at, r[1]);
                at += (int) r[1];
            }
            return out;
        }
    }

    /**
     * A buffer of {@code length} bytes starting {@code firstOffset} into its first page, with data pages placed in
     * reverse address order (so no two are contiguous) and, when a list is needed, the PRP list starting
     * {@code listOffset} into its first list page (near the end of a page forces a chain to a second list page).
     */
    private Transfer transfer(int length, int firstOffset, int listOffset) {
        int first = Math.min(length, PAGE - firstOffset);
        int pages = 1 + (length - first + PAGE - 1) / PAGE;
        long block = host.alloc((long) pages * PAGE);
        long[] page = new long[pages];
        for (int i = 0; i < pages; i++) {
            page[i] = block + (long) (pages - 1 - i) * PAGE;
        }
        List<long[]> ranges = new ArrayList<>();
        ranges.add(new long[] {page[0] + firstOffset, first});
        int remaining = length - first;
        for (int i = 1; i < pages; i++) {
            int n = Math.min(PAGE, remaining);
            ranges.add(new long[] {page[i], n});
            remaining -= n;
        }
        long prp1 = page[0] + firstOffset;
        if (pages == 1) {
            return new Transfer(prp1, 0, ranges);
        }
        if (pages == 2) {
            return new Transfer(prp1, page[1], ranges);
        }
        int entries = pages - 1;
        long listPages = host.alloc((long) (entries / 500 + 3) * PAGE);
        long list = listPages + listOffset;
        long slot = list;
        for (int i = 1; i < pages; i++) {
            boolean lastSlotOfPage = ((slot + 8) & (PAGE - 1)) == 0;
            if (lastSlotOfPage && i < pages - 1) {
                long nextPage = (slot + 8);
                host.at(slot, 8).set(ValueLayout.JAVA_LONG_UNALIGNED, 0, nextPage);
                slot = nextPage;
            }
            host.at(slot, 8).set(ValueLayout.JAVA_LONG_UNALIGNED, 0, page[i]);
            slot += 8;
        }
        return new Transfer(prp1, list, ranges);
    }

    private static byte[] pattern(int length, int seed) {
        byte[] b = new byte[length];
        for (int i = 0; i < length; i++) {
            b[i] = (byte) (i * 31 + seed + (i >>> 9));
        }
        return b;
    }

    private byte[] fileBytes(long offset, int length) throws Exception {
        try (FileChannel ch = FileChannel.open(backing, StandardOpenOption.READ)) {
            ByteBuffer b = ByteBuffer.allocate(length);
            while (b.hasRemaining() && ch.read(b, offset + b.position()) >= 0) {
                // read until full
            }
            return b.array();
        }
    }

    /** Writes then reads back {@code length} bytes at {@code lba} through the given PRP shapes. */
    private void roundTrip(Queue q, long lba, int length, int offset, int listOffset, int seed) throws Exception {
        byte[] data = pattern(length, seed);
        Transfer w = transfer(length, offset, listOffset);
        w.fill(host, data);
        host.ok(q, io(WRITE, lba, length / 512, w.prp1(), w.prp2()));
        Transfer r = transfer(length, (offset + 512) % PAGE, listOffset == 0 ? 8 : 0);
        host.ok(q, io(READ, lba, length / 512, r.prp1(), r.prp2()));
        assertThat(r.contents(host, length)).as("read back %d bytes", length).isEqualTo(data);
        assertThat(fileBytes(lba * 512, length)).as("backing file").isEqualTo(data);
    }

    private Queue ready(int ioQueues) throws Exception {
        host.enable(32);
        host.enableMsix(NvmeDevice.MSIX_VECTORS);
        host.createIoQueues(ioQueues, 64);
        return host.queue(1);
    }

    // --------------------------------------------------------------------------------------------- tests

    @Test
    void registersIdentifyAndQueueSetup() throws Exception {
        long cap = host.read64(NvmeHostDriver.CAP);
        assertThat(cap & 0xFFFF).as("MQES").isEqualTo(1023);
        assertThat((cap >>> 16) & 1).as("CQR").isEqualTo(1);
        assertThat((cap >>> 37) & 1).as("NVM command set").isEqualTo(1);
        assertThat((cap >>> 32) & 0xF).as("doorbell stride").isZero();
        assertThat(host.read32(NvmeHostDriver.VS)).isEqualTo(0x0001_0400);
        assertThat(host.read32(CSTS)).isZero();

        Queue admin = host.enable(32);
        assertThat(host.read64(NvmeHostDriver.ASQ)).isEqualTo(admin.sq);
        assertThat(host.read32(NvmeHostDriver.CC)).isEqualTo(NvmeHostDriver.CC_CONFIG | 1);
        host.enableMsix(NvmeDevice.MSIX_VECTORS);

        MemorySegment ctrl = host.identify(1, 0);
        assertThat(ctrl.get(ValueLayout.JAVA_SHORT_UNALIGNED, 0)).as("VID").isEqualTo((short) NvmeDevice.VENDOR_ID);
        String serial = new String(ctrl.asSlice(4, 20).toArray(ValueLayout.JAVA_BYTE), StandardCharsets.US_ASCII);
        assertThat(serial.trim()).startsWith("VFU").hasSize(19);
        assertThat(ctrl.get(ValueLayout.JAVA_BYTE, 77)).as("MDTS").isEqualTo((byte) 10);
        assertThat(ctrl.get(ValueLayout.JAVA_INT_UNALIGNED, 80)).as("VER").isEqualTo(0x0001_0400);
        assertThat(ctrl.get(ValueLayout.JAVA_BYTE, 512)).as("SQES").isEqualTo((byte) 0x66);
        assertThat(ctrl.get(ValueLayout.JAVA_BYTE, 513)).as("CQES").isEqualTo((byte) 0x44);
        assertThat(ctrl.get(ValueLayout.JAVA_INT_UNALIGNED, 516)).as("NN").isEqualTo(1);
        assertThat(ctrl.get(ValueLayout.JAVA_SHORT_UNALIGNED, 520) & 0b1100).as("ONCS DSM, Write Zeroes")
                .isEqualTo(0b1100);
        assertThat(host.awaitInterrupt(0)).as("admin completions fire vector 0").isPositive();

        MemorySegment ns = host.identify(0, 1);
        assertThat(ns.get(ValueLayout.JAVA_LONG_UNALIGNED, 0)).as("NSZE").isEqualTo(NS_BLOCKS);
        assertThat(ns.get(ValueLayout.JAVA_LONG_UNALIGNED, 8)).as("NCAP").isEqualTo(NS_BLOCKS);
        assertThat(ns.get(ValueLayout.JAVA_BYTE, 26) & 0xF).as("FLBAS").isZero();
        assertThat((ns.get(ValueLayout.JAVA_INT_UNALIGNED, 128) >>> 16) & 0xFF).as("LBADS").isEqualTo(9);

        MemorySegment list = host.identify(2, 0);
        assertThat(list.get(ValueLayout.JAVA_INT_UNALIGNED, 0)).isEqualTo(1);
        assertThat(list.get(ValueLayout.JAVA_INT_UNALIGNED, 4)).isZero();
        assertThat(host.identify(2, 1).get(ValueLayout.JAVA_INT_UNALIGNED, 0)).as("none after 1").isZero();

        MemorySegment desc = host.identify(3, 1);
        assertThat(desc.get(ValueLayout.JAVA_BYTE, 0)).as("NGUID descriptor").isEqualTo((byte) 2);
        assertThat(desc.get(ValueLayout.JAVA_BYTE, 1)).isEqualTo((byte) 16);
        assertThat(desc.get(ValueLayout.JAVA_BYTE, 20)).as("UUID descriptor").isEqualTo((byte) 3);
        assertThat(desc.get(ValueLayout.JAVA_BYTE, 40)).as("end of list").isZero();
        assertThat(desc.asSlice(4, 16).toArray(ValueLayout.JAVA_BYTE)).isEqualTo(ns.asSlice(104, 16)
                .toArray(ValueLayout.JAVA_BYTE));

        // Identify errors: unknown CNS, a namespace that does not exist.
        long buf = host.alloc(PAGE);
        assertThat(host.call(admin, Sqe.of(0x06, 0).prps(buf, 0).dwords(0x1F, 0, 0, 0)).sctSc()).isEqualTo(0x02);
        Cqe badNs = host.call(admin, Sqe.of(0x06, 2).prps(buf, 0).dwords(0, 0, 0, 0));
        assertThat(badNs.sctSc()).isEqualTo(0x0B);
        assertThat(badNs.dnr()).isTrue();

        // Number of Queues: 4 requested, 4 granted; more than 16 is capped at 16.
        assertThat(host.ok(admin, Sqe.of(0x09, 0).dwords(0x07, 3 << 16 | 3, 0, 0)).result()).isEqualTo(3 << 16 | 3);
        assertThat(host.ok(admin, Sqe.of(0x0A, 0).dwords(0x07, 0, 0, 0)).result()).isEqualTo(3 << 16 | 3);
        Queue q1 = host.createIoQueue(1, 16, 1);
        host.createIoQueue(2, 16, 2);
        // Number of Queues after I/O queues exist is a sequence error.
        assertThat(host.call(admin, Sqe.of(0x09, 0).dwords(0x07, 0, 0, 0)).sctSc()).isEqualTo(0x0C);
        roundTrip(q1, 0, 512, 0, 0, 1);
        assertThat(host.awaitInterrupt(1)).as("CQ 1 fires vector 1").isPositive();
    }

    @Test
    void everyPrpShapeMovesTheRightBytes() throws Exception {
        Queue q = ready(2);
        roundTrip(q, 0, 512, 0, 0, 1); // PRP1 only
        roundTrip(q, 3, 1024, 0x200, 0, 2); // PRP1 only, offset into the page
        roundTrip(q, 8, 8192, 0, 0, 3); // PRP1 + PRP2
        roundTrip(q, 40, 4096, 0x800, 0, 4); // PRP1 + PRP2 with an offset: two partial pages
        roundTrip(q, 100, 64 << 10, 0x400, 0, 5); // PRP list in one list page, offset first page
        roundTrip(q, 300, 64 << 10, 0, PAGE - 32, 6); // list starting 4 slots before its page ends: chained
        roundTrip(q, 1000, (2 << 20) + (256 << 10), 0x600, 16, 7); // 577 list entries over two list pages
        roundTrip(q, 6000, 4 << 20, 0, 0, 8); // the maximum transfer (MDTS)

        // One more block than MDTS allows.
        Transfer t = transfer(PAGE, 0, 0);
        Cqe tooBig = host.call(q, io(READ, 0, (4 << 20) / 512 + 1, t.prp1(), t.prp2()));
        assertThat(tooBig.sctSc()).isEqualTo(0x02);
    }

    @Test
    void flushWriteZeroesAndDeallocate() throws Exception {
        Queue q = ready(1);
        byte[] data = pattern(64 << 10, 9);
        Transfer w = transfer(data.length, 0, 0);
        w.fill(host, data);
        host.ok(q, io(WRITE, 0, data.length / 512, w.prp1(), w.prp2()));
        host.ok(q, Sqe.of(FLUSH, 1));
        host.ok(q, Sqe.of(FLUSH, 0xFFFF_FFFF));

        // Write Zeroes blocks 8..15.
        host.ok(q, Sqe.of(WRITE_ZEROES, 1).dwords(8, 0, 7, 0));
        byte[] expected = data.clone();
        java.util.Arrays.fill(expected, 8 * 512, 16 * 512, (byte) 0);
        // Deallocate blocks 20..23 and 100..127 in one Dataset Management command.
        long ranges = host.alloc(PAGE);
        MemorySegment r = host.at(ranges, 32);
        r.set(ValueLayout.JAVA_INT_UNALIGNED, 4, 4);
        r.set(ValueLayout.JAVA_LONG_UNALIGNED, 8, 20);
        r.set(ValueLayout.JAVA_INT_UNALIGNED, 20, 28);
        r.set(ValueLayout.JAVA_LONG_UNALIGNED, 24, 100);
        host.ok(q, Sqe.of(DSM, 1).prps(ranges, 0).dwords(1, 1 << 2, 0, 0));
        java.util.Arrays.fill(expected, 20 * 512, 24 * 512, (byte) 0);
        java.util.Arrays.fill(expected, 100 * 512, 128 * 512, (byte) 0);

        Transfer rd = transfer(data.length, 0, 0);
        host.ok(q, io(READ, 0, data.length / 512, rd.prp1(), rd.prp2()));
        assertThat(rd.contents(host, data.length)).isEqualTo(expected);
        assertThat(fileBytes(0, data.length)).isEqualTo(expected);

        // A DSM range past the end, and Write Zeroes past the end.
        r.set(ValueLayout.JAVA_LONG_UNALIGNED, 8, NS_BLOCKS - 2);
        assertThat(host.call(q, Sqe.of(DSM, 1).prps(ranges, 0).dwords(0, 1 << 2, 0, 0)).sctSc()).isEqualTo(0x80);
        assertThat(host.call(q, Sqe.of(WRITE_ZEROES, 1).dwords((int) NS_BLOCKS - 1, 0, 1, 0)).sctSc())
                .isEqualTo(0x80);
    }

    @Test
    void badCommandsCompleteWithTheirStatusAndTheControllerGoesOn() throws Exception {
        Queue admin = host.enable(32);
        host.enableMsix(NvmeDevice.MSIX_VECTORS);
        host.ok(admin, Sqe.of(0x09, 0).dwords(0x07, 3 << 16 | 3, 0, 0)); // four I/O queue pairs allowed
        Queue q = host.createIoQueue(1, 64, 1);
        Transfer t = transfer(PAGE, 0, 0);

        Cqe range = host.call(q, io(READ, NS_BLOCKS - 1, 2, t.prp1(), t.prp2()));
        assertThat(range.sctSc()).as("LBA out of range").isEqualTo(0x80);
        assertThat(range.dnr()).isTrue();
        assertThat(host.call(q, io(WRITE, -1L, 1, t.prp1(), 0)).sctSc()).as("LBA wraps").isEqualTo(0x80);
        assertThat(host.call(q, Sqe.of(0x7F, 1)).sctSc()).as("I/O opcode").isEqualTo(0x01);
        assertThat(host.call(admin, Sqe.of(0xEE, 0)).sctSc()).as("admin opcode").isEqualTo(0x01);
        assertThat(host.call(q, io(READ, 0, 1, t.prp1(), 0).dwords(0, 0, 0, 0)).status()).isZero();
        Sqe wrongNs = new Sqe(READ, 2, t.prp1(), 0, 0, 0, 0, 0);
        assertThat(host.call(q, wrongNs).sctSc()).as("namespace 2").isEqualTo(0x0B);

        // PRPs outside guest memory: data transfer error, for data and for a PRP list.
        long outside = RAM + RAM_SIZE + (1 << 20);
        assertThat(host.call(q, io(READ, 0, 1, outside, 0)).sctSc()).isEqualTo(0x04);
        assertThat(host.call(q, io(WRITE, 0, 16, t.prp1(), outside)).sctSc()).isEqualTo(0x04);
        assertThat(host.call(q, io(WRITE, 0, 64, t.prp1(), outside)).sctSc()).as("list outside").isEqualTo(0x04);
        // Misaligned PRPs.
        assertThat(host.call(q, io(READ, 0, 1, t.prp1() + 2, 0)).sctSc()).isEqualTo(0x13);
        assertThat(host.call(q, io(READ, 0, 16, t.prp1(), t.prp1() + 512)).sctSc()).isEqualTo(0x13);
        // SGLs are not supported.
        Cqe sgl = host.call(q, new Sqe(READ | 1 << 14, 1, t.prp1(), 0, 0, 0, 0, 0));
        assertThat(sgl.sctSc()).isEqualTo(0x02);

        // Queue management errors.
        long mem = host.alloc(PAGE);
        assertThat(host.call(admin, Sqe.of(0x05, 0).prps(mem, 0).dwords(15 << 16, 0b11, 0, 0)).sctSc())
                .as("CQ id 0").isEqualTo(0x101);
        assertThat(host.call(admin, Sqe.of(0x05, 0).prps(mem, 0).dwords(15 << 16 | 17, 0b11, 0, 0)).sctSc())
                .as("CQ id over the allocated count").isEqualTo(0x101);
        assertThat(host.call(admin, Sqe.of(0x05, 0).prps(mem, 0).dwords(15 << 16 | 1, 0b11, 0, 0)).sctSc())
                .as("CQ 1 exists").isEqualTo(0x101);
        assertThat(host.call(admin, Sqe.of(0x05, 0).prps(mem, 0).dwords(0 << 16 | 2, 0b11, 0, 0)).sctSc())
                .as("one entry").isEqualTo(0x102);
        assertThat(host.call(admin, Sqe.of(0x05, 0).prps(mem, 0).dwords(1024 << 16 | 2, 0b11, 0, 0)).sctSc())
                .as("1025 entries").isEqualTo(0x102);
        assertThat(host.call(admin, Sqe.of(0x05, 0).prps(mem, 0).dwords(15 << 16 | 2, 17 << 16 | 0b11, 0, 0))
                .sctSc()).as("vector 17").isEqualTo(0x108);
        assertThat(host.call(admin, Sqe.of(0x05, 0).prps(mem, 0).dwords(15 << 16 | 2, 0b10, 0, 0)).sctSc())
                .as("PC = 0").isEqualTo(0x02);
        assertThat(host.call(admin, Sqe.of(0x01, 0).prps(mem, 0).dwords(15 << 16 | 2, 5 << 16 | 1, 0, 0)).sctSc())
                .as("SQ on a missing CQ").isEqualTo(0x100);
        assertThat(host.call(admin, Sqe.of(0x04, 0).dwords(1, 0, 0, 0)).sctSc()).as("CQ 1 in use")
                .isEqualTo(0x10C);
        assertThat(host.call(admin, Sqe.of(0x00, 0).dwords(0, 0, 0, 0)).sctSc()).as("delete SQ 0")
                .isEqualTo(0x101);
        assertThat(host.call(admin, Sqe.of(0x00, 0).dwords(7, 0, 0, 0)).sctSc()).as("delete missing SQ")
                .isEqualTo(0x101);
        // Features and logs.
        assertThat(host.call(admin, Sqe.of(0x0A, 0).dwords(0x55, 0, 0, 0)).sctSc()).isEqualTo(0x02);
        assertThat(host.call(admin, Sqe.of(0x09, 0).dwords(0x06 | 1 << 31, 1, 0, 0)).sctSc()).isEqualTo(0x10D);
        assertThat(host.call(admin, Sqe.of(0x02, 0).prps(mem, 0).dwords(0x7F | 127 << 16, 0, 0, 0)).sctSc())
                .isEqualTo(0x109);

        // The error log holds the newest failure first.
        Cqe log = host.ok(admin, Sqe.of(0x02, 0).prps(mem, 0).dwords(0x01 | 15 << 16, 0, 0, 0));
        assertThat(log.status()).isZero();
        MemorySegment entry = host.at(mem, 64);
        assertThat(entry.get(ValueLayout.JAVA_LONG_UNALIGNED, 0)).as("error count").isGreaterThanOrEqualTo(20);
        assertThat(entry.get(ValueLayout.JAVA_SHORT_UNALIGNED, 8)).as("SQ of the newest error").isZero();

        // Delete and re-create a pair: the controller is healthy.
        host.ok(admin, Sqe.of(0x00, 0).dwords(1, 0, 0, 0));
        host.ok(admin, Sqe.of(0x04, 0).dwords(1, 0, 0, 0));
        host.forget(1);
        Queue again = host.createIoQueue(1, 16, 1);
        roundTrip(again, 10, 4096, 0, 0, 3);
        assertThat(host.read32(CSTS)).as("no fatal status").isEqualTo(1);
    }

    @Test
    void twoQueuesServeManyCommandsConcurrentlyAndCompletionsWrapThePhase() throws Exception {
        host.enable(32);
        host.enableMsix(NvmeDevice.MSIX_VECTORS);
        host.createIoQueues(2, 8); // small rings: the phase tag flips many times
        Queue[] qs = {host.queue(1), host.queue(2)};
        int perQueue = 40;
        int blocks = 16;
        Map<Integer, byte[]> written = new HashMap<>();
        for (String op : List.of("write", "read")) {
            Map<Integer, Transfer> buffers = new HashMap<>();
            int[] submitted = new int[2];
            int[] completed = new int[2];
            Map<Integer, Integer> cidToLba = new HashMap<>();
            while (completed[0] < perQueue || completed[1] < perQueue) {
                for (int k = 0; k < 2; k++) {
                    Queue q = qs[k];
                    // Keep both rings as full as they can be, then ring both doorbells.
                    while (submitted[k] < perQueue && q.room() > 0
                            && submitted[k] - completed[k] < q.cqSize - 1) {
                        int lba = (k * perQueue + submitted[k]) * blocks;
                        Transfer t = transfer(blocks * 512, (submitted[k] % 8) * 512, 0);
                        if (op.equals("write")) {
                            byte[] data = pattern(blocks * 512, lba);
                            t.fill(host, data);
                            written.put(lba, data);
                        }
                        int cid = host.post(q, io(op.equals("write") ? WRITE : READ, lba, blocks, t.prp1(),
                                t.prp2()));
                        buffers.put(cid, t);
                        cidToLba.put(cid, lba);
                        submitted[k]++;
                    }
                    host.ring(q);
                }
                for (int k = 0; k < 2; k++) {
                    Queue q = qs[k];
                    if (submitted[k] > completed[k]) {
                        Cqe c = host.next(q);
                        assertThat(c.status()).isZero();
                        Integer lba = cidToLba.remove(c.cid());
                        assertThat(lba).as("a CID that was submitted on this queue").isNotNull();
                        if (op.equals("read")) {
                            assertThat(buffers.get(c.cid()).contents(host, blocks * 512)).as("lba %d", lba)
                                    .isEqualTo(written.get(lba));
                        }
                        completed[k]++;
                    }
                }
            }
            assertThat(cidToLba).isEmpty();
        }
        for (Map.Entry<Integer, byte[]> e : written.entrySet()) {
            assertThat(fileBytes(e.getKey() * 512L, blocks * 512)).isEqualTo(e.getValue());
        }
        assertThat(host.interrupts(1) + host.interrupts(2)).as("vectors 1 and 2 fired").isPositive();
    }

    @Test
    void intxWhenMsixIsOff() throws Exception {
        int intx = host.enableIntx();
        Queue admin = host.enable(8);
        host.ok(admin, Sqe.of(0x0A, 0).dwords(0x07, 0, 0, 0));
        assertThat(host.awaitInterrupt(0)).as("INTx fired").isPositive();
        // The line went low when the host consumed the entry (head doorbell), so the next completion raises it
        // again; with INTMS bit 0 set it stays low until INTMC clears the mask.
        host.ok(admin, Sqe.of(0x0A, 0).dwords(0x07, 0, 0, 0));
        assertThat(host.awaitInterrupt(0)).isPositive();
        host.write32(NvmeHostDriver.INTMS, 1);
        assertThat(host.read32(NvmeHostDriver.INTMS)).isEqualTo(1);
        int cid = host.submit(admin, Sqe.of(0x0A, 0).dwords(0x07, 0, 0, 0));
        NvmeHostDriver.await("the completion", () -> host.hasCompletion(admin));
        // A register read is answered after everything before it: the controller is done with the completion.
        assertThat(host.read32(CSTS)).isEqualTo(1);
        assertThat(host.interrupts(0)).as("masked").isZero();
        host.write32(NvmeHostDriver.INTMC, 1);
        assertThat(host.awaitInterrupt(0)).as("unmasked with an entry pending").isPositive();
        assertThat(host.next(admin).cid()).isEqualTo(cid);
        assertThat(intx).isNotNegative();
    }

    @Test
    void controllerResetMidLifeForgetsQueuesButKeepsData() throws Exception {
        Queue q = ready(2);
        byte[] data = pattern(8192, 42);
        Transfer w = transfer(8192, 0, 0);
        w.fill(host, data);
        host.ok(q, io(WRITE, 64, 16, w.prp1(), w.prp2()));
        // Outstanding commands at the reset: several writes rung and never waited for.
        for (int i = 0; i < 5; i++) {
            Transfer t = transfer(4096, 0, 0);
            host.post(host.queue(2), io(WRITE, 1000 + 8 * i, 8, t.prp1(), 0));
        }
        host.ring(host.queue(2));
        host.write32(NvmeHostDriver.CC, NvmeHostDriver.CC_CONFIG);
        host.awaitCsts("RDY = 0 after CC.EN = 0", 1, 0);
        assertThat(host.read32(NvmeHostDriver.AQA)).as("AQA survives a controller reset").isEqualTo(31 << 16 | 31);
        // Doorbells of a disabled controller are ignored.
        host.doorbell(2, 3);

        Queue admin = host.enable(16);
        // The old I/O queues are gone: queue 1 can be created again, and reads the old data.
        host.createIoQueues(1, 32);
        Transfer r = transfer(8192, 0, 0);
        host.ok(host.queue(1), io(READ, 64, 16, r.prp1(), r.prp2()));
        assertThat(r.contents(host, 8192)).isEqualTo(data);
        assertThat(admin.id).isZero();
    }

    @Test
    void shutdownNotificationFlushesAndReportsComplete() throws Exception {
        Queue q = ready(1);
        byte[] data = pattern(4096, 7);
        Transfer w = transfer(4096, 0, 0);
        w.fill(host, data);
        host.ok(q, io(WRITE, 500, 8, w.prp1(), 0));
        host.write32(NvmeHostDriver.CC, NvmeHostDriver.CC_CONFIG | 1 | 1 << 14);
        host.awaitCsts("CSTS.SHST = complete", 0b1100, 0b1000);
        assertThat(fileBytes(500 * 512, 4096)).isEqualTo(data);
        // After the shutdown a reset brings it back.
        host.enable(8);
        assertThat(host.read32(CSTS)).isEqualTo(1);
    }

    @Test
    void asyncEventsReportInvalidDoorbellsAndAreLimited() throws Exception {
        Queue admin = host.enable(16);
        host.enableMsix(NvmeDevice.MSIX_VECTORS);
        int[] aers = new int[4];
        for (int i = 0; i < 4; i++) {
            aers[i] = host.submit(admin, Sqe.of(0x0C, 0));
        }
        // The four requests stay parked; a fifth is over the limit (AERL + 1 = 4) and completes at once.
        int fifth = host.submit(admin, Sqe.of(0x0C, 0));
        Cqe over = host.next(admin);
        assertThat(over.cid()).isEqualTo(fifth);
        assertThat(over.sctSc()).isEqualTo(0x105);

        host.doorbell(2 * 5, 1); // SQ 5 does not exist
        Cqe event = host.next(admin);
        assertThat(event.status()).isZero();
        assertThat(event.cid()).isEqualTo(aers[0]);
        assertThat(event.result()).as("error event, invalid doorbell register, error log").isEqualTo(0x01_00_00);
        host.doorbell(1, 500); // admin CQ head far outside the ring: masked until the log is read
        long log = host.alloc(PAGE);
        host.ok(admin, Sqe.of(0x02, 0).prps(log, 0).dwords(0x01 | 15 << 16, 0, 0, 0));
        Cqe second = host.next(admin);
        assertThat(second.cid()).isEqualTo(aers[1]);
        assertThat(second.result()).as("invalid doorbell write value").isEqualTo(0x01_01_00);
    }

    @Test
    void featuresAndLogs() throws Exception {
        Queue admin = host.enable(16);
        host.ok(admin, Sqe.of(0x09, 0).dwords(0x08, 0x0A04, 0, 0));
        assertThat(host.ok(admin, Sqe.of(0x0A, 0).dwords(0x08, 0, 0, 0)).result()).isEqualTo(0x0A04);
        assertThat(host.ok(admin, Sqe.of(0x0A, 0).dwords(0x06, 0, 0, 0)).result()).as("VWC on").isEqualTo(1);
        host.ok(admin, Sqe.of(0x09, 0).dwords(0x06, 0, 0, 0));
        assertThat(host.ok(admin, Sqe.of(0x0A, 0).dwords(0x06, 0, 0, 0)).result()).isZero();
        assertThat(host.ok(admin, Sqe.of(0x0A, 0).dwords(0x06 | 1 << 8, 0, 0, 0)).result()).as("default")
                .isEqualTo(1);
        host.ok(admin, Sqe.of(0x09, 0).dwords(0x0B, 0x100, 0, 0));
        assertThat(host.ok(admin, Sqe.of(0x0A, 0).dwords(0x0B, 0, 0, 0)).result()).isEqualTo(0x100);
        host.ok(admin, Sqe.of(0x09, 0).dwords(0x01, 0x0302_0103, 0, 0));
        assertThat(host.ok(admin, Sqe.of(0x0A, 0).dwords(0x01, 0, 0, 0)).result()).isEqualTo(0x0302_0103);
        assertThat(host.call(admin, Sqe.of(0x09, 0).dwords(0x02, 3, 0, 0)).sctSc()).as("power state 3")
                .isEqualTo(0x02);
        host.ok(admin, Sqe.of(0x09, 0).dwords(0x02, 0, 0, 0));

        // With the write cache off, writes still land in the file.
        host.createIoQueues(1, 16);
        byte[] data = pattern(1024, 3);
        Transfer w = transfer(1024, 0, 0);
        w.fill(host, data);
        host.ok(host.queue(1), io(WRITE, 2, 2, w.prp1(), 0));
        assertThat(fileBytes(1024, 1024)).isEqualTo(data);

        long page = host.alloc(PAGE);
        host.ok(admin, Sqe.of(0x02, 0xFFFF_FFFF).prps(page, 0).dwords(0x02 | 127 << 16, 0, 0, 0));
        MemorySegment smart = host.at(page, 512);
        assertThat(smart.get(ValueLayout.JAVA_SHORT_UNALIGNED, 1)).as("temperature").isPositive();
        assertThat(smart.get(ValueLayout.JAVA_LONG_UNALIGNED, 80)).as("host write commands").isEqualTo(1);
        assertThat(smart.get(ValueLayout.JAVA_LONG_UNALIGNED, 48)).as("data units written").isEqualTo(1);
        // Log offset: the firmware slot log from byte 8 is the revision of slot 1.
        host.ok(admin, Sqe.of(0x02, 0).prps(page, 0).dwords(0x03 | 1 << 16, 0, 8, 0));
        assertThat(new String(host.at(page, 8).toArray(ValueLayout.JAVA_BYTE), StandardCharsets.US_ASCII).trim())
                .isEqualTo("0.1");
        assertThat(host.call(admin, Sqe.of(0x02, 0).prps(page, 0).dwords(0x03, 0, 2, 0)).sctSc())
                .as("offset not dword aligned").isEqualTo(0x02);
        assertThat(host.ok(admin, Sqe.of(0x08, 0).dwords(1 << 16 | 1, 0, 0, 0)).result() & 1)
                .as("abort: not aborted").isEqualTo(1);
    }

    @Test
    void deviceResetAndFunctionLevelResetStopTheController() throws Exception {
        Queue q = ready(1);
        roundTrip(q, 0, 4096, 0, 0, 1);
        assertThat(errno(host.client(), VfioUserCommand.DEVICE_RESET, null)).isZero();
        assertThat(host.read32(CSTS)).isZero();
        assertThat(host.read32(NvmeHostDriver.CC)).isZero();
        assertThat(host.read64(NvmeHostDriver.ASQ)).isZero();

        Queue again = ready(1);
        roundTrip(again, 8, 4096, 0, 0, 2);
        int express = DmaAndInterruptsTest.findCapability(host.client(), 0x10);
        ByteBuf flr = Unpooled.directBuffer(2).writeShortLE(0x8000);
        assertThat(errno(host.client(), VfioUserCommand.REGION_WRITE,
                RegionAccess.inRegion(7).atOffset(express + 8).data(flr)))
                .isZero();
        host.awaitCsts("RDY = 0 after FLR", 1, 0);
        assertThat(host.read32(NvmeHostDriver.CC)).isZero();
    }

    @Test
    void dmaMapChangesWithCommandsInFlightQuiesceAndResume() throws Exception {
        Queue q = ready(1);
        int commands = 30;
        List<Transfer> buffers = new ArrayList<>();
        for (int i = 0; i < commands; i++) {
            Transfer t = transfer(32 << 10, 0, 0);
            t.fill(host, pattern(32 << 10, i));
            buffers.add(t);
            host.post(q, io(WRITE, 64L * i, 64, t.prp1(), t.prp2()));
        }
        host.ring(q);
        // Another mapping comes and goes while the writes run: each change quiesces the device first.
        try (GuestMemory extra = GuestMemory.allocate(RAM + RAM_SIZE, 1 << 20)) {
            assertThat(errno(host.client(), VfioUserCommand.DMA_MAP,
                    DmaMapRequest.of(3, 0, RAM + RAM_SIZE, 1 << 20), FdSet.of(extra.dupFd()))).isZero();
            assertThat(errno(host.client(), VfioUserCommand.DMA_UNMAP,
                    io.vfiouser.codec.payload.DmaUnmapRequest.of(0, RAM + RAM_SIZE, 1 << 20))).isZero();
        }
        for (int i = 0; i < commands; i++) {
            assertThat(host.next(q).status()).isZero();
        }
        for (int i = 0; i < commands; i++) {
            assertThat(fileBytes(64L * 512 * i, 32 << 10)).isEqualTo(pattern(32 << 10, i));
        }
    }

    @Test
    void guestMemoryReachedThroughDmaMessages() throws Exception {
        stop();
        start(ServerOptions.DEFAULT.withDmaLayout(DmaLayout.values()[0]),
                ClientOptions.DEFAULT.withDmaLayout(DmaLayout.values()[0]), false);
        Queue q = ready(2);
        roundTrip(q, 0, 4096, 0, 0, 1);
        roundTrip(host.queue(2), 100, 64 << 10, 0x200, PAGE - 24, 2);
    }
}
