package io.vfiouser.server.connection;

import io.netty.channel.EventLoop;
import io.vfiouser.device.DeviceScheduler;
import java.time.Duration;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import org.apache.logging.log4j.Logger;

/**
 * The device's {@link DeviceScheduler} for one attached client: tasks on the connection's event loop (no thread
 * per device, and tasks never run at the same time as each other), each one tracked so that {@link #close()}, when
 * the client leaves, cancels them all. A task checks the closed flag before it runs, so one that was already queued
 * on the loop when the client left does not start either.
 */
final class ContextScheduler implements DeviceScheduler {
    private final EventLoop loop;
    private final Logger log;
    private final String name;
    private final Set<ScheduledFuture<?>> live = ConcurrentHashMap.newKeySet();
    private volatile boolean closed;

    ContextScheduler(EventLoop loop, Logger log, String name) {
        this.loop = loop;
        this.log = log;
        this.name = name;
    }

    @Override
    public void execute(Runnable task) {
        refuseIfClosed();
        loop.execute(() -> {
            if (!closed) {
                try {
                    task.run();
                } catch (RuntimeException | Error e) {
                    log.warn("{}: a scheduler task failed", name, e);
                }
            }
        });
    }

    @Override
    public ScheduledFuture<?> schedule(Runnable task, Duration delay) {
        refuseIfClosed();
        return track(loop.schedule(guarded(task), delay.toNanos(), TimeUnit.NANOSECONDS));
    }

    @Override
    public ScheduledFuture<?> scheduleAtFixedRate(Runnable task, Duration initialDelay, Duration period) {
        refuseIfClosed();
        return track(loop.scheduleAtFixedRate(guarded(task), initialDelay.toNanos(), period.toNanos(),
                TimeUnit.NANOSECONDS));
    }

    @Override
    public ScheduledFuture<?> scheduleWithFixedDelay(Runnable task, Duration initialDelay, Duration delay) {
        refuseIfClosed();
        return track(loop.scheduleWithFixedDelay(guarded(task), initialDelay.toNanos(), delay.toNanos(),
                TimeUnit.NANOSECONDS));
    }

    /** The client left: cancels every task; none starts from now on, and new ones are refused. */
    void close() {
        closed = true;
        for (ScheduledFuture<?> f : live) {
            f.cancel(false);
        }
        live.clear();
    }

    /** How many scheduled tasks are waiting or periodic (for tests). */
    int liveTasks() {
        return live.size();
    }

    private ScheduledFuture<?> track(io.netty.util.concurrent.ScheduledFuture<?> future) {
        live.add(future);
        future.addListener(f -> live.remove(future));
        if (closed) {
            // close() ran between the check and the add: it may have missed this one.
            future.cancel(false);
            live.remove(future);
        }
        return future;
    }

    /** Skips the task once closed; logs a failure and rethrows it, which ends a periodic task. */
    private Runnable guarded(Runnable task) {
        return () -> {
            if (closed) {
                return;
            }
            try {
                task.run();
            } catch (RuntimeException | Error e) {
                log.warn("{}: a scheduler task failed (a periodic one stops)", name, e);
                throw e;
            }
        };
    }

    private void refuseIfClosed() {
        if (closed) {
            throw new RejectedExecutionException(name + ": the client this scheduler belonged to has left");
        }
    }
}
