package io.vfiouser.transport.testing;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/**
 * The fds of the kinds this project creates and receives (sockets, eventfds, epoll and timer fds, memfds) that the
 * process has open, read from {@code /proc/self/fd}. Files the JVM opens by itself (jars, /dev/urandom) are not
 * counted, so a test can compare counts before and after without noise.
 */
public final class FdCount {
    private FdCount() {
    }

    public static long now() {
        try (var entries = Files.list(Path.of("/proc/self/fd"))) {
            return entries.filter(FdCount::counted).count();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static boolean counted(Path fd) {
        try {
            String target = Files.readSymbolicLink(fd).toString();
            return target.startsWith("socket:") || target.startsWith("anon_inode:") || target.startsWith("/memfd:");
        } catch (IOException e) {
            return false; // closed while listing
        }
    }

    public static boolean isOpen(int fd) {
        return Files.exists(Path.of("/proc/self/fd/" + fd), LinkOption.NOFOLLOW_LINKS);
    }

    /**
     * Waits (up to 20 s) until the process has at most {@code limit} fds open, as closes on event loops finish,
     * and fails the test if it never does.
     */
    public static void awaitAtMost(long limit) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        long n;
        while ((n = now()) > limit && System.nanoTime() < deadline) {
            Thread.sleep(5);
        }
        assertThat(n).as("open fds (leaked fds?) %s", describe()).isLessThanOrEqualTo(limit);
    }

    /** Every open fd with what it points at, for failure messages. */
    public static String describe() {
        StringBuilder out = new StringBuilder();
        try (var entries = Files.list(Path.of("/proc/self/fd"))) {
            entries.sorted().forEach(p -> {
                try {
                    out.append('\n').append(p.getFileName()).append(" -> ").append(Files.readSymbolicLink(p));
                } catch (IOException e) {
                    out.append('\n').append(p.getFileName()).append(" (gone)");
                }
            });
        } catch (IOException e) {
            out.append(e);
        }
        return out.toString();
    }
}
