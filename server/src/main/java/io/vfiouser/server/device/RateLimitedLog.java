package io.vfiouser.server.device;

import io.vfiouser.server.ConnectionLimits;
import java.time.Duration;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;
import org.apache.logging.log4j.Logger;

/**
 * The log lines that one device's clients can cause, kept within a budget so that no client can fill the disk or
 * drown other devices' lines: a client that fails every command, or connects, misbehaves and leaves in a loop,
 * costs a few lines and then one summary line per interval, however fast it goes.
 *
 * <p>One instance per device; each connection takes a {@link Connection}. A warning is logged when both budgets
 * allow it: the connection's ({@link ConnectionLimits#warningBurst()} warnings over its whole life) and the
 * device's ({@code warningBurst} warnings per {@link ConnectionLimits#warningInterval()}, summed over all its
 * connections, so that a client reconnecting in a loop does not get a fresh allowance each time). Otherwise it is
 * counted. Informational lines per connection (attached, negotiated, detached) are real events, one line each,
 * but a connect loop would make thousands: the device logs {@value #INFO_FACTOR} times {@code warningBurst} of them
 * per interval, and beyond that they go to DEBUG and are counted too. When an interval in which lines were counted
 * ends, one line says how many (at WARN if warnings were among them); it comes from a task scheduled on the
 * server's event loops, or with the next line if that comes first, or when the device stops.
 *
 * <p>Thread-safe: device callbacks log from their own threads. The lock is held only to count, never while logging.
 */
public final class RateLimitedLog {
    /** Informational lines per interval, in multiples of the warning burst. */
    public static final int INFO_FACTOR = 4;

    private final Logger log;
    private final String device;
    private final int burst;
    private final long intervalNanos;
    private final ScheduledExecutorService scheduler;
    private final LongSupplier nanoClock;

    private long windowStart;
    private int warningsInWindow;
    private int infosInWindow;
    private long suppressedWarnings;
    private long suppressedInfos;
    private boolean summaryScheduled;

    /**
     * @param scheduler where the summary at the end of an interval runs; {@code null} to write it only with the
     *                  next line or {@link #flush()}
     * @param nanoClock {@link System#nanoTime()} but in tests
     */
    public RateLimitedLog(Logger log, String device, int burst, Duration interval, ScheduledExecutorService scheduler,
                   LongSupplier nanoClock) {
        this.log = log;
        this.device = device;
        this.burst = burst;
        this.intervalNanos = interval.toNanos();
        this.scheduler = scheduler;
        this.nanoClock = nanoClock;
        this.windowStart = nanoClock.getAsLong();
    }

    public RateLimitedLog(Logger log, String device, ConnectionLimits limits, ScheduledExecutorService scheduler) {
        this(log, device, limits.warningBurst(), limits.warningInterval(), scheduler, System::nanoTime);
    }

    /** A new connection's budget. */
    public Connection connection() {
        return new Connection();
    }

    /** A warning not tied to a connection that is being served (a refused connection, say). */
    public void warn(String format, Object... args) {
        if (admitWarning(null)) {
            log.warn(format, args);
        }
    }

    /** Writes the summary of what was counted so far, if anything was (when the device stops). */
    public void flush() {
        String summary;
        boolean warn;
        synchronized (this) {
            warn = suppressedWarnings > 0;
            summary = takeSummary(nanoClock.getAsLong());
        }
        write(summary, warn);
    }

    private boolean admitWarning(Connection c) {
        String summary;
        boolean admitted;
        boolean warn;
        synchronized (this) {
            long now = nanoClock.getAsLong();
            warn = suppressedWarnings > 0;
            summary = now - windowStart >= intervalNanos ? takeSummary(now) : null;
            admitted = warningsInWindow < burst && (c == null || c.warnings < burst);
            if (admitted) {
                warningsInWindow++;
                if (c != null) {
                    c.warnings++;
                }
            } else {
                suppressedWarnings++;
                scheduleSummary();
            }
        }
        write(summary, warn);
        return admitted;
    }

    private boolean admitInfo() {
        String summary;
        boolean admitted;
        boolean warn;
        synchronized (this) {
            long now = nanoClock.getAsLong();
            warn = suppressedWarnings > 0;
            summary = now - windowStart >= intervalNanos ? takeSummary(now) : null;
            admitted = infosInWindow < INFO_FACTOR * burst;
            if (admitted) {
                infosInWindow++;
            } else {
                suppressedInfos++;
                scheduleSummary();
            }
        }
        write(summary, warn);
        return admitted;
    }

    /** Starts a new interval at {@code now}; returns the summary line of the one that ended, or null. */
    private String takeSummary(long now) {
        String summary = null;
        if (suppressedWarnings > 0 || suppressedInfos > 0) {
            summary = device + ": " + suppressedWarnings + " warnings and " + suppressedInfos
                    + " other lines caused by clients were not logged in the last "
                    + Duration.ofNanos(now - windowStart).toSeconds() + " s (at most " + burst
                    + " warnings per connection, and per device every " + Duration.ofNanos(intervalNanos).toSeconds()
                    + " s)";
        }
        windowStart = now;
        warningsInWindow = 0;
        infosInWindow = 0;
        suppressedWarnings = 0;
        suppressedInfos = 0;
        return summary;
    }

    private void scheduleSummary() {
        if (summaryScheduled || scheduler == null) {
            return;
        }
        long delay = Math.max(0, windowStart + intervalNanos - nanoClock.getAsLong());
        try {
            scheduler.schedule(this::summaryDue, delay, TimeUnit.NANOSECONDS);
            summaryScheduled = true;
        } catch (RejectedExecutionException e) {
            // The server is stopping: flush() writes the summary.
        }
    }

    private void summaryDue() {
        String summary;
        boolean warn;
        synchronized (this) {
            summaryScheduled = false;
            long now = nanoClock.getAsLong();
            if (now - windowStart < intervalNanos) {
                scheduleSummary();
                return;
            }
            warn = suppressedWarnings > 0;
            summary = takeSummary(now);
        }
        write(summary, warn);
    }

    private void write(String summary, boolean warn) {
        if (summary == null) {
            return;
        }
        if (warn) {
            log.warn(summary);
        } else {
            log.info(summary);
        }
    }

    /** One connection's budget. */
    public final class Connection {
        /** Warnings logged for this connection; guarded by the device's lock. */
        private int warnings;

        private Connection() {
        }

        /** Logs a warning this connection caused, if the budgets allow. */
        public void warn(String format, Object... args) {
            if (admitWarning(this)) {
                log.warn(format, args);
            }
        }

        /** Logs an informational line about this connection, or at DEBUG once the device's budget is spent. */
        public void info(String format, Object... args) {
            if (admitInfo()) {
                log.info(format, args);
            } else {
                log.debug(format, args);
            }
        }
    }
}
