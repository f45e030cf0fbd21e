package io.vfiouser.server.connection;

import static io.vfiouser.server.connection.ConnectionChannel.command;
import static io.vfiouser.server.connection.ConnectionChannel.le;
import static io.vfiouser.server.connection.UnitDevices.BAR0;
import static org.assertj.core.api.Assertions.assertThat;

import io.vfiouser.codec.VfioUserCommand;
import io.vfiouser.device.MigrationSupport;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;

/**
 * The teardown when a client leaves (digest 4.6, 5.11), without a socket: the device is quiesced, the client's
 * mappings go (dmaUnmapped, their fds closed) with its interrupt eventfds, the device is reset with reason
 * LOST_CONNECTION, a migration in progress ends, and the device is told detached(); each step waits for the one
 * before, and the next client may have the device only when the last is over. Commands still queued are released
 * unanswered with their fds.
 */
class ClientLeavesTest {
    /** SET_IRQS: argsz, flags TRIGGER | DATA_EVENTFD, index, start 0, count 1 (digest 3.8). */
    private static byte[] eventfdFor(int msgId, int index) {
        return command(msgId, VfioUserCommand.DEVICE_SET_IRQS, le(4, 20, 4, 0x24, 4, index, 4, 0, 4, 1));
    }

    private final ScriptedDevice device = new ScriptedDevice();

    @Test
    void everythingTheClientGaveIsReleasedInOrder() throws Exception {
        int intx = TestFds.eventfd();
        int req = TestFds.eventfd();
        try (TestFds.Memfd memory = TestFds.memfd(0x4000);
             ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.basic(), device)) {
            c.send(DmaCommandsTest.map(1, 3, 0, 0x10000, 0x2000), memory.give());
            c.assertOk(1, VfioUserCommand.DMA_MAP);
            c.send(DmaCommandsTest.map(2, 3, 0, 0x20000, 0x1000));
            c.assertOk(2, VfioUserCommand.DMA_MAP);
            int intxGiven = TestFds.dup(intx);
            c.send(eventfdFor(3, 0), intxGiven);
            c.assertOk(3, VfioUserCommand.DEVICE_SET_IRQS);
            int reqGiven = TestFds.dup(req);
            c.send(eventfdFor(4, 4), reqGiven);
            c.assertOk(4, VfioUserCommand.DEVICE_SET_IRQS);
            device.takeCalls();

            CompletableFuture<Void> quiesced = device.holdNextQuiesce();
            CompletableFuture<Void> reset = device.holdNextReset();
            c.leave();
            assertThat(device.takeCalls()).containsExactly("quiesce");
            assertThat(memory.open()).as("kept until the device is quiesced").isEqualTo(2);
            assertThat(TestFds.isOpen(intxGiven)).isTrue();

            quiesced.complete(null);
            assertThat(device.takeCalls()).containsExactlyInAnyOrder("dmaUnmapped 0x10000 0x2000",
                    "dmaUnmapped 0x20000 0x1000", "reset LOST_CONNECTION");
            assertThat(device.calls).isEmpty();
            assertThat(memory.open()).as("the mapping's fd is closed").isEqualTo(1);
            assertThat(TestFds.isOpen(intxGiven)).as("INTx eventfd closed").isFalse();
            assertThat(TestFds.isOpen(reqGiven)).as("REQ eventfd closed").isFalse();
            assertThat(c.handler.teardown()).isNotDone();

            reset.complete(null);
            c.runTasks();
            assertThat(device.takeCalls()).containsExactly("detached");
            assertThat(c.handler.teardown()).isDone();
        } finally {
            assertThat(TestFds.isOpen(intx)).as("the test's own eventfds were not closed in its place").isTrue();
            TestFds.close(intx);
            TestFds.close(req);
        }
    }

    /** The dmaUnmapped calls come after the quiesce and before the reset. */
    @Test
    void mappingsGoBetweenTheQuiesceAndTheReset() throws Exception {
        try (TestFds.Memfd memory = TestFds.memfd(0x1000);
             ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.basic(), device)) {
            c.send(DmaCommandsTest.map(1, 3, 0, 0x10000, 0x1000), memory.give());
            c.assertOk(1, VfioUserCommand.DMA_MAP);
            device.takeCalls();
            c.leave();
            assertThat(device.takeCalls()).containsExactly("quiesce", "dmaUnmapped 0x10000 0x1000",
                    "reset LOST_CONNECTION", "detached");
            assertThat(memory.open()).isEqualTo(1);
        }
    }

    @Test
    void aMigrationInProgressEndsAndTheDeviceRunsAgain() throws Exception {
        MigratingDevice migrating = new MigratingDevice(device);
        try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.migratable(MigrationSupport.PRE_COPY),
                migrating)) {
            MigrationCommandsTest.moveTo(c, 1, MigrationCommandsTest.STOP_COPY);
            device.takeCalls();
            c.leave();
            assertThat(device.takeCalls()).containsExactly("quiesce", "reset LOST_CONNECTION",
                    "migration STOP_COPY RUNNING", "detached");
        }
    }

    /**
     * Commands queued behind one the device has not completed are released unanswered when the client leaves,
     * with their fds; the held one's late completion writes nothing.
     */
    @Test
    void queuedCommandsAreReleasedWithTheirFds() throws Exception {
        try (TestFds.Memfd memory = TestFds.memfd(0x1000);
             ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.basic(), device)) {
            device.takeCalls();
            CompletableFuture<Void> held = device.holdNextAccess();
            c.send(command(1, VfioUserCommand.REGION_READ, le(8, 0, 4, BAR0, 4, 4)));
            c.send(DmaCommandsTest.map(2, 3, 0, 0x10000, 0x1000), memory.give());
            c.send(command(3, VfioUserCommand.REGION_WRITE, ConnectionChannel.concat(le(8, 0, 4, BAR0, 4, 2),
                    new byte[] {1, 2})));
            assertThat(memory.open()).isEqualTo(2);
            c.leave();
            assertThat(memory.open()).as("the queued DMA_MAP's fd").isEqualTo(1);
            held.complete(null);
            c.runTasks();
            c.assertNoReply();
            assertThat(device.takeCalls()).containsExactly("read 0 0x0 4", "quiesce", "reset LOST_CONNECTION",
                    "detached");
        }
    }

    /** A client that never negotiated was never attached: nothing to quiesce, reset or detach. */
    @Test
    void aClientThatNeverNegotiatedLeavesTheDeviceAlone() throws Exception {
        try (ConnectionChannel c = ConnectionChannel.open(UnitDevices.basic(), device)) {
            c.leave();
            assertThat(device.takeCalls()).isEmpty();
            assertThat(c.handler.teardown()).isDone();
        }
    }
}
