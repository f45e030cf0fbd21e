package io.vfiouser.it.isolation;

import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

/** Waits on conditions (never on sleeps alone): polls every millisecond up to a generous deadline. */
public final class Conditions {
    /** How long a condition may take before the test fails; far beyond what any of them needs when it holds. */
    public static final long DEADLINE_S = 30;

    private Conditions() {
    }

    public static void await(String what, BooleanSupplier condition) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(DEADLINE_S);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out waiting until " + what);
            }
            Thread.sleep(1);
        }
    }
}
