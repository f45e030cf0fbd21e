package io.vfiouser.server.connection;

import io.vfiouser.codec.VfioUserCommand;
import io.vfiouser.codec.VfioUserProtocolException;
import io.vfiouser.device.MigrationState;
import io.vfiouser.transport.linux.Errno;
import java.util.Collections;
import java.util.EnumMap;
import java.util.EnumSet;
import java.util.Map;
import java.util.Set;

/**
 * The server's policy for each client command, in one table: whether the device is quiesced before the command
 * runs, and in which migration states the command is accepted (digest 4.6 and 6.3; libvfio-user decides the same
 * in {@code command_needs_quiesce()} and {@code cmd_allowed_when_stopped_and_copying()}). The dispatcher applies
 * it once, before a command reaches its handler; {@link RegionFastPath} serves a command only where the table
 * accepts it without a quiesce, so the two paths cannot disagree. The wire shape of a command (argsz, sizes,
 * flags) is not a rule of this table: its payload decoder owns it.
 *
 * <p>The quiesce here is the one a command needs as a whole (its effect changes what DMA the device may do). Three
 * quiesces are not a command's: the one before an FLR (a configuration write asks for it, and it runs after that
 * write), the one when the client leaves, and the one before a migration arc that stops the device (a DEVICE_FEATURE
 * SET of MIG_DEVICE_STATE may cross several arcs, and only a running-to-stopped one stops DMA). Each is taken by the
 * routine that performs that event.
 */
final class CommandRules {
    private static final Set<MigrationState> ALL = Collections.unmodifiableSet(EnumSet.allOf(MigrationState.class));
    /** Where the device is stopped (STOP, STOP_COPY, ERROR) only what migration itself needs is accepted. */
    private static final Set<MigrationState> NOT_STOPPED = EnumSet.complementOf(
            EnumSet.of(MigrationState.STOP, MigrationState.STOP_COPY, MigrationState.ERROR));
    /** While the state is being saved (STOP_COPY) it must hold still: not even its registers are accessed. */
    private static final Set<MigrationState> NOT_SAVING = EnumSet.complementOf(EnumSet.of(MigrationState.STOP_COPY));

    /**
     * One command's rule.
     *
     * @param needsQuiesce the device is quiesced ({@link io.vfiouser.device.VfioUserDevice#quiesce()}) before the
     *                     command runs
     * @param acceptedIn   the migration states in which the command runs; in the others it fails with
     *                     {@code errno} and the device never sees it
     * @param errno        the error reply of a refused command
     */
    record Rule(boolean needsQuiesce, Set<MigrationState> acceptedIn, int errno) {
        Rule {
            acceptedIn = Collections.unmodifiableSet(acceptedIn.isEmpty()
                    ? EnumSet.noneOf(MigrationState.class) : EnumSet.copyOf(acceptedIn));
        }

        boolean accepts(MigrationState state) {
            return acceptedIn.contains(state);
        }
    }

    private static final Map<VfioUserCommand, Rule> RULES = table();

    private CommandRules() {
    }

    private static Map<VfioUserCommand, Rule> table() {
        EnumMap<VfioUserCommand, Rule> t = new EnumMap<>(VfioUserCommand.class);
        // Negotiated once, before any rule applies; the server's own requests never come from the client.
        t.put(VfioUserCommand.VERSION, refused());
        t.put(VfioUserCommand.DMA_READ, refused());
        t.put(VfioUserCommand.DMA_WRITE, refused());
        // A mapping change must not race the device's DMA (digest 4.6: DMA_MAP, DMA_UNMAP quiesce first).
        t.put(VfioUserCommand.DMA_MAP, rule(true, NOT_STOPPED));
        t.put(VfioUserCommand.DMA_UNMAP, rule(true, NOT_STOPPED));
        t.put(VfioUserCommand.DEVICE_GET_INFO, rule(false, NOT_STOPPED));
        t.put(VfioUserCommand.DEVICE_GET_REGION_INFO, rule(false, NOT_STOPPED));
        t.put(VfioUserCommand.DEVICE_GET_REGION_IO_FDS, rule(false, NOT_STOPPED));
        t.put(VfioUserCommand.DEVICE_GET_IRQ_INFO, rule(false, NOT_STOPPED));
        t.put(VfioUserCommand.DEVICE_SET_IRQS, rule(false, NOT_STOPPED));
        // Region accesses, also while stopped (and in ERROR); not in STOP_COPY, where the state being saved must
        // hold still. REGION_WRITE_MULTI is region writes.
        t.put(VfioUserCommand.REGION_READ, rule(false, NOT_SAVING));
        t.put(VfioUserCommand.REGION_WRITE, rule(false, NOT_SAVING));
        t.put(VfioUserCommand.REGION_WRITE_MULTI, rule(false, NOT_SAVING));
        // The only way out of ERROR.
        EnumSet<MigrationState> reset = EnumSet.copyOf(NOT_STOPPED);
        reset.add(MigrationState.ERROR);
        t.put(VfioUserCommand.DEVICE_RESET, rule(true, reset));
        // How the client drives migration and reads the saved state: in every state.
        t.put(VfioUserCommand.DEVICE_FEATURE, rule(false, ALL));
        t.put(VfioUserCommand.MIG_DATA_READ, rule(false, ALL));
        t.put(VfioUserCommand.MIG_DATA_WRITE, rule(false, NOT_STOPPED));
        for (VfioUserCommand c : VfioUserCommand.values()) {
            if (!t.containsKey(c)) {
                throw new IllegalStateException("no rule for " + c);
            }
        }
        return Collections.unmodifiableMap(t);
    }

    private static Rule rule(boolean needsQuiesce, Set<MigrationState> acceptedIn) {
        return new Rule(needsQuiesce, acceptedIn, Errno.EINVAL);
    }

    private static Rule refused() {
        return new Rule(false, Set.of(), Errno.EINVAL);
    }

    /** The rule of {@code command}. */
    static Rule of(VfioUserCommand command) {
        return RULES.get(command);
    }

    /**
     * Applies the acceptance rule: returns the command's rule, or throws its errno when {@code state} does not
     * accept it.
     */
    static Rule check(VfioUserCommand command, MigrationState state) {
        Rule rule = RULES.get(command);
        if (!rule.accepts(state)) {
            throw new VfioUserProtocolException(rule.errno(), rule.acceptedIn().isEmpty()
                    ? command + " is not a command a client sends after VERSION"
                    : command + " is not accepted in migration state " + state);
        }
        return rule;
    }

    /** Whether {@code command} may run in {@code state} without anything first: what the fast path may serve. */
    static boolean runsAsIs(VfioUserCommand command, MigrationState state) {
        Rule rule = RULES.get(command);
        return !rule.needsQuiesce() && rule.accepts(state);
    }
}
