package io.vfiouser.examples;

import io.vfiouser.device.DeviceContext;
import io.vfiouser.device.DmaSpace;
import io.vfiouser.device.Interrupts;
import io.vfiouser.device.IrqType;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

/**
 * A {@link DeviceContext} for testing a device on its own, without a server or a client: what the device does
 * towards the client is recorded for the test to assert on, and what the client would provide is given by the test.
 * One fake for all the example devices' tests, so that each test states only what differs (its DMA space, the
 * vectors its client enabled); a later device author's test kit can grow from it.
 *
 * <ul>
 *   <li>Interrupts are recorded as events, in call order: {@code "assert"}, {@code "deassert"}, {@code "msi n"},
 *       {@code "msix n"}, {@code "trigger n"}, {@code "err"}, {@code "req"}. The INTx level is kept too. Nothing is
 *       dropped or left pending: the fake records what the device asked for, not what a client would see.</li>
 *   <li>{@link Interrupts#isEnabled} answers from the vectors the test {@linkplain #enable enabled}, as a client's
 *       DEVICE_SET_IRQS would have: none at first.</li>
 *   <li>{@link #dma()} is the guest memory the test gave (a fake memory), or fails for a device that does no DMA.</li>
 *   <li>{@link #log()} is the logger the server gives the device, {@code io.vfiouser.device.<name>}.</li>
 *   <li>{@link #regionMemory} and {@link #areaMemory} fail: no region has shared memory here.</li>
 * </ul>
 *
 * Thread-safe: a device may signal from its own threads while the test reads the events.
 */
public final class FakeDeviceContext implements DeviceContext, Interrupts {
    private final String name;
    private final DmaSpace dma;
    private final List<String> events = new ArrayList<>();
    private final Map<IrqType, Integer> enabledVectors = new EnumMap<>(IrqType.class);
    private boolean intx;

    /** A context for a device named {@code name} that does no DMA. */
    public FakeDeviceContext(String name) {
        this(name, null);
    }

    /** A context for a device named {@code name} whose guest memory is {@code dma} ({@code null}: no DMA). */
    public FakeDeviceContext(String name, DmaSpace dma) {
        this.name = name;
        this.dma = dma;
    }

    /** Enables vectors {@code 0..count-1} of {@code type}, as a client's DEVICE_SET_IRQS would; returns this. */
    public synchronized FakeDeviceContext enable(IrqType type, int count) {
        enabledVectors.put(type, count);
        return this;
    }

    /** The interrupt events, in the order the device called them. */
    public synchronized List<String> events() {
        return List.copyOf(events);
    }

    /** Forgets the events so far (the INTx level stays). */
    public synchronized void clearEvents() {
        events.clear();
    }

    /** The INTx level the device last set. */
    public synchronized boolean intx() {
        return intx;
    }

    @Override
    public DmaSpace dma() {
        if (dma == null) {
            throw new UnsupportedOperationException("device " + name + " was given no DMA space");
        }
        return dma;
    }

    @Override
    public Interrupts interrupts() {
        return this;
    }

    @Override
    public Logger log() {
        return LogManager.getLogger("io.vfiouser.device." + name);
    }

    @Override
    public MemorySegment regionMemory(int region) {
        throw new IllegalArgumentException("no memory-backed region " + region + " in this fake");
    }

    @Override
    public MemorySegment areaMemory(int region, int area) {
        throw new IllegalArgumentException("no mmappable area in this fake: region " + region + " area " + area);
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
    public synchronized boolean isEnabled(IrqType type, int vector) {
        return vector >= 0 && vector < enabledVectors.getOrDefault(type, 0);
    }
}
