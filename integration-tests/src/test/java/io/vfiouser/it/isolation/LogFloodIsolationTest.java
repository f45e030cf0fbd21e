package io.vfiouser.it.isolation;

import static org.assertj.core.api.Assertions.assertThat;

import io.vfiouser.examples.nulldev.NullDevice;
import io.vfiouser.transport.testing.CapturedLog;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.logging.log4j.Level;
import org.junit.jupiter.api.Test;

/**
 * Issue 11, defect 3: a client looping connect, misbehave, close made the server log a line or more per
 * message (255 MB of log in 11 s), and client text reached log lines raw. Now a device's clients cost at most
 * {@code warningBurst} warnings (and four times as many informational lines) per interval and a summary line with
 * the count, and client text is escaped.
 */
class LogFloodIsolationTest {
    /** Capabilities whose bad value the server quotes: a line separator, a bidi override, a C1 CSI sequence. */
    private static final String NASTY = "{\"capabilities\":{\"max_msg_fds\":\"\u2028forged line\u202e\u009b31m\"}}";
    private static final int ROUNDS = 2_000;

    @Test
    void aClientLoopingConnectMisbehaveCloseCostsAFewLines() throws Exception {
        List<String> lines;
        AtomicLong rounds = new AtomicLong();
        try (CapturedLog victimLog = CapturedLog.of("io.vfiouser.device.victim", Level.INFO)) {
            try (IsolationFixture fixture = new IsolationFixture()) {
                Bystander bystander = fixture.startBystander();
                AtomicBoolean stop = new AtomicBoolean();
                AtomicReference<Throwable> failure = new AtomicReference<>();
                Thread flood = new Thread(() -> {
                    try {
                        for (int i = 0; !stop.get(); i++) {
                            try (RawClient c = RawClient.connect(fixture.victimSocket())) {
                                if (i % 2 == 0) {
                                    // Refused with EINVAL, then closed by the server.
                                    c.write(RawClient.version(0, NASTY));
                                    c.readMessage();
                                } else {
                                    // Negotiated, then 8 MiB of replies asked for and never read: the server's
                                    // writes fail once the client has gone.
                                    c.write(RawClient.version(0, "{}"));
                                    c.readMessage();
                                    ByteBuffer reads = ByteBuffer.allocate(8 * 32);
                                    for (int k = 0; k < 8; k++) {
                                        reads.put(RawClient.regionRead(k + 1, NullDevice.MEMORY_BAR, 0, 1 << 20));
                                    }
                                    c.write(reads.flip());
                                }
                            }
                            fixture.awaitVictimFree();
                            rounds.incrementAndGet();
                        }
                    } catch (IOException | InterruptedException | RuntimeException | AssertionError e) {
                        failure.set(e);
                    }
                }, "flood");
                flood.setDaemon(true);
                flood.start();
                while (rounds.get() < ROUNDS && failure.get() == null) {
                    bystander.awaitProgress(100);
                }
                stop.set(true);
                flood.join(30_000);
                assertThat(failure.get()).isNull();
                bystander.assertHealthy();
            }
            // The server has stopped: the summary of what was not logged is written.
            lines = victimLog.lines();
        }
        long warnings = lines.stream().filter(l -> l.startsWith("WARN")).count();
        long infos = lines.stream().filter(l -> l.startsWith("INFO")).count();
        assertThat(warnings).as("warnings for %d rounds: %s", rounds.get(), lines).isLessThanOrEqualTo(5 + 1);
        assertThat(infos).as("info lines for %d rounds: %s", rounds.get(), lines).isLessThanOrEqualTo(4 * 5 + 1);
        assertThat(lines.getLast()).startsWith("WARN victim: ").contains("warnings and", "not logged");
        String refused = lines.stream().filter(l -> l.contains("bad VERSION capabilities")).findFirst().orElseThrow();
        assertThat(refused).contains("\\u{2028}forged line\\u{202e}\\x9b31m")
                .doesNotContain("\u2028", "\u202e", "\u009b", "\n", "\r");
    }
}
