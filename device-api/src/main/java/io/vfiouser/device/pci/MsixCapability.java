package io.vfiouser.device.pci;

/**
 * MSI-X (id 0x11, 12 bytes). The framework emulates the vector table and the pending-bit array in the BARs named
 * here: the device never sees their accesses. A masked vector that fires sets its pending bit and fires when it
 * is unmasked. Place table and PBA in their own 4 KiB-aligned space, outside any mmappable area.
 *
 * @param vectors     number of vectors, 1..2048 (16 bytes of table each)
 * @param tableBar    BAR index (0..5) of the table
 * @param tableOffset offset of the table in that BAR, 8-byte aligned
 * @param pbaBar      BAR index (0..5) of the pending-bit array
 * @param pbaOffset   offset of the PBA in that BAR, 8-byte aligned
 */
public record MsixCapability(int vectors, int tableBar, long tableOffset, int pbaBar, long pbaOffset)
        implements Capability {
    public static final int ID = 0x11;

    public MsixCapability {
        if (vectors < 1 || vectors > 2048) {
            throw new IllegalArgumentException("MSI-X vectors must be 1..2048: " + vectors);
        }
        if (tableBar < 0 || tableBar > 5 || pbaBar < 0 || pbaBar > 5) {
            throw new IllegalArgumentException("MSI-X table and PBA live in BAR0..BAR5");
        }
        if ((tableOffset & 7) != 0 || (pbaOffset & 7) != 0 || tableOffset < 0 || pbaOffset < 0
                || tableOffset > 0xFFFF_FFF8L || pbaOffset > 0xFFFF_FFF8L) {
            throw new IllegalArgumentException("MSI-X table and PBA offsets must be 8-byte aligned u32 values");
        }
    }

    /** Bytes of the vector table. */
    public long tableSize() {
        return 16L * vectors;
    }

    /** Bytes of the pending-bit array (whole u64 words). */
    public long pbaSize() {
        return 8L * ((vectors + 63) / 64);
    }

    @Override
    public int id() {
        return ID;
    }

    @Override
    public int size() {
        return 12;
    }
}
