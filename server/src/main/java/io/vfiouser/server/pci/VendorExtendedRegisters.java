package io.vfiouser.server.pci;

import static io.vfiouser.server.pci.PciRegisters.VSEC_DATA;
import static io.vfiouser.server.pci.PciRegisters.VSEC_HEADER;

import io.vfiouser.device.pci.VendorExtendedCapability;

/**
 * Vendor-specific extended capability (id 0x000B, version 1).
 *
 * <pre>
 * +0 header dword
 * +4 VSEC header (RO): VSEC id bits 15:0, revision bits 19:16, length (8 + data bytes) bits 31:20
 * +8 .. data (RW, power-on value from the capability)
 * </pre>
 *
 * Both header dwords are the header of the common rule: a write touching only them fails with {@code EPERM}.
 */
final class VendorExtendedRegisters extends CapabilityRegisters {
    VendorExtendedRegisters(VendorExtendedCapability capability, ConfigImage image, CapabilityLayout layout) {
        super(image, layout, VSEC_DATA);
        image.set32(at(VSEC_HEADER),
                capability.vsecId() | capability.revision() << 16 | capability.size() << 20);
        byte[] data = capability.data();
        for (int i = 0; i < data.length; i++) {
            image.set8(at(VSEC_DATA + i), data[i]);
            image.writable8(at(VSEC_DATA + i), 0xFF);
        }
    }
}
