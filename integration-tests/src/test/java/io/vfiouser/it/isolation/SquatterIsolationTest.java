package io.vfiouser.it.isolation;

import static org.assertj.core.api.Assertions.assertThat;

import io.vfiouser.client.VfioUserClient;
import io.vfiouser.server.ConnectionLimits;
import io.vfiouser.server.ServerOptions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Test;

/**
 * Issue 11, defect 5: connections to the victim that never send VERSION, kept coming so that one has the device
 * and the held places are full all the time. Each one has the device only until the negotiation deadline, then
 * the next one gets it; the bystander on the same event loop stays served, and once the squatters stop, a client
 * that negotiates gets the victim.
 */
class SquatterIsolationTest {
    private static final Duration DEADLINE = Duration.ofMillis(300);
    private static final int HELD = 2;

    @Test
    void squattersLoseTheDeviceAtTheDeadlineAndTheBystanderIsNotHurt() throws Exception {
        ServerOptions options = ServerOptions.DEFAULT.withLimits(ConnectionLimits.builder()
                .negotiationTimeout(DEADLINE).maxHeldConnections(HELD).build());
        try (IsolationFixture fixture = new IsolationFixture(options)) {
            Bystander bystander = fixture.startBystander();
            AtomicBoolean stop = new AtomicBoolean();
            List<Throwable> failures = new CopyOnWriteArrayList<>();
            List<RawPeer> squatters = new ArrayList<>();
            Thread abuse = new Thread(() -> {
                try {
                    while (!stop.get()) {
                        // One squatter attached and the held places taken, replaced as the server closes them.
                        for (var it = squatters.iterator(); it.hasNext(); ) {
                            RawPeer s = it.next();
                            if (s.closedByServer()) {
                                s.close();
                                it.remove();
                            }
                        }
                        while (squatters.size() < 1 + HELD) {
                            squatters.add(RawPeer.connect(fixture.victimSocket()));
                        }
                        Thread.sleep(1);
                    }
                } catch (Throwable t) {
                    failures.add(t);
                }
            }, "squatters");
            abuse.start();
            try {
                bystander.awaitProgress(500);
                // Squatters took the device one after another, each for one deadline: longer than the bound.
                Conditions.await("squatters had the device in turn", () ->
                        fixture.victim().stats().getClientsAccepted() >= 8 || !failures.isEmpty());
                bystander.awaitProgress(500);
            } finally {
                stop.set(true);
                abuse.join();
                for (RawPeer s : squatters) {
                    s.close();
                }
            }
            assertThat(failures).isEmpty();
            VfioUserClient client = fixture.victimClient();
            assertThat(client.serverCapabilities()).isNotNull();
            bystander.assertHealthy();
        }
    }
}
