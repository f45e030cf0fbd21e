package io.vfiouser.server;

import java.time.Duration;
import java.util.Objects;

/**
 * What one client may hold of the server, so that no client can slow, starve or block another device in the same
 * process. Every limit is per connection unless it says otherwise; {@code docs/operations.md} lists them with their
 * defaults and what happens when a client reaches one.
 *
 * <p><b>Inbound and outbound budgets.</b> The connection takes one decision whether to read from a client, from all
 * of the conditions below together, so that none resumes reading while another still wants it stopped. While the
 * replies queued for a client are over {@code outboundHighWaterMark} (the channel is not writable), the connection
 * also handles none of the client's queued commands, and the region fast path declines: a client that does not
 * read its replies holds at most about that many bytes of them, plus one reply (up to
 * {@code max_data_xfer_size}), plus what one read of the socket brought (up to one message). The commands of
 * that read wait in the queue, which is what {@code maxQueuedCommands} and {@code maxQueuedCommandBytes} bound
 * (beyond that read). Everything queued is released when the client goes.
 *
 * @param outboundHighWaterMark  bytes of replies queued for a client above which the server stops handling and
 *                               reading its commands (Netty's write-buffer high-water mark); it resumes below
 *                               {@code outboundLowWaterMark}
 * @param outboundLowWaterMark   see {@code outboundHighWaterMark}
 * @param maxQueuedCommands      commands received and not yet handled above which the server stops reading from
 *                               the client (reading resumes when commands, their bytes and their fds are all back
 *                               to an eighth of their budgets). Queued commands holding more than half of
 *                               {@code maxClientFds} fds stop reading too (each message may carry
 *                               {@code max_msg_fds}). While a device waits for the client's reply to a server
 *                               DMA request, a full queue stops reading only at twice these budgets, so the reply
 *                               can still be read (server DMA requests have no timeout)
 * @param maxQueuedCommandBytes  bytes ({@code msg_size}) of commands received and not yet handled above which the
 *                               server stops reading from the client (see {@code maxQueuedCommands})
 * @param maxHeldConnections     connections per device that may wait, unread, while the device's previous client
 *                               is still attached or being torn down (they attach in arrival order); one more is
 *                               closed at once with a log line; 0 turns every such connection away
 * @param holdTimeout            how long such a connection may wait before it is closed (with a log line)
 * @param negotiationTimeout     how long a client may take to complete VERSION from the moment it has the device
 *                               (a held connection's time starts when its turn comes) before it is disconnected
 *                               with a log line, so that the device is free for the next one
 * @param maxDmaMappings         DMA mappings one client may hold at once (announced as {@code max_dma_maps}); one
 *                               more is refused with ENOSPC
 * @param maxClientFds           fds one client may make the server hold at once (the fd of each DMA mapping, the
 *                               interrupt eventfds); a DMA_MAP or SET_IRQS that would hold more is refused with
 *                               EMFILE and its fds closed. Capped further at a {@value #PROCESS_FD_SHARE}th of the
 *                               process's fd limit ({@link #clientFdLimit(long)}), so that no single client can
 *                               drive the process to EMFILE whatever the configuration says
 * @param warningBurst           warnings a connection may log over its life, and a device, summed over its
 *                               connections, per {@code warningInterval}; further ones are counted instead of
 *                               logged. Informational lines per connection (attached, negotiated, reset,
 *                               detached) are limited to four times this per device and interval, the rest go to
 *                               DEBUG (see {@code RateLimitedLog})
 * @param warningInterval        how often a summary line reports the lines counted instead of logged
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
