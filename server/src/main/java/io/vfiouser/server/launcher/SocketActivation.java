package io.vfiouser.server.launcher;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Listening sockets passed by systemd's socket activation (sd_listen_fds(3)): {@code LISTEN_PID} names this
 * process, {@code LISTEN_FDS} counts the fds, which start at 3, and {@code LISTEN_FDNAMES} optionally names them
 * (colon-separated, from the socket units' {@code FileDescriptorName=}). Anything else (no variables, or a
 * {@code LISTEN_PID} of another process, which inherited the variables by mistake) means no activation.
 */
public record SocketActivation(List<Socket> sockets) {
    /** The first fd passed by the protocol. */
    public static final int FIRST_FD = 3;

    /** One passed socket: its fd and its name ({@code "unknown"} when the manager gave none, as systemd does). */
    public record Socket(int fd, String name) {
    }

    public static final SocketActivation NONE = new SocketActivation(List.of());

    public SocketActivation {
        sockets = List.copyOf(sockets);
    }

    public static SocketActivation fromEnvironment() {
        return from(System.getenv(), ProcessHandle.current().pid());
    }

    /** Reads the protocol's variables from {@code env} for the process {@code pid}. */
    public static SocketActivation from(Map<String, String> env, long pid) {
        String listenPid = env.get("LISTEN_PID");
        String listenFds = env.get("LISTEN_FDS");
        if (listenPid == null || listenFds == null) {
            return NONE;
        }
        int count;
        try {
            if (Long.parseLong(listenPid.trim()) != pid) {
                return NONE;
            }
            count = Integer.parseInt(listenFds.trim());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("socket activation: LISTEN_PID=" + listenPid + " LISTEN_FDS="
                    + listenFds + " are not numbers");
        }
        if (count < 0 || count > 1024) {
            throw new IllegalArgumentException("socket activation: LISTEN_FDS=" + count);
        }
        String names = env.get("LISTEN_FDNAMES");
        String[] split = names == null || names.isEmpty() ? new String[0] : names.split(":", -1);
        List<Socket> sockets = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            sockets.add(new Socket(FIRST_FD + i, i < split.length && !split[i].isEmpty() ? split[i] : "unknown"));
        }
        return new SocketActivation(sockets);
    }

    public boolean isEmpty() {
        return sockets.isEmpty();
    }
}
