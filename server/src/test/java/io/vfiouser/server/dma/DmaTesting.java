package io.vfiouser.server.dma;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.fail;

import io.vfiouser.codec.VfioUserProtocolException;
import io.vfiouser.device.DmaException;
import io.vfiouser.device.DmaRange;
import io.vfiouser.transport.linux.ErrnoException;
import io.vfiouser.transport.linux.Linux;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/** Helpers shared by the DMA tests. */
final class DmaTesting {
    static final int READ = 1;
    static final int WRITE = 2;
    static final int RW = READ | WRITE;
    static final long TIMEOUT_SECONDS = 20;

    private DmaTesting() {
    }

    /** A memfd of {@code size} bytes whose byte {@code i} is {@code pattern(i)}. */
    static int memfd(long size) throws ErrnoException {
        int fd = Linux.memfdCreate("dma-test");
        Linux.ftruncate(fd, size);
        try (Arena arena = Arena.ofShared()) {
            MemorySegment m = Linux.mmap(fd, 0, size, Linux.PROT_READ | Linux.PROT_WRITE, arena);
            byte[] bytes = new byte[(int) size];
            for (int i = 0; i < bytes.length; i++) {
                bytes[i] = pattern(i);
            }
            MemorySegment.copy(MemorySegment.ofArray(bytes), 0, m, 0, size);
        }
        return fd;
    }

    static byte pattern(long fileOffset) {
        return (byte) (fileOffset * 7 + (fileOffset >>> 8) * 13 + 1);
    }

    /** The errno a failed table future carries; fails the test if it succeeded or failed otherwise. */
    static int errnoOf(CompletableFuture<?> future) throws InterruptedException, TimeoutException {
        try {
            future.get(TIMEOUT_SECONDS, TimeUnit.SECONDS);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof VfioUserProtocolException p) {
                return p.errno();
            }
            if (e.getCause() instanceof DmaException d) {
                return d.errno();
            }
            throw new AssertionError("failed with an unexpected exception", e.getCause());
        }
        return fail("succeeded, expected a failure");
    }

    static void await(CompletableFuture<?> future) throws Exception {
        future.get(TIMEOUT_SECONDS, TimeUnit.SECONDS);
    }

    static void assertClosed(int fd) {
        assertThat(io.vfiouser.transport.testing.FdCount.isOpen(fd)).as("fd %d open", fd).isFalse();
    }

    /** A listener that records what it is told, in order. */
    static final class RecordingListener implements DmaTable.Listener {
        final List<String> events = new ArrayList<>();
        final List<DmaRange> mapped = new ArrayList<>();
        final List<DmaRange> unmapped = new ArrayList<>();

        @Override
        public synchronized void mapped(DmaRange range) {
            mapped.add(range);
            events.add("mapped " + Long.toHexString(range.address()));
        }

        @Override
        public synchronized void unmapped(DmaRange range) {
            unmapped.add(range);
            events.add("unmapped " + Long.toHexString(range.address()));
        }

        synchronized void event(String event) {
            events.add(event);
        }

        synchronized List<String> events() {
            return new ArrayList<>(events);
        }

        synchronized List<DmaRange> mapped() {
            return new ArrayList<>(mapped);
        }

        synchronized List<DmaRange> unmapped() {
            return new ArrayList<>(unmapped);
        }
    }
}
