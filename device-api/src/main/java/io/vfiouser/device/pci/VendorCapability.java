package io.vfiouser.device.pci;

/**
 * Vendor-specific capability (id 0x09): a 3-byte header (id, next, length) followed by {@code data}, which a
 * client may read and write.
 */
public record VendorCapability(byte[] data) implements Capability {
    public static final int ID = 0x09;

    public VendorCapability {
        if (data.length > 253) {
            throw new IllegalArgumentException("vendor capability data is at most 253 bytes");
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
    public int size() {
        return 3 + data.length;
    }
}
