package io.vfiouser.server.connection;

import static io.vfiouser.server.connection.ConnectionChannel.command;
import static io.vfiouser.server.connection.ConnectionChannel.concat;
import static io.vfiouser.server.connection.ConnectionChannel.hex;
import static io.vfiouser.server.connection.ConnectionChannel.le;
import static io.vfiouser.server.connection.ConnectionChannel.version;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.tuple;

import io.vfiouser.codec.VfioUserCapabilities;
import io.vfiouser.codec.VfioUserCommand;
import io.vfiouser.codec.VfioUserHeader;
import io.vfiouser.server.ServerOptions;
import io.vfiouser.transport.linux.Errno;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * VERSION, the first message of every connection (digest 2, 6.2), through the connection's real pipeline: the
 * reply's exact bytes for QEMU's request, minor {@code min(client, 2)}, a reply never longer than the request, every
 * refused first message (EINVAL, then the connection closes; no reply at all for fds or NO_REPLY), and the
 * negotiation deadline on the channel's own clock.
 */
class VersionNegotiationTest {
    /** QEMU's VERSION JSON as the digest quotes it (2.3): 193 characters, a 214-byte message. */
    static final String QEMU_JSON = "{\"capabilities\": {\"max_msg_fds\": 16, \"max_data_xfer_size\": 1048576, "
            + "\"pgsizes\": 4096, \"max_dma_maps\": 65535, \"migration\": {\"pgsize\": 4096, \"max_bitmap_size\": "
            + "268435456}, \"write_multiple\": true}}";
    /** What the server announces with the default options when the request leaves room for all of it. */
    static final String FULL_REPLY_JSON = "{\"capabilities\":{\"max_msg_fds\":16,\"max_data_xfer_size\":1048576,"
            + "\"pgsizes\":4096,\"max_dma_maps\":1024,\"write_multiple\":true}}";

    private final ScriptedDevice device = new ScriptedDevice();

    private static byte[] versionCommand(int msgId, int flags, byte[] payload) {
        return command(msgId, VfioUserCommand.VERSION, flags, payload);
    }

    private static byte[] getInfo(int msgId) {
        return command(msgId, VfioUserCommand.DEVICE_GET_INFO, le(4, 16, 4, 0, 4, 0, 4, 0));
    }

    @Test
    void qemusRequestGetsVersionZeroAndEveryCapabilityWithinTheRequestsSize() throws Exception {
        byte[] request = versionCommand(0x0102, 0, version(0, 0, QEMU_JSON));
        assertThat(request).hasSize(214);
        try (ConnectionChannel c = ConnectionChannel.open(UnitDevices.basic(), device)) {
            c.send(request);
            ConnectionChannel.Reply r = c.assertOk(0x0102, VfioUserCommand.VERSION);
            byte[] json = FULL_REPLY_JSON.getBytes(StandardCharsets.US_ASCII);
            int size = 16 + 4 + json.length + 1;
            assertThat(r.bytes()).isEqualTo(concat(le(2, 0x0102, 2, 1, 4, size, 4, VfioUserHeader.REPLY, 4, 0),
                    le(2, 0, 2, 0), json, new byte[] {0}));
            assertThat(r.size()).as("reply within QEMU's request buffer").isLessThanOrEqualTo(request.length);
            assertThat(r.fds()).as("never an fd on the VERSION reply").isEmpty();
            assertThat(device.takeCalls()).containsExactly("attached");
            c.send(getInfo(1));
            c.assertOk(1, VfioUserCommand.DEVICE_GET_INFO);
        }
    }

    @ParameterizedTest
    @CsvSource({"0, 0", "1, 1", "2, 2", "3, 2", "65535, 2"})
    void minorIsTheSmallerOfTheClientsAndTwo(int clientMinor, int replyMinor) throws Exception {
        try (ConnectionChannel c = ConnectionChannel.open(UnitDevices.basic(), device)) {
            c.send(versionCommand(5, 0, version(0, clientMinor, QEMU_JSON)));
            ConnectionChannel.Reply r = c.assertOk(5, VfioUserCommand.VERSION);
            assertThat(r.le().getShort(16)).as("major").isZero();
            assertThat(r.le().getShort(18) & 0xFFFF).as("minor").isEqualTo(replyMinor);
        }
    }

    /**
     * A request shorter than the full answer gets fewer keys, never a longer reply: the limits the server
     * enforces stay (max_msg_fds, max_data_xfer_size first, then max_dma_maps), and the JSON always parses.
     */
    @Test
    void theReplyShrinksToTheRequestsSize() throws Exception {
        String minimal = "{\"capabilities\":{\"max_msg_fds\":16,\"max_data_xfer_size\":1048576}}";
        int smallest = 16 + 4 + minimal.length() + 1;
        for (int size = smallest; size <= 16 + 4 + FULL_REPLY_JSON.length() + 1; size++) {
            // {} padded with spaces to make the request exactly `size` bytes long.
            String json = "{" + " ".repeat(size - 16 - 4 - 1 - 2) + "}";
            byte[] request = versionCommand(size, 0, version(0, 2, json));
            assertThat(request).hasSize(size);
            try (ConnectionChannel c = ConnectionChannel.open(UnitDevices.basic(), new ScriptedDevice())) {
                c.send(request);
                ConnectionChannel.Reply r = c.assertOk(size & 0xFFFF, VfioUserCommand.VERSION);
                assertThat(r.size()).as("reply to a %d-byte request", size).isLessThanOrEqualTo(size);
                assertThat(r.bytes()[r.size() - 1]).as("NUL-terminated").isZero();
                String text = new String(r.bytes(), 20, r.size() - 21, StandardCharsets.UTF_8);
                VfioUserCapabilities caps = VfioUserCapabilities.parse(text);
                assertThat(caps.keys()).as("keys answering a %d-byte request", size)
                        .contains(VfioUserCapabilities.MAX_MSG_FDS, VfioUserCapabilities.MAX_DATA_XFER_SIZE);
                assertThat(caps.maxMsgFds()).isEqualTo(ServerOptions.DEFAULT.maxMsgFds());
                if (size >= 16 + 4 + FULL_REPLY_JSON.length() + 1) {
                    assertThat(text).isEqualTo(FULL_REPLY_JSON);
                }
            }
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"{}", "", "{\"capabilities\":{}}"})
    void emptyOrMissingCapabilitiesAreAcceptedWithDefaults(String json) throws Exception {
        byte[] payload = json.isEmpty() ? le(2, 0, 2, 0) : version(0, 0, json);
        try (ConnectionChannel c = ConnectionChannel.open(UnitDevices.basic(), device)) {
            c.send(versionCommand(3, 0, payload));
            c.assertOk(3, VfioUserCommand.VERSION);
            c.send(getInfo(4));
            c.assertOk(4, VfioUserCommand.DEVICE_GET_INFO);
        }
    }

    /** Every refused VERSION: an EINVAL reply echoing the request's id, then the connection closes unattached. */
    @ParameterizedTest
    @ValueSource(strings = {
        "0100 0000 7b7d00",                        // major 1
        "ffff 0200 7b7d00",                        // major 0xffff
        "000000",                                  // payload of 3 bytes
        "",                                        // no payload at all
        "0000 0000 7b7d",                          // JSON without its NUL
        "0000 0000 7b2200",                        // {" does not parse
    })
    void refusedVersionGetsEinvalAndTheConnectionCloses(String payloadHex) throws Exception {
        try (ConnectionChannel c = ConnectionChannel.open(UnitDevices.basic(), device)) {
            c.send(versionCommand(0x4321, 0, hex(payloadHex)));
            c.assertError(0x4321, VfioUserCommand.VERSION, Errno.EINVAL);
            assertThat(c.isOpen()).as("closed after the reply").isFalse();
            assertThat(device.takeCalls()).as("never attached").doesNotContain("attached");
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"[]", "{\"capabilities\":1}", "{\"capabilities\":{\"max_msg_fds\":1025}}",
        "{\"capabilities\":{\"max_msg_fds\":-1}}", "{\"capabilities\":{\"max_msg_fds\":\"8\"}}",
        "{\"capabilities\":{\"max_data_xfer_size\":1.5}}", "{\"capabilities\":{\"migration\":4096}}",
        "{\"capabilities\":{\"write_multiple\":1}}"})
    void badCapabilityValuesGetEinvalAndTheConnectionCloses(String json) throws Exception {
        try (ConnectionChannel c = ConnectionChannel.open(UnitDevices.basic(), device)) {
            c.send(versionCommand(9, 0, version(0, 0, json)));
            c.assertError(9, VfioUserCommand.VERSION, Errno.EINVAL);
            assertThat(c.isOpen()).isFalse();
        }
    }

    @Test
    void refusedVersionWithNoReplyClosesWithoutAReply() throws Exception {
        try (ConnectionChannel c = ConnectionChannel.open(UnitDevices.basic(), device)) {
            c.send(versionCommand(1, VfioUserHeader.NO_REPLY, version(1, 0, "{}")));
            c.assertNoReply();
            assertThat(c.isOpen()).isFalse();
        }
    }

    /** VERSION honours NO_REPLY like any command (digest 1.3): negotiated, but never answered. */
    @Test
    void versionWithNoReplyNegotiatesSilently() throws Exception {
        try (ConnectionChannel c = ConnectionChannel.open(UnitDevices.basic(), device)) {
            c.send(versionCommand(1, VfioUserHeader.NO_REPLY, version(0, 2, QEMU_JSON)));
            c.assertNoReply();
            assertThat(c.isOpen()).isTrue();
            c.send(getInfo(2));
            c.assertOk(2, VfioUserCommand.DEVICE_GET_INFO);
        }
    }

    /** fds on VERSION: the stream cannot be trusted; closed at once, no reply, the fds closed (digest 2.5). */
    @Test
    void fdsOnVersionCloseTheConnectionWithoutAReplyAndAreClosed() throws Exception {
        int fd = TestFds.memfd();
        String target = TestFds.target(fd);
        int reuse;
        String reuseTarget;
        try (ConnectionChannel c = ConnectionChannel.open(UnitDevices.basic(), device)) {
            c.send(versionCommand(1, 0, version(0, 0, QEMU_JSON)), fd);
            c.assertNoReply();
            assertThat(c.isOpen()).isFalse();
            TestFds.assertClosed(fd, target);
            reuse = TestFds.memfd();
            reuseTarget = TestFds.target(reuse);
            assertThat(device.takeCalls()).doesNotContain("attached");
        }
        TestFds.assertOpen(reuse, reuseTarget);
        TestFds.close(reuse);
    }

    /** Any command before VERSION: EINVAL echoing it, then the connection closes; the device never sees it. */
    @Test
    void aCommandBeforeVersionIsRefusedAndTheConnectionCloses() throws Exception {
        try (ConnectionChannel c = ConnectionChannel.open(UnitDevices.basic(), device)) {
            c.send(getInfo(7));
            c.assertError(7, VfioUserCommand.DEVICE_GET_INFO, Errno.EINVAL);
            assertThat(c.isOpen()).isFalse();
        }
        try (ConnectionChannel c = ConnectionChannel.open(UnitDevices.basic(), device)) {
            // A small read the fast path would serve once negotiated: before VERSION it must not.
            c.send(command(8, VfioUserCommand.REGION_READ, le(8, 0, 4, UnitDevices.BAR0, 4, 4)));
            c.assertError(8, VfioUserCommand.REGION_READ, Errno.EINVAL);
            assertThat(c.isOpen()).isFalse();
        }
        try (ConnectionChannel c = ConnectionChannel.open(UnitDevices.basic(), device)) {
            // A malformed command (GET_INFO with a 4-byte payload) is refused the same way.
            c.send(command(9, VfioUserCommand.DEVICE_GET_INFO, le(4, 16)));
            c.assertError(9, VfioUserCommand.DEVICE_GET_INFO, Errno.EINVAL);
            assertThat(c.isOpen()).isFalse();
        }
        try (ConnectionChannel c = ConnectionChannel.open(UnitDevices.basic(), device)) {
            // A reply the server never asked for.
            c.send(ConnectionChannel.frame(10, VfioUserCommand.VERSION.code(), VfioUserHeader.REPLY, 0,
                    version(0, 0, "{}")));
            c.assertError(10, VfioUserCommand.VERSION, Errno.EINVAL);
            assertThat(c.isOpen()).isFalse();
        }
        assertThat(device.takeCalls()).as("the device saw none of them").isEmpty();
    }

    @Test
    void aNoReplyCommandBeforeVersionClosesWithoutAReply() throws Exception {
        try (ConnectionChannel c = ConnectionChannel.open(UnitDevices.basic(), device)) {
            c.send(command(1, VfioUserCommand.REGION_WRITE, VfioUserHeader.NO_REPLY,
                    le(8, 0, 4, UnitDevices.BAR0, 4, 1, 1, 0x55)));
            c.assertNoReply();
            assertThat(c.isOpen()).isFalse();
            assertThat(device.takeCalls()).isEmpty();
        }
    }

    /** The negotiation deadline runs on the channel's clock: not a nanosecond early, then the connection closes. */
    @Test
    void aClientThatDoesNotNegotiateInTimeIsDisconnected() throws Exception {
        Duration timeout = ServerOptions.DEFAULT.limits().negotiationTimeout();
        try (ConnectionChannel c = ConnectionChannel.open(UnitDevices.basic(), device)) {
            byte[] request = versionCommand(1, 0, version(0, 0, QEMU_JSON));
            c.send(Arrays.copyOf(request, 40)); // half a VERSION, then silence
            c.advanceTime(timeout.minusNanos(1));
            assertThat(c.isOpen()).as("open until the deadline").isTrue();
            c.advanceTime(Duration.ofNanos(1));
            assertThat(c.isOpen()).as("closed at the deadline").isFalse();
            c.assertNoReply();
            assertThat(device.takeCalls()).doesNotContain("attached");
        }
    }

    @Test
    void aNegotiatedConnectionOutlivesTheDeadline() throws Exception {
        Duration timeout = ServerOptions.DEFAULT.limits().negotiationTimeout();
        try (ConnectionChannel c = ConnectionChannel.open(UnitDevices.basic(), device)) {
            c.advanceTime(timeout.minusMillis(1));
            c.negotiate();
            c.advanceTime(timeout.multipliedBy(2));
            assertThat(c.isOpen()).isTrue();
            c.send(getInfo(1));
            c.assertOk(1, VfioUserCommand.DEVICE_GET_INFO);
        }
    }

    /** A second VERSION is an unknown command to a negotiated connection: EINVAL, and the connection stays. */
    @Test
    void aSecondVersionGetsEinvalAndTheConnectionStays() throws Exception {
        try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.basic(), device)) {
            c.send(versionCommand(2, 0, version(0, 0, QEMU_JSON)));
            c.assertError(2, VfioUserCommand.VERSION, Errno.EINVAL);
            c.send(versionCommand(3, VfioUserHeader.NO_REPLY, version(0, 0, QEMU_JSON)));
            c.assertNoReply();
            assertThat(c.isOpen()).isTrue();
            c.send(getInfo(4));
            c.assertOk(4, VfioUserCommand.DEVICE_GET_INFO);
        }
    }

    /** Commands pipelined right behind VERSION, in the same burst, are answered after it, in order. */
    @Test
    void commandsPipelinedBehindVersionAreAnsweredInOrder() throws Exception {
        try (ConnectionChannel c = ConnectionChannel.open(UnitDevices.basic(), device)) {
            c.sendAll(versionCommand(1, 0, version(0, 0, QEMU_JSON)), getInfo(2),
                    command(3, VfioUserCommand.REGION_READ, le(8, 0, 4, UnitDevices.BAR0, 4, 4)));
            assertThat(c.replies()).extracting(ConnectionChannel.Reply::msgId, ConnectionChannel.Reply::command)
                    .containsExactly(tuple(1, 1), tuple(2, 4), tuple(3, 9));
        }
    }
}
