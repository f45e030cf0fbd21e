package io.vfiouser.server.dma;

import io.vfiouser.device.Access;
import java.nio.ByteBuffer;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;

/**
 * A client that serves DMA messages from a byte array standing for its memory at {@code [base, base + size)}, and
 * records every message. Replies complete at once, or only when the test calls {@link #completeNext()} when
 * {@link #manual} is set. A failure can be planted for the n-th message.
 */
final class FakeMessenger implements DmaMessenger {
    record Call(Access access, long address, int length) {
    }

    final long base;
    final byte[] memory;
    volatile int maxTransferSize;
    volatile boolean manual;
    private final List<Call> calls = new ArrayList<>();
    private final Map<Integer, Throwable> failures = new HashMap<>();
    private final Map<Integer, RuntimeException> throwsAt = new HashMap<>();
    private final Deque<Runnable> pending = new ArrayDeque<>();
    private final List<String> violations = new ArrayList<>();

    FakeMessenger(long base, int size, int maxTransferSize) {
        this.base = base;
        this.memory = new byte[size];
        for (int i = 0; i < size; i++) {
            memory[i] = (byte) (i * 31 + 5);
        }
        this.maxTransferSize = maxTransferSize;
    }

    /** The {@code n}-th message (from 0) fails with {@code failure}. */
    synchronized void failAt(int n, Throwable failure) {
        failures.put(n, failure);
    }

    /** The {@code n}-th call throws {@code e} instead of returning a future. */
    synchronized void throwAt(int n, RuntimeException e) {
        throwsAt.put(n, e);
    }

    synchronized List<Call> calls() {
        return new ArrayList<>(calls);
    }

    synchronized List<String> violations() {
        return new ArrayList<>(violations);
    }

    synchronized int pendingCount() {
        return pending.size();
    }

    /** Completes the oldest message waiting for its reply (manual mode); false if none waits. */
    boolean completeNext() {
        Runnable r;
        synchronized (this) {
            r = pending.pollFirst();
        }
        if (r == null) {
            return false;
        }
        r.run();
        return true;
    }

    @Override
    public CompletableFuture<Void> read(long address, ByteBuffer dst) {
        return message(Access.READ, address, dst);
    }

    @Override
    public CompletableFuture<Void> write(long address, ByteBuffer src) {
        return message(Access.WRITE, address, src);
    }

    @Override
    public int maxTransferSize() {
        return maxTransferSize;
    }

    private CompletableFuture<Void> message(Access access, long address, ByteBuffer buffer) {
        int length = buffer.remaining();
        Throwable failure;
        synchronized (this) {
            int n = calls.size();
            calls.add(new Call(access, address, length));
            if (length > maxTransferSize) {
                violations.add("message of " + length + " bytes, max " + maxTransferSize);
            }
            if (length == 0) {
                violations.add("empty message");
            }
            RuntimeException e = throwsAt.get(n);
            if (e != null) {
                throw e;
            }
            failure = failures.get(n);
        }
        CompletableFuture<Void> reply = new CompletableFuture<>();
        Runnable serve = () -> {
            if (failure != null) {
                reply.completeExceptionally(failure);
                return;
            }
            long offset = address - base;
            if (offset < 0 || offset + length > memory.length) {
                reply.completeExceptionally(new IllegalStateException("outside the client's memory"));
                return;
            }
            switch (access) {
                case READ -> buffer.put(memory, (int) offset, length);
                case WRITE -> buffer.get(memory, (int) offset, length);
            }
            reply.complete(null);
        };
        if (manual) {
            synchronized (this) {
                pending.addLast(serve);
            }
        } else {
            serve.run();
        }
        return reply;
    }
}
