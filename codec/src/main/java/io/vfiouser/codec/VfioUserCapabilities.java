package io.vfiouser.codec;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.vfiouser.transport.linux.Errno;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Objects;
import java.util.OptionalInt;
import java.util.OptionalLong;

/**
 * The capabilities of a VERSION message (spec §2.3): {@code {"capabilities": {...}}} with the keys
 * {@code max_msg_fds}, {@code max_data_xfer_size}, {@code pgsizes}, {@code max_dma_maps}, {@code write_multiple},
 * {@code twin_socket} and {@code migration}.
 *
 * <p>An instance remembers which keys were given: the getters answer the given value or the default of an absent
 * key, and {@link #toJson()} writes compact JSON with the given keys only (the NUL terminator is added by
 * {@link io.vfiouser.codec.payload.VersionPayload}). Unknown keys are ignored when parsing.
 */
public final class VfioUserCapabilities {
    /** The spec's default {@code max_msg_fds}; QEMU assumes 8 when a server omits the key. */
    public static final int SPEC_DEFAULT_MAX_MSG_FDS = 1;
    /** Largest {@code max_msg_fds} accepted (libvfio-user's limit). */
    public static final int MAX_MSG_FDS_LIMIT = 1024;
    public static final long DEFAULT_MAX_DATA_XFER_SIZE = 1 << 20;
    public static final long DEFAULT_PGSIZES = 4096;
    public static final long DEFAULT_MAX_DMA_MAPS = 65535;

    public static final String MAX_MSG_FDS = "max_msg_fds";
    public static final String MAX_DATA_XFER_SIZE = "max_data_xfer_size";
    public static final String PGSIZES = "pgsizes";
    public static final String MAX_DMA_MAPS = "max_dma_maps";
    public static final String WRITE_MULTIPLE = "write_multiple";
    public static final String TWIN_SOCKET = "twin_socket";
    public static final String MIGRATION = "migration";

    private static final JsonMapper MAPPER = JsonMapper.builder()
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .build();

    /**
     * {@code twin_socket}: whether the sender supports a second socket for server-to-client commands, and in a
     * server reply the index of that socket's fd.
     */
    public record TwinSocket(boolean supported, OptionalInt fdIndex) {
        public TwinSocket {
            Objects.requireNonNull(fdIndex, "fdIndex");
        }
    }

    /** {@code migration} (not in the current spec; QEMU and libvfio-user send it): each field optional. */
    public record Migration(OptionalLong pgsize, OptionalLong maxBitmapSize) {
        public Migration {
            Objects.requireNonNull(pgsize, "pgsize");
            Objects.requireNonNull(maxBitmapSize, "maxBitmapSize");
        }

        public static Migration of(long pgsize) {
            return new Migration(OptionalLong.of(pgsize), OptionalLong.empty());
        }
    }

    private final Integer maxMsgFds;
    private final Long maxDataXferSize;
    private final Long pgsizes;
    private final Long maxDmaMaps;
    private final Boolean writeMultiple;
    private final TwinSocket twinSocket;
    private final Migration migration;
    private final int defaultMaxMsgFds;

    private VfioUserCapabilities(Builder b) {
        this.maxMsgFds = b.maxMsgFds;
        this.maxDataXferSize = b.maxDataXferSize;
        this.pgsizes = b.pgsizes;
        this.maxDmaMaps = b.maxDmaMaps;
        this.writeMultiple = b.writeMultiple;
        this.twinSocket = b.twinSocket;
        this.migration = b.migration;
        this.defaultMaxMsgFds = b.defaultMaxMsgFds;
    }

    public static Builder builder() {
        return new Builder();
    }

    /** Parses a VERSION JSON with the spec's defaults; see {@link #parse(String, int)}. */
    public static VfioUserCapabilities parse(String json) {
        return parse(json, SPEC_DEFAULT_MAX_MSG_FDS);
    }

    /**
     * Parses a VERSION JSON (without its NUL). {@code null}, blank, {@code {}} or a missing {@code capabilities}
     * object give all defaults.
     *
     * @param defaultMaxMsgFds what {@link #maxMsgFds()} answers when the key is absent
     * @throws VfioUserProtocolException ({@code EINVAL}) for unparsable JSON, a top level or
     *     {@code capabilities}, {@code twin_socket} or {@code migration} that is not an object, a number that is
     *     not a non-negative integer, {@code max_msg_fds} above 1024, or a flag that is not a boolean (spec §2.5)
     */
    public static VfioUserCapabilities parse(String json, int defaultMaxMsgFds) {
        Builder b = builder().defaultMaxMsgFds(defaultMaxMsgFds);
        if (json == null || json.isBlank()) {
            return b.build();
        }
        JsonNode root;
        try {
            root = MAPPER.readTree(json);
        } catch (JacksonException e) {
            throw new VfioUserProtocolException(Errno.EINVAL,
                    "VERSION JSON does not parse: " + e.getOriginalMessage(), e);
        }
        requireObject(root, "the VERSION JSON");
        JsonNode caps = root.get("capabilities");
        if (caps == null) {
            return b.build();
        }
        requireObject(caps, "capabilities");
        JsonNode node;
        if ((node = caps.get(MAX_MSG_FDS)) != null) {
            b.maxMsgFds((int) unsigned(node, MAX_MSG_FDS, MAX_MSG_FDS_LIMIT));
        }
        if ((node = caps.get(MAX_DATA_XFER_SIZE)) != null) {
            b.maxDataXferSize(unsigned(node, MAX_DATA_XFER_SIZE, Long.MAX_VALUE));
        }
        if ((node = caps.get(PGSIZES)) != null) {
            b.pgsizes(unsigned(node, PGSIZES, Long.MAX_VALUE));
        }
        if ((node = caps.get(MAX_DMA_MAPS)) != null) {
            b.maxDmaMaps(unsigned(node, MAX_DMA_MAPS, Long.MAX_VALUE));
        }
        if ((node = caps.get(WRITE_MULTIPLE)) != null) {
            b.writeMultiple(bool(node, WRITE_MULTIPLE));
        }
        if ((node = caps.get(TWIN_SOCKET)) != null) {
            b.twinSocket(parseTwinSocket(node));
        }
        if ((node = caps.get(MIGRATION)) != null) {
            b.migration(parseMigration(node));
        }
        return b.build();
    }

    private static TwinSocket parseTwinSocket(JsonNode node) {
        requireObject(node, TWIN_SOCKET);
        JsonNode supported = node.get("supported");
        JsonNode fdIndex = node.get("fd_index");
        return new TwinSocket(supported != null && bool(supported, "twin_socket.supported"),
                fdIndex == null ? OptionalInt.empty()
                        : OptionalInt.of((int) unsigned(fdIndex, "twin_socket.fd_index", Integer.MAX_VALUE)));
    }

    private static Migration parseMigration(JsonNode node) {
        requireObject(node, MIGRATION);
        return new Migration(optionalUnsigned(node, "pgsize"), optionalUnsigned(node, "max_bitmap_size"));
    }

    private static OptionalLong optionalUnsigned(JsonNode parent, String key) {
        JsonNode node = parent.get(key);
        return node == null
                ? OptionalLong.empty()
                : OptionalLong.of(unsigned(node, "migration." + key, Long.MAX_VALUE));
    }

    private static void requireObject(JsonNode node, String what) {
        if (!node.isObject()) {
            throw VfioUserProtocolException.invalid(what + " is not a JSON object: " + node);
        }
    }

    private static long unsigned(JsonNode node, String key, long max) {
        if (!node.isIntegralNumber() || !node.canConvertToLong() || node.longValue() < 0 || node.longValue() > max) {
            throw VfioUserProtocolException.invalid(key + " must be an integer in 0.." + max + ": " + node);
        }
        return node.longValue();
    }

    private static boolean bool(JsonNode node, String key) {
        if (!node.isBoolean()) {
            throw VfioUserProtocolException.invalid(key + " must be a boolean: " + node);
        }
        return node.booleanValue();
    }

    /** Compact JSON with the given keys only, e.g. {@code {"capabilities":{"max_msg_fds":8}}}. */
    public String toJson() {
        ObjectNode root = MAPPER.createObjectNode();
        ObjectNode caps = root.putObject("capabilities");
        if (maxMsgFds != null) {
            caps.put(MAX_MSG_FDS, maxMsgFds);
        }
        if (maxDataXferSize != null) {
            caps.put(MAX_DATA_XFER_SIZE, maxDataXferSize);
        }
        if (pgsizes != null) {
            caps.put(PGSIZES, pgsizes);
        }
        if (maxDmaMaps != null) {
            caps.put(MAX_DMA_MAPS, maxDmaMaps);
        }
        if (writeMultiple != null) {
            caps.put(WRITE_MULTIPLE, writeMultiple);
        }
        if (twinSocket != null) {
            ObjectNode twin = caps.putObject(TWIN_SOCKET).put("supported", twinSocket.supported());
            twinSocket.fdIndex().ifPresent(index -> twin.put("fd_index", index));
        }
        if (migration != null) {
            ObjectNode mig = caps.putObject(MIGRATION);
            migration.pgsize().ifPresent(v -> mig.put("pgsize", v));
            migration.maxBitmapSize().ifPresent(v -> mig.put("max_bitmap_size", v));
        }
        try {
            return MAPPER.writeValueAsString(root);
        } catch (JacksonException e) {
            throw new IllegalStateException("cannot write capabilities JSON", e);
        }
    }

    /** The keys that were given, in {@link #toJson()} order. */
    public List<String> keys() {
        List<String> keys = new ArrayList<>(7);
        addIf(keys, maxMsgFds, MAX_MSG_FDS);
        addIf(keys, maxDataXferSize, MAX_DATA_XFER_SIZE);
        addIf(keys, pgsizes, PGSIZES);
        addIf(keys, maxDmaMaps, MAX_DMA_MAPS);
        addIf(keys, writeMultiple, WRITE_MULTIPLE);
        addIf(keys, twinSocket, TWIN_SOCKET);
        addIf(keys, migration, MIGRATION);
        return Collections.unmodifiableList(keys);
    }

    private static void addIf(List<String> keys, Object value, String key) {
        if (value != null) {
            keys.add(key);
        }
    }

    /** Max fds the sender can receive in one message; the configured default (spec: 1) if absent. */
    public int maxMsgFds() {
        return maxMsgFds != null ? maxMsgFds : defaultMaxMsgFds;
    }

    /** Max bytes per REGION/DMA read or write the sender accepts; 1 MiB if absent. */
    public long maxDataXferSize() {
        return maxDataXferSize != null ? maxDataXferSize : DEFAULT_MAX_DATA_XFER_SIZE;
    }

    /** Bitmask of supported DMA page sizes; 4096 if absent. */
    public long pgsizes() {
        return pgsizes != null ? pgsizes : DEFAULT_PGSIZES;
    }

    /** Max simultaneous DMA mappings; 65535 if absent. */
    public long maxDmaMaps() {
        return maxDmaMaps != null ? maxDmaMaps : DEFAULT_MAX_DMA_MAPS;
    }

    /** Whether REGION_WRITE_MULTI is supported; false if absent. */
    public boolean writeMultiple() {
        return writeMultiple != null && writeMultiple;
    }

    /** The twin-socket capability, or {@code null} if absent. */
    public TwinSocket twinSocket() {
        return twinSocket;
    }

    /** The migration capability, or {@code null} if absent. */
    public Migration migration() {
        return migration;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof VfioUserCapabilities c
                && Objects.equals(maxMsgFds, c.maxMsgFds)
                && Objects.equals(maxDataXferSize, c.maxDataXferSize)
                && Objects.equals(pgsizes, c.pgsizes)
                && Objects.equals(maxDmaMaps, c.maxDmaMaps)
                && Objects.equals(writeMultiple, c.writeMultiple)
                && Objects.equals(twinSocket, c.twinSocket)
                && Objects.equals(migration, c.migration)
                && defaultMaxMsgFds == c.defaultMaxMsgFds;
    }

    @Override
    public int hashCode() {
        return Objects.hash(maxMsgFds, maxDataXferSize, pgsizes, maxDmaMaps, writeMultiple, twinSocket, migration,
                defaultMaxMsgFds);
    }

    @Override
    public String toString() {
        return "VfioUserCapabilities" + toJson();
    }

    /** Builds capabilities with exactly the keys set; values are checked as {@link #parse(String, int)} would. */
    public static final class Builder {
        private Integer maxMsgFds;
        private Long maxDataXferSize;
        private Long pgsizes;
        private Long maxDmaMaps;
        private Boolean writeMultiple;
        private TwinSocket twinSocket;
        private Migration migration;
        private int defaultMaxMsgFds = SPEC_DEFAULT_MAX_MSG_FDS;

        private Builder() {
        }

        public Builder maxMsgFds(int value) {
            this.maxMsgFds = checkMaxMsgFds(value);
            return this;
        }

        public Builder maxDataXferSize(long value) {
            this.maxDataXferSize = checkUnsigned(value, MAX_DATA_XFER_SIZE);
            return this;
        }

        public Builder pgsizes(long value) {
            this.pgsizes = checkUnsigned(value, PGSIZES);
            return this;
        }

        public Builder maxDmaMaps(long value) {
            this.maxDmaMaps = checkUnsigned(value, MAX_DMA_MAPS);
            return this;
        }

        public Builder writeMultiple(boolean value) {
            this.writeMultiple = value;
            return this;
        }

        public Builder twinSocket(TwinSocket value) {
            this.twinSocket = Objects.requireNonNull(value, TWIN_SOCKET);
            return this;
        }

        public Builder migration(Migration value) {
            this.migration = Objects.requireNonNull(value, MIGRATION);
            return this;
        }

        /** What {@link #maxMsgFds()} answers when the key is not set (spec: 1; QEMU assumes 8). */
        public Builder defaultMaxMsgFds(int value) {
            this.defaultMaxMsgFds = checkMaxMsgFds(value);
            return this;
        }

        public VfioUserCapabilities build() {
            return new VfioUserCapabilities(this);
        }

        private static int checkMaxMsgFds(int value) {
            if (value < 0 || value > MAX_MSG_FDS_LIMIT) {
                throw new IllegalArgumentException(MAX_MSG_FDS + " must be 0.." + MAX_MSG_FDS_LIMIT + ": " + value);
            }
            return value;
        }

        private static long checkUnsigned(long value, String key) {
            if (value < 0) {
                throw new IllegalArgumentException(key + " must not be negative: " + value);
            }
            return value;
        }
    }
}
