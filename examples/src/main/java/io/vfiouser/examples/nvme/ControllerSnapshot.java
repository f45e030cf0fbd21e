package io.vfiouser.examples.nvme;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * The controller's state as it travels in a live migration: registers, queues with their positions and the
 * completions still waiting to be posted, parked Asynchronous Event Requests (as command ids) and their events,
 * features and the SMART counters. Taken on the controller thread of a stopped (quiesced) controller, so no
 * command is working: every fetched command has either completed into its queue's ring or waits in
 * {@link CompletionQueue#waiting}, and commands not fetched yet are still in the host's ring; so each command
 * completes exactly once, on one side or the other. The INTx level this controller drives travels too (the
 * framework carries the line itself), and so do the addresses of the shadow doorbell pages (the pages are guest
 * memory; the EventIdx values are published again on the destination). Not carried: the Error Information log entries (only their
 * count) and the power-on time.
 */
final class ControllerSnapshot {
    static final byte VERSION = 1;

    private ControllerSnapshot() {
    }

    /** The state of {@code c}, which must be stopped (no command in flight). */
    static ByteBuffer save(NvmeController c) {
        if (c.inflight != 0) {
            throw new IllegalStateException(c.inflight + " commands still in flight: the controller is not stopped");
        }
        ByteBuffer b = ByteBuffer.allocate(size(c)).order(ByteOrder.LITTLE_ENDIAN);
        b.put(VERSION);
        b.putInt(c.maxIoQueues);
        b.putInt(c.cc).putInt(c.csts).putInt(c.intms).putInt(c.aqa).putLong(c.asq).putLong(c.acq);
        b.put((byte) (c.shuttingDown ? 1 : 0)).put((byte) (c.intxAsserted ? 1 : 0));
        Features f = c.features;
        b.putInt(f.arbitration).putInt(f.powerManagement).putInt(f.overTemperature).putInt(f.underTemperature)
                .put((byte) (f.volatileWriteCache ? 1 : 0)).putInt(f.ioSubmissionQueues)
                .putInt(f.ioCompletionQueues).putInt(f.interruptCoalescing).putInt(f.asyncEventConfiguration);
        LogPages l = c.logs;
        b.putLong(l.errorCount).putLong(l.blocksRead).putLong(l.blocksWritten).putLong(l.readCommands)
                .putLong(l.writeCommands);
        for (CompletionQueue cq : c.cqs) {
            if (cq == null) {
                continue;
            }
            b.put((byte) 'C').putInt(cq.id).putLong(cq.base).putInt(cq.size).put((byte) (cq.interruptsEnabled ? 1 : 0))
                    .putInt(cq.vector).putInt(cq.head).putInt(cq.tail).put((byte) (cq.phase ? 1 : 0))
                    .putInt(cq.submissionQueues).putInt(cq.waiting.size());
            for (CompletionQueue.Entry e : cq.waiting) {
                b.putInt(e.result()).putInt(e.sqId()).putInt(e.cid()).putInt(e.status());
            }
        }
        for (SubmissionQueue sq : c.sqs) {
            if (sq == null) {
                continue;
            }
            b.put((byte) 'S').putInt(sq.id).putLong(sq.base).putInt(sq.size).putInt(sq.cqId).putInt(sq.priority)
                    .putInt(sq.head).putInt(sq.tail);
        }
        b.put((byte) 'F').putInt(f.errorRecovery).putLong(f.coalescingDisabled)
                .put((byte) (f.atomicityNormalDisabled ? 1 : 0));
        for (NvmeController.Pending p : c.parkedAers) {
            b.put((byte) 'A').putInt(p.command.cid());
        }
        for (AsyncEvents.Event e : c.events.pendingEvents()) {
            b.put((byte) 'E').putInt(e.type()).putInt(e.info()).putInt(e.logPage());
        }
        for (int type : c.events.maskedTypes()) {
            b.put((byte) 'M').putInt(type);
        }
        if (c.shadow != null) {
            b.put((byte) 'D').putLong(c.shadow.doorbells).putLong(c.shadow.eventIdx);
        }
        b.put((byte) 0);
        return b.flip();
    }

    private static int size(NvmeController c) {
        int n = 1 + 4 + 4 * 4 + 16 + 2 + 4 * 8 + 1 + 5 * 8 + 1;
        for (CompletionQueue cq : c.cqs) {
            if (cq != null) {
                n += 1 + 4 + 8 + 4 + 1 + 4 * 3 + 1 + 4 + 4 + 16 * cq.waiting.size();
            }
        }
        for (SubmissionQueue sq : c.sqs) {
            if (sq != null) {
                n += 1 + 4 + 8 + 4 * 5;
            }
        }
        n += 1 + 4 + 8 + 1; // the features NVMe 1.4 added, as a tagged record ('F')
        n += 5 * c.parkedAers.size() + 13 * c.events.pendingEvents().size() + 5 * c.events.maskedTypes().size();
        n += c.shadow == null ? 0 : 1 + 16;
        return n;
    }

    /**
     * Replaces the state of {@code c} (stopped, on its thread) with a saved one.
     *
     * @throws IllegalArgumentException for a state of another version, of a controller with another number of
     *                                  queues, or that does not parse
     */
    static void load(NvmeController c, ByteBuffer state) {
        ByteBuffer b = state.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        try {
            if (b.get() != VERSION || b.getInt() != c.maxIoQueues) {
                throw new IllegalArgumentException("NVMe controller state of another version or size");
            }
            java.util.Arrays.fill(c.sqs, null);
            java.util.Arrays.fill(c.cqs, null);
            c.shadow = null;
            c.cc = b.getInt();
            c.csts = b.getInt();
            c.intms = b.getInt();
            c.aqa = b.getInt();
            c.asq = b.getLong();
            c.acq = b.getLong();
            c.shuttingDown = b.get() != 0;
            c.intxAsserted = b.get() != 0;
            Features f = c.features;
            f.arbitration = b.getInt();
            f.powerManagement = b.getInt();
            f.overTemperature = b.getInt();
            f.underTemperature = b.getInt();
            f.volatileWriteCache = b.get() != 0;
            f.ioSubmissionQueues = b.getInt();
            f.ioCompletionQueues = b.getInt();
            f.interruptCoalescing = b.getInt();
            f.asyncEventConfiguration = b.getInt();
            LogPages l = c.logs;
            l.errorCount = b.getLong();
            l.blocksRead = b.getLong();
            l.blocksWritten = b.getLong();
            l.readCommands = b.getLong();
            l.writeCommands = b.getLong();
            List<Integer> aers = new ArrayList<>();
            List<AsyncEvents.Event> events = new ArrayList<>();
            Set<Integer> masked = new HashSet<>();
            for (byte tag = b.get(); tag != 0; tag = b.get()) {
                switch (tag) {
                    case 'C' -> {
                        CompletionQueue cq = new CompletionQueue(queueId(c, b.getInt()), b.getLong(), b.getInt(),
                                b.get() != 0, b.getInt());
                        cq.head = b.getInt();
                        cq.tail = b.getInt();
                        cq.phase = b.get() != 0;
                        cq.submissionQueues = b.getInt();
                        int waiting = b.getInt();
                        for (int i = 0; i < waiting; i++) {
                            cq.waiting.add(new CompletionQueue.Entry(b.getInt(), b.getInt(), b.getInt(), b.getInt()));
                        }
                        c.cqs[cq.id] = cq;
                    }
                    case 'S' -> {
                        SubmissionQueue sq = new SubmissionQueue(queueId(c, b.getInt()), b.getLong(), b.getInt(),
                                b.getInt(), b.getInt());
                        sq.head = b.getInt();
                        sq.tail = b.getInt();
                        c.sqs[sq.id] = sq;
                    }
                    case 'F' -> {
                        f.errorRecovery = b.getInt();
                        f.coalescingDisabled = b.getLong();
                        f.atomicityNormalDisabled = b.get() != 0;
                    }
                    case 'A' -> aers.add(b.getInt());
                    case 'E' -> events.add(new AsyncEvents.Event(b.getInt(), b.getInt(), b.getInt()));
                    case 'M' -> masked.add(b.getInt());
                    case 'D' -> {
                        if (c.doorbellMode != DoorbellMode.SHADOW) {
                            throw new IllegalArgumentException("NVMe controller state uses shadow doorbells, which"
                                    + " this controller does not offer (doorbells=" + c.doorbellMode.optionName()
                                    + ")");
                        }
                        c.shadow = new ShadowDoorbells(b.getLong(), b.getLong(), c.maxIoQueues);
                    }
                    default -> throw new IllegalArgumentException("NVMe controller state: unknown tag " + tag);
                }
            }
            c.events.restore(events, masked);
            for (int cid : aers) {
                c.reparkAer(cid);
            }
        } catch (java.nio.BufferUnderflowException e) {
            throw new IllegalArgumentException("NVMe controller state cut short", e);
        }
    }

    private static int queueId(NvmeController c, int id) {
        if (id < 0 || id > c.maxIoQueues) {
            throw new IllegalArgumentException("NVMe controller state: queue " + id);
        }
        return id;
    }
}
