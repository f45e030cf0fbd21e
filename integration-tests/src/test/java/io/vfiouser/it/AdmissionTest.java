package io.vfiouser.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.vfiouser.client.ClientOptions;
import io.vfiouser.client.VfioUserClient;
import io.vfiouser.it.isolation.Conditions;
import io.vfiouser.it.isolation.RawPeer;
import io.vfiouser.server.ConnectionLimits;
import io.vfiouser.server.HostedDevice;
import io.vfiouser.server.ServerOptions;
import java.time.Duration;
import org.junit.jupiter.api.Test;

/**
 * Who gets the device when (issue 11, defects 4 and 5): a connection that arrives while the device has a client is
 * held, unread, and attaches when that client has left and the device has been reset; held connections are bounded
 * in number and in time; a client that does not negotiate in time loses the device.
 */
class AdmissionTest {
    private static ServerOptions limits(ConnectionLimits.Builder b) {
        return ServerOptions.DEFAULT.withLimits(b.build());
    }

    @Test
    void aClientThatReconnectsAtOnceIsNeverRefused() throws Exception {
        try (ServerFixture fixture = new ServerFixture()) {
            HostedDevice device = fixture.device();
            for (int i = 0; i < 300; i++) {
                // connect() negotiates: the new client must get the device although the last one just left.
                VfioUserClient client = fixture.client();
                assertThat(client.serverCapabilities()).as("cycle %d", i).isNotNull();
                client.close();
            }
            assertThat(device.stats().getClientsRefused()).isZero();
            assertThat(device.stats().getClientsAccepted()).isEqualTo(300);
        }
    }

    @Test
    void heldConnectionsAreServedInArrivalOrderAndOneTooManyIsClosedAtOnce() throws Exception {
        try (ServerFixture fixture = new ServerFixture(limits(ConnectionLimits.builder().maxHeldConnections(2)))) {
            HostedDevice device = fixture.device();
            VfioUserClient attached = fixture.client();
            // The server has two event loops: each connection is held before the next one comes, so the order in
            // which they wait is the order of the connects.
            try (RawPeer first = RawPeer.connect(fixture.socket())) {
                first.sendVersion(1);
                Conditions.await("the first connection is held", () -> device.heldConnections() == 1);
                try (RawPeer second = RawPeer.connect(fixture.socket())) {
                    second.sendVersion(2);
                    Conditions.await("the second connection is held", () -> device.heldConnections() == 2);
                    try (RawPeer third = RawPeer.connect(fixture.socket())) {
                        third.awaitClosedByServer();
                    }
                    assertThat(device.stats().getClientsRefused()).isEqualTo(1);
                    assertThat(first.hasData()).as("a held connection is not answered").isFalse();
                    assertThat(second.hasData()).isFalse();

                    attached.close();
                    assertThat(first.awaitReply()).as("VERSION reply to the first held connection").isEqualTo(1);
                    assertThat(second.hasData()).as("the second waits while the first has the device").isFalse();
                    assertThat(device.heldConnections()).isEqualTo(1);
                    first.close();
                    assertThat(second.awaitReply()).as("VERSION reply to the second held connection").isEqualTo(2);
                }
            }
        }
    }

    @Test
    void aHeldConnectionWhosePeerHangsUpIsDroppedAndTheNextOneIsServed() throws Exception {
        try (ServerFixture fixture = new ServerFixture()) {
            HostedDevice device = fixture.device();
            VfioUserClient attached = fixture.client();
            RawPeer quitter = RawPeer.connect(fixture.socket());
            quitter.sendVersion(1);
            Conditions.await("the connection is held", () -> device.heldConnections() == 1);
            quitter.close();
            // Noticed while the device is still taken, although the server reads nothing from a held connection.
            Conditions.await("the hung-up connection is dropped", () -> device.heldConnections() == 0);
            assertThat(device.hasClient()).isTrue();
            try (RawPeer next = RawPeer.connect(fixture.socket())) {
                next.sendVersion(2);
                Conditions.await("the next connection is held", () -> device.heldConnections() == 1);
                attached.close();
                assertThat(next.awaitReply()).isEqualTo(2);
            }
        }
    }

    @Test
    void aHeldConnectionIsClosedAfterTheHoldTimeout() throws Exception {
        Duration hold = Duration.ofMillis(300);
        try (ServerFixture fixture = new ServerFixture(limits(ConnectionLimits.builder().holdTimeout(hold)))) {
            HostedDevice device = fixture.device();
            VfioUserClient attached = fixture.client();
            long t0 = System.nanoTime();
            try (RawPeer waiting = RawPeer.connect(fixture.socket())) {
                waiting.sendVersion(1);
                waiting.awaitClosedByServer();
            }
            assertThat(Duration.ofNanos(System.nanoTime() - t0)).isGreaterThanOrEqualTo(hold);
            assertThat(device.heldConnections()).isZero();
            assertThat(device.stats().getClientsRefused()).isEqualTo(1);
            // The attached client is untouched.
            assertThat(attached.isOpen()).isTrue();
            assertThat(Wire.errno(attached, io.vfiouser.codec.VfioUserCommand.DEVICE_GET_INFO,
                    io.vfiouser.codec.payload.DeviceInfo.request())).isZero();
        }
    }

    @Test
    void aClientThatNeverNegotiatesLosesTheDeviceToTheNext() throws Exception {
        Duration deadline = Duration.ofMillis(300);
        try (ServerFixture fixture = new ServerFixture(
                limits(ConnectionLimits.builder().negotiationTimeout(deadline)));
             RawPeer squatter = RawPeer.connect(fixture.socket())) {
            HostedDevice device = fixture.device();
            Conditions.await("the squatter has the device", device::hasClient);
            long t0 = System.nanoTime();
            // The next client waits behind the squatter, then negotiates (connect() fails if it does not).
            VfioUserClient next = fixture.client();
            assertThat(Duration.ofNanos(System.nanoTime() - t0)).isLessThan(Duration.ofSeconds(Conditions.DEADLINE_S));
            assertThat(squatter.closedByServer()).isTrue();
            assertThat(next.serverCapabilities()).isNotNull();
            // Negotiated: the deadline no longer applies.
            Conditions.await("well past the deadline", () -> System.nanoTime() - t0 > 3 * deadline.toNanos());
            assertThat(next.isOpen()).isTrue();
            assertThat(Wire.errno(next, io.vfiouser.codec.VfioUserCommand.DEVICE_GET_INFO,
                    io.vfiouser.codec.payload.DeviceInfo.request())).isZero();
        }
    }

    @Test
    void aHeldConnectionsNegotiationDeadlineStartsWhenItIsServed() throws Exception {
        Duration deadline = Duration.ofMillis(300);
        try (ServerFixture fixture = new ServerFixture(
                limits(ConnectionLimits.builder().negotiationTimeout(deadline)))) {
            HostedDevice device = fixture.device();
            VfioUserClient attached = fixture.client();
            RawPeer waiting = RawPeer.connect(fixture.socket());
            long t0 = System.nanoTime();
            waiting.sendVersion(5);
            Conditions.await("the connection is held", () -> device.heldConnections() == 1);
            // Held for well over the negotiation deadline: it has not started yet.
            Conditions.await("well past the deadline", () -> System.nanoTime() - t0 > 3 * deadline.toNanos());
            assertThat(waiting.closedByServer()).isFalse();
            attached.close();
            assertThat(waiting.awaitReply()).isEqualTo(5);
            waiting.close();
        }
    }

    @Test
    void closingTheDeviceClosesHeldConnections() throws Exception {
        try (ServerFixture fixture = new ServerFixture()) {
            HostedDevice device = fixture.device();
            fixture.client(ClientOptions.DEFAULT);
            try (RawPeer waiting = RawPeer.connect(fixture.socket())) {
                Conditions.await("the connection is held", () -> device.heldConnections() == 1);
                device.close();
                waiting.awaitClosedByServer();
                assertThat(device.heldConnections()).isZero();
            }
        }
    }
}
