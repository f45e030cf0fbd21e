package io.vfiouser.server.connection;

import io.vfiouser.device.DeviceContext;
import io.vfiouser.device.DeviceScheduler;
import io.vfiouser.device.DmaSpace;
import io.vfiouser.device.Interrupts;
import io.vfiouser.server.device.DeviceRuntime;
import io.vfiouser.server.device.RegionMemory;
import io.vfiouser.server.dma.ServerDmaSpace;
import io.vfiouser.server.irq.IrqTable;
import java.lang.foreign.MemorySegment;
import org.apache.logging.log4j.Logger;

/** What the device gets while one client is attached ({@link io.vfiouser.device.VfioUserDevice#attached}). */
final class ConnectionContext implements DeviceContext {
    private final DeviceRuntime runtime;
    private final DmaSpace dma;
    private final DmaSpace dmaByMessage;
    private final Interrupts interrupts;
    private final ContextScheduler scheduler;

    ConnectionContext(DeviceRuntime runtime, ServerDmaSpace dma, IrqTable irqs, ContextScheduler scheduler) {
        this.runtime = runtime;
        this.dma = dma;
        this.dmaByMessage = dma.byMessage();
        this.interrupts = new CountingInterrupts(irqs, runtime.stats());
        this.scheduler = scheduler;
    }

    @Override
    public DeviceScheduler scheduler() {
        return scheduler;
    }

    @Override
    public DmaSpace dma() {
        return dma;
    }

    @Override
    public DmaSpace dmaByMessage() {
        return dmaByMessage;
    }

    @Override
    public Interrupts interrupts() {
        return interrupts;
    }

    @Override
    public Logger log() {
        return runtime.log();
    }

    @Override
    public MemorySegment regionMemory(int region) {
        return runtime.memory(region).filter(m -> m.region().memoryBacked())
                .orElseThrow(() -> new IllegalArgumentException("region " + region + " is not memory-backed"
                        + (runtime.memory(region).isPresent() ? " (it is hybrid: use areaMemory)" : "")))
                .segment();
    }

    @Override
    public MemorySegment areaMemory(int region, int area) {
        RegionMemory memory = runtime.memory(region)
                .orElseThrow(() -> new IllegalArgumentException("region " + region + " has no mmappable area"));
        if (area < 0 || area >= memory.areaCount()) {
            throw new IllegalArgumentException("region " + region + " has no mmappable area " + area);
        }
        return memory.area(area);
    }
}
