package io.vfiouser.server;

import io.vfiouser.device.DeviceContext;
import io.vfiouser.device.DmaSpace;
import io.vfiouser.device.Interrupts;
import java.lang.foreign.MemorySegment;
import org.apache.logging.log4j.Logger;

/** What the device gets while one client is attached. */
final class SessionContext implements DeviceContext {
    private final VfioUserSession session;

    SessionContext(VfioUserSession session) {
        this.session = session;
    }

    @Override
    public DmaSpace dma() {
        return session.dmaSpace();
    }

    @Override
    public Interrupts interrupts() {
        return session.irqs();
    }

    @Override
    public Logger log() {
        return session.log();
    }

    @Override
    public MemorySegment regionMemory(int region) {
        return session.runtime().memory(region)
                .orElseThrow(() -> new IllegalArgumentException("region " + region + " is not memory-backed"))
                .segment();
    }
}
