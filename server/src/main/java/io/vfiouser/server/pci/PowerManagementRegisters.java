package io.vfiouser.server.pci;

import static io.vfiouser.server.pci.PciRegisters.PMCSR_NO_SOFT_RESET;
import static io.vfiouser.server.pci.PciRegisters.PMCSR_PME_ENABLE;
import static io.vfiouser.server.pci.PciRegisters.PMCSR_POWER_STATE;
import static io.vfiouser.server.pci.PciRegisters.PMC_D1;
import static io.vfiouser.server.pci.PciRegisters.PMC_D2;
import static io.vfiouser.server.pci.PciRegisters.PMC_PME_SUPPORT;
import static io.vfiouser.server.pci.PciRegisters.PM_PMC;
import static io.vfiouser.server.pci.PciRegisters.PM_PMCSR;

import io.vfiouser.device.pci.PowerManagementCapability;
import io.vfiouser.transport.linux.Errno;
import java.nio.ByteBuffer;

/**
 * PCI Power Management (id 0x01, 8 bytes).
 *
 * <pre>
 * +0 id  +1 next  +2 PMC (RO, from the capability)
 * +4 PMCSR: bits 1:0 PowerState (RW), bit 3 No_Soft_Reset (RO 1), bit 8 PME_En (RW iff PMC announces PME support)
 * +6 PMCSR_BSE (RO 0)  +7 Data (RO 0)
 * </pre>
 *
 * No_Soft_Reset is 1 because the function keeps its state across D3hot to D0. A write of a power state the
 * function does not support (D1/D2 without the PMC bit) completes but leaves the state unchanged, as the PCI PM
 * specification asks. A write that does not touch PMCSR (so only PMC, BSE or Data, possibly with the header) is
 * refused with {@code ENOTSUP}, as libvfio-user does.
 */
final class PowerManagementRegisters extends CapabilityRegisters {
    private final int pmc;
    private int powerState;

    PowerManagementRegisters(PowerManagementCapability capability, ConfigImage image, CapabilityLayout layout) {
        super(image, layout, 2);
        this.pmc = capability.capabilities();
        image.set16(at(PM_PMC), pmc);
        image.set16(at(PM_PMCSR), PMCSR_NO_SOFT_RESET);
        image.writable16(at(PM_PMCSR), PMCSR_POWER_STATE | ((pmc & PMC_PME_SUPPORT) != 0 ? PMCSR_PME_ENABLE : 0));
    }

    /** The power state: 0 (D0) to 3 (D3hot). */
    int powerState() {
        return powerState;
    }

    @Override
    void check(int from, int to, ByteBuffer src, int base) {
        super.check(from, to, src, base);
        if (!touches(from, to, at(PM_PMCSR), 2)) {
            throw error(Errno.ENOTSUP, "only PMCSR of %s is writable", layout());
        }
    }

    @Override
    void written(int from, int to, ByteBuffer src, int base) {
        int pmcsr = image.u16(at(PM_PMCSR));
        int state = pmcsr & PMCSR_POWER_STATE;
        if (supported(state)) {
            powerState = state;
        } else {
            image.set16(at(PM_PMCSR), pmcsr & ~PMCSR_POWER_STATE | powerState);
        }
    }

    @Override
    void sync() {
        powerState = image.u16(at(PM_PMCSR)) & PMCSR_POWER_STATE;
    }

    private boolean supported(int state) {
        return switch (state) {
            case 1 -> (pmc & PMC_D1) != 0;
            case 2 -> (pmc & PMC_D2) != 0;
            default -> true;
        };
    }
}
