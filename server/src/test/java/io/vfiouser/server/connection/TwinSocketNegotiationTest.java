package io.vfiouser.server.connection;

import static io.vfiouser.server.connection.ConnectionChannel.command;
import static io.vfiouser.server.connection.ConnectionChannel.version;
import static org.assertj.core.api.Assertions.assertThat;

import io.vfiouser.codec.VfioUserCapabilities;
import io.vfiouser.codec.VfioUserCommand;
import io.vfiouser.codec.VfioUserHeader;
import io.vfiouser.codec.VfioUserMessage;
import io.vfiouser.codec.payload.VersionPayload;
import io.vfiouser.server.ServerOptions;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.OptionalInt;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;

/**
 * The twin-socket decision of VERSION (spec "Version", digest 1.1): offered only to a client that asked for it and
 * can take it (it receives fds and wants a reply), announced with {@code fd_index} 0 even in a reply shrunk to the
 * request's size; and, where the connection is no socket, the spec's fallback: a reply without it, the server's
 * requests on the main connection.
 */
class TwinSocketNegotiationTest {
    private static final String ASKS = "{\"capabilities\":{\"max_msg_fds\":8,\"twin_socket\":{\"supported\":true}}}";

    private static Negotiation.Agreed agree(String json, boolean noReply) {
        VersionPayload payload = new VersionPayload(0, 2, json);
        VfioUserMessage request = noReply
                ? VfioUserMessage.commandNoReply(3, VfioUserCommand.VERSION, payload)
                : VfioUserMessage.command(3, VfioUserCommand.VERSION, payload);
        try {
            return (Negotiation.Agreed) new Negotiation(ServerOptions.DEFAULT, 1024).negotiate(request);
        } finally {
            request.release();
        }
    }

    @Test
    void aClientThatAsksGetsATwinAtFdIndexZero() {
        Negotiation.Agreed agreed = agree(ASKS, false);
        assertThat(VfioUserCapabilities.parse(agreed.reply().json()).twinSocket()).as("the plain reply").isNull();
        VfioUserCapabilities twin = VfioUserCapabilities.parse(agreed.twinReply().json());
        assertThat(twin.twinSocket()).isEqualTo(new VfioUserCapabilities.TwinSocket(true, OptionalInt.of(0)));
        assertThat(twin.maxMsgFds()).isEqualTo(ServerOptions.DEFAULT.maxMsgFds());
        assertThat(Negotiation.TWIN_FD_INDEX).isZero();
    }

    @Test
    void noTwinForAClientThatDidNotAskOrCannotTakeIt() {
        assertThat(agree("{\"capabilities\":{\"max_msg_fds\":8}}", false).twinReply()).as("not asked").isNull();
        assertThat(agree("{\"capabilities\":{\"twin_socket\":{\"supported\":false}}}", false).twinReply())
                .as("supported false").isNull();
        assertThat(agree("{\"capabilities\":{\"max_msg_fds\":0,\"twin_socket\":{\"supported\":true}}}", false)
                .twinReply()).as("takes no fds").isNull();
        assertThat(agree(ASKS, true).twinReply()).as("wants no reply to carry it").isNull();
        // Absent max_msg_fds means 1 (the spec's default): enough for the twin.
        assertThat(agree("{\"capabilities\":{\"twin_socket\":{\"supported\":true}}}", false).twinReply()).isNotNull();
    }

    /** A reply shrunk to a short request keeps the twin: the client must learn where the requests will come. */
    @Test
    void theTwinSurvivesTheShrinkingOfTheReply() {
        Negotiation negotiation = new Negotiation(ServerOptions.DEFAULT, 1024);
        VfioUserCapabilities smallest = negotiation.serverCapabilities(16, true);
        assertThat(smallest.keys()).containsExactly(VfioUserCapabilities.MAX_MSG_FDS,
                VfioUserCapabilities.MAX_DATA_XFER_SIZE, VfioUserCapabilities.TWIN_SOCKET);
        assertThat(negotiation.serverCapabilities(4096, true).keys()).contains(VfioUserCapabilities.TWIN_SOCKET,
                VfioUserCapabilities.WRITE_MULTIPLE);
    }

    /**
     * On a connection that is no socket the server cannot pass one: it answers without {@code twin_socket} and no
     * fd, which the spec allows, and its requests go on the main connection.
     */
    @Test
    void withoutASocketTheClientIsAnsweredWithoutATwin() throws Exception {
        ScriptedDevice device = new ScriptedDevice();
        try (ConnectionChannel c = ConnectionChannel.open(UnitDevices.basic(), device)) {
            c.send(command(0, VfioUserCommand.VERSION, 0, version(0, 2, ASKS)));
            ConnectionChannel.Reply r = c.assertOk(0, VfioUserCommand.VERSION);
            assertThat(r.fds()).isEmpty();
            String json = new String(r.bytes(), 20, r.size() - 21, StandardCharsets.UTF_8);
            assertThat(VfioUserCapabilities.parse(json).twinSocket()).isNull();
            c.send(DmaCommandsTest.map(1, 3, 0, 0x40000, 0x1000));
            c.assertOk(1, VfioUserCommand.DMA_MAP);
            CompletableFuture<Void> read = device.context.dma().read(0x40000, ByteBuffer.allocate(1));
            ConnectionChannel.Reply request = c.reply();
            assertThat(request.command()).isEqualTo(VfioUserCommand.DMA_READ.code());
            assertThat(request.bytes()[8] & 0x0f).isEqualTo(0); // a command
            c.send(ConnectionChannel.frame(request.msgId(), VfioUserCommand.DMA_READ.code(), VfioUserHeader.REPLY, 0,
                    ConnectionChannel.concat(ConnectionChannel.le(8, 0x40000, 4, 1), new byte[] {7}, new byte[4])));
            assertThat(read).isCompleted();
        }
    }
}
