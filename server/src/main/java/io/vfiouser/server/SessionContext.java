package io.vfiouser.server;

import io.vfiouser.device.DeviceContext;
import io.vfiouser.device.DmaSpace;
import io.vfiouser.device.Interrupts;
import java.lang.foreign.MemorySegment;
import org.apache.logging.log4j.Logger;

/** What the device gets while one client is attached. */
final class SessionContext implements DeviceContext {
    private final VfioUserSession session;
    private final Interrupts interrupts;

    SessionContext(VfioUserSession session) {
        this.session = session;
        this.interrupts = new CountingInterrupts(session.irqs(), session.runtime().stats());
    }

    @Override
    public DmaSpace dma() {
        return session.dmaSpace();
    }

    @Override
    public Interrupts interrupts() {
        return interrupts;
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
