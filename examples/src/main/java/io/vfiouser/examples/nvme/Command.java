package io.vfiouser.examples.nvme;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * One 64-byte submission queue entry, decoded.
 *
 * @param opcode command opcode (dword 0 bits 7:0)
 * @param fuse   fused operation (bits 9:8)
 * @param psdt   PRP or SGL for data transfer (bits 15:14): 0 = PRPs
 * @param cid    command identifier (bits 31:16)
 * @param nsid   namespace identifier (dword 1)
 * @param prp1   data pointer, PRP entry 1 (dwords 6-7)
 * @param prp2   data pointer, PRP entry 2 (dwords 8-9)
 */
record Command(int opcode, int fuse, int psdt, int cid, int nsid, long prp1, long prp2,
               int cdw10, int cdw11, int cdw12, int cdw13, int cdw14, int cdw15) {
    static final int SIZE = 64;

    /** Decodes the entry at the buffer's position (little-endian, 64 bytes). */
    static Command decode(ByteBuffer entry) {
        ByteBuffer b = entry.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        int base = b.position();
        int dw0 = b.getInt(base);
        return new Command(dw0 & 0xFF, (dw0 >>> 8) & 3, (dw0 >>> 14) & 3, dw0 >>> 16, b.getInt(base + 4),
                b.getLong(base + 24), b.getLong(base + 32), b.getInt(base + 40), b.getInt(base + 44),
                b.getInt(base + 48), b.getInt(base + 52), b.getInt(base + 56), b.getInt(base + 60));
    }

    /** The 64-bit starting LBA of I/O commands (dwords 10-11). */
    long startingLba() {
        return (cdw10 & 0xFFFF_FFFFL) | ((long) cdw11 << 32);
    }

    /** The 1-based number of logical blocks of I/O commands (dword 12 bits 15:0, 0-based on the wire). */
    int blockCount() {
        return (cdw12 & 0xFFFF) + 1;
    }
}
