package io.vfiouser.server.launcher;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import io.vfiouser.server.SocketPolicy;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.Set;

/**
 * The launcher's configuration file, JSON or YAML (by extension: {@code .yaml}/{@code .yml} is YAML, anything
 * else JSON), with kebab-case keys everywhere, device settings included:
 *
 * <pre>{@code
 * socket-mode: "0660"          # defaults for every device (each may override them)
 * socket-group: kvm
 * allowed-uids: [107]
 * release-timeout: 10          # seconds a removed device's client has to let go after REQ
 * devices:
 *   - name: disk0
 *     type: nvme
 *     socket-path: /run/vfio-user/disk0.sock   # or fd: 3, or fd-name: disk0, or nothing: next activated socket
 *     settings: {backing: /var/lib/vfio-user/disk0.img, size: 1G}
 * }</pre>
 *
 * A device entry that cannot be read (a missing name or type, an unknown key, two endpoints, a duplicate name)
 * is reported in {@link #problems()} and left out; the others stand.
 *
 * @param devices        the devices, in file order
 * @param releaseTimeout how long a removed device's client may keep it after the REQ interrupt
 * @param problems       entries left out and why
 */
public record LauncherConfig(List<DeviceSpec> devices, Duration releaseTimeout, List<String> problems) {
    /** The release timeout when the file gives none. */
    public static final Duration DEFAULT_RELEASE_TIMEOUT = Duration.ofSeconds(10);

    static final ObjectMapper JSON = configure(JsonMapper.builder().build());
    static final ObjectMapper YAML = configure(YAMLMapper.builder().build());

    public LauncherConfig {
        devices = List.copyOf(devices);
        problems = List.copyOf(problems);
    }

    private static ObjectMapper configure(ObjectMapper mapper) {
        return mapper.setPropertyNamingStrategy(PropertyNamingStrategies.KEBAB_CASE)
                .enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
                .enable(DeserializationFeature.FAIL_ON_NULL_FOR_PRIMITIVES);
    }

    /** Binds device settings: as {@link #JSON}, and integers also in 0x hex or with a size suffix. */
    private static final ObjectMapper SETTINGS = configure(JsonMapper.builder().build())
            .registerModule(SettingsNumbers.module());

    /**
     * The mapper that binds device settings (kebab-case keys, unknown keys rejected, integers in decimal, {@code 0x}
     * hex or with a size suffix: {@link SettingsNumbers}).
     */
    public static ObjectMapper settingsMapper() {
        return SETTINGS;
    }

    /** The file's top level. */
    record FileModel(List<JsonNode> devices, String socketMode, String socketGroup, List<Integer> allowedUids,
                     Double releaseTimeout) {
    }

    /** One entry as written. */
    record EntryModel(String name, String type, String socketPath, Integer fd, String fdName, String socketMode,
                      String socketGroup, List<Integer> allowedUids, JsonNode settings) {
    }

    /** Defaults the command line gives, which the file's own top-level keys override. */
    public record Defaults(Optional<String> socketMode, Optional<String> socketGroup, List<Integer> allowedUids) {
        public static final Defaults NONE = new Defaults(Optional.empty(), Optional.empty(), List.of());

        public Defaults {
            allowedUids = List.copyOf(allowedUids);
        }
    }

    /** Reads {@code file}; fails only if the file itself cannot be read or its top level is wrong. */
    public static LauncherConfig read(Path file, Defaults defaults) throws IOException {
        String name = file.getFileName().toString().toLowerCase(Locale.ROOT);
        ObjectMapper mapper = name.endsWith(".yaml") || name.endsWith(".yml") ? YAML : JSON;
        FileModel model;
        try {
            model = mapper.readValue(Files.readAllBytes(file), FileModel.class);
        } catch (JsonProcessingException e) {
            throw new IOException(file + ": " + e.getOriginalMessage() + locationOf(e), e);
        }
        if (model == null) {
            throw new IOException(file + ": empty");
        }
        Defaults merged = new Defaults(
                Optional.ofNullable(model.socketMode()).or(defaults::socketMode),
                Optional.ofNullable(model.socketGroup()).or(defaults::socketGroup),
                model.allowedUids() != null ? model.allowedUids() : defaults.allowedUids());
        Duration release = model.releaseTimeout() == null ? DEFAULT_RELEASE_TIMEOUT
                : Duration.ofMillis(Math.round(model.releaseTimeout() * 1000));
        if (release.isNegative()) {
            throw new IOException(file + ": release-timeout must not be negative");
        }
        List<DeviceSpec> devices = new ArrayList<>();
        List<String> problems = new ArrayList<>();
        Set<String> names = new HashSet<>();
        List<JsonNode> entries = model.devices() == null ? List.of() : model.devices();
        for (int i = 0; i < entries.size(); i++) {
            try {
                DeviceSpec spec = entry(mapper, entries.get(i), merged);
                if (!names.add(spec.name())) {
                    throw new IllegalArgumentException("device name '" + spec.name() + "' is used twice");
                }
                devices.add(spec);
            } catch (IllegalArgumentException | JsonProcessingException e) {
                String message = e instanceof JsonProcessingException j ? j.getOriginalMessage() : e.getMessage();
                problems.add(file + ": device entry " + (i + 1) + nameOf(entries.get(i)) + ": " + message);
            }
        }
        return new LauncherConfig(devices, release, problems);
    }

    private static String locationOf(JsonProcessingException e) {
        return e.getLocation() == null ? "" : " (line " + e.getLocation().getLineNr() + ")";
    }

    private static String nameOf(JsonNode entry) {
        JsonNode name = entry == null ? null : entry.get("name");
        return name != null && name.isTextual() ? " (" + name.asText() + ")" : "";
    }

    private static DeviceSpec entry(ObjectMapper mapper, JsonNode node, Defaults defaults)
            throws JsonProcessingException {
        EntryModel e = mapper.treeToValue(node, EntryModel.class);
        if (e == null) {
            throw new IllegalArgumentException("empty entry");
        }
        if (e.name() == null || !e.name().matches("[A-Za-z0-9][A-Za-z0-9._-]*")) {
            throw new IllegalArgumentException("needs a name of letters, digits, '.', '_' and '-': " + e.name());
        }
        String type = e.type();
        if (type == null && node.has("type") && node.get("type").isNull()) {
            // YAML reads a bare "type: null" as no value; as a type it can only mean the device called "null".
            type = "null";
        }
        if (type == null) {
            throw new IllegalArgumentException("needs a type");
        }
        int given = (e.socketPath() != null ? 1 : 0) + (e.fd() != null ? 1 : 0) + (e.fdName() != null ? 1 : 0);
        if (given > 1) {
            throw new IllegalArgumentException("give at most one of socket-path, fd and fd-name");
        }
        DeviceSpec.Endpoint endpoint = e.socketPath() != null ? new DeviceSpec.SocketPath(e.socketPath())
                : e.fd() != null ? new DeviceSpec.InheritedFd(e.fd())
                : e.fdName() != null ? new DeviceSpec.ActivatedByName(e.fdName())
                : new DeviceSpec.ActivatedInOrder();
        SocketPolicy policy = policy(
                Optional.ofNullable(e.socketMode()).or(defaults::socketMode),
                Optional.ofNullable(e.socketGroup()).or(defaults::socketGroup),
                e.allowedUids() != null ? e.allowedUids() : defaults.allowedUids());
        return new DeviceSpec(e.name(), type, endpoint, policy, e.settings());
    }

    /** A socket policy from the configuration's textual values ({@code "0660"}: octal). */
    public static SocketPolicy policy(Optional<String> mode, Optional<String> group, List<Integer> uids) {
        int bits = -1;
        if (mode.isPresent()) {
            try {
                bits = Integer.parseInt(mode.get().trim(), 8);
            } catch (NumberFormatException ex) {
                throw new IllegalArgumentException("socket-mode must be octal permission bits such as \"0660\": "
                        + mode.get());
            }
        }
        return new SocketPolicy(bits, group, new HashSet<>(uids));
    }
}
