package io.vfiouser.device.pci;

/**
 * PCI Power Management (id 0x01, 8 bytes). The power state in PMCSR is writable; the framework keeps it and a
 * client sees D0 or D3hot as written (D1/D2 only when PMC announces them, otherwise such writes are ignored).
 * No_Soft_Reset reads 1: the device keeps its state across D3hot to D0.
 *
 * @param capabilities the PMC register (read-only): version in bits 2:0 (3 for PCI PM 1.2), D1/D2 support, ...
 */
public record PowerManagementCapability(int capabilities) implements Capability {
    public static final int ID = 0x01;
    /** PM 1.2, no D1/D2, no PME. */
    public static final PowerManagementCapability DEFAULT = new PowerManagementCapability(0x0003);

    public PowerManagementCapability {
        if ((capabilities & ~0xFFFF) != 0) {
            throw new IllegalArgumentException("PMC is 16 bits: " + capabilities);
        }
    }

    @Override
    public int id() {
        return ID;
    }

    @Override
    public int size() {
        return 8;
    }
}
