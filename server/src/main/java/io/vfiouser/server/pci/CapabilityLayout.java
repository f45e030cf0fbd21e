package io.vfiouser.server.pci;

/**
 * Where one capability sits in the configuration space.
 *
 * @param id       the capability id: 8 bits for a standard capability, 16 bits for an extended one
 * @param offset   the offset of its first (header) byte
 * @param length   the bytes it occupies, header included (the next capability starts at the next multiple of 4)
 * @param extended whether it is a PCI Express extended capability (in the list starting at 0x100)
 */
public record CapabilityLayout(int id, int offset, int length, boolean extended) {
    /** The offset just past its last byte. */
    public int end() {
        return offset + length;
    }

    @Override
    public String toString() {
        return String.format("%s 0x%x @0x%03x+%d", extended ? "ext-cap" : "cap", id, offset, length);
    }
}
