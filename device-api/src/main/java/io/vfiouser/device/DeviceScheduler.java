package io.vfiouser.device;

import java.time.Duration;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledFuture;

/**
 * Time and activity of a device's own, bound to the attached client ({@link DeviceContext#scheduler()}): a timer
 * for a device that does something without being asked (a periodic status update, a timeout, a completion that
 * comes later) without building a thread of its own.
 *
 * <p>Tasks run on the connection's event loop, one at a time, in the order they are due, like the device's
 * callbacks: they must be short and must not block (hand blocking work to an executor of the device's own). A task
 * may call everything of the {@link DeviceContext}. When the client leaves (or the device stops being served),
 * before the device is quiesced, every scheduled task is cancelled: none starts afterwards, and new tasks are
 * refused with {@link RejectedExecutionException}. A task that throws is logged on the device's logger; a periodic
 * one stops then.
 *
 * <p>Why bound to the client rather than to the device: what a task acts on (guest memory, interrupt eventfds) is
 * the client's and goes with it, so a task that outlived its client could only fail. A device with activity across
 * clients starts it again in {@link VfioUserDevice#attached}.
 */
public interface DeviceScheduler extends Executor {
    /** Runs {@code task} soon, after what the event loop is doing now. */
    @Override
    void execute(Runnable task);

    /** Runs {@code task} once, after {@code delay}. */
    ScheduledFuture<?> schedule(Runnable task, Duration delay);

    /** Runs {@code task} after {@code initialDelay}, then every {@code period} (from start to start). */
    ScheduledFuture<?> scheduleAtFixedRate(Runnable task, Duration initialDelay, Duration period);

    /** Runs {@code task} after {@code initialDelay}, then {@code delay} after each run ends. */
    ScheduledFuture<?> scheduleWithFixedDelay(Runnable task, Duration initialDelay, Duration delay);
}
