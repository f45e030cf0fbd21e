package io.vfiouser.transport;

import java.util.concurrent.atomic.AtomicInteger;

/**
 * How many fds one holder (a client connection) may keep open in the process at once, shared by everything that
 * takes fds on its behalf (DMA mappings, interrupt eventfds). Every fd is one process-wide resource: without a
 * budget, one client could make the server hold fds until {@code accept4} fails with {@code EMFILE} for every
 * other client. Whoever keeps an fd first {@linkplain #tryAcquire acquires} it and {@linkplain #release releases}
 * it once it is closed. Thread-safe: mappings are released on the thread that finishes their last access.
 */
public final class FdBudget {
    private final int limit;
    private final AtomicInteger held = new AtomicInteger();

    /** @param limit the fds the holder may keep at once (at least 0) */
    public FdBudget(int limit) {
        if (limit < 0) {
            throw new IllegalArgumentException("limit must not be negative: " + limit);
        }
        this.limit = limit;
    }

    /** A budget that never refuses (for tables used outside a server). */
    public static FdBudget unlimited() {
        return new FdBudget(Integer.MAX_VALUE);
    }

    /** Takes {@code n} more fds into the budget, or nothing and {@code false} if that would exceed the limit. */
    public boolean tryAcquire(int n) {
        if (n < 0) {
            throw new IllegalArgumentException("negative count: " + n);
        }
        while (true) {
            int now = held.get();
            if (n > limit - now) {
                return false;
            }
            if (held.compareAndSet(now, now + n)) {
                return true;
            }
        }
    }

    /** Gives back {@code n} fds that were closed. */
    public void release(int n) {
        if (n < 0) {
            throw new IllegalArgumentException("negative count: " + n);
        }
        int after = held.addAndGet(-n);
        if (after < 0) {
            held.addAndGet(n);
            throw new IllegalStateException("released " + n + " fds, more than the " + (after + n) + " held");
        }
    }

    /** The fds held now. */
    public int held() {
        return held.get();
    }

    public int limit() {
        return limit;
    }

    @Override
    public String toString() {
        return "FdBudget(" + held.get() + "/" + limit + ")";
    }
}
