package io.vfiouser.server.irq;

import io.vfiouser.device.IrqType;
import io.vfiouser.device.pci.MsixCapability;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.util.Objects;

/**
 * The MSI-X vector table and pending-bit array as they appear in their BARs, served by the framework (the device
 * never sees these accesses).
 *
 * <pre>
 * table, 16 bytes per vector:  +0 u32 Message Address   +4 u32 Message Upper Address
 *                              +8 u32 Message Data      +12 u32 Vector Control (bit 0: Mask; other bits read 0)
 * PBA, u64 words:              bit n of word n/64 = vector n is pending (read-only; writes are dropped)
 * </pre>
 *
 * <p>After reset every vector is masked and nothing is pending. Clearing a Mask bit fires the vector's pending
 * interrupt, if any (and the function is not masked), and clears its PBA bit. Accesses of any size and alignment
 * are served byte by byte over the little-endian image, an 8-byte access atomically; QEMU only ever reads the PBA
 * (it emulates the table itself), other clients may use the table too. The addresses and data written are only
 * stored: interrupts travel as eventfd signals, whatever the message.
 *
 * <p>An access that overlaps the table or the PBA ({@link #covers}) is served here entirely: its bytes outside
 * both read as 0 and are not written. Keep table and PBA in their own page, outside mmappable areas.
 *
 * <p>Thread-safety: accesses come from the device's event loop and take the {@link IrqTable}'s lock; pending bits
 * are set by triggers on any thread.
 */
public final class MsixTableEmulation {
    private static final int ENTRY_SIZE = 16;
    private static final int CONTROL_WORD = 3;
    private static final int MASK_BIT = 1;
    private static final VarHandle PENDING = MethodHandles.arrayElementVarHandle(long[].class);

    private final IrqTable owner;
    private final int vectors;
    private final int tableBar;
    private final long tableOffset;
    private final long tableSize;
    private final int pbaBar;
    private final long pbaOffset;
    private final long pbaSize;
    /** Four u32 words per vector; guarded by the owner's lock. */
    private final int[] words;
    /** PBA words, updated atomically through {@link #PENDING}. */
    private final long[] pending;

    MsixTableEmulation(IrqTable owner, MsixCapability cap) {
        this.owner = owner;
        if (cap == null) {
            vectors = 0;
            tableBar = -1;
            tableOffset = 0;
            tableSize = 0;
            pbaBar = -1;
            pbaOffset = 0;
            pbaSize = 0;
        } else {
            vectors = cap.vectors();
            tableBar = cap.tableBar();
            tableOffset = cap.tableOffset();
            tableSize = cap.tableSize();
            pbaBar = cap.pbaBar();
            pbaOffset = cap.pbaOffset();
            pbaSize = cap.pbaSize();
            if (tableBar == pbaBar && tableOffset < pbaOffset + pbaSize && pbaOffset < tableOffset + tableSize) {
                throw new IllegalArgumentException("MSI-X table and PBA overlap in BAR" + tableBar);
            }
        }
        words = new int[4 * vectors];
        pending = new long[(vectors + 63) / 64];
        resetLocked();
    }

    /** The number of vectors (0 without an MSI-X capability). */
    public int vectors() {
        return vectors;
    }

    /** Whether an access of {@code length} bytes at {@code offset} of region {@code region} touches table or PBA. */
    public boolean covers(int region, long offset, int length) {
        if (length <= 0 || offset < 0) {
            return false;
        }
        return region == tableBar && overlaps(offset, length, tableOffset, tableSize)
                || region == pbaBar && overlaps(offset, length, pbaOffset, pbaSize);
    }

    private static boolean overlaps(long offset, int length, long start, long size) {
        return offset < start + size && start < offset + length;
    }

    /**
     * Reads {@code dst.remaining()} bytes at {@code offset} of region {@code region}, moving {@code dst}'s
     * position to its limit.
     *
     * @throws IllegalArgumentException if the access does not {@link #covers cover} table or PBA
     */
    public void read(int region, long offset, ByteBuffer dst) {
        int length = dst.remaining();
        requireCovered(region, offset, length);
        int pos = dst.position();
        long stamp = owner.lock.readLock();
        try {
            for (int i = 0; i < length; i++) {
                dst.put(pos + i, byteAt(region, offset + i));
            }
        } finally {
            owner.lock.unlockRead(stamp);
        }
        dst.position(pos + length);
    }

    /**
     * Writes {@code src.remaining()} bytes at {@code offset} of region {@code region}, moving {@code src}'s
     * position to its limit. Only table bytes are writable (and of the Vector Control word only the Mask bit).
     *
     * @throws IllegalArgumentException if the access does not {@link #covers cover} table or PBA
     */
    public void write(int region, long offset, ByteBuffer src) {
        int length = src.remaining();
        requireCovered(region, offset, length);
        int pos = src.position();
        Aftermath aftermath = new Aftermath();
        long stamp = owner.lock.writeLock();
        try {
            if (region == tableBar && overlaps(offset, length, tableOffset, tableSize)) {
                long first = Math.max(offset, tableOffset) - tableOffset;
                long last = Math.min(offset + length, tableOffset + tableSize) - 1 - tableOffset;
                int firstVector = (int) (first / ENTRY_SIZE);
                int lastVector = (int) (last / ENTRY_SIZE);
                boolean[] wasMasked = new boolean[lastVector - firstVector + 1];
                for (int v = firstVector; v <= lastVector; v++) {
                    wasMasked[v - firstVector] = maskedLocked(v);
                }
                for (long b = first; b <= last; b++) {
                    int word = (int) (b >>> 2);
                    int shift = (int) (b & 3) * 8;
                    int value = src.get(pos + (int) (tableOffset + b - offset)) & 0xFF;
                    words[word] = (words[word] & ~(0xFF << shift)) | (value << shift);
                }
                for (int v = firstVector; v <= lastVector; v++) {
                    words[4 * v + CONTROL_WORD] &= MASK_BIT;
                    boolean masked = maskedLocked(v);
                    if (masked != wasMasked[v - firstVector]) {
                        if (!masked) {
                            owner.firePendingMsixLocked(v);
                        }
                        aftermath.maskChanged(IrqType.MSIX, v, 1, masked);
                    }
                }
            }
        } finally {
            owner.lock.unlockWrite(stamp);
            owner.runAftermath(aftermath);
        }
        src.position(pos + length);
    }

    private void requireCovered(int region, long offset, int length) {
        if (!covers(region, offset, length)) {
            throw new IllegalArgumentException("region " + region + " [" + offset + ", +" + length
                    + ") is neither MSI-X table nor PBA");
        }
    }

    private byte byteAt(int region, long offset) {
        if (region == tableBar && offset >= tableOffset && offset < tableOffset + tableSize) {
            long b = offset - tableOffset;
            return (byte) (words[(int) (b >>> 2)] >>> ((int) (b & 3) * 8));
        }
        if (region == pbaBar && offset >= pbaOffset && offset < pbaOffset + pbaSize) {
            long b = offset - pbaOffset;
            long word = (long) PENDING.getVolatile(pending, (int) (b >>> 3));
            return (byte) (word >>> ((int) (b & 7) * 8));
        }
        return 0;
    }

    /** Whether {@code vector}'s Mask bit is set in the table. */
    public boolean isMasked(int vector) {
        Objects.checkIndex(vector, vectors);
        long stamp = owner.lock.readLock();
        try {
            return maskedLocked(vector);
        } finally {
            owner.lock.unlockRead(stamp);
        }
    }

    /** Whether {@code vector}'s PBA bit is set. */
    public boolean isPending(int vector) {
        Objects.checkIndex(vector, vectors);
        return ((long) PENDING.getVolatile(pending, vector >>> 6) & (1L << vector)) != 0;
    }

    // ---------------------------------------------------------------------------------- for the IrqTable

    boolean maskedLocked(int vector) {
        return (words[4 * vector + CONTROL_WORD] & MASK_BIT) != 0;
    }

    /** Sets or clears the Mask bit; whether it changed. The caller fires a pending interrupt on unmask. */
    boolean setMaskedLocked(int vector, boolean masked) {
        int i = 4 * vector + CONTROL_WORD;
        int before = words[i];
        words[i] = masked ? before | MASK_BIT : before & ~MASK_BIT;
        return words[i] != before;
    }

    /** Sets the PBA bit (any thread, under the read lock). */
    void setPending(int vector) {
        long ignored = (long) PENDING.getAndBitwiseOr(pending, vector >>> 6, 1L << vector);
    }

    /** Clears the PBA bit; whether it was set. */
    boolean clearPending(int vector) {
        long bit = 1L << vector;
        return ((long) PENDING.getAndBitwiseAnd(pending, vector >>> 6, ~bit) & bit) != 0;
    }

    /** The table words and the PBA words, for migration. */
    void saveLocked(java.nio.ByteBuffer out) {
        for (int w : words) {
            out.putInt(w);
        }
        for (int i = 0; i < pending.length; i++) {
            out.putLong((long) PENDING.getVolatile(pending, i));
        }
    }

    /** Bytes {@link #saveLocked} writes. */
    int savedSize() {
        return 4 * words.length + 8 * pending.length;
    }

    /** Takes back what {@link #saveLocked} wrote (the caller checked the size). */
    void restoreLocked(java.nio.ByteBuffer in) {
        for (int i = 0; i < words.length; i++) {
            words[i] = in.getInt();
        }
        for (int i = 0; i < pending.length; i++) {
            PENDING.setVolatile(pending, i, in.getLong());
        }
    }

    /** Power-on state: addresses and data 0, every vector masked, nothing pending. */
    void resetLocked() {
        for (int v = 0; v < vectors; v++) {
            words[4 * v] = 0;
            words[4 * v + 1] = 0;
            words[4 * v + 2] = 0;
            words[4 * v + CONTROL_WORD] = MASK_BIT;
        }
        for (int i = 0; i < pending.length; i++) {
            PENDING.setVolatile(pending, i, 0L);
        }
    }

    @Override
    public String toString() {
        return vectors == 0 ? "MsixTableEmulation(none)"
                : "MsixTableEmulation(" + vectors + " vectors, table BAR" + tableBar + "@0x"
                        + Long.toHexString(tableOffset) + ", PBA BAR" + pbaBar + "@0x" + Long.toHexString(pbaOffset)
                        + ")";
    }
}
