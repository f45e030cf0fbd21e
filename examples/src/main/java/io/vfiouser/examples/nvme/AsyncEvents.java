package io.vfiouser.examples.nvme;

import java.util.ArrayDeque;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;

/**
 * Asynchronous Event Requests and the events that complete them (NVMe 1.4, 5.2). The host parks up to
 * {@link #limit} requests; each event completes the oldest one, and further events of the same type wait until the
 * host has read the event's log page (with Retain Asynchronous Event cleared). Owned by the controller thread.
 */
final class AsyncEvents {
    static final int TYPE_ERROR = 0;
    static final int INFO_INVALID_DOORBELL_REGISTER = 0x00;
    static final int INFO_INVALID_DOORBELL_VALUE = 0x01;

    /** One event: its type, information and associated log page, as completion dword 0 reports them. */
    record Event(int type, int info, int logPage) {
        int result() {
            return type | info << 8 | logPage << 16;
        }
    }

    private final int limit;
    private final ArrayDeque<CompletableFuture<Completion>> requests = new ArrayDeque<>();
    private final ArrayDeque<Event> pending = new ArrayDeque<>();
    /** Event types reported and not yet acknowledged by reading their log page. */
    private final Set<Integer> masked = new HashSet<>();

    AsyncEvents(int limit) {
        this.limit = limit;
    }

    /**
     * Parks a request: the future completes when an event arrives. Over the limit it completes at once with
     * Asynchronous Event Request Limit Exceeded.
     */
    CompletableFuture<Completion> request() {
        if (requests.size() >= limit) {
            return CompletableFuture.completedFuture(Completion.error(Status.AER_LIMIT_EXCEEDED));
        }
        CompletableFuture<Completion> f = new CompletableFuture<>();
        requests.add(f);
        deliver();
        return f;
    }

    /** An event happened; it completes a parked request now or once one arrives. */
    void post(Event event) {
        for (Event e : pending) {
            if (e.equals(event)) {
                return;
            }
        }
        pending.add(event);
        deliver();
    }

    /** The host read log page {@code logPage} without retaining events: unmask the types that point at it. */
    void logRead(int logPage) {
        if (logPage == 0x01) {
            masked.remove(TYPE_ERROR);
        }
        deliver();
    }

    private void deliver() {
        while (!requests.isEmpty()) {
            Event next = null;
            for (Event e : pending) {
                if (!masked.contains(e.type())) {
                    next = e;
                    break;
                }
            }
            if (next == null) {
                return;
            }
            pending.remove(next);
            masked.add(next.type());
            requests.poll().complete(Completion.ok(next.result()));
        }
    }

    /** Controller reset: parked requests end with Command Abort Requested (no queue left to post them). */
    void reset() {
        while (!requests.isEmpty()) {
            requests.poll().complete(Completion.error(Status.ABORT_REQUESTED));
        }
        pending.clear();
        masked.clear();
    }

    int parked() {
        return requests.size();
    }

    /** Events waiting for a request or for their type to be unmasked, oldest first (for migration). */
    List<Event> pendingEvents() {
        return List.copyOf(pending);
    }

    /** Event types reported and not yet acknowledged (for migration). */
    Set<Integer> maskedTypes() {
        return Set.copyOf(masked);
    }

    /** Takes back the events and masks of a migrated controller (no request is parked yet). */
    void restore(List<Event> events, Set<Integer> maskedTypes) {
        pending.clear();
        pending.addAll(events);
        masked.clear();
        masked.addAll(maskedTypes);
    }
}
