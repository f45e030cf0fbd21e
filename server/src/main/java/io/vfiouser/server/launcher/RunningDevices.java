package io.vfiouser.server.launcher;

import com.fasterxml.jackson.core.JsonProcessingException;
import io.vfiouser.device.spi.DeviceInstance;
import io.vfiouser.server.HostedDevice;
import io.vfiouser.server.VfioUserServer;
import java.lang.management.ManagementFactory;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import javax.management.JMException;
import javax.management.MBeanServer;
import javax.management.ObjectName;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

/**
 * The devices a launcher runs, kept in line with a {@link LauncherConfig}: {@link #apply} starts what the
 * configuration adds, stops what it removes (asking each client to let go first) and restarts what it changes,
 * leaving unchanged devices and their clients alone. One device failing to start, for any reason (unknown type,
 * settings that do not bind, a factory that throws, a socket that cannot be bound), is reported with its name and
 * cause and does not keep the others from running.
 *
 * <p>Each running device has an MXBean with its counters, {@code io.vfiouser:type=Device,name=<name>}, in the
 * platform MBean server. Calls are serialized: the launcher makes them from one control thread.
 */
public final class RunningDevices implements AutoCloseable {
    private static final Logger LOG = LogManager.getLogger(RunningDevices.class);

    private final VfioUserServer server;
    private final PluginRegistry plugins;
    private final List<SocketActivation.Socket> activated;
    private final Set<Integer> usedActivatedFds = new HashSet<>();
    private final boolean jmx;
    private final Map<String, Running> running = new LinkedHashMap<>();

    /** A device being served. */
    private record Running(DeviceSpec spec, DeviceInstance instance, HostedDevice hosted, ObjectName mbean) {
    }

    /**
     * What an {@link #apply} did, by device name.
     *
     * @param failed one line per device or entry that could not start, with its cause
     */
    public record Report(List<String> started, List<String> stopped, List<String> unchanged, List<String> failed) {
        public Report {
            started = List.copyOf(started);
            stopped = List.copyOf(stopped);
            unchanged = List.copyOf(unchanged);
            failed = List.copyOf(failed);
        }

        @Override
        public String toString() {
            return "started " + started.size() + ", stopped " + stopped.size() + ", unchanged " + unchanged.size()
                    + ", failed " + failed.size();
        }
    }

    /**
     * @param server    serves the devices; the caller keeps and closes it
     * @param plugins   the device types; the caller keeps and closes it
     * @param activated sockets passed by socket activation, for entries that ask for them
     * @param jmx       whether to register an MXBean per device
     */
    public RunningDevices(VfioUserServer server, PluginRegistry plugins, SocketActivation activated, boolean jmx) {
        this.server = server;
        this.plugins = plugins;
        this.activated = activated.sockets();
        this.jmx = jmx;
    }

    /** Brings the running devices in line with {@code config}. */
    public synchronized Report apply(LauncherConfig config) {
        List<String> started = new ArrayList<>();
        List<String> stopped = new ArrayList<>();
        List<String> unchanged = new ArrayList<>();
        List<String> failed = new ArrayList<>(config.problems());
        Map<String, DeviceSpec> wanted = new LinkedHashMap<>();
        for (DeviceSpec spec : config.devices()) {
            wanted.put(spec.name(), spec);
        }
        List<CompletableFuture<Void>> stopping = new ArrayList<>();
        for (Running r : List.copyOf(running.values())) {
            DeviceSpec now = wanted.get(r.spec().name());
            if (now != null && now.equals(r.spec()) && !r.hosted().closeFuture().isDone()) {
                continue;
            }
            running.remove(r.spec().name());
            stopped.add(r.spec().name());
            stopping.add(stop(r, config.releaseTimeout()));
        }
        CompletableFuture.allOf(stopping.toArray(CompletableFuture[]::new)).join();
        Set<String> claimedByName = new HashSet<>();
        for (DeviceSpec spec : wanted.values()) {
            if (spec.endpoint() instanceof DeviceSpec.ActivatedByName n) {
                claimedByName.add(n.name());
            }
        }
        for (DeviceSpec spec : wanted.values()) {
            if (running.containsKey(spec.name())) {
                unchanged.add(spec.name());
                continue;
            }
            try {
                running.put(spec.name(), start(spec, claimedByName));
                started.add(spec.name());
            } catch (Exception | LinkageError e) {
                String line = spec.name() + " (" + spec.type() + "): " + causeOf(e);
                failed.add(line);
                LogManager.getLogger("io.vfiouser.device." + spec.name()).error("{} ({}): not started: {}",
                        spec.name(), spec.type(), causeOf(e));
            }
        }
        for (String problem : config.problems()) {
            LOG.error(problem);
        }
        return new Report(started, stopped, unchanged, failed);
    }

    private Running start(DeviceSpec spec, Set<String> claimedByName) throws Exception {
        PluginRegistry.LoadedType type = plugins.type(spec.type()).orElseThrow(() -> new IllegalArgumentException(
                "unknown device type '" + spec.type() + "'; known: " + String.join(", ", plugins.typeNames())));
        Object settings;
        try {
            settings = LauncherConfig.settingsMapper().treeToValue(spec.settings(), type.type().settingsType());
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException("settings " + spec.settings() + ": " + e.getOriginalMessage(), e);
        }
        if (settings == null) {
            throw new IllegalArgumentException("settings bind to nothing");
        }
        int fd = activatedFd(spec, claimedByName);
        if (fd >= 0) {
            checkListening(fd);
        }
        DeviceInstance instance = type.type().create(spec.name(), settings);
        HostedDevice hosted;
        try {
            hosted = spec.endpoint() instanceof DeviceSpec.SocketPath p
                    ? server.serve(instance.description(), instance.behaviour(), Path.of(p.path()), spec.policy())
                    : server.serve(instance.description(), instance.behaviour(), fd, spec.policy());
        } catch (Exception | LinkageError e) {
            closeBehaviour(spec.name(), instance);
            throw e;
        }
        if (fd >= 0 && !(spec.endpoint() instanceof DeviceSpec.InheritedFd)) {
            usedActivatedFds.add(fd);
        }
        ObjectName mbean = null;
        if (jmx) {
            try {
                mbean = objectName(spec.name());
                MBeanServer mbs = ManagementFactory.getPlatformMBeanServer();
                if (mbs.isRegistered(mbean)) {
                    mbs.unregisterMBean(mbean);
                }
                mbs.registerMBean(hosted.stats(), mbean);
            } catch (JMException e) {
                LOG.warn("{}: no JMX counters: {}", spec.name(), e.toString());
                mbean = null;
            }
        }
        return new Running(spec, instance, hosted, mbean);
    }

    /** The fd an entry serves on: an inherited one, an activated one, or -1 for a socket path. */
    private int activatedFd(DeviceSpec spec, Set<String> claimedByName) {
        return switch (spec.endpoint()) {
            case DeviceSpec.SocketPath p -> -1;
            case DeviceSpec.InheritedFd f -> f.fd();
            case DeviceSpec.ActivatedByName n -> activated.stream()
                    .filter(s -> s.name().equals(n.name()))
                    .mapToInt(SocketActivation.Socket::fd)
                    .filter(fd -> !usedActivatedFds.contains(fd))
                    .findFirst().orElseThrow(() -> new IllegalArgumentException("no socket named '" + n.name()
                            + "' was passed (LISTEN_FDNAMES), or its socket was used already"));
            case DeviceSpec.ActivatedInOrder o -> activated.stream()
                    .filter(s -> !claimedByName.contains(s.name()) && !usedActivatedFds.contains(s.fd()))
                    .mapToInt(SocketActivation.Socket::fd)
                    .filter(fd -> running.values().stream().noneMatch(r -> r.hosted().where().equals("fd:" + fd)))
                    .findFirst().orElseThrow(() -> new IllegalArgumentException(
                            "no socket-path, fd or fd-name, and no socket-activated socket left for it"));
        };
    }

    /** Refuses to adopt an fd that is not a listening unix socket (a wrong --fd would take over another fd). */
    private static void checkListening(int fd) {
        boolean ok;
        try {
            ok = io.vfiouser.transport.linux.Linux.isListeningUnixSocket(fd);
        } catch (io.vfiouser.transport.linux.ErrnoException e) {
            throw new IllegalArgumentException("fd " + fd + " is not an inherited socket: " + e.getMessage());
        }
        if (!ok) {
            throw new IllegalArgumentException("fd " + fd + " is not a listening unix stream socket");
        }
    }

    private CompletableFuture<Void> stop(Running r, Duration releaseTimeout) {
        Logger log = LogManager.getLogger("io.vfiouser.device." + r.spec().name());
        log.info("{}: stopping", r.spec().name());
        return r.hosted().stop(releaseTimeout).handle((ok, err) -> {
            finish(r);
            return null;
        });
    }

    private void finish(Running r) {
        closeBehaviour(r.spec().name(), r.instance());
        if (r.mbean() != null) {
            try {
                ManagementFactory.getPlatformMBeanServer().unregisterMBean(r.mbean());
            } catch (JMException e) {
                LOG.debug("{}: {}", r.spec().name(), e.toString());
            }
        }
    }

    private static void closeBehaviour(String name, DeviceInstance instance) {
        if (instance.behaviour() instanceof AutoCloseable closeable) {
            try {
                closeable.close();
            } catch (Exception e) {
                LogManager.getLogger("io.vfiouser.device." + name).warn("{}: closing failed", name, e);
            }
        }
    }

    /** The JMX name of a device's counters. */
    public static ObjectName objectName(String device) throws JMException {
        return new ObjectName("io.vfiouser:type=Device,name=" + ObjectName.quote(device));
    }

    /** The devices being served, by name. */
    public synchronized Map<String, HostedDevice> devices() {
        Map<String, HostedDevice> out = new LinkedHashMap<>();
        running.forEach((name, r) -> out.put(name, r.hosted()));
        return out;
    }

    public synchronized Optional<HostedDevice> device(String name) {
        return Optional.ofNullable(running.get(name)).map(Running::hosted);
    }

    /** One line of counters per device. */
    public synchronized List<String> statsLines() {
        return running.values().stream().map(r -> r.hosted().stats().toString()).toList();
    }

    /**
     * Stops every device at once: clients are disconnected (they see EOF), socket files removed, behaviours
     * closed (files flushed). Activated sockets no device used are closed too.
     */
    @Override
    public synchronized void close() {
        for (Running r : running.values()) {
            try {
                r.hosted().close();
            } finally {
                finish(r);
            }
        }
        running.clear();
        for (SocketActivation.Socket s : activated) {
            if (usedActivatedFds.add(s.fd())) {
                try {
                    io.vfiouser.transport.linux.Linux.close(s.fd());
                } catch (io.vfiouser.transport.linux.ErrnoException e) {
                    LOG.debug("closing activated fd {}: {}", s.fd(), e.getMessage());
                }
            }
        }
    }

    private static String causeOf(Throwable e) {
        Throwable t = e;
        while ((t instanceof java.util.concurrent.CompletionException
                || t instanceof java.lang.reflect.InvocationTargetException) && t.getCause() != null) {
            t = t.getCause();
        }
        String message = t.getMessage();
        return t instanceof IllegalArgumentException && message != null ? message : t.toString();
    }
}
