package io.vfiouser.it.isolation;

import static io.vfiouser.it.isolation.InterruptFdIsolationTest.call;
import static io.vfiouser.it.isolation.InterruptFdIsolationTest.countOf;
import static io.vfiouser.it.isolation.InterruptFdIsolationTest.enableMsixAndUnmask;
import static org.assertj.core.api.Assertions.assertThat;

import io.netty.buffer.Unpooled;
import io.vfiouser.client.VfioUserClient;
import io.vfiouser.codec.VfioUserCommand;
import io.vfiouser.codec.payload.RegionAccess;
import io.vfiouser.codec.payload.SetIrqs;
import io.vfiouser.device.IrqType;
import io.vfiouser.examples.nulldev.NullDevice;
import io.vfiouser.server.DeviceStats;
import io.vfiouser.transport.FdSet;
import io.vfiouser.transport.linux.Linux;
import org.junit.jupiter.api.Test;

/**
 * Issue 11, defect 1, the rest of it: {@code O_NONBLOCK} lives on the open file description the server shares with
 * the client, so a client can clear it again after SET_IRQS and fill its eventfd; the device's next signal then
 * blocked the event loop in {@code write(2)} for ever, and every device on the loop with it. Now the server's
 * watchdog releases the write, the server closes that client, and the device's later signals are written by a thread
 * of its own: a second tampering holds only that thread, never the loop.
 */
class TamperedEventFdIsolationTest {
    private static final long FULL_COUNTER = 0xffff_ffff_ffff_fffeL;

    @Test
    void aClientThatMakesItsEventfdBlockingAgainCannotFreezeTheLoop() throws Exception {
        int efd = Linux.eventfd(0, 0);
        try (IsolationFixture fixture = new IsolationFixture()) {
            try {
                Bystander bystander = fixture.startBystander();
                DeviceStats stats = fixture.victim().stats();

                // First client: registers the eventfd (the server makes it non-blocking), then undoes that.
                VfioUserClient first = fixture.victimClient();
                register(first, efd);
                tamper(efd);
                first.send(VfioUserCommand.REGION_WRITE, doorbell(0)).handle((reply, error) -> {
                    if (reply != null) {
                        reply.release();
                    }
                    return null;
                });
                bystander.awaitProgress(200);
                bystander.assertHealthy();
                Conditions.await("the tampering client is closed", () -> !first.isOpen());
                fixture.awaitVictimFree();
                assertThat(stats.getInterruptFdsTampered()).isEqualTo(1);
                assertThat(Linux.isNonBlocking(efd)).as("the watchdog made it non-blocking again").isTrue();
                assertThat(countOf(efd)).as("the watchdog read the counter; the released signal added 1")
                        .isEqualTo(1);
                Linux.eventfdRead(efd);

                // A new client of the device is served; its signals now come from the device's own thread.
                VfioUserClient second = fixture.victimClient();
                register(second, efd);
                assertThat(call(second, VfioUserCommand.REGION_WRITE, doorbell(0), FdSet.EMPTY)).isZero();
                Conditions.await("the signal arrives", () -> count(efd) == 1);
                Linux.eventfdRead(efd);

                // It tampers too: only the device's thread is held (and released); the loop goes on, and since
                // the loop never wrote to that fd, nothing there caught the client: it stays connected.
                tamper(efd);
                try (InterruptFdIsolationTest.Doorbells abuse = new InterruptFdIsolationTest.Doorbells(second, 0)) {
                    bystander.awaitProgress(200);
                    Conditions.await("the device's thread was released", () -> stats.getInterruptFdsTampered() == 2);
                    abuse.awaitRung(abuse.rung() + 50);
                    assertThat(abuse.errors()).isEmpty();
                }
                bystander.assertHealthy();
                assertThat(second.isOpen()).as("the loop never blocked, so the loop never caught it").isTrue();
                assertThat(bystander.roundTrips()).isPositive();
            } finally {
                Linux.setNonBlocking(efd);
                Linux.eventfdRead(efd); // were the server blocked in write(2), this would release it
            }
        } finally {
            Linux.close(efd);
        }
    }

    /** Enables MSI-X, unmasks vector 0 and gives a duplicate of {@code efd} as its trigger. */
    private static void register(VfioUserClient client, int efd) throws Exception {
        enableMsixAndUnmask(client, 0);
        assertThat(call(client, VfioUserCommand.DEVICE_SET_IRQS,
                SetIrqs.of(SetIrqs.ACTION_TRIGGER | SetIrqs.DATA_EVENTFD, IrqType.MSIX.index(), 0, 1),
                FdSet.of(Linux.dup(efd)))).isZero();
        assertThat(Linux.isNonBlocking(efd)).as("the server made it non-blocking").isTrue();
    }

    /** What the hostile client does behind the server's back: its eventfd blocking again, and full. */
    private static void tamper(int efd) throws Exception {
        Linux.setBlocking(efd);
        Linux.eventfdWrite(efd, FULL_COUNTER - countOf(efd));
    }

    private static RegionAccess doorbell(int vector) {
        return RegionAccess.inRegion(NullDevice.REGISTER_BAR).atOffset(NullDevice.DOORBELL)
                .data(Unpooled.buffer(8).writeLongLE(vector));
    }

    private static long count(int efd) {
        try {
            return countOf(efd);
        } catch (Exception e) {
            throw new AssertionError(e);
        }
    }
}
