package io.vfiouser.transport.linux;

/** The peer of a unix socket as {@code SO_PEERCRED} reports it. */
public record PeerCredentials(int pid, int uid, int gid) {
}
