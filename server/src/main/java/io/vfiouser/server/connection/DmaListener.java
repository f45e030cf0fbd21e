package io.vfiouser.server.connection;

import io.vfiouser.server.device.DeviceRuntime;
import io.vfiouser.device.DmaRange;
import io.vfiouser.server.dma.DmaTable;

/** Tells the device about the client's DMA mappings as they come and go. */
final class DmaListener implements DmaTable.Listener {
    private final DeviceRuntime runtime;

    DmaListener(DeviceRuntime runtime) {
        this.runtime = runtime;
    }

    @Override
    public void mapped(DmaRange range) {
        runtime.stats().dmaMapped();
        try {
            runtime.device().dmaMapped(range);
        } catch (RuntimeException e) {
            runtime.warnings().warn("{}: dmaMapped() failed", runtime.name(), e);
        }
    }

    @Override
    public void unmapped(DmaRange range) {
        runtime.stats().dmaUnmapped();
        try {
            runtime.device().dmaUnmapped(range);
        } catch (RuntimeException e) {
            runtime.warnings().warn("{}: dmaUnmapped() failed", runtime.name(), e);
        }
    }
}
