package io.vfiouser.examples.gpio;

import io.vfiouser.device.DeviceContext;
import io.vfiouser.device.DmaSpace;
import io.vfiouser.device.Interrupts;
import io.vfiouser.device.IrqType;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

/** A device context without DMA whose interrupts record what the device did with its INTx line. */
final class FakeContext implements DeviceContext, Interrupts {
    private final List<String> events = new ArrayList<>();
    private boolean intx;

    /** "assert" / "deassert" in the order the device called them. */
    synchronized List<String> events() {
        return List.copyOf(events);
    }

    synchronized void clearEvents() {
        events.clear();
    }

    /** The INTx level the device last reported. */
    synchronized boolean intx() {
        return intx;
    }

    @Override
    public DmaSpace dma() {
        throw new UnsupportedOperationException("the PCI-IDIO-16 does no DMA");
    }

    @Override
    public Interrupts interrupts() {
        return this;
    }

    @Override
    public Logger log() {
        return LogManager.getLogger("io.vfiouser.device.gpio");
    }

    @Override
    public MemorySegment regionMemory(int region) {
        throw new IllegalArgumentException("no memory-backed region " + region);
    }

    @Override
    public synchronized void assertIntx() {
        events.add("assert");
        intx = true;
    }

    @Override
    public synchronized void deassertIntx() {
        events.add("deassert");
        intx = false;
    }

    @Override
    public synchronized void triggerMsi(int vector) {
        events.add("msi " + vector);
    }

    @Override
    public synchronized void triggerMsix(int vector) {
        events.add("msix " + vector);
    }

    @Override
    public synchronized void trigger(int vector) {
        events.add("trigger " + vector);
    }

    @Override
    public synchronized void triggerError() {
        events.add("err");
    }

    @Override
    public synchronized void triggerRequest() {
        events.add("req");
    }

    @Override
    public boolean isEnabled(IrqType type, int vector) {
        return type == IrqType.INTX && vector == 0;
    }
}
