package io.vfiouser.device;

/**
 * Interrupts towards the client, through the eventfds the client registered with DEVICE_SET_IRQS. A trigger
 * for which the client registered no eventfd is dropped (as on real hardware with the interrupt disabled).
 */
public interface Interrupts {
    /** Raises the INTx line (level): signalled now, and again on unmask while still raised. */
    void assertIntx();

    /** Lowers the INTx line. */
    void deassertIntx();

    /**
     * Fires MSI vector {@code vector}; if the guest masked it, its pending bit is set instead and it fires when
     * unmasked. Dropped while MSI is disabled in configuration space (a PCI function must not send MSI then).
     */
    void triggerMsi(int vector);

    /**
     * Fires MSI-X vector {@code vector}; if the guest masked it (or the whole function), its pending bit is set
     * instead and it fires when unmasked. Dropped, with no pending bit, while MSI-X is disabled in configuration
     * space (a PCI function must not use MSI-X then).
     */
    void triggerMsix(int vector);

    /**
     * Fires {@code vector} on whichever type the client enabled: MSI-X, else MSI, else INTx (asserted and left
     * for the device to deassert).
     */
    void trigger(int vector);

    /** Fires the ERR (AER error) interrupt. */
    void triggerError();

    /** Fires the REQ interrupt (asks the client to release the device). */
    void triggerRequest();

    /** Whether the client has an eventfd on {@code vector} of {@code type}. */
    boolean isEnabled(IrqType type, int vector);
}
