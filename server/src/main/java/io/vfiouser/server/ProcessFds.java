package io.vfiouser.server;

import com.sun.management.UnixOperatingSystemMXBean;
import java.lang.management.ManagementFactory;
import java.lang.management.OperatingSystemMXBean;

/**
 * The process's own fd limit ({@code RLIMIT_NOFILE}, soft), which bounds what the per-client fd budgets may add up
 * to: {@link ConnectionLimits#clientFdLimit(long)} caps one client at a share of it, whatever the configuration
 * says, so that no one client can bring the process to {@code EMFILE}.
 */
final class ProcessFds {
    private ProcessFds() {
    }

    /** The soft limit on open fds, or {@link Long#MAX_VALUE} when the JVM cannot tell. */
    static long softLimit() {
        OperatingSystemMXBean os = ManagementFactory.getOperatingSystemMXBean();
        if (os instanceof UnixOperatingSystemMXBean unix) {
            long max = unix.getMaxFileDescriptorCount();
            return max > 0 ? max : Long.MAX_VALUE;
        }
        return Long.MAX_VALUE;
    }
}
