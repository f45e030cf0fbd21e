package io.vfiouser.device.pci;

/**
 * Vendor-specific extended capability (extended id 0x000B): header, a VSEC header (id, revision, length) and
 * {@code data}, which a client may read and write.
 *
 * @param vsecId   the vendor's id for this structure (16 bits)
 * @param revision the structure's revision (4 bits)
 * @param data     the bytes after the 8-byte headers
 */
public record VendorExtendedCapability(int vsecId, int revision, byte[] data) implements ExtendedCapability {
    public static final int ID = 0x000B;

    public VendorExtendedCapability {
        if ((vsecId & ~0xFFFF) != 0 || (revision & ~0xF) != 0 || data.length > 4096 - 0x100 - 8) {
            throw new IllegalArgumentException("bad vendor-specific extended capability");
        }
        data = data.clone();
    }

    @Override
    public byte[] data() {
        return data.clone();
    }

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
        return 8 + data.length;
    }
}
