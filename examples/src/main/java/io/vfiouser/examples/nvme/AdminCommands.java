package io.vfiouser.examples.nvme;

import java.nio.ByteBuffer;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;

/**
 * The admin command set (NVMe 1.4, 5): queue management, Identify, Get Log Page, Get/Set Features, Asynchronous
 * Event Request, Abort, and Doorbell Buffer Config when the controller offers shadow doorbells. Runs on the controller thread with the controller's state; every invalid field ends in
 * the status the specification names for it.
 */
final class AdminCommands {
    static final int DELETE_IO_SQ = 0x00;
    static final int CREATE_IO_SQ = 0x01;
    static final int GET_LOG_PAGE = 0x02;
    static final int DELETE_IO_CQ = 0x04;
    static final int CREATE_IO_CQ = 0x05;
    static final int IDENTIFY = 0x06;
    static final int ABORT = 0x08;
    static final int SET_FEATURES = 0x09;
    static final int GET_FEATURES = 0x0A;
    static final int ASYNC_EVENT_REQUEST = 0x0C;
    static final int DOORBELL_BUFFER_CONFIG = 0x7C;

    private static final int NSID_ALL = 0xFFFF_FFFF;

    private final NvmeController c;
    private final FeatureCommands features;
    /** Delete I/O Submission Queue commands waiting for their queue's commands, by queue. */
    private final Map<SubmissionQueue, CompletableFuture<Completion>> deletions = new HashMap<>();

    AdminCommands(NvmeController controller) {
        this.c = controller;
        this.features = new FeatureCommands(controller.features, controller.maxIoQueues, controller.msixVectors);
    }

    CompletableFuture<Completion> execute(Command cmd) throws CommandFailure {
        if (cmd.fuse() != 0 || cmd.psdt() != 0) {
            throw new CommandFailure(Status.INVALID_FIELD, "fused operations and SGLs are not supported");
        }
        return switch (cmd.opcode()) {
            case CREATE_IO_CQ -> done(createCompletionQueue(cmd));
            case CREATE_IO_SQ -> done(createSubmissionQueue(cmd));
            case DELETE_IO_SQ -> deleteSubmissionQueue(cmd);
            case DELETE_IO_CQ -> done(deleteCompletionQueue(cmd));
            case IDENTIFY -> done(identify(cmd));
            case GET_LOG_PAGE -> done(getLogPage(cmd));
            case SET_FEATURES -> done(setFeatures(cmd));
            case GET_FEATURES -> done(getFeatures(cmd));
            case ASYNC_EVENT_REQUEST -> c.events.request();
            case ABORT -> done(Completion.ok(1)); // bit 0 set: the command was not aborted
            case DOORBELL_BUFFER_CONFIG -> {
                if (c.doorbellMode != DoorbellMode.SHADOW) {
                    throw new CommandFailure(Status.INVALID_OPCODE, "Doorbell Buffer Config: not offered");
                }
                yield done(c.configureShadowDoorbells(cmd.prp1(), cmd.prp2()));
            }
            default -> throw new CommandFailure(Status.INVALID_OPCODE,
                    "admin opcode 0x" + Integer.toHexString(cmd.opcode()));
        };
    }

    private static CompletableFuture<Completion> done(Completion completion) {
        return CompletableFuture.completedFuture(completion);
    }

    // -------------------------------------------------------------------------------------------- queues

    private Completion createCompletionQueue(Command cmd) {
        int qid = cmd.cdw10() & 0xFFFF;
        int entries = (cmd.cdw10() >>> 16) + 1;
        boolean contiguous = (cmd.cdw11() & 1) != 0;
        boolean interrupts = (cmd.cdw11() & 2) != 0;
        int vector = cmd.cdw11() >>> 16;
        if (qid == 0 || qid > c.features.ioCompletionQueues || c.cqs[qid] != null) {
            return Completion.error(Status.INVALID_QUEUE_IDENTIFIER);
        }
        if (entries < 2 || entries > Registers.MAX_QUEUE_ENTRIES) {
            return Completion.error(Status.INVALID_QUEUE_SIZE);
        }
        if (!contiguous) {
            return Completion.error(Status.INVALID_FIELD); // CAP.CQR: only physically contiguous queues
        }
        if (vector >= c.msixVectors) {
            return Completion.error(Status.INVALID_INTERRUPT_VECTOR);
        }
        if ((cmd.prp1() & (PrpWalker.PAGE_SIZE - 1)) != 0) {
            return Completion.error(Status.PRP_OFFSET_INVALID);
        }
        c.cqs[qid] = new CompletionQueue(qid, cmd.prp1(), entries, interrupts, vector);
        c.queueCreated(2 * qid + 1);
        return Completion.OK;
    }

    private Completion createSubmissionQueue(Command cmd) {
        int qid = cmd.cdw10() & 0xFFFF;
        int entries = (cmd.cdw10() >>> 16) + 1;
        boolean contiguous = (cmd.cdw11() & 1) != 0;
        int priority = (cmd.cdw11() >>> 1) & 3;
        int cqid = cmd.cdw11() >>> 16;
        if (qid == 0 || qid > c.features.ioSubmissionQueues || c.sqs[qid] != null) {
            return Completion.error(Status.INVALID_QUEUE_IDENTIFIER);
        }
        if (cqid == 0 || cqid > c.maxIoQueues || c.cqs[cqid] == null) {
            return Completion.error(Status.COMPLETION_QUEUE_INVALID);
        }
        if (entries < 2 || entries > Registers.MAX_QUEUE_ENTRIES) {
            return Completion.error(Status.INVALID_QUEUE_SIZE);
        }
        if (!contiguous) {
            return Completion.error(Status.INVALID_FIELD);
        }
        if ((cmd.prp1() & (PrpWalker.PAGE_SIZE - 1)) != 0) {
            return Completion.error(Status.PRP_OFFSET_INVALID);
        }
        c.sqs[qid] = new SubmissionQueue(qid, cmd.prp1(), entries, cqid, priority);
        c.cqs[cqid].submissionQueues++;
        c.queueCreated(2 * qid);
        return Completion.OK;
    }

    /** Stops fetching from the queue; completes once every command fetched from it has completed. */
    private CompletableFuture<Completion> deleteSubmissionQueue(Command cmd) {
        int qid = cmd.cdw10() & 0xFFFF;
        if (qid == 0 || qid > c.maxIoQueues || c.sqs[qid] == null || c.sqs[qid].deleting) {
            return done(Completion.error(Status.INVALID_QUEUE_IDENTIFIER));
        }
        SubmissionQueue sq = c.sqs[qid];
        sq.deleting = true;
        if (sq.outstanding == 0) {
            remove(sq);
            return done(Completion.OK);
        }
        CompletableFuture<Completion> f = new CompletableFuture<>();
        deletions.put(sq, f);
        return f;
    }

    /** The last outstanding command of a queue being deleted has completed. */
    void submissionQueueDrained(SubmissionQueue sq) {
        CompletableFuture<Completion> f = deletions.remove(sq);
        if (f != null) {
            if (c.sqs[sq.id] == sq) {
                remove(sq);
            }
            f.complete(Completion.OK);
        }
    }

    private void remove(SubmissionQueue sq) {
        c.sqs[sq.id] = null;
        c.queueDeleted(2 * sq.id);
        CompletionQueue cq = c.cqs[sq.cqId];
        if (cq != null) {
            cq.submissionQueues--;
        }
    }

    private Completion deleteCompletionQueue(Command cmd) {
        int qid = cmd.cdw10() & 0xFFFF;
        if (qid == 0 || qid > c.maxIoQueues || c.cqs[qid] == null) {
            return Completion.error(Status.INVALID_QUEUE_IDENTIFIER);
        }
        if (c.cqs[qid].submissionQueues > 0) {
            return Completion.error(Status.INVALID_QUEUE_DELETION);
        }
        c.cqs[qid] = null;
        c.queueDeleted(2 * qid + 1);
        return Completion.OK;
    }

    // ------------------------------------------------------------------------------------------ identify

    private Completion identify(Command cmd) throws CommandFailure {
        int cns = cmd.cdw10() & 0xFF;
        int nsid = cmd.nsid();
        ByteBuffer data = switch (cns) {
            case IdentifyData.CNS_NAMESPACE, IdentifyData.CNS_NAMESPACE_DESCRIPTORS -> {
                if (nsid != 1) {
                    yield null;
                }
                yield cns == IdentifyData.CNS_NAMESPACE ? IdentifyData.namespace(c.namespaceInfo)
                        : IdentifyData.namespaceDescriptors(c.namespaceInfo);
            }
            case IdentifyData.CNS_CONTROLLER -> IdentifyData.controller(c.controllerInfo);
            case IdentifyData.CNS_ACTIVE_NAMESPACES -> Integer.compareUnsigned(nsid, 0xFFFF_FFFE) >= 0 ? null
                    : IdentifyData.activeNamespaces(nsid);
            default -> throw new CommandFailure(Status.INVALID_FIELD, "Identify CNS " + cns);
        };
        if (data == null) {
            return Completion.error(Status.INVALID_NAMESPACE);
        }
        transferToHost(cmd, data);
        return Completion.OK;
    }

    /** Copies {@code data} (position to limit) to the command's PRPs. */
    private void transferToHost(Command cmd, ByteBuffer data) throws CommandFailure {
        List<PrpWalker.Segment> segments = PrpWalker.walk(cmd.prp1(), cmd.prp2(), data.remaining(),
                c.dma::readQwords);
        c.dma.scatter(segments, data);
    }

    // ------------------------------------------------------------------------------------------------ logs

    private Completion getLogPage(Command cmd) throws CommandFailure {
        int lid = cmd.cdw10() & 0xFF;
        boolean retain = (cmd.cdw10() & (1 << 15)) != 0;
        long dwords = ((cmd.cdw10() >>> 16) | ((long) (cmd.cdw11() & 0xFFFF) << 16)) + 1;
        long offset = (cmd.cdw12() & 0xFFFF_FFFFL) | ((long) cmd.cdw13() << 32);
        long length = dwords * 4;
        if ((offset & 3) != 0 || length > NvmeController.maxTransfer()) {
            return Completion.error(Status.INVALID_FIELD);
        }
        if (lid == LogPages.SMART_HEALTH && cmd.nsid() != 0 && cmd.nsid() != NSID_ALL && cmd.nsid() != 1) {
            return Completion.error(Status.INVALID_NAMESPACE);
        }
        ByteBuffer page = c.logs.page(lid);
        if (page == null) {
            return Completion.error(Status.INVALID_LOG_PAGE);
        }
        if (Long.compareUnsigned(offset, page.capacity()) > 0) {
            return Completion.error(Status.INVALID_FIELD);
        }
        ByteBuffer data = ByteBuffer.allocate((int) length);
        int available = (int) Math.min(length, page.capacity() - offset);
        data.put(0, page, (int) offset, available); // the rest stays zero
        transferToHost(cmd, data);
        if (!retain) {
            c.events.logRead(lid);
        }
        return Completion.OK;
    }

    // -------------------------------------------------------------------------------------------- features

    private Completion setFeatures(Command cmd) {
        return features.set(cmd, anyIoQueue());
    }

    private Completion getFeatures(Command cmd) {
        return features.get(cmd);
    }

    private boolean anyIoQueue() {
        for (int i = 1; i < c.sqs.length; i++) {
            if (c.sqs[i] != null || c.cqs[i] != null) {
                return true;
            }
        }
        return false;
    }

    /** Controller reset: pending queue deletions are moot. */
    void reset() {
        deletions.clear();
    }
}
