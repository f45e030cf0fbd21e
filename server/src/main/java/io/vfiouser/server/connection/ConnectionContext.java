package io.vfiouser.server.connection;

import io.vfiouser.device.DeviceContext;
import io.vfiouser.device.DmaSpace;
import io.vfiouser.device.Interrupts;
import java.lang.foreign.MemorySegment;
import org.apache.logging.log4j.Logger;

/** What the device gets while one client is attached ({@link io.vfiouser.device.VfioUserDevice#attached}). */
final class ConnectionContext implements DeviceContext {
    private final Connection connection;
    private final Interrupts interrupts;

    ConnectionContext(Connection connection) {
        this.connection = connection;
        this.interrupts = new CountingInterrupts(connection.irqs(), connection.runtime().stats());
    }

    @Override
    public DmaSpace dma() {
        return connection.dmaSpace();
    }

    @Override
    public Interrupts interrupts() {
        return interrupts;
    }

    @Override
    public Logger log() {
        return connection.log();
    }

    @Override
    public MemorySegment regionMemory(int region) {
        return connection.runtime().memory(region)
                .orElseThrow(() -> new IllegalArgumentException("region " + region + " is not memory-backed"))
                .segment();
    }
}
