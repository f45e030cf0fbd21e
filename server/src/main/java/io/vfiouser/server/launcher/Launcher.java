package io.vfiouser.server.launcher;

import io.netty.util.ResourceLeakDetector;
import io.vfiouser.server.VfioUserServer;
import java.io.IOException;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.apache.logging.log4j.Level;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;
import org.apache.logging.log4j.core.config.Configurator;
import sun.misc.Signal;

/**
 * The launcher's life: load plugins, start the devices, then serve until SIGTERM or SIGINT, reloading the
 * configuration on SIGHUP and logging counters on SIGUSR1 (and every {@code --stats-interval}). It never
 * daemonizes: it stays in the foreground for systemd, libvirt or a shell to supervise.
 *
 * <p>Signals are caught with {@code sun.misc.Signal} (module jdk.unsupported, exported and supported on every
 * JDK): Java has no other way to catch SIGHUP or SIGUSR1, and catching SIGTERM rather than relying on a shutdown
 * hook lets the launcher stop in order and exit with status 0. Handlers only post work to one control thread,
 * so reloads, stops and reports never run at the same time.
 */
final class Launcher {
    private static final Logger LOG = LogManager.getLogger(Launcher.class);
    /** Counter lines, on their own logger so they can be routed or silenced apart. */
    private static final Logger STATS = LogManager.getLogger("io.vfiouser.stats");

    private Launcher() {
    }

    /** Runs the launcher; returns the exit status (0 after a clean stop, 1 if nothing could start, 2 on usage). */
    static int run(String[] args) {
        LauncherArguments a;
        try {
            a = LauncherArguments.parse(args);
        } catch (IllegalArgumentException e) {
            System.err.println("vfio-user-server: " + e.getMessage());
            System.err.println(LauncherArguments.USAGE);
            return 2;
        }
        if (a.help()) {
            System.out.println(LauncherArguments.USAGE);
        }
        if (a.trace()) {
            Configurator.setLevel("io.vfiouser.device", Level.TRACE);
        }
        if (System.getProperty("io.netty.leakDetection.level") == null) {
            // Netty's leak detector records stack traces for a sample of all buffers: garbage and time on the hot
            // path. It is a debugging aid (the tests run it at "paranoid"): off unless asked for by that property.
            ResourceLeakDetector.setLevel(ResourceLeakDetector.Level.DISABLED);
        }
        PluginRegistry plugins = PluginRegistry.load(Launcher.class.getClassLoader(), a.plugins());
        if (a.help() || a.listTypes()) {
            System.out.println("device types:");
            plugins.types().values().stream()
                    .sorted((x, y) -> x.type().name().compareTo(y.type().name()))
                    .forEach(t -> System.out.println("  " + t.type().name() + "  " + t.type().summary()
                            + "  [" + t.plugin() + "]"));
            plugins.close();
            return 0;
        }
        LauncherConfig config;
        SocketActivation activation;
        try {
            activation = SocketActivation.fromEnvironment();
            config = a.config().isPresent() ? LauncherConfig.read(a.config().get(), a.defaults()) : a.singleDevice();
        } catch (IOException | IllegalArgumentException e) {
            LOG.error("{}", e.getMessage());
            plugins.close();
            return a.config().isPresent() ? 1 : 2;
        }
        if (a.listDevices()) {
            listing(config).forEach(System.out::println);
            plugins.close();
            return 0;
        }
        if (a.exitOnDisconnect() && config.devices().size() != 1) {
            LOG.error("--exit-on-disconnect serves exactly one device; the configuration has {}",
                    config.devices().size());
            plugins.close();
            return 2;
        }
        VfioUserServer server = VfioUserServer.builder().threads(a.threads())
                .options(io.vfiouser.server.ServerOptions.DEFAULT.withLimits(a.limits())
                        .withDmaLayout(a.dmaLayout())).build();
        RunningDevices host = new RunningDevices(server, plugins, activation, true);
        ExecutorService control = Executors.newSingleThreadExecutor(r -> new Thread(r, "vfio-user-control"));
        ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "vfio-user-stats");
            t.setDaemon(true);
            return t;
        });
        CountDownLatch stop = new CountDownLatch(1);
        Thread hook = new Thread(() -> shutdown(host, server, plugins), "vfio-user-shutdown");
        try {
            // Installed before the devices start, so that a SIGTERM during start-up still stops cleanly (after the
            // start, which holds the host). Any other way out of the JVM still stops the devices too.
            Runtime.getRuntime().addShutdownHook(hook);
            Signal.handle(new Signal("TERM"), s -> stop.countDown());
            Signal.handle(new Signal("INT"), s -> stop.countDown());
            Signal.handle(new Signal("USR1"), s -> control.execute(() -> logStats(host)));
            Signal.handle(new Signal("HUP"), s -> control.execute(() -> reload(host, a)));
            RunningDevices.Report report = host.apply(config);
            // A count, not the names: a configuration of a thousand devices would make one line of a thousand
            // names. They are in --list, in JMX (one MXBean per device) and in each device's own log lines.
            LOG.info("{} device(s) running{}", report.started().size(),
                    report.failed().isEmpty() ? "" : ", " + report.failed().size() + " not started");
            LOG.debug("running: {}", report.started());
            if (report.started().isEmpty()) {
                LOG.error("no device could start");
                control.shutdownNow();
                shutdown(host, server, plugins);
                Runtime.getRuntime().removeShutdownHook(hook);
                return 1;
            }
            if (a.exitOnDisconnect()) {
                exitWhenTheClientLeaves(host, stop);
            }
            if (a.statsIntervalSeconds() > 0) {
                timer.scheduleAtFixedRate(() -> control.execute(() -> logStats(host)), a.statsIntervalSeconds(),
                        a.statsIntervalSeconds(), TimeUnit.SECONDS);
            }
            stop.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        LOG.info("stopping");
        timer.shutdownNow();
        control.shutdown();
        try {
            control.awaitTermination(30, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        shutdown(host, server, plugins);
        try {
            Runtime.getRuntime().removeShutdownHook(hook);
        } catch (IllegalStateException e) {
            // the JVM is shutting down already
        }
        LOG.info("stopped");
        LogManager.shutdown();
        return 0;
    }

    /**
     * {@code --exit-on-disconnect}: the launcher stops (status 0, as after SIGTERM) once the one device's client has
     * left and the device's teardown after it is over, as libvfio-user's samples do and as a backend that serves one
     * VM wants: the VMM's exit ends the backend too.
     */
    private static void exitWhenTheClientLeaves(RunningDevices host, CountDownLatch stop) {
        var device = host.devices().values().iterator().next();
        LOG.info("{}: the launcher exits when its client leaves (--exit-on-disconnect)", device.description().name());
        device.clientGone().thenRun(() -> {
            LOG.info("{}: the client left; exiting (--exit-on-disconnect)", device.description().name());
            stop.countDown();
        });
    }

    /** {@code --list}: one line per device a configuration describes (name, type, endpoint), then its problems. */
    static java.util.List<String> listing(LauncherConfig config) {
        java.util.List<String> lines = new java.util.ArrayList<>();
        for (DeviceSpec spec : config.devices()) {
            lines.add(spec.name() + "\t" + spec.type() + "\t" + switch (spec.endpoint()) {
                case DeviceSpec.SocketPath p -> p.path();
                case DeviceSpec.InheritedFd f -> "fd " + f.fd();
                case DeviceSpec.ActivatedByName n -> "socket-activated " + n.name();
                case DeviceSpec.ActivatedInOrder o -> "socket-activated";
            });
        }
        for (String problem : config.problems()) {
            lines.add("not started: " + problem);
        }
        return lines;
    }

    private static void reload(RunningDevices host, LauncherArguments a) {
        if (a.config().isEmpty()) {
            LOG.warn("SIGHUP: no --config to reload");
            return;
        }
        if (a.exitOnDisconnect()) {
            // The launcher is bound to the one device it started: a reload could replace or add devices.
            LOG.warn("SIGHUP: the configuration is not reloaded with --exit-on-disconnect");
            return;
        }
        LauncherConfig config;
        try {
            config = LauncherConfig.read(a.config().get(), a.defaults());
        } catch (IOException | RuntimeException e) {
            LOG.error("SIGHUP: configuration not reloaded, the devices stay as they are: {}", e.getMessage());
            return;
        }
        RunningDevices.Report report = host.apply(config);
        LOG.info("SIGHUP: reloaded {}: {}", a.config().get(), report);
    }

    private static void logStats(RunningDevices host) {
        for (String line : host.statsLines()) {
            STATS.info("{}", line);
        }
    }

    private static synchronized void shutdown(RunningDevices host, VfioUserServer server, PluginRegistry plugins) {
        host.close();
        server.close();
        plugins.close();
    }
}
