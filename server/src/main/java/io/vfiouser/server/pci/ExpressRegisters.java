package io.vfiouser.server.pci;

import static io.vfiouser.server.pci.PciRegisters.EXP_DEVCAP;
import static io.vfiouser.server.pci.PciRegisters.EXP_DEVCAP_FLR;
import static io.vfiouser.server.pci.PciRegisters.EXP_DEVCAP_RBER;
import static io.vfiouser.server.pci.PciRegisters.EXP_DEVCTL;
import static io.vfiouser.server.pci.PciRegisters.EXP_DEVCTL2;
import static io.vfiouser.server.pci.PciRegisters.EXP_DEVCTL_INITIATE_FLR;
import static io.vfiouser.server.pci.PciRegisters.EXP_DEVCTL_NO_SNOOP;
import static io.vfiouser.server.pci.PciRegisters.EXP_DEVCTL_READ_REQUEST_512;
import static io.vfiouser.server.pci.PciRegisters.EXP_DEVCTL_RELAXED_ORDERING;
import static io.vfiouser.server.pci.PciRegisters.EXP_FLAGS;
import static io.vfiouser.server.pci.PciRegisters.EXP_FLAGS_VERSION_2;
import static io.vfiouser.server.pci.PciRegisters.EXP_LINK_SPEED_2_5GT;
import static io.vfiouser.server.pci.PciRegisters.EXP_LINK_WIDTH_X1;
import static io.vfiouser.server.pci.PciRegisters.EXP_LNKCAP;
import static io.vfiouser.server.pci.PciRegisters.EXP_LNKCAP2;
import static io.vfiouser.server.pci.PciRegisters.EXP_LNKCAP2_SPEED_2_5GT;
import static io.vfiouser.server.pci.PciRegisters.EXP_LNKCTL;
import static io.vfiouser.server.pci.PciRegisters.EXP_LNKCTL2;
import static io.vfiouser.server.pci.PciRegisters.EXP_LNKCTL_WRITABLE;
import static io.vfiouser.server.pci.PciRegisters.EXP_LNKSTA;

import io.vfiouser.device.pci.PciExpressCapability;
import io.vfiouser.transport.linux.Errno;
import java.nio.ByteBuffer;

/**
 * PCI Express (id 0x10, version 2, 0x3C bytes) of an endpoint.
 *
 * <pre>
 * +0x00 id, next            +0x02 PCIe Capabilities (RO): version 2, device/port type in bits 7:4
 * +0x04 DevCap (RO): Max_Payload_Size 128 B, Role-Based Error Reporting (bit 15), FLR (bit 28) if advertised
 * +0x08 DevCtl (RW, bits 14:0; power-on: relaxed ordering, no snoop, max read request 512 B);
 *       bit 15 Initiate FLR reads 0
 * +0x0A DevSta (RO 0)
 * +0x0C LnkCap (RO): 2.5 GT/s, x1          +0x10 LnkCtl (RW: bits 1:0, 3, 6, 7, 8, 9)
 * +0x12 LnkSta (RO): 2.5 GT/s, x1
 * +0x14..0x23 slot and root registers (RO 0: an endpoint has none)
 * +0x24 DevCap2 (RO 0)      +0x28 DevCtl2 (RW, 16 bits)   +0x2A DevSta2 (RO 0)
 * +0x2C LnkCap2 (RO): supported speeds 2.5 GT/s          +0x30 LnkCtl2 (RW, 16 bits; power-on: target 2.5 GT/s)
 * +0x32 LnkSta2 (RO 0)      +0x34..0x3B slot 2 registers (RO 0)
 * </pre>
 *
 * A Root Complex Integrated Endpoint has no link: its link registers are all read-only 0.
 *
 * <p>Write rules: a write that touches a stored control register (DevCtl, LnkCtl, DevCtl2, LnkCtl2) without
 * covering both of its bytes is refused with {@code EINVAL} (wider aligned writes, e.g. a dword at DevCtl that
 * also covers DevSta, are fine); writes to read-only registers are ignored. Initiate FLR without the DevCap FLR
 * bit is refused with {@code EINVAL}; with it, the write is applied (the bit reads 0) and {@link ConfigSpace},
 * which asks {@link #initiatesFlr}, tells its listener once the write is complete.
 */
final class ExpressRegisters extends CapabilityRegisters {
    private final boolean functionLevelReset;
    private final int[] controlRegisters;

    ExpressRegisters(PciExpressCapability capability, ConfigImage image, CapabilityLayout layout) {
        super(image, layout, 2);
        this.functionLevelReset = capability.functionLevelReset();
        boolean link = capability.deviceType() != PciExpressCapability.DeviceType.RC_INTEGRATED_ENDPOINT;
        image.set16(at(EXP_FLAGS), EXP_FLAGS_VERSION_2 | capability.deviceType().code() << 4);
        image.set32(at(EXP_DEVCAP), EXP_DEVCAP_RBER | (functionLevelReset ? EXP_DEVCAP_FLR : 0));
        image.set16(at(EXP_DEVCTL), EXP_DEVCTL_RELAXED_ORDERING | EXP_DEVCTL_NO_SNOOP | EXP_DEVCTL_READ_REQUEST_512);
        image.writable16(at(EXP_DEVCTL), ~EXP_DEVCTL_INITIATE_FLR & 0xFFFF);
        image.writable16(at(EXP_DEVCTL2), 0xFFFF);
        if (link) {
            image.set32(at(EXP_LNKCAP), EXP_LINK_SPEED_2_5GT | EXP_LINK_WIDTH_X1);
            image.writable16(at(EXP_LNKCTL), EXP_LNKCTL_WRITABLE);
            image.set16(at(EXP_LNKSTA), EXP_LINK_SPEED_2_5GT | EXP_LINK_WIDTH_X1);
            image.set32(at(EXP_LNKCAP2), EXP_LNKCAP2_SPEED_2_5GT);
            image.set16(at(EXP_LNKCTL2), EXP_LINK_SPEED_2_5GT);
            image.writable16(at(EXP_LNKCTL2), 0xFFFF);
            controlRegisters = new int[] {at(EXP_DEVCTL), at(EXP_LNKCTL), at(EXP_DEVCTL2), at(EXP_LNKCTL2)};
        } else {
            controlRegisters = new int[] {at(EXP_DEVCTL), at(EXP_DEVCTL2)};
        }
    }

    @Override
    void check(int from, int to, ByteBuffer src, int base) {
        super.check(from, to, src, base);
        for (int register : controlRegisters) {
            if (touches(from, to, register, 2) && !covers(from, to, register, 2)) {
                throw error(Errno.EINVAL, "partial write of the PCIe control register at 0x%x", register);
            }
        }
        if (initiatesFlr(from, to, src, base) && !functionLevelReset) {
            throw error(Errno.EINVAL, "Initiate FLR, but the function does not advertise FLR");
        }
    }

    /**
     * Whether a write of {@code [from, to)} (clipped to this capability) sets Initiate FLR. Only meaningful for a
     * write {@link #check} accepted: then the function advertises FLR.
     */
    boolean initiatesFlr(int from, int to, ByteBuffer src, int base) {
        int devctl = at(EXP_DEVCTL);
        return covers(from, to, devctl, 2) && (src.get(base + devctl + 1) & EXP_DEVCTL_INITIATE_FLR >>> 8) != 0;
    }
}
