package io.vfiouser.it.qemu;

import static org.assertj.core.api.Assertions.assertThat;

import io.netty.util.ResourceLeakDetector;
import io.vfiouser.examples.nvme.DoorbellMode;
import io.vfiouser.examples.nvme.NvmeDevice;
import io.vfiouser.it.qemu.NvmeGuestScripts.Target;
import io.vfiouser.server.VfioUserServer;
import java.io.IOException;
import java.io.RandomAccessFile;
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
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A benchmark, not a test (tag {@code qemu-bench}, left out of the normal run): in one TCG guest with two CPUs, the
 * same commands against our NVMe example device (served in this JVM over vfio-user), once per doorbell mode
 * ({@code write}: register doorbells only; {@code shadow}: Doorbell Buffer Config offered, which the guest's driver
 * uses; {@code mmap}: the doorbell page mapped into the guest and watched by the controller), and against QEMU's built-in {@code nvme} device (in QEMU's process; it offers shadow doorbells too), each on
 * a raw file of the same size in the same folder, each round running every device in turn, all through the
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
        String vendor = String.format("%04x", NvmeDevice.VENDOR_ID);
        String device = String.format("%04x", NvmeDevice.DEVICE_ID);
        Map<Target, DoorbellMode> ours = new LinkedHashMap<>();
        for (DoorbellMode mode : DoorbellMode.values()) {
            Path disk = tmp.resolve(mode.optionName() + "-disk.img");
            ours.put(new Target(mode.optionName(), vendor, device, NvmeDevices.serial(disk)), mode);
        }
        Target qemu = new Target("qemu", "1b36", "0010");
        List<Target> targets = new ArrayList<>(ours.keySet());
        targets.add(qemu);
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
        Map<String, DoorbellCountingDevice> counting = new LinkedHashMap<>();
        List<NvmeDevice> devices = new ArrayList<>();
        try (VfioUserServer server = VfioUserServer.builder().build()) {
            for (Map.Entry<Target, DoorbellMode> o : ours.entrySet()) {
                String label = o.getKey().label();
                NvmeDevice nvme = NvmeDevices.open("nvme-" + label, tmp.resolve(label + "-disk.img"), SIZE,
                        o.getValue());
                devices.add(nvme);
                DoorbellCountingDevice c = new DoorbellCountingDevice(nvme);
                counting.put(label, c);
                server.serve(nvme.description(), c, guest.socket("nvme-" + label));
                guest.device(guest.socket("nvme-" + label));
            }
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
        } finally {
            devices.forEach(NvmeDevice::close);
        }
        String why = run.describe();
        assertThat(run.exitCode()).as(why).isZero();

        StringBuilder report = new StringBuilder(String.format(
                "NVMe in a TCG guest (-smp 2): dd %d MiB direct sequential, fio 4 KiB random read %d s;%n"
                        + "MB/s = 10^6 bytes/s; server CPU = this JVM less the test thread, from schedstat"
                        + " (waited = runnable, no CPU free); QEMU CPU = its utime+stime;%ndoorbells = REGION_WRITEs to the"
                        + " device's BAR0 doorbells (I/O SQ tails + I/O CQ heads); wakeups = times a thread was scheduled"
                        + " in; load average before: %s%n",
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
                    long[] db = s.doorbells().getOrDefault(t.label(), new long[3]);
                    report.append(String.format(
                            "round %d %-6s %-13s %9.1f %-4s %6.2f s | per %s: doorbells %.2f (%.2f + %.2f), server"
                                    + " CPU %.0f us (waited %.0f), QEMU CPU %.0f us | ioeventfd signals %d%n",
                            round, t.label(), phase.getKey(), figure, unit, seconds, per,
                            (double) db[0] / ios, (double) db[1] / ios, (double) db[2] / ios,
                            s.server().runNs() / 1e3 / ios, s.server().waitNs() / 1e3 / ios,
                            s.qemuCpuNs() / 1e3 / ios, s.ioEventFds()));
                    if (ours.containsKey(t)) {
                        if (measured) {
                            figures.computeIfAbsent(t.label() + " " + phase.getKey() + " doorbells",
                                    k -> new ArrayList<>()).add((double) db[0] / ios);
                        }
                        report.append("    server threads per ").append(per).append(": ")
                                .append(s.busiestThreads(ios)).append('\n');
                    }
                }
            }
        }
        report.append(ROUNDS > 1 ? "medians of rounds 2.." + ROUNDS + " (round 1 warms the JIT up):\n"
                : "round 1 only (a cold JIT):\n");
        for (Map.Entry<String, String> phase : NvmeGuestScripts.BENCH_PHASES) {
            // Each of our modes, QEMU's device, each mode against write and against QEMU, doorbell messages per I/O.
            double w = median(figures.get("write " + phase.getKey()));
            double q = median(figures.get("qemu " + phase.getKey()));
            StringBuilder line = new StringBuilder(String.format("  %-13s", phase.getKey()));
            StringBuilder ratios = new StringBuilder();
            StringBuilder doorbells = new StringBuilder(" | doorbells per I/O:");
            for (DoorbellMode mode : ours.values()) {
                String m = mode.optionName();
                double f = median(figures.get(m + " " + phase.getKey()));
                line.append(String.format(" %s %9.1f ", m, f));
                if (mode != DoorbellMode.WRITE) {
                    ratios.append(String.format(" %s/write %.2f", m, f / w));
                }
                ratios.append(String.format(" %s/qemu %.2f", m, f / q));
                doorbells.append(String.format(" %s %.2f", m, median(figures.get(m + " " + phase.getKey()
                        + " doorbells"))));
            }
            report.append(line).append(String.format(" qemu %9.1f ", q)).append(ratios).append(doorbells)
                    .append('\n');
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
    private record Sample(Sched server, long qemuCpuNs, Map<String, long[]> doorbells, long ioEventFds,
                          Map<String, Sched> threads) {
        static Sample now(long qemuPid, Map<String, DoorbellCountingDevice> counting) throws IOException {
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
            Map<String, long[]> doorbells = new TreeMap<>();
            long ioEventFds = 0;
            for (Map.Entry<String, DoorbellCountingDevice> c : counting.entrySet()) {
                DoorbellCountingDevice d = c.getValue();
                doorbells.put(c.getKey(), new long[] {d.doorbells.get(), d.ioSqDoorbells.get(),
                        d.ioCqDoorbells.get()});
                ioEventFds += d.ioEventFds.get();
            }
            return new Sample(server, qemuCpuNs, doorbells, ioEventFds, threads);
        }

        Sample minus(Sample o) {
            Map<String, Sched> diff = new TreeMap<>();
            threads.forEach((k, v) -> diff.put(k, v.minus(o.threads.getOrDefault(k, Sched.ZERO))));
            Map<String, long[]> db = new TreeMap<>();
            doorbells.forEach((k, v) -> {
                long[] before = o.doorbells.getOrDefault(k, new long[v.length]);
                long[] d = new long[v.length];
                for (int i = 0; i < v.length; i++) {
                    d[i] = v[i] - before[i];
                }
                db.put(k, d);
            });
            return new Sample(server.minus(o.server), qemuCpuNs - o.qemuCpuNs, db, ioEventFds - o.ioEventFds, diff);
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
}
