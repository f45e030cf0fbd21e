package io.vfiouser.it.isolation;

import static org.assertj.core.api.Assertions.assertThat;

import io.vfiouser.client.VfioUserClient;
import io.vfiouser.codec.VfioUserCommand;
import io.vfiouser.codec.VfioUserMessage;
import io.vfiouser.codec.payload.DeviceInfo;
import io.vfiouser.codec.payload.IrqInfo;
import io.vfiouser.codec.payload.RegionInfoRequest;
import io.vfiouser.codec.payload.VfioUserPayload;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/**
 * Issue 11, defect 8: the victim gets info commands with argsz 2^32 - 1 (answered, not refused) from one client,
 * then, connection after connection, frames that fail framing while flagged NO_REPLY (closed without a reply),
 * while the bystander keeps connecting and being served.
 */
class ProtocolFaultIsolationTest {
    @Test
    void largeArgszAndNoReplyFramingFaultsLeaveTheBystanderServed() throws Exception {
        try (IsolationFixture fixture = new IsolationFixture()) {
            Bystander bystander = fixture.startBystander();
            VfioUserClient victim = fixture.victimClient();
            for (int i = 0; i < 100; i++) {
                answered(victim, VfioUserCommand.DEVICE_GET_INFO, new DeviceInfo(0xFFFF_FFFFL, 0, 0, 0));
                answered(victim, VfioUserCommand.DEVICE_GET_IRQ_INFO, new IrqInfo(0x8000_0000L, 0, 2, 0));
                answered(victim, VfioUserCommand.DEVICE_GET_REGION_INFO, new RegionInfoRequest(0xFFFF_FFFFL, 0));
            }
            victim.close();
            fixture.awaitVictimFree();

            AtomicBoolean stop = new AtomicBoolean();
            AtomicInteger closed = new AtomicInteger();
            AtomicReference<Throwable> failure = new AtomicReference<>();
            byte[] bad = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putShort((short) 1)
                    .putShort((short) VfioUserCommand.REGION_WRITE.code()).putInt(8).putInt(0x10).putInt(0).array();
            Thread abuser = Thread.ofPlatform().name("victim-abuser").start(() -> {
                try {
                    while (!stop.get()) {
                        try (RawPeer raw = RawPeer.connect(fixture.victimSocket())) {
                            raw.write(bad);
                            byte[] got = raw.readUntilEof();
                            if (got.length != 0) {
                                throw new AssertionError(got.length + " bytes answered a NO_REPLY frame");
                            }
                        }
                        fixture.awaitVictimFree();
                        closed.incrementAndGet();
                    }
                } catch (Throwable t) {
                    failure.set(t);
                }
            });
            try {
                Conditions.await("a bad frame was closed", () -> closed.get() > 0 || failure.get() != null);
                bystander.awaitProgress(200);
            } finally {
                stop.set(true);
                abuser.join(TimeUnit.SECONDS.toMillis(Conditions.DEADLINE_S));
            }
            if (failure.get() != null) {
                throw new AssertionError("the victim's client failed", failure.get());
            }
            bystander.assertHealthy();
        }
    }

    private static void answered(VfioUserClient client, VfioUserCommand command, VfioUserPayload payload)
            throws Exception {
        VfioUserMessage reply = client.send(command, payload).get(Conditions.DEADLINE_S, TimeUnit.SECONDS);
        try {
            assertThat(reply.header().isError()).as("%s answered with errno %d", command, reply.header().error())
                    .isFalse();
        } finally {
            reply.release();
        }
    }
}
