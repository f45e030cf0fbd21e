package io.vfiouser.examples.nvme;

import java.util.ArrayDeque;

/**
 * A completion queue as the controller tracks it: its ring in guest memory, the tail and phase tag the controller
 * writes with, the head the host last rang, its interrupt, and the entries that wait for room (a full ring) or for
 * the controller to resume after a quiesce. Plain fields, owned by the controller thread.
 */
final class CompletionQueue {
    static final int ENTRY_SIZE = 16;

    /** A completion that has not been written to the ring yet. */
    record Entry(int result, int sqId, int cid, int status) {
    }

    final int id;
    final long base;
    /** Entries in the ring (1-based). */
    final int size;
    final boolean interruptsEnabled;
    final int vector;
    int head;
    int tail;
    /** The phase tag the next entry is written with; starts at 1 and flips every time the tail wraps. */
    boolean phase = true;
    /** Submission queues that post here (a CQ with any cannot be deleted). */
    int submissionQueues;
    final ArrayDeque<Entry> waiting = new ArrayDeque<>();
    /** Shadow doorbells: the EventIdx last published for this queue's head, -1 before any. */
    int eventIdx = -1;

    CompletionQueue(int id, long base, int size, boolean interruptsEnabled, int vector) {
        this.id = id;
        this.base = base;
        this.size = size;
        this.interruptsEnabled = interruptsEnabled;
        this.vector = vector;
    }

    boolean isFull() {
        return (tail + 1) % size == head;
    }

    /** Whether the host has entries it has not consumed (head behind tail). */
    boolean hasUnconsumed() {
        return head != tail;
    }

    long tailAddress() {
        return base + (long) tail * ENTRY_SIZE;
    }

    void advanceTail() {
        tail++;
        if (tail == size) {
            tail = 0;
            phase = !phase;
        }
    }

    /** Whether {@code newHead} lies between the current head and the tail (inclusive), as a valid head doorbell. */
    boolean acceptsHead(int newHead) {
        if (newHead < 0 || newHead >= size) {
            return false;
        }
        int consumed = Math.floorMod(newHead - head, size);
        int available = Math.floorMod(tail - head, size);
        return consumed <= available;
    }
}
