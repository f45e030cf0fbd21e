package io.vfiouser.it.qemu;

import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;

/** Waiting for a host-side condition that has no event of its own (e.g. the server noticing a client left). */
final class Conditions {
    private Conditions() {
    }

    /** Waits up to {@code within} for {@code condition}, checking it every few milliseconds; fails with
     * {@code what} (evaluated only on failure) if it never holds. */
    static void await(BooleanSupplier condition, Duration within, Supplier<String> what) throws InterruptedException {
        long deadline = System.nanoTime() + within.toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("not within " + within + ": " + what.get());
            }
            TimeUnit.MILLISECONDS.sleep(5);
        }
    }
}
