package io.vfiouser.server.migration;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.vfiouser.codec.VfioUserProtocolException;
import io.vfiouser.codec.payload.DeviceFeature;
import io.vfiouser.codec.payload.MigDeviceState;
import io.vfiouser.device.MigrationState;
import io.vfiouser.device.VfioUserDevice;
import io.vfiouser.server.dma.DmaTable;
import io.vfiouser.transport.linux.Errno;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;

/**
 * DEVICE_FEATURE's operation rules without a socket (digest 3.16): what each feature offers, PROBE, the argsz rules
 * of GET and SET, and that a SET drives the state machine it was given.
 */
class DeviceFeaturesTest {
    private final List<Integer> targets = new ArrayList<>();
    private final DeviceFeatures.StateMachine machine = new DeviceFeatures.StateMachine() {
        @Override
        public boolean preCopy() {
            return true;
        }

        @Override
        public MigrationState state() {
            return MigrationState.STOP;
        }

        @Override
        public CompletableFuture<Void> setState(int code) {
            targets.add(code);
            return VfioUserDevice.DONE;
        }
    };
    private final DeviceFeatures features = new DeviceFeatures(machine, new DmaTable(), 1 << 20);

    @Test
    void withoutMigrationNoFeatureIsOffered() {
        DeviceFeatures none = new DeviceFeatures(null, new DmaTable(), 1 << 20);
        assertEinval(() -> none.handle(request(DeviceFeature.FEATURE_MIGRATION | DeviceFeature.PROBE, 8)));
    }

    @Test
    void getMigrationReportsStopCopyAndPreCopy() {
        DeviceFeature reply = features.handle(request(DeviceFeature.FEATURE_MIGRATION | DeviceFeature.GET, 16)).join();
        try {
            assertThat(reply.argsz()).isEqualTo(16);
            assertThat(reply.data().getLongLE(0))
                    .isEqualTo(DeviceFeature.MIGRATION_STOP_COPY | DeviceFeature.MIGRATION_PRE_COPY);
        } finally {
            reply.data().release();
        }
    }

    @Test
    void getStateReadsTheMachine() {
        DeviceFeature reply =
                features.handle(request(DeviceFeature.FEATURE_MIG_DEVICE_STATE | DeviceFeature.GET, 16)).join();
        try {
            assertThat(MigDeviceState.decode(reply.data()).deviceState()).isEqualTo(MigDeviceState.STOP);
        } finally {
            reply.data().release();
        }
    }

    @Test
    void getWhoseArgszCannotHoldTheReplyIsRefused() {
        assertEinval(() -> features.handle(request(DeviceFeature.FEATURE_MIG_DEVICE_STATE | DeviceFeature.GET, 15)));
    }

    @Test
    void setDrivesTheMachineAndEchoes() {
        ByteBuf data = MigDeviceState.of(MigDeviceState.STOP_COPY).encode();
        DeviceFeature request = new DeviceFeature(16, DeviceFeature.FEATURE_MIG_DEVICE_STATE | DeviceFeature.SET,
                data);
        DeviceFeature reply = features.handle(request).join();
        try {
            assertThat(targets).containsExactly(MigDeviceState.STOP_COPY);
            assertThat(reply.flags()).isEqualTo(request.flags());
            assertThat(reply.data()).isEqualTo(data);
        } finally {
            reply.data().release();
            data.release();
        }
    }

    @Test
    void operationsTheFeatureDoesNotOfferAreRefused() {
        assertEinval(() -> features.handle(request(DeviceFeature.FEATURE_MIGRATION | DeviceFeature.SET, 8)));
        assertEinval(() -> features.handle(request(DeviceFeature.FEATURE_DMA_LOGGING_START | DeviceFeature.GET, 8)));
        assertEinval(() -> features.handle(request(3 | DeviceFeature.PROBE, 8)));
        assertEinval(() -> features.handle(request(DeviceFeature.FEATURE_MIG_DEVICE_STATE, 8)));
        assertEinval(() -> features.handle(request(DeviceFeature.FEATURE_MIG_DEVICE_STATE | DeviceFeature.GET
                | DeviceFeature.SET, 8)));
        assertThat(targets).isEmpty();
    }

    @Test
    void probeEchoesAndChangesNothing() {
        DeviceFeature reply = features.handle(request(DeviceFeature.FEATURE_MIG_DEVICE_STATE | DeviceFeature.GET
                | DeviceFeature.SET | DeviceFeature.PROBE, 8)).join();
        assertThat(reply.argsz()).isEqualTo(8);
        assertThat(targets).isEmpty();
        reply.data().release();
    }

    private static DeviceFeature request(int flags, long argsz) {
        return new DeviceFeature(argsz, flags, Unpooled.EMPTY_BUFFER);
    }

    private static void assertEinval(Runnable call) {
        assertThatThrownBy(call::run).isInstanceOfSatisfying(VfioUserProtocolException.class,
                e -> assertThat(e.errno()).isEqualTo(Errno.EINVAL));
    }
}
