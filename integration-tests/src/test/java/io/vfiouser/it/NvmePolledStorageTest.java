package io.vfiouser.it;

import static io.vfiouser.it.NvmeHostDriver.PAGE;
import static io.vfiouser.it.NvmeHostDriver.io;
import static io.vfiouser.it.Wire.errno;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assumptions.assumeThat;

import io.vfiouser.client.GuestMemory;
import io.vfiouser.client.VfioUserClient;
import io.vfiouser.codec.VfioUserCommand;
import io.vfiouser.codec.payload.DmaMapRequest;
import io.vfiouser.examples.nvme.NvmeDevice;
import io.vfiouser.examples.nvme.NvmeOptions;
import io.vfiouser.it.NvmeHostDriver.Queue;
import io.vfiouser.it.NvmeHostDriver.Sqe;
import io.vfiouser.transport.FdSet;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The NVMe example as a host that never sets up an interrupt sees it (SPDK's way: queues created with IEN = 0,
 * completions polled in memory, no DEVICE_SET_IRQS at all), and its storage: Dataset Management's deallocate
 * frees space in the backing file, and a namespace far larger than the machine's memory stays correct.
 */
class NvmePolledStorageTest {
    private static final long RAM = 0x4000_0000L;
    private static final long RAM_SIZE = 16L << 20;
    private static final int MIB = 1 << 20;
    private static final int WRITE = 0x01;
    private static final int READ = 0x02;
    private static final int WRITE_ZEROES = 0x08;
    private static final int DSM = 0x09;
    private static final int FLUSH = 0x00;
    /** Write Zeroes: Deallocate. */
    private static final int DEAC = 1 << 25;

    private Path dir;
    private Path backing;
    private ServerFixture fixture;
    private GuestMemory ram;
    private NvmeHostDriver host;

    private void start(long namespaceSize) throws Exception {
        dir = Files.createTempDirectory("nvme-polled");
        backing = dir.resolve("ns1.img");
        NvmeDevice device = new NvmeDevice("polled-nvme", new NvmeOptions(backing, namespaceSize));
        fixture = new ServerFixture(NvmeDevice.description("polled-nvme"), device);
        VfioUserClient client = fixture.client();
        ram = GuestMemory.allocate(RAM, RAM_SIZE);
        assertThat(errno(client, VfioUserCommand.DMA_MAP, DmaMapRequest.of(3, 0, RAM, RAM_SIZE),
                FdSet.of(ram.dupFd()))).isZero();
        host = new NvmeHostDriver(client, ram);
        host.enable(32);
        host.ok(host.admin(), Sqe.of(0x09, 0).dwords(0x07, 1 << 16 | 1, 0, 0)); // two queue pairs
    }

    @AfterEach
    void stop() throws Exception {
        if (fixture == null) {
            return;
        }
        host.close();
        ram.close();
        fixture.close();
        Files.deleteIfExists(backing);
        Files.deleteIfExists(dir);
    }

    @Test
    void aHostThatNeverSetsUpInterruptsPollsAdminAndIo() throws Exception {
        start(16L << 20);
        // Every mandatory feature answers, Error Recovery (05h) included.
        for (int fid : new int[] {0x01, 0x02, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B}) {
            host.ok(host.admin(), Sqe.of(0x0A, fid == 0x05 ? 1 : 0).dwords(fid, 0, 0, 0));
        }
        Queue q1 = host.createPolledIoQueue(1, 16);
        Queue q2 = host.createPolledIoQueue(2, 16);
        long out = host.alloc(32 << 10);
        long in = host.alloc(32 << 10);
        long outList = prpList(out, 32 << 10);
        long inList = prpList(in, 32 << 10);
        Random random = new Random(5);
        for (int i = 0; i < 40; i++) { // past both rings' ends: the phase wraps
            Queue q = i % 2 == 0 ? q1 : q2;
            byte[] data = new byte[32 << 10];
            random.nextBytes(data);
            long lba = 64L * i;
            MemorySegment.copy(data, 0, host.at(out, data.length), ValueLayout.JAVA_BYTE, 0, data.length);
            host.ok(q, io(WRITE, lba, 64, out, outList));
            host.at(in, data.length).fill((byte) 0);
            host.ok(q, io(READ, lba, 64, in, inList));
            assertThat(host.at(in, data.length).toArray(ValueLayout.JAVA_BYTE)).as("LBA %d", lba).isEqualTo(data);
        }
    }

    @Test
    void deallocatePunchesHolesThatReadAsZeros() throws Exception {
        start(64L << 20);
        Queue q = host.createPolledIoQueue(1, 16);
        // 8 MiB of data in 128 KiB writes.
        long buf = host.alloc(128 << 10);
        long list = prpList(buf, 128 << 10);
        byte[] data = new byte[128 << 10];
        java.util.Arrays.fill(data, (byte) 0x6B);
        MemorySegment.copy(data, 0, host.at(buf, data.length), ValueLayout.JAVA_BYTE, 0, data.length);
        for (long lba = 0; lba < 16384; lba += 256) {
            host.ok(q, io(WRITE, lba, 256, buf, list));
        }
        host.ok(q, Sqe.of(FLUSH, 1));
        long written = SparseFiles.allocatedBytes(backing);
        assertThat(written).as("allocated after writing 8 MiB").isGreaterThanOrEqualTo(8L * MIB);

        // Deallocate 2 MiB at 1 MiB and 3 MiB at 4 MiB (blocks 2048..6143 and 8192..14335) in one command.
        long ranges = host.alloc(PAGE);
        MemorySegment r = host.at(ranges, 32);
        r.set(ValueLayout.JAVA_INT_UNALIGNED, 4, 4096);
        r.set(ValueLayout.JAVA_LONG_UNALIGNED, 8, 2048);
        r.set(ValueLayout.JAVA_INT_UNALIGNED, 20, 6144);
        r.set(ValueLayout.JAVA_LONG_UNALIGNED, 24, 8192);
        host.ok(q, Sqe.of(DSM, 1).prps(ranges, 0).dwords(1, 1 << 2, 0, 0));
        long afterDsm = SparseFiles.allocatedBytes(backing);
        assertThat(written - afterDsm).as("space freed by deallocating 5 MiB").isGreaterThanOrEqualTo(5L * MIB);
        assertThat(Files.size(backing)).as("the namespace keeps its size").isEqualTo(64L << 20);

        // Write Zeroes with DEAC frees its 1 MiB too (blocks 15360..17407 reach past the written 8 MiB).
        host.ok(q, Sqe.of(WRITE_ZEROES, 1).dwords(15360, 0, 2047 | DEAC, 0));
        assertThat(afterDsm - SparseFiles.allocatedBytes(backing)).as("space freed by Write Zeroes with DEAC")
                .isGreaterThanOrEqualTo(512L << 10);

        // What was deallocated reads as zeros, through the controller and in the file; the rest is intact.
        long rd = host.alloc(128 << 10);
        long rdList = prpList(rd, 128 << 10);
        for (long lba = 0; lba < 16384; lba += 256) {
            host.ok(q, io(READ, lba, 256, rd, rdList));
            boolean gone = (lba >= 2048 && lba < 6144) || (lba >= 8192 && lba < 14336) || lba >= 15360;
            byte expected = gone ? 0 : (byte) 0x6B;
            byte[] back = host.at(rd, 128 << 10).toArray(ValueLayout.JAVA_BYTE);
            assertThat(allEqual(back, expected)).as("LBA %d reads %s", lba, gone ? "zeros" : "the data").isTrue();
            assertThat(allEqual(fileBytes(lba * 512, 128 << 10), expected)).as("file at LBA %d", lba).isTrue();
        }
    }

    @Test
    void aNamespaceFarLargerThanMemoryIsSparseAndCorrect() throws Exception {
        long size = 4L << 40; // 4 TiB: LBAs above 2^32, far beyond this machine's memory and page cache
        assumeThat(size).as("the namespace must exceed the machine's memory").isGreaterThan(memTotal() * 4);
        start(size);
        Queue q = host.createPolledIoQueue(1, 16);
        MemorySegment ns = host.identify(0, 1);
        assertThat(ns.get(ValueLayout.JAVA_LONG_UNALIGNED, 0)).as("NSZE").isEqualTo(size / 512);

        long blocks = size / 512;
        long[] lbas = {0, (1L << 32) - 4, (1L << 32) + 12345, blocks / 2 + 7, blocks - 8};
        long out = host.alloc(PAGE);
        long in = host.alloc(PAGE);
        for (int i = 0; i < lbas.length; i++) {
            byte[] data = new byte[PAGE];
            new Random(lbas[i]).nextBytes(data);
            MemorySegment.copy(data, 0, host.at(out, PAGE), ValueLayout.JAVA_BYTE, 0, PAGE);
            host.ok(q, io(WRITE, lbas[i], 8, out, 0));
        }
        host.ok(q, Sqe.of(FLUSH, 1));
        for (long lba : lbas) {
            byte[] data = new byte[PAGE];
            new Random(lba).nextBytes(data);
            host.at(in, PAGE).fill((byte) 0);
            host.ok(q, io(READ, lba, 8, in, 0));
            assertThat(host.at(in, PAGE).toArray(ValueLayout.JAVA_BYTE)).as("LBA %d", lba).isEqualTo(data);
            assertThat(fileBytes(lba * 512, PAGE)).as("the file at LBA %d", lba).isEqualTo(data);
        }
        // A block never written reads as zeros; past the end is out of range.
        host.ok(q, io(READ, blocks / 4, 8, in, 0));
        assertThat(allEqual(host.at(in, PAGE).toArray(ValueLayout.JAVA_BYTE), (byte) 0)).isTrue();
        assertThat(host.call(q, io(READ, blocks - 4, 8, in, 0)).sctSc()).as("LBA out of range").isEqualTo(0x80);
        assertThat(Files.size(backing)).isEqualTo(size);
        assertThat(SparseFiles.allocatedBytes(backing)).as("only the written blocks take space").isLessThan(4L * MIB);
    }

    // ------------------------------------------------------------------------------------------- helpers

    /** A PRP list for a contiguous guest buffer (PRP1 = its first page). */
    private long prpList(long data, int bytes) {
        long list = host.alloc(PAGE);
        for (int p = 1; p < bytes / PAGE; p++) {
            host.at(list, PAGE).set(ValueLayout.JAVA_LONG_UNALIGNED, 8L * (p - 1), data + (long) p * PAGE);
        }
        return list;
    }

    private static boolean allEqual(byte[] bytes, byte value) {
        for (byte b : bytes) {
            if (b != value) {
                return false;
            }
        }
        return true;
    }

    private byte[] fileBytes(long offset, int length) throws Exception {
        try (FileChannel ch = FileChannel.open(backing, StandardOpenOption.READ)) {
            ByteBuffer b = ByteBuffer.allocate(length);
            while (b.hasRemaining() && ch.read(b, offset + b.position()) >= 0) {
                // until full
            }
            return b.array();
        }
    }

    private static long memTotal() throws Exception {
        for (String line : Files.readAllLines(Path.of("/proc/meminfo"))) {
            if (line.startsWith("MemTotal:")) {
                return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
            }
        }
        throw new IllegalStateException("no MemTotal in /proc/meminfo");
    }
}
