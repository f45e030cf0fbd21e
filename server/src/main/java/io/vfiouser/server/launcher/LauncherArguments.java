package io.vfiouser.server.launcher;

import io.vfiouser.codec.DmaLayout;
import io.vfiouser.server.ConnectionLimits;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The launcher's command line. Either a configuration file ({@code --config FILE}) or one device given on the
 * command line the way VMMs run a backend program ({@code <type> --socket-path=PATH | --fd=N [--key=value...]},
 * where every {@code --key=value} that is not a launcher option is one of the device's settings).
 */
record LauncherArguments(Optional<Path> config, Optional<Path> plugins, Optional<String> type,
                         Optional<String> name, Optional<String> socketPath, int fd, Map<String, String> settings,
                         Optional<String> socketMode, Optional<String> socketGroup, List<Integer> allowedUids,
                         boolean trace, long statsIntervalSeconds, int threads, ConnectionLimits limits,
                         boolean help, boolean listTypes, DmaLayout dmaLayout, boolean exitOnDisconnect,
                         boolean listDevices) {

    static final String USAGE = """
            usage: vfio-user-server --config FILE [options]
                   vfio-user-server <type> (--socket-path=PATH | --fd=N) [options] [--setting=value ...]
              --config FILE         devices from a JSON or YAML file (.yaml/.yml); SIGHUP reloads it
              --plugins DIR         load device plugins from the jars in DIR
              --socket-path=PATH    single device: listen on a new socket file at PATH (removed on exit)
              --fd=N                single device: serve on the listening socket inherited as fd N
                                    (neither: the socket passed by systemd socket activation, LISTEN_FDS)
              --name=NAME           single device: its name in logs and statistics (default: the type)
              --socket-mode=MODE    socket file permissions, octal (default 0600)
              --socket-group=GROUP  socket file group
              --allow-uid=UID,...   accept connections only from these peer uids (SO_PEERCRED)
              --trace               log every message, one line each
              --stats-interval=S    log every device's counters every S seconds (also on SIGUSR1)
              --threads=N           event-loop threads (default: one per core)
              --dma-layout=L        DMA_READ/DMA_WRITE payloads: qemu (u32 count, default) or spec (u64 count,
                                    as libvfio-user; docs/operations.md, "DMA messages")
              --exit-on-disconnect  exit (status 0) when the device's client leaves; one device only
            Per-client limits (docs/operations.md, "Limits"; sizes take K/M/G, durations ms/s/m):
              --max-queued-reply-bytes=SIZE    replies queued for a client before reading from it pauses (4M)
              --max-queued-commands=N          commands received, not yet handled, before reading pauses (1024)
              --max-queued-command-bytes=SIZE  bytes of those commands before reading pauses (16M)
              --max-held-connections=N         connections waiting while a device has a client (4)
              --hold-timeout=DURATION          how long such a connection may wait (30s)
              --negotiation-timeout=DURATION   time from connect to VERSION (5s)
              --max-dma-maps=N                 DMA mappings per client, announced as max_dma_maps (1024)
              --max-client-fds=N               fds one client may make the server hold (2048)
              --warning-burst=N                warnings per connection/device before they are counted (5)
              --warning-interval=DURATION      how often counted warnings are summed up in one line (1m)
              --list-types          list the device types of the loaded plugins and exit
              --list                list the devices the configuration (or command line) describes and exit
              --help                this text
            Signals: SIGTERM/SIGINT stop cleanly, SIGHUP reloads --config, SIGUSR1 logs counters.""";

    LauncherArguments {
        settings = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(settings));
        allowedUids = List.copyOf(allowedUids);
    }

    static LauncherArguments parse(String[] args) {
        Path config = null;
        Path plugins = null;
        String type = null;
        String name = null;
        String socketPath = null;
        int fd = -1;
        Map<String, String> settings = new LinkedHashMap<>();
        String mode = null;
        String group = null;
        List<Integer> uids = new ArrayList<>();
        boolean trace = false;
        long stats = 0;
        int threads = Runtime.getRuntime().availableProcessors();
        boolean help = false;
        boolean list = false;
        DmaLayout dmaLayout = DmaLayout.QEMU;
        boolean exitOnDisconnect = false;
        boolean listDevices = false;
        ConnectionLimits.Builder limits = ConnectionLimits.builder();
        long replyBytes = -1;
        for (int i = 0; i < args.length; i++) {
            String arg = args[i];
            String key;
            String value;
            if (arg.startsWith("--") && arg.contains("=")) {
                key = arg.substring(2, arg.indexOf('='));
                value = arg.substring(arg.indexOf('=') + 1);
            } else if (arg.equals("--config") || arg.equals("--plugins")) {
                if (i + 1 >= args.length) {
                    throw new IllegalArgumentException(arg + " needs a value");
                }
                key = arg.substring(2);
                value = args[++i];
            } else if (arg.startsWith("-")) {
                switch (arg) {
                    case "--help", "-h" -> help = true;
                    case "--trace" -> trace = true;
                    case "--list-types" -> list = true;
                    case "--exit-on-disconnect" -> exitOnDisconnect = true;
                    case "--list" -> listDevices = true;
                    default -> throw new IllegalArgumentException("unknown option " + arg);
                }
                continue;
            } else if (type == null) {
                type = arg;
                continue;
            } else {
                throw new IllegalArgumentException("more than one device type given: " + arg);
            }
            switch (key) {
                case "config" -> config = Path.of(value);
                case "plugins" -> plugins = Path.of(value);
                case "name" -> name = value;
                case "socket-path" -> socketPath = value;
                case "fd" -> fd = number(arg, value, 0);
                case "socket-mode" -> mode = value;
                case "socket-group" -> group = value;
                case "allow-uid" -> {
                    for (String uid : value.split(",")) {
                        uids.add(number(arg, uid.trim(), 0));
                    }
                }
                case "stats-interval" -> stats = number(arg, value, 1);
                case "threads" -> threads = number(arg, value, 1);
                case "dma-layout" -> dmaLayout = dmaLayout(arg, value);
                case "max-queued-reply-bytes" -> replyBytes = Quantities.size(arg, value, 4096);
                case "max-queued-commands" -> limits.maxQueuedCommands(Quantities.intCount(arg, value, 8));
                case "max-queued-command-bytes" ->
                        limits.maxQueuedCommandBytes(Quantities.size(arg, value, 1 << 16));
                case "max-held-connections" -> limits.maxHeldConnections(Quantities.intCount(arg, value, 0));
                case "hold-timeout" -> limits.holdTimeout(Quantities.duration(arg, value));
                case "negotiation-timeout" -> limits.negotiationTimeout(Quantities.duration(arg, value));
                case "max-dma-maps" -> limits.maxDmaMappings(Quantities.intCount(arg, value, 1));
                case "max-client-fds" -> limits.maxClientFds(Quantities.intCount(arg, value, 1));
                case "warning-burst" -> limits.warningBurst(Quantities.intCount(arg, value, 1));
                case "warning-interval" -> limits.warningInterval(Quantities.duration(arg, value));
                default -> {
                    if (!key.matches("[a-z][a-z0-9-]*")) {
                        throw new IllegalArgumentException("unknown option " + arg);
                    }
                    if (settings.put(key, value) != null) {
                        throw new IllegalArgumentException("--" + key + " given twice");
                    }
                }
            }
        }
        if (replyBytes >= 0) {
            if (replyBytes > Integer.MAX_VALUE) {
                throw new IllegalArgumentException("--max-queued-reply-bytes: at most 2G");
            }
            // Reading resumes once half of the budget has drained.
            limits.outboundWaterMarks((int) (replyBytes / 2), (int) replyBytes);
        }
        ConnectionLimits connectionLimits;
        try {
            connectionLimits = limits.build();
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("limits: " + e.getMessage());
        }
        if (!help && !list) {
            if (config != null && (type != null || socketPath != null || fd >= 0 || !settings.isEmpty())) {
                throw new IllegalArgumentException("--config and a device on the command line exclude each other"
                        + (settings.isEmpty() ? "" : " (unknown option --" + settings.keySet().iterator().next() + ")"));
            }
            if (config == null && type == null) {
                throw new IllegalArgumentException("give --config FILE or a device type");
            }
            if (socketPath != null && fd >= 0) {
                throw new IllegalArgumentException("give only one of --socket-path=PATH and --fd=N");
            }
        }
        return new LauncherArguments(Optional.ofNullable(config), Optional.ofNullable(plugins),
                Optional.ofNullable(type), Optional.ofNullable(name), Optional.ofNullable(socketPath), fd, settings,
                Optional.ofNullable(mode), Optional.ofNullable(group), uids, trace, stats, threads, connectionLimits, help,
                list, dmaLayout, exitOnDisconnect, listDevices);
    }

    private static DmaLayout dmaLayout(String arg, String value) {
        return switch (value.toLowerCase(java.util.Locale.ROOT)) {
            case "qemu" -> DmaLayout.QEMU;
            case "spec" -> DmaLayout.SPEC;
            default -> throw new IllegalArgumentException(arg + ": qemu or spec");
        };
    }

    private static int number(String arg, String value, int min) {
        try {
            int n = Integer.parseInt(value);
            if (n < min) {
                throw new IllegalArgumentException(arg + ": at least " + min);
            }
            return n;
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(arg + " needs a number");
        }
    }

    LauncherConfig.Defaults defaults() {
        return new LauncherConfig.Defaults(socketMode, socketGroup, allowedUids);
    }

    /** The single device of the command line as a configuration of one entry. */
    LauncherConfig singleDevice() {
        com.fasterxml.jackson.databind.node.ObjectNode node =
                com.fasterxml.jackson.databind.node.JsonNodeFactory.instance.objectNode();
        settings.forEach(node::put);
        DeviceSpec.Endpoint endpoint = socketPath.<DeviceSpec.Endpoint>map(DeviceSpec.SocketPath::new)
                .orElse(fd >= 0 ? new DeviceSpec.InheritedFd(fd) : new DeviceSpec.ActivatedInOrder());
        DeviceSpec spec = new DeviceSpec(name.orElse(type.orElseThrow()), type.orElseThrow(), endpoint,
                LauncherConfig.policy(socketMode, socketGroup, allowedUids), node);
        return new LauncherConfig(List.of(spec), LauncherConfig.DEFAULT_RELEASE_TIMEOUT, List.of());
    }
}
