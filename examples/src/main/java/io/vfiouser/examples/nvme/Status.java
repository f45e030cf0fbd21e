package io.vfiouser.examples.nvme;

/**
 * NVMe completion status values as the 15-bit Status Field of completion dword 3 (bits 31:17 shifted down): status
 * code in bits 7:0, status code type in bits 10:8, Do Not Retry in bit 14. Errors the host cannot fix by retrying
 * carry DNR, so a guest driver reports them at once instead of retrying.
 */
final class Status {
    static final int SUCCESS = 0;
    /** Do Not Retry. */
    static final int DNR = 1 << 14;

    // Generic command status (SCT 0).
    static final int INVALID_OPCODE = 0x01 | DNR;
    static final int INVALID_FIELD = 0x02 | DNR;
    static final int DATA_TRANSFER_ERROR = 0x04 | DNR;
    static final int INTERNAL_ERROR = 0x06;
    static final int ABORT_REQUESTED = 0x07;
    static final int ABORTED_SQ_DELETION = 0x08;
    static final int INVALID_NAMESPACE = 0x0B | DNR;
    static final int COMMAND_SEQUENCE_ERROR = 0x0C | DNR;
    static final int PRP_OFFSET_INVALID = 0x13 | DNR;
    static final int LBA_OUT_OF_RANGE = 0x80 | DNR;

    // Command specific status (SCT 1).
    static final int COMPLETION_QUEUE_INVALID = 0x100 | DNR;
    static final int INVALID_QUEUE_IDENTIFIER = 0x101 | DNR;
    static final int INVALID_QUEUE_SIZE = 0x102 | DNR;
    static final int AER_LIMIT_EXCEEDED = 0x105 | DNR;
    static final int INVALID_INTERRUPT_VECTOR = 0x108 | DNR;
    static final int INVALID_LOG_PAGE = 0x109 | DNR;
    static final int INVALID_QUEUE_DELETION = 0x10C | DNR;
    static final int FEATURE_NOT_SAVEABLE = 0x10D | DNR;

    private Status() {
    }

    /** The status code type (0 generic, 1 command specific, ...). */
    static int type(int status) {
        return (status >>> 8) & 7;
    }

    /** The status code. */
    static int code(int status) {
        return status & 0xFF;
    }
}
