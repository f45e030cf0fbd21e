package io.vfiouser.examples.nvme;

/**
 * A submission queue as the controller tracks it: where its ring lives in guest memory, the tail the host last
 * rang and the head the controller has fetched up to. Plain fields, owned by the controller thread.
 */
final class SubmissionQueue {
    final int id;
    final long base;
    /** Entries in the ring (1-based). */
    final int size;
    final int cqId;
    final int priority;
    int head;
    int tail;
    /** Commands fetched from this queue whose completion has not been produced yet. */
    int outstanding;
    /** A Delete I/O Submission Queue command is waiting for the outstanding commands; nothing more is fetched. */
    boolean deleting;
    /** Shadow doorbells: the EventIdx last published for this queue's tail, -1 before any. */
    int eventIdx = -1;

    SubmissionQueue(int id, long base, int size, int cqId, int priority) {
        this.id = id;
        this.base = base;
        this.size = size;
        this.cqId = cqId;
        this.priority = priority;
    }

    boolean hasWork() {
        return head != tail && !deleting;
    }

    /** The guest address of the entry at the head. */
    long headAddress() {
        return base + (long) head * Command.SIZE;
    }

    void advanceHead() {
        head = head + 1 == size ? 0 : head + 1;
    }
}
