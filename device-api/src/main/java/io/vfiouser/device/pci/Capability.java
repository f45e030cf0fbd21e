package io.vfiouser.device.pci;

/**
 * A capability in the standard list of the PCI configuration space (from offset 0x40). The framework lays the
 * list out, emulates the registers of the capabilities it knows and applies their write rules.
 */
public sealed interface Capability
        permits PowerManagementCapability, MsiCapability, MsixCapability, PciExpressCapability, VendorCapability {

    /** The capability id (byte 0 of the capability). */
    int id();

    /** The capability's size in configuration space, header included. */
    int size();
}
