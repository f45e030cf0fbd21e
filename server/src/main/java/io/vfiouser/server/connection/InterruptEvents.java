package io.vfiouser.server.connection;

import io.netty.channel.Channel;
import io.vfiouser.device.IrqType;
import io.vfiouser.server.device.DeviceRuntime;
import io.vfiouser.server.device.RateLimitedLog;
import io.vfiouser.server.irq.IrqTable;
import io.vfiouser.transport.linux.ErrnoException;
import io.vfiouser.transport.linux.Linux;

/**
 * What a connection's interrupt table reports: mask changes go to the device; the INTx resample eventfd (which QEMU
 * registers under KVM with SET_IRQS INTx UNMASK+EVENTFD, and signals when the guest has serviced the line) is
 * watched, each signal an unmask, so a still-raised line fires again; a client that broke the eventfd contract is
 * disconnected.
 */
final class InterruptEvents implements IrqTable.Listener {
    private final DeviceRuntime runtime;
    private final RateLimitedLog.Connection warnings;
    private final EventFdWatchers watchers;
    private final Channel channel;
    private IrqTable irqs;
    /** The watched resample eventfd (a duplicate of the table's), or null. */
    private EventFdWatchers.Watch resample;

    InterruptEvents(DeviceRuntime runtime, RateLimitedLog.Connection warnings, EventFdWatchers watchers,
                    Channel channel) {
        this.runtime = runtime;
        this.warnings = warnings;
        this.watchers = watchers;
        this.channel = channel;
    }

    /** The table reporting here (built with this listener, so given afterwards). */
    void reportsFor(IrqTable table) {
        this.irqs = table;
    }

    @Override
    public void irqMaskChanged(IrqType type, int start, int count, boolean masked) {
        try {
            runtime.device().irqMaskChanged(type, start, count, masked);
        } catch (RuntimeException e) {
            warnings.warn("{}: irqMaskChanged() failed", runtime.name(), e);
        }
    }

    @Override
    public void notifierChanged(IrqType type, int vector, boolean unmask, int oldFd, int newFd) {
        if (type != IrqType.INTX || !unmask) {
            return;
        }
        stopResample();
        if (newFd >= 0) {
            try {
                resample = watchers.watch(Linux.dup(newFd), n -> irqs.mask(IrqType.INTX, 0, 1, false));
            } catch (ErrnoException e) {
                warnings.warn("{}: cannot watch the INTx resample eventfd: {}", runtime.name(), e.getMessage());
            }
        }
    }

    /**
     * The client made an interrupt eventfd blocking again and filled it, which held a signal until the watchdog
     * released it: it broke the fd contract, so it goes. Called on the signalling thread (an event loop or a device
     * thread), under the table's read lock: the close runs as a task of the event loop, after the lock is released,
     * since the teardown it starts clears the table.
     */
    @Override
    public void clientFdTampered(IrqType type, int vector) {
        runtime.log().warn("{}: the client made its {} vector {} eventfd blocking again and filled it; closing the "
                + "connection (this device's interrupts leave the event loops from now on)", runtime.name(), type,
                vector);
        channel.eventLoop().execute(channel::close);
    }

    /** Stops watching the resample eventfd (the client left, or registered another). */
    void stopResample() {
        if (resample != null) {
            resample.close();
            resample = null;
        }
    }
}
