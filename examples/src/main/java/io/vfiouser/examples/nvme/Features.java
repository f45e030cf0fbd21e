package io.vfiouser.examples.nvme;

/**
 * The values Get/Set Features reads and writes (NVMe 1.4, 5.21.1). Plain fields, owned by the controller thread;
 * a controller reset brings them back to their defaults. No feature is saveable.
 */
final class Features {
    static final int ARBITRATION = 0x01;
    static final int POWER_MANAGEMENT = 0x02;
    static final int TEMPERATURE_THRESHOLD = 0x04;
    static final int VOLATILE_WRITE_CACHE = 0x06;
    static final int NUMBER_OF_QUEUES = 0x07;
    static final int INTERRUPT_COALESCING = 0x08;
    static final int ASYNC_EVENT_CONFIGURATION = 0x0B;

    /** Composite temperature over-threshold default: WCTEMP (343 K). */
    static final int DEFAULT_OVER_TEMPERATURE = 343;

    private final int maxIoQueues;

    int arbitration;
    int powerManagement;
    int overTemperature;
    int underTemperature;
    boolean volatileWriteCache;
    /** I/O submission and completion queues allocated by Number of Queues (1-based). */
    int ioSubmissionQueues;
    int ioCompletionQueues;
    int interruptCoalescing;
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
        volatileWriteCache = true;
        ioSubmissionQueues = maxIoQueues;
        ioCompletionQueues = maxIoQueues;
        interruptCoalescing = 0;
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
