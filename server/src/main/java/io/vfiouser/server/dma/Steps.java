package io.vfiouser.server.dma;

import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.function.IntFunction;

/**
 * Runs asynchronous steps one after another. Steps that complete at once are run in a loop, not by chaining
 * futures, so a transfer of many chunks does not grow the stack.
 */
final class Steps {
    private final int count;
    private final IntFunction<CompletableFuture<Void>> step;
    private final CompletableFuture<Void> done = new CompletableFuture<>();

    private Steps(int count, IntFunction<CompletableFuture<Void>> step) {
        this.count = count;
        this.step = step;
    }

    /**
     * Runs {@code step.apply(0)}, then {@code step.apply(1)} once the first completed, ... up to {@code count - 1};
     * the first failure (a thrown exception or a failed future) ends the sequence and fails the result.
     */
    static CompletableFuture<Void> sequentially(int count, IntFunction<CompletableFuture<Void>> step) {
        Steps steps = new Steps(count, step);
        steps.runFrom(0);
        return steps.done;
    }

    private void runFrom(int first) {
        for (int i = first; i < count; i++) {
            CompletableFuture<Void> f;
            try {
                f = step.apply(i);
            } catch (Throwable t) {
                done.completeExceptionally(t);
                return;
            }
            if (!f.isDone()) {
                int next = i + 1;
                f.whenComplete((ok, failure) -> {
                    if (failure != null) {
                        done.completeExceptionally(unwrap(failure));
                    } else {
                        runFrom(next);
                    }
                });
                return;
            }
            try {
                f.join();
            } catch (CompletionException | CancellationException failure) {
                done.completeExceptionally(unwrap(failure));
                return;
            }
        }
        done.complete(null);
    }

    /** The failure behind {@link CompletionException} wrappers. */
    static Throwable unwrap(Throwable failure) {
        Throwable t = failure;
        while (t instanceof CompletionException && t.getCause() != null) {
            t = t.getCause();
        }
        return t;
    }
}
