package io.vfiouser.benchmarks.watcher;

import io.vfiouser.device.SharedPageWatcher;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.lang.management.ManagementFactory;
import java.time.Duration;
import java.util.Arrays;
import java.util.concurrent.locks.LockSupport;

/**
 * What a {@link SharedPageWatcher} costs: the CPU it burns while idle and while a word changes at a steady rate, and
 * how long after a write its listener hears of it (busy: spinning; after an idle pause: from its sleep, without
 * {@code wake()}). One writer thread stands for the client; CPU is the whole process's (the writer's own busy-waits
 * included in the "steady" rows, so those are an upper bound for the watcher).
 *
 * <pre>
 *   java -cp benchmarks/target/... io.vfiouser.benchmarks.watcher.SharedPageWatcherCost [SPIN_US] [MAX_SLEEP_US]
 * </pre>
 */
public final class SharedPageWatcherCost {
    private static final VarHandle INT = ValueLayout.JAVA_INT.varHandle();
    private static volatile long heardAt;
    private static volatile int heardValue;

    private SharedPageWatcherCost() {
    }

    public static void main(String[] args) throws Exception {
        long spinUs = args.length > 0 ? Long.parseLong(args[0]) : 50;
        long maxSleepUs = args.length > 1 ? Long.parseLong(args[1]) : 1000;
        var os = (com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
        try (Arena arena = Arena.ofShared();
             SharedPageWatcher w = new SharedPageWatcher("watcher", Duration.ofNanos(spinUs * 1000),
                     Duration.ofNanos(maxSleepUs * 1000), (slot, value) -> {
                         heardAt = System.nanoTime();
                         heardValue = value;
                     })) {
            MemorySegment page = arena.allocate(4096, 4096);
            for (int q = 0; q < 64; q++) {
                w.watch(q, page, q * 8L);
            }
            System.out.printf("spin %d us, max sleep %d us, 64 words%n", spinUs, maxSleepUs);
            Thread.sleep(500);
            // Idle.
            long cpu0 = os.getProcessCpuTime();
            long t0 = System.nanoTime();
            long scans0 = w.scans();
            Thread.sleep(5000);
            double idleCpu = (os.getProcessCpuTime() - cpu0) / (double) (System.nanoTime() - t0);
            System.out.printf("idle: %.2f %% of a CPU, %.0f scans/s%n", idleCpu * 100,
                    (w.scans() - scans0) / 5.0);
            // Steady traffic: one write every PERIOD µs, latency of each.
            for (long periodUs : new long[] {10, 100, 1000}) {
                int n = (int) Math.min(20000, 3_000_000 / periodUs);
                long[] lat = new long[n];
                cpu0 = os.getProcessCpuTime();
                t0 = System.nanoTime();
                int value = 1000;
                for (int i = 0; i < n; i++) {
                    long due = t0 + i * periodUs * 1000;
                    while (System.nanoTime() < due) {
                        if (due - System.nanoTime() > 200_000) {
                            LockSupport.parkNanos(100_000);
                        } else {
                            Thread.onSpinWait();
                        }
                    }
                    value++;
                    long at = System.nanoTime();
                    INT.setRelease(page, 0L, value);
                    while (heardValue != value) {
                        Thread.onSpinWait();
                    }
                    lat[i] = heardAt - at;
                }
                double cpu = (os.getProcessCpuTime() - cpu0) / (double) (System.nanoTime() - t0);
                Arrays.sort(lat);
                System.out.printf("a write every %d us: latency p50 %.1f us, p99 %.1f us; process CPU %.0f %%%n",
                        periodUs, lat[n / 2] / 1000.0, lat[n * 99 / 100] / 1000.0, cpu * 100);
            }
            // After an idle pause: heard from the watcher's sleep (no wake()).
            long[] lat = new long[40];
            int value = 1_000_000;
            for (int i = 0; i < lat.length; i++) {
                Thread.sleep(50);
                value++;
                long at = System.nanoTime();
                INT.setRelease(page, 0L, value);
                while (heardValue != value) {
                    Thread.onSpinWait();
                }
                lat[i] = heardAt - at;
            }
            Arrays.sort(lat);
            System.out.printf("after 50 ms idle: latency p50 %.1f us, max %.1f us%n", lat[lat.length / 2] / 1000.0,
                    lat[lat.length - 1] / 1000.0);
        }
    }
}
