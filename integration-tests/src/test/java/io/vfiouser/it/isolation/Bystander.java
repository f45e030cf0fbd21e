package io.vfiouser.it.isolation;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.epoll.EpollIoHandler;
import io.vfiouser.client.ClientOptions;
import io.vfiouser.client.VfioUserClient;
import io.vfiouser.codec.VfioUserCommand;
import io.vfiouser.codec.VfioUserMessage;
import io.vfiouser.codec.payload.RegionAccess;
import io.vfiouser.examples.nulldev.NullDevice;
import io.vfiouser.server.HostedDevice;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A well-behaved client of the bystander device, checked all the time on a thread (and a client event loop) of its
 * own: it writes a random value to the null device's SCRATCH register and reads it back, over and over, and every
 * {@value #RECONNECT_EVERY} round trips it disconnects, waits until the server has let go of it, and connects again,
 * so that a new client's VERSION exchange is checked too.
 *
 * <p><b>The bound.</b> Every connect (with its VERSION exchange) and every round trip must complete within
 * {@link #BOUND}, 2 s. A healthy round trip takes tens of microseconds and a connect a few milliseconds, so even a
 * loaded 2-core CI machine with a GC pause stays far below it; a client that blocks the shared event loop, or drives
 * the process out of memory or fds, makes the bystander miss it for as long as the abuse lasts, and every test keeps
 * its abuse up for longer than the bound. A request that misses the bound is an error, whether its reply comes later
 * or never.
 */
public final class Bystander implements AutoCloseable {
    public static final Duration BOUND = Duration.ofSeconds(2);
    static final int RECONNECT_EVERY = 200;

    private final Path socket;
    private final HostedDevice device;
    private final EventLoopGroup loop = new MultiThreadIoEventLoopGroup(1, EpollIoHandler.newFactory());
    private final List<String> errors = new CopyOnWriteArrayList<>();
    private final AtomicLong roundTrips = new AtomicLong();
    private final AtomicLong connects = new AtomicLong();
    private volatile long maxNanos;
    private volatile boolean stop;
    private final Thread thread;

    Bystander(Path socket, HostedDevice device) {
        this.socket = socket;
        this.device = device;
        this.thread = new Thread(this::run, "bystander");
        this.thread.setDaemon(true);
    }

    void start() {
        thread.start();
    }

    private void run() {
        long bound = BOUND.toNanos();
        while (!stop) {
            VfioUserClient client;
            long t0 = System.nanoTime();
            try {
                client = VfioUserClient.connect(loop, socket, ClientOptions.DEFAULT.withoutNegotiation());
            } catch (Exception e) {
                errors.add("connect failed: " + e);
                awaitFree();
                continue;
            }
            try {
                try {
                    client.negotiate().get(bound, TimeUnit.NANOSECONDS);
                } catch (Exception e) {
                    errors.add("VERSION failed: " + e);
                    continue;
                }
                note(System.nanoTime() - t0, "connect");
                connects.incrementAndGet();
                for (int i = 0; i < RECONNECT_EVERY && !stop; i++) {
                    roundTrip(client, bound);
                }
            } finally {
                client.close();
                awaitFree();
            }
        }
    }

    private void roundTrip(VfioUserClient client, long bound) {
        long value = ThreadLocalRandom.current().nextLong();
        ByteBuf data = Unpooled.buffer(8).writeLongLE(value);
        long t0 = System.nanoTime();
        try {
            VfioUserMessage w = client.send(VfioUserCommand.REGION_WRITE,
                    RegionAccess.inRegion(0).atOffset(NullDevice.SCRATCH).data(data)).get(bound, TimeUnit.NANOSECONDS);
            try {
                if (w.header().isError()) {
                    errors.add("REGION_WRITE failed with errno " + w.header().error());
                    return;
                }
            } finally {
                w.release();
            }
            VfioUserMessage r = client.send(VfioUserCommand.REGION_READ,
                    RegionAccess.inRegion(0).atOffset(NullDevice.SCRATCH).count(8))
                    .get(bound, TimeUnit.NANOSECONDS);
            try {
                if (r.header().isError()) {
                    errors.add("REGION_READ failed with errno " + r.header().error());
                    return;
                }
                long got = r.payload(RegionAccess.class).data().getLongLE(0);
                if (got != value) {
                    errors.add("read back " + Long.toHexString(got) + " after writing " + Long.toHexString(value));
                    return;
                }
            } finally {
                r.release();
            }
        } catch (Exception e) {
            errors.add("round trip failed: " + e);
            return;
        }
        note(System.nanoTime() - t0, "round trip");
        roundTrips.incrementAndGet();
    }

    private void note(long nanos, String what) {
        if (nanos > maxNanos) {
            maxNanos = nanos;
        }
        if (nanos > BOUND.toNanos()) {
            errors.add(what + " took " + nanos / 1_000_000 + " ms");
        }
    }

    /** Waits until the server noticed the disconnect, so that the next connect never has to be held. */
    private void awaitFree() {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(Conditions.DEADLINE_S);
        while (device.hasClient() && !stop && System.nanoTime() < deadline) {
            Thread.onSpinWait();
            Thread.yield();
        }
    }

    /** Round trips completed so far. */
    public long roundTrips() {
        return roundTrips.get();
    }

    /**
     * Waits until {@code n} more round trips and one more connect have completed than when it was called (or an
     * error was seen): proof that the bystander was served while whatever the caller is doing went on.
     */
    public void awaitProgress(long n) throws InterruptedException {
        long trips = roundTrips.get() + n;
        long conns = connects.get() + 1;
        Conditions.await("the bystander made " + n + " more round trips and connected once more (errors so far: "
                + errors + ")", () -> (roundTrips.get() >= trips && connects.get() >= conns) || !errors.isEmpty());
    }

    /** The errors seen so far (empty when healthy). */
    public List<String> errors() {
        return List.copyOf(errors);
    }

    /** The slowest connect or round trip so far. */
    public Duration slowest() {
        return Duration.ofNanos(maxNanos);
    }

    /** Fails unless every connect and round trip so far succeeded within {@link #BOUND}. */
    public void assertHealthy() {
        List<String> seen = errors();
        if (!seen.isEmpty()) {
            throw new AssertionError("the bystander device was hurt: " + seen.subList(0, Math.min(10, seen.size()))
                    + (seen.size() > 10 ? " and " + (seen.size() - 10) + " more" : ""));
        }
    }

    @Override
    public void close() throws InterruptedException {
        stop = true;
        thread.join(TimeUnit.SECONDS.toMillis(Conditions.DEADLINE_S));
        loop.shutdownGracefully(0, 1, TimeUnit.SECONDS).sync();
    }
}
