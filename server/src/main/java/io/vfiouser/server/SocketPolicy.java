package io.vfiouser.server;

import java.util.Objects;
import java.util.Optional;
import java.util.Set;

/**
 * Who may reach one device's socket: the socket file's permission bits and group, and optionally the peer uids
 * accepted on it ({@code SO_PEERCRED} at accept time; a connection from any other uid is refused and logged).
 * The file's mode and group are the first fence; the uid list holds even where the socket was handed in (an
 * inherited or socket-activated fd, whose file the server did not create).
 *
 * @param fileMode    permission bits of a socket file the server creates, or -1 for the server's
 *                    {@link ServerOptions#socketFileMode()} (0600 by default)
 * @param group       the group the socket file is given (name or number), if any
 * @param allowedUids the peer uids accepted; empty accepts every peer the file's permissions let in
 */
public record SocketPolicy(int fileMode, Optional<String> group, Set<Integer> allowedUids) {
    /** The server's default mode, the creating user's group, any peer. */
    public static final SocketPolicy DEFAULT = new SocketPolicy(-1, Optional.empty(), Set.of());

    public SocketPolicy {
        Objects.requireNonNull(group, "group");
        allowedUids = Set.copyOf(allowedUids);
        if (fileMode != -1 && (fileMode & ~0777) != 0) {
            throw new IllegalArgumentException("socket file mode must be permission bits: 0" + Integer.toOctalString(fileMode));
        }
    }

    /** Whether a peer with {@code uid} may talk to the device. */
    public boolean allows(int uid) {
        return allowedUids.isEmpty() || allowedUids.contains(uid);
    }
}
