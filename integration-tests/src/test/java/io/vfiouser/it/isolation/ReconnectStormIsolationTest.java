package io.vfiouser.it.isolation;

import static org.assertj.core.api.Assertions.assertThat;

import io.vfiouser.client.ClientOptions;
import io.vfiouser.client.VfioUserClient;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/**
 * Issue 11, defect 4: clients of the victim that reconnect at once, over and over (as QEMU restarting, libvirt or
 * a script do). Every new connection arrives before the server has processed the close of the one before; none
 * may be refused, each must negotiate, and the bystander on the same event loop stays served.
 */
class ReconnectStormIsolationTest {
    @Test
    void immediateReconnectsAreAllServedAndTheBystanderIsNotHurt() throws Exception {
        try (IsolationFixture fixture = new IsolationFixture()) {
            Bystander bystander = fixture.startBystander();
            AtomicBoolean stop = new AtomicBoolean();
            AtomicLong cycles = new AtomicLong();
            List<Throwable> failures = new CopyOnWriteArrayList<>();
            Thread storm = new Thread(() -> {
                while (!stop.get()) {
                    try {
                        // Each connect negotiates (and fails if it cannot); the close is followed by the next
                        // connect at once.
                        VfioUserClient client = fixture.victimClient(ClientOptions.DEFAULT);
                        client.close();
                        cycles.incrementAndGet();
                    } catch (Throwable t) {
                        failures.add(t);
                        return;
                    }
                }
            }, "reconnect-storm");
            storm.start();
            try {
                Conditions.await("200 reconnects", () -> cycles.get() >= 200 || !failures.isEmpty());
                bystander.awaitProgress(500);
                Conditions.await("200 more reconnects", () -> cycles.get() >= 400 || !failures.isEmpty());
            } finally {
                stop.set(true);
                storm.join();
            }
            assertThat(failures).isEmpty();
            assertThat(fixture.victim().stats().getClientsRefused()).isZero();
            assertThat(fixture.victim().stats().getClientsAccepted()).isEqualTo(cycles.get());
            bystander.assertHealthy();
        }
    }
}
