package io.vfiouser.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.vfiouser.client.ClientOptions;
import io.vfiouser.client.VfioUserClient;
import io.vfiouser.codec.VfioUserCapabilities;
import io.vfiouser.codec.VfioUserCommand;
import io.vfiouser.codec.VfioUserMessage;
import io.vfiouser.codec.payload.DeviceInfo;
import io.vfiouser.codec.payload.VersionPayload;
import io.vfiouser.transport.FdSet;
import io.vfiouser.transport.linux.Errno;
import io.vfiouser.transport.linux.Linux;
import io.vfiouser.transport.testing.FdCount;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** VERSION negotiation over a real socket (digest sections 2 and 6.2). */
class NegotiationTest {
    /** The capabilities QEMU 10.1 sends, byte for byte (193 characters, then the NUL). */
    static final String QEMU_JSON = "{\"capabilities\": {\"max_msg_fds\": 16, \"max_data_xfer_size\": 1048576, "
            + "\"pgsizes\": 4096, \"max_dma_maps\": 65535, \"migration\": {\"pgsize\": 4096, "
            + "\"max_bitmap_size\": 268435456}, \"write_multiple\": true}}";

    private ServerFixture fixture;

    @BeforeEach
    void start() throws Exception {
        fixture = new ServerFixture();
    }

    @AfterEach
    void stop() throws Exception {
        fixture.close();
    }

    private VfioUserClient rawClient() throws Exception {
        return fixture.client(ClientOptions.DEFAULT.withoutNegotiation());
    }

    static ByteBuf version(int id, int major, int minor, String json) {
        byte[] text = json == null ? new byte[0] : (json + "\0").getBytes(StandardCharsets.UTF_8);
        ByteBuf buf = Unpooled.directBuffer();
        buf.writeShortLE(id).writeShortLE(1).writeIntLE(16 + 4 + text.length).writeIntLE(0).writeIntLE(0);
        buf.writeShortLE(major).writeShortLE(minor).writeBytes(text);
        return buf;
    }

    private static VfioUserMessage await(java.util.concurrent.CompletableFuture<VfioUserMessage> f)
            throws Exception {
        return f.get(20, TimeUnit.SECONDS);
    }

    @Test
    void qemusRequestGetsAReplyThatFitsItsBuffer() throws Exception {
        assertThat(QEMU_JSON).hasSize(193);
        VfioUserClient client = rawClient();
        ByteBuf request = version(7, 0, 0, QEMU_JSON);
        assertThat(request.readableBytes()).isEqualTo(214);
        VfioUserMessage reply = await(client.sendRaw(request, FdSet.EMPTY, 7));
        try {
            assertThat(reply.header().isError()).isFalse();
            assertThat(reply.header().msgId()).isEqualTo(7);
            assertThat(reply.header().flags()).isEqualTo(0x1);
            assertThat(reply.header().messageSize()).isLessThanOrEqualTo(214);
            VersionPayload v = reply.payload(VersionPayload.class);
            assertThat(v.major()).isZero();
            assertThat(v.minor()).isZero();
            VfioUserCapabilities caps = VfioUserCapabilities.parse(v.json());
            assertThat(caps.maxMsgFds()).isBetween(1, 16);
            assertThat(caps.maxDataXferSize()).isEqualTo(1 << 20);
            assertThat(caps.pgsizes() % 4096).isZero();
            assertThat(caps.maxDmaMaps()).isLessThanOrEqualTo(65535);
            assertThat(reply.fds().isEmpty()).isTrue();
        } finally {
            reply.release();
        }
    }

    @Test
    void minorIsTheSmallerOfTheTwo() throws Exception {
        VfioUserClient client = fixture.client(ClientOptions.DEFAULT.withMinor(7));
        assertThat(client.serverMinor()).isEqualTo(2);
        assertThat(client.serverCapabilities().maxMsgFds()).isEqualTo(16);
    }

    @Test
    void versionWithoutJsonIsAcceptedWithDefaults() throws Exception {
        VfioUserClient client = rawClient();
        VfioUserMessage reply = await(client.sendRaw(version(1, 0, 0, null), FdSet.EMPTY, 1));
        try {
            assertThat(reply.header().isError()).isFalse();
            assertThat(reply.payload(VersionPayload.class).json()).contains("max_msg_fds");
        } finally {
            reply.release();
        }
    }

    @Test
    void wrongMajorIsRefusedAndClosed() throws Exception {
        expectErrorAndClose(version(3, 1, 0, "{}"), 3, Errno.EINVAL);
    }

    @Test
    void unparsableJsonIsRefusedAndClosed() throws Exception {
        expectErrorAndClose(version(4, 0, 0, "{\"capabilities\": [1,"), 4, Errno.EINVAL);
    }

    @Test
    void badCapabilityValuesAreRefusedAndClosed() throws Exception {
        expectErrorAndClose(version(5, 0, 0, "{\"capabilities\": {\"max_msg_fds\": -1}}"), 5, Errno.EINVAL);
        fixture.awaitNoClient();
        expectErrorAndClose(version(6, 0, 0, "{\"capabilities\": 3}"), 6, Errno.EINVAL);
    }

    @Test
    void jsonWithoutItsNulIsRefusedAndClosed() throws Exception {
        ByteBuf request = Unpooled.directBuffer();
        byte[] json = "{}".getBytes(StandardCharsets.UTF_8);
        request.writeShortLE(8).writeShortLE(1).writeIntLE(16 + 4 + json.length).writeIntLE(0).writeIntLE(0);
        request.writeShortLE(0).writeShortLE(0).writeBytes(json);
        expectErrorAndClose(request, 8, Errno.EINVAL);
    }

    @Test
    void aCommandBeforeVersionIsRefusedAndClosed() throws Exception {
        VfioUserClient client = rawClient();
        VfioUserMessage reply = await(client.send(VfioUserCommand.DEVICE_GET_INFO, DeviceInfo.request()));
        try {
            assertThat(reply.header().isError()).isTrue();
            assertThat(reply.header().error()).isEqualTo(Errno.EINVAL);
        } finally {
            reply.release();
        }
        client.closeFuture().get(20, TimeUnit.SECONDS);
    }

    @Test
    void versionCarryingFdsClosesTheConnectionWithoutReplyAndClosesTheFds() throws Exception {
        VfioUserClient client = rawClient();
        int event = Linux.eventfd(0, 0);
        long fdsWithEvent = FdCount.now();
        client.sendRaw(version(9, 0, 0, "{}"), FdSet.of(event), -1).get(20, TimeUnit.SECONDS);
        client.closeFuture().get(20, TimeUnit.SECONDS);
        // The client's copy was closed after sending and the server closed the one it received.
        FdCount.awaitAtMost(fdsWithEvent - 1);
    }

    @Test
    void aSecondVersionIsRefusedButTheConnectionLives() throws Exception {
        VfioUserClient client = fixture.client();
        VfioUserMessage again = await(client.send(VfioUserCommand.VERSION,
                VersionPayload.of(0, 0, client.capabilities())));
        try {
            assertThat(again.header().error()).isEqualTo(Errno.EINVAL);
        } finally {
            again.release();
        }
        assertThat(client.isOpen()).isTrue();
        VfioUserMessage next = await(client.send(VfioUserCommand.VERSION,
                VersionPayload.of(0, 0, client.capabilities())));
        next.release();
        assertThat(client.isOpen()).isTrue();
    }

    @Test
    void theNextClientCanAttachAfterTheFirstLeaves() throws Exception {
        VfioUserClient first = fixture.client();
        first.close();
        fixture.awaitNoClient();
        VfioUserClient second = fixture.client();
        assertThat(second.serverCapabilities()).isNotNull();
    }

    @Test
    void aSecondClientWhileOneIsAttachedWaitsForItsTurn() throws Exception {
        VfioUserClient first = fixture.client();
        VfioUserClient second = rawClient();
        java.util.concurrent.CompletableFuture<VfioUserMessage> version = second.send(VfioUserCommand.VERSION,
                VersionPayload.of(0, 0, second.capabilities()));
        io.vfiouser.it.isolation.Conditions.await("the second client is held",
                () -> fixture.device().heldConnections() == 1);
        // The first client is still served, and the second one is not answered while the first has the device.
        VfioUserMessage still = await(first.send(VfioUserCommand.VERSION,
                VersionPayload.of(0, 0, first.capabilities())));
        assertThat(still.header().error()).isEqualTo(Errno.EINVAL);
        still.release();
        assertThat(first.isOpen()).isTrue();
        assertThat(version).isNotDone();
        first.close();
        VfioUserMessage reply = await(version);
        assertThat(reply.header().isError()).isFalse();
        reply.release();
    }

    private void expectErrorAndClose(ByteBuf request, int id, int errno) throws Exception {
        VfioUserClient client = rawClient();
        VfioUserMessage reply = await(client.sendRaw(request, FdSet.EMPTY, id));
        try {
            assertThat(reply.header().isError()).isTrue();
            assertThat(reply.header().error()).isEqualTo(errno);
            assertThat(reply.header().messageSize()).isEqualTo(16);
        } finally {
            reply.release();
        }
        client.closeFuture().get(20, TimeUnit.SECONDS);
    }
}
