package io.vfiouser.server;

import io.vfiouser.device.DeviceDescription;
import io.vfiouser.device.Region;
import io.vfiouser.device.VfioUserDevice;
import io.vfiouser.server.irq.IrqGuard;
import io.vfiouser.server.pci.ConfigSpace;
import io.vfiouser.transport.linux.ErrnoException;
import java.util.Optional;
import java.util.concurrent.ScheduledExecutorService;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

/**
 * What a hosted device keeps across clients: its description and behaviour, its configuration space and the
 * shared memory of its memory-backed regions. A connection's {@link VfioUserSession} works on it while attached;
 * one client at a time, so no two sessions touch it together.
 */
final class DeviceRuntime implements AutoCloseable {
    private final DeviceDescription description;
    private final VfioUserDevice device;
    private final Logger log;
    /** Every line a client can cause goes through it (see {@link RateLimitedLog}). */
    private final RateLimitedLog warnings;
    private final RegionMemory[] memory = new RegionMemory[Region.COUNT];
    private final ConfigSpace config;
    private final DeviceStats stats;
    /** Whether a client ever tampered with an interrupt eventfd, and the off-loop signaller then: per device. */
    private final IrqGuard irqGuard;
    /** The session attached now, which receives the configuration-space events; null between clients. */
    private volatile VfioUserSession session;

    /**
     * @param limits    the warning budget of the device's clients
     * @param scheduler where the summary of lines over that budget is written at the end of an interval
     */
    DeviceRuntime(DeviceDescription description, VfioUserDevice device, ConnectionLimits limits,
                  ScheduledExecutorService scheduler) throws ErrnoException {
        this.description = description;
        this.device = device;
        this.log = LogManager.getLogger("io.vfiouser.device." + description.name());
        this.warnings = new RateLimitedLog(log, description.name(), limits, scheduler);
        this.stats = new DeviceStats(description.name());
        this.irqGuard = new IrqGuard(description.name(), stats::interruptDropped, stats::interruptFdTampered);
        try {
            for (Region r : description.regions()) {
                if (r.memoryBacked()) {
                    memory[r.index()] = new RegionMemory(description.name(), r);
                }
            }
        } catch (ErrnoException | RuntimeException e) {
            close();
            throw e;
        }
        this.config = new ConfigSpace(description, new ConfigEvents());
    }

    DeviceDescription description() {
        return description;
    }

    VfioUserDevice device() {
        return device;
    }

    Logger log() {
        return log;
    }

    /** The device's budget of lines its clients can cause; a session takes a per-connection share. */
    RateLimitedLog warnings() {
        return warnings;
    }

    String name() {
        return description.name();
    }

    ConfigSpace config() {
        return config;
    }

    DeviceStats stats() {
        return stats;
    }

    /** The device's interrupt guard, which every session's interrupt table shares. */
    IrqGuard irqGuard() {
        return irqGuard;
    }

    /**
     * Fires the REQ interrupt of the attached client, on its event loop, if it registered an eventfd for it:
     * the protocol's way to ask a client to let go of the device. Returns whether it was fired.
     */
    boolean requestRelease() {
        VfioUserSession s = session;
        if (s == null || !s.requestRelease()) {
            return false;
        }
        return true;
    }

    /** The shared memory of a memory-backed region, if {@code index} is one. */
    Optional<RegionMemory> memory(int index) {
        return index >= 0 && index < memory.length ? Optional.ofNullable(memory[index]) : Optional.empty();
    }

    /** The shared memory of a memory-backed region, or {@code null} (the hot path's variant of {@link #memory}). */
    RegionMemory memoryOrNull(int index) {
        return index >= 0 && index < memory.length ? memory[index] : null;
    }

    void attach(VfioUserSession s) {
        session = s;
    }

    void detach(VfioUserSession s) {
        if (session == s) {
            session = null;
        }
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

    /** Forwards what the guest does to configuration space to the attached session's interrupt state. */
    private final class ConfigEvents implements ConfigSpace.Listener {
        @Override
        public void flrRequested() {
            VfioUserSession s = session;
            if (s != null) {
                s.flrRequested();
            }
        }

        @Override
        public void commandChanged(int oldValue, int newValue) {
            VfioUserSession s = session;
            if (s != null) {
                s.irqs().setIntxDisabled(config.intxDisabled());
            }
        }

        @Override
        public void msiControlChanged(boolean enabled, int enabledVectors) {
            VfioUserSession s = session;
            if (s != null) {
                s.irqs().setMsiControl(enabled, enabledVectors);
            }
        }

        @Override
        public void msixControlChanged(boolean enabled, boolean functionMasked) {
            VfioUserSession s = session;
            if (s != null) {
                s.irqs().setMsixControl(enabled, functionMasked);
            }
        }

        @Override
        public void msiMaskChanged(int mask) {
            VfioUserSession s = session;
            if (s != null) {
                s.irqs().setMsiMask(mask);
            }
        }
    }
}
