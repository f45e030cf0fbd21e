package io.vfiouser.examples.nulldev;

import io.vfiouser.device.DeviceContext;
import io.vfiouser.device.DmaSpace;
import io.vfiouser.device.Interrupts;
import io.vfiouser.device.IrqType;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

/** A device context over a given DMA space whose interrupts record the MSI-X vectors fired. */
final class FakeContext implements DeviceContext, Interrupts {
    private final DmaSpace dma;
    private final List<String> events = new ArrayList<>();

    FakeContext(DmaSpace dma) {
        this.dma = dma;
    }

    /** "msix n", "assert", ... in call order. */
    synchronized List<String> events() {
        return List.copyOf(events);
    }

    @Override
    public DmaSpace dma() {
        return dma;
    }

    @Override
    public Interrupts interrupts() {
        return this;
    }

    @Override
    public Logger log() {
        return LogManager.getLogger("io.vfiouser.device.null");
    }

    @Override
    public MemorySegment regionMemory(int region) {
        throw new IllegalArgumentException("not used by these tests: region " + region);
    }

    @Override
    public synchronized void assertIntx() {
        events.add("assert");
    }

    @Override
    public synchronized void deassertIntx() {
        events.add("deassert");
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
        return type == IrqType.MSIX && vector >= 0 && vector < NullDevice.MSIX_VECTORS;
    }
}
