package io.vfiouser.device.pci;

/** A PCI Express extended capability (from offset 0x100 of a 4096-byte configuration space). */
public sealed interface ExtendedCapability permits SerialNumberCapability, VendorExtendedCapability {
    /** The 16-bit extended capability id. */
    int id();

    /** The capability version (4 bits). */
    int version();

    /** Size in bytes, the 4-byte header included. */
    int size();
}
