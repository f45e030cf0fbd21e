package io.vfiouser.server;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * The server's layers, read from its sources: no class refers to a class of a higher layer (by import, or by its
 * simple name in the same package), so calls go down only and the connection's parts never reach back into the
 * code that drives them. Comments and strings are not references ({@code {@link}} up is fine). Every class must be
 * placed in a layer: a new class fails this test until it is, which is when its author decides where it belongs.
 *
 * <p>From the bottom: the subsystems (interrupts, DMA, PCI configuration space, migration stream); the public
 * option types; the device-lifetime state; the connection's parts; the connection; what feeds it commands
 * (dispatcher, fast path, negotiation); the Netty handler; the hosting API; the launcher.
 */
class LayeringTest {
    private static final Path SOURCES = Path.of("src/main/java");
    private static final String ROOT = "io.vfiouser.server";

    /** Layer of a class: the first matching entry (a class name, or a package prefix ending in '.'). */
    private static final Map<String, Integer> LAYERS = new LinkedHashMap<>();

    static {
        layer(0, "irq.", "dma.", "pci.", "migration.");
        layer(1, "ServerOptions", "ConnectionLimits", "SocketPolicy");
        layer(2, "device.");
        layer(3, "connection.CommandRules", "connection.Errors", "connection.TraceLine",
                "connection.EventFdWatchers", "connection.EventFdWatcher", "connection.CountingInterrupts",
                "connection.DmaListener", "connection.ConfigInterrupts", "connection.InterruptEvents",
                "connection.IoEventFds", "connection.ServerDmaRequests", "connection.ConnectionContext",
                "connection.ContextScheduler");
        layer(4, "connection.ConnectionMigration");
        layer(5, "connection.DeviceResets");
        layer(6, "connection.RegionRouter");
        layer(7, "connection.Connection");
        layer(8, "connection.CommandDispatcher", "connection.RegionFastPath", "connection.Negotiation",
                "connection.TwinSocket");
        layer(9, "connection.ConnectionHandler");
        layer(10, "DeviceStats", "DeviceStatsMXBean", "ProcessFds", "SocketFiles", "TrafficCounter",
                "HeldConnection");
        layer(11, "HostedDevice");
        layer(12, "VfioUserServer");
        layer(13, "launcher.");
    }

    private static void layer(int layer, String... names) {
        for (String n : names) {
            LAYERS.put(ROOT + "." + n, layer);
        }
    }

    private static Integer layerOf(String fqn) {
        for (Map.Entry<String, Integer> e : LAYERS.entrySet()) {
            String k = e.getKey();
            if (k.endsWith(".") ? fqn.startsWith(k) : fqn.equals(k)) {
                return e.getValue();
            }
        }
        return null;
    }

    @Test
    void noClassRefersToAHigherLayer() throws IOException {
        Map<String, String> sources = new HashMap<>();
        try (Stream<Path> files = Files.walk(SOURCES)) {
            for (Path p : files.filter(f -> f.toString().endsWith(".java")).toList()) {
                String rel = SOURCES.relativize(p).toString();
                if (rel.endsWith("package-info.java")) {
                    continue;
                }
                String fqn = rel.substring(0, rel.length() - ".java".length()).replace('/', '.');
                sources.put(fqn, Files.readString(p));
            }
        }
        assertThat(sources).as("server sources found").hasSizeGreaterThan(50);
        List<String> unplaced = new ArrayList<>();
        List<String> upward = new ArrayList<>();
        for (Map.Entry<String, String> e : sources.entrySet()) {
            String from = e.getKey();
            Integer fromLayer = layerOf(from);
            if (fromLayer == null) {
                unplaced.add(from);
                continue;
            }
            for (String to : references(from, e.getValue(), sources.keySet())) {
                Integer toLayer = layerOf(to);
                if (toLayer != null && toLayer > fromLayer) {
                    upward.add(from + " (layer " + fromLayer + ") -> " + to + " (layer " + toLayer + ")");
                }
            }
        }
        assertThat(unplaced).as("classes with no layer").isEmpty();
        assertThat(upward).as("references to a higher layer").isEmpty();
    }

    /** The sanity of the reader itself: it sees what a handler refers to, and only code, not comments. */
    @Test
    void theReaderSeesImportsAndSamePackageNamesButNotComments() {
        Set<String> known = Set.of(ROOT + ".connection.Connection", ROOT + ".connection.CommandRules",
                ROOT + ".device.DeviceRuntime", ROOT + ".connection.RegionRouter");
        String source = """
                package io.vfiouser.server.connection;
                import io.vfiouser.server.device.DeviceRuntime;
                /** Uses {@link RegionRouter}. */
                final class X {
                    // Connection in a comment
                    String s = "CommandRules in a string";
                    Connection c; RateLimitedLog.Connection w;
                }
                """;
        assertThat(references(ROOT + ".connection.X", source, known))
                .containsExactlyInAnyOrder(ROOT + ".device.DeviceRuntime", ROOT + ".connection.Connection");
        assertThat(references(ROOT + ".connection.X", source.replace("Connection c;", ""), known))
                .containsExactly(ROOT + ".device.DeviceRuntime");
    }

    private static final Pattern IMPORT = Pattern.compile("^import\\s+(?:static\\s+)?([\\w.]+)\\s*;", Pattern.MULTILINE);
    private static final Pattern IDENTIFIER = Pattern.compile("(?<![\\w.])([A-Z]\\w*)");

    /** The server classes {@code source} refers to: imported ones, and same-package ones by simple name. */
    private static Set<String> references(String fqn, String source, Set<String> known) {
        String code = strip(source);
        Set<String> out = new HashSet<>();
        Matcher m = IMPORT.matcher(code);
        while (m.find()) {
            String imported = m.group(1);
            // import of a nested type or a static member: its outermost known class
            for (String candidate = imported; candidate.contains("."); 
                    candidate = candidate.substring(0, candidate.lastIndexOf('.'))) {
                if (known.contains(candidate)) {
                    out.add(candidate);
                    break;
                }
            }
        }
        String pkg = fqn.substring(0, fqn.lastIndexOf('.'));
        String body = IMPORT.matcher(code).replaceAll("");
        Matcher id = IDENTIFIER.matcher(body);
        while (id.find()) {
            String candidate = pkg + "." + id.group(1);
            if (!candidate.equals(fqn) && known.contains(candidate)) {
                out.add(candidate);
            }
        }
        return out;
    }

    /** The source without comments, string and character literals. */
    private static String strip(String s) {
        StringBuilder b = new StringBuilder(s.length());
        int i = 0;
        while (i < s.length()) {
            char c = s.charAt(i);
            if (s.startsWith("/*", i)) {
                int end = s.indexOf("*/", i + 2);
                i = end < 0 ? s.length() : end + 2;
            } else if (s.startsWith("//", i)) {
                int end = s.indexOf('\n', i);
                i = end < 0 ? s.length() : end;
            } else if (s.startsWith("\"\"\"", i)) {
                int end = s.indexOf("\"\"\"", i + 3);
                i = end < 0 ? s.length() : end + 3;
                b.append("\"\"");
            } else if (c == '"' || c == '\'') {
                int j = i + 1;
                while (j < s.length() && s.charAt(j) != c) {
                    j += s.charAt(j) == '\\' ? 2 : 1;
                }
                i = j + 1;
                b.append("\"\"");
            } else {
                b.append(c);
                i++;
            }
        }
        return b.toString();
    }
}
