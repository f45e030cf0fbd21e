package io.vfiouser.server.dma;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/**
 * Which file an fd refers to ({@code st_dev}, {@code st_ino}), to recognise an identical re-map that arrives with a
 * new fd for the same file. Read with {@code stat} on {@code /proc/self/fd/N} (which follows the magic link to the
 * open file, so it works for memfds too); an identity that could not be read matches nothing.
 */
record FileIdentity(long device, long inode, boolean known) {
    private static final FileIdentity UNKNOWN = new FileIdentity(0, 0, false);

    static FileIdentity of(int fd) {
        try {
            Map<String, Object> attributes = Files.readAttributes(Path.of("/proc/self/fd/" + fd), "unix:dev,ino");
            return new FileIdentity((Long) attributes.get("dev"), (Long) attributes.get("ino"), true);
        } catch (IOException | UnsupportedOperationException | IllegalArgumentException | ClassCastException e) {
            return UNKNOWN;
        }
    }

    /** Whether both identities are known and name the same file. */
    boolean sameFile(FileIdentity other) {
        return known && other != null && other.known && device == other.device && inode == other.inode;
    }
}
