package io.vfiouser.benchmarks;

import io.netty.channel.EventLoopGroup;
import io.vfiouser.transport.linux.Linux;
import java.util.concurrent.TimeUnit;

/** Pins event-loop threads to a CPU ({@link Linux#pinCurrentThread(int)}), for benchmarks only. */
final class Affinity {
    private Affinity() {
    }

    /** Pins every thread of {@code group} (call before the group has work) to {@code cpu}. */
    static void pin(EventLoopGroup group, int cpu) throws Exception {
        for (var executor : group) {
            executor.submit(() -> {
                Linux.pinCurrentThread(cpu);
                return null;
            }).get(10, TimeUnit.SECONDS);
        }
    }
}
