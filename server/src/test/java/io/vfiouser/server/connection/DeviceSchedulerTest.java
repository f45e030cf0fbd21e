package io.vfiouser.server.connection;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vfiouser.device.DeviceScheduler;
import java.time.Duration;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/**
 * {@code DeviceContext.scheduler()}: tasks on the connection's event loop, at the times asked (the channel's clock
 * moves only when the test moves it), and none after the client left.
 */
class DeviceSchedulerTest {
    private final ScriptedDevice device = new ScriptedDevice();

    @Test
    void tasksRunOnTheEventLoopWhenDue() throws Exception {
        try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.basic(), device)) {
            DeviceScheduler scheduler = device.context.scheduler();
            AtomicInteger ticks = new AtomicInteger();
            AtomicInteger offLoop = new AtomicInteger();
            scheduler.scheduleAtFixedRate(() -> {
                ticks.incrementAndGet();
                if (!c.channel.eventLoop().inEventLoop()) {
                    offLoop.incrementAndGet();
                }
            }, Duration.ofMillis(10), Duration.ofMillis(10));
            AtomicInteger once = new AtomicInteger();
            scheduler.schedule(once::incrementAndGet, Duration.ofMillis(25));
            scheduler.execute(once::incrementAndGet);

            c.runTasks();
            assertThat(once).hasValue(1);
            assertThat(ticks).hasValue(0);
            c.advanceTime(Duration.ofMillis(35));
            assertThat(ticks).hasValue(3);
            assertThat(once).hasValue(2);
            assertThat(offLoop).hasValue(0);
        }
    }

    @Test
    void theClientLeavingCancelsEveryTaskAndRefusesNewOnes() throws Exception {
        ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.basic(), device);
        try {
            DeviceScheduler scheduler = device.context.scheduler();
            AtomicInteger ticks = new AtomicInteger();
            ScheduledFuture<?> periodic = scheduler.scheduleWithFixedDelay(ticks::incrementAndGet,
                    Duration.ofMillis(10), Duration.ofMillis(10));
            ScheduledFuture<?> later = scheduler.schedule(ticks::incrementAndGet, Duration.ofSeconds(5));
            c.advanceTime(Duration.ofMillis(10));
            assertThat(ticks).hasValue(1);

            c.leave();
            c.advanceTime(Duration.ofSeconds(10));
            assertThat(ticks).as("nothing runs after the client left").hasValue(1);
            assertThat(periodic.isCancelled()).isTrue();
            assertThat(later.isCancelled()).isTrue();
            assertThatThrownBy(() -> scheduler.schedule(ticks::incrementAndGet, Duration.ZERO))
                    .isInstanceOf(RejectedExecutionException.class);
            assertThatThrownBy(() -> scheduler.execute(ticks::incrementAndGet))
                    .isInstanceOf(RejectedExecutionException.class);
        } finally {
            c.close();
        }
    }

    @Test
    void aFailingPeriodicTaskStopsAndOthersGoOn() throws Exception {
        try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.basic(), device)) {
            DeviceScheduler scheduler = device.context.scheduler();
            AtomicInteger failing = new AtomicInteger();
            AtomicInteger healthy = new AtomicInteger();
            scheduler.scheduleAtFixedRate(() -> {
                failing.incrementAndGet();
                throw new IllegalStateException("a device bug");
            }, Duration.ofMillis(10), Duration.ofMillis(10));
            scheduler.scheduleAtFixedRate(healthy::incrementAndGet, Duration.ofMillis(10), Duration.ofMillis(10));
            c.advanceTime(Duration.ofMillis(50));
            assertThat(failing).hasValue(1);
            assertThat(healthy).hasValue(5);
        }
    }
}
