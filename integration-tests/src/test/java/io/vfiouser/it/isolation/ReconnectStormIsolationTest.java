package io.vfiouser.it.isolation;

import static org.assertj.core.api.Assertions.assertThat;

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
                RawPeer current = null;
                try {
                    for (int id = 1; !stop.get(); id++) {
                        // Half the time the old connection closes just before the new one connects, half the
                        // time just after: either way the server sees the new one before it has processed the
                        // old one's close.
                        RawPeer next;
                        if (id % 2 == 0 && current != null) {
                            current.close();
                            next = RawPeer.connect(fixture.victimSocket());
                        } else {
                            next = RawPeer.connect(fixture.victimSocket());
                            if (current != null) {
                                current.close();
                            }
                        }
                        current = next;
                        current.sendVersion(id & 0xffff);
                        long reply = current.awaitReply();
                        if (reply != (id & 0xffff)) {
                            throw new AssertionError("VERSION " + id + " answered with " + Long.toHexString(reply));
                        }
                        cycles.incrementAndGet();
                    }
                } catch (Throwable t) {
                    failures.add(t);
                } finally {
                    if (current != null) {
                        try {
                            current.close();
                        } catch (Exception e) {
                            failures.add(e);
                        }
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
            assertThat(fixture.victim().stats().getClientsAccepted()).isGreaterThanOrEqualTo(cycles.get());
            bystander.assertHealthy();
        }
    }
}
