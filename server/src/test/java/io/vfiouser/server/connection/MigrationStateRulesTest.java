package io.vfiouser.server.connection;

import static io.vfiouser.server.connection.ConnectionChannel.command;
import static io.vfiouser.server.connection.ConnectionChannel.concat;
import static io.vfiouser.server.connection.ConnectionChannel.le;
import static io.vfiouser.server.connection.MigrationCommandsTest.ERROR;
import static io.vfiouser.server.connection.MigrationCommandsTest.PRE_COPY;
import static io.vfiouser.server.connection.MigrationCommandsTest.RESUMING;
import static io.vfiouser.server.connection.MigrationCommandsTest.RUNNING;
import static io.vfiouser.server.connection.MigrationCommandsTest.STOP;
import static io.vfiouser.server.connection.MigrationCommandsTest.STOP_COPY;
import static io.vfiouser.server.connection.UnitDevices.BAR0;
import static org.assertj.core.api.Assertions.assertThat;

import io.vfiouser.codec.VfioUserCommand;
import io.vfiouser.codec.VfioUserHeader;
import io.vfiouser.device.MigrationSupport;
import io.vfiouser.transport.linux.Errno;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;

/**
 * The server's command rules (CommandRules) seen from the wire: in each migration state, every client command is
 * sent as golden bytes and either refused with EINVAL before the device sees anything (digest 4.6, 6.3: a stopped
 * device takes only region accesses, DEVICE_FEATURE and MIG_DATA_READ; STOP_COPY not even region accesses; ERROR
 * also DEVICE_RESET), or runs; and exactly DMA_MAP, DMA_UNMAP and DEVICE_RESET quiesce the device first. The
 * expectations are written out here, not derived from the table.
 */
class MigrationStateRulesTest {
    private static final Set<VfioUserCommand> REGION_ACCESS = EnumSet.of(VfioUserCommand.REGION_READ,
            VfioUserCommand.REGION_WRITE, VfioUserCommand.REGION_WRITE_MULTI);

    private final ScriptedDevice device = new ScriptedDevice();
    private final MigratingDevice migrating = new MigratingDevice(device);

    /** One valid request per command, in an order that works when all run (DMA_UNMAP after DMA_MAP, reset last). */
    private static Map<VfioUserCommand, byte[]> samples() {
        Map<VfioUserCommand, byte[]> m = new LinkedHashMap<>();
        m.put(VfioUserCommand.VERSION, command(0, VfioUserCommand.VERSION, 0,
                ConnectionChannel.version(0, 2, "{}")));
        m.put(VfioUserCommand.DMA_MAP, DmaCommandsTest.map(0, 3, 0, 0x100000, 0x1000));
        m.put(VfioUserCommand.DMA_UNMAP, DmaCommandsTest.unmap(0, 0x100000, 0x1000));
        m.put(VfioUserCommand.DEVICE_GET_INFO, command(0, VfioUserCommand.DEVICE_GET_INFO, le(4, 16, 4, 0, 4, 0,
                4, 0)));
        m.put(VfioUserCommand.DEVICE_GET_REGION_INFO, command(0, VfioUserCommand.DEVICE_GET_REGION_INFO,
                le(4, 32, 4, 0, 4, BAR0, 4, 0, 8, 0, 8, 0)));
        m.put(VfioUserCommand.DEVICE_GET_REGION_IO_FDS, command(0, VfioUserCommand.DEVICE_GET_REGION_IO_FDS,
                le(4, 16, 4, 0, 4, BAR0, 4, 0)));
        m.put(VfioUserCommand.DEVICE_GET_IRQ_INFO, command(0, VfioUserCommand.DEVICE_GET_IRQ_INFO, le(4, 16, 4, 0,
                4, 0, 4, 0)));
        // INTx: TRIGGER | DATA_NONE, start 0, count 0: disable
        m.put(VfioUserCommand.DEVICE_SET_IRQS, command(0, VfioUserCommand.DEVICE_SET_IRQS, le(4, 20, 4, 0x21,
                4, 0, 4, 0, 4, 0)));
        m.put(VfioUserCommand.REGION_READ, command(0, VfioUserCommand.REGION_READ, le(8, 0x10, 4, BAR0, 4, 4)));
        m.put(VfioUserCommand.REGION_WRITE, command(0, VfioUserCommand.REGION_WRITE, concat(le(8, 0x10, 4, BAR0,
                4, 1), new byte[] {7})));
        m.put(VfioUserCommand.DMA_READ, command(0, VfioUserCommand.DMA_READ, le(8, 0x100000, 8, 4)));
        m.put(VfioUserCommand.DMA_WRITE, command(0, VfioUserCommand.DMA_WRITE, concat(le(8, 0x100000, 8, 1),
                new byte[] {1})));
        m.put(VfioUserCommand.REGION_WRITE_MULTI, command(0, VfioUserCommand.REGION_WRITE_MULTI,
                le(8, 1, 8, 0x20, 4, BAR0, 4, 1, 8, 9)));
        m.put(VfioUserCommand.DEVICE_FEATURE, MigrationCommandsTest.getState(0));
        m.put(VfioUserCommand.MIG_DATA_READ, MigrationCommandsTest.dataRead(0, 8 + 16, 16));
        m.put(VfioUserCommand.MIG_DATA_WRITE, MigrationCommandsTest.dataWrite(0, 0, new byte[0]));
        // Last: a reset ends any migration.
        m.put(VfioUserCommand.DEVICE_RESET, command(0, VfioUserCommand.DEVICE_RESET, new byte[0]));
        return m;
    }

    /** Commands a client never sends: refused in every state. */
    private static final Set<VfioUserCommand> NEVER = EnumSet.of(VfioUserCommand.VERSION, VfioUserCommand.DMA_READ,
            VfioUserCommand.DMA_WRITE);

    private ConnectionChannel inState(int state) throws Exception {
        ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.migratable(MigrationSupport.PRE_COPY),
                migrating);
        switch (state) {
            case RUNNING -> {
            }
            case ERROR -> {
                MigrationCommandsTest.moveTo(c, 1, RESUMING);
                c.send(MigrationCommandsTest.setState(2, STOP)); // nothing was loaded: ERROR
                c.assertError(2, VfioUserCommand.DEVICE_FEATURE, Errno.EINVAL);
            }
            default -> MigrationCommandsTest.moveTo(c, 1, state);
        }
        assertThat(MigrationCommandsTest.stateOf(c, 3)).isEqualTo(state);
        device.takeCalls();
        return c;
    }

    /**
     * Sends every sample in state {@code state}; those not in {@code accepted} must be refused with EINVAL and
     * reach nothing of the device. Returns the errno of each accepted one (0 for success).
     */
    private Map<VfioUserCommand, Integer> check(int state, Set<VfioUserCommand> accepted) throws Exception {
        Map<VfioUserCommand, Integer> outcome = new EnumMap<>(VfioUserCommand.class);
        try (ConnectionChannel c = inState(state)) {
            int id = 100;
            for (Map.Entry<VfioUserCommand, byte[]> e : samples().entrySet()) {
                byte[] frame = e.getValue();
                frame[0] = (byte) id;
                c.send(frame);
                ConnectionChannel.Reply r = c.reply();
                assertThat(r.msgId()).isEqualTo(id++);
                if (accepted.contains(e.getKey())) {
                    outcome.put(e.getKey(), r.error());
                } else {
                    assertThat(r.error()).as("%s in state %d", e.getKey(), state).isEqualTo(Errno.EINVAL);
                    assertThat(r.size()).isEqualTo(VfioUserHeader.HEADER_SIZE);
                    assertThat(device.takeCalls()).as("%s refused in state %d reached the device", e.getKey(),
                            state).isEmpty();
                }
                device.takeCalls();
            }
        }
        return outcome;
    }

    private static Set<VfioUserCommand> allClientCommands() {
        Set<VfioUserCommand> all = EnumSet.allOf(VfioUserCommand.class);
        all.removeAll(NEVER);
        return all;
    }

    @Test
    void runningAndPreCopyAcceptEveryClientCommand() throws Exception {
        for (int state : new int[] {RUNNING, PRE_COPY}) {
            Map<VfioUserCommand, Integer> outcome = check(state, allClientCommands());
            for (Map.Entry<VfioUserCommand, Integer> e : outcome.entrySet()) {
                int expected = switch (e.getKey()) {
                    case MIG_DATA_READ -> state == PRE_COPY ? 0 : Errno.EINVAL; // data only while saving
                    case MIG_DATA_WRITE -> Errno.EINVAL; // only while resuming
                    default -> 0;
                };
                assertThat(e.getValue()).as("%s in state %d", e.getKey(), state).isEqualTo(expected);
            }
        }
    }

    @Test
    void resumingAcceptsEveryClientCommand() throws Exception {
        Map<VfioUserCommand, Integer> outcome = check(RESUMING, allClientCommands());
        for (Map.Entry<VfioUserCommand, Integer> e : outcome.entrySet()) {
            int expected = e.getKey() == VfioUserCommand.MIG_DATA_READ ? Errno.EINVAL : 0;
            assertThat(e.getValue()).as("%s", e.getKey()).isEqualTo(expected);
        }
    }

    @Test
    void stopTakesOnlyRegionAccessesFeaturesAndDataReads() throws Exception {
        Set<VfioUserCommand> accepted = EnumSet.copyOf(REGION_ACCESS);
        accepted.add(VfioUserCommand.DEVICE_FEATURE);
        accepted.add(VfioUserCommand.MIG_DATA_READ);
        Map<VfioUserCommand, Integer> outcome = check(STOP, accepted);
        assertThat(outcome.get(VfioUserCommand.REGION_READ)).isZero();
        assertThat(outcome.get(VfioUserCommand.REGION_WRITE)).isZero();
        assertThat(outcome.get(VfioUserCommand.REGION_WRITE_MULTI)).isZero();
        assertThat(outcome.get(VfioUserCommand.DEVICE_FEATURE)).isZero();
        assertThat(outcome.get(VfioUserCommand.MIG_DATA_READ)).as("STOP saves nothing").isEqualTo(Errno.EINVAL);
    }

    @Test
    void stopCopyTakesNotEvenRegionAccesses() throws Exception {
        Map<VfioUserCommand, Integer> outcome = check(STOP_COPY,
                EnumSet.of(VfioUserCommand.DEVICE_FEATURE, VfioUserCommand.MIG_DATA_READ));
        assertThat(outcome).containsEntry(VfioUserCommand.DEVICE_FEATURE, 0)
                .containsEntry(VfioUserCommand.MIG_DATA_READ, 0);
    }

    @Test
    void errorTakesWhatStopTakesAndTheResetThatEndsIt() throws Exception {
        Set<VfioUserCommand> accepted = EnumSet.copyOf(REGION_ACCESS);
        accepted.add(VfioUserCommand.DEVICE_FEATURE);
        accepted.add(VfioUserCommand.MIG_DATA_READ);
        accepted.add(VfioUserCommand.DEVICE_RESET);
        Map<VfioUserCommand, Integer> outcome = check(ERROR, accepted);
        assertThat(outcome.get(VfioUserCommand.REGION_READ)).isZero();
        assertThat(outcome.get(VfioUserCommand.DEVICE_RESET)).isZero();
    }

    /** DEVICE_RESET out of ERROR: quiesce, the reset, and the device runs again and takes every command. */
    @Test
    void resetLeavesError() throws Exception {
        try (ConnectionChannel c = inState(ERROR)) {
            c.send(command(10, VfioUserCommand.DEVICE_GET_INFO, le(4, 16, 4, 0, 4, 0, 4, 0)));
            c.assertError(10, VfioUserCommand.DEVICE_GET_INFO, Errno.EINVAL);
            c.send(command(11, VfioUserCommand.DEVICE_RESET, new byte[0]));
            c.assertOk(11, VfioUserCommand.DEVICE_RESET);
            assertThat(device.takeCalls()).containsExactly("quiesce", "reset CLIENT_REQUEST",
                    "migration ERROR RUNNING");
            assertThat(MigrationCommandsTest.stateOf(c, 12)).isEqualTo(RUNNING);
            c.send(command(13, VfioUserCommand.DEVICE_GET_INFO, le(4, 16, 4, 0, 4, 0, 4, 0)));
            c.assertOk(13, VfioUserCommand.DEVICE_GET_INFO);
        }
    }

    /** A refused command that asked for no reply gets none. */
    @Test
    void aRefusedNoReplyCommandIsNotAnswered() throws Exception {
        try (ConnectionChannel c = inState(STOP_COPY)) {
            c.send(command(10, VfioUserCommand.REGION_WRITE, VfioUserHeader.NO_REPLY, concat(le(8, 0, 4, BAR0, 4, 1),
                    new byte[] {1})));
            c.send(command(11, VfioUserCommand.DMA_MAP, VfioUserHeader.NO_REPLY, le(4, 32, 4, 3, 8, 0, 8, 0x100000,
                    8, 0x1000)));
            c.assertNoReply();
            assertThat(device.takeCalls()).isEmpty();
            assertThat(c.runtime.stats().errors(Errno.EINVAL)).isEqualTo(2);
        }
    }

    /**
     * In RUNNING, exactly DMA_MAP, DMA_UNMAP and DEVICE_RESET quiesce the device before they run, and wait for the
     * quiesce: the command is answered only once it completes.
     */
    @Test
    void exactlyMapUnmapAndResetQuiesceFirst() throws Exception {
        Set<VfioUserCommand> quiescing = EnumSet.noneOf(VfioUserCommand.class);
        try (ConnectionChannel c = inState(RUNNING)) {
            int id = 100;
            CompletableFuture<Void> hold = null;
            for (Map.Entry<VfioUserCommand, byte[]> e : samples().entrySet()) {
                byte[] frame = e.getValue();
                frame[0] = (byte) id;
                if (hold == null) {
                    hold = device.holdNextQuiesce();
                }
                c.send(frame);
                List<String> calls = new ArrayList<>(device.takeCalls());
                if (!calls.isEmpty() && calls.get(0).equals("quiesce")) {
                    quiescing.add(e.getKey());
                    assertThat(calls).as("%s waits for the quiesce", e.getKey()).containsExactly("quiesce");
                    c.assertNoReply();
                    hold.complete(null);
                    hold = null;
                }
                assertThat(c.reply().msgId()).isEqualTo(id++);
                device.takeCalls();
            }
            if (hold != null) {
                hold.complete(null); // for the quiesce of the teardown
            }
        }
        assertThat(quiescing).containsExactlyInAnyOrder(VfioUserCommand.DMA_MAP, VfioUserCommand.DMA_UNMAP,
                VfioUserCommand.DEVICE_RESET);
    }
}
