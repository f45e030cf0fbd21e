package io.vfiouser.examples.nvme;

/**
 * The values Get/Set Features reads and writes (NVMe 1.4, 5.21.1). Plain fields, owned by the controller thread;
 * a controller reset brings them back to their defaults. No feature is saveable.
 *
 * <p>Every feature NVMe 1.4 makes mandatory for an I/O controller is here (the Feature Identifiers table of
 * 5.21.1: Arbitration, Power Management, Temperature Threshold, Error Recovery, Number of Queues, Interrupt Coalescing, Interrupt Vector
 * Configuration, Write Atomicity Normal, Asynchronous Event Configuration), and Volatile Write Cache since the
 * controller reports one. Hosts ask for them without checking first: SPDK's driver marks all nine supported
 * before it has read anything from the controller ({@code nvme_ctrlr_set_supported_features}).
 */
final class Features {
    static final int ARBITRATION = 0x01;
    static final int POWER_MANAGEMENT = 0x02;
    static final int TEMPERATURE_THRESHOLD = 0x04;
    static final int ERROR_RECOVERY = 0x05;
    static final int VOLATILE_WRITE_CACHE = 0x06;
    static final int NUMBER_OF_QUEUES = 0x07;
    static final int INTERRUPT_COALESCING = 0x08;
    static final int INTERRUPT_VECTOR_CONFIGURATION = 0x09;
    static final int WRITE_ATOMICITY_NORMAL = 0x0A;
    static final int ASYNC_EVENT_CONFIGURATION = 0x0B;

    /** Composite temperature over-threshold default: WCTEMP (343 K). */
    static final int DEFAULT_OVER_TEMPERATURE = 343;

    private final int maxIoQueues;

    int arbitration;
    int powerManagement;
    int overTemperature;
    int underTemperature;
    /** Error Recovery: TLER (bits 15:0, in 100 ms units). DULBE stays 0: unwritten blocks read as zeros. */
    int errorRecovery;
    boolean volatileWriteCache;
    /** I/O submission and completion queues allocated by Number of Queues (1-based). */
    int ioSubmissionQueues;
    int ioCompletionQueues;
    int interruptCoalescing;
    /** Interrupt Vector Configuration: the vectors whose Coalescing Disable bit the host set, one bit each. */
    long coalescingDisabled;
    /** Write Atomicity Normal: Disable Normal (bit 0). */
    boolean atomicityNormalDisabled;
    int asyncEventConfiguration;

    Features(int maxIoQueues) {
        this.maxIoQueues = maxIoQueues;
        reset();
    }

    void reset() {
        arbitration = 0;
        powerManagement = 0;
        overTemperature = DEFAULT_OVER_TEMPERATURE;
        underTemperature = 0;
        errorRecovery = 0;
        volatileWriteCache = true;
        ioSubmissionQueues = maxIoQueues;
        ioCompletionQueues = maxIoQueues;
        interruptCoalescing = 0;
        coalescingDisabled = 0;
        atomicityNormalDisabled = false;
        asyncEventConfiguration = 0;
    }

    /** The dword 0 result of Number of Queues: allocated counts, 0-based. */
    int numberOfQueuesResult() {
        return (ioCompletionQueues - 1) << 16 | (ioSubmissionQueues - 1);
    }

    /** The default value of a feature, as Get Features with SEL = default (and saved) reports it. */
    static int defaultValue(int fid, int maxIoQueues) {
        return switch (fid) {
            case VOLATILE_WRITE_CACHE -> 1;
            case NUMBER_OF_QUEUES -> (maxIoQueues - 1) << 16 | (maxIoQueues - 1);
            case TEMPERATURE_THRESHOLD -> DEFAULT_OVER_TEMPERATURE;
            default -> 0;
        };
    }
}
