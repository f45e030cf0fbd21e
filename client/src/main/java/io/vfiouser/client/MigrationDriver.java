package io.vfiouser.client;

import io.netty.buffer.ByteBuf;
import io.vfiouser.codec.payload.DeviceFeature;
import io.vfiouser.codec.payload.DmaLoggingControl;
import io.vfiouser.codec.payload.MigDeviceState;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

/**
 * Moves a device from a source server to a destination server, as a VMM does in a live migration (VFIO migration
 * v2 over vfio-user): the client of the source device and the client of an identical destination device, each with
 * its own guest memory, mapped at the same DMA addresses (the destination set up like the source: DMA maps,
 * interrupt eventfds).
 *
 * <ol>
 * <li>Dirty-page logging starts on the source; the destination goes to RESUMING; all guest memory is copied.</li>
 * <li>With PRE_COPY: the source goes to PRE_COPY and, in up to {@link Options#preCopyRounds()} rounds while the
 * device and its workload run on, the driver copies the device's pre-copy data to the destination and the guest
 * pages the source's log reports dirty.</li>
 * <li>{@code stopGuest} runs (the VMM stops its vCPUs); downtime starts. The source goes to STOP_COPY; the rest of
 * its state is copied, then the pages dirtied since the last round (and all of guest memory if
 * {@link Options#copyAllWhenStopped()}: a VMM without dirty tracking of its own CPU writes).</li>
 * <li>Logging stops, the source goes to STOP, the destination through STOP to RUNNING; downtime ends.</li>
 * </ol>
 *
 * <p>Blocking: each step waits for its replies (at most {@link Options#timeoutSeconds()} each).
 */
public final class MigrationDriver {
    private static final Logger LOG = LogManager.getLogger(MigrationDriver.class);

    /** Guest memory on both sides: same DMA address and size. */
    public record MemoryPair(GuestMemory source, GuestMemory destination) {
        public MemoryPair {
            if (source.iova() != destination.iova() || source.size() != destination.size()) {
                throw new IllegalArgumentException(source + " and " + destination + " differ");
            }
        }
    }

    /**
     * @param pageSize           the dirty-logging page size
     * @param preCopyRounds      pre-copy rounds at most (with PRE_COPY support); a round without dirty pages and
     *                           pre-copy data ends pre-copy early
     * @param copyAllWhenStopped copy all guest memory once more while the source is stopped
     * @param timeoutSeconds     how long one step may take
     */
    public record Options(long pageSize, int preCopyRounds, boolean copyAllWhenStopped, long timeoutSeconds) {
        public static final Options DEFAULT = new Options(4096, 3, false, 30);

        public Options withCopyAllWhenStopped(boolean copyAll) {
            return new Options(pageSize, preCopyRounds, copyAll, timeoutSeconds);
        }

        public Options withPreCopyRounds(int rounds) {
            return new Options(pageSize, rounds, copyAllWhenStopped, timeoutSeconds);
        }
    }

    /**
     * What a migration moved and how long the device was stopped.
     *
     * @param preCopyBytes   device state bytes read in PRE_COPY
     * @param stopCopyBytes  device state bytes read in STOP_COPY
     * @param pagesCopied    dirty pages copied (all rounds, the final one included; not the full copies)
     * @param finalPages     dirty pages copied while stopped
     * @param rounds         pre-copy rounds run
     * @param downtimeNanos  from the source's STOP_COPY request to the destination's RUNNING reply, the sum of:
     * @param stopNanos      the source's way to STOP_COPY (its quiesce included)
     * @param stateNanos     reading the rest of the state from the source and writing it to the destination
     * @param memoryNanos    the final dirty-page copy (and the full copy, if asked for) and the end of logging
     * @param resumeNanos    the source to STOP, the destination through STOP to RUNNING (its load checks)
     */
    public record Report(long preCopyBytes, long stopCopyBytes, long pagesCopied, long finalPages, int rounds,
                         long downtimeNanos, long stopNanos, long stateNanos, long memoryNanos, long resumeNanos) {
        public long deviceBytes() {
            return preCopyBytes + stopCopyBytes;
        }
    }

    private final DeviceMigration source;
    private final DeviceMigration destination;
    private final List<MemoryPair> memory;
    private final Options options;
    private final int chunk;

    public MigrationDriver(VfioUserClient source, VfioUserClient destination, List<MemoryPair> memory,
            Options options) {
        this.source = new DeviceMigration(source);
        this.destination = new DeviceMigration(destination);
        this.memory = List.copyOf(memory);
        this.options = options;
        // The servers check MIG_DATA sizes against what each client announced.
        long limit = Math.min(source.capabilities().maxDataXferSize(), destination.capabilities().maxDataXferSize());
        this.chunk = (int) Math.min(limit, 1 << 20);
    }

    /**
     * Runs the migration; {@code stopGuest} runs just before the source stops (may be a no-op). If a step fails
     * before the destination runs, the source is sent back to RUNNING with logging off (as a VMM resumes the guest
     * on the source after a failed migration), as far as it still answers, and the failure is thrown.
     */
    public Report migrate(Runnable stopGuest) throws Exception {
        try {
            return run(stopGuest);
        } catch (Exception | Error e) {
            LOG.warn("migration failed, the source runs on: {}", e.toString());
            try {
                await(source.stopDirtyLogging());
                await(source.setState(MigDeviceState.RUNNING));
            } catch (Exception again) {
                e.addSuppressed(again);
            }
            throw e;
        }
    }

    private Report run(Runnable stopGuest) throws Exception {
        long flags = await(source.flags());
        if ((flags & DeviceFeature.MIGRATION_STOP_COPY) == 0) {
            throw new IllegalStateException("the source device does not offer STOP_COPY");
        }
        boolean preCopy = (flags & DeviceFeature.MIGRATION_PRE_COPY) != 0;
        List<DmaLoggingControl.Range> ranges = new ArrayList<>();
        for (MemoryPair p : memory) {
            ranges.add(new DmaLoggingControl.Range(p.source().iova(), p.source().size()));
        }
        await(source.startDirtyLogging(options.pageSize(), ranges));
        await(destination.setState(MigDeviceState.RESUMING));
        copyAll();
        long preCopyBytes = 0;
        long pages = 0;
        int rounds = 0;
        if (preCopy) {
            await(source.setState(MigDeviceState.PRE_COPY));
            for (int r = 0; r < options.preCopyRounds(); r++) {
                rounds++;
                long bytes = transfer(false);
                long dirty = copyDirty();
                preCopyBytes += bytes;
                pages += dirty;
                if (bytes == 0 && dirty == 0) {
                    break;
                }
            }
        }
        stopGuest.run();
        long stopped = System.nanoTime();
        await(source.setState(MigDeviceState.STOP_COPY));
        long t1 = System.nanoTime();
        long stopCopyBytes = transfer(true);
        long t2 = System.nanoTime();
        long finalPages = copyDirty();
        pages += finalPages;
        if (options.copyAllWhenStopped()) {
            copyAll();
        }
        await(source.stopDirtyLogging());
        long t3 = System.nanoTime();
        await(source.setState(MigDeviceState.STOP));
        await(destination.setState(MigDeviceState.RUNNING));
        long running = System.nanoTime();
        Report report = new Report(preCopyBytes, stopCopyBytes, pages, finalPages, rounds, running - stopped,
                t1 - stopped, t2 - t1, t3 - t2, running - t3);
        LOG.info("migrated: {}", report);
        return report;
    }

    /**
     * Copies migration data from the source to the destination until the source has no more for now (PRE_COPY:
     * a short read) or at all ({@code toEnd}, STOP_COPY: an empty read). Returns the bytes moved.
     */
    private long transfer(boolean toEnd) throws Exception {
        long total = 0;
        while (true) {
            ByteBuf data = await(source.read(chunk));
            int n = data.readableBytes();
            if (n == 0) {
                data.release();
                return total;
            }
            total += n;
            await(destination.write(data));
            if (n < chunk && !toEnd) {
                return total;
            }
        }
    }

    private void copyAll() {
        for (MemoryPair p : memory) {
            p.destination().segment().copyFrom(p.source().segment());
        }
    }

    /** Copies the pages the source reports dirty; returns how many. */
    private long copyDirty() throws Exception {
        long copied = 0;
        long page = options.pageSize();
        for (MemoryPair p : memory) {
            long[] words = await(source.dirtyReport(p.source().iova(), p.source().size(), page));
            MemorySegment from = p.source().segment();
            MemorySegment to = p.destination().segment();
            for (int w = 0; w < words.length; w++) {
                long bits = words[w];
                while (bits != 0) {
                    int b = Long.numberOfTrailingZeros(bits);
                    bits &= bits - 1;
                    long offset = ((long) w * 64 + b) * page;
                    long n = Math.min(page, from.byteSize() - offset);
                    MemorySegment.copy(from, offset, to, offset, n);
                    copied++;
                }
            }
        }
        return copied;
    }

    private <T> T await(CompletableFuture<T> f) throws Exception {
        return f.get(options.timeoutSeconds(), TimeUnit.SECONDS);
    }
}
