package io.vfiouser.examples.nvme;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

/** Get/Set Features without a controller: every mandatory feature of NVMe 1.4, its values, selects and errors. */
class FeatureCommandsTest {
    private static final int SET = 0x09;
    private static final int GET = 0x0A;
    private static final int MAX_IO_QUEUES = 16;
    private static final int VECTORS = 17;
    /** The features NVMe 1.4 makes mandatory for an I/O controller, and Volatile Write Cache (reported). */
    private static final int[] MANDATORY = {0x01, 0x02, 0x04, 0x05, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x06};

    private final Features features = new Features(MAX_IO_QUEUES);
    private final FeatureCommands commands = new FeatureCommands(features, MAX_IO_QUEUES, VECTORS);

    private static Command cmd(int opcode, int nsid, int cdw10, int cdw11) {
        return new Command(opcode, 0, 0, 1, nsid, 0, 0, cdw10, cdw11, 0, 0, 0, 0);
    }

    private Completion get(int fid, int select, int cdw11) {
        return commands.get(cmd(GET, 0, select << 8 | fid, cdw11));
    }

    private Completion set(int fid, int value) {
        return commands.set(cmd(SET, 0, fid, value), false);
    }

    @Test
    void everyMandatoryFeatureAnswersEverySelect() {
        for (int fid : MANDATORY) {
            for (int select = 0; select <= 2; select++) {
                assertThat(get(fid, select, 0).status()).as("FID 0x%x SEL %d", fid, select).isZero();
            }
            Completion capabilities = get(fid, 3, 0);
            assertThat(capabilities.status()).isZero();
            assertThat(capabilities.result() & 0b101).as("FID 0x%x: changeable, not saveable", fid)
                    .isEqualTo(0b100);
        }
        assertThat(get(Features.ERROR_RECOVERY, 3, 0).result() & 0b10).as("Error Recovery is per namespace")
                .isEqualTo(0b10);
        assertThat(get(0x0C, 0, 0).status()).as("Autonomous Power State Transition is not offered")
                .isEqualTo(Status.INVALID_FIELD);
        assertThat(get(0x01, 4, 0).status()).as("SEL 4 is reserved").isEqualTo(Status.INVALID_FIELD);
    }

    @Test
    void errorRecoveryKeepsTlerAndRefusesDulbe() {
        assertThat(get(Features.ERROR_RECOVERY, 0, 0).result()).isZero();
        assertThat(set(Features.ERROR_RECOVERY, 25).status()).isZero();
        assertThat(get(Features.ERROR_RECOVERY, 0, 0).result()).isEqualTo(25);
        assertThat(commands.get(cmd(GET, 1, Features.ERROR_RECOVERY, 0)).result()).as("namespace 1").isEqualTo(25);
        assertThat(get(Features.ERROR_RECOVERY, 1, 0).result()).as("default").isZero();
        assertThat(set(Features.ERROR_RECOVERY, 1 << 16 | 3).status()).as("DULBE without NSFEAT bit 2")
                .isEqualTo(Status.INVALID_FIELD);
        assertThat(get(Features.ERROR_RECOVERY, 0, 0).result()).as("unchanged by the refused set").isEqualTo(25);
        assertThat(commands.set(cmd(SET, 0xFFFF_FFFF, Features.ERROR_RECOVERY, 7), false).status())
                .as("all namespaces").isZero();
        assertThat(commands.set(cmd(SET, 2, Features.ERROR_RECOVERY, 7), false).status())
                .isEqualTo(Status.INVALID_NAMESPACE);
        assertThat(commands.get(cmd(GET, 2, Features.ERROR_RECOVERY, 0)).status())
                .isEqualTo(Status.INVALID_NAMESPACE);
    }

    @Test
    void interruptVectorConfigurationIsPerVector() {
        assertThat(get(Features.INTERRUPT_VECTOR_CONFIGURATION, 0, 3).result()).as("IV echoed, CD clear")
                .isEqualTo(3);
        assertThat(set(Features.INTERRUPT_VECTOR_CONFIGURATION, 1 << 16 | 3).status()).isZero();
        assertThat(get(Features.INTERRUPT_VECTOR_CONFIGURATION, 0, 3).result()).isEqualTo(1 << 16 | 3);
        assertThat(get(Features.INTERRUPT_VECTOR_CONFIGURATION, 0, 4).result()).as("another vector").isEqualTo(4);
        assertThat(get(Features.INTERRUPT_VECTOR_CONFIGURATION, 1, 3).result()).as("default").isEqualTo(3);
        assertThat(set(Features.INTERRUPT_VECTOR_CONFIGURATION, 3).status()).isZero();
        assertThat(get(Features.INTERRUPT_VECTOR_CONFIGURATION, 0, 3).result()).isEqualTo(3);
        assertThat(set(Features.INTERRUPT_VECTOR_CONFIGURATION, VECTORS).status()).as("no such vector")
                .isEqualTo(Status.INVALID_FIELD);
        assertThat(get(Features.INTERRUPT_VECTOR_CONFIGURATION, 0, VECTORS).status())
                .isEqualTo(Status.INVALID_FIELD);
    }

    @Test
    void writeAtomicityNormalTogglesDisableNormal() {
        assertThat(get(Features.WRITE_ATOMICITY_NORMAL, 0, 0).result()).isZero();
        assertThat(set(Features.WRITE_ATOMICITY_NORMAL, 1).status()).isZero();
        assertThat(get(Features.WRITE_ATOMICITY_NORMAL, 0, 0).result()).isEqualTo(1);
        assertThat(get(Features.WRITE_ATOMICITY_NORMAL, 1, 0).result()).as("default").isZero();
        features.reset();
        assertThat(get(Features.WRITE_ATOMICITY_NORMAL, 0, 0).result()).as("after a controller reset").isZero();
    }

    @Test
    void settableFeaturesReadBackWhatWasSet() {
        assertThat(set(Features.ARBITRATION, 0x0302_0103).status()).isZero();
        assertThat(get(Features.ARBITRATION, 0, 0).result()).isEqualTo(0x0302_0103);
        assertThat(set(Features.POWER_MANAGEMENT, 1).status()).as("no power state 1")
                .isEqualTo(Status.INVALID_FIELD);
        assertThat(set(Features.POWER_MANAGEMENT, 0x40).status()).as("workload hint 2").isZero();
        assertThat(get(Features.POWER_MANAGEMENT, 0, 0).result()).isEqualTo(0x40);
        assertThat(set(Features.TEMPERATURE_THRESHOLD, 1 << 20 | 250).status()).isZero();
        assertThat(get(Features.TEMPERATURE_THRESHOLD, 0, 1 << 20).result()).isEqualTo(250);
        assertThat(get(Features.TEMPERATURE_THRESHOLD, 0, 0).result()).isEqualTo(343);
        assertThat(set(Features.VOLATILE_WRITE_CACHE, 0).status()).isZero();
        assertThat(get(Features.VOLATILE_WRITE_CACHE, 0, 0).result()).isZero();
        assertThat(set(Features.INTERRUPT_COALESCING, 0x0A05).status()).isZero();
        assertThat(get(Features.INTERRUPT_COALESCING, 0, 0).result()).isEqualTo(0x0A05);
        assertThat(set(Features.ASYNC_EVENT_CONFIGURATION, 0x1F).status()).isZero();
        assertThat(get(Features.ASYNC_EVENT_CONFIGURATION, 0, 0).result()).isEqualTo(0x1F);
    }

    @Test
    void numberOfQueuesOnlyBeforeQueuesExistAndNothingIsSaveable() {
        Completion c = set(Features.NUMBER_OF_QUEUES, 3 << 16 | 1);
        assertThat(c.status()).isZero();
        assertThat(c.result()).isEqualTo(3 << 16 | 1);
        assertThat(commands.set(cmd(SET, 0, Features.NUMBER_OF_QUEUES, 0), true).status())
                .isEqualTo(Status.COMMAND_SEQUENCE_ERROR);
        assertThat(set(Features.NUMBER_OF_QUEUES, 100 << 16 | 100).result()).as("capped at the maximum")
                .isEqualTo((MAX_IO_QUEUES - 1) << 16 | (MAX_IO_QUEUES - 1));
        for (int fid : MANDATORY) {
            assertThat(commands.set(cmd(SET, 0, 1 << 31 | fid, 0), false).status()).as("SV for FID 0x%x", fid)
                    .isEqualTo(Status.FEATURE_NOT_SAVEABLE);
        }
    }
}
