package io.vfiouser.it;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assumptions.assumeThat;

import io.vfiouser.examples.nvme.DoorbellMode;
import io.vfiouser.examples.nvme.NvmeDevice;
import io.vfiouser.examples.nvme.NvmeOptions;
import io.vfiouser.it.SpdkWireClient.Reply;
import io.vfiouser.transport.linux.ErrnoException;
import io.vfiouser.transport.linux.Linux;
import io.vfiouser.transport.testing.FdCount;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The NVMe example as SPDK's user-space NVMe driver attaches to it ({@code trtype:VFIOUSER}), message for message
 * (docs/clients.md lists the facts and where they come from): VERSION 0.1 without capabilities, every message
 * with id 0, DEVICE_GET_REGION_INFO of every region with SPDK's 4064-byte request, guest memory shared as the
 * process's own memory (IOVA = its virtual address) in several DMA_MAPs of one file at different offsets, PCI
 * COMMAND with bus mastering and INTx disable, 8-byte register accesses, the admin sequence SPDK runs at
 * attach, I/O queues without interrupts whose completions the host polls, and DMA_UNMAP with the mapping's fd
 * attached. No SET_IRQS is ever sent. With the controller's {@code --doorbells=mmap} the client maps BAR0's
 * doorbell page from the fd of its region reply, at the offset of its one sparse area, and writes every doorbell
 * (the admin queue's too) straight into it, as SPDK does; in the other modes, and in one mmap-mode test, the
 * doorbells go as REGION_WRITE messages instead.
 */
class SpdkClientTest {
    private static final int MIB = 1 << 20;
    private static final int PAGE = 4096;
    private static final int BAR0 = 0;
    private static final int CONFIG = 7;
    private static final long NS_SIZE = 16L << 20;
    /** SPDK's largest transfer on vfio-user (NVME_MAX_XFER_SIZE in nvme_vfio_user.c). */
    private static final int SPDK_MAX_TRANSFER = 128 << 10;
    /** CC as SPDK enables it: NVM command set, 4 KiB pages, round robin, SQ entries 2^6, CQ entries 2^4, EN. */
    private static final int CC_ENABLE = 6 << 16 | 4 << 20 | 1;
    /** SPDK's admin queue on PCIe and vfio-user: at least NVME_PCIE_MIN_ADMIN_QUEUE_SIZE (256) entries. */
    private static final int ADMIN_ENTRIES = 256;
    /** SPDK's default I/O queue size (DEFAULT_IO_QUEUE_SIZE). */
    private static final int IO_ENTRIES = 256;
    /** VFIO_REGION_INFO_FLAG_MMAP. */
    private static final int REGION_MMAP = 4;
    /** VFIO_REGION_INFO_CAP_SPARSE_MMAP. */
    private static final int CAP_SPARSE_MMAP = 1;
    private static final int DOORBELL_PAGE = 0x1000;
    /** SPDK's doorbell store: a 4-byte volatile MMIO write after a write barrier. */
    private static final VarHandle DOORBELL = ValueLayout.JAVA_INT.varHandle();

    /** How the client rings: REGION_WRITE messages, or stores into the mapped doorbell page as SPDK does. */
    private enum Ring {
        MESSAGES,
        MAPPED_PAGE
    }

    private Path dir;
    private Path backing;
    private ServerFixture fixture;

    @BeforeEach
    void start() throws Exception {
        dir = Files.createTempDirectory("nvme-spdk");
        backing = dir.resolve("ns1.img");
    }

    /** Serves the controller with doorbell mode {@code doorbells}. */
    private void serve(DoorbellMode doorbells) throws Exception {
        NvmeDevice device = new NvmeDevice("spdk-nvme", new NvmeOptions(backing, NS_SIZE, doorbells));
        fixture = new ServerFixture(device.description(), device);
    }

    @AfterEach
    void stop() throws Exception {
        if (fixture != null) {
            fixture.close();
        }
        Files.deleteIfExists(backing);
        Files.deleteIfExists(dir);
    }

    @Test
    void attachesAsSpdkDoesAndServesPolledAdminAndIo() throws Exception {
        serve(DoorbellMode.DEFAULT);
        // DPDK shares its memory as files (hugetlbfs, or memfds with --no-huge/--in-memory) that are not sealed.
        int memfd = Linux.memfdCreate("spdk-like-memory", 0);
        try {
            Linux.ftruncate(memfd, 4L * MIB);
            attachAndRunIo(memfd, Ring.MESSAGES);
        } finally {
            Linux.close(memfd);
        }
    }

    /**
     * SPDK's own layout ({@code --doorbells=mmap}): BAR0 is mappable in one sparse area, the doorbell page, with
     * one fd; the client writes its doorbells into its mapping only, and the controller, watching the page, serves
     * the admin sequence and polled I/O (the queues deleted, created again and used, and the controller reset and
     * enabled again, each starting from doorbells at 0).
     */
    @Test
    void mmapDoorbellsWrittenIntoTheMappedPageAsSpdkDoes() throws Exception {
        serve(DoorbellMode.MMAP);
        int memfd = Linux.memfdCreate("spdk-like-memory", 0);
        try {
            Linux.ftruncate(memfd, 4L * MIB);
            attachAndRunIo(memfd, Ring.MAPPED_PAGE);
        } finally {
            Linux.close(memfd);
        }
    }

    /**
     * With the doorbell page mappable, a client that rings by REGION_WRITE instead (one that did not map it) is
     * still served: the framework writes the message into the page, where the controller's watcher sees it.
     */
    @Test
    void mmapModeStillTakesDoorbellMessages() throws Exception {
        serve(DoorbellMode.MMAP);
        int memfd = Linux.memfdCreate("spdk-like-memory", 0);
        try {
            Linux.ftruncate(memfd, 4L * MIB);
            attachAndRunIo(memfd, Ring.MESSAGES);
        } finally {
            Linux.close(memfd);
        }
    }

    @Test
    void guestMemoryOnHugePages() throws Exception {
        serve(DoorbellMode.DEFAULT);
        assumeThat(freeHugePages()).as("2 MiB huge pages free (none configured: echo 2 > "
                + "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages)").isGreaterThanOrEqualTo(2);
        int memfd = Linux.memfdCreate("spdk-like-hugepages", Linux.MFD_HUGETLB);
        try {
            Linux.ftruncate(memfd, 4L * MIB);
            attachAndRunIo(memfd, Ring.MESSAGES);
        } finally {
            Linux.close(memfd);
        }
    }

    /**
     * Without {@code -g} (one hugetlbfs file per page), SPDK may register two pages that are contiguous in its
     * address space as one range and send the first page's fd with it: a map past the end of the file, which the
     * server refuses (EINVAL) rather than let a later access fault; the fd that came with it is closed.
     */
    @Test
    void aMapLargerThanItsFileIsRefusedAndItsFdClosed() throws Exception {
        serve(DoorbellMode.DEFAULT);
        int memfd = Linux.memfdCreate("one-page-file", 0);
        try (SpdkWireClient spdk = SpdkWireClient.connect(fixture.socket())) {
            Linux.ftruncate(memfd, 2L * MIB);
            answered(spdk.request(SpdkWireClient.VERSION, SpdkWireClient.version()));
            long before = FdCount.now();
            Reply refused = spdk.request(SpdkWireClient.DMA_MAP, SpdkWireClient.dmaMap(0x7f00_0000_0000L, 4L * MIB, 0),
                    memfd);
            assertThat(refused.isError()).isTrue();
            assertThat(refused.error()).isEqualTo(io.vfiouser.transport.linux.Errno.EINVAL);
            assertThat(refused.msgId()).isZero();
            FdCount.awaitAtMost(before);
            assertThat(FdCount.now()).isEqualTo(before);
        } finally {
            Linux.close(memfd);
        }
    }

    private static long freeHugePages() throws Exception {
        for (String line : Files.readAllLines(Path.of("/proc/meminfo"))) {
            if (line.startsWith("HugePages_Free:")) {
                return Long.parseLong(line.substring("HugePages_Free:".length()).trim());
            }
        }
        return 0;
    }

    /**
     * The whole attach and an I/O round trip over {@code memfd} (4 MiB), then the detach of its memory; doorbells
     * rung as {@code ring} says.
     */
    private void attachAndRunIo(int memfd, Ring ring) throws Exception {
        try (Arena arena = Arena.ofConfined(); SpdkWireClient spdk = SpdkWireClient.connect(fixture.socket())) {
            MemorySegment memory = Linux.mmap(memfd, 0, 4L * MIB, Linux.PROT_READ | Linux.PROT_WRITE, arena);
            long vaddr = memory.address();

            // VERSION 0.1 with no JSON at all; SPDK reads nothing from the reply but its success.
            Reply version = answered(spdk.request(SpdkWireClient.VERSION, SpdkWireClient.version()));
            assertThat(version.data().getShort(0)).as("major").isZero();
            if (version.payload().length > 4) {
                assertThat(version.payload()[version.payload().length - 1]).as("JSON NUL-terminated").isZero();
                assertThat(new String(version.payload(), 4, version.payload().length - 5, StandardCharsets.UTF_8))
                        .startsWith("{");
            }

            // DEVICE_GET_INFO, then every region it counts, with SPDK's 4 KiB request buffer.
            Reply info = answered(spdk.request(SpdkWireClient.DEVICE_GET_INFO, SpdkWireClient.deviceInfo()));
            int regions = info.data().getInt(8);
            assertThat(info.data().getInt(4) & 2).as("VFIO_DEVICE_FLAGS_PCI").isEqualTo(2);
            assertThat(regions).isGreaterThan(CONFIG);
            long bar0Size = 0;
            MemorySegment doorbells = null;
            for (int i = 0; i < regions; i++) {
                Reply region = answered(spdk.request(SpdkWireClient.DEVICE_GET_REGION_INFO, SpdkWireClient.regionInfo(i)));
                assertThat(region.payload().length).as("region %d reply fits SPDK's buffer", i)
                        .isBetween(32, SpdkWireClient.REGION_INFO_BUFFER);
                ByteBuffer r = region.data();
                assertThat(r.getInt(8)).as("index").isEqualTo(i);
                if (i == BAR0) {
                    bar0Size = r.getLong(16);
                    if (ring == Ring.MAPPED_PAGE) {
                        doorbells = mapDoorbellPage(region, arena);
                    }
                }
                region.closeFds(); // SPDK closes them once mapped
            }
            assertThat(bar0Size).as("BAR0 holds the doorbells at 0x1000").isGreaterThanOrEqualTo(0x2000);

            // spdk_mem_map registration: one DMA_MAP per registered range, IOVA = vaddr, fd + offset in the file.
            answered(spdk.request(SpdkWireClient.DMA_MAP, SpdkWireClient.dmaMap(vaddr, 2L * MIB, 0), memfd));
            answered(spdk.request(SpdkWireClient.DMA_MAP, SpdkWireClient.dmaMap(vaddr + 2L * MIB, 2L * MIB, 2L * MIB),
                    memfd));

            // PCI COMMAND: bus master and INTx disable, read-modify-write of 2 bytes.
            int command = answered(spdk.request(SpdkWireClient.REGION_READ, SpdkWireClient.regionRead(CONFIG, 4, 2)))
                    .data().getShort(16) & 0xFFFF;
            answered(spdk.request(SpdkWireClient.REGION_WRITE, SpdkWireClient.regionWrite(CONFIG, 4,
                    SpdkWireClient.le(2).putShort((short) (command | 0x404)).array())));
            assertThat(answered(spdk.request(SpdkWireClient.REGION_READ, SpdkWireClient.regionRead(CONFIG, 4, 2)))
                    .data().getShort(16) & 0x404).isEqualTo(0x404);

            Nvme nvme = new Nvme(spdk, memory, doorbells);
            nvme.enable();
            nvme.adminSequence();
            nvme.polledIo();
            if (doorbells != null) {
                // The page and the region agree: a REGION_READ inside it reads what the client stored there.
                assertThat(nvme.read(DOORBELL_PAGE, 4)).as("admin SQ tail by message")
                        .isEqualTo(doorbells.get(ValueLayout.JAVA_INT_UNALIGNED, 0) & 0xFFFF_FFFFL)
                        .isEqualTo(nvme.admin.tail);
                nvme.resetAndEnable();
                nvme.adminSequence();
            }

            // Detach: DMA_UNMAP of each range with the fd attached, as SPDK sends it. The server closes both the
            // fd that came with the unmap and the mapping's own: two fds per unmap, no more, no fewer.
            long before = FdCount.now();
            answered(spdk.request(SpdkWireClient.DMA_UNMAP, SpdkWireClient.dmaUnmap(vaddr, 2L * MIB), memfd));
            answered(spdk.request(SpdkWireClient.DMA_UNMAP, SpdkWireClient.dmaUnmap(vaddr + 2L * MIB, 2L * MIB), memfd));
            FdCount.awaitAtMost(before - 2);
            assertThat(FdCount.now()).as("exactly the two mappings' fds went").isEqualTo(before - 2);
            assertThat(Linux.fstat(memfd).size()).as("the client's own fd untouched").isEqualTo(4L * MIB);
        }
    }

    /**
     * What {@code vfio_device_setup_sparse_mmaps} does with BAR0's reply: MMAP set, a sparse-mmap capability, the
     * area's fd (the reply's only one) mapped at the reply's offset plus the area's. The layout SPDK's BAR access
     * needs: one area, the doorbell page, reaching the end of BAR0, so nothing device-served lies above its start.
     */
    private static MemorySegment mapDoorbellPage(Reply region, Arena arena) throws ErrnoException {
        ByteBuffer r = region.data();
        assertThat(r.getInt(4) & REGION_MMAP).as("BAR0 has the MMAP flag").isEqualTo(REGION_MMAP);
        int cap = r.getInt(12);
        assertThat(cap).as("BAR0's capability chain").isGreaterThanOrEqualTo(32);
        assertThat(r.getShort(cap) & 0xFFFF).as("sparse mmap capability").isEqualTo(CAP_SPARSE_MMAP);
        assertThat(r.getInt(cap + 8)).as("one sparse area").isEqualTo(1);
        long areaOffset = r.getLong(cap + 16);
        long areaSize = r.getLong(cap + 24);
        assertThat(areaOffset).as("the doorbell page").isEqualTo(DOORBELL_PAGE);
        assertThat(areaOffset + areaSize).as("the area reaches the end of BAR0").isEqualTo(r.getLong(16));
        assertThat(region.fds()).as("one fd for the region").hasSize(1);
        return Linux.mmap(region.fds()[0], r.getLong(24) + areaOffset, areaSize,
                Linux.PROT_READ | Linux.PROT_WRITE, arena);
    }

    private static Reply answered(Reply reply) {
        assertThat(reply.isError()).as("error %d for command %d", reply.error(), reply.command()).isFalse();
        assertThat(reply.msgId()).as("reply id").isZero();
        assertThat(reply.flags() & 0xF).as("a reply").isEqualTo(1);
        return reply;
    }

    /** The NVMe side of SPDK's driver, reduced to what it does at attach and for one I/O queue pair. */
    private static final class Nvme {
        private final SpdkWireClient spdk;
        private final MemorySegment memory;
        /** The mapped doorbell page, or null to ring by REGION_WRITE. */
        private final MemorySegment doorbells;
        private final long base;
        private long next;
        private QueuePair admin;
        private int cid;

        Nvme(SpdkWireClient spdk, MemorySegment memory, MemorySegment doorbells) {
            this.spdk = spdk;
            this.memory = memory;
            this.doorbells = doorbells;
            this.base = memory.address();
            this.next = base;
            this.admin = new QueuePair(0, alloc(ADMIN_ENTRIES * 64), alloc(ADMIN_ENTRIES * 16), ADMIN_ENTRIES);
        }

        /** A queue pair in the process's memory; its addresses are virtual addresses (= IOVAs). */
        static final class QueuePair {
            final int id;
            final long sq;
            final long cq;
            final int size;
            int tail;
            int head;
            boolean phase = true;

            QueuePair(int id, long sq, long cq, int size) {
                this.id = id;
                this.sq = sq;
                this.cq = cq;
                this.size = size;
            }
        }

        long alloc(long bytes) {
            long at = next;
            next += (bytes + PAGE - 1) & -PAGE;
            assertThat(next).isLessThanOrEqualTo(base + memory.byteSize());
            at(at, bytes).fill((byte) 0);
            return at;
        }

        MemorySegment at(long address, long length) {
            return memory.asSlice(address - base, length);
        }

        long read(int offset, int count) throws ErrnoException {
            ByteBuffer d = answered(spdk.request(SpdkWireClient.REGION_READ, SpdkWireClient.regionRead(BAR0, offset, count)))
                    .data();
            return count == 8 ? d.getLong(16) : d.getInt(16) & 0xFFFF_FFFFL;
        }

        void write(int offset, long value, int count) throws ErrnoException {
            ByteBuffer v = SpdkWireClient.le(count);
            if (count == 8) {
                v.putLong(value);
            } else {
                v.putInt((int) value);
            }
            answered(spdk.request(SpdkWireClient.REGION_WRITE, SpdkWireClient.regionWrite(BAR0, offset, v.array())));
        }

        /** nvme_ctrlr_process_init: VS, CAP (8 bytes), CC, the admin queue (ASQ, ACQ 8 bytes each, AQA), CC.EN. */
        void enable() throws Exception {
            assertThat(read(0x08, 4)).as("VS 1.4").isEqualTo(0x10400);
            long cap = read(0x00, 8);
            assertThat((cap >>> 32) & 0xF).as("CAP.DSTRD: 4-byte doorbells").isZero();
            assertThat((cap >>> 37) & 1).as("CAP.CSS: NVM").isEqualTo(1);
            assertThat(read(0x14, 4) & 1).as("CC.EN before enable").isZero();
            write(0x28, admin.sq, 8);
            write(0x30, admin.cq, 8);
            write(0x24, (admin.size - 1) << 16 | (admin.size - 1), 4);
            write(0x14, CC_ENABLE, 4);
            NvmeHostDriver.await("CSTS.RDY", () -> {
                try {
                    return (read(0x1C, 4) & 3) == 1;
                } catch (ErrnoException e) {
                    throw new AssertionError(e);
                }
            });
        }

        /**
         * Rings doorbell {@code offset} (from BAR0 + 0x1000): a store into the mapped page after a write barrier,
         * as SPDK's {@code spdk_wmb(); spdk_mmio_write_4(...)}, or a REGION_WRITE.
         */
        void ring(int offset, int value) throws ErrnoException {
            if (doorbells != null) {
                VarHandle.releaseFence();
                DOORBELL.setVolatile(doorbells, (long) offset, value);
            } else {
                write(DOORBELL_PAGE + offset, value, 4);
            }
        }

        /** CC.EN to 0 (a controller reset), wait for CSTS.RDY to clear, then enable with a fresh admin queue. */
        void resetAndEnable() throws Exception {
            write(0x14, 0, 4);
            NvmeHostDriver.await("CSTS.RDY cleared", () -> {
                try {
                    return (read(0x1C, 4) & 1) == 0;
                } catch (ErrnoException e) {
                    throw new AssertionError(e);
                }
            });
            admin = new QueuePair(0, alloc(ADMIN_ENTRIES * 64), alloc(ADMIN_ENTRIES * 16), ADMIN_ENTRIES);
            enable();
        }

        /** Submits one command and polls its completion; returns {status, result}. */
        int[] call(QueuePair q, int opcode, int nsid, long prp1, long prp2, int... cdw10to13) throws ErrnoException {
            int id = ++cid & 0xFFFF;
            MemorySegment e = at(q.sq + (long) q.tail * 64, 64);
            e.fill((byte) 0);
            e.set(ValueLayout.JAVA_INT_UNALIGNED, 0, opcode | id << 16);
            e.set(ValueLayout.JAVA_INT_UNALIGNED, 4, nsid);
            e.set(ValueLayout.JAVA_LONG_UNALIGNED, 24, prp1);
            e.set(ValueLayout.JAVA_LONG_UNALIGNED, 32, prp2);
            for (int i = 0; i < cdw10to13.length; i++) {
                e.set(ValueLayout.JAVA_INT_UNALIGNED, 40 + 4L * i, cdw10to13[i]);
            }
            q.tail = (q.tail + 1) % q.size;
            ring(8 * q.id, q.tail); // SQ tail doorbell
            MemorySegment c = at(q.cq + (long) q.head * 16, 16);
            NvmeHostDriver.await("completion on CQ " + q.id,
                    () -> ((c.get(ValueLayout.JAVA_INT_UNALIGNED, 12) >>> 16) & 1) == (q.phase ? 1 : 0));
            int dw3 = c.get(ValueLayout.JAVA_INT_UNALIGNED, 12);
            assertThat(dw3 & 0xFFFF).as("CID").isEqualTo(id);
            assertThat(c.get(ValueLayout.JAVA_INT_UNALIGNED, 8) >>> 16).as("SQ id").isEqualTo(q.id);
            q.head = (q.head + 1) % q.size;
            if (q.head == 0) {
                q.phase = !q.phase;
            }
            ring(8 * q.id + 4, q.head); // CQ head doorbell
            return new int[] {(dw3 >>> 17) & 0x7FFF, c.get(ValueLayout.JAVA_INT_UNALIGNED, 0)};
        }

        int[] ok(QueuePair q, int opcode, int nsid, long prp1, long prp2, int... cdws) throws ErrnoException {
            int[] c = call(q, opcode, nsid, prp1, prp2, cdws);
            assertThat(c[0]).as("status of opcode 0x%x cdw10 0x%x", opcode, cdws.length > 0 ? cdws[0] : 0)
                    .isZero();
            return c;
        }

        /** What nvme_ctrlr.c sends at attach to a controller like this one (KAS 0, no OACS extras, NVMe 1.4). */
        void adminSequence() throws ErrnoException {
            long page = alloc(PAGE);
            ok(admin, 0x06, 0, page, 0, 1); // Identify Controller
            assertThat(at(page, PAGE).get(ValueLayout.JAVA_INT_UNALIGNED, 516)).as("NN").isEqualTo(1);
            assertThat(at(page, PAGE).get(ValueLayout.JAVA_SHORT_UNALIGNED, 320)).as("KAS: no keep alive").isZero();
            // The I/O command set specific Identify Controller (CNS 06h, CSI 0): SPDK goes on after an error.
            int[] iocs = call(admin, 0x06, 0, page, 0, 6);
            assertThat(iocs[0] == 0 || iocs[0] == (0x02 | 1 << 14)).as("success or Invalid Field").isTrue();
            // Every feature SPDK's nvme_ctrlr_set_supported_features marks supported, and Volatile Write Cache.
            for (int fid : new int[] {0x01, 0x02, 0x04, 0x05, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x06}) {
                ok(admin, 0x0A, fid == 0x05 ? 1 : 0, 0, 0, fid);
            }
            ok(admin, 0x09, 0, 0, 0, 0x0B, 0x1F); // Asynchronous Event Configuration: critical warnings
            int[] queues = ok(admin, 0x09, 0, 0, 0, 0x07, 0 << 16 | 0); // Number of Queues: one pair
            assertThat(queues[1]).isZero();
            ok(admin, 0x06, 0, page, 0, 2); // Active namespace list
            assertThat(at(page, PAGE).get(ValueLayout.JAVA_INT_UNALIGNED, 0)).isEqualTo(1);
            ok(admin, 0x06, 1, page, 0, 0); // Identify Namespace
            assertThat(at(page, PAGE).get(ValueLayout.JAVA_LONG_UNALIGNED, 0)).as("NSZE").isEqualTo(NS_SIZE / 512);
            ok(admin, 0x06, 1, page, 0, 3); // Namespace Identification Descriptor list
        }

        /**
         * An I/O queue pair with interrupts off (IEN = 0), as SPDK creates them, and writes read back; then the pair
         * deleted and created again at the same id (its doorbells start at 0 again), and a few more.
         */
        void polledIo() throws ErrnoException {
            QueuePair io = createIoQueues();
            long out = alloc(SPDK_MAX_TRANSFER);
            long outList = prpList(out, SPDK_MAX_TRANSFER);
            long in = alloc(SPDK_MAX_TRANSFER);
            long inList = prpList(in, SPDK_MAX_TRANSFER);
            Random random = new Random(13);
            readsAndWrites(io, random, 140, out, outList, in, inList); // more commands than the ring holds: wraps
            ok(admin, 0x00, 0, 0, 0, 1); // Delete I/O SQ 1
            ok(admin, 0x04, 0, 0, 0, 1); // Delete I/O CQ 1
            io = createIoQueues();
            readsAndWrites(io, random, 10, out, outList, in, inList);
        }

        private QueuePair createIoQueues() throws ErrnoException {
            QueuePair io = new QueuePair(1, alloc(IO_ENTRIES * 64), alloc(IO_ENTRIES * 16), IO_ENTRIES);
            ok(admin, 0x05, 0, io.cq, 0, (io.size - 1) << 16 | 1, 0b01); // PC = 1, IEN = 0, no vector
            ok(admin, 0x01, 0, io.sq, 0, (io.size - 1) << 16 | 1, 1 << 16 | 0b1);
            return io;
        }

        /** {@code pairs} writes of random data at random LBAs (4 KiB and 128 KiB alternately), each read back. */
        private void readsAndWrites(QueuePair io, Random random, int pairs, long out, long outList, long in,
                                    long inList) throws ErrnoException {
            for (int i = 0; i < pairs; i++) {
                int bytes = i % 2 == 0 ? PAGE : SPDK_MAX_TRANSFER;
                long lba = random.nextInt((int) (NS_SIZE / 512) - bytes / 512);
                byte[] pattern = new byte[bytes];
                random.nextBytes(pattern);
                MemorySegment.copy(pattern, 0, at(out, bytes), ValueLayout.JAVA_BYTE, 0, bytes);
                at(in, bytes).fill((byte) 0);
                ok(io, 0x01, 1, out, bytes > PAGE ? outList : 0, (int) lba, 0, bytes / 512 - 1);
                ok(io, 0x02, 1, in, bytes > PAGE ? inList : 0, (int) lba, 0, bytes / 512 - 1);
                assertThat(at(in, bytes).toArray(ValueLayout.JAVA_BYTE)).as("read back at LBA %d", lba)
                        .isEqualTo(pattern);
            }
        }

        /** A PRP list for a contiguous buffer (PRP1 = its first page). */
        long prpList(long data, int bytes) {
            long list = alloc(PAGE);
            for (int p = 1; p < bytes / PAGE; p++) {
                at(list, PAGE).set(ValueLayout.JAVA_LONG_UNALIGNED, 8L * (p - 1), data + (long) p * PAGE);
            }
            return list;
        }
    }
}
