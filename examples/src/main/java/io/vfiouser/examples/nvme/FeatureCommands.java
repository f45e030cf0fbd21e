package io.vfiouser.examples.nvme;

/**
 * Get Features and Set Features (NVMe 1.4, 5.15 and 5.21) over the controller's {@link Features}: which feature
 * exists, which values are valid, what each select (current, default, saved, supported capabilities) answers.
 * Pure decisions on the controller thread's state; the one fact from outside, whether I/O queues exist (Number of
 * Queues may change only before), comes with the call.
 */
final class FeatureCommands {
    private static final int NSID_ALL = 0xFFFF_FFFF;
    /** Get Features SEL = 3: the capabilities of a feature (bit 0 saveable, 1 per namespace, 2 changeable). */
    private static final int SELECT_CAPABILITIES = 3;
    private static final int CAPABLE_PER_NAMESPACE = 1 << 1;
    private static final int CAPABLE_CHANGEABLE = 1 << 2;
    /** Error Recovery: Deallocated or Unwritten Logical Block Error Enable, which this namespace cannot offer. */
    private static final int DULBE = 1 << 16;
    /** Interrupt Vector Configuration: Coalescing Disable. */
    private static final int COALESCING_DISABLE = 1 << 16;

    private final Features f;
    private final int maxIoQueues;
    private final int vectors;

    FeatureCommands(Features features, int maxIoQueues, int vectors) {
        if (vectors > Long.SIZE) {
            throw new IllegalArgumentException("at most 64 interrupt vectors: " + vectors);
        }
        this.f = features;
        this.maxIoQueues = maxIoQueues;
        this.vectors = vectors;
    }

    static boolean isKnown(int fid) {
        return switch (fid) {
            case Features.ARBITRATION, Features.POWER_MANAGEMENT, Features.TEMPERATURE_THRESHOLD,
                 Features.ERROR_RECOVERY, Features.VOLATILE_WRITE_CACHE, Features.NUMBER_OF_QUEUES,
                 Features.INTERRUPT_COALESCING, Features.INTERRUPT_VECTOR_CONFIGURATION,
                 Features.WRITE_ATOMICITY_NORMAL, Features.ASYNC_EVENT_CONFIGURATION -> true;
            default -> false;
        };
    }

    /** Set Features; {@code ioQueuesExist} says whether any I/O queue has been created. */
    Completion set(Command cmd, boolean ioQueuesExist) {
        int fid = cmd.cdw10() & 0xFF;
        boolean save = (cmd.cdw10() & (1 << 31)) != 0;
        int value = cmd.cdw11();
        if (save) {
            return Completion.error(isKnown(fid) ? Status.FEATURE_NOT_SAVEABLE : Status.INVALID_FIELD);
        }
        switch (fid) {
            case Features.ARBITRATION -> f.arbitration = value & 0xFFFF_FF07;
            case Features.POWER_MANAGEMENT -> {
                if ((value & 0x1F) != 0) { // only power state 0 exists
                    return Completion.error(Status.INVALID_FIELD);
                }
                f.powerManagement = value & 0xFF;
            }
            case Features.TEMPERATURE_THRESHOLD -> {
                int threshold = value & 0xFFFF;
                int sensor = (value >>> 16) & 0xF;
                int type = (value >>> 20) & 3;
                if (sensor != 0 || type > 1) {
                    return Completion.error(Status.INVALID_FIELD);
                }
                if (type == 0) {
                    f.overTemperature = threshold;
                } else {
                    f.underTemperature = threshold;
                }
            }
            case Features.ERROR_RECOVERY -> {
                if (!namespaceForSet(cmd.nsid())) {
                    return Completion.error(Status.INVALID_NAMESPACE);
                }
                if ((value & DULBE) != 0) { // NSFEAT bit 2 is clear: no error for unwritten blocks
                    return Completion.error(Status.INVALID_FIELD);
                }
                f.errorRecovery = value & 0xFFFF;
            }
            case Features.VOLATILE_WRITE_CACHE -> f.volatileWriteCache = (value & 1) != 0;
            case Features.NUMBER_OF_QUEUES -> {
                int sqRequested = value & 0xFFFF;
                int cqRequested = value >>> 16;
                if (sqRequested == 0xFFFF || cqRequested == 0xFFFF) {
                    return Completion.error(Status.INVALID_FIELD);
                }
                if (ioQueuesExist) {
                    return Completion.error(Status.COMMAND_SEQUENCE_ERROR);
                }
                f.ioSubmissionQueues = Math.min(sqRequested + 1, maxIoQueues);
                f.ioCompletionQueues = Math.min(cqRequested + 1, maxIoQueues);
                return Completion.ok(f.numberOfQueuesResult());
            }
            case Features.INTERRUPT_COALESCING -> f.interruptCoalescing = value & 0xFFFF;
            case Features.INTERRUPT_VECTOR_CONFIGURATION -> {
                int vector = value & 0xFFFF;
                if (vector >= vectors) {
                    return Completion.error(Status.INVALID_FIELD);
                }
                if ((value & COALESCING_DISABLE) != 0) {
                    f.coalescingDisabled |= 1L << vector;
                } else {
                    f.coalescingDisabled &= ~(1L << vector);
                }
            }
            case Features.WRITE_ATOMICITY_NORMAL -> f.atomicityNormalDisabled = (value & 1) != 0;
            case Features.ASYNC_EVENT_CONFIGURATION -> f.asyncEventConfiguration = value;
            default -> {
                return Completion.error(Status.INVALID_FIELD);
            }
        }
        return Completion.OK;
    }

    /** Get Features with any select. */
    Completion get(Command cmd) {
        int fid = cmd.cdw10() & 0xFF;
        int select = (cmd.cdw10() >>> 8) & 7;
        if (!isKnown(fid) || select > SELECT_CAPABILITIES) {
            return Completion.error(Status.INVALID_FIELD);
        }
        if (fid == Features.ERROR_RECOVERY && cmd.nsid() != 0 && cmd.nsid() != 1) {
            return Completion.error(Status.INVALID_NAMESPACE);
        }
        if (fid == Features.INTERRUPT_VECTOR_CONFIGURATION && (cmd.cdw11() & 0xFFFF) >= vectors) {
            return Completion.error(Status.INVALID_FIELD);
        }
        if (select == SELECT_CAPABILITIES) {
            // Changeable, not saveable; Error Recovery is a namespace's feature since NVMe 1.4.
            return Completion.ok(CAPABLE_CHANGEABLE | (fid == Features.ERROR_RECOVERY ? CAPABLE_PER_NAMESPACE : 0));
        }
        if (select != 0) {
            return defaultValue(fid, cmd.cdw11());
        }
        return switch (fid) {
            case Features.ARBITRATION -> Completion.ok(f.arbitration);
            case Features.POWER_MANAGEMENT -> Completion.ok(f.powerManagement);
            case Features.TEMPERATURE_THRESHOLD -> {
                int sensor = (cmd.cdw11() >>> 16) & 0xF;
                int type = (cmd.cdw11() >>> 20) & 3;
                if (sensor != 0 || type > 1) {
                    yield Completion.error(Status.INVALID_FIELD);
                }
                yield Completion.ok(type == 0 ? f.overTemperature : f.underTemperature);
            }
            case Features.ERROR_RECOVERY -> Completion.ok(f.errorRecovery);
            case Features.VOLATILE_WRITE_CACHE -> Completion.ok(f.volatileWriteCache ? 1 : 0);
            case Features.NUMBER_OF_QUEUES -> Completion.ok(f.numberOfQueuesResult());
            case Features.INTERRUPT_COALESCING -> Completion.ok(f.interruptCoalescing);
            case Features.INTERRUPT_VECTOR_CONFIGURATION -> {
                int vector = cmd.cdw11() & 0xFFFF;
                boolean disabled = (f.coalescingDisabled & (1L << vector)) != 0;
                yield Completion.ok(vector | (disabled ? COALESCING_DISABLE : 0));
            }
            case Features.WRITE_ATOMICITY_NORMAL -> Completion.ok(f.atomicityNormalDisabled ? 1 : 0);
            case Features.ASYNC_EVENT_CONFIGURATION -> Completion.ok(f.asyncEventConfiguration);
            default -> Completion.error(Status.INVALID_FIELD);
        };
    }

    /** SEL = default or saved: the value after a controller reset (nothing is saveable). */
    private Completion defaultValue(int fid, int cdw11) {
        return switch (fid) {
            // The under-temperature threshold's default is 0, the over-temperature one's WCTEMP.
            case Features.TEMPERATURE_THRESHOLD -> Completion.ok(((cdw11 >>> 20) & 3) == 1 ? 0
                    : Features.DEFAULT_OVER_TEMPERATURE);
            case Features.INTERRUPT_VECTOR_CONFIGURATION -> Completion.ok(cdw11 & 0xFFFF);
            default -> Completion.ok(Features.defaultValue(fid, maxIoQueues));
        };
    }

    /** Set Features of a namespace's feature applies to namespace 1 or to all (FFFFFFFFh); 0 means the same here. */
    private static boolean namespaceForSet(int nsid) {
        return nsid == 0 || nsid == 1 || nsid == NSID_ALL;
    }
}
