package io.vfiouser.examples.nvme;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.ByteBuffer;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The features NVMe 1.4 added travel with a migrated controller and reach the destination's Get Features. */
class ControllerSnapshotFeaturesTest {
    @TempDir
    Path dir;

    @Test
    void errorRecoveryVectorConfigurationAndAtomicityMigrate() throws Exception {
        try (NamespaceFile source = NamespaceFile.open(dir.resolve("a.img"), 1 << 20, "snapshot-test-a");
             NamespaceFile destination = NamespaceFile.open(dir.resolve("b.img"), 1 << 20, "snapshot-test-b")) {
            NvmeController from = new NvmeController(Runnable::run, source, "S1", 4, 5, DoorbellMode.DEFAULT);
            NvmeController to = new NvmeController(Runnable::run, destination, "S1", 4, 5, DoorbellMode.DEFAULT);
            from.features.errorRecovery = 42;
            from.features.coalescingDisabled = 0b10010;
            from.features.atomicityNormalDisabled = true;
            from.features.arbitration = 3;

            ByteBuffer state = ControllerSnapshot.save(from);
            ControllerSnapshot.load(to, state);

            assertThat(to.features.errorRecovery).isEqualTo(42);
            assertThat(to.features.coalescingDisabled).isEqualTo(0b10010);
            assertThat(to.features.atomicityNormalDisabled).isTrue();
            assertThat(to.features.arbitration).isEqualTo(3);
            FeatureCommands get = new FeatureCommands(to.features, 4, 5);
            Command vector4 = new Command(0x0A, 0, 0, 1, 0, 0, 0, Features.INTERRUPT_VECTOR_CONFIGURATION, 4, 0, 0,
                    0, 0);
            assertThat(get.get(vector4).result()).isEqualTo(1 << 16 | 4);
        }
    }
}
