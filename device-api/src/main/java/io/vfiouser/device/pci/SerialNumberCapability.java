package io.vfiouser.device.pci;

/** Device Serial Number (extended id 0x0003, 12 bytes, read-only). */
public record SerialNumberCapability(long serialNumber) implements ExtendedCapability {
    public static final int ID = 0x0003;

    @Override
    public int id() {
        return ID;
    }

    @Override
    public int version() {
        return 1;
    }

    @Override
    public int size() {
        return 12;
    }
}
