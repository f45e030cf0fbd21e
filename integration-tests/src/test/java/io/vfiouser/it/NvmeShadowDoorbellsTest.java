package io.vfiouser.it;

import static io.vfiouser.it.NvmeHostDriver.PAGE;
import static io.vfiouser.it.NvmeHostDriver.io;
import static io.vfiouser.it.Wire.errno;
import static org.assertj.core.api.Assertions.assertThat;

import io.vfiouser.client.GuestMemory;
import io.vfiouser.client.VfioUserClient;
import io.vfiouser.codec.VfioUserCommand;
import io.vfiouser.codec.payload.DmaMapRequest;
import io.vfiouser.examples.nvme.DoorbellMode;
import io.vfiouser.examples.nvme.NvmeDevice;
import io.vfiouser.examples.nvme.NvmeOptions;
import io.vfiouser.it.NvmeHostDriver.Cqe;
import io.vfiouser.it.NvmeHostDriver.Queue;
import io.vfiouser.it.NvmeHostDriver.Sqe;
import io.vfiouser.transport.FdSet;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Shadow doorbells (Doorbell Buffer Config, {@code --doorbells=shadow}) through the socket: the test-side driver
 * gives the controller its shadow doorbell and EventIdx pages and then follows the protocol as Linux's driver does
 * (shadow value, full fence, EventIdx read, a register doorbell only when the value passed it), counting the
 * register doorbells it sends. Every transfer is verified byte for byte; a lost wake-up shows as a completion that
 * never comes.
 */
class NvmeShadowDoorbellsTest {
    private static final long RAM = 0x4000_0000L;
    private static final long RAM_SIZE = 32L << 20;
    private static final long NS_SIZE = 16L << 20;
    private static final int WRITE = 0x01;
    private static final int READ = 0x02;
    private static final int DOORBELL_BUFFER_CONFIG = 0x7C;

    private Path dir;
    private Path backing;
    private ServerFixture fixture;
    private GuestMemory ram;
    private NvmeHostDriver host;

    private void start(DoorbellMode mode) throws Exception {
        dir = Files.createTempDirectory("nvme-shadow-it");
        backing = dir.resolve("ns1.img");
        NvmeDevice device = new NvmeDevice("test-nvme", new NvmeOptions(backing, NS_SIZE, mode));
        fixture = new ServerFixture(NvmeDevice.description("test-nvme"), device);
        VfioUserClient client = fixture.client();
        ram = GuestMemory.allocate(RAM, RAM_SIZE);
        assertThat(errno(client, VfioUserCommand.DMA_MAP, DmaMapRequest.of(3, 0, RAM, RAM_SIZE),
                FdSet.of(ram.dupFd()))).isZero();
        host = new NvmeHostDriver(client, ram);
    }

    @AfterEach
    void stop() throws Exception {
        if (host != null) {
            host.close();
            ram.close();
            fixture.close();
            Files.deleteIfExists(backing);
            Files.deleteIfExists(dir);
        }
    }

    private static byte[] pattern(int length, int seed) {
        byte[] b = new byte[length];
        for (int i = 0; i < length; i++) {
            b[i] = (byte) (i * 131 + seed * 7 + (seed >>> 8));
        }
        return b;
    }

    private int oacs() throws Exception {
        return host.identify(1, 0).get(ValueLayout.JAVA_SHORT_UNALIGNED, 256) & 0xFFFF;
    }

    /** I/O queue pairs 1..count of {@code entries} entries on MSI-X vectors 1..count. */
    private void ioQueues(int count, int entries) throws Exception {
        host.enable(32);
        host.enableMsix(NvmeDevice.MSIX_VECTORS);
        host.createIoQueues(count, entries);
    }

    // --------------------------------------------------------------------------------------------- tests

    @Test
    void writeModeOffersNoDoorbellBufferConfig() throws Exception {
        start(DoorbellMode.WRITE);
        host.enable(8);
        assertThat(oacs() & 0x100).as("OACS bit 8").isZero();
        Cqe c = host.configureShadowDoorbells();
        assertThat(c.sctSc()).as("Invalid Command Opcode").isEqualTo(0x001);
        assertThat(host.shadowPage()).isZero();
    }

    @Test
    void shadowModeOffersItAndChecksBothPages() throws Exception {
        start(DoorbellMode.SHADOW);
        Queue admin = host.enable(8);
        assertThat(oacs() & 0x100).as("OACS bit 8").isEqualTo(0x100);
        long page = host.alloc(PAGE);
        long other = host.alloc(PAGE);
        long unmapped = RAM + RAM_SIZE;
        for (long[] prps : new long[][] {{page + 4, other}, {page, other + 0x800}, {0, other}, {page, 0},
                {unmapped, other}, {page, unmapped}}) {
            Cqe c = host.call(admin, Sqe.of(DOORBELL_BUFFER_CONFIG, 0).prps(prps[0], prps[1]));
            assertThat(c.sctSc()).as("Invalid Field for PRP1 0x%x, PRP2 0x%x", prps[0], prps[1]).isEqualTo(0x002);
        }
        assertThat(host.configureShadowDoorbells().status()).isZero();
    }

    /**
     * Queues that exist when the pages arrive continue from the controller's positions (written into the shadow
     * page), a queue created later starts at 0 whatever its slot held; then batches of 16 commands per queue, each
     * batch posted and its tail written once: the host rings the SQ doorbell at most once per batch, and a CQ head
     * doorbell only when its head leaves 0 (the EventIdx page starts zeroed and the controller never asks for a head
     * while its ring has room), where register doorbells would have cost a ring per batch and one per completion.
     */
    @Test
    void ioThroughShadowDoorbellsRingsOnlyWhenTheControllerAsks() throws Exception {
        start(DoorbellMode.SHADOW);
        Queue admin = host.enable(32);
        host.enableMsix(NvmeDevice.MSIX_VECTORS);
        host.ok(admin, Sqe.of(0x09, 0).dwords(0x07, 1 << 16 | 1, 0, 0)); // Number of Queues: 2 pairs
        Queue q1 = host.createIoQueue(1, 64, 1);
        for (int i = 0; i < 3; i++) { // register doorbells before the pages: tail and head move to 3
            long buf = host.alloc(PAGE);
            MemorySegment.copy(MemorySegment.ofArray(pattern(PAGE, 1000 + i)), 0, host.at(buf, PAGE), 0, PAGE);
            host.ok(q1, io(WRITE, 8L * i, 8, buf, 0));
        }
        assertThat(host.ioRings()).as("register doorbells before the pages: 3 SQ, 3 CQ").isEqualTo(6);
        assertThat(host.configureShadowDoorbells().status()).isZero();
        assertThat(host.shadowValue(2)).as("SQ 1 tail in the shadow page").isEqualTo(3);
        assertThat(host.shadowValue(3)).as("CQ 1 head in the shadow page").isEqualTo(3);
        // Stale values inside the ring in SQ 2's and CQ 2's slots, as an earlier queue 2 could have left them.
        host.at(host.shadowPage() + 16, 8).set(ValueLayout.JAVA_INT_UNALIGNED, 0, 7);
        host.at(host.shadowPage() + 16, 8).set(ValueLayout.JAVA_INT_UNALIGNED, 4, 7);
        Queue q2 = host.createIoQueue(2, 64, 2);
        assertThat(host.shadowValue(4)).as("SQ 2 tail starts at 0").isZero();
        assertThat(host.shadowValue(5)).as("CQ 2 head starts at 0").isZero();

        Queue[] qs = {q1, q2};
        int batch = 16;
        int batches = 20;
        Map<Long, byte[]> written = new HashMap<>();
        int commands = 0;
        int ringCalls = 0;
        for (int op : new int[] {WRITE, READ}) {
            for (int b = 0; b < batches; b++) {
                Map<Integer, Long> bufferOf = new HashMap<>();
                Map<Integer, Long> lbaOf = new HashMap<>();
                for (Queue q : qs) {
                    for (int i = 0; i < batch; i++) {
                        long lba = 64 + 8L * ((q.id - 1) * batches * batch + b * batch + i);
                        long buf = host.alloc(PAGE);
                        if (op == WRITE) {
                            byte[] data = pattern(PAGE, (int) lba);
                            MemorySegment.copy(MemorySegment.ofArray(data), 0, host.at(buf, PAGE), 0, PAGE);
                            written.put(lba, data);
                        }
                        int cid = host.post(q, io(op, lba, 8, buf, 0));
                        bufferOf.put(cid, buf);
                        lbaOf.put(cid, lba);
                    }
                    host.ring(q);
                    ringCalls++;
                }
                for (Queue q : qs) {
                    for (int i = 0; i < batch; i++) {
                        Cqe c = host.next(q);
                        assertThat(c.status()).isZero();
                        Long lba = lbaOf.remove(c.cid());
                        assertThat(lba).as("a command of this batch").isNotNull();
                        if (op == READ) {
                            byte[] got = host.at(bufferOf.get(c.cid()), PAGE).toArray(ValueLayout.JAVA_BYTE);
                            assertThat(got).as("LBA %d", lba).isEqualTo(written.get(lba));
                        }
                        commands++;
                    }
                }
                assertThat(lbaOf).isEmpty();
            }
        }
        long sqRings = host.rings(2) - 3 + host.rings(4);
        long cqRings = host.rings(3) - 3 + host.rings(5);
        int perQueue = commands / 2;
        assertThat(sqRings).as("SQ doorbells: at most one per batch").isLessThanOrEqualTo(ringCalls);
        assertThat(host.rings(5)).as("CQ 2 doorbells: when its head left 0").isEqualTo((perQueue + 63) / 64);
        assertThat(host.rings(3) - 3).as("CQ 1 doorbells (head started at 3)").isEqualTo(perQueue / 64);
        assertThat(sqRings + cqRings).as("register doorbells for %d commands", commands)
                .isLessThanOrEqualTo(commands / 8);
        // Idle now: each SQ's EventIdx is its tail, so the next submission rings.
        NvmeHostDriver.await("EventIdx of SQ 1 = its tail", () -> host.eventIdx(2) == q1.sqTail);
        NvmeHostDriver.await("EventIdx of SQ 2 = its tail", () -> host.eventIdx(4) == q2.sqTail);
        long sq1 = host.rings(2);
        long buf = host.alloc(PAGE);
        host.ok(q1, io(READ, 0, 8, buf, 0));
        assertThat(host.rings(2)).as("a submission to an idle controller rings").isEqualTo(sq1 + 1);
        assertThat(host.at(buf, PAGE).toArray(ValueLayout.JAVA_BYTE)).isEqualTo(pattern(PAGE, 1000));
    }

    /**
     * Thousands of small commands at depth 1 and 2 on two queues, each tail written as soon as its command is:
     * the controller goes idle between most of them, so the host's shadow write races the controller publishing
     * its EventIdx over and over. No command may be left unseen (each is waited for), and every byte must arrive.
     */
    @Test
    void manySmallCommandsRacingTheControllerGoingIdleLoseNoWakeUp() throws Exception {
        start(DoorbellMode.SHADOW);
        ioQueues(2, 32);
        assertThat(host.configureShadowDoorbells().status()).isZero();
        int rounds = 1500;
        int commands = 0;
        long[] buffers = {host.alloc(PAGE), host.alloc(PAGE)};
        for (int op : new int[] {WRITE, READ}) {
            for (int r = 0; r < rounds; r++) {
                Queue q = host.queue(1 + r % 2);
                int depth = 1 + (r / 2) % 2;
                ArrayDeque<long[]> inFlight = new ArrayDeque<>();
                for (int i = 0; i < depth; i++) {
                    long lba = (long) r * 2 + i;
                    long buf = buffers[i] + 512L * (r % 8);
                    if (op == WRITE) {
                        MemorySegment.copy(MemorySegment.ofArray(pattern(512, (int) lba)), 0, host.at(buf, 512), 0,
                                512);
                    } else {
                        host.at(buf, 512).fill((byte) 0);
                    }
                    int cid = host.submit(q, io(op, lba, 1, buf, 0));
                    inFlight.add(new long[] {cid, lba, buf});
                }
                Map<Integer, long[]> byCid = new HashMap<>();
                inFlight.forEach(f -> byCid.put((int) f[0], f));
                for (int i = 0; i < depth; i++) {
                    Cqe c = host.next(q);
                    assertThat(c.status()).isZero();
                    long[] f = byCid.remove(c.cid());
                    assertThat(f).as("a command in flight on queue %d", q.id).isNotNull();
                    if (op == READ) {
                        assertThat(host.at(f[2], 512).toArray(ValueLayout.JAVA_BYTE)).as("LBA %d", f[1])
                                .isEqualTo(pattern(512, (int) f[1]));
                    }
                    commands++;
                }
            }
        }
        long sqRings = host.rings(2) + host.rings(4);
        long cqRings = host.rings(3) + host.rings(5);
        assertThat(sqRings).as("SQ doorbells for %d commands", commands).isLessThanOrEqualTo(commands);
        // Completions never wait for room (depth 2 in a ring of 32), so a head is rung only when it leaves 0.
        assertThat(cqRings).as("CQ doorbells").isLessThanOrEqualTo(2L * (commands / 2 / 32 + 1));
    }

    /**
     * The pages are not retained across a controller reset: afterwards the controller reads the registers' values
     * again, not a stale shadow page, and a new Doorbell Buffer Config works.
     */
    @Test
    void aControllerResetForgetsThePages() throws Exception {
        start(DoorbellMode.SHADOW);
        ioQueues(1, 16);
        assertThat(host.configureShadowDoorbells().status()).isZero();
        long buf = host.alloc(PAGE);
        MemorySegment.copy(MemorySegment.ofArray(pattern(PAGE, 5)), 0, host.at(buf, PAGE), 0, PAGE);
        host.ok(host.queue(1), io(WRITE, 40, 8, buf, 0));
        long oldPage = host.shadowPage();

        host.write32(NvmeHostDriver.CC, NvmeHostDriver.CC_CONFIG);
        host.awaitCsts("RDY = 0 after CC.EN = 0", 1, 0);
        host.forgetShadowDoorbells();
        host.enable(16);
        host.createIoQueues(1, 16);
        host.at(oldPage + 8, 4).set(ValueLayout.JAVA_INT_UNALIGNED, 0, 9); // a stale SQ 1 tail of 9
        Queue q = host.queue(1);
        long r1 = host.alloc(PAGE);
        host.ok(q, io(READ, 40, 8, r1, 0)); // register doorbell: tail 1
        long r2 = host.alloc(PAGE);
        // Had the controller taken the stale tail, 8 empty entries would complete before this one.
        host.ok(q, io(READ, 40, 8, r2, 0));
        assertThat(host.at(r1, PAGE).toArray(ValueLayout.JAVA_BYTE)).isEqualTo(pattern(PAGE, 5));
        assertThat(host.at(r2, PAGE).toArray(ValueLayout.JAVA_BYTE)).isEqualTo(pattern(PAGE, 5));

        assertThat(host.configureShadowDoorbells().status()).as("configured again").isZero();
        assertThat(host.shadowValue(2)).as("SQ 1 tail").isEqualTo(2);
        long r3 = host.alloc(PAGE);
        host.ok(q, io(READ, 40, 8, r3, 0));
        assertThat(host.at(r3, PAGE).toArray(ValueLayout.JAVA_BYTE)).isEqualTo(pattern(PAGE, 5));
    }

    /**
     * With INTx (MSI-X off) the line stays high while a completion queue holds entries the host has not consumed,
     * so the controller asks for that queue's head (EventIdx = head): each consumption rings, the line drops, and
     * the next completion raises it again.
     */
    @Test
    void intxAsksForTheHeadSoTheLineDrops() throws Exception {
        start(DoorbellMode.SHADOW);
        host.enableIntx();
        Queue admin = host.enable(8);
        assertThat(host.configureShadowDoorbells().status()).isZero();
        host.ok(admin, Sqe.of(0x09, 0).dwords(0x07, 0, 0, 0));
        host.interrupts(0);
        Queue q = host.createIoQueue(1, 8, 0);
        host.interrupts(0);
        long buf = host.alloc(PAGE);
        for (int i = 0; i < 20; i++) {
            int cid = host.submit(q, io(READ, 0, 8, buf, 0));
            assertThat(host.awaitInterrupt(0)).as("INTx raised for completion %d", i).isPositive();
            Cqe c = host.next(q);
            assertThat(c.cid()).isEqualTo(cid);
            assertThat(c.status()).isZero();
        }
        assertThat(host.rings(3)).as("CQ 1 head doorbells: each asked for").isEqualTo(20);
    }
}
