package io.vfiouser.server.pci;

import static io.vfiouser.server.pci.PciRegisters.VNDR_DATA;
import static io.vfiouser.server.pci.PciRegisters.VNDR_LENGTH;

import io.vfiouser.device.pci.VendorCapability;

/**
 * Vendor-specific capability (id 0x09).
 *
 * <pre>
 * +0 id  +1 next  +2 length (RO: 3 + data bytes)
 * +3 .. data (RW, power-on value from the capability)
 * </pre>
 *
 * The three header bytes are the header of the common rule: a write touching only them fails with {@code EPERM}.
 */
final class VendorRegisters extends CapabilityRegisters {
    VendorRegisters(VendorCapability capability, ConfigImage image, CapabilityLayout layout) {
        super(image, layout, VNDR_DATA);
        byte[] data = capability.data();
        image.set8(at(VNDR_LENGTH), capability.size());
        for (int i = 0; i < data.length; i++) {
            image.set8(at(VNDR_DATA + i), data[i]);
            image.writable8(at(VNDR_DATA + i), 0xFF);
        }
    }
}
