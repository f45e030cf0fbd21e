package io.vfiouser.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.vfiouser.client.ClientOptions;
import io.vfiouser.client.VfioUserClient;
import io.vfiouser.codec.VfioUserCommand;
import io.vfiouser.codec.VfioUserMessage;
import io.vfiouser.codec.payload.VersionPayload;
import io.vfiouser.device.ResetReason;
import io.vfiouser.device.VfioUserDevice;
import io.vfiouser.examples.nulldev.NullDevice;
import java.nio.ByteBuffer;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * When a client leaves, the device is reset with reason LOST_CONNECTION; the next client's commands wait until
 * that reset is over, so a slow reset can never clobber what the next client does.
 */
class ReattachTest {

    /** A device whose resets complete when the test says so. */
    static final class SlowResetDevice implements VfioUserDevice {
        final LinkedBlockingQueue<ResetReason> resets = new LinkedBlockingQueue<>();
        volatile CompletableFuture<Void> resetDone = CompletableFuture.completedFuture(null);
        /** A reset has been asked for and its future has not completed yet. */
        volatile boolean resetRunning;
        /** For each attach: whether no reset was running at that moment. */
        final LinkedBlockingQueue<Boolean> attachedAfterReset = new LinkedBlockingQueue<>();

        @Override
        public void attached(io.vfiouser.device.DeviceContext context) {
            attachedAfterReset.add(!resetRunning);
        }

        @Override
        public CompletableFuture<Void> regionRead(int region, long offset, ByteBuffer dst) {
            return DONE;
        }

        @Override
        public CompletableFuture<Void> regionWrite(int region, long offset, ByteBuffer src) {
            return DONE;
        }

        @Override
        public CompletableFuture<Void> reset(ResetReason reason) {
            resetRunning = true;
            resets.add(reason);
            return resetDone.thenRun(() -> resetRunning = false);
        }
    }

    @Test
    void theNextClientWaitsForTheResetAfterTheLastOne() throws Exception {
        SlowResetDevice device = new SlowResetDevice();
        try (ServerFixture fixture = new ServerFixture(NullDevice.description("slow"), device)) {
            VfioUserClient first = fixture.client();
            device.resetDone = new CompletableFuture<>();
            first.close();
            assertThat(device.resets.poll(20, TimeUnit.SECONDS)).isEqualTo(ResetReason.LOST_CONNECTION);
            fixture.awaitNoClient();

            VfioUserClient second = fixture.client(ClientOptions.DEFAULT.withoutNegotiation());
            CompletableFuture<VfioUserMessage> version = second.send(VfioUserCommand.VERSION,
                    VersionPayload.of(0, 0, second.capabilities()));
            // Nothing is answered while the reset runs (an unfixed server answers within milliseconds; the fixed
            // one cannot answer at all before the reset completes, so this wait cannot make the test flaky).
            assertThat(version).failsWithin(500, TimeUnit.MILLISECONDS)
                    .withThrowableOfType(java.util.concurrent.TimeoutException.class);
            device.resetDone.complete(null);
            VfioUserMessage reply = version.get(20, TimeUnit.SECONDS);
            assertThat(reply.header().isError()).isFalse();
            reply.release();
            assertThat(device.attachedAfterReset.poll(20, TimeUnit.SECONDS)).as("first client").isTrue();
            assertThat(device.attachedAfterReset.poll(20, TimeUnit.SECONDS)).as("second client").isTrue();
        }
    }
}
