package io.vfiouser.benchmarks.load;

import io.netty.buffer.ByteBuf;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.epoll.EpollIoHandler;
import io.vfiouser.client.ClientOptions;
import io.vfiouser.client.VfioUserClient;
import io.vfiouser.codec.VfioUserCommand;
import io.vfiouser.codec.VfioUserMessage;
import io.vfiouser.codec.payload.RegionAccess;
import io.vfiouser.device.Access;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * A closed-loop vfio-user load client built on {@link VfioUserClient}: per connection it keeps {@code depth}
 * REGION_READ or REGION_WRITE commands of {@code len} bytes in flight; each reply (checked: no error bit, the
 * echoed offset/region/count, for reads exactly {@code len} data bytes) sends the next command. Reports ops/s,
 * MB/s (10^6 bytes) and latency percentiles (send handed to the client to reply completed, per command).
 *
 * <pre>
 * java --enable-native-access=ALL-UNNAMED -cp ... io.vfiouser.benchmarks.load.LoadTool \
 *     [-c CONNS] [-d DEPTH] [-o read|write] [-r REGION] [-O OFFSET] [-l LEN[K|M]] [-t SECS] [-w WARMUP_SECS]
 *     [-L LABEL] SOCKET             # SOCKET may contain %d (connection index)
 * </pre>
 *
 * <p>All connections share one epoll event loop (one thread), and the completions run on it; it is a tool for
 * checking our own client against our server, not the yardstick (that is {@code vfu-load}, a C client).
 */
public final class LoadTool {
    private final VfioUserClient client;
    private final Access access;
    private final int region;
    private final long offset;
    private final int len;
    private final ByteBuf payload;
    private volatile boolean measuring;
    private volatile boolean stopping;
    private long[] latencies = new long[1 << 16];
    private int n;
    private long ops;
    private long firstSend;
    private long lastReply;
    private volatile Throwable failure;
    private final CompletableFuture<Void> drained = new CompletableFuture<>();
    private int inFlight;

    private LoadTool(VfioUserClient client, Access access, int region, long offset, int len) {
        this.client = client;
        this.access = access;
        this.region = region;
        this.offset = offset;
        this.len = len;
        if (access == Access.WRITE) {
            payload = client.channel().alloc().directBuffer(len);
            payload.writeZero(len);
        } else {
            payload = null;
        }
    }

    private void start(int depth) {
        client.channel().eventLoop().execute(() -> {
            for (int i = 0; i < depth; i++) {
                issue();
            }
        });
    }

    /** Sends one command; runs on the client's event loop. */
    private void issue() {
        if (stopping || failure != null) {
            if (inFlight == 0) {
                drained.complete(null);
            }
            return;
        }
        inFlight++;
        long sent = System.nanoTime();
        boolean measured = measuring;
        if (measured && firstSend == 0) {
            firstSend = sent;
        }
        CompletableFuture<VfioUserMessage> reply = switch (access) {
            case READ -> client.send(VfioUserCommand.REGION_READ,
                    RegionAccess.inRegion(region).atOffset(offset).count(len));
            case WRITE -> client.send(VfioUserCommand.REGION_WRITE,
                    RegionAccess.inRegion(region).atOffset(offset).data(payload.retainedDuplicate()));
        };
        reply.whenComplete((r, e) -> {
            long now = System.nanoTime();
            inFlight--;
            try {
                if (e != null) {
                    fail(e);
                } else {
                    check(r);
                }
            } catch (RuntimeException ex) {
                fail(ex);
            } finally {
                if (r != null) {
                    r.release();
                }
            }
            if (measured && measuring) {
                if (n == latencies.length) {
                    latencies = Arrays.copyOf(latencies, n * 2);
                }
                latencies[n++] = now - sent;
                ops++;
                lastReply = now;
            }
            issue();
        });
    }

    private void check(VfioUserMessage r) {
        if (r.header().isError()) {
            throw new IllegalStateException("error reply " + r.header());
        }
        RegionAccess a = r.payload(RegionAccess.class);
        if (a == null || a.offset() != offset || a.region() != region || a.count() != len) {
            throw new IllegalStateException("reply does not match the request: " + a);
        }
        if (access == Access.READ && (a.data() == null || a.data().readableBytes() != len)) {
            throw new IllegalStateException("REGION_READ reply without " + len + " data bytes");
        }
    }

    private void fail(Throwable e) {
        if (failure == null) {
            failure = e;
        }
    }

    public static void main(String[] args) throws Exception {
        int conns = 1;
        int depth = 1;
        Access access = Access.READ;
        int region = 0;
        long offset = 0;
        int len = 4;
        double secs = 5;
        double warmup = 1;
        String label = "";
        String socket = null;
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            switch (a) {
                case "-c" -> conns = Integer.parseInt(args[++i]);
                case "-d" -> depth = Integer.parseInt(args[++i]);
                case "-o" -> {
                    String op = args[++i];
                    if (!op.equals("read") && !op.equals("write")) {
                        usage("-o takes read or write");
                    }
                    access = op.equals("write") ? Access.WRITE : Access.READ;
                }
                case "-r" -> region = Integer.parseInt(args[++i]);
                case "-O" -> offset = size(args[++i]);
                case "-l" -> len = (int) size(args[++i]);
                case "-t" -> secs = Double.parseDouble(args[++i]);
                case "-w" -> warmup = Double.parseDouble(args[++i]);
                case "-L" -> label = args[++i];
                default -> {
                    if (a.startsWith("-") || socket != null) {
                        usage("unexpected argument " + a);
                    }
                    socket = a;
                }
            }
        }
        if (socket == null || conns < 1 || depth < 1 || len < 0) {
            usage("need a SOCKET, -c >= 1, -d >= 1");
        }
        EventLoopGroup group = new MultiThreadIoEventLoopGroup(1, EpollIoHandler.newFactory());
        List<LoadTool> tools = new ArrayList<>();
        try {
            for (int c = 0; c < conns; c++) {
                String path = socket.contains("%d") ? String.format(socket, c) : socket;
                // connect() negotiates VERSION (ClientOptions.DEFAULT.negotiate() is true)
                VfioUserClient client = VfioUserClient.connect(group, Path.of(path), ClientOptions.DEFAULT);
                tools.add(new LoadTool(client, access, region, offset, len));
            }
            for (LoadTool t : tools) {
                t.start(depth);
            }
            Thread.sleep((long) (warmup * 1000));
            for (LoadTool t : tools) {
                t.measuring = true;
            }
            Thread.sleep((long) (secs * 1000));
            for (LoadTool t : tools) {
                t.measuring = false;
            }
            for (LoadTool t : tools) {
                t.stopping = true;
            }
            for (LoadTool t : tools) {
                t.drained.get(30, TimeUnit.SECONDS);
            }
            // Results are read after the event loop has finished with them (drained happens-before).
            report(tools, access, region, offset, len, conns, depth, label);
        } finally {
            for (LoadTool t : tools) {
                if (t.payload != null) {
                    t.payload.release();
                }
                t.client.close();
            }
            group.shutdownGracefully(0, 1, TimeUnit.SECONDS).syncUninterruptibly();
        }
    }

    private static void report(List<LoadTool> tools, Access access, int region, long offset, int len, int conns,
                               int depth, String label) {
        long ops = 0;
        long first = Long.MAX_VALUE;
        long last = Long.MIN_VALUE;
        int total = 0;
        for (LoadTool t : tools) {
            if (t.failure != null) {
                System.err.println("LoadTool: FATAL: " + t.failure);
                System.exit(2);
            }
            ops += t.ops;
            first = Math.min(first, t.firstSend);
            last = Math.max(last, t.lastReply);
            total += t.n;
        }
        long[] all = new long[total];
        int at = 0;
        for (LoadTool t : tools) {
            System.arraycopy(t.latencies, 0, all, at, t.n);
            at += t.n;
        }
        Arrays.sort(all);
        double secs = (last - first) / 1e9;
        double opsPerS = ops / secs;
        double mbPerS = opsPerS * len / 1e6;
        String op = access.name().toLowerCase(Locale.ROOT);
        System.out.println(String.format(Locale.ROOT,
                "RESULT tool=java op=%s region=%d offset=%d len=%d conns=%d depth=%d ops=%d secs=%.3f ops_per_s=%.0f "
                        + "mb_per_s=%.2f p50_us=%.2f p90_us=%.2f p99_us=%.2f p999_us=%.2f max_us=%.2f label=%s",
                op, region, offset, len, conns, depth, ops, secs, opsPerS, mbPerS, pct(all, 0.50), pct(all, 0.90),
                pct(all, 0.99), pct(all, 0.999), all.length == 0 ? 0 : all[all.length - 1] / 1e3, label));
        System.out.println(String.format(Locale.ROOT,
                "# java %s %d B region %d x%d conn depth %d: %.0f ops/s, %.2f MB/s, latency us p50 %.2f p99 %.2f "
                        + "p99.9 %.2f (%d ops in %.2f s)",
                op, len, region, conns, depth, opsPerS, mbPerS, pct(all, 0.50), pct(all, 0.99), pct(all, 0.999), ops,
                secs));
    }

    private static double pct(long[] sorted, double p) {
        if (sorted.length == 0) {
            return 0;
        }
        int i = (int) Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1);
        return sorted[Math.max(0, i)] / 1e3;
    }

    private static long size(String s) {
        String t = s.toUpperCase(Locale.ROOT);
        long mult = 1;
        if (t.endsWith("K")) {
            mult = 1 << 10;
            t = t.substring(0, t.length() - 1);
        } else if (t.endsWith("M")) {
            mult = 1 << 20;
            t = t.substring(0, t.length() - 1);
        }
        return Long.decode(t) * mult;
    }

    private static void usage(String why) {
        System.err.println("LoadTool: " + why);
        System.err.println("usage: LoadTool [-c CONNS] [-d DEPTH] [-o read|write] [-r REGION] [-O OFFSET] [-l LEN]"
                + " [-t SECS] [-w WARMUP] [-L LABEL] SOCKET");
        System.exit(2);
    }
}
