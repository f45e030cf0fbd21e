package io.vfiouser.examples.nvme;

/**
 * The controller registers at the start of BAR0 (NVMe 1.4, 3.1) and their fields. The values live in plain fields
 * of the controller; this class holds the layout and what the controller advertises.
 */
final class Registers {
    static final int CAP = 0x00;
    static final int VS = 0x08;
    static final int INTMS = 0x0C;
    static final int INTMC = 0x10;
    static final int CC = 0x14;
    static final int CSTS = 0x1C;
    static final int NSSR = 0x20;
    static final int AQA = 0x24;
    static final int ASQ = 0x28;
    static final int ACQ = 0x30;
    /** The first doorbell; doorbells are 4 bytes apart (CAP.DSTRD = 0): SQ y tail at 2y, CQ y head at 2y + 1. */
    static final int DOORBELLS = 0x1000;

    /** NVMe 1.4.0. */
    static final int VERSION = 0x0001_0400;

    /** The largest queue the controller accepts, in entries. */
    static final int MAX_QUEUE_ENTRIES = 1024;
    /** The largest admin queue, in entries (AQA fields are 12 bits). */
    static final int MAX_ADMIN_QUEUE_ENTRIES = 4096;
    /** CAP.TO: how long the host waits for CSTS.RDY to follow CC.EN, in 500 ms units (10 s). */
    static final int TIMEOUT_UNITS = 20;

    /**
     * CAP: MQES, contiguous queues required, no arbitration beyond round robin, TO, doorbell stride 4 bytes, the NVM
     * command set only, memory page size 4 KiB only (MPSMIN = MPSMAX = 0).
     */
    static final long CAPABILITIES = (MAX_QUEUE_ENTRIES - 1)
            | 1L << 16
            | (long) TIMEOUT_UNITS << 24
            | 1L << 37;

    // CC fields.
    static final int CC_EN = 1;
    static final int CC_CSS_SHIFT = 4;
    static final int CC_MPS_SHIFT = 7;
    static final int CC_SHN_SHIFT = 14;
    static final int CC_IOSQES_SHIFT = 16;
    static final int CC_IOCQES_SHIFT = 20;
    /** The bits of CC that are not reserved. */
    static final int CC_WRITABLE = 0x00FF_FFF1;

    // CSTS fields.
    static final int CSTS_RDY = 1;
    static final int CSTS_CFS = 1 << 1;
    static final int CSTS_SHST_OCCURRING = 1 << 2;
    static final int CSTS_SHST_COMPLETE = 2 << 2;
    static final int CSTS_SHST_MASK = 3 << 2;

    /** Submission queue entries are 64 bytes (2^6), completion entries 16 (2^4). */
    static final int SQ_ENTRY_SHIFT = 6;
    static final int CQ_ENTRY_SHIFT = 4;

    private Registers() {
    }
}
