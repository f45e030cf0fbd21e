package io.vfiouser.it.isolation;

import static org.assertj.core.api.Assertions.assertThat;

import io.vfiouser.client.GuestMemory;
import io.vfiouser.client.VfioUserClient;
import io.vfiouser.codec.VfioUserCommand;
import io.vfiouser.codec.VfioUserMessage;
import io.vfiouser.codec.payload.DmaMapRequest;
import io.vfiouser.server.ConnectionLimits;
import io.vfiouser.server.ServerOptions;
import io.vfiouser.transport.FdSet;
import io.vfiouser.transport.linux.Errno;
import io.vfiouser.transport.testing.FdCount;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/**
 * Issue 11, defect 6: a client that DMA_MAPs a memfd again and again, each with an fd of its own, made the server
 * hold fds until {@code accept4} failed with EMFILE for everyone. Now the victim's client is refused at its limit
 * (the announced {@code max_dma_maps}, ENOSPC, or its fd budget, EMFILE) and goes on being refused, while the
 * bystander keeps connecting and being served; when the victim's client leaves, every fd it made the server hold
 * is closed (the fixture checks).
 */
class FdExhaustionIsolationTest {
    private static final long IOVA = 0x1_0000_0000L;
    private static final long PAGE = 0x1000;

    @Test
    void mappingMemfdsStopsAtTheAnnouncedMaxDmaMaps() throws Exception {
        try (IsolationFixture fixture = new IsolationFixture()) {
            VfioUserClient victim = fixture.victimClient();
            long announced = victim.serverCapabilities().maxDmaMaps();
            assertThat(announced).isEqualTo(ConnectionLimits.DEFAULT.maxDmaMappings());
            assertThat(abuse(fixture, victim, Errno.ENOSPC)).isEqualTo(announced);
        }
    }

    @Test
    void mappingMemfdsStopsAtTheClientFdBudget() throws Exception {
        ServerOptions options = ServerOptions.DEFAULT.withLimits(ConnectionLimits.builder().maxClientFds(300).build());
        try (IsolationFixture fixture = new IsolationFixture(options)) {
            VfioUserClient victim = fixture.victimClient();
            assertThat(abuse(fixture, victim, Errno.EMFILE)).isEqualTo(300);
        }
    }

    /**
     * Maps one page of a memfd at ever new addresses, each with a new fd, until refused with {@code refusal}, and
     * keeps sending refused maps while the bystander proves it is served; returns how many maps succeeded.
     */
    private static long abuse(IsolationFixture fixture, VfioUserClient victim, int refusal) throws Exception {
        Bystander bystander = fixture.startBystander();
        long fdsBefore = FdCount.now();
        AtomicLong accepted = new AtomicLong();
        AtomicInteger refused = new AtomicInteger();
        AtomicReference<Throwable> failure = new AtomicReference<>();
        AtomicBoolean stop = new AtomicBoolean();
        try (GuestMemory ram = GuestMemory.allocate(IOVA, PAGE)) {
            Thread abuser = Thread.ofPlatform().name("victim-abuser").start(() -> {
                try {
                    for (long i = 0; !stop.get(); i++) {
                        VfioUserMessage reply = victim.send(VfioUserCommand.DMA_MAP,
                                DmaMapRequest.of(3, 0, IOVA + i * PAGE, PAGE), FdSet.of(ram.dupFd()))
                                .get(Conditions.DEADLINE_S, TimeUnit.SECONDS);
                        try {
                            if (!reply.header().isError()) {
                                accepted.incrementAndGet();
                            } else if (reply.header().error() == refusal) {
                                refused.incrementAndGet();
                            } else {
                                throw new AssertionError("DMA_MAP failed with " + Errno.name(reply.header().error()));
                            }
                        } finally {
                            reply.release();
                        }
                    }
                } catch (Throwable t) {
                    failure.set(t);
                }
            });
            try {
                Conditions.await("the victim's client is refused", () -> refused.get() > 0 || failure.get() != null);
                // The abuse goes on (refused) while the bystander connects and makes round trips.
                bystander.awaitProgress(200);
                assertThat(refused.get()).as("refused maps while the bystander was served").isGreaterThan(1);
            } finally {
                stop.set(true);
                abuser.join(TimeUnit.SECONDS.toMillis(Conditions.DEADLINE_S));
            }
            if (failure.get() != null) {
                throw new AssertionError("the abuser failed", failure.get());
            }
            // The server holds one fd per accepted mapping, no more: the refused ones were closed.
            assertThat(FdCount.now() - fdsBefore).isLessThanOrEqualTo(accepted.get() + 16);
            victim.close();
            fixture.awaitVictimFree();
            FdCount.awaitAtMost(fdsBefore + 16);
        }
        bystander.awaitProgress(1);
        bystander.assertHealthy();
        return accepted.get();
    }
}
