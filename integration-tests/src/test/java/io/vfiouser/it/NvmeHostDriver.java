package io.vfiouser.it;

import static io.vfiouser.it.Wire.errno;
import static org.assertj.core.api.Assertions.assertThat;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.vfiouser.client.GuestMemory;
import io.vfiouser.client.VfioUserClient;
import io.vfiouser.codec.VfioUserCommand;
import io.vfiouser.codec.payload.RegionAccess;
import io.vfiouser.codec.payload.SetIrqs;
import io.vfiouser.examples.nvme.NvmeDevice;
import io.vfiouser.transport.FdSet;
import io.vfiouser.transport.linux.Linux;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.VarHandle;
import java.lang.foreign.ValueLayout;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

/**
 * A small NVMe host driver for tests: BAR0 through REGION_READ/REGION_WRITE (doorbells as posted writes, as QEMU
 * sends them), queues and data buffers in {@link GuestMemory} that the server reaches through DMA_MAP, MSI-X
 * vectors through eventfds. It does what a guest driver does and checks every completion entry's bookkeeping
 * (phase, SQ id, SQ head) as it consumes it.
 *
 * <p>After {@link #configureShadowDoorbells()} its I/O queue doorbells follow the shadow protocol as Linux's
 * {@code nvme} driver does: the new value goes to the shadow page, then (full fence) the EventIdx is read, and the
 * register doorbell is rung only when the value passed it. It counts the register doorbell writes it sends.
 */
final class NvmeHostDriver implements AutoCloseable {
    static final int PAGE = 4096;
    static final int CAP = 0x00;
    static final int VS = 0x08;
    static final int INTMS = 0x0C;
    static final int INTMC = 0x10;
    static final int CC = 0x14;
    static final int CSTS = 0x1C;
    static final int AQA = 0x24;
    static final int ASQ = 0x28;
    static final int ACQ = 0x30;
    /** CC for enable: NVM command set, 4 KiB pages, round robin, SQ entries 2^6, CQ entries 2^4. */
    static final int CC_CONFIG = 6 << 16 | 4 << 20;

    /** A submission entry before the driver gives it a command id. */
    record Sqe(int opcode, int nsid, long prp1, long prp2, int cdw10, int cdw11, int cdw12, int cdw13) {
        static Sqe of(int opcode, int nsid) {
            return new Sqe(opcode, nsid, 0, 0, 0, 0, 0, 0);
        }

        Sqe prps(long p1, long p2) {
            return new Sqe(opcode, nsid, p1, p2, cdw10, cdw11, cdw12, cdw13);
        }

        Sqe dwords(int d10, int d11, int d12, int d13) {
            return new Sqe(opcode, nsid, prp1, prp2, d10, d11, d12, d13);
        }
    }

    /** A completion entry as the host reads it. */
    record Cqe(int result, int sqHead, int sqId, int cid, boolean phase, int status) {
        int code() {
            return status & 0xFF;
        }

        int type() {
            return (status >>> 8) & 7;
        }

        boolean dnr() {
            return (status & (1 << 14)) != 0;
        }

        /** Status type and code as one value, e.g. 0x101 for Invalid Queue Identifier. */
        int sctSc() {
            return status & 0x7FF;
        }
    }

    /** One queue pair (the admin pair has id 0). */
    static final class Queue {
        final int id;
        final long sq;
        final int sqSize;
        final long cq;
        final int cqSize;
        final int vector;
        int sqTail;
        int sqHead;
        int cqHead;
        boolean phase = true;

        Queue(int id, long sq, int sqSize, long cq, int cqSize, int vector) {
            this.id = id;
            this.sq = sq;
            this.sqSize = sqSize;
            this.cq = cq;
            this.cqSize = cqSize;
            this.vector = vector;
        }

        /** Commands the SQ can take before it is full. */
        int room() {
            return sqSize - 1 - Math.floorMod(sqTail - sqHead, sqSize);
        }
    }

    private final VfioUserClient client;
    private final GuestMemory ram;
    private final Map<Integer, Queue> queues = new HashMap<>();
    private final int[] vectorFds = new int[NvmeDevice.MSIX_VECTORS];
    private long next;
    private int cid;
    /** Shadow doorbell and EventIdx pages, 0 while the host rings registers only. */
    private long shadowPage;
    private long eventIdxPage;
    /** Register doorbell writes sent, by doorbell index. */
    private final Map<Integer, Long> rings = new HashMap<>();

    NvmeHostDriver(VfioUserClient client, GuestMemory ram) {
        this.client = client;
        this.ram = ram;
        this.next = ram.iova();
        java.util.Arrays.fill(vectorFds, -1);
    }

    VfioUserClient client() {
        return client;
    }

    MemorySegment memory() {
        return ram.segment();
    }

    /** {@code bytes} of zeroed guest memory, page aligned. */
    long alloc(long bytes) {
        long at = next;
        next += (bytes + PAGE - 1) & ~(PAGE - 1L);
        if (next > ram.iova() + ram.size()) {
            throw new IllegalStateException("guest memory exhausted");
        }
        ram.at(at, bytes).fill((byte) 0);
        return at;
    }

    MemorySegment at(long address, long length) {
        return ram.at(address, length);
    }

    // ---------------------------------------------------------------------------------------- registers

    int read32(int offset) throws Exception {
        int[] out = new int[1];
        Wire.ok(client, VfioUserCommand.REGION_READ, RegionAccess.inRegion(0).atOffset(offset).count(4), r -> {
            ByteBuf d = r.payload(RegionAccess.class).data();
            out[0] = d.getIntLE(d.readerIndex());
        });
        return out[0];
    }

    long read64(int offset) throws Exception {
        long[] out = new long[1];
        Wire.ok(client, VfioUserCommand.REGION_READ, RegionAccess.inRegion(0).atOffset(offset).count(8), r -> {
            ByteBuf d = r.payload(RegionAccess.class).data();
            out[0] = d.getLongLE(d.readerIndex());
        });
        return out[0];
    }

    void write32(int offset, int value) throws Exception {
        ByteBuf v = Unpooled.directBuffer(4).writeIntLE(value);
        assertThat(errno(client, VfioUserCommand.REGION_WRITE,
                RegionAccess.inRegion(0).atOffset(offset).data(v))).isZero();
    }

    void write64(int offset, long value) throws Exception {
        ByteBuf v = Unpooled.directBuffer(8).writeLongLE(value);
        assertThat(errno(client, VfioUserCommand.REGION_WRITE,
                RegionAccess.inRegion(0).atOffset(offset).data(v))).isZero();
    }

    /**
     * A doorbell write as QEMU sends it: posted, no reply. With shadow doorbells, for an I/O queue, the value goes to
     * the shadow page and the register is written only when the controller's EventIdx asks for it.
     */
    void doorbell(int index, int value) throws Exception {
        if (shadowPage != 0 && index >= 2) {
            MemorySegment shadow = at(shadowPage + 4L * index, 4);
            VarHandle.releaseFence(); // the queue entries before the new value
            int old = shadow.get(ValueLayout.JAVA_INT_UNALIGNED, 0);
            shadow.set(ValueLayout.JAVA_INT_UNALIGNED, 0, value);
            VarHandle.fullFence(); // the new value before the EventIdx read, as the controller fences the other way
            int eventIdx = at(eventIdxPage + 4L * index, 4).get(ValueLayout.JAVA_INT_UNALIGNED, 0);
            if (!needsEvent(eventIdx, value, old)) {
                return;
            }
        }
        rings.merge(index, 1L, Long::sum);
        ByteBuf v = Unpooled.directBuffer(4).writeIntLE(value);
        client.sendNoReply(VfioUserCommand.REGION_WRITE, RegionAccess.inRegion(0).atOffset(0x1000 + 4L * index).data(v))
                .get(Wire.TIMEOUT_S, TimeUnit.SECONDS);
    }

    /**
     * Whether a doorbell moving from {@code old} to {@code value} must be rung for {@code eventIdx}: whether the
     * EventIdx lies in {@code [old, value)}, modulo 2^16 (NVMe 1.3, 7.13).
     */
    static boolean needsEvent(int eventIdx, int value, int old) {
        return ((value - eventIdx - 1) & 0xFFFF) < ((value - old) & 0xFFFF);
    }

    /**
     * Doorbell Buffer Config with two fresh pages (shadow doorbells, EventIdx); on success the I/O queues' doorbells
     * follow the shadow protocol from now on. Returns the completion.
     */
    Cqe configureShadowDoorbells() throws Exception {
        long doorbells = alloc(PAGE);
        long eventIdx = alloc(PAGE);
        Cqe c = call(admin(), Sqe.of(0x7C, 0).prps(doorbells, eventIdx));
        if (c.status() == 0) {
            shadowPage = doorbells;
            eventIdxPage = eventIdx;
        }
        return c;
    }

    /** Back to register doorbells only (as a host does after a controller reset). */
    void forgetShadowDoorbells() {
        shadowPage = 0;
        eventIdxPage = 0;
    }

    /** The shadow doorbell page, 0 when none is configured. */
    long shadowPage() {
        return shadowPage;
    }

    /** The shadow value of doorbell {@code index} (SQ y tail = 2y, CQ y head = 2y + 1). */
    int shadowValue(int index) {
        return at(shadowPage + 4L * index, 4).get(ValueLayout.JAVA_INT_UNALIGNED, 0);
    }

    /** The controller's EventIdx for doorbell {@code index}. */
    int eventIdx(int index) {
        return at(eventIdxPage + 4L * index, 4).get(ValueLayout.JAVA_INT_UNALIGNED, 0);
    }

    /** Register doorbell writes sent so far to doorbell {@code index}. */
    long rings(int index) {
        return rings.getOrDefault(index, 0L);
    }

    /** Register doorbell writes sent so far to the I/O queues' doorbells. */
    long ioRings() {
        return rings.entrySet().stream().filter(e -> e.getKey() >= 2).mapToLong(Map.Entry::getValue).sum();
    }

    static void await(String what, BooleanSupplier condition) {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(Wire.TIMEOUT_S);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out waiting for " + what);
            }
            java.util.concurrent.locks.LockSupport.parkNanos(20_000);
        }
    }

    void awaitCsts(String what, int mask, int value) {
        await(what, () -> {
            try {
                return (read32(CSTS) & mask) == value;
            } catch (Exception e) {
                throw new AssertionError(e);
            }
        });
    }

    // ----------------------------------------------------------------------------------------- lifecycle

    /** Disables, sets up an admin queue pair of {@code entries} entries and enables, as a guest driver does. */
    Queue enable(int entries) throws Exception {
        write32(CC, 0);
        awaitCsts("CSTS.RDY = 0", 1, 0);
        Queue admin = new Queue(0, alloc((long) entries * 64), entries, alloc((long) entries * 16), entries, 0);
        write32(AQA, (entries - 1) << 16 | (entries - 1));
        write64(ASQ, admin.sq);
        write64(ACQ, admin.cq);
        write32(CC, CC_CONFIG);
        write32(CC, CC_CONFIG | 1);
        awaitCsts("CSTS.RDY = 1", 3, 1);
        queues.clear();
        queues.put(0, admin);
        return admin;
    }

    Queue admin() {
        return queues.get(0);
    }

    Queue queue(int id) {
        return queues.get(id);
    }

    /** Enables MSI-X in config space and gives vectors 0..count-1 eventfds. */
    void enableMsix(int count) throws Exception {
        int cap = DmaAndInterruptsTest.findCapability(client, 0x11);
        ByteBuf control = Unpooled.directBuffer(2).writeShortLE(0x8000);
        assertThat(errno(client, VfioUserCommand.REGION_WRITE,
                RegionAccess.inRegion(7).atOffset(cap + 2).data(control))).isZero();
        assignVectors(count);
    }

    /**
     * The host as it continues on the destination of a migration: the same queues, positions and command ids,
     * over the destination's client and guest memory (a copy of this one's); no interrupt eventfds yet.
     */
    NvmeHostDriver migratedTo(VfioUserClient destination, GuestMemory destinationRam) {
        NvmeHostDriver d = new NvmeHostDriver(destination, destinationRam);
        d.queues.putAll(queues);
        d.next = next;
        d.cid = cid;
        d.shadowPage = shadowPage;
        d.eventIdxPage = eventIdxPage;
        return d;
    }

    /** Gives vectors 0..count-1 eventfds (SET_IRQS only; MSI-X enable is the guest's, in config space). */
    void assignVectors(int count) throws Exception {
        for (int i = 0; i < count; i++) {
            if (vectorFds[i] >= 0) {
                FdSet.closeQuietly(vectorFds[i]);
            }
            vectorFds[i] = Linux.eventfd(0, Linux.EFD_NONBLOCK);
        }
        // At most 8 fds per message (the server's limit is 16), as QEMU splits them.
        for (int start = 0; start < count; start += 8) {
            int n = Math.min(8, count - start);
            int[] dups = new int[n];
            for (int i = 0; i < n; i++) {
                dups[i] = Linux.dup(vectorFds[start + i]);
            }
            assertThat(errno(client, VfioUserCommand.DEVICE_SET_IRQS,
                    SetIrqs.of(SetIrqs.ACTION_TRIGGER | SetIrqs.DATA_EVENTFD, 2, start, n), FdSet.of(dups)))
                    .isZero();
        }
    }

    /** Gives INTx an eventfd (MSI-X stays off). */
    int enableIntx() throws Exception {
        int fd = Linux.eventfd(0, Linux.EFD_NONBLOCK);
        if (vectorFds[0] >= 0) {
            FdSet.closeQuietly(vectorFds[0]);
        }
        vectorFds[0] = fd;
        assertThat(errno(client, VfioUserCommand.DEVICE_SET_IRQS,
                SetIrqs.of(SetIrqs.ACTION_TRIGGER | SetIrqs.DATA_EVENTFD, 0, 0, 1), FdSet.of(Linux.dup(fd))))
                .isZero();
        return fd;
    }

    /** The count an interrupt eventfd holds (and resets), 0 when it did not fire. */
    long interrupts(int vector) throws Exception {
        long n = Linux.eventfdRead(vectorFds[vector]);
        return Math.max(n, 0);
    }

    /** Waits until {@code vector}'s eventfd fires and returns its count. */
    long awaitInterrupt(int vector) throws Exception {
        long[] n = new long[1];
        await("interrupt on vector " + vector, () -> {
            try {
                n[0] = interrupts(vector);
                return n[0] > 0;
            } catch (Exception e) {
                throw new AssertionError(e);
            }
        });
        return n[0];
    }

    // ------------------------------------------------------------------------------------------- commands

    /** Writes {@code e} at the queue's tail with a fresh command id and rings the doorbell; returns the id. */
    int submit(Queue q, Sqe e) throws Exception {
        int id = post(q, e);
        ring(q);
        return id;
    }

    /** Writes {@code e} at the tail without ringing; {@link #ring} later submits everything posted. */
    int post(Queue q, Sqe e) {
        assertThat(q.room()).as("room in SQ %d", q.id).isPositive();
        int id = ++cid & 0xFFFF;
        MemorySegment s = at(q.sq + (long) q.sqTail * 64, 64);
        s.fill((byte) 0);
        s.set(ValueLayout.JAVA_INT_UNALIGNED, 0, e.opcode() | id << 16);
        s.set(ValueLayout.JAVA_INT_UNALIGNED, 4, e.nsid());
        s.set(ValueLayout.JAVA_LONG_UNALIGNED, 24, e.prp1());
        s.set(ValueLayout.JAVA_LONG_UNALIGNED, 32, e.prp2());
        s.set(ValueLayout.JAVA_INT_UNALIGNED, 40, e.cdw10());
        s.set(ValueLayout.JAVA_INT_UNALIGNED, 44, e.cdw11());
        s.set(ValueLayout.JAVA_INT_UNALIGNED, 48, e.cdw12());
        s.set(ValueLayout.JAVA_INT_UNALIGNED, 52, e.cdw13());
        q.sqTail = (q.sqTail + 1) % q.sqSize;
        return id;
    }

    void ring(Queue q) throws Exception {
        doorbell(2 * q.id, q.sqTail);
    }

    /** Whether the queue's next completion entry carries the current phase. */
    boolean hasCompletion(Queue q) {
        int dw3 = at(q.cq + (long) q.cqHead * 16, 16).get(ValueLayout.JAVA_INT_UNALIGNED, 12);
        return ((dw3 >>> 16) & 1) == (q.phase ? 1 : 0);
    }

    /** Waits for the next completion entry of {@code q}, consumes it (head doorbell) and checks its bookkeeping. */
    Cqe next(Queue q) throws Exception {
        await("a completion on CQ " + q.id, () -> hasCompletion(q));
        MemorySegment e = at(q.cq + (long) q.cqHead * 16, 16);
        int dw2 = e.get(ValueLayout.JAVA_INT_UNALIGNED, 8);
        int dw3 = e.get(ValueLayout.JAVA_INT_UNALIGNED, 12);
        Cqe c = new Cqe(e.get(ValueLayout.JAVA_INT_UNALIGNED, 0), dw2 & 0xFFFF, dw2 >>> 16, dw3 & 0xFFFF,
                ((dw3 >>> 16) & 1) != 0, dw3 >>> 17);
        assertThat(c.sqId()).as("SQ id").isEqualTo(q.id);
        assertThat(c.sqHead()).as("SQ head").isBetween(0, q.sqSize - 1);
        q.sqHead = c.sqHead();
        q.cqHead++;
        if (q.cqHead == q.cqSize) {
            q.cqHead = 0;
            q.phase = !q.phase;
        }
        doorbell(2 * q.id + 1, q.cqHead);
        return c;
    }

    /** Submits {@code e} and waits for its completion (the queue has no other command in flight). */
    Cqe call(Queue q, Sqe e) throws Exception {
        int id = submit(q, e);
        Cqe c = next(q);
        assertThat(c.cid()).as("CID").isEqualTo(id);
        assertThat(c.sqHead()).as("SQ head after the only command").isEqualTo(q.sqTail);
        return c;
    }

    /** Like {@link #call} and expects success. */
    Cqe ok(Queue q, Sqe e) throws Exception {
        Cqe c = call(q, e);
        assertThat(c.status()).as("status of opcode 0x%x", e.opcode()).isZero();
        return c;
    }

    /** Identify into a fresh page; returns that page. */
    MemorySegment identify(int cns, int nsid) throws Exception {
        long buf = alloc(PAGE);
        ok(admin(), Sqe.of(0x06, nsid).prps(buf, 0).dwords(cns, 0, 0, 0));
        return at(buf, PAGE);
    }

    /** Number of Queues, then {@code count} I/O queue pairs of {@code entries} entries, CQ i on vector i. */
    void createIoQueues(int count, int entries) throws Exception {
        ok(admin(), Sqe.of(0x09, 0).dwords(0x07, (count - 1) << 16 | (count - 1), 0, 0));
        for (int i = 1; i <= count; i++) {
            createIoQueue(i, entries, i);
        }
    }

    Queue createIoQueue(int qid, int entries, int vector) throws Exception {
        long cq = alloc((long) entries * 16);
        long sq = alloc((long) entries * 64);
        ok(admin(), Sqe.of(0x05, 0).prps(cq, 0).dwords((entries - 1) << 16 | qid, vector << 16 | 0b11, 0, 0));
        ok(admin(), Sqe.of(0x01, 0).prps(sq, 0).dwords((entries - 1) << 16 | qid, qid << 16 | 0b1, 0, 0));
        Queue q = new Queue(qid, sq, entries, cq, entries, vector);
        queues.put(qid, q);
        return q;
    }

    /**
     * An I/O queue pair whose completion queue raises no interrupt (IEN = 0), which the host polls: how SPDK's
     * driver creates its queues. Needs no vector and no SET_IRQS.
     */
    Queue createPolledIoQueue(int qid, int entries) throws Exception {
        long cq = alloc((long) entries * 16);
        long sq = alloc((long) entries * 64);
        ok(admin(), Sqe.of(0x05, 0).prps(cq, 0).dwords((entries - 1) << 16 | qid, 0b01, 0, 0));
        ok(admin(), Sqe.of(0x01, 0).prps(sq, 0).dwords((entries - 1) << 16 | qid, qid << 16 | 0b1, 0, 0));
        Queue q = new Queue(qid, sq, entries, cq, entries, -1);
        queues.put(qid, q);
        return q;
    }

    void forget(int qid) {
        queues.remove(qid);
    }

    /** A Read or Write of {@code blocks} 512-byte blocks at {@code lba}. */
    static Sqe io(int opcode, long lba, int blocks, long prp1, long prp2) {
        return Sqe.of(opcode, 1).prps(prp1, prp2).dwords((int) lba, (int) (lba >>> 32), blocks - 1, 0);
    }

    @Override
    public void close() {
        for (int fd : vectorFds) {
            if (fd >= 0) {
                FdSet.closeQuietly(fd);
            }
        }
    }
}
