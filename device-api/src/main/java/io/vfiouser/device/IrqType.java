package io.vfiouser.device;

/** The interrupt indexes of a vfio-user PCI device, in wire order. */
public enum IrqType {
    INTX, MSI, MSIX, ERR, REQ;

    /** The number of interrupt indexes of a PCI device (DEVICE_GET_INFO's {@code num_irqs}). */
    public static final int COUNT = values().length;

    /** The index on the wire (DEVICE_GET_IRQ_INFO, DEVICE_SET_IRQS). */
    public int index() {
        return ordinal();
    }

    public static IrqType of(int index) {
        IrqType[] all = values();
        if (index < 0 || index >= all.length) {
            throw new IllegalArgumentException("IRQ index " + index);
        }
        return all[index];
    }
}
