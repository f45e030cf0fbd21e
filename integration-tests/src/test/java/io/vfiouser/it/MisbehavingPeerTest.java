package io.vfiouser.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.vfiouser.client.ClientOptions;
import io.vfiouser.client.VfioUserClient;
import io.vfiouser.codec.VfioUserCommand;
import io.vfiouser.codec.VfioUserMessage;
import io.vfiouser.codec.payload.DeviceInfo;
import io.vfiouser.codec.payload.VersionPayload;
import io.vfiouser.transport.FdSet;
import io.vfiouser.transport.linux.Errno;
import io.vfiouser.transport.linux.Linux;
import io.vfiouser.transport.testing.FdCount;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Clients that break the rules. Each case must end with the connection answered or cleanly closed, every fd that
 * came in closed, no leaked buffer ({@link ServerFixture#close()} checks both), and the device serving the next,
 * well-behaved client.
 */
class MisbehavingPeerTest {
    private ServerFixture fixture;

    @BeforeEach
    void start() throws Exception {
        fixture = new ServerFixture();
    }

    @AfterEach
    void stop() throws Exception {
        fixture.close();
    }

    private VfioUserClient raw() throws Exception {
        return fixture.client(ClientOptions.DEFAULT.withoutNegotiation());
    }

    private static ByteBuf header(int id, int command, long size, int flags) {
        ByteBuf buf = Unpooled.directBuffer(16);
        buf.writeShortLE(id).writeShortLE(command).writeIntLE((int) size).writeIntLE(flags).writeIntLE(0);
        return buf;
    }

    /** After whatever a test did, the device still serves a well-behaved client. */
    private void nextClientIsServed() throws Exception {
        fixture.awaitNoClient();
        VfioUserClient good = fixture.client();
        assertThat(good.serverCapabilities()).isNotNull();
        VfioUserMessage reply = good.send(VfioUserCommand.DEVICE_GET_INFO, DeviceInfo.request())
                .get(20, TimeUnit.SECONDS);
        assertThat(reply.header().msgId()).isNotNegative();
        reply.release();
        good.close();
    }

    private static void awaitClosed(VfioUserClient client) throws Exception {
        client.closeFuture().get(20, TimeUnit.SECONDS);
    }

    @Test
    void sizeBelowTheHeaderClosesTheConnection() throws Exception {
        VfioUserClient bad = raw();
        ByteBuf h = header(1, 1, 8, 0);
        bad.sendRaw(h, FdSet.EMPTY, -1).get(20, TimeUnit.SECONDS);
        awaitClosed(bad);
        nextClientIsServed();
    }

    @Test
    void oversizedFrameClosesTheConnection() throws Exception {
        VfioUserClient bad = fixture.client();
        bad.sendRaw(header(2, 10, 64L << 20, 0), FdSet.EMPTY, -1).get(20, TimeUnit.SECONDS);
        awaitClosed(bad);
        nextClientIsServed();
    }

    @Test
    void garbageClosesTheConnection() throws Exception {
        VfioUserClient bad = raw();
        byte[] noise = new byte[4096];
        new Random(42).nextBytes(noise);
        noise[4] = (byte) 0xff; // make sure the first size field is out of range
        noise[7] = (byte) 0x7f;
        bad.sendRaw(Unpooled.wrappedBuffer(noise), FdSet.EMPTY, -1).get(20, TimeUnit.SECONDS);
        awaitClosed(bad);
        nextClientIsServed();
    }

    @Test
    void closeInTheMiddleOfAMessageWithFdsLeavesNothingBehind() throws Exception {
        VfioUserClient bad = fixture.client();
        ByteBuf partial = header(3, 2, 16 + 32, 0);
        partial.writeIntLE(32).writeIntLE(3); // half of a DMA_MAP
        bad.sendRaw(partial, FdSet.of(Linux.memfdCreate("half")), -1).get(20, TimeUnit.SECONDS);
        bad.close();
        nextClientIsServed();
    }

    @Test
    void moreFdsThanAnnouncedCloseTheConnectionAndTheFds() throws Exception {
        VfioUserClient bad = fixture.client();
        int max = bad.serverCapabilities().maxMsgFds();
        int[] fds = new int[max + 1];
        for (int i = 0; i < fds.length; i++) {
            fds[i] = Linux.eventfd(0, 0);
        }
        ByteBuf msg = header(4, VfioUserCommand.DEVICE_GET_INFO.code(), 32, 0);
        msg.writeIntLE(16).writeIntLE(0).writeIntLE(0).writeIntLE(0);
        bad.sendRaw(msg, FdSet.of(fds), -1).get(20, TimeUnit.SECONDS);
        awaitClosed(bad);
        nextClientIsServed();
    }

    @Test
    void fdsOnCommandsThatTakeNoneAreClosedAndTheCommandsAnswered() throws Exception {
        VfioUserClient client = fixture.client();
        long before = FdCount.now();
        int count = 3000;
        List<CompletableFuture<VfioUserMessage>> replies = new ArrayList<>(count);
        for (int i = 0; i < count; i++) {
            FdSet fds = i % 4 == 3 ? FdSet.EMPTY : FdSet.of(Linux.memfdCreate("stray-" + i));
            replies.add(client.send(VfioUserCommand.DEVICE_GET_INFO, DeviceInfo.request(), fds));
        }
        int lastId = -1;
        for (CompletableFuture<VfioUserMessage> f : replies) {
            VfioUserMessage reply = f.get(30, TimeUnit.SECONDS);
            try {
                assertThat(reply.header().isReply()).isTrue();
                if (lastId >= 0) {
                    assertThat(reply.header().msgId()).isEqualTo((lastId + 1) & 0xFFFF);
                }
                lastId = reply.header().msgId();
            } finally {
                reply.release();
            }
        }
        assertThat(client.isOpen()).isTrue();
        FdCount.awaitAtMost(before);
    }

    @Test
    void noReplyCommandsNeverGetAReplyEvenWhenTheyFail() throws Exception {
        VfioUserClient client = fixture.client();
        client.sendNoReply(VfioUserCommand.DEVICE_GET_INFO, DeviceInfo.request()).get(20, TimeUnit.SECONDS);
        ByteBuf unknown = header(client.nextId(), 99, 16, 0x10); // unknown command, NO_REPLY
        client.sendRaw(unknown, FdSet.EMPTY, -1).get(20, TimeUnit.SECONDS);
        // The next reply the client sees is the one to this command: nothing came in between.
        VfioUserMessage reply = client.send(VfioUserCommand.VERSION, VersionPayload.of(0, 0, client.capabilities()))
                .get(20, TimeUnit.SECONDS);
        try {
            assertThat(reply.command()).isEqualTo(VfioUserCommand.VERSION);
            assertThat(reply.header().error()).isEqualTo(Errno.EINVAL);
        } finally {
            reply.release();
        }
        assertThat(client.unexpectedMessages()).isEmpty();
    }

    @Test
    void unknownCommandsAndBadTypesGetEinvalAndTheConnectionLives() throws Exception {
        VfioUserClient client = fixture.client();
        for (int code : new int[] {0, 14, 19, 99, 11, 12}) {
            int id = client.nextId();
            VfioUserMessage reply = client.sendRaw(header(id, code, 16, 0), FdSet.EMPTY, id)
                    .get(20, TimeUnit.SECONDS);
            try {
                assertThat(reply.header().error()).as("command %d", code).isEqualTo(Errno.EINVAL);
                assertThat(reply.header().messageSize()).isEqualTo(16);
            } finally {
                reply.release();
            }
        }
        int id = client.nextId();
        VfioUserMessage reply = client.sendRaw(header(id, 4, 16, 0x2), FdSet.EMPTY, id).get(20, TimeUnit.SECONDS);
        try {
            assertThat(reply.header().error()).isEqualTo(Errno.EINVAL);
        } finally {
            reply.release();
        }
        assertThat(client.isOpen()).isTrue();
    }
}
