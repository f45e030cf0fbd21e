package io.vfiouser.it.isolation;

import static org.assertj.core.api.Assertions.assertThat;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.vfiouser.client.DeviceMigration;
import io.vfiouser.client.VfioUserClient;
import io.vfiouser.codec.VfioUserCommand;
import io.vfiouser.codec.VfioUserMessage;
import io.vfiouser.codec.payload.DeviceFeature;
import io.vfiouser.codec.payload.MigData;
import io.vfiouser.codec.payload.MigDeviceState;
import io.vfiouser.codec.payload.VfioUserPayload;
import io.vfiouser.transport.linux.Errno;
import java.io.ByteArrayOutputStream;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/**
 * Issue 11, defect 9: the victim's client loads corrupted copies of the victim's own saved state (one byte flipped
 * at a different place each time), over and over: every load is refused (EINVAL, ERROR, DEVICE_RESET) while the
 * bystander keeps connecting and being served.
 */
class MigrationCorruptionIsolationTest {
    private static final long S = Conditions.DEADLINE_S;

    @Test
    void corruptedStreamsAreRefusedWhileTheBystanderIsServed() throws Exception {
        try (IsolationFixture fixture = new IsolationFixture()) {
            Bystander bystander = fixture.startBystander();
            VfioUserClient victim = fixture.victimClient();
            byte[] stream = saved(victim);
            AtomicBoolean stop = new AtomicBoolean();
            AtomicInteger refused = new AtomicInteger();
            AtomicReference<Throwable> failure = new AtomicReference<>();
            Thread abuser = Thread.ofPlatform().name("victim-abuser").start(() -> {
                try {
                    for (int i = 0; !stop.get(); i++) {
                        byte[] bad = stream.clone();
                        bad[(int) ((i * 7919L) % bad.length)] ^= 0x40;
                        check(errno(victim, setState(MigDeviceState.RESUMING)), 0, "RESUMING");
                        for (int at = 0; at < bad.length; at += 32 << 10) {
                            int n = Math.min(32 << 10, bad.length - at);
                            errno(victim, VfioUserCommand.MIG_DATA_WRITE, MigData.of(Unpooled.wrappedBuffer(bad, at, n)));
                        }
                        check(errno(victim, setState(MigDeviceState.RUNNING)), Errno.EINVAL, "leaving RESUMING");
                        check(errno(victim, VfioUserCommand.DEVICE_RESET, null), 0, "DEVICE_RESET");
                        refused.incrementAndGet();
                    }
                } catch (Throwable t) {
                    failure.set(t);
                }
            });
            try {
                Conditions.await("a corrupted stream was refused",
                        () -> refused.get() > 0 || failure.get() != null);
                bystander.awaitProgress(200);
            } finally {
                stop.set(true);
                abuser.join(TimeUnit.SECONDS.toMillis(S));
            }
            if (failure.get() != null) {
                throw new AssertionError("the victim's client failed", failure.get());
            }
            assertThat(refused.get()).isPositive();
            bystander.assertHealthy();
        }
    }

    private static void check(int errno, int expected, String what) {
        if (errno != expected) {
            throw new AssertionError(what + ": errno " + errno + ", expected " + expected);
        }
    }

    private static int errno(VfioUserClient client, VfioUserCommand command, VfioUserPayload payload)
            throws Exception {
        VfioUserMessage reply = client.send(command, payload).get(S, TimeUnit.SECONDS);
        try {
            return reply.header().isError() ? reply.header().error() : 0;
        } finally {
            reply.release();
        }
    }

    private static int errno(VfioUserClient client, DeviceFeature set) throws Exception {
        return errno(client, VfioUserCommand.DEVICE_FEATURE, set);
    }

    private static DeviceFeature setState(int state) {
        return new DeviceFeature(16, DeviceFeature.SET | DeviceFeature.FEATURE_MIG_DEVICE_STATE,
                MigDeviceState.of(state).encode());
    }

    /** The victim's whole STOP_COPY stream; the device runs again afterwards. */
    private static byte[] saved(VfioUserClient client) throws Exception {
        DeviceMigration migration = new DeviceMigration(client);
        check(errno(client, setState(MigDeviceState.STOP_COPY)), 0, "STOP_COPY");
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        while (true) {
            ByteBuf data = migration.read(64 << 10).get(S, TimeUnit.SECONDS);
            try {
                if (!data.isReadable()) {
                    break;
                }
                byte[] b = new byte[data.readableBytes()];
                data.readBytes(b);
                out.write(b);
            } finally {
                data.release();
            }
        }
        check(errno(client, setState(MigDeviceState.RUNNING)), 0, "RUNNING");
        return out.toByteArray();
    }
}
