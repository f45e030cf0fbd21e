package io.vfiouser.server.connection;

import io.vfiouser.server.irq.IrqTable;
import io.vfiouser.server.pci.ConfigSpace;

/**
 * Keeps a connection's interrupt table in step with the device's configuration space: INTx Disable, MSI and MSI-X
 * enable and masks. The space outlives connections; this listener is installed on it when the client attaches and
 * removed when it leaves, so the space never points at a connection that is gone. After a reset or a restore, which
 * change the space without telling listeners, {@link #sync} reads it all again.
 */
final class ConfigInterrupts implements ConfigSpace.Listener {
    private final ConfigSpace config;
    private final IrqTable irqs;

    ConfigInterrupts(ConfigSpace config, IrqTable irqs) {
        this.config = config;
        this.irqs = irqs;
    }

    /** Starts listening (the client attached) and takes over what the space holds now. */
    void install() {
        config.listen(this);
        sync();
    }

    /** Stops listening (the client left). */
    void remove() {
        config.listen(null);
    }

    /** Gives the interrupt table what it derives from configuration space. */
    void sync() {
        irqs.setIntxDisabled(config.intxDisabled());
        irqs.setMsiControl(config.msiEnabled(), config.msiEnabledVectors());
        irqs.setMsiMask(config.msiMask());
        irqs.setMsixControl(config.msixEnabled(), config.msixFunctionMasked());
    }

    @Override
    public void commandChanged(int oldValue, int newValue) {
        irqs.setIntxDisabled(config.intxDisabled());
    }

    @Override
    public void msiControlChanged(boolean enabled, int enabledVectors) {
        irqs.setMsiControl(enabled, enabledVectors);
    }

    @Override
    public void msixControlChanged(boolean enabled, boolean functionMasked) {
        irqs.setMsixControl(enabled, functionMasked);
    }

    @Override
    public void msiMaskChanged(int mask) {
        irqs.setMsiMask(mask);
    }
}
