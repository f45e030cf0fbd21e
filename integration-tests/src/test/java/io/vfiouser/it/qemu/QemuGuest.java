package io.vfiouser.it.qemu;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.zip.GZIPOutputStream;

/**
 * One boot of a real Linux guest under the real QEMU of {@link QemuEnvironment}, with vfio-user devices.
 *
 * <p>Usage: {@code QemuGuest guest = QemuGuest.create("name")}; serve devices on {@link #socket(String)} paths;
 * {@link #device(Path, String...)} for each; {@link #run(String)} with a shell script. The script runs in the guest
 * after {@code /vfu/lib.sh} (see {@code integration-tests/qemu/vfu-lib.sh}: {@code vfu_result}, {@code vfu_capture},
 * {@code vfu_modprobe}, ...) and reports through marker lines on the second serial port; the guest powers off when
 * it ends and {@link #run} returns the parsed {@link Run}. QEMU is killed on every path out of {@link #run} (and at
 * JVM exit, should the JVM be stopped while it runs).
 *
 * <p>Everything of a boot (console log, marker log, QEMU's own output, the sockets) is in {@link #dir()}, under
 * {@code target/qemu-runs/} of the module, kept for inspection.
 */
final class QemuGuest {

    /** Generous for TCG on 2 shared cores: a boot with one device takes about 8 s on an idle machine. */
    static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(240);
    private static final int DEFAULT_MEMORY_MB = 512;
    private static final Set<Process> LIVE = ConcurrentHashMap.newKeySet();
    private static final Pattern KERNEL_PROBLEM =
            Pattern.compile("BUG:|Oops|WARNING:|Call Trace|Kernel panic|general protection fault|segfault");

    static {
        Runtime.getRuntime().addShutdownHook(new Thread(() -> LIVE.forEach(Process::destroyForcibly)));
    }

    private final String name;
    private final Path dir;
    private final QemuEnvironment env;
    private final List<String> deviceJson = new ArrayList<>();
    private Duration timeout = DEFAULT_TIMEOUT;
    private boolean reboots;
    private boolean qmp;
    private boolean benchTools;
    private int memoryMb = DEFAULT_MEMORY_MB;
    private final List<String> extraArgs = new ArrayList<>();

    private QemuGuest(String name, Path dir, QemuEnvironment env) {
        this.name = name;
        this.dir = dir;
        this.env = env;
    }

    /** A guest named {@code name} (letters, digits, '-'), with a fresh run directory. Skips or fails the calling test
     * as {@link QemuEnvironment#get()} does when there is no environment. */
    static QemuGuest create(String name) throws IOException {
        if (!name.matches("[A-Za-z0-9-]+")) {
            throw new IllegalArgumentException("bad guest name " + name);
        }
        QemuEnvironment env = QemuEnvironment.get();
        Path base = Path.of(System.getProperty("user.dir")).toAbsolutePath().resolve("target/qemu-runs");
        // Unix socket paths are limited to 107 bytes: fall back to /tmp when the checkout is deep.
        if (base.toString().length() > 60) {
            base = Path.of(System.getProperty("java.io.tmpdir"), "vfu-qemu-runs");
        }
        Files.createDirectories(base);
        return new QemuGuest(name, Files.createTempDirectory(base, name + "-"), env);
    }

    Path dir() {
        return dir;
    }

    QemuEnvironment environment() {
        return env;
    }

    /** A path in the run directory for a device socket named {@code name}. */
    Path socket(String socketName) {
        return dir.resolve(socketName + ".sock");
    }

    /**
     * Adds a {@code vfio-user-pci} device connected to {@code socket}, on a PCI Express root port of its own (as a
     * card in a slot: QEMU would make a PCI Express device on the root bus a root-complex integrated endpoint);
     * {@code properties} are extra JSON members, e.g. {@code "\"x-no-posted-writes\":true"}.
     */
    QemuGuest device(Path socket, String... properties) {
        int n = deviceJson.size() / 2;
        deviceJson.add("{\"driver\":\"pcie-root-port\",\"id\":\"rp" + n + "\",\"chassis\":" + (n + 1)
                + ",\"slot\":" + (n + 1) + "}");
        StringBuilder json = new StringBuilder("{\"driver\":\"vfio-user-pci\",\"id\":\"vfu" + n
                + "\",\"bus\":\"rp" + n + "\",\"socket\":{\"type\":\"unix\",\"path\":\"" + socket.toAbsolutePath()
                + "\"}");
        for (String p : properties) {
            json.append(',').append(p);
        }
        deviceJson.add(json.append('}').toString());
        return this;
    }

    QemuGuest timeout(Duration t) {
        this.timeout = t;
        return this;
    }

    /** The JSON of the {@code n}th {@code vfio-user-pci} device (id {@code vfuN}), as given to {@code -device}; also
     * what QMP's {@code device_add} takes. */
    String deviceJson(int n) {
        return deviceJson.get(2 * n + 1);
    }

    /** Without {@code -no-reboot}: a guest reboot resets the machine (and its devices) and boots the same kernel and
     * initramfs again, instead of ending QEMU. */
    QemuGuest reboots() {
        this.reboots = true;
        return this;
    }

    /** With the benchmark tools (fio and its libraries, see build-env.sh) in the guest: a larger initramfs, which
     * every boot unpacks. */
    QemuGuest benchTools() {
        this.benchTools = true;
        return this;
    }

    /** The guest's RAM (512 MiB unless set); it also holds the initramfs' files. */
    QemuGuest memory(int mb) {
        this.memoryMb = mb;
        return this;
    }

    /** With a QMP socket in the run directory, for {@link Booted#qmp()}. */
    QemuGuest withQmp() {
        this.qmp = true;
        return this;
    }

    /** An extra executable file in the guest's root file system, e.g. {@code "vfu/bar-read"}. */
    QemuGuest file(String path, byte[] data) {
        extraFiles.put(path, data.clone());
        return this;
    }

    private final Map<String, byte[]> extraFiles = new LinkedHashMap<>();

    /** Extra QEMU arguments (e.g. {@code -device edu}, or {@code -trace vfio_*} while investigating). */
    QemuGuest qemuArgs(String... args) {
        extraArgs.addAll(List.of(args));
        return this;
    }

    Path qmpSocket() {
        return dir.resolve("qmp.sock");
    }

    /** Boots the guest with {@code script} as its test and waits for it to power off. */
    Run run(String script) throws IOException, InterruptedException {
        try (Booted booted = start(script)) {
            return booted.awaitExit();
        }
    }

    /**
     * Boots the guest with {@code script} as its test and returns at once; the caller interacts with the running
     * guest through the {@link Booted} and must close it, which kills QEMU if it still runs.
     */
    Booted start(String script) throws IOException {
        Path initrd = dir.resolve("initramfs.cpio.gz");
        try (OutputStream out = Files.newOutputStream(initrd)) {
            Files.copy(env.baseInitrd(), out);
            if (benchTools) {
                Files.copy(env.benchInitrd(), out);
            }
            // A second, concatenated archive: the kernel unpacks both into the same root file system.
            Map<String, byte[]> files = new LinkedHashMap<>();
            files.put("vfu/name", (name + "\n").getBytes(StandardCharsets.UTF_8));
            files.put("vfu/test.sh", script.getBytes(StandardCharsets.UTF_8));
            files.putAll(extraFiles);
            out.write(gzip(cpio(files)));
        }
        Path console = dir.resolve("console.log");
        Path marks = dir.resolve("marks.log");
        Path qemuLog = dir.resolve("qemu.log");
        List<String> command = new ArrayList<>(List.of(env.qemu().toString(),
                "-machine", "q35,accel=tcg,memory-backend=mem",
                "-smp", "2",
                "-m", memoryMb + "M",
                "-object", "memory-backend-memfd,id=mem,size=" + memoryMb + "M,share=on",
                "-nodefaults", "-no-user-config", "-display", "none",
                "-kernel", env.kernel().toString(),
                "-initrd", initrd.toString(),
                "-append", "console=ttyS0 panic=-1 loglevel=7",
                "-serial", "file:" + console,
                "-serial", "file:" + marks));
        if (!reboots) {
            command.add("-no-reboot");
        }
        if (qmp) {
            command.add("-qmp");
            command.add("unix:" + qmpSocket() + ",server=on,wait=off");
        }
        for (String json : deviceJson) {
            command.add("-device");
            command.add(json);
        }
        command.addAll(extraArgs);
        Files.writeString(dir.resolve("command.txt"), String.join("\n", command) + "\n");
        long start = System.nanoTime();
        Process qemu = new ProcessBuilder(command)
                .redirectErrorStream(true)
                .redirectOutput(qemuLog.toFile())
                .redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()))
                .start();
        LIVE.add(qemu);
        return new Booted(qemu, start, console, marks, qemuLog);
    }

    /**
     * A running QEMU of this guest. {@link #close()} kills QEMU (SIGKILL) if it still runs, on every path.
     */
    final class Booted implements AutoCloseable {
        private final Process qemu;
        private final long start;
        private final long deadline;
        private final Path console;
        private final Path marks;
        private final Path qemuLog;
        private Qmp qmpClient;

        private Booted(Process qemu, long start, Path console, Path marks, Path qemuLog) {
            this.qemu = qemu;
            this.start = start;
            this.deadline = start + timeout.toNanos();
            this.console = console;
            this.marks = marks;
            this.qemuLog = qemuLog;
        }

        Process process() {
            return qemu;
        }

        /** The time left until this boot's timeout. */
        Duration remaining() {
            return Duration.ofNanos(Math.max(0, deadline - System.nanoTime()));
        }

        /**
         * Waits until the marker stream holds {@code count} lines with {@code @@VFU-<mark>} (e.g. {@code "RESULT
         * phase ready"}); fails if QEMU exits first or the boot's timeout passes. The stream is the file QEMU writes
         * the second serial port to, read again as it grows.
         */
        void awaitMark(String mark, int count) throws IOException, InterruptedException {
            awaitMark(mark, count, null, 0);
        }

        /**
         * As {@link #awaitMark(String, int)}, but fails at once when the stream holds {@code forbiddenCount} lines
         * with {@code @@VFU-<forbidden>}: e.g. a guest that should reboot once and is seen to begin a third time.
         */
        void awaitMark(String mark, int count, String forbidden, int forbiddenCount)
                throws IOException, InterruptedException {
            String wanted = "@@VFU-" + mark;
            String unwanted = forbidden == null ? null : "@@VFU-" + forbidden;
            while (true) {
                List<String> seen = read(marks).lines().toList();
                if (seen.stream().filter(l -> l.contains(wanted)).count() >= count) {
                    return;
                }
                if (unwanted != null && seen.stream().filter(l -> l.contains(unwanted)).count() >= forbiddenCount) {
                    throw new AssertionError("marker '" + unwanted + "' x" + forbiddenCount + " before '" + wanted
                            + "' x" + count + describeNow());
                }
                if (!qemu.isAlive()) {
                    throw new AssertionError("QEMU exited (" + qemu.exitValue() + ") before marker '" + wanted
                            + "' x" + count + describeNow());
                }
                if (System.nanoTime() > deadline) {
                    throw new AssertionError("no marker '" + wanted + "' x" + count + " within " + timeout
                            + describeNow());
                }
                // QEMU appends to the file as the guest writes the serial port: wait for it to grow or QEMU to end.
                qemu.waitFor(20, TimeUnit.MILLISECONDS);
            }
        }

        void awaitMark(String mark) throws IOException, InterruptedException {
            awaitMark(mark, 1);
        }

        /** The QMP client of this boot (the guest must have been made {@link #withQmp()}), connected on first use. */
        synchronized Qmp qmp() throws IOException, InterruptedException {
            if (qmpClient == null) {
                if (!qmp) {
                    throw new IllegalStateException("guest " + name + " has no QMP socket");
                }
                qmpClient = Qmp.connect(qmpSocket(), qemu, remaining());
            }
            return qmpClient;
        }

        /** Kills QEMU with SIGKILL and waits for it to be gone. */
        void kill() throws InterruptedException {
            qemu.destroyForcibly();
            if (!qemu.waitFor(30, TimeUnit.SECONDS)) {
                throw new AssertionError("QEMU " + qemu.pid() + " still runs 30 s after SIGKILL");
            }
        }

        /** Waits (within the boot's timeout) for QEMU to end, kills it if it does not, and parses the boot. */
        Run awaitExit() throws IOException, InterruptedException {
            // -no-reboot and the guest's poweroff -f (or a kernel panic, with panic=-1) end QEMU.
            boolean exited = qemu.waitFor(remaining().toMillis(), TimeUnit.MILLISECONDS);
            close();
            return result(exited);
        }

        /** The boot as parsed so far (or at its end); {@code qemuExit} is null if QEMU did not exit by itself. */
        Run result(boolean exited) throws IOException {
            Duration took = Duration.ofNanos(System.nanoTime() - start);
            Run run = Run.parse(name, dir, read(console), read(marks), read(qemuLog),
                    exited && !qemu.isAlive() ? qemu.exitValue() : null, took);
            System.err.printf("QEMU guest %s: %s in %.1f s (%s)%n", name,
                    run.finished() ? "test script exited " + run.exitCode() : "NO END MARKER",
                    took.toMillis() / 1000.0, dir);
            return run;
        }

        private String describeNow() throws IOException {
            return result(false).describe();
        }

        @Override
        public void close() throws InterruptedException {
            try {
                if (qmpClient != null) {
                    qmpClient.close();
                }
            } finally {
                if (qemu.isAlive()) {
                    qemu.destroyForcibly();
                    qemu.waitFor(30, TimeUnit.SECONDS);
                }
                LIVE.remove(qemu);
            }
        }
    }

    private static String read(Path p) throws IOException {
        return Files.exists(p) ? Files.readString(p, StandardCharsets.ISO_8859_1).replace("\r", "") : "";
    }

    /** The result of one boot. */
    record Run(String name, Path dir, String console, String qemuLog, Integer qemuExit, Duration took,
               Integer exitCode, Map<String, String> results, Map<String, List<String>> lines) {

        static Run parse(String name, Path dir, String console, String marks, String qemuLog, Integer qemuExit,
                         Duration took) {
            Integer exitCode = null;
            Map<String, String> results = new LinkedHashMap<>();
            Map<String, List<String>> lines = new LinkedHashMap<>();
            for (String line : marks.split("\n")) {
                int at = line.indexOf("@@VFU-");
                if (at < 0) {
                    continue;
                }
                String mark = line.substring(at + 6);
                String[] kindRest = mark.split(" ", 2);
                String rest = kindRest.length > 1 ? kindRest[1] : "";
                String[] keyValue = rest.split(" ", 2);
                String value = keyValue.length > 1 ? keyValue[1] : "";
                switch (kindRest[0]) {
                    case "END" -> exitCode = Integer.valueOf(rest.trim());
                    case "RESULT" -> results.put(keyValue[0], value);
                    case "LINE" -> lines.computeIfAbsent(keyValue[0], k -> new ArrayList<>()).add(value);
                    default -> { }
                }
            }
            return new Run(name, dir, console, qemuLog, qemuExit, took, exitCode, Collections.unmodifiableMap(results),
                    Collections.unmodifiableMap(lines));
        }

        /** Whether the test script ran to its end (the END marker was seen). */
        boolean finished() {
            return exitCode != null;
        }

        String result(String key) {
            return results.get(key);
        }

        List<String> lines(String key) {
            return lines.getOrDefault(key, List.of());
        }

        /** Lines of the console that show a kernel problem (oops, BUG, WARNING, panic, segfault). */
        List<String> kernelProblems() {
            return console.lines().filter(l -> KERNEL_PROBLEM.matcher(l).find()).collect(Collectors.toList());
        }

        /** For assertion messages: where the logs are, QEMU's own output and the end of the console. */
        String describe() {
            List<String> tail = console.lines().toList();
            tail = tail.subList(Math.max(0, tail.size() - 80), tail.size());
            return "\n--- guest " + name + " (" + dir + "), QEMU exit " + qemuExit + ", took " + took.toMillis()
                    + " ms; QEMU output:\n" + qemuLog + "\n--- console (last 80 lines):\n" + String.join("\n", tail)
                    + "\n--- results: " + results + "\n";
        }
    }

    // --- The initramfs piece: a cpio archive in the "newc" format the kernel unpacks. ---

    static byte[] cpio(Map<String, byte[]> files) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        int ino = 1_000_000;
        for (Map.Entry<String, byte[]> f : files.entrySet()) {
            cpioEntry(out, f.getKey(), 0100755, ino++, f.getValue());
        }
        cpioEntry(out, "TRAILER!!!", 0, 0, new byte[0]);
        return out.toByteArray();
    }

    private static void cpioEntry(ByteArrayOutputStream out, String path, int mode, int ino, byte[] data)
            throws IOException {
        byte[] name = (path + "\0").getBytes(StandardCharsets.UTF_8);
        long[] fields = {ino, mode, 0, 0, 1, 0, data.length, 0, 0, 0, 0, name.length, 0};
        StringBuilder header = new StringBuilder("070701");
        for (long v : fields) {
            header.append(String.format("%08x", v));
        }
        out.write(header.toString().getBytes(StandardCharsets.US_ASCII));
        out.write(name);
        pad(out);
        out.write(data);
        pad(out);
    }

    private static void pad(ByteArrayOutputStream out) {
        while (out.size() % 4 != 0) {
            out.write(0);
        }
    }

    private static byte[] gzip(byte[] data) throws IOException {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (OutputStream gz = new GZIPOutputStream(bytes)) {
            gz.write(data);
        }
        return bytes.toByteArray();
    }
}
