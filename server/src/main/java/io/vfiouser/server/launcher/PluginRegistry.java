package io.vfiouser.server.launcher;

import io.vfiouser.device.spi.DevicePlugin;
import io.vfiouser.device.spi.DeviceType;
import java.io.IOException;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.ServiceConfigurationError;
import java.util.ServiceLoader;
import java.util.stream.Stream;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

/**
 * The device types of every {@link DevicePlugin} found: on the launcher's own class path, and in each jar of the
 * plugins folder, which gets a class loader of its own (so one jar's classes do not clash with another's, and a
 * broken jar is named in the report). A plugin that fails to load, a type that clashes with one already known,
 * and a folder entry that is not a readable jar are reported in {@link #problems()} and skipped.
 */
public final class PluginRegistry implements AutoCloseable {
    private static final Logger LOG = LogManager.getLogger(PluginRegistry.class);

    /** A device type and where it came from. */
    public record LoadedType(DeviceType<?> type, String plugin, String source) {
    }

    private final Map<String, LoadedType> types = new LinkedHashMap<>();
    private final List<String> problems = new ArrayList<>();
    private final List<URLClassLoader> loaders = new ArrayList<>();

    private PluginRegistry() {
    }

    /**
     * Loads the plugins on {@code parent}'s class path, then those in the jars directly inside {@code pluginsDir}
     * (in name order), if given.
     */
    public static PluginRegistry load(ClassLoader parent, Optional<Path> pluginsDir) {
        PluginRegistry registry = new PluginRegistry();
        registry.loadFrom(parent, "class path", null);
        pluginsDir.ifPresent(dir -> registry.loadDirectory(parent, dir));
        return registry;
    }

    private void loadDirectory(ClassLoader parent, Path dir) {
        List<Path> jars;
        try (Stream<Path> entries = Files.list(dir)) {
            jars = entries.filter(p -> p.getFileName().toString().endsWith(".jar")).sorted().toList();
        } catch (IOException e) {
            problem("plugins folder " + dir + ": " + e);
            return;
        }
        for (Path jar : jars) {
            URLClassLoader loader;
            try {
                loader = new URLClassLoader("plugin:" + jar.getFileName(), new URL[] {jar.toUri().toURL()}, parent);
            } catch (IOException e) {
                problem(jar + ": " + e);
                continue;
            }
            loaders.add(loader);
            int before = types.size();
            int problemsBefore = problems.size();
            loadFrom(loader, jar.toString(), loader);
            if (types.size() == before && problems.size() == problemsBefore) {
                problem(jar + ": no device plugin in it (no META-INF/services/" + DevicePlugin.class.getName() + ")");
            }
        }
    }

    /** Loads the plugins {@code loader} sees; with {@code own} set, only those whose classes it defines itself. */
    private void loadFrom(ClassLoader loader, String source, ClassLoader own) {
        Iterator<DevicePlugin> it = ServiceLoader.load(DevicePlugin.class, loader).iterator();
        // A provider that fails is reported, and the iterator goes on to the next one (ServiceLoader's contract).
        for (int guard = 0; guard < 10_000; guard++) {
            DevicePlugin plugin;
            try {
                if (!it.hasNext()) {
                    return;
                }
                plugin = it.next();
            } catch (ServiceConfigurationError | LinkageError e) {
                problem(source + ": a plugin failed to load: " + describe(e));
                continue;
            }
            if (own != null && plugin.getClass().getClassLoader() != own) {
                continue; // found through the parent: the class path pass has it already
            }
            add(plugin, source);
        }
    }

    private void add(DevicePlugin plugin, String source) {
        String name;
        List<DeviceType<?>> offered;
        try {
            name = plugin.name();
            offered = List.copyOf(plugin.deviceTypes());
        } catch (RuntimeException | LinkageError e) {
            problem(source + ": plugin " + plugin.getClass().getName() + " failed to list its device types: "
                    + describe(e));
            return;
        }
        for (DeviceType<?> type : offered) {
            LoadedType known = types.get(type.name());
            if (known != null) {
                problem(source + ": plugin " + name + ": device type '" + type.name() + "' is provided already by "
                        + known.plugin() + " (" + known.source() + "); ignored");
                continue;
            }
            types.put(type.name(), new LoadedType(type, name, source));
            LOG.debug("device type {} from plugin {} ({})", type.name(), name, source);
        }
    }

    private void problem(String message) {
        problems.add(message);
        LOG.error(message);
    }

    private static String describe(Throwable e) {
        StringBuilder b = new StringBuilder(e.toString());
        for (Throwable c = e.getCause(); c != null && c != c.getCause(); c = c.getCause()) {
            b.append(" <- ").append(c);
        }
        return b.toString();
    }

    public Optional<LoadedType> type(String name) {
        return Optional.ofNullable(types.get(name));
    }

    /** Every known type by name, in the order found. */
    public Map<String, LoadedType> types() {
        return Map.copyOf(types);
    }

    /** The type names, in the order found. */
    public List<String> typeNames() {
        return List.copyOf(types.keySet());
    }

    /** What failed to load, one line each. */
    public List<String> problems() {
        return List.copyOf(problems);
    }

    /** Closes the plugin jars' class loaders; no device of theirs may run any more. */
    @Override
    public void close() {
        for (URLClassLoader loader : loaders) {
            try {
                loader.close();
            } catch (IOException e) {
                LOG.debug("closing {}: {}", loader.getName(), e.toString());
            }
        }
    }
}
