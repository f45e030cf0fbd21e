package io.vfiouser.transport.testing;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/** The fds this process has open, read from {@code /proc/self/fd}. */
public final class FdCount {
    private FdCount() {
    }

    public static long now() {
        try (var entries = Files.list(Path.of("/proc/self/fd"))) {
            return entries.count();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
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
        assertThat(n).as("open fds (leaked fds?)").isLessThanOrEqualTo(limit);
    }
}
