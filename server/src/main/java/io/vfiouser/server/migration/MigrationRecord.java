package io.vfiouser.server.migration;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.zip.CRC32C;

/**
 * One record of the migration data stream. The stream the client reads from the source and writes into the
 * destination is a sequence of records, each a 12-byte head and {@code length} bytes of body, little-endian:
 *
 * <pre>
 * +0   u32 tag
 * +4   u32 length   of the body
 * +8   u32 crc      CRC32C (java.util.zip.CRC32C) of bytes +0..+8 (tag and length) and then of the body
 * +12  body
 * </pre>
 *
 * <p>The checksum covers the head's fields too, so a flipped bit in a tag or a length is caught as surely as one
 * in the state: the stream crosses a client, a network and whatever stores it in between, and a destination must
 * not load state that is not what the source saved (issue 11, defect 9). A destination checks every record before
 * loading it ({@link MigrationStreamReader}).
 *
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
    public static final int HEAD_SIZE = 12;
    /** Where the checksum sits in the head; it covers the bytes before it and the body. */
    public static final int CRC_OFFSET = 8;
    public static final int MAGIC = 0x4d554656; // "VFUM"
    /** 2: records carry a CRC32C (version 1 had an 8-byte head without). */
    public static final int VERSION = 2;
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
        out.putInt(tag).putInt(length).putInt(0).put(body.duplicate());
        return seal(out.flip());
    }

    /**
     * Writes the checksum of a whole record laid out from {@code record}'s position (head with tag and length,
     * then the body; the crc field is overwritten) and returns {@code record}.
     */
    public static ByteBuffer seal(ByteBuffer record) {
        int p = record.position();
        int length = record.order(ByteOrder.LITTLE_ENDIAN).getInt(p + 4);
        record.putInt(p + CRC_OFFSET, checksum(record.slice(p, CRC_OFFSET), record.slice(p + HEAD_SIZE, length)));
        return record;
    }

    /** The CRC32C of a record's first 8 head bytes ({@code head8}) followed by its body. */
    public static int checksum(ByteBuffer head8, ByteBuffer body) {
        CRC32C crc = new CRC32C();
        crc.update(head8.duplicate());
        crc.update(body.duplicate());
        return (int) crc.getValue();
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
