package io.vfiouser.it.qemu;

import static org.assertj.core.api.Assertions.assertThat;

import io.netty.util.ResourceLeakDetector;
import io.vfiouser.device.DeviceContext;
import io.vfiouser.device.DmaRange;
import io.vfiouser.device.IoEventFd;
import io.vfiouser.device.IrqType;
import io.vfiouser.device.ResetReason;
import io.vfiouser.device.VfioUserDevice;
import io.vfiouser.examples.nvme.NvmeDevice;
import io.vfiouser.it.qemu.NvmeGuestScripts.Target;
import io.vfiouser.server.VfioUserServer;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A benchmark, not a test (tag {@code qemu-bench}, left out of the normal run): in one TCG guest with two CPUs, the
 * same commands against our NVMe example device (served in this JVM over vfio-user) and against QEMU's built-in
 * {@code nvme} device (in QEMU's process), each on a raw file of the same size in the same folder, both through the
 * host's page cache (our device reads and writes its file with an AsynchronousFileChannel; QEMU's drive is
 * {@code cache=writeback,aio=threads}, its default). Sequential 1 MiB direct reads and writes with {@code dd}, 4 KiB
 * random direct reads with fio at queue depths 1 and 16. Around each phase the host samples the scheduler's
 * accounting of this JVM's threads (less the test's own) and QEMU's CPU time, and counts the doorbell writes that
 * reached our device (REGION_WRITE on BAR0 from 0x1000; ioeventfd signals apart).
 *
 * <p>Netty's leak detection runs at its default level, as in the launcher, for the benchmark's duration: the tests'
 * PARANOID level (see {@code LeakDetection}) records a stack trace per buffer, which in our runs more than doubled the
 * event loop's CPU time per I/O. Run it with
 * {@code mvn -B verify -pl integration-tests -am -Dgroups=qemu-bench -Dvfu.excludedGroups= -Dtest=NvmeBenchmark -Dsurefire.failIfNoSpecifiedTests=false};
 * {@code -Dvfu.nvme.bench.rounds=5 -Dvfu.nvme.bench.mib=1024 -Dvfu.nvme.bench.seconds=5} are the defaults. The
 * figures are printed and kept in {@code target/qemu-runs/nvme-bench-*}.
 */
@Tag("qemu-bench")
class NvmeBenchmark {
    private static final int ROUNDS = Integer.getInteger("vfu.nvme.bench.rounds", 5);
    private static final int MIB = Integer.getInteger("vfu.nvme.bench.mib", 1024);
    private static final int SECONDS = Integer.getInteger("vfu.nvme.bench.seconds", 5);
    private static final long SIZE = (long) MIB << 20;

    @TempDir
    Path tmp;

    private ResourceLeakDetector.Level testLevel;

    @BeforeEach
    void productionLeakDetection() {
        testLevel = ResourceLeakDetector.getLevel();
        ResourceLeakDetector.setLevel(ResourceLeakDetector.Level.SIMPLE);
    }

    @AfterEach
    void testLeakDetection() {
        ResourceLeakDetector.setLevel(testLevel);
    }

    @Test
    void ourNvmeDeviceAgainstQemusOwn() throws Exception {
        Target ours = new Target("ours", String.format("%04x", NvmeDevice.VENDOR_ID),
                String.format("%04x", NvmeDevice.DEVICE_ID));
        Target qemu = new Target("qemu", "1b36", "0010");
        List<Target> targets = List.of(ours, qemu);
        QemuGuest guest = QemuGuest.create("nvme-bench").benchTools().memory(768)
                .timeout(java.time.Duration.ofMinutes(30));
        Path qemuDisk = tmp.resolve("qemu-disk.img");
        try (RandomAccessFile f = new RandomAccessFile(qemuDisk.toFile(), "rw")) {
            f.setLength(SIZE);
        }
        guest.qemuArgs("-drive", "file=" + qemuDisk + ",if=none,id=qnvme,format=raw,cache=writeback,aio=threads",
                "-device", "nvme,serial=QEMU-BENCH,drive=qnvme");
        String loadBefore = Files.readString(Path.of("/proc/loadavg")).trim();
        Map<String, Sample> samples = new LinkedHashMap<>();
        QemuGuest.Run run;
        try (NvmeDevice nvme = NvmeDevices.open("nvme", tmp.resolve("ours-disk.img"), SIZE);
             VfioUserServer server = VfioUserServer.builder().build()) {
            CountingDevice counting = new CountingDevice(nvme);
            server.serve(NvmeDevice.description("nvme"), counting, guest.socket("nvme"));
            guest.device(guest.socket("nvme"));
            try (QemuGuest.Booted booted = guest.start(NvmeGuestScripts.benchmark(targets, ROUNDS, MIB, SECONDS))) {
                long qemuPid = booted.process().pid();
                for (int round = 1; round <= ROUNDS; round++) {
                    for (Target t : targets) {
                        for (Map.Entry<String, String> phase : NvmeGuestScripts.BENCH_PHASES) {
                            String name = NvmeGuestScripts.phaseName(t, phase.getKey(), round);
                            booted.awaitMark("RESULT phase start " + name);
                            Sample before = Sample.now(qemuPid, counting);
                            booted.awaitMark("RESULT phase end " + name);
                            samples.put(name, Sample.now(qemuPid, counting).minus(before));
                        }
                    }
                }
                run = booted.awaitExit();
            }
        }
        String why = run.describe();
        assertThat(run.exitCode()).as(why).isZero();

        StringBuilder report = new StringBuilder(String.format(
                "NVMe in a TCG guest (-smp 2): dd %d MiB direct sequential, fio 4 KiB random read %d s;%n"
                        + "MB/s = 10^6 bytes/s; server CPU = this JVM less the test thread, from schedstat"
                        + " (waited = runnable, no CPU free); QEMU CPU = its utime+stime;%ndoorbells = REGION_WRITEs to our BAR0"
                        + " doorbells; wakeups = times a thread was scheduled in; load average before: %s%n",
                MIB, SECONDS, loadBefore));
        Map<String, List<Double>> figures = new LinkedHashMap<>();
        for (int round = 1; round <= ROUNDS; round++) {
            for (Target t : targets) {
                for (Map.Entry<String, String> phase : NvmeGuestScripts.BENCH_PHASES) {
                    String name = NvmeGuestScripts.phaseName(t, phase.getKey(), round);
                    boolean measured = round > 1 || ROUNDS == 1;
                    double seconds = seconds(run.result(name));
                    boolean fio = phase.getKey().startsWith("randread");
                    long ios; // NVMe commands for fio (4 KiB each), MiB for dd
                    double figure;
                    String unit;
                    if (fio) {
                        String[] terse = run.result(name + "-fio").split(";");
                        figure = Double.parseDouble(terse[7]);
                        ios = Long.parseLong(terse[5]) / 4;
                        unit = "IOPS";
                    } else {
                        figure = MIB * 1048576.0 / seconds / 1e6;
                        ios = MIB;
                        unit = "MB/s";
                    }
                    if (measured) {
                        figures.computeIfAbsent(t.label() + " " + phase.getKey(), k -> new ArrayList<>()).add(figure);
                    }
                    Sample s = samples.get(name);
                    String per = fio ? "4K read" : "MiB";
                    report.append(String.format(
                            "round %d %-4s %-13s %9.1f %-4s %6.2f s | per %s: doorbells %.2f, server CPU %.0f us"
                                    + " (waited %.0f), QEMU CPU %.0f us | ioeventfd signals %d%n",
                            round, t.label(), phase.getKey(), figure, unit, seconds, per,
                            (double) s.doorbells() / ios, s.server().runNs() / 1e3 / ios,
                            s.server().waitNs() / 1e3 / ios, s.qemuCpuNs() / 1e3 / ios, s.ioEventFds()));
                    if (t == ours) {
                        report.append("    server threads per ").append(per).append(": ")
                                .append(s.busiestThreads(ios)).append('\n');
                    }
                }
            }
        }
        report.append(ROUNDS > 1 ? "medians of rounds 2.." + ROUNDS + " (round 1 warms the JIT up):\n"
                : "round 1 only (a cold JIT):\n");
        for (Map.Entry<String, String> phase : NvmeGuestScripts.BENCH_PHASES) {
            double o = median(figures.get("ours " + phase.getKey()));
            double q = median(figures.get("qemu " + phase.getKey()));
            report.append(String.format("  %-13s ours %9.1f  qemu %9.1f  ratio %.2f%n", phase.getKey(), o, q, o / q));
        }
        System.out.print(report);
        Files.writeString(guest.dir().resolve("report.txt"), report);
    }

    private static double seconds(String uptimes) {
        assertThat(uptimes).as("phase uptimes").isNotNull();
        String[] t = uptimes.trim().split(" ");
        return Double.parseDouble(t[1]) - Double.parseDouble(t[0]);
    }

    private static double median(List<Double> values) {
        List<Double> sorted = values.stream().sorted().toList();
        int n = sorted.size();
        return n % 2 == 1 ? sorted.get(n / 2) : (sorted.get(n / 2 - 1) + sorted.get(n / 2)) / 2;
    }

    /**
     * CPU use and doorbell counts at one moment, or their difference over a phase, from the scheduler's per-thread
     * accounting ({@code /proc/PID/task/TID/schedstat}: time on a CPU, time runnable but waiting for one, and times
     * scheduled in, i.e. wake-ups). {@code threads} holds this JVM's threads by their kernel name with digits replaced
     * by '#' (so a pool adds up; JIT compiler and GC threads included); the server is all of them but the test's own
     * thread ("main"), which only watches the marker file. QEMU's CPU time is its process's utime + stime (which,
     * unlike the sum over live threads, keeps the time of its I/O worker threads that have ended), in 10 ms ticks.
     */
    private record Sample(Sched server, long qemuCpuNs, long doorbells, long ioEventFds, Map<String, Sched> threads) {
        static Sample now(long qemuPid, CountingDevice counting) throws IOException {
            Map<String, Sched> threads = new TreeMap<>();
            Sched server = Sched.ZERO;
            for (Map.Entry<String, Sched> t : Sched.ofThreads(Path.of("/proc/self/task")).entrySet()) {
                if (!t.getKey().equals("main")) {
                    threads.merge(t.getKey(), t.getValue(), Sched::plus);
                    server = server.plus(t.getValue());
                }
            }
            String stat = Files.readString(Path.of("/proc/" + qemuPid + "/stat"));
            String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
            long qemuCpuNs = (Long.parseLong(f[11]) + Long.parseLong(f[12])) * 10_000_000L;
            return new Sample(server, qemuCpuNs, counting.doorbells.get(), counting.ioEventFds.get(), threads);
        }

        Sample minus(Sample o) {
            Map<String, Sched> diff = new TreeMap<>();
            threads.forEach((k, v) -> diff.put(k, v.minus(o.threads.getOrDefault(k, Sched.ZERO))));
            return new Sample(server.minus(o.server), qemuCpuNs - o.qemuCpuNs, doorbells - o.doorbells,
                    ioEventFds - o.ioEventFds, diff);
        }

        /** The thread groups that ran at least 3 % of the server's CPU time, largest first, per I/O. */
        String busiestThreads(long ios) {
            return threads.entrySet().stream().filter(e -> e.getValue().runNs() * 33 >= server.runNs())
                    .sorted(Comparator.comparingLong((Map.Entry<String, Sched> e) -> e.getValue().runNs()).reversed())
                    .map(e -> String.format("%s %.0f us/%.1f wakeups", e.getKey(), e.getValue().runNs() / 1e3 / ios,
                            (double) e.getValue().slices() / ios))
                    .collect(Collectors.joining(", "));
        }
    }

    /** Scheduler accounting of threads: ns on a CPU, ns runnable but waiting for a CPU, times scheduled in. */
    private record Sched(long runNs, long waitNs, long slices) {
        static final Sched ZERO = new Sched(0, 0, 0);

        Sched plus(Sched o) {
            return new Sched(runNs + o.runNs, waitNs + o.waitNs, slices + o.slices);
        }

        Sched minus(Sched o) {
            return new Sched(runNs - o.runNs, waitNs - o.waitNs, slices - o.slices);
        }

        /** The threads under a {@code /proc/PID/task} folder by kernel name, digits replaced by '#'. */
        static Map<String, Sched> ofThreads(Path taskDir) throws IOException {
            Map<String, Sched> threads = new TreeMap<>();
            try (DirectoryStream<Path> tasks = Files.newDirectoryStream(taskDir)) {
                for (Path task : tasks) {
                    try {
                        String name = Files.readString(task.resolve("comm")).trim().replaceAll("[0-9]+", "#");
                        String[] f = Files.readString(task.resolve("schedstat")).trim().split(" ");
                        threads.merge(name, new Sched(Long.parseLong(f[0]), Long.parseLong(f[1]),
                                Long.parseLong(f[2])), Sched::plus);
                    } catch (NoSuchFileException gone) {
                        // The thread ended between the listing and the read.
                    }
                }
            }
            return threads;
        }
    }

    /** Our device, with a count of the doorbell writes that reach it (BAR0 from 0x1000) and of ioeventfd signals. */
    private static final class CountingDevice implements VfioUserDevice {
        private final VfioUserDevice device;
        final AtomicLong doorbells = new AtomicLong();
        final AtomicLong ioEventFds = new AtomicLong();

        CountingDevice(VfioUserDevice device) {
            this.device = device;
        }

        @Override
        public CompletableFuture<Void> regionRead(int region, long offset, ByteBuffer dst) {
            return device.regionRead(region, offset, dst);
        }

        @Override
        public CompletableFuture<Void> regionWrite(int region, long offset, ByteBuffer src) {
            if (region == NvmeDevice.REGISTER_BAR && offset >= 0x1000) {
                doorbells.incrementAndGet();
            }
            return device.regionWrite(region, offset, src);
        }

        @Override
        public void attached(DeviceContext context) {
            device.attached(context);
        }

        @Override
        public void detached() {
            device.detached();
        }

        @Override
        public CompletableFuture<Void> reset(ResetReason reason) {
            return device.reset(reason);
        }

        @Override
        public CompletableFuture<Void> quiesce() {
            return device.quiesce();
        }

        @Override
        public void dmaMapped(DmaRange range) {
            device.dmaMapped(range);
        }

        @Override
        public void dmaUnmapped(DmaRange range) {
            device.dmaUnmapped(range);
        }

        @Override
        public void irqMaskChanged(IrqType type, int start, int count, boolean masked) {
            device.irqMaskChanged(type, start, count, masked);
        }

        @Override
        public void ioEventFdSignalled(IoEventFd ioEventFd, long count) {
            ioEventFds.addAndGet(count);
            device.ioEventFdSignalled(ioEventFd, count);
        }

        @Override
        public void configWritten(int offset, int length) {
            device.configWritten(offset, length);
        }
    }
}
