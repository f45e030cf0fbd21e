package io.vfiouser.server.migration;

import io.vfiouser.codec.VfioUserProtocolException;
import io.vfiouser.transport.linux.Errno;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;

/**
 * Cuts the bytes a client writes with MIG_DATA_WRITE, in pieces of any size, back into whole
 * {@link MigrationRecord}s, and checks each record's CRC32C (head fields and body) and the stream's shape: HEADER
 * first, END last, nothing after END, no record longer than {@link MigrationRecord#MAX_LENGTH}. A stream that
 * breaks a rule fails with EINVAL and stays failed; so does one whose records the loader could not load
 * ({@link #fail()}). Only a {@link #complete()} stream may take the device out of RESUMING.
 */
public final class MigrationStreamReader {
    /** A whole record. */
    public record Record(int tag, ByteBuffer body) {
    }

    private final ByteBuffer head = ByteBuffer.allocate(MigrationRecord.HEAD_SIZE).order(ByteOrder.LITTLE_ENDIAN);
    private ByteBuffer body;
    private int tag;
    private int crc;
    /** Whole records read so far (for messages). */
    private long records;
    private boolean sawHeader;
    private boolean sawEnd;
    private boolean failed;
    private long bytes;

    /** Takes {@code data}'s remaining bytes (consumed); returns the records they complete, in order. */
    public List<Record> feed(ByteBuffer data) {
        if (failed) {
            throw invalid("the migration stream failed earlier");
        }
        List<Record> out = new ArrayList<>(1);
        try {
            bytes += data.remaining();
            while (data.hasRemaining()) {
                if (sawEnd) {
                    throw invalid("migration data after the end of the stream");
                }
                if (body == null) {
                    copy(data, head);
                    if (head.hasRemaining()) {
                        break;
                    }
                    tag = head.getInt(0);
                    int length = head.getInt(4);
                    crc = head.getInt(MigrationRecord.CRC_OFFSET);
                    head.clear();
                    if (length < 0 || length > MigrationRecord.MAX_LENGTH) {
                        throw invalid("a migration record of " + Integer.toUnsignedString(length) + " bytes");
                    }
                    if (!sawHeader && tag != MigrationRecord.HEADER) {
                        throw invalid("the migration stream does not start with its header");
                    }
                    body = ByteBuffer.allocate(length).order(ByteOrder.LITTLE_ENDIAN);
                }
                copy(data, body);
                if (!body.hasRemaining()) {
                    body.flip();
                    ByteBuffer fields = ByteBuffer.allocate(MigrationRecord.CRC_OFFSET).order(ByteOrder.LITTLE_ENDIAN)
                            .putInt(tag).putInt(body.remaining()).flip();
                    if (MigrationRecord.checksum(fields, body) != crc) {
                        throw invalid("migration record " + records + " (tag " + tag + ", " + body.remaining()
                                + " bytes) fails its CRC32C: the stream is corrupt");
                    }
                    Record r = new Record(tag, body);
                    body = null;
                    records++;
                    if (r.tag() == MigrationRecord.HEADER) {
                        if (sawHeader) {
                            throw invalid("a second migration stream header");
                        }
                        sawHeader = true;
                    }
                    if (r.tag() == MigrationRecord.END) {
                        sawEnd = true;
                    }
                    out.add(r);
                }
            }
            return out;
        } catch (VfioUserProtocolException e) {
            failed = true;
            throw e;
        }
    }

    /**
     * Marks the stream failed: a record passed its checks but could not be loaded, so the device holds partial
     * state, and the stream must not count as {@link #complete()}.
     */
    public void fail() {
        failed = true;
    }

    /** Whether the stream failed (and stays failed). */
    public boolean failed() {
        return failed;
    }

    /** Whether the stream is whole: it ended with END and no record is cut off. */
    public boolean complete() {
        return sawEnd && !failed && body == null && head.position() == 0;
    }

    /** Bytes fed so far. */
    public long bytes() {
        return bytes;
    }

    private static void copy(ByteBuffer from, ByteBuffer to) {
        int n = Math.min(from.remaining(), to.remaining());
        to.put(to.position(), from, from.position(), n);
        to.position(to.position() + n);
        from.position(from.position() + n);
    }

    private static VfioUserProtocolException invalid(String message) {
        return new VfioUserProtocolException(Errno.EINVAL, message);
    }
}
