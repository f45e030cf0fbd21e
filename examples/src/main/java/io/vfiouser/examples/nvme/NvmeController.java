package io.vfiouser.examples.nvme;

import io.vfiouser.device.DeviceContext;
import io.vfiouser.device.IrqType;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

/**
 * The NVMe controller: registers, queues, command fetch and completion, interrupts, reset and shutdown.
 *
 * <h2>Threading</h2>
 * Every method runs on one thread, the controller thread behind {@link #executor}; the state is plain fields that
 * nothing else touches. Register accesses and doorbells arrive there from the device's handlers. A doorbell
 * schedules one pump, which fetches every entry the host has submitted by then (up to {@value #BURST} per queue
 * before the next queue's turn), so doorbells that arrive together cost one pass.
 *
 * <p>Small reads and writes ({@link IoCommands#SYNC_LIMIT}) do their file I/O right in the pump, and their
 * completion is posted, with its interrupt, before the pump fetches the next command: one wake-up of this thread
 * per submission doorbell, none of an I/O thread. Larger transfers, flushes and zeroing run on the namespace's
 * I/O threads (a large read also copies its data into the guest there) and hop back here to be posted; their
 * completions are posted in the order they finish. Commands of all queues can be in flight together.
 *
 * <h2>Shadow doorbells</h2>
 * In {@link DoorbellMode#SHADOW} the host may give the controller its shadow doorbell and EventIdx pages (Doorbell
 * Buffer Config, {@link ShadowDoorbells}). From then on the I/O queues' doorbell values are the ones in the shadow
 * page: every pump reads them all (a register doorbell write is only a wake-up, its value possibly older than the
 * shadow's), and before the pump lets the controller go idle it publishes each I/O SQ's tail as its EventIdx and
 * reads the shadow tails once more, so a host that submitted meanwhile without ringing is served now and a later
 * submission rings. While the controller keeps finding work it publishes nothing, and the host rings nothing. A
 * completion queue's head is asked for (EventIdx = head) only while completions wait for room in it or while it
 * holds the INTx level; otherwise the host rings its head at most once per trip around the ring. The admin queue
 * keeps its register doorbells, as Linux and SPDK use it.
 *
 * <h2>Mmapped doorbells</h2>
 * In {@link DoorbellMode#MMAP} the doorbells at BAR0 + 0x1000 are a page the client maps and writes without a
 * message ({@link MmapDoorbells}): the doorbells of the queues that exist are watched from the queue's creation to
 * its deletion or the controller's reset, and what the host wrote there reaches {@link #doorbell} from a task on this
 * thread, as a register doorbell would. Every completion posted keeps the watcher spinning for a while, since the
 * host is about to ring.
 *
 * <h2>Quiesce and reset</h2>
 * {@link #quiesce()} stops fetching and posting and completes when no fetched command is still working (commands
 * waiting in a completion queue and parked Asynchronous Event Requests do no DMA and do not count). The next
 * callback from the framework {@linkplain #resume() resumes}. A controller reset (CC.EN 1 to 0, or the framework's
 * reset) waits the same way, then forgets every queue; completions of the old life are dropped by epoch.
 */
final class NvmeController {
    private static final Logger LOG = LogManager.getLogger(NvmeController.class);
    /** Commands fetched from one queue before the others get their turn. */
    private static final int BURST = 32;

    /** A fetched command on its way to completion. */
    static final class Pending {
        final SubmissionQueue sq;
        final Command command;
        final long epoch;
        /** Whether it counts as in flight (parked Asynchronous Event Requests do not). */
        boolean counted = true;

        Pending(SubmissionQueue sq, Command command, long epoch) {
            this.sq = sq;
            this.command = command;
            this.epoch = epoch;
        }
    }

    final Executor executor;
    final NamespaceFile namespace;
    final DoorbellMode doorbellMode;
    final int maxIoQueues;
    final int msixVectors;
    final IdentifyData.ControllerInfo controllerInfo;
    final IdentifyData.NamespaceInfo namespaceInfo;
    final Features features;
    final LogPages logs;
    final AsyncEvents events;
    final SubmissionQueue[] sqs;
    final CompletionQueue[] cqs;
    private final AdminCommands admin;
    private final IoCommands io;

    // Registers.
    int cc;
    int csts;
    int intms;
    int aqa;
    long asq;
    long acq;

    // Life cycle.
    private DeviceContext context;
    GuestDma dma;
    long epoch;
    int inflight;
    boolean paused;
    boolean disabling;
    boolean shuttingDown;
    /**
     * Stopped for migration (STOP, STOP_COPY, RESUMING): paused like a quiesce, but only a migration transition
     * back to RUNNING resumes; other callbacks do not.
     */
    boolean migrationStopped;
    /** Asynchronous Event Requests parked now, oldest first (they migrate as their command ids). */
    final List<Pending> parkedAers = new ArrayList<>();
    private boolean pumpScheduled;
    /** The watched doorbell page of {@link DoorbellMode#MMAP}; null in the other modes. */
    MmapDoorbells mmap;
    /** The host's shadow doorbell and EventIdx pages; null until Doorbell Buffer Config, and after a reset. */
    ShadowDoorbells shadow;
    /** Whether this controller holds INTx high (the framework's line level migrates with it). */
    boolean intxAsserted;
    private final List<Runnable> drainWaiters = new ArrayList<>();
    /*
     * Buffers for the 64-byte fetch and the 16-byte completion entry, reused: the controller thread waits for
     * every guest access it starts. After a failed access (a client that did not answer in time) they are
     * replaced, so a late answer cannot land in the next command.
     */
    private ByteBuffer sqEntry = ByteBuffer.allocate(Command.SIZE);
    private ByteBuffer cqEntry = newCqEntry();

    NvmeController(Executor executor, NamespaceFile namespace, String serial, int maxIoQueues, int msixVectors,
                   DoorbellMode doorbellMode) {
        this.executor = executor;
        this.namespace = namespace;
        this.doorbellMode = doorbellMode;
        this.maxIoQueues = maxIoQueues;
        this.msixVectors = msixVectors;
        this.controllerInfo = new IdentifyData.ControllerInfo(NvmeDevice.VENDOR_ID, NvmeDevice.VENDOR_ID, serial,
                "vfio-user-java NVMe example", NvmeDevice.FIRMWARE,
                "nqn.2024-01.io.vfiouser:nvme:" + serial, NvmeDevice.MAX_TRANSFER_SHIFT, maxIoQueues,
                NvmeDevice.AER_LIMIT, NvmeDevice.ABORT_LIMIT, NvmeDevice.ERROR_LOG_ENTRIES,
                doorbellMode == DoorbellMode.SHADOW ? IdentifyData.OACS_DOORBELL_BUFFER_CONFIG : 0);
        this.namespaceInfo = new IdentifyData.NamespaceInfo(namespace.blocks(),
                UUID.nameUUIDFromBytes(("vfio-user-java nvme " + serial).getBytes()));
        this.features = new Features(maxIoQueues);
        this.logs = new LogPages(NvmeDevice.ERROR_LOG_ENTRIES, NvmeDevice.FIRMWARE);
        this.events = new AsyncEvents(NvmeDevice.AER_LIMIT);
        this.sqs = new SubmissionQueue[maxIoQueues + 1];
        this.cqs = new CompletionQueue[maxIoQueues + 1];
        this.admin = new AdminCommands(this);
        this.io = new IoCommands(this);
    }

    /** The largest data transfer of one command, in bytes (MDTS). */
    static long maxTransfer() {
        return (long) PrpWalker.PAGE_SIZE << NvmeDevice.MAX_TRANSFER_SHIFT;
    }

    // ------------------------------------------------------------------------------------------- clients

    void attach(DeviceContext ctx) {
        context = ctx;
        dma = new GuestDma(ctx.dma());
        if (mmap != null) {
            mmap.attach(ctx.areaMemory(NvmeDevice.REGISTER_BAR, NvmeDevice.DOORBELL_AREA));
        }
    }

    void detach() {
        context = null;
        dma = null;
        intxAsserted = false;
    }

    // ----------------------------------------------------------------------------------------- registers

    /** Reads {@code length} bytes of BAR0 at {@code offset} (little-endian). */
    void readRegisters(long offset, byte[] out) {
        for (int i = 0; i < out.length; i++) {
            long at = offset + i;
            int value = readDword((int) (at & ~3L));
            out[i] = (byte) (value >>> (8 * (int) (at & 3)));
        }
    }

    private int readDword(int offset) {
        return switch (offset) {
            case Registers.CAP -> (int) Registers.CAPABILITIES;
            case Registers.CAP + 4 -> (int) (Registers.CAPABILITIES >>> 32);
            case Registers.VS -> Registers.VERSION;
            case Registers.INTMS, Registers.INTMC -> intms;
            case Registers.CC -> cc;
            case Registers.CSTS -> csts;
            case Registers.AQA -> aqa;
            case Registers.ASQ -> (int) asq;
            case Registers.ASQ + 4 -> (int) (asq >>> 32);
            case Registers.ACQ -> (int) acq;
            case Registers.ACQ + 4 -> (int) (acq >>> 32);
            default -> 0;
        };
    }

    /** Writes {@code bytes} to BAR0 at {@code offset}: registers below 0x1000, doorbells from there. */
    void writeRegisters(long offset, byte[] bytes) {
        int i = 0;
        while (i < bytes.length) {
            long at = offset + i;
            int first = (int) (at & 3);
            int count = Math.min(4 - first, bytes.length - i);
            int value = 0;
            int mask = 0;
            for (int b = 0; b < count; b++) {
                value |= (bytes[i + b] & 0xFF) << (8 * (first + b));
                mask |= 0xFF << (8 * (first + b));
            }
            int dword = (int) (at & ~3L);
            if (dword >= Registers.DOORBELLS) {
                doorbell((dword - Registers.DOORBELLS) / 4, value);
            } else {
                writeDword(dword, value, mask);
            }
            i += count;
        }
    }

    private void writeDword(int offset, int value, int mask) {
        int written = value & mask;
        switch (offset) {
            case Registers.INTMS -> {
                intms |= written;
                updateIntx();
            }
            case Registers.INTMC -> {
                intms &= ~written;
                updateIntx();
            }
            case Registers.CC -> writeCc((cc & ~mask) | written);
            case Registers.AQA -> aqa = ((aqa & ~mask) | written) & 0x0FFF_0FFF;
            case Registers.ASQ -> asq = merge(asq, 0, written, mask) & ~0xFFFL;
            case Registers.ASQ + 4 -> asq = merge(asq, 32, written, mask);
            case Registers.ACQ -> acq = merge(acq, 0, written, mask) & ~0xFFFL;
            case Registers.ACQ + 4 -> acq = merge(acq, 32, written, mask);
            default -> {
                // Read-only or reserved (CAP, VS, CSTS, NSSR: subsystem reset is not supported).
            }
        }
    }

    private static long merge(long register, int shift, int written, int mask) {
        long m = (mask & 0xFFFF_FFFFL) << shift;
        return (register & ~m) | ((written & 0xFFFF_FFFFL) << shift);
    }

    private void writeCc(int value) {
        int old = cc;
        cc = value & Registers.CC_WRITABLE;
        boolean wasEnabled = (old & Registers.CC_EN) != 0;
        boolean enabled = (cc & Registers.CC_EN) != 0;
        if (!wasEnabled && enabled) {
            if (!disabling) {
                enable();
            }
            // else: the reset in progress enables when it finishes.
        } else if (wasEnabled && !enabled) {
            startReset(false);
        } else if (enabled && shutdownNotification(cc) != 0 && shutdownNotification(old) == 0) {
            startShutdown();
        }
    }

    private static int shutdownNotification(int cc) {
        return (cc >>> Registers.CC_SHN_SHIFT) & 3;
    }

    // ---------------------------------------------------------------------------------------- life cycle

    private void enable() {
        int css = (cc >>> Registers.CC_CSS_SHIFT) & 7;
        int mps = (cc >>> Registers.CC_MPS_SHIFT) & 0xF;
        int sqEntries = (aqa & 0xFFF) + 1;
        int cqEntries = ((aqa >>> 16) & 0xFFF) + 1;
        if (css != 0 || mps != 0 || sqEntries < 2 || cqEntries < 2) {
            LOG.warn("enable refused: CC 0x{} AQA 0x{}", Integer.toHexString(cc), Integer.toHexString(aqa));
            csts |= Registers.CSTS_CFS;
            return;
        }
        CompletionQueue acqQueue = new CompletionQueue(0, acq, cqEntries, true, 0);
        acqQueue.submissionQueues = 1;
        cqs[0] = acqQueue;
        sqs[0] = new SubmissionQueue(0, asq, sqEntries, 0, 0);
        if (mmap != null) {
            mmap.watch(0);
            mmap.watch(1);
        }
        csts = Registers.CSTS_RDY;
        LOG.debug("enabled: admin SQ 0x{} x{}, CQ 0x{} x{}", Long.toHexString(asq), sqEntries,
                Long.toHexString(acq), cqEntries);
    }

    /** CC.EN cleared ({@code full} false) or a device reset ({@code full}): completes when the reset is done. */
    CompletableFuture<Void> startReset(boolean full) {
        disabling = true;
        CompletableFuture<Void> done = new CompletableFuture<>();
        whenDrained(() -> {
            finishReset(full);
            done.complete(null);
        });
        return done;
    }

    private void finishReset(boolean full) {
        epoch++;
        java.util.Arrays.fill(sqs, null);
        java.util.Arrays.fill(cqs, null);
        features.reset();
        events.reset();
        admin.reset();
        shadow = null; // not retained across a controller reset
        if (mmap != null) {
            mmap.reset();
        }
        csts = 0;
        intms = 0;
        if (intxAsserted && context != null) {
            context.interrupts().deassertIntx();
        }
        intxAsserted = false;
        if (full) {
            cc = 0;
            aqa = 0;
            asq = 0;
            acq = 0;
            paused = false;
        }
        disabling = false;
        shuttingDown = false;
        LOG.debug("controller reset{}", full ? " (device)" : "");
        if ((cc & Registers.CC_EN) != 0) {
            enable();
        }
    }

    private void startShutdown() {
        shuttingDown = true;
        csts = (csts & ~Registers.CSTS_SHST_MASK) | Registers.CSTS_SHST_OCCURRING;
        long at = epoch;
        whenDrained(() -> {
            CompletableFuture<Void> flushed;
            try {
                flushed = namespace.flush();
            } catch (RuntimeException e) {
                flushed = CompletableFuture.failedFuture(e);
            }
            flushed.whenCompleteAsync((v, e) -> {
                if (e != null) {
                    LOG.warn("flush at shutdown failed", e);
                }
                if (epoch == at && shuttingDown) {
                    csts = (csts & ~Registers.CSTS_SHST_MASK) | Registers.CSTS_SHST_COMPLETE;
                    LOG.debug("shutdown complete");
                }
            }, executor);
        });
    }

    /** Stops fetching commands and posting completions; completes when no command is still working. */
    CompletableFuture<Void> quiesce() {
        paused = true;
        CompletableFuture<Void> done = new CompletableFuture<>();
        whenDrained(() -> done.complete(null));
        return done;
    }

    /** Undoes {@link #quiesce()}: completions that waited are posted, fetching goes on (not while migrating). */
    void resume() {
        if (!paused || migrationStopped) {
            return;
        }
        paused = false;
        for (CompletionQueue cq : cqs) {
            if (cq != null) {
                drainWaiting(cq);
            }
        }
        schedulePump();
    }

    private void whenDrained(Runnable r) {
        if (inflight == 0) {
            r.run();
        } else {
            drainWaiters.add(r);
        }
    }

    /** The controller cannot go on (a queue it cannot reach): CSTS.CFS, and nothing more is fetched. */
    private void fatal(String why) {
        if ((csts & Registers.CSTS_CFS) == 0) {
            LOG.warn("controller fatal status: {}", why);
        }
        csts |= Registers.CSTS_CFS;
    }

    private boolean canFetch() {
        return (csts & (Registers.CSTS_RDY | Registers.CSTS_CFS)) == Registers.CSTS_RDY
                && !disabling && !shuttingDown && !paused && dma != null;
    }

    // ----------------------------------------------------------------------------------------- doorbells

    /** A write to doorbell {@code index} (SQ y tail = 2y, CQ y head = 2y + 1). */
    void doorbell(int index, int value) {
        if ((csts & Registers.CSTS_RDY) == 0 || disabling) {
            return;
        }
        int qid = index / 2;
        boolean completion = (index & 1) != 0;
        if (qid > maxIoQueues || (completion ? cqs[qid] == null : sqs[qid] == null)) {
            invalidDoorbell(AsyncEvents.INFO_INVALID_DOORBELL_REGISTER, index, value);
            return;
        }
        if (qid != 0 && shadow != null) {
            // The shadow page holds the host's values, and this one may be older: the write only wakes us up.
            int size = completion ? cqs[qid].size : sqs[qid].size;
            if (value < 0 || value >= size) {
                invalidDoorbell(AsyncEvents.INFO_INVALID_DOORBELL_VALUE, index, value);
                return;
            }
            schedulePump();
            return;
        }
        if (completion) {
            CompletionQueue cq = cqs[qid];
            if (!cq.acceptsHead(value)) {
                invalidDoorbell(AsyncEvents.INFO_INVALID_DOORBELL_VALUE, index, value);
                return;
            }
            cq.head = value;
            drainWaiting(cq);
            updateIntx();
        } else {
            SubmissionQueue sq = sqs[qid];
            if (value < 0 || value >= sq.size) {
                invalidDoorbell(AsyncEvents.INFO_INVALID_DOORBELL_VALUE, index, value);
                return;
            }
            sq.tail = value;
            schedulePump();
        }
    }

    private void invalidDoorbell(int info, int index, int value) {
        LOG.debug("invalid doorbell write: index {} value {}", index, value);
        logs.recordError(0xFFFF, 0xFFFF, Status.INVALID_FIELD, 0, 0);
        events.post(new AsyncEvents.Event(AsyncEvents.TYPE_ERROR, info, LogPages.ERROR_INFORMATION));
    }

    // ---------------------------------------------------------------------------------- shadow doorbells

    /**
     * Doorbell Buffer Config: the shadow doorbell page at {@code doorbells}, the EventIdx page at {@code eventIdx}.
     * Each must be a page of mapped guest memory (else Invalid Field in Command). The queues that exist already
     * start from the controller's positions: their shadow values are set to them.
     */
    Completion configureShadowDoorbells(long doorbells, long eventIdx) throws CommandFailure {
        if (!ShadowDoorbells.isPage(doorbells) || !ShadowDoorbells.isPage(eventIdx)
                || !dma.isMapped(doorbells, ShadowDoorbells.PAGE) || !dma.isMapped(eventIdx, ShadowDoorbells.PAGE)) {
            return Completion.error(Status.INVALID_FIELD);
        }
        ShadowDoorbells s = new ShadowDoorbells(doorbells, eventIdx, maxIoQueues);
        for (int qid = 1; qid <= maxIoQueues; qid++) {
            if (sqs[qid] != null) {
                s.writeShadow(dma, 2 * qid, sqs[qid].tail);
                sqs[qid].eventIdx = -1;
            }
            if (cqs[qid] != null) {
                s.writeShadow(dma, 2 * qid + 1, cqs[qid].head);
                cqs[qid].eventIdx = -1;
            }
        }
        shadow = s;
        LOG.debug("shadow doorbells at 0x{}, EventIdx at 0x{}", Long.toHexString(doorbells),
                Long.toHexString(eventIdx));
        return Completion.OK;
    }

    /**
     * An I/O queue was created (doorbell {@code index}): with shadow doorbells its shadow value starts at 0, as the
     * register does, whatever an earlier queue of that id left in the page.
     */
    void queueCreated(int index) {
        if (mmap != null) {
            mmap.watch(index);
        }
        if (shadowActive()) {
            try {
                shadow.writeShadow(dma, index, 0);
            } catch (CommandFailure e) {
                fatal("cannot write the shadow doorbell page: " + e.getMessage());
            }
        }
    }

    /** An I/O queue was deleted (doorbell {@code index}): with mmapped doorbells its doorbell is no longer watched. */
    void queueDeleted(int index) {
        if (mmap != null) {
            mmap.unwatch(index);
        }
    }

    /** The host wrote into the mmapped doorbell page: take what changed, as register doorbell writes. */
    void takeMmapDoorbells() {
        if (mmap != null) {
            mmap.take(this::doorbell);
        }
    }

    /**
     * A migration restored this controller's queues: their doorbells in the mmapped page are set to the positions
     * the controller holds and watched from there (the page itself does not travel).
     */
    void mmapRestored() {
        if (mmap == null) {
            return;
        }
        mmap.reset();
        for (int qid = 0; qid <= maxIoQueues; qid++) {
            if (sqs[qid] != null) {
                mmap.watchAt(2 * qid, sqs[qid].tail);
            }
            if (cqs[qid] != null) {
                mmap.watchAt(2 * qid + 1, cqs[qid].head);
            }
        }
    }

    /** Whether the shadow pages are in use now (not while quiesced: no guest memory access then). */
    private boolean shadowActive() {
        return shadow != null && dma != null && !paused && (csts & Registers.CSTS_CFS) == 0 && !disabling;
    }

    /**
     * Takes the host's I/O queue doorbell values from the shadow page: SQ tails, and CQ heads (posting the
     * completions that waited for room). Values outside their queue are ignored. False when the page cannot be
     * read (the controller is then fatal).
     */
    private boolean readShadow() {
        ByteBuffer values;
        try {
            values = shadow.readAll(dma);
        } catch (CommandFailure e) {
            fatal("cannot read the shadow doorbell page: " + e.getMessage());
            return false;
        }
        boolean heads = false;
        for (int qid = 1; qid <= maxIoQueues; qid++) {
            SubmissionQueue sq = sqs[qid];
            int tail = values.getInt(8 * qid);
            if (sq != null && tail >= 0 && tail < sq.size) {
                sq.tail = tail;
            }
            CompletionQueue cq = cqs[qid];
            int head = values.getInt(8 * qid + 4);
            if (cq != null && head != cq.head && cq.acceptsHead(head)) {
                cq.head = head;
                drainWaiting(cq);
                heads = true;
            }
        }
        if (heads) {
            updateIntx();
        }
        return true;
    }

    /**
     * The controller is about to go idle: publish each I/O SQ's tail as its EventIdx (the host rings on its next
     * submission), then, after a full fence, read the shadow tails once more, since a host that wrote its shadow
     * tail before it could see the new EventIdx did not ring. Returns whether that found more work. An EventIdx
     * already equal to the tail needs no new look: it was published, and looked after, before the last read that
     * found the tail unchanged.
     */
    private boolean publishEventIdx() {
        boolean published = false;
        try {
            for (int qid = 1; qid <= maxIoQueues; qid++) {
                SubmissionQueue sq = sqs[qid];
                if (sq != null && sq.eventIdx != sq.tail) {
                    shadow.writeEventIdx(dma, 2 * qid, sq.tail);
                    sq.eventIdx = sq.tail;
                    published = true;
                }
            }
        } catch (CommandFailure e) {
            fatal("cannot write the EventIdx page: " + e.getMessage());
            return false;
        }
        if (!published) {
            return false;
        }
        ShadowDoorbells.fence();
        if (!readShadow()) {
            return false;
        }
        for (int qid = 1; qid <= maxIoQueues; qid++) {
            if (sqs[qid] != null && sqs[qid].hasWork()) {
                return true;
            }
        }
        return false;
    }

    /**
     * Asks the host for I/O CQ {@code cq}'s head doorbell: publishes the head as its EventIdx (the host rings when
     * it next consumes), then, after a full fence, reads the shadow head. Returns true when the head had moved
     * (taken; the caller asks again at the new head if it still needs to), false when the request stands.
     */
    private boolean askForHead(CompletionQueue cq) {
        int index = 2 * cq.id + 1;
        int head;
        try {
            if (cq.eventIdx != cq.head) {
                shadow.writeEventIdx(dma, index, cq.head);
                cq.eventIdx = cq.head;
                ShadowDoorbells.fence();
            }
            head = shadow.read(dma, index);
        } catch (CommandFailure e) {
            fatal("cannot reach the shadow doorbell pages: " + e.getMessage());
            return false;
        }
        if (head == cq.head || !cq.acceptsHead(head)) {
            return false;
        }
        cq.head = head;
        return true;
    }

    // ----------------------------------------------------------------------------------- fetch, dispatch

    void schedulePump() {
        if (pumpScheduled) {
            return;
        }
        pumpScheduled = true;
        try {
            executor.execute(this::pump);
        } catch (RejectedExecutionException e) {
            pumpScheduled = false;
        }
    }

    private void pump() {
        pumpScheduled = false;
        if (shadowActive() && !readShadow()) {
            return;
        }
        boolean more = false;
        for (SubmissionQueue sq : sqs) {
            if (sq == null) {
                continue;
            }
            for (int n = 0; n < BURST && sq.hasWork(); n++) {
                if (!canFetch()) {
                    return;
                }
                fetch(sq);
            }
            more |= sq.hasWork();
        }
        if (!more && canFetch() && shadowActive()) {
            more = publishEventIdx();
        }
        if (more) {
            schedulePump();
        }
    }

    private void fetch(SubmissionQueue sq) {
        ByteBuffer entry = sqEntry.clear();
        try {
            dma.read(sq.headAddress(), entry);
        } catch (CommandFailure e) {
            sqEntry = ByteBuffer.allocate(Command.SIZE);
            fatal("cannot fetch from SQ " + sq.id + ": " + e.getMessage());
            return;
        }
        sq.advanceHead();
        Command command = Command.decode(entry.flip());
        Pending p = new Pending(sq, command, epoch);
        sq.outstanding++;
        inflight++;
        CompletableFuture<Completion> result;
        try {
            result = sq.id == 0 ? admin.execute(command) : io.execute(command);
        } catch (CommandFailure e) {
            LOG.debug("SQ {} cid {} opcode 0x{}: {}", sq.id, command.cid(), Integer.toHexString(command.opcode()),
                    e.getMessage());
            result = CompletableFuture.completedFuture(Completion.error(e.status()));
        } catch (RuntimeException e) {
            LOG.warn("SQ {} cid {} opcode 0x{} failed", sq.id, command.cid(),
                    Integer.toHexString(command.opcode()), e);
            result = CompletableFuture.completedFuture(Completion.error(Status.INTERNAL_ERROR));
        }
        if (result.isDone() && !result.isCompletedExceptionally()) {
            finish(p, result.join(), null);
            return;
        }
        if (sq.id == 0 && command.opcode() == AdminCommands.ASYNC_EVENT_REQUEST) {
            // Parked until an event: it does no DMA meanwhile, so quiesce and reset need not wait for it.
            uncount(p);
            parkedAers.add(p);
        }
        result.whenCompleteAsync((c, e) -> finish(p, c, e), executor);
    }

    /** Completions produced but not yet written to their rings (a quiesce, a full ring). */
    int waitingCompletions() {
        int n = 0;
        for (CompletionQueue cq : cqs) {
            if (cq != null) {
                n += cq.waiting.size();
            }
        }
        return n;
    }

    /**
     * Parks an Asynchronous Event Request the host submitted to the source of a migration (command id
     * {@code cid}): it completes here when an event comes, as it would have there.
     */
    void reparkAer(int cid) {
        Command command = new Command(AdminCommands.ASYNC_EVENT_REQUEST, 0, 0, cid, 0, 0, 0, 0, 0, 0, 0, 0, 0);
        Pending p = new Pending(sqs[0], command, epoch);
        p.counted = false;
        parkedAers.add(p);
        events.request().whenCompleteAsync((c, e) -> finish(p, c, e), executor);
    }

    private void uncount(Pending p) {
        if (p.counted) {
            p.counted = false;
            p.sq.outstanding--;
            inflight--;
            if (p.sq.deleting && p.sq.outstanding == 0) {
                admin.submissionQueueDrained(p.sq);
            }
            if (inflight == 0) {
                List<Runnable> waiters = new ArrayList<>(drainWaiters);
                drainWaiters.clear();
                waiters.forEach(Runnable::run);
            }
        }
    }

    /** A command's outcome is known: post it (unless its controller life is over) and release its count. */
    private void finish(Pending p, Completion completion, Throwable error) {
        try {
            report(p, completion, error);
        } finally {
            uncount(p); // whatever happens above, quiesce, reset and shutdown must not wait for this command forever
        }
    }

    private void report(Pending p, Completion completion, Throwable error) {
        parkedAers.remove(p);
        Completion c = completion;
        if (error != null) {
            Throwable cause = unwrap(error);
            if (cause instanceof CommandFailure f) {
                c = Completion.error(f.status());
            } else {
                LOG.warn("SQ {} cid {} opcode 0x{} failed", p.sq.id, p.command.cid(),
                        Integer.toHexString(p.command.opcode()), cause);
                c = Completion.error(Status.INTERNAL_ERROR);
            }
        }
        if (p.epoch == epoch && !disabling && sqs[p.sq.id] == p.sq) {
            if (c.status() != Status.SUCCESS) {
                logs.recordError(p.sq.id, p.command.cid(), c.status(),
                        p.sq.id == 0 ? 0 : p.command.startingLba(), p.command.nsid());
            }
            post(cqs[p.sq.cqId], new CompletionQueue.Entry(c.result(), p.sq.id, p.command.cid(), c.status()));
        }
    }

    private static Throwable unwrap(Throwable e) {
        Throwable t = e;
        while ((t instanceof CompletionException || t instanceof ExecutionException) && t.getCause() != null) {
            t = t.getCause();
        }
        return t;
    }

    // -------------------------------------------------------------------------------------- completions

    private void post(CompletionQueue cq, CompletionQueue.Entry entry) {
        if (cq == null) {
            return;
        }
        if (paused || !cq.waiting.isEmpty() || cq.isFull()) {
            cq.waiting.add(entry);
            if (shadow != null) {
                drainWaiting(cq); // the host may have made room without ringing
            }
            return;
        }
        write(cq, entry);
    }

    private void drainWaiting(CompletionQueue cq) {
        do {
            while (!paused && !cq.waiting.isEmpty() && !cq.isFull() && cqs[cq.id] == cq) {
                write(cq, cq.waiting.poll());
            }
        } while (cq.id != 0 && shadowActive() && !cq.waiting.isEmpty() && cq.isFull() && cqs[cq.id] == cq
                && askForHead(cq));
    }

    /**
     * Writes one entry at the tail: dwords 0-2 first, then dword 3 with the phase tag, so a host polling the phase
     * never sees a new tag next to old contents. Then the queue's interrupt.
     */
    private void write(CompletionQueue cq, CompletionQueue.Entry entry) {
        if (dma == null) {
            return;
        }
        SubmissionQueue sq = sqs[entry.sqId()];
        int sqHead = sq == null ? 0 : sq.head;
        ByteBuffer b = cqEntry.clear();
        b.putInt(0, entry.result());
        b.putInt(4, 0);
        b.putInt(8, (sqHead & 0xFFFF) | entry.sqId() << 16);
        b.putInt(12, (entry.cid() & 0xFFFF) | (cq.phase ? 1 << 16 : 0) | entry.status() << 17);
        long at = cq.tailAddress();
        try {
            dma.write(at, b.limit(12));
            dma.write(at + 12, b.limit(16).position(12));
        } catch (CommandFailure e) {
            cqEntry = newCqEntry();
            fatal("cannot post to CQ " + cq.id + ": " + e.getMessage());
            return;
        }
        cq.advanceTail();
        interrupt(cq);
        if (mmap != null) {
            mmap.wake(); // the host is about to ring: keep watching closely
        }
    }

    private static ByteBuffer newCqEntry() {
        return ByteBuffer.allocate(CompletionQueue.ENTRY_SIZE).order(ByteOrder.LITTLE_ENDIAN);
    }

    // -------------------------------------------------------------------------------------- interrupts

    private void interrupt(CompletionQueue cq) {
        if (!cq.interruptsEnabled || context == null) {
            return;
        }
        if (context.interrupts().isEnabled(IrqType.MSIX, cq.vector)) {
            context.interrupts().trigger(cq.vector);
        } else {
            updateIntx();
        }
    }

    /**
     * INTx is a level: high while a completion queue with interrupts enabled (and no MSI-X vector) holds entries
     * the host has not consumed, unless INTMS masks it.
     */
    private void updateIntx() {
        if (context == null) {
            return;
        }
        boolean level = false;
        if ((intms & 1) == 0) {
            for (CompletionQueue cq : cqs) {
                if (cq != null && cq.interruptsEnabled && cq.hasUnconsumed()
                        && !context.interrupts().isEnabled(IrqType.MSIX, cq.vector)) {
                    // Shadow doorbells: the host's head may have moved without a ring; look, and ask for one.
                    while (cq.id != 0 && shadowActive() && cq.hasUnconsumed() && askForHead(cq)) {
                        // The head moved: ask again at the new head.
                    }
                    if (cq.hasUnconsumed()) {
                        level = true;
                        break;
                    }
                }
            }
        }
        if (level && !intxAsserted) {
            intxAsserted = true;
            context.interrupts().assertIntx();
        } else if (!level && intxAsserted) {
            intxAsserted = false;
            context.interrupts().deassertIntx();
        }
    }
}
