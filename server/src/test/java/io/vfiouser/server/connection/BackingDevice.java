package io.vfiouser.server.connection;

import io.vfiouser.device.DeviceContext;
import io.vfiouser.device.RegionBacking;
import io.vfiouser.device.VfioUserDevice;
import java.nio.ByteBuffer;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.function.IntFunction;

/**
 * A {@link ScriptedDevice} that also supplies the files behind its device-backed regions
 * ({@link VfioUserDevice#regionBacking}): per region index, what {@link #supply} was given, which may also throw.
 * Records each request as {@code backing N} in the scripted device's calls.
 */
final class BackingDevice implements VfioUserDevice {
    final ScriptedDevice scripted = new ScriptedDevice();
    private final Map<Integer, IntFunction<RegionBacking>> backings = new HashMap<>();

    /** Region {@code index}'s backing comes from {@code supplier} (given the index) when the device is hosted. */
    BackingDevice supply(int index, IntFunction<RegionBacking> supplier) {
        backings.put(index, supplier);
        return this;
    }

    @Override
    public RegionBacking regionBacking(int region) {
        scripted.calls.add("backing " + region);
        IntFunction<RegionBacking> s = backings.get(region);
        return s == null ? VfioUserDevice.super.regionBacking(region) : s.apply(region);
    }

    @Override
    public CompletableFuture<Void> regionRead(int region, long offset, ByteBuffer dst) {
        return scripted.regionRead(region, offset, dst);
    }

    @Override
    public CompletableFuture<Void> regionWrite(int region, long offset, ByteBuffer src) {
        return scripted.regionWrite(region, offset, src);
    }

    @Override
    public void attached(DeviceContext context) {
        scripted.attached(context);
    }

    @Override
    public void detached() {
        scripted.detached();
    }

    @Override
    public CompletableFuture<Void> reset(io.vfiouser.device.ResetReason reason) {
        return scripted.reset(reason);
    }

    @Override
    public CompletableFuture<Void> quiesce() {
        return scripted.quiesce();
    }
}
