package io.vfiouser.it.isolation;

import static org.assertj.core.api.Assertions.assertThat;

import io.vfiouser.client.VfioUserClient;
import org.junit.jupiter.api.Test;

/** The harness itself: with a well-behaved client on the victim, the bystander is served within its bound. */
class BaselineIsolationTest {
    @Test
    void bystanderIsHealthyBesideAWellBehavedClient() throws Exception {
        try (IsolationFixture fixture = new IsolationFixture()) {
            Bystander bystander = fixture.startBystander();
            VfioUserClient client = fixture.victimClient();
            assertThat(client.serverCapabilities().maxMsgFds()).isEqualTo(16);
            bystander.awaitProgress(500);
            bystander.assertHealthy();
            assertThat(fixture.bystander().stats()).isNotNull();
        }
    }
}
