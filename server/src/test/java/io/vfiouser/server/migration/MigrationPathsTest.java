package io.vfiouser.server.migration;

import static io.vfiouser.device.MigrationState.ERROR;
import static io.vfiouser.device.MigrationState.PRE_COPY;
import static io.vfiouser.device.MigrationState.PRE_COPY_P2P;
import static io.vfiouser.device.MigrationState.RESUMING;
import static io.vfiouser.device.MigrationState.RUNNING;
import static io.vfiouser.device.MigrationState.RUNNING_P2P;
import static io.vfiouser.device.MigrationState.STOP;
import static io.vfiouser.device.MigrationState.STOP_COPY;
import static org.assertj.core.api.Assertions.assertThat;

import io.vfiouser.device.MigrationState;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Every pair of states: the first hop (digest 3.16; libvfio-user's next-state table), and the full paths. */
class MigrationPathsTest {
    private static final MigrationState[] USABLE = {STOP, RUNNING, STOP_COPY, RESUMING, PRE_COPY};

    /** The expected first hop for every usable pair with PRE_COPY support, null where refused. */
    private static MigrationState expected(MigrationState from, MigrationState to) {
        if (from == to) {
            return to;
        }
        return switch (from) {
            case STOP -> to == PRE_COPY ? RUNNING : to;
            case RUNNING -> to == PRE_COPY || to == STOP ? to : STOP;
            case STOP_COPY -> to == PRE_COPY ? null : STOP;
            case RESUMING -> STOP;
            case PRE_COPY -> to == STOP_COPY || to == RUNNING ? to : RUNNING;
            default -> null;
        };
    }

    @Test
    void firstHopOfEveryPair() {
        for (MigrationState from : USABLE) {
            for (MigrationState to : USABLE) {
                assertThat(MigrationPaths.nextHop(from, to, true)).as("%s -> %s", from, to)
                        .isEqualTo(expected(from, to));
            }
        }
    }

    @Test
    void errorAndP2pAreNeverReachedNorLeft() {
        for (MigrationState s : MigrationState.values()) {
            for (MigrationState bad : List.of(ERROR, RUNNING_P2P, PRE_COPY_P2P)) {
                if (s != bad) {
                    assertThat(MigrationPaths.nextHop(s, bad, true)).as("%s -> %s", s, bad).isNull();
                    assertThat(MigrationPaths.nextHop(bad, s, true)).as("%s -> %s", bad, s).isNull();
                }
            }
        }
    }

    @Test
    void pathsNeverPassThroughASavingState() {
        for (MigrationState from : USABLE) {
            for (MigrationState to : USABLE) {
                List<MigrationState> path = path(from, to, true);
                if (path == null || path.isEmpty()) {
                    continue;
                }
                for (MigrationState interior : path.subList(0, path.size() - 1)) {
                    assertThat(interior).as("%s -> %s via %s", from, to, path).isNotIn(PRE_COPY, STOP_COPY);
                }
                assertThat(path.size()).as("%s -> %s", from, to).isLessThanOrEqualTo(3);
            }
        }
        assertThat(path(PRE_COPY, RESUMING, true)).containsExactly(RUNNING, STOP, RESUMING);
        assertThat(path(RUNNING, STOP_COPY, true)).containsExactly(STOP, STOP_COPY);
        assertThat(path(STOP_COPY, RUNNING, true)).containsExactly(STOP, RUNNING);
    }

    @Test
    void withoutPreCopyNoArcTouchesIt() {
        for (MigrationState s : USABLE) {
            if (s != PRE_COPY) {
                assertThat(MigrationPaths.nextHop(s, PRE_COPY, false)).as("%s -> PRE_COPY", s).isNull();
            }
        }
        assertThat(path(RUNNING, STOP_COPY, false)).containsExactly(STOP, STOP_COPY);
        assertThat(MigrationPaths.isArc(RUNNING, PRE_COPY, false)).isFalse();
        assertThat(MigrationPaths.isArc(RUNNING, PRE_COPY, true)).isTrue();
    }

    private static List<MigrationState> path(MigrationState from, MigrationState to, boolean preCopy) {
        List<MigrationState> path = new ArrayList<>();
        MigrationState at = from;
        while (at != to) {
            MigrationState next = MigrationPaths.nextHop(at, to, preCopy);
            if (next == null) {
                return null;
            }
            assertThat(MigrationPaths.isArc(at, next, preCopy)).as("%s -> %s is an arc", at, next).isTrue();
            path.add(next);
            at = next;
        }
        return path;
    }
}
