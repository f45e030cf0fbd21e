package io.vfiouser.server.device;

import static org.assertj.core.api.Assertions.assertThat;

import io.vfiouser.transport.testing.CapturedLog;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.logging.log4j.Level;
import org.apache.logging.log4j.LogManager;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class RateLimitedLogTest {
    private static final String NAME = "io.vfiouser.test.RateLimitedLogTest";
    private final CapturedLog captured = new CapturedLog(NAME, Level.DEBUG);
    private final AtomicLong clock = new AtomicLong();

    @AfterEach
    void close() {
        captured.close();
    }

    private RateLimitedLog limiter(ScheduledExecutorService scheduler, Duration interval) {
        return new RateLimitedLog(LogManager.getLogger(NAME), "dev", 3, interval, scheduler, clock::get);
    }

    @Test
    void aConnectionLogsItsBurstThenIsCountedAndSummarisedOncePerInterval() {
        RateLimitedLog log = limiter(null, Duration.ofMinutes(1));
        RateLimitedLog.Connection c = log.connection();
        for (int i = 0; i < 10_000; i++) {
            c.warn("dev: command {} failed", i);
        }
        assertThat(captured.lines()).containsExactly("WARN dev: command 0 failed", "WARN dev: command 1 failed",
                "WARN dev: command 2 failed");
        clock.addAndGet(Duration.ofSeconds(61).toNanos());
        c.warn("dev: command {} failed", 10_000);
        // The connection's own burst is spent for good: only the summary of the interval that ended.
        assertThat(captured.lines()).hasSize(4);
        assertThat(captured.lines().get(3)).startsWith("WARN dev: 9997 warnings and 0 other lines");
    }

    @Test
    void aClientReconnectingInALoopGetsNoFreshAllowance() {
        RateLimitedLog log = limiter(null, Duration.ofMinutes(1));
        for (int i = 0; i < 2_000; i++) {
            RateLimitedLog.Connection c = log.connection();
            c.info("dev: client attached");
            c.warn("dev: bad VERSION {}", i);
            c.info("dev: client detached");
        }
        assertThat(captured.count("WARN")).isEqualTo(3);
        assertThat(captured.count("INFO")).isEqualTo(3 * RateLimitedLog.INFO_FACTOR);
        assertThat(captured.count("DEBUG")).as("what is over the budget goes to DEBUG")
                .isEqualTo(4_000 - 3 * RateLimitedLog.INFO_FACTOR);
        clock.addAndGet(Duration.ofMinutes(1).toNanos());
        log.flush();
        assertThat(captured.lines().getLast()).startsWith("WARN dev: 1997 warnings and "
                + (4_000 - 3 * RateLimitedLog.INFO_FACTOR) + " other lines");
        // A new interval: the device may log again.
        log.connection().warn("dev: late");
        assertThat(captured.lines().getLast()).isEqualTo("WARN dev: late");
    }

    @Test
    void theSummaryIsScheduledForTheEndOfTheIntervalAndNeedsNoFurtherLine() {
        List<Runnable> tasks = new ArrayList<>();
        List<Long> delays = new ArrayList<>();
        ScheduledThreadPoolExecutor scheduler = new ScheduledThreadPoolExecutor(1) {
            @Override
            public ScheduledFuture<?> schedule(Runnable task, long delay, TimeUnit unit) {
                tasks.add(task);
                delays.add(unit.toNanos(delay));
                return null;
            }
        };
        try {
            RateLimitedLog log = new RateLimitedLog(LogManager.getLogger(NAME), "dev", 1, Duration.ofSeconds(10),
                    scheduler, clock::get);
            clock.addAndGet(Duration.ofSeconds(4).toNanos());
            RateLimitedLog.Connection c = log.connection();
            c.warn("one");
            c.warn("two");
            c.warn("three");
            assertThat(delays).as("one task, for the end of the interval").containsExactly(
                    Duration.ofSeconds(6).toNanos());
            clock.addAndGet(Duration.ofSeconds(6).toNanos());
            tasks.getFirst().run();
            assertThat(captured.lines()).hasSize(2);
            assertThat(captured.lines().get(0)).isEqualTo("WARN one");
            assertThat(captured.lines().get(1)).startsWith("WARN dev: 2 warnings and 0 other lines");
            log.flush();
            assertThat(captured.lines()).as("nothing left to summarise").hasSize(2);
        } finally {
            scheduler.shutdownNow();
        }
    }
}
