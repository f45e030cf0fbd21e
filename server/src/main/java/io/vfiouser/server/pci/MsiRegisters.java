package io.vfiouser.server.pci;

import static io.vfiouser.server.pci.PciRegisters.MSI_ADDRESS_HI;
import static io.vfiouser.server.pci.PciRegisters.MSI_ADDRESS_LO;
import static io.vfiouser.server.pci.PciRegisters.MSI_CONTROL;
import static io.vfiouser.server.pci.PciRegisters.MSI_CONTROL_64BIT;
import static io.vfiouser.server.pci.PciRegisters.MSI_CONTROL_ENABLE;
import static io.vfiouser.server.pci.PciRegisters.MSI_CONTROL_MME;
import static io.vfiouser.server.pci.PciRegisters.MSI_CONTROL_PER_VECTOR_MASK;
import static io.vfiouser.server.pci.PciRegisters.MSI_DATA;
import static io.vfiouser.server.pci.PciRegisters.MSI_MASK;
import static io.vfiouser.server.pci.PciRegisters.MSI_PENDING;

import io.vfiouser.device.pci.MsiCapability;
import io.vfiouser.transport.linux.Errno;
import java.nio.ByteBuffer;

/**
 * Message Signalled Interrupts (id 0x05), the 24-byte layout with 64-bit addresses and per-vector masking.
 *
 * <pre>
 * +0 id  +1 next
 * +2 Message Control: bit 0 Enable (RW), bits 3:1 MMC (RO, log2 vectors), bits 6:4 MME (RW, at most MMC),
 *                     bit 7 64-bit (RO 1), bit 8 per-vector masking (RO 1)
 * +4 Message Address (RW, bits 1:0 RO 0)   +8 Message Upper Address (RW)
 * +12 Message Data (RW, 16 bits)  +14 reserved (RO 0)
 * +16 Mask Bits (RW, one per vector)       +20 Pending Bits (RO; set by {@link #setPending})
 * </pre>
 *
 * A write whose MME exceeds MMC is refused with {@code EINVAL}. The listener hears of a change of the enable bit
 * or of the enabled vectors, and of a change of the mask bits.
 */
final class MsiRegisters extends CapabilityRegisters {
    private final ConfigSpace.Listener listener;
    private final int mmc;
    private final int vectorMask;
    private boolean enabled;
    private int enabledVectors;
    private int mask;

    MsiRegisters(MsiCapability capability, ConfigImage image, CapabilityLayout layout,
                 ConfigSpace.Listener listener) {
        super(image, layout, 2);
        this.listener = listener;
        this.mmc = Integer.numberOfTrailingZeros(capability.vectors());
        this.vectorMask = capability.vectors() == 32 ? -1 : (1 << capability.vectors()) - 1;
        image.set16(at(MSI_CONTROL), mmc << 1 | MSI_CONTROL_64BIT | MSI_CONTROL_PER_VECTOR_MASK);
        image.writable16(at(MSI_CONTROL), MSI_CONTROL_ENABLE | MSI_CONTROL_MME);
        image.writable32(at(MSI_ADDRESS_LO), 0xFFFF_FFFC);
        image.writable32(at(MSI_ADDRESS_HI), 0xFFFF_FFFF);
        image.writable16(at(MSI_DATA), 0xFFFF);
        image.writable32(at(MSI_MASK), vectorMask);
    }

    boolean enabled() {
        return enabled;
    }

    /** The vectors software enabled (2 to the power of MME) while MSI is enabled, else 0. */
    int enabledVectors() {
        return enabledVectors;
    }

    int mask() {
        return mask;
    }

    int pending() {
        return image.u32(at(MSI_PENDING));
    }

    /** Sets the Pending Bits register; bits of vectors the function does not have are dropped. */
    void setPending(int bits) {
        image.set32(at(MSI_PENDING), bits & vectorMask);
    }

    @Override
    void check(int from, int to, ByteBuffer src, int base) {
        super.check(from, to, src, base);
        int control = at(MSI_CONTROL);
        if (touches(from, to, control, 1)) {
            int mme = (src.get(base + control) & MSI_CONTROL_MME) >>> 4;
            if (mme > mmc) {
                throw error(Errno.EINVAL, "MSI Multiple Message Enable %d exceeds Multiple Message Capable %d",
                        mme, mmc);
            }
        }
    }

    @Override
    void written(int from, int to, ByteBuffer src, int base) {
        boolean wasEnabled = enabled;
        int hadVectors = enabledVectors;
        int oldMask = mask;
        sync();
        if (enabled != wasEnabled || enabledVectors != hadVectors) {
            listener.msiControlChanged(enabled, enabledVectors);
        }
        if (mask != oldMask) {
            listener.msiMaskChanged(mask);
        }
    }

    @Override
    void sync() {
        int control = image.u16(at(MSI_CONTROL));
        enabled = (control & MSI_CONTROL_ENABLE) != 0;
        enabledVectors = enabled ? 1 << ((control & MSI_CONTROL_MME) >>> 4) : 0;
        mask = image.u32(at(MSI_MASK));
    }
}
