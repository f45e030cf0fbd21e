package io.vfiouser.it.isolation;

import static org.assertj.core.api.Assertions.assertThat;

import io.vfiouser.examples.nulldev.NullDevice;
import io.vfiouser.server.ConnectionLimits;
import io.vfiouser.server.ServerOptions;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.time.Duration;
import org.junit.jupiter.api.Test;

/**
 * A full command queue stops reading from the client, but a device command that waits for the client's reply to
 * a server DMA request can only complete once that reply is read: with the queue over its budget behind the
 * waiting command, reading must go on (up to twice the budget) or the connection deadlocks.
 */
class DmaReplyBehindFullQueueTest {
    private static final Duration WAIT = Duration.ofSeconds(20);
    private static final int QUEUE = 8;
    private static final int PIPELINED = 12;

    @Test
    void theReplyToAServerDmaRequestIsReadWhileTheQueueIsOverItsBudget() throws Exception {
        ServerOptions options = ServerOptions.DEFAULT.withLimits(
                ConnectionLimits.builder().maxQueuedCommands(QUEUE).build());
        try (IsolationFixture fixture = new IsolationFixture(options)) {
            Bystander bystander = fixture.startBystander();
            RawClient c = fixture.rawVictimClient();
            c.write(RawClient.dmaMapWithoutFd(1, 0, 1 << 16));
            assertOk(c.readMessage(WAIT));
            c.write(RawClient.regionWrite(2, NullDevice.REGISTER_BAR, NullDevice.DMA_SRC, 0x1000));
            c.write(RawClient.regionWrite(3, NullDevice.REGISTER_BAR, NullDevice.DMA_DST, 0x2000));
            c.write(RawClient.regionWrite(4, NullDevice.REGISTER_BAR, NullDevice.DMA_LEN, 8));
            for (int i = 0; i < 3; i++) {
                assertOk(c.readMessage(WAIT));
            }

            // The copy (which waits for DMA_READ and DMA_WRITE answers) and, behind it, more commands than the
            // queue's budget, in one write.
            long before = fixture.victim().stats().getMessagesIn();
            ByteBuffer burst = ByteBuffer.allocate(40 + PIPELINED * 32);
            burst.put(RawClient.regionWrite(5, NullDevice.REGISTER_BAR, NullDevice.DMA_CTRL, NullDevice.CTRL_START));
            for (int i = 0; i < PIPELINED; i++) {
                burst.put(RawClient.regionRead(100 + i, NullDevice.REGISTER_BAR, NullDevice.SCRATCH, 8));
            }
            c.write(burst.flip());
            ByteBuffer dmaRead = c.readMessage(WAIT);
            assertThat(dmaRead.getShort(2)).as("the server's DMA_READ").isEqualTo((short) 11);
            // Answer only once the server has queued every pipelined command: the queue is over its budget now.
            Conditions.await("the server read the pipelined commands",
                    () -> fixture.victim().stats().getMessagesIn() >= before + 1 + PIPELINED);
            long address = dmaRead.getLong(16);
            byte[] data = ByteBuffer.allocate(12 + 8 + 4).order(ByteOrder.LITTLE_ENDIAN)
                    .putLong(address).putInt(8).putLong(0x1122334455667788L).putInt(0).array();
            c.write(RawClient.replyTo(dmaRead, data));

            ByteBuffer dmaWrite = c.readMessage(WAIT);
            assertThat(dmaWrite.getShort(2)).as("the server's DMA_WRITE").isEqualTo((short) 12);
            assertThat(dmaWrite.getLong(16)).isEqualTo(0x2000);
            assertThat(dmaWrite.getLong(28)).isEqualTo(0x1122334455667788L);
            c.write(RawClient.replyTo(dmaWrite, new byte[0]));

            ByteBuffer ctrl = c.readMessage(WAIT);
            assertOk(ctrl);
            assertThat(ctrl.getShort(0)).isEqualTo((short) 5);
            for (int i = 0; i < PIPELINED; i++) {
                ByteBuffer r = c.readMessage(WAIT);
                assertOk(r);
                assertThat(r.getShort(0)).isEqualTo((short) (100 + i));
            }
            bystander.awaitProgress(50);
            bystander.assertHealthy();
        }
    }

    private static void assertOk(ByteBuffer reply) {
        assertThat(reply.getInt(8) & 0x2f).as("a successful reply (errno %d)", reply.getInt(12)).isEqualTo(1);
    }
}
