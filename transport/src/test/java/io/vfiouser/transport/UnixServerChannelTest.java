package io.vfiouser.transport;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.unix.DomainSocketAddress;
import io.vfiouser.transport.linux.Errno;
import io.vfiouser.transport.linux.ErrnoException;
import io.vfiouser.transport.linux.Linux;
import io.vfiouser.transport.testing.FdCount;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The listening socket: how its file comes and goes (issue 11, defect 7). */
class UnixServerChannelTest {
    private static final long TIMEOUT_S = 20;
    private static final int ROUNDS = 100;
    private static EventLoopGroup group;

    @TempDir
    Path dir;
    private long fdsBefore;
    private final List<Channel> channels = new CopyOnWriteArrayList<>();
    private final BlockingQueue<UnixChannel> accepted = new LinkedBlockingQueue<>();

    @BeforeAll
    static void startLoops() {
        group = new MultiThreadIoEventLoopGroup(1, EpollIoHandler.newFactory());
    }

    @AfterAll
    static void stopLoops() throws Exception {
        group.shutdownGracefully(0, 1, TimeUnit.SECONDS).sync();
    }

    @BeforeEach
    void countFds() {
        fdsBefore = FdCount.now();
    }

    @AfterEach
    void closeAndCheckFds() throws Exception {
        for (Channel ch : channels) {
            ch.close().sync();
        }
        for (UnixChannel ch : accepted) {
            ch.close().sync();
        }
        FdCount.awaitAtMost(fdsBefore);
    }

    private Channel bind(Path path, UnixServerChannel.FilePreparation preparation) throws Exception {
        Channel server = new ServerBootstrap().group(group)
                .channelFactory(() -> new UnixServerChannel(0600, preparation))
                .childHandler(new ChannelInitializer<UnixChannel>() {
                    @Override
                    protected void initChannel(UnixChannel ch) {
                        accepted.add(ch);
                    }
                })
                .bind(new DomainSocketAddress(path.toString())).sync().channel();
        channels.add(server);
        return server;
    }

    private Channel bind(Path path) throws Exception {
        return bind(path, file -> { });
    }

    /** One connect attempt on a fresh socket: 0 when connected, else the errno ({@code EAGAIN}: backlog full). */
    private static int tryConnect(String path) throws ErrnoException {
        int fd = Linux.socketUnix();
        try {
            return Linux.connect(fd, path) ? 0 : Errno.EAGAIN;
        } catch (ErrnoException e) {
            return e.errno();
        } finally {
            Linux.close(fd);
        }
    }

    @Test
    void aClientRacingTheBindFindsNoFileOrAListeningSocketNeverARefusal() throws Exception {
        Path path = dir.resolve("race.sock");
        AtomicBoolean stop = new AtomicBoolean();
        AtomicLong connected = new AtomicLong();
        AtomicLong absent = new AtomicLong();
        List<String> wrong = new CopyOnWriteArrayList<>();
        Thread racer = new Thread(() -> {
            try {
                while (!stop.get()) {
                    int r = tryConnect(path.toString());
                    if (r == 0 || r == Errno.EAGAIN) {
                        connected.incrementAndGet();
                    } else if (r == Errno.ENOENT) {
                        absent.incrementAndGet();
                    } else {
                        wrong.add(Errno.name(r));
                    }
                }
            } catch (Throwable t) {
                wrong.add(t.toString());
            }
        }, "racer");
        racer.start();
        try {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(TIMEOUT_S);
            for (int round = 0; round < ROUNDS && wrong.isEmpty(); round++) {
                // The racer is hammering the path when the file appears, and again when it goes.
                long before = absent.get();
                while (absent.get() < before + 2 && wrong.isEmpty()) {
                    assertThat(System.nanoTime()).as("the racer runs").isLessThan(deadline);
                    Thread.yield();
                }
                Channel server = bind(path);
                long seen = connected.get();
                while (connected.get() == seen && wrong.isEmpty()) {
                    assertThat(System.nanoTime()).as("the racer connects").isLessThan(deadline);
                    Thread.yield();
                }
                server.close().sync();
                channels.remove(server);
                UnixChannel ch;
                while ((ch = accepted.poll()) != null) {
                    ch.close().sync();
                }
            }
        } finally {
            stop.set(true);
            racer.join();
        }
        assertThat(wrong).as("connects that were neither served nor found no file").isEmpty();
        assertThat(connected.get()).isGreaterThanOrEqualTo(ROUNDS);
        assertThat(racer.isAlive()).isFalse();
    }

    @Test
    void theFileAppearsOnlyOnceListeningWithItsPreparationDone() throws Exception {
        Path path = dir.resolve("prepared.sock");
        List<String> seen = new CopyOnWriteArrayList<>();
        bind(path, temporary -> {
            seen.add("final exists: " + Files.exists(path));
            seen.add("same directory: " + temporary.getParent().equals(dir));
            seen.add("temporary connect: " + Errno.name(tryConnect(temporary.toString())));
        });
        assertThat(seen).containsExactly("final exists: false", "same directory: true",
                "temporary connect: errno 0");
        assertThat(tryConnect(path.toString())).isZero();
        try (var files = Files.list(dir)) {
            assertThat(files.map(p -> p.getFileName().toString()).toList())
                    .as("no temporary name is left").containsExactly("prepared.sock");
        }
    }

    @Test
    void aTakenPathFailsTheBindWithEaddrinuseAndIsLeftAlone() throws Exception {
        Path path = dir.resolve("taken.sock");
        bind(path);
        // A live server's socket: not replaced, still served.
        assertThatThrownBy(() -> bind(path)).isInstanceOfSatisfying(ErrnoException.class,
                e -> assertThat(e.errno()).isEqualTo(Errno.EADDRINUSE));
        assertThat(tryConnect(path.toString())).isZero();
        assertThat(accepted.poll(TIMEOUT_S, TimeUnit.SECONDS)).isNotNull();
        // Any other file: not replaced either.
        Path file = dir.resolve("file");
        Files.writeString(file, "mine");
        assertThatThrownBy(() -> bind(file)).isInstanceOfSatisfying(ErrnoException.class,
                e -> assertThat(e.errno()).isEqualTo(Errno.EADDRINUSE));
        assertThat(Files.readString(file)).isEqualTo("mine");
        try (var files = Files.list(dir)) {
            assertThat(files.map(p -> p.getFileName().toString()).toList())
                    .containsExactlyInAnyOrder("taken.sock", "file");
        }
    }

    @Test
    void aPathOfTheLongestLengthIsBound() throws Exception {
        // 107 bytes in all, the most sun_path holds: the temporary name must fit too.
        Path deep = dir;
        while (deep.toString().length() < 80) {
            deep = deep.resolve("d");
        }
        Files.createDirectories(deep);
        String base = "s".repeat(107 - deep.toString().length() - 1);
        Path path = deep.resolve(base);
        assertThat(path.toString()).hasSize(107);
        Channel server = bind(path);
        assertThat(tryConnect(path.toString())).isZero();
        server.close().sync();
        assertThat(path).doesNotExist();
        try (var files = Files.list(deep)) {
            assertThat(files.toList()).isEmpty();
        }
        // A one-letter name at the limit: no room for a hidden temporary name, only for another letter.
        Path full = Files.createDirectory(dir.resolve("e".repeat(105 - dir.toString().length() - 1)));
        Path oneChar = full.resolve("x");
        assertThat(oneChar.toString()).hasSize(107);
        bind(oneChar);
        assertThat(tryConnect(oneChar.toString())).isZero();
    }

    @Test
    void withNoFdLeftAcceptPausesLogsOneLineAndRecovers() throws Throwable {
        Path path = dir.resolve("emfile.sock");
        UnixServerChannel server = (UnixServerChannel) bind(path);
        List<org.apache.logging.log4j.core.LogEvent> lines = new CopyOnWriteArrayList<>();
        String logger = UnixServerChannel.class.getName();
        var context = (org.apache.logging.log4j.core.LoggerContext) org.apache.logging.log4j.LogManager
                .getContext(false);
        var capture = new org.apache.logging.log4j.core.appender.AbstractAppender("capture", null, null, true,
                org.apache.logging.log4j.core.config.Property.EMPTY_ARRAY) {
            @Override
            public void append(org.apache.logging.log4j.core.LogEvent event) {
                lines.add(event.toImmutable());
            }
        };
        capture.start();
        var loggerConfig = new org.apache.logging.log4j.core.config.LoggerConfig(logger,
                org.apache.logging.log4j.Level.INFO, true);
        loggerConfig.addAppender(capture, org.apache.logging.log4j.Level.INFO, null);
        context.getConfiguration().addLogger(logger, loggerConfig);
        context.updateLoggers();
        int client = Linux.socketUnix();
        List<Integer> fillers = new java.util.ArrayList<>();
        long[] limit = FdLimit.get();
        try {
            // Every fd number below the (lowered) soft limit taken: the server's accept4 gets EMFILE.
            FdLimit.setSoft(FdLimit.highestOpen() + 8, limit[1]);
            try {
                while (true) {
                    fillers.add(Linux.dup(client));
                }
            } catch (ErrnoException e) {
                assertThat(e.errno()).isEqualTo(Errno.EMFILE);
            }
            assertThat(Linux.connect(client, path.toString())).isTrue();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(TIMEOUT_S);
            while (server.acceptFailures() == 0 && System.nanoTime() < deadline) {
                Thread.sleep(1);
            }
            assertThat(server.acceptFailures()).as("accept4 failed").isPositive();
            // Half a second of the shortage: a retry every pause at most, not a spinning event loop.
            long from = server.acceptFailures();
            long windowNanos = TimeUnit.MILLISECONDS.toNanos(500);
            long t0 = System.nanoTime();
            while (System.nanoTime() - t0 < windowNanos) {
                Thread.sleep(10);
            }
            long retries = server.acceptFailures() - from;
            assertThat(retries).as("accept retries in 500 ms").isLessThanOrEqualTo(
                    500 / UnixServerChannel.ACCEPT_PAUSE_MS + 2);
            assertThat(accepted).isEmpty();
        } finally {
            for (int f : fillers) {
                Linux.close(f);
            }
            FdLimit.setSoft(limit[0], limit[1]);
        }
        try {
            // The fds are back: the waiting connection is accepted.
            assertThat(accepted.poll(TIMEOUT_S, TimeUnit.SECONDS)).as("accepted after the shortage").isNotNull();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(TIMEOUT_S);
            while (lines.stream().noneMatch(e -> e.getMessage().getFormattedMessage().contains("again"))
                    && System.nanoTime() < deadline) {
                Thread.sleep(1);
            }
            List<String> text = lines.stream().map(e -> e.getLevel() + " " + e.getMessage().getFormattedMessage()
                    + (e.getThrown() == null ? "" : " with " + e.getThrown())).toList();
            assertThat(text).as("one line for the shortage, one for the recovery, no stack trace").containsExactly(
                    "WARN " + path + ": cannot accept connections: accept4 failed with EMFILE (no fd left); "
                            + "retrying every " + UnixServerChannel.ACCEPT_PAUSE_MS + " ms",
                    "INFO " + path + ": accepting connections again");
        } finally {
            Linux.close(client);
            context.getConfiguration().removeLogger(logger);
            context.updateLoggers();
            capture.stop();
        }
    }

    /** The process's fd limit ({@code RLIMIT_NOFILE}) through {@code getrlimit(2)}/{@code setrlimit(2)}. */
    private static final class FdLimit {
        private static final int RLIMIT_NOFILE = 7;
        private static final java.lang.foreign.Linker LINKER = java.lang.foreign.Linker.nativeLinker();
        private static final java.lang.invoke.MethodHandle GET = handle("getrlimit");
        private static final java.lang.invoke.MethodHandle SET = handle("setrlimit");

        private static java.lang.invoke.MethodHandle handle(String name) {
            return LINKER.downcallHandle(LINKER.defaultLookup().findOrThrow(name),
                    java.lang.foreign.FunctionDescriptor.of(java.lang.foreign.ValueLayout.JAVA_INT,
                            java.lang.foreign.ValueLayout.JAVA_INT, java.lang.foreign.ValueLayout.ADDRESS));
        }

        /** {soft, hard}. */
        static long[] get() throws Throwable {
            try (var arena = java.lang.foreign.Arena.ofConfined()) {
                var r = arena.allocate(16);
                assertThat((int) GET.invokeExact(RLIMIT_NOFILE, r)).isZero();
                return new long[] {r.get(java.lang.foreign.ValueLayout.JAVA_LONG, 0),
                    r.get(java.lang.foreign.ValueLayout.JAVA_LONG, 8)};
            }
        }

        static void setSoft(long soft, long hard) throws Throwable {
            try (var arena = java.lang.foreign.Arena.ofConfined()) {
                var r = arena.allocate(16);
                r.set(java.lang.foreign.ValueLayout.JAVA_LONG, 0, soft);
                r.set(java.lang.foreign.ValueLayout.JAVA_LONG, 8, hard);
                assertThat((int) SET.invokeExact(RLIMIT_NOFILE, r)).isZero();
            }
        }

        static long highestOpen() throws java.io.IOException {
            try (var fds = Files.list(Path.of("/proc/self/fd"))) {
                return fds.mapToLong(p -> Long.parseLong(p.getFileName().toString())).max().orElseThrow();
            }
        }
    }
}
