package io.vfiouser.server.connection;

import io.vfiouser.device.RegionBacking;
import io.vfiouser.device.VfioUserDevice;
import java.util.HashMap;
import java.util.Map;
import java.util.function.IntFunction;

/**
 * A {@link ScriptedDevice} that also supplies the files behind its device-backed regions
 * ({@link VfioUserDevice#regionBacking}): per region index, what {@link #supply} was given, which may also throw.
 * Records each request as {@code backing N} in the scripted device's calls.
 */
final class BackingDevice extends ForwardingDevice {
    private final Map<Integer, IntFunction<RegionBacking>> backings = new HashMap<>();

    BackingDevice() {
        super(new ScriptedDevice());
    }

    /** Region {@code index}'s backing comes from {@code supplier} (given the index) when the device is hosted. */
    BackingDevice supply(int index, IntFunction<RegionBacking> supplier) {
        backings.put(index, supplier);
        return this;
    }

    @Override
    public RegionBacking regionBacking(int region) {
        scripted.calls.add("backing " + region);
        IntFunction<RegionBacking> s = backings.get(region);
        return s == null ? super.regionBacking(region) : s.apply(region);
    }
}
