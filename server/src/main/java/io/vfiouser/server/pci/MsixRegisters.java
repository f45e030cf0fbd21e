package io.vfiouser.server.pci;

import static io.vfiouser.server.pci.PciRegisters.MSIX_CONTROL;
import static io.vfiouser.server.pci.PciRegisters.MSIX_CONTROL_ENABLE;
import static io.vfiouser.server.pci.PciRegisters.MSIX_CONTROL_FUNCTION_MASK;
import static io.vfiouser.server.pci.PciRegisters.MSIX_PBA;
import static io.vfiouser.server.pci.PciRegisters.MSIX_TABLE;

import io.vfiouser.device.pci.MsixCapability;
import java.nio.ByteBuffer;

/**
 * MSI-X (id 0x11, 12 bytes).
 *
 * <pre>
 * +0 id  +1 next
 * +2 Message Control: bits 10:0 table size - 1 (RO), bit 14 Function Mask (RW), bit 15 Enable (RW)
 * +4 Table Offset (bits 31:3) | Table BIR (bits 2:0), RO
 * +8 PBA Offset (bits 31:3) | PBA BIR (bits 2:0), RO
 * </pre>
 *
 * Writes to the read-only bits are ignored; the listener hears of a change of Enable or Function Mask.
 */
final class MsixRegisters extends CapabilityRegisters {
    private final ConfigSpace.Listener listener;
    private boolean enabled;
    private boolean functionMasked;

    MsixRegisters(MsixCapability capability, ConfigImage image, CapabilityLayout layout,
                  ConfigSpace.Listener listener) {
        super(image, layout, 2);
        this.listener = listener;
        image.set16(at(MSIX_CONTROL), capability.vectors() - 1);
        image.writable16(at(MSIX_CONTROL), MSIX_CONTROL_FUNCTION_MASK | MSIX_CONTROL_ENABLE);
        image.set32(at(MSIX_TABLE), (int) capability.tableOffset() | capability.tableBar());
        image.set32(at(MSIX_PBA), (int) capability.pbaOffset() | capability.pbaBar());
    }

    boolean enabled() {
        return enabled;
    }

    boolean functionMasked() {
        return functionMasked;
    }

    @Override
    void written(int from, int to, ByteBuffer src, int base) {
        boolean wasEnabled = enabled;
        boolean wasMasked = functionMasked;
        sync();
        if (enabled != wasEnabled || functionMasked != wasMasked) {
            listener.msixControlChanged(enabled, functionMasked);
        }
    }

    @Override
    void sync() {
        int control = image.u16(at(MSIX_CONTROL));
        enabled = (control & MSIX_CONTROL_ENABLE) != 0;
        functionMasked = (control & MSIX_CONTROL_FUNCTION_MASK) != 0;
    }
}
