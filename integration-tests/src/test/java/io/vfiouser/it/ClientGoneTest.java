package io.vfiouser.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.vfiouser.client.VfioUserClient;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * {@code HostedDevice.clientGone()}, what {@code --exit-on-disconnect} waits for: it completes when the client
 * attached (or the next one to attach) has left and the device's teardown is over, and a fresh one waits for the
 * next client.
 */
class ClientGoneTest {
    @Test
    void completesWhenTheClientHasLeftThenWaitsForTheNext() throws Exception {
        try (ServerFixture fixture = new ServerFixture()) {
            CompletableFuture<Void> beforeAnyClient = fixture.device().clientGone();
            VfioUserClient first = fixture.client();
            assertThat(fixture.device().clientGone()).as("the attached client's").isSameAs(beforeAnyClient);
            assertThat(beforeAnyClient).isNotDone();
            first.close();
            beforeAnyClient.get(Wire.TIMEOUT_S, TimeUnit.SECONDS);
            assertThat(fixture.device().hasClient()).isFalse();

            CompletableFuture<Void> next = fixture.device().clientGone();
            assertThat(next).isNotSameAs(beforeAnyClient).isNotDone();
            VfioUserClient second = fixture.client();
            assertThat(next).isNotDone();
            second.close();
            next.get(Wire.TIMEOUT_S, TimeUnit.SECONDS);
        }
    }
}
