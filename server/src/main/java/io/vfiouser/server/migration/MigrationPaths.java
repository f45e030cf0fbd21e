package io.vfiouser.server.migration;

import io.vfiouser.device.MigrationState;
import java.util.ArrayDeque;
import java.util.EnumMap;
import java.util.EnumSet;
import java.util.Map;
import java.util.Set;

/**
 * The arcs of the migration state machine and the way between any two states (digest 3.16, the kernel's
 * {@code vfio_mig_get_next_state}).
 *
 * <p>Single arcs: RUNNING⇄STOP, RUNNING⇄PRE_COPY, PRE_COPY→STOP_COPY, STOP⇄STOP_COPY, STOP⇄RESUMING. Any other
 * target is reached by the shortest chain of arcs that does not pass <em>through</em> PRE_COPY or STOP_COPY (a
 * saving session is never started and ended on the way); e.g. RUNNING→STOP_COPY goes RUNNING→STOP→STOP_COPY, and
 * PRE_COPY→RESUMING goes PRE_COPY→RUNNING→STOP→RESUMING. Never: STOP_COPY→PRE_COPY, anything to or from ERROR,
 * the P2P states; without PRE_COPY support, no arc touches PRE_COPY.
 */
public final class MigrationPaths {
    private static final Map<MigrationState, Set<MigrationState>> ARCS = new EnumMap<>(MigrationState.class);

    static {
        for (MigrationState s : MigrationState.values()) {
            ARCS.put(s, EnumSet.noneOf(MigrationState.class));
        }
        ARCS.get(MigrationState.RUNNING).addAll(EnumSet.of(MigrationState.STOP, MigrationState.PRE_COPY));
        ARCS.get(MigrationState.PRE_COPY).addAll(EnumSet.of(MigrationState.RUNNING, MigrationState.STOP_COPY));
        ARCS.get(MigrationState.STOP).addAll(
                EnumSet.of(MigrationState.RUNNING, MigrationState.STOP_COPY, MigrationState.RESUMING));
        ARCS.get(MigrationState.STOP_COPY).add(MigrationState.STOP);
        ARCS.get(MigrationState.RESUMING).add(MigrationState.STOP);
    }

    private MigrationPaths() {
    }

    /** Whether {@code from → to} is a single arc of the machine (with or without PRE_COPY support). */
    public static boolean isArc(MigrationState from, MigrationState to, boolean preCopy) {
        if (!preCopy && (from == MigrationState.PRE_COPY || to == MigrationState.PRE_COPY)) {
            return false;
        }
        return ARCS.get(from).contains(to);
    }

    /**
     * The first state on the way from {@code from} to {@code to}, or null if {@code to} cannot be reached (or
     * asked for) from {@code from}. {@code from == to} gives {@code to}.
     */
    public static MigrationState nextHop(MigrationState from, MigrationState to, boolean preCopy) {
        if (from == to) {
            return to;
        }
        if (from == MigrationState.ERROR || to == MigrationState.ERROR || isP2p(from) || isP2p(to)
                || from == MigrationState.STOP_COPY && to == MigrationState.PRE_COPY) {
            return null;
        }
        // Breadth-first from `from`; interior states may not be PRE_COPY or STOP_COPY.
        Map<MigrationState, MigrationState> firstHop = new EnumMap<>(MigrationState.class);
        ArrayDeque<MigrationState> queue = new ArrayDeque<>();
        for (MigrationState n : MigrationState.values()) {
            if (isArc(from, n, preCopy)) {
                if (n == to) {
                    return n;
                }
                firstHop.put(n, n);
                if (!isSaving(n)) {
                    queue.add(n);
                }
            }
        }
        while (!queue.isEmpty()) {
            MigrationState s = queue.poll();
            for (MigrationState n : MigrationState.values()) {
                if (n == from || firstHop.containsKey(n) || !isArc(s, n, preCopy)) {
                    continue;
                }
                firstHop.put(n, firstHop.get(s));
                if (n == to) {
                    return firstHop.get(n);
                }
                if (!isSaving(n)) {
                    queue.add(n);
                }
            }
        }
        return null;
    }

    private static boolean isSaving(MigrationState s) {
        return s == MigrationState.PRE_COPY || s == MigrationState.STOP_COPY;
    }

    private static boolean isP2p(MigrationState s) {
        return s == MigrationState.RUNNING_P2P || s == MigrationState.PRE_COPY_P2P;
    }
}
