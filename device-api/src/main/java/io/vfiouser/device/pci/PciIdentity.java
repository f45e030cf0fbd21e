package io.vfiouser.device.pci;

/**
 * Who a PCI function says it is: the ids of its configuration-space header.
 *
 * @param vendorId          16-bit vendor id (offset 0x00)
 * @param deviceId          16-bit device id (offset 0x02)
 * @param subsystemVendorId 16-bit subsystem vendor id (offset 0x2C)
 * @param subsystemId       16-bit subsystem id (offset 0x2E)
 * @param classCode         24-bit class code: base class, sub-class, programming interface (offset 0x09)
 * @param revision          8-bit revision id (offset 0x08)
 */
public record PciIdentity(int vendorId, int deviceId, int subsystemVendorId, int subsystemId, int classCode,
                          int revision) {
    public PciIdentity {
        check("vendorId", vendorId, 0xFFFF);
        check("deviceId", deviceId, 0xFFFF);
        check("subsystemVendorId", subsystemVendorId, 0xFFFF);
        check("subsystemId", subsystemId, 0xFFFF);
        check("classCode", classCode, 0xFFFFFF);
        check("revision", revision, 0xFF);
    }

    private static void check(String what, int value, int max) {
        if (value < 0 || value > max) {
            throw new IllegalArgumentException(what + " out of range: 0x" + Integer.toHexString(value));
        }
    }

    /** An identity whose subsystem ids repeat the vendor and device ids, revision 0. */
    public static PciIdentity of(int vendorId, int deviceId, int classCode) {
        return new PciIdentity(vendorId, deviceId, vendorId, deviceId, classCode, 0);
    }

    @Override
    public String toString() {
        return String.format("%04x:%04x (subsystem %04x:%04x, class %06x, rev %02x)", vendorId, deviceId,
                subsystemVendorId, subsystemId, classCode, revision);
    }
}
