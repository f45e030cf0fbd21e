package io.vfiouser.server.connection;

import io.vfiouser.server.device.DeviceCounters;
import io.vfiouser.device.Interrupts;
import io.vfiouser.device.IrqType;

/**
 * The interrupts a device sees: the connection's interrupt table, with every trigger the device raises counted in
 * its {@link DeviceCounters} (one atomic add, no allocation).
 */
final class CountingInterrupts implements Interrupts {
    private final Interrupts target;
    private final DeviceCounters stats;

    CountingInterrupts(Interrupts target, DeviceCounters stats) {
        this.target = target;
        this.stats = stats;
    }

    @Override
    public void assertIntx() {
        stats.interrupt();
        target.assertIntx();
    }

    @Override
    public void deassertIntx() {
        target.deassertIntx();
    }

    @Override
    public void triggerMsi(int vector) {
        stats.interrupt();
        target.triggerMsi(vector);
    }

    @Override
    public void triggerMsix(int vector) {
        stats.interrupt();
        target.triggerMsix(vector);
    }

    @Override
    public void trigger(int vector) {
        stats.interrupt();
        target.trigger(vector);
    }

    @Override
    public void triggerError() {
        stats.interrupt();
        target.triggerError();
    }

    @Override
    public void triggerRequest() {
        stats.interrupt();
        target.triggerRequest();
    }

    @Override
    public boolean isEnabled(IrqType type, int vector) {
        return target.isEnabled(type, vector);
    }
}
