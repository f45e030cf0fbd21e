package io.vfiouser.server.connection;

import io.vfiouser.device.DeviceContext;
import io.vfiouser.device.DmaRange;
import io.vfiouser.device.IoEventFd;
import io.vfiouser.device.IrqType;
import io.vfiouser.device.ResetReason;
import io.vfiouser.device.VfioUserDevice;
import java.nio.ByteBuffer;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Queue;
import java.util.concurrent.CompletableFuture;

/**
 * A device for the connection's unit tests: its regions are plain byte arrays the test can read and preset, every
 * call it gets is recorded as a short line in {@link #calls} (in call order), and a test can make the next region
 * access, quiesce or reset wait on a future it completes itself ({@link #holdNextAccess} and the like), so the order
 * of commands behind an asynchronous device is observable.
 */
final class ScriptedDevice implements VfioUserDevice {
    /** Every call, in order: {@code read 0 0x10 4}, {@code write 0 0x10 4}, {@code quiesce}, {@code reset FLR}... */
    final List<String> calls = Collections.synchronizedList(new ArrayList<>());
    /** The bytes of region {@code i} the device serves (only regions the description has are reached). */
    final byte[][] regions = new byte[9][0x1000];
    /** The context of the attached client, or null. */
    volatile DeviceContext context;
    private final Queue<CompletableFuture<Void>> heldAccesses = new ArrayDeque<>();
    private final Queue<CompletableFuture<Void>> heldQuiesces = new ArrayDeque<>();
    private final Queue<CompletableFuture<Void>> heldResets = new ArrayDeque<>();
    private RuntimeException failNextAccess;

    /** The next region access completes when the returned future does (its failure fails the access). */
    CompletableFuture<Void> holdNextAccess() {
        CompletableFuture<Void> f = new CompletableFuture<>();
        heldAccesses.add(f);
        return f;
    }

    /** The next quiesce completes when the returned future does. */
    CompletableFuture<Void> holdNextQuiesce() {
        CompletableFuture<Void> f = new CompletableFuture<>();
        heldQuiesces.add(f);
        return f;
    }

    /** The next reset completes when the returned future does. */
    CompletableFuture<Void> holdNextReset() {
        CompletableFuture<Void> f = new CompletableFuture<>();
        heldResets.add(f);
        return f;
    }

    /** The next region access throws {@code e}. */
    void failNextAccess(RuntimeException e) {
        failNextAccess = e;
    }

    /** The calls so far, then forgets them. */
    List<String> takeCalls() {
        synchronized (calls) {
            List<String> out = List.copyOf(calls);
            calls.clear();
            return out;
        }
    }

    @Override
    public CompletableFuture<Void> regionRead(int region, long offset, ByteBuffer dst) {
        calls.add("read " + region + " 0x" + Long.toHexString(offset) + " " + dst.remaining());
        RuntimeException e = failNextAccess;
        if (e != null) {
            failNextAccess = null;
            throw e;
        }
        dst.put(regions[region], (int) offset, dst.remaining());
        return next(heldAccesses);
    }

    @Override
    public CompletableFuture<Void> regionWrite(int region, long offset, ByteBuffer src) {
        calls.add("write " + region + " 0x" + Long.toHexString(offset) + " " + src.remaining());
        RuntimeException e = failNextAccess;
        if (e != null) {
            failNextAccess = null;
            throw e;
        }
        src.get(regions[region], (int) offset, src.remaining());
        return next(heldAccesses);
    }

    @Override
    public void attached(DeviceContext context) {
        this.context = context;
        calls.add("attached");
    }

    @Override
    public void detached() {
        this.context = null;
        calls.add("detached");
    }

    @Override
    public CompletableFuture<Void> reset(ResetReason reason) {
        calls.add("reset " + reason);
        return next(heldResets);
    }

    @Override
    public CompletableFuture<Void> quiesce() {
        calls.add("quiesce");
        return next(heldQuiesces);
    }

    @Override
    public void dmaMapped(DmaRange range) {
        calls.add("dmaMapped 0x" + Long.toHexString(range.address()) + " 0x" + Long.toHexString(range.size()));
    }

    @Override
    public void dmaUnmapped(DmaRange range) {
        calls.add("dmaUnmapped 0x" + Long.toHexString(range.address()) + " 0x" + Long.toHexString(range.size()));
    }

    @Override
    public void irqMaskChanged(IrqType type, int start, int count, boolean masked) {
        calls.add((masked ? "mask " : "unmask ") + type + " " + start + " " + count);
    }

    @Override
    public void ioEventFdSignalled(IoEventFd ioEventFd, long count) {
        calls.add("doorbell " + ioEventFd.region() + " 0x" + Long.toHexString(ioEventFd.offset()) + " " + count);
    }

    @Override
    public void configWritten(int offset, int length) {
        calls.add("config 0x" + Integer.toHexString(offset) + " " + length);
    }

    private static CompletableFuture<Void> next(Queue<CompletableFuture<Void>> held) {
        CompletableFuture<Void> f = held.poll();
        return f != null ? f : DONE;
    }
}
