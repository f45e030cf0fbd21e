package io.vfiouser.server.launcher;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vfiouser.server.ConnectionLimits;
import java.time.Duration;
import org.junit.jupiter.api.Test;

/** The launcher's per-client limit options and the number formats they take. */
class LauncherLimitsTest {
    @Test
    void withoutOptionsTheDefaultsApply() {
        assertThat(LauncherArguments.parse(new String[] {"null"}).limits()).isEqualTo(ConnectionLimits.DEFAULT);
    }

    @Test
    void everyLimitHasAnOption() {
        ConnectionLimits l = LauncherArguments.parse(new String[] {"null", "--socket-path=/s",
                "--max-queued-reply-bytes=8M", "--max-queued-commands=0x100", "--max-queued-command-bytes=2MiB",
                "--max-held-connections=0", "--hold-timeout=500ms", "--negotiation-timeout=2s",
                "--max-dma-maps=64", "--max-client-fds=128", "--warning-burst=3", "--warning-interval=2m"}).limits();
        assertThat(l.outboundHighWaterMark()).isEqualTo(8 << 20);
        assertThat(l.outboundLowWaterMark()).isEqualTo(4 << 20);
        assertThat(l.maxQueuedCommands()).isEqualTo(256);
        assertThat(l.maxQueuedCommandBytes()).isEqualTo(2L << 20);
        assertThat(l.maxHeldConnections()).isZero();
        assertThat(l.holdTimeout()).isEqualTo(Duration.ofMillis(500));
        assertThat(l.negotiationTimeout()).isEqualTo(Duration.ofSeconds(2));
        assertThat(l.maxDmaMappings()).isEqualTo(64);
        assertThat(l.maxClientFds()).isEqualTo(128);
        assertThat(l.warningBurst()).isEqualTo(3);
        assertThat(l.warningInterval()).isEqualTo(Duration.ofMinutes(2));
    }

    @Test
    void badValuesAreUsageErrors() {
        assertThatThrownBy(() -> LauncherArguments.parse(new String[] {"null", "--hold-timeout=30"}))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("duration");
        assertThatThrownBy(() -> LauncherArguments.parse(new String[] {"null", "--max-dma-maps=70000"}))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("maxDmaMappings");
        assertThatThrownBy(() -> LauncherArguments.parse(new String[] {"null", "--max-queued-commands=x"}))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("number");
        assertThatThrownBy(() -> LauncherArguments.parse(new String[] {"null", "--negotiation-timeout=0s"}))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("positive");
    }

    @Test
    void quantities() {
        assertThat(Quantities.size("s", "4k", 0)).isEqualTo(4096);
        assertThat(Quantities.size("s", "1G", 0)).isEqualTo(1L << 30);
        assertThat(Quantities.size("s", "0x1000", 0)).isEqualTo(4096);
        assertThat(Quantities.size("s", "100", 0)).isEqualTo(100);
        assertThat(Quantities.count("c", "0X1f", 0)).isEqualTo(31);
        assertThat(Quantities.duration("d", "3h")).isEqualTo(Duration.ofHours(3));
        assertThatThrownBy(() -> Quantities.size("s", "-1k", 0)).isInstanceOf(IllegalArgumentException.class);
    }
}
