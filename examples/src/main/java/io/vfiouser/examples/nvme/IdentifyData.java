package io.vfiouser.examples.nvme;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.UUID;

/**
 * The 4096-byte data structures returned by Identify (NVMe 1.4, 5.15.2): controller, namespace, active namespace
 * list, namespace identification descriptors. Pure functions of the controller's fixed properties.
 */
final class IdentifyData {
    static final int SIZE = 4096;

    static final int CNS_NAMESPACE = 0x00;
    static final int CNS_CONTROLLER = 0x01;
    static final int CNS_ACTIVE_NAMESPACES = 0x02;
    static final int CNS_NAMESPACE_DESCRIPTORS = 0x03;

    /** Namespace identifier types in the descriptor list. */
    static final int NIDT_NGUID = 0x02;
    static final int NIDT_UUID = 0x03;

    // Identify Controller fields used by tests and the controller.
    static final int ONCS_DSM = 1 << 2;
    static final int ONCS_WRITE_ZEROES = 1 << 3;
    /** LPA: Get Log Page supports extended data (NUMDU, LPOL/LPOU). */
    static final int LPA_EXTENDED = 1 << 2;
    /** OACS: the Doorbell Buffer Config command is supported (shadow doorbells). */
    static final int OACS_DOORBELL_BUFFER_CONFIG = 1 << 8;

    /**
     * Who the controller is: the strings and ids Identify Controller reports.
     *
     * @param oacs the optional admin commands supported (OACS)
     */
    record ControllerInfo(int vendorId, int subsystemVendorId, String serial, String model, String firmware,
                          String subsystemNqn, int maxTransferShift, int ioQueues, int aerLimit, int abortLimit,
                          int errorLogEntries, int oacs) {
    }

    /** The one namespace. */
    record NamespaceInfo(long blocks, UUID uuid) {
    }

    private IdentifyData() {
    }

    static ByteBuffer controller(ControllerInfo c) {
        ByteBuffer b = zeroed();
        b.putShort(0, (short) c.vendorId());
        b.putShort(2, (short) c.subsystemVendorId());
        ascii(b, 4, 20, c.serial());
        ascii(b, 24, 40, c.model());
        ascii(b, 64, 8, c.firmware());
        b.put(72, (byte) 0); // RAB: no arbitration burst recommendation
        b.put(77, (byte) c.maxTransferShift()); // MDTS in units of the minimum page size
        b.putShort(78, (short) 1); // CNTLID
        b.putInt(80, Registers.VERSION);
        b.put(111, (byte) 1); // CNTRLTYPE: I/O controller
        b.putShort(256, (short) c.oacs()); // OACS
        b.put(258, (byte) (c.abortLimit() - 1)); // ACL, 0-based
        b.put(259, (byte) (c.aerLimit() - 1)); // AERL, 0-based
        b.put(260, (byte) 0x03); // FRMW: slot 1 read-only, one slot
        b.put(261, (byte) LPA_EXTENDED);
        b.put(262, (byte) (c.errorLogEntries() - 1)); // ELPE, 0-based
        b.put(263, (byte) 0); // NPSS: one power state
        b.putShort(266, (short) 343); // WCTEMP: 70 C in kelvin
        b.putShort(268, (short) 358); // CCTEMP: 85 C
        b.put(512, (byte) ((Registers.SQ_ENTRY_SHIFT << 4) | Registers.SQ_ENTRY_SHIFT)); // SQES
        b.put(513, (byte) ((Registers.CQ_ENTRY_SHIFT << 4) | Registers.CQ_ENTRY_SHIFT)); // CQES
        b.putInt(516, 1); // NN
        b.putShort(520, (short) (ONCS_DSM | ONCS_WRITE_ZEROES));
        b.put(525, (byte) 0x07); // VWC: present, Flush with NSID FFFFFFFFh supported
        b.putInt(536, 0); // SGLS: PRPs only
        ascii0(b, 768, 256, c.subsystemNqn());
        // Power state descriptor 0: 25 W max, no operational restrictions.
        b.putShort(2048, (short) 2500);
        return b;
    }

    static ByteBuffer namespace(NamespaceInfo ns) {
        ByteBuffer b = zeroed();
        b.putLong(0, ns.blocks()); // NSZE
        b.putLong(8, ns.blocks()); // NCAP
        b.putLong(16, ns.blocks()); // NUSE
        b.put(24, (byte) 0); // NSFEAT
        b.put(25, (byte) 0); // NLBAF: one format
        b.put(26, (byte) 0); // FLBAS: format 0, no metadata
        b.put(33, (byte) 0x09); // DLFEAT: deallocated blocks read as zeros; Write Zeroes may deallocate
        putUuid(b, 104, ns.uuid()); // NGUID
        b.putInt(128, NamespaceFile.BLOCK_SHIFT << 16); // LBAF0: no metadata, 512-byte blocks
        return b;
    }

    /** Active namespace ids greater than {@code after}, in increasing order (only namespace 1 exists). */
    static ByteBuffer activeNamespaces(int after) {
        ByteBuffer b = zeroed();
        if (Integer.compareUnsigned(after, 1) < 0) {
            b.putInt(0, 1);
        }
        return b;
    }

    /** The NGUID and UUID descriptors of namespace 1, then the terminating empty descriptor. */
    static ByteBuffer namespaceDescriptors(NamespaceInfo ns) {
        ByteBuffer b = zeroed();
        b.put(0, (byte) NIDT_NGUID).put(1, (byte) 16);
        putUuid(b, 4, ns.uuid());
        b.put(20, (byte) NIDT_UUID).put(21, (byte) 16);
        putUuid(b, 24, ns.uuid());
        return b;
    }

    private static ByteBuffer zeroed() {
        return ByteBuffer.allocate(SIZE).order(ByteOrder.LITTLE_ENDIAN);
    }

    /** Big-endian UUID bytes, as the NGUID and UUID fields hold them. */
    private static void putUuid(ByteBuffer b, int at, UUID uuid) {
        ByteBuffer be = ByteBuffer.allocate(16).putLong(uuid.getMostSignificantBits())
                .putLong(uuid.getLeastSignificantBits());
        b.put(at, be.array());
    }

    /** An ASCII field padded with spaces, as Identify's strings are. */
    private static void ascii(ByteBuffer b, int at, int length, String value) {
        byte[] s = value.getBytes(StandardCharsets.US_ASCII);
        for (int i = 0; i < length; i++) {
            b.put(at + i, i < s.length ? s[i] : (byte) ' ');
        }
    }

    /** A NUL-padded UTF-8 field (the NQN). */
    private static void ascii0(ByteBuffer b, int at, int length, String value) {
        byte[] s = value.getBytes(StandardCharsets.UTF_8);
        b.put(at, s, 0, Math.min(s.length, length - 1));
    }
}
