package io.vfiouser.examples.nvme;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;

/**
 * The log pages Get Log Page returns (NVMe 1.4, 5.14.1): Error Information, SMART / Health Information and
 * Firmware Slot Information, with the counters behind them. Owned by the controller thread; the counters survive
 * controller resets (they describe the device, not one driver's session).
 */
final class LogPages {
    static final int ERROR_INFORMATION = 0x01;
    static final int SMART_HEALTH = 0x02;
    static final int FIRMWARE_SLOT = 0x03;

    static final int ERROR_ENTRY_SIZE = 64;
    static final int SMART_SIZE = 512;
    static final int FIRMWARE_SLOT_SIZE = 512;
    /** Composite temperature reported: 35 C. */
    static final int TEMPERATURE_KELVIN = 308;

    /** One Error Information entry. */
    record ErrorEntry(long count, int sqId, int cid, int status, long lba, int nsid) {
    }

    private final int errorEntries;
    private final String firmware;
    private final long startNanos = System.nanoTime();
    private final ArrayDeque<ErrorEntry> errors = new ArrayDeque<>();
    long errorCount;
    long blocksRead;
    long blocksWritten;
    long readCommands;
    long writeCommands;

    LogPages(int errorEntries, String firmware) {
        this.errorEntries = errorEntries;
        this.firmware = firmware;
    }

    /** Records a command that failed (or a doorbell write the controller rejected: sqId and cid 0xFFFF). */
    void recordError(int sqId, int cid, int status, long lba, int nsid) {
        errorCount++;
        if (errors.size() == errorEntries) {
            errors.removeLast();
        }
        errors.addFirst(new ErrorEntry(errorCount, sqId, cid, status, lba, nsid));
    }

    /** The whole log page {@code lid}, or null when the controller does not have it. */
    ByteBuffer page(int lid) {
        return switch (lid) {
            case ERROR_INFORMATION -> errorInformation();
            case SMART_HEALTH -> smartHealth();
            case FIRMWARE_SLOT -> firmwareSlot();
            default -> null;
        };
    }

    private ByteBuffer errorInformation() {
        ByteBuffer b = ByteBuffer.allocate(errorEntries * ERROR_ENTRY_SIZE).order(ByteOrder.LITTLE_ENDIAN);
        int at = 0;
        for (ErrorEntry e : errors) {
            b.putLong(at, e.count());
            b.putShort(at + 8, (short) e.sqId());
            b.putShort(at + 10, (short) e.cid());
            // Status field as in the completion entry (bits 15:1), phase bit 0 cleared.
            b.putShort(at + 12, (short) (e.status() << 1));
            b.putShort(at + 14, (short) 0xFFFF); // parameter error location: not specific
            b.putLong(at + 16, e.lba());
            b.putInt(at + 24, e.nsid());
            at += ERROR_ENTRY_SIZE;
        }
        return b;
    }

    private ByteBuffer smartHealth() {
        ByteBuffer b = ByteBuffer.allocate(SMART_SIZE).order(ByteOrder.LITTLE_ENDIAN);
        b.put(0, (byte) 0); // critical warning: none
        b.putShort(1, (short) TEMPERATURE_KELVIN);
        b.put(3, (byte) 100); // available spare
        b.put(4, (byte) 10); // available spare threshold
        b.put(5, (byte) 0); // percentage used
        b.putLong(32, (blocksRead + 999) / 1000); // data units read (1000 x 512 bytes)
        b.putLong(48, (blocksWritten + 999) / 1000);
        b.putLong(64, readCommands);
        b.putLong(80, writeCommands);
        b.putLong(112, 1); // power cycles
        b.putLong(128, (System.nanoTime() - startNanos) / 3_600_000_000_000L); // power-on hours
        b.putLong(176, errorCount); // number of error information log entries
        return b;
    }

    private ByteBuffer firmwareSlot() {
        ByteBuffer b = ByteBuffer.allocate(FIRMWARE_SLOT_SIZE).order(ByteOrder.LITTLE_ENDIAN);
        b.put(0, (byte) 1); // active firmware: slot 1
        byte[] rev = firmware.getBytes(StandardCharsets.US_ASCII);
        for (int i = 0; i < 8; i++) {
            b.put(8 + i, i < rev.length ? rev[i] : (byte) ' ');
        }
        return b;
    }
}
