package io.vfiouser.server.migration;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * One record of the migration data stream. The stream the client reads from the source and writes into the
 * destination is a sequence of records, each an 8-byte head (u32 tag, u32 length, little-endian) and
 * {@code length} bytes:
 *
 * <table>
 * <caption>Records, in stream order</caption>
 * <tr><th>Tag</th><th>Content</th></tr>
 * <tr><td>{@link #HEADER} (once, first)</td><td>u32 magic {@link #MAGIC}, u32 version {@link #VERSION}, u16
 * vendor id, u16 device id, u32 class code, u32 configuration space size: the destination refuses a stream from
 * another kind of device</td></tr>
 * <tr><td>{@link #DEVICE} (any number)</td><td>one buffer the device's {@code saveState} returned</td></tr>
 * <tr><td>{@link #CONFIG}</td><td>the configuration space image</td></tr>
 * <tr><td>{@link #IRQS}</td><td>the interrupt state (MSI-X table and PBA, MSI pending, INTx level)</td></tr>
 * <tr><td>{@link #REGION} (any number)</td><td>u32 region index, u64 offset, then bytes of a memory-backed
 * region</td></tr>
 * <tr><td>{@link #END} (once, last)</td><td>nothing: the state is complete</td></tr>
 * </table>
 *
 * <p>The source writes HEADER and the device's pre-copy records in PRE_COPY; in STOP_COPY the framework's records
 * (CONFIG, IRQS, REGION), then the device's remaining records, then END.
 */
public final class MigrationRecord {
    public static final int HEAD_SIZE = 8;
    public static final int MAGIC = 0x4d554656; // "VFUM"
    public static final int VERSION = 1;
    /**
     * The largest record: a destination refuses longer ones before allocating anything for them, and a device
     * buffer must not be longer (a device splits larger state itself).
     */
    public static final int MAX_LENGTH = 16 << 20;

    public static final int HEADER = 1;
    public static final int DEVICE = 2;
    public static final int CONFIG = 3;
    public static final int IRQS = 4;
    public static final int REGION = 5;
    public static final int END = 6;

    private MigrationRecord() {
    }

    /** A whole record: head and {@code body}'s remaining bytes (not consumed). */
    public static ByteBuffer of(int tag, ByteBuffer body) {
        int length = body.remaining();
        if (length > MAX_LENGTH) {
            throw new IllegalArgumentException("a migration record of " + length + " bytes; at most " + MAX_LENGTH);
        }
        ByteBuffer out = ByteBuffer.allocate(HEAD_SIZE + length).order(ByteOrder.LITTLE_ENDIAN);
        out.putInt(tag).putInt(length).put(body.duplicate());
        return out.flip();
    }

    public static ByteBuffer of(int tag, byte[] body) {
        return of(tag, ByteBuffer.wrap(body));
    }

    /** The HEADER record for a device of this identity. */
    public static ByteBuffer header(int vendor, int device, int classCode, int configSize) {
        ByteBuffer b = ByteBuffer.allocate(20).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(MAGIC).putInt(VERSION).putShort((short) vendor).putShort((short) device).putInt(classCode)
                .putInt(configSize);
        return of(HEADER, b.flip());
    }
}
