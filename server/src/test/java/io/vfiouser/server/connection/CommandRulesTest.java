package io.vfiouser.server.connection;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vfiouser.codec.VfioUserCommand;
import io.vfiouser.codec.VfioUserProtocolException;
import io.vfiouser.device.MigrationState;
import io.vfiouser.transport.linux.Errno;
import java.util.EnumSet;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * The rule table against the digest (4.6: which commands quiesce first; 6.3 and libvfio-user: which commands each
 * migration state accepts), written out here state by state rather than derived, so that a changed rule has to
 * change both.
 */
class CommandRulesTest {
    /** Commands a client never sends after negotiation: refused in every state. */
    private static final Set<VfioUserCommand> NEVER = EnumSet.of(VfioUserCommand.VERSION, VfioUserCommand.DMA_READ,
            VfioUserCommand.DMA_WRITE);
    private static final Set<VfioUserCommand> REGION_ACCESS = EnumSet.of(VfioUserCommand.REGION_READ,
            VfioUserCommand.REGION_WRITE, VfioUserCommand.REGION_WRITE_MULTI);

    @Test
    void everyCommandHasARule() {
        for (VfioUserCommand c : VfioUserCommand.values()) {
            assertThat(CommandRules.of(c)).as("%s", c).isNotNull();
            assertThat(CommandRules.of(c).errno()).as("%s", c).isEqualTo(Errno.EINVAL);
        }
    }

    @Test
    void mappingChangesAndResetsQuiesceFirstNothingElse() {
        Set<VfioUserCommand> quiescing = EnumSet.noneOf(VfioUserCommand.class);
        for (VfioUserCommand c : VfioUserCommand.values()) {
            if (CommandRules.of(c).needsQuiesce()) {
                quiescing.add(c);
            }
        }
        assertThat(quiescing).containsExactlyInAnyOrder(VfioUserCommand.DMA_MAP, VfioUserCommand.DMA_UNMAP,
                VfioUserCommand.DEVICE_RESET);
    }

    @Test
    void runningAndResumingAcceptEveryClientCommand() {
        for (MigrationState s : EnumSet.of(MigrationState.RUNNING, MigrationState.PRE_COPY,
                MigrationState.RESUMING)) {
            assertThat(accepted(s)).as("%s", s).isEqualTo(EnumSet.complementOf(EnumSet.copyOf(NEVER)));
        }
    }

    @Test
    void stopAcceptsRegionAccessesFeaturesAndDataReads() {
        Set<VfioUserCommand> expected = EnumSet.copyOf(REGION_ACCESS);
        expected.add(VfioUserCommand.DEVICE_FEATURE);
        expected.add(VfioUserCommand.MIG_DATA_READ);
        assertThat(accepted(MigrationState.STOP)).isEqualTo(expected);
    }

    @Test
    void stopCopyRefusesRegionAccessesToo() {
        assertThat(accepted(MigrationState.STOP_COPY))
                .containsExactlyInAnyOrder(VfioUserCommand.DEVICE_FEATURE, VfioUserCommand.MIG_DATA_READ);
    }

    @Test
    void errorIsStopWithTheResetThatEndsIt() {
        Set<VfioUserCommand> expected = accepted(MigrationState.STOP);
        expected.add(VfioUserCommand.DEVICE_RESET);
        assertThat(accepted(MigrationState.ERROR)).isEqualTo(expected);
    }

    @Test
    void refusalIsEinvalNamingTheState() {
        assertThatThrownBy(() -> CommandRules.check(VfioUserCommand.DMA_MAP, MigrationState.STOP))
                .isInstanceOfSatisfying(VfioUserProtocolException.class,
                        e -> assertThat(e.errno()).isEqualTo(Errno.EINVAL))
                .hasMessageContaining("STOP");
        assertThatThrownBy(() -> CommandRules.check(VfioUserCommand.VERSION, MigrationState.RUNNING))
                .isInstanceOf(VfioUserProtocolException.class);
        assertThatCode(() -> CommandRules.check(VfioUserCommand.DMA_MAP, MigrationState.RUNNING))
                .doesNotThrowAnyException();
    }

    /** The fast path serves a region access only where the long way would run it without a quiesce. */
    @Test
    void fastPathServesWhatTheTableAcceptsWithoutQuiesce() {
        for (MigrationState s : MigrationState.values()) {
            for (VfioUserCommand c : VfioUserCommand.values()) {
                CommandRules.Rule rule = CommandRules.of(c);
                assertThat(CommandRules.runsAsIs(c, s)).as("%s in %s", c, s)
                        .isEqualTo(rule.accepts(s) && !rule.needsQuiesce());
            }
        }
        assertThat(CommandRules.runsAsIs(VfioUserCommand.REGION_READ, MigrationState.RUNNING)).isTrue();
        assertThat(CommandRules.runsAsIs(VfioUserCommand.REGION_WRITE, MigrationState.STOP)).isTrue();
        assertThat(CommandRules.runsAsIs(VfioUserCommand.REGION_WRITE, MigrationState.STOP_COPY)).isFalse();
    }

    private static Set<VfioUserCommand> accepted(MigrationState s) {
        Set<VfioUserCommand> out = EnumSet.noneOf(VfioUserCommand.class);
        for (VfioUserCommand c : VfioUserCommand.values()) {
            if (CommandRules.of(c).accepts(s)) {
                out.add(c);
            }
        }
        return out;
    }
}
