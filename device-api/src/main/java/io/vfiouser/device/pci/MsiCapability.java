package io.vfiouser.device.pci;

/**
 * Message Signalled Interrupts (id 0x05): 64-bit addresses and per-vector masking, 24 bytes.
 *
 * @param vectors the number of vectors the function requests: 1, 2, 4, 8, 16 or 32
 */
public record MsiCapability(int vectors) implements Capability {
    public static final int ID = 0x05;

    public MsiCapability {
        if (vectors < 1 || vectors > 32 || Integer.bitCount(vectors) != 1) {
            throw new IllegalArgumentException("MSI vectors must be a power of two in 1..32: " + vectors);
        }
    }

    @Override
    public int id() {
        return ID;
    }

    @Override
    public int size() {
        return 24;
    }
}
