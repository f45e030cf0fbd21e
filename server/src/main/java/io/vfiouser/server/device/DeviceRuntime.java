package io.vfiouser.server.device;

import io.vfiouser.device.DeviceDescription;
import io.vfiouser.device.Region;
import io.vfiouser.device.RegionBacking;
import io.vfiouser.device.VfioUserDevice;
import io.vfiouser.server.ConnectionLimits;
import io.vfiouser.server.irq.IrqGuard;
import io.vfiouser.server.pci.ConfigSpace;
import io.vfiouser.transport.linux.ErrnoException;
import java.util.Optional;
import java.util.concurrent.ScheduledExecutorService;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

/**
 * What a hosted device keeps across clients: its description and behaviour, its configuration space and the
 * shared memory of its memory-backed regions, its counters and its log budget. A connection works on it while its
 * client is attached, one client at a time, so no two connections touch it together. It never points at a
 * connection: a connection installs its configuration-space listener when its client attaches and removes it when
 * the client leaves ({@link ConfigSpace#listen}).
 */
public final class DeviceRuntime implements AutoCloseable {
    private final DeviceDescription description;
    private final VfioUserDevice device;
    private final Logger log;
    /** Every line a client can cause goes through it (see {@link RateLimitedLog}). */
    private final RateLimitedLog warnings;
    private final RegionMemory[] memory = new RegionMemory[Region.COUNT];
    private final ConfigSpace config;
    private final DeviceCounters stats;
    /** Whether a client ever tampered with an interrupt eventfd, and the off-loop signaller then: per device. */
    private final IrqGuard irqGuard;

    /**
     * @param limits    the warning budget of the device's clients
     * @param scheduler where the summary of lines over that budget is written at the end of an interval
     */
    public DeviceRuntime(DeviceDescription description, VfioUserDevice device, ConnectionLimits limits,
                  ScheduledExecutorService scheduler) throws ErrnoException {
        this.description = description;
        this.device = device;
        this.log = LogManager.getLogger("io.vfiouser.device." + description.name());
        this.warnings = new RateLimitedLog(log, description.name(), limits, scheduler);
        this.stats = new DeviceCounters();
        this.irqGuard = new IrqGuard(description.name(), stats::interruptDropped, stats::interruptFdTampered);
        try {
            for (Region r : description.regions()) {
                if (r.hasSharedMemory()) {
                    memory[r.index()] = r.backing() == Region.Backing.DEVICE
                            ? RegionMemory.adopt(description.name(), r, backing(device, r))
                            : RegionMemory.create(description.name(), r);
                }
            }
        } catch (ErrnoException | RuntimeException e) {
            close();
            throw e;
        }
        this.config = new ConfigSpace(description, null);
        if (description.regions().stream().anyMatch(Region::mappable)) {
            log.info("{}: regions with mmappable areas; QEMU then turns posted writes off for the whole device,"
                    + " so every REGION_WRITE waits for its reply and REGION_WRITE_MULTI is never sent",
                    description.name());
        }
    }

    /** Asks the device for a region's file; whatever it returns is the server's from here on. */
    private static RegionBacking backing(VfioUserDevice device, Region r) {
        RegionBacking b = device.regionBacking(r.index());
        if (b == null) {
            throw new IllegalArgumentException("region " + r.index() + " is device-backed, but the device "
                    + "supplied no file");
        }
        return b;
    }

    public DeviceDescription description() {
        return description;
    }

    public VfioUserDevice device() {
        return device;
    }

    public Logger log() {
        return log;
    }

    /** The device's budget of lines its clients can cause; a connection takes its own share. */
    public RateLimitedLog warnings() {
        return warnings;
    }

    public String name() {
        return description.name();
    }

    public ConfigSpace config() {
        return config;
    }

    public DeviceCounters stats() {
        return stats;
    }

    /** The device's interrupt guard, which every connection's interrupt table shares. */
    public IrqGuard irqGuard() {
        return irqGuard;
    }

    /** The shared memory of a memory-backed or hybrid region, if {@code index} is one. */
    public Optional<RegionMemory> memory(int index) {
        return index >= 0 && index < memory.length ? Optional.ofNullable(memory[index]) : Optional.empty();
    }

    /** The shared memory of a memory-backed or hybrid region, or {@code null} (the hot path's {@link #memory}). */
    public RegionMemory memoryOrNull(int index) {
        return index >= 0 && index < memory.length ? memory[index] : null;
    }

    @Override
    public void close() {
        warnings.flush();
        irqGuard.close();
        for (int i = 0; i < memory.length; i++) {
            if (memory[i] != null) {
                memory[i].close();
                memory[i] = null;
            }
        }
    }

}
