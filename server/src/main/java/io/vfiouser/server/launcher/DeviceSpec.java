package io.vfiouser.server.launcher;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import io.vfiouser.server.SocketPolicy;
import java.util.Objects;

/**
 * One device as configured, with the file's defaults applied: what it is, where it listens, who may connect, and
 * its own settings (bound to its type's settings class when it starts). Two specs are equal when nothing about the
 * device differs, which is how a reload tells an unchanged device, left alone, from a changed one, restarted.
 *
 * @param name     unique in the server; the device's name in logs ({@code io.vfiouser.device.<name>}), JMX and
 *                 statistics
 * @param type     a device type of a loaded plugin
 * @param endpoint where the device listens
 * @param policy   the socket file's mode and group, and the accepted peer uids
 * @param settings the type's settings, a JSON object
 */
public record DeviceSpec(String name, String type, Endpoint endpoint, SocketPolicy policy, JsonNode settings) {
    public DeviceSpec {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(type, "type");
        Objects.requireNonNull(endpoint, "endpoint");
        Objects.requireNonNull(policy, "policy");
        settings = settings == null || settings.isNull() ? JsonNodeFactory.instance.objectNode() : settings;
        if (!settings.isObject()) {
            throw new IllegalArgumentException("device " + name + ": settings must be an object, not " + settings);
        }
    }

    /** Where a device listens. */
    public sealed interface Endpoint {
    }

    /** A socket file the server creates (and removes when the device stops). */
    public record SocketPath(String path) implements Endpoint {
    }

    /** An inherited listening socket, {@code --fd=N} or {@code fd: N}. */
    public record InheritedFd(int fd) implements Endpoint {
    }

    /** The socket-activated socket of this name ({@code LISTEN_FDNAMES}). */
    public record ActivatedByName(String name) implements Endpoint {
    }

    /** The next socket-activated socket not claimed by name, in {@code LISTEN_FDS} order. */
    public record ActivatedInOrder() implements Endpoint {
    }
}
