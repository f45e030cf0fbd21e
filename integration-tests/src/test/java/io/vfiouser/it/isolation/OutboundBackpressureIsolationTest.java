package io.vfiouser.it.isolation;

import static org.assertj.core.api.Assertions.assertThat;

import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.ByteBufAllocatorMetricProvider;
import io.vfiouser.examples.nulldev.NullDevice;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.Test;

/**
 * Issue 11, defect 2: a client that pipelines 1 MiB REGION_READs of BAR2 and never reads the replies. The server
 * used to read and answer every one of them, queueing gigabytes of replies until the process ran out of direct
 * memory and other devices' clients failed. Now the replies queued for one client stay within its outbound budget
 * (the channel's water marks): above it the session handles no more of its commands and stops reading from it.
 */
class OutboundBackpressureIsolationTest {
    private static final int MIB = 1 << 20;

    @Test
    void aClientThatNeverReadsHoldsNoMoreThanItsBudget() throws Exception {
        try (IsolationFixture fixture = new IsolationFixture()) {
            Bystander bystander = fixture.startBystander();
            bystander.awaitProgress(50);
            long before = usedDirectMemory();

            RawClient abuser = fixture.rawVictimClient().nonBlocking();
            AtomicLong sent = new AtomicLong();
            AtomicReference<Throwable> abuseEnded = new AtomicReference<>();
            AtomicBoolean stop = new AtomicBoolean();
            Thread thread = new Thread(() -> {
                ByteBuffer batch = ByteBuffer.allocate(64 * 32);
                try {
                    for (int id = 1; !stop.get(); id++) {
                        batch.clear();
                        for (int i = 0; i < 64; i++) {
                            batch.put(RawClient.regionRead(id * 64 + i, NullDevice.MEMORY_BAR, 0, MIB));
                        }
                        batch.flip();
                        while (batch.hasRemaining() && !stop.get()) {
                            if (abuser.offer(batch) == 0) {
                                LockSupport.parkNanos(100_000); // the server stopped reading: try again later
                            }
                        }
                        sent.addAndGet(64);
                    }
                } catch (IOException | RuntimeException e) {
                    abuseEnded.set(e);
                }
            }, "abuser");
            thread.setDaemon(true);
            thread.start();

            // Keep the abuse up while the bystander connects several times and makes thousands of round trips
            // (several seconds of wall time on a loaded machine), and watch the server's direct memory meanwhile.
            long peak = 0;
            for (int i = 0; i < 8; i++) {
                bystander.awaitProgress(250);
                peak = Math.max(peak, usedDirectMemory());
            }
            bystander.assertHealthy();
            assertThat(abuseEnded.get()).as("the abuser was still writing (blocked by the server) until now").isNull();
            // Without backpressure the server answers every request it reads: each is 1 MiB of reply.
            assertThat(peak - before).as("direct memory held for the abusing client (budget 4 MiB), "
                    + sent.get() + " requests sent").isLessThan(24L * MIB);
            assertThat(sent.get()).as("requests the server took from the socket").isLessThan(100_000);

            stop.set(true);
            thread.join(10_000);
            abuser.close();
            fixture.awaitVictimFree();
            Conditions.await("the abusing client's memory is returned (used " + usedDirectMemory() / MIB
                    + " MiB, before " + before / MIB + " MiB)", () -> usedDirectMemory() <= before + 8L * MIB);
            bystander.awaitProgress(50);
            bystander.assertHealthy();
        }
    }

    private static long usedDirectMemory() {
        return ((ByteBufAllocatorMetricProvider) ByteBufAllocator.DEFAULT).metric().usedDirectMemory();
    }
}
