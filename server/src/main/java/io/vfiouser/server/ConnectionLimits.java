package io.vfiouser.server;

import java.time.Duration;
import java.util.Objects;

/**
 * What one client may hold of the server, so that no client can slow, starve or block another device in the same
 * process. Every limit is per connection unless it says otherwise; {@code docs/operations.md} lists them with their
 * defaults and what happens when a client reaches one.
 *
 * @param outboundHighWaterMark  bytes of replies queued for a client above which the server stops reading from it
 *                               (Netty's write-buffer high-water mark); reading resumes below
 *                               {@code outboundLowWaterMark}
 * @param outboundLowWaterMark   see {@code outboundHighWaterMark}
 * @param maxQueuedCommands      commands received and not yet handled above which the server stops reading from
 *                               the client (reading resumes at an eighth of it)
 * @param maxQueuedCommandBytes  bytes of commands received and not yet handled above which the server stops
 *                               reading from the client (reading resumes at an eighth of it)
 * @param maxHeldConnections     connections per device that may wait, unread, while the device's previous client
 *                               is still attached or being torn down; one more is closed at once
 * @param holdTimeout            how long such a connection may wait before it is closed
 * @param negotiationTimeout     how long a client may take to send VERSION after it connected before it is
 *                               disconnected (the device is free for the next one)
 * @param maxDmaMappings         DMA mappings one client may hold at once (announced as {@code max_dma_maps}); one
 *                               more is refused with ENOSPC
 * @param maxClientFds           fds one client may make the server hold at once (the fd of each DMA mapping, the
 *                               interrupt eventfds); a DMA_MAP or SET_IRQS that would hold more is refused with
 *                               EMFILE and its fds closed. Capped further at a {@value #PROCESS_FD_SHARE}th of the
 *                               process's fd limit ({@link #clientFdLimit(long)}), so that no single client can
 *                               drive the process to EMFILE whatever the configuration says
 * @param warningBurst           warnings a connection (and, summed over its connections, a device) may log before
 *                               further ones are counted instead of logged
 * @param warningInterval        how often a summary line reports the warnings counted instead of logged
 */
public record ConnectionLimits(int outboundHighWaterMark, int outboundLowWaterMark, int maxQueuedCommands,
                               long maxQueuedCommandBytes, int maxHeldConnections, Duration holdTimeout,
                               Duration negotiationTimeout, int maxDmaMappings, int maxClientFds,
                               int warningBurst, Duration warningInterval) {

    /**
     * 4 MiB of replies queued (2 MiB to resume), 1024 queued commands or 16 MiB of them, 4 held connections for up
     * to 30 s, 5 s to send VERSION, 1024 DMA mappings, 2048 fds, 5 warnings then one summary line a minute.
     */
    public static final ConnectionLimits DEFAULT = new ConnectionLimits(4 << 20, 2 << 20, 1024, 16L << 20, 4,
            Duration.ofSeconds(30), Duration.ofSeconds(5), 1024, 2048, 5, Duration.ofMinutes(1));

    /**
     * One client may hold at most this fraction (1/n) of the process's fd limit, however large {@code maxClientFds}
     * is: the rest stays for the listening sockets, other clients and the JVM.
     */
    public static final int PROCESS_FD_SHARE = 4;

    public ConnectionLimits {
        Objects.requireNonNull(holdTimeout, "holdTimeout");
        Objects.requireNonNull(negotiationTimeout, "negotiationTimeout");
        Objects.requireNonNull(warningInterval, "warningInterval");
        if (outboundLowWaterMark < 1 || outboundHighWaterMark < outboundLowWaterMark) {
            throw new IllegalArgumentException("need 1 <= outboundLowWaterMark <= outboundHighWaterMark: "
                    + outboundLowWaterMark + ", " + outboundHighWaterMark);
        }
        if (maxQueuedCommands < 8) {
            throw new IllegalArgumentException("maxQueuedCommands must be at least 8: " + maxQueuedCommands);
        }
        if (maxQueuedCommandBytes < 1 << 16) {
            throw new IllegalArgumentException("maxQueuedCommandBytes must be at least 64 KiB: "
                    + maxQueuedCommandBytes);
        }
        if (maxHeldConnections < 0) {
            throw new IllegalArgumentException("maxHeldConnections must not be negative: " + maxHeldConnections);
        }
        positive(holdTimeout, "holdTimeout");
        positive(negotiationTimeout, "negotiationTimeout");
        positive(warningInterval, "warningInterval");
        if (maxDmaMappings < 1 || maxDmaMappings > 65535) {
            throw new IllegalArgumentException("maxDmaMappings must be 1..65535: " + maxDmaMappings);
        }
        if (maxClientFds < 1) {
            throw new IllegalArgumentException("maxClientFds must be at least 1: " + maxClientFds);
        }
        if (warningBurst < 1) {
            throw new IllegalArgumentException("warningBurst must be at least 1: " + warningBurst);
        }
    }

    /**
     * The fds one client may hold in a process whose fd limit (soft {@code RLIMIT_NOFILE}) is
     * {@code processFdLimit}: {@code maxClientFds}, but at most a {@value #PROCESS_FD_SHARE}th of that limit (and at
     * least 1).
     */
    public int clientFdLimit(long processFdLimit) {
        return (int) Math.max(1, Math.min(maxClientFds, processFdLimit / PROCESS_FD_SHARE));
    }

    private static void positive(Duration d, String name) {
        if (d.isNegative() || d.isZero()) {
            throw new IllegalArgumentException(name + " must be positive: " + d);
        }
    }

    /** A builder starting from these limits. */
    public Builder toBuilder() {
        return new Builder(this);
    }

    public static Builder builder() {
        return new Builder(DEFAULT);
    }

    public static final class Builder {
        private int outboundHighWaterMark;
        private int outboundLowWaterMark;
        private int maxQueuedCommands;
        private long maxQueuedCommandBytes;
        private int maxHeldConnections;
        private Duration holdTimeout;
        private Duration negotiationTimeout;
        private int maxDmaMappings;
        private int maxClientFds;
        private int warningBurst;
        private Duration warningInterval;

        private Builder(ConnectionLimits from) {
            outboundHighWaterMark = from.outboundHighWaterMark;
            outboundLowWaterMark = from.outboundLowWaterMark;
            maxQueuedCommands = from.maxQueuedCommands;
            maxQueuedCommandBytes = from.maxQueuedCommandBytes;
            maxHeldConnections = from.maxHeldConnections;
            holdTimeout = from.holdTimeout;
            negotiationTimeout = from.negotiationTimeout;
            maxDmaMappings = from.maxDmaMappings;
            maxClientFds = from.maxClientFds;
            warningBurst = from.warningBurst;
            warningInterval = from.warningInterval;
        }

        /** Queued reply bytes: stop reading from the client above {@code high}, resume below {@code low}. */
        public Builder outboundWaterMarks(int low, int high) {
            outboundLowWaterMark = low;
            outboundHighWaterMark = high;
            return this;
        }

        public Builder maxQueuedCommands(int n) {
            maxQueuedCommands = n;
            return this;
        }

        public Builder maxQueuedCommandBytes(long n) {
            maxQueuedCommandBytes = n;
            return this;
        }

        public Builder maxHeldConnections(int n) {
            maxHeldConnections = n;
            return this;
        }

        public Builder holdTimeout(Duration d) {
            holdTimeout = d;
            return this;
        }

        public Builder negotiationTimeout(Duration d) {
            negotiationTimeout = d;
            return this;
        }

        public Builder maxDmaMappings(int n) {
            maxDmaMappings = n;
            return this;
        }

        public Builder maxClientFds(int n) {
            maxClientFds = n;
            return this;
        }

        /** {@code burst} warnings logged, then one summary line per {@code interval} with the count. */
        public Builder warnings(int burst, Duration interval) {
            warningBurst = burst;
            warningInterval = interval;
            return this;
        }

        public Builder warningBurst(int burst) {
            warningBurst = burst;
            return this;
        }

        public Builder warningInterval(Duration interval) {
            warningInterval = interval;
            return this;
        }

        public ConnectionLimits build() {
            return new ConnectionLimits(outboundHighWaterMark, outboundLowWaterMark, maxQueuedCommands,
                    maxQueuedCommandBytes, maxHeldConnections, holdTimeout, negotiationTimeout, maxDmaMappings,
                    maxClientFds, warningBurst, warningInterval);
        }
    }
}
