package io.vfiouser.server.launcher;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vfiouser.codec.DmaLayout;
import org.junit.jupiter.api.Test;

/** {@code --dma-layout} and {@code --exit-on-disconnect} on the launcher's command line. */
class LauncherDmaOptionsTest {
    private static LauncherArguments parse(String... args) {
        return LauncherArguments.parse(args);
    }

    @Test
    void qemusLayoutAndNoExitByDefault() {
        LauncherArguments a = parse("null", "--socket-path=/s");
        assertThat(a.dmaLayout()).isEqualTo(DmaLayout.QEMU);
        assertThat(a.exitOnDisconnect()).isFalse();
        assertThat(a.settings()).isEmpty();
    }

    @Test
    void theSpecsLayoutAndExitOnDisconnect() {
        LauncherArguments a = parse("null", "--socket-path=/s", "--dma-layout=spec", "--exit-on-disconnect");
        assertThat(a.dmaLayout()).isEqualTo(DmaLayout.SPEC);
        assertThat(a.exitOnDisconnect()).isTrue();
        assertThat(parse("null", "--dma-layout=QEMU").dmaLayout()).isEqualTo(DmaLayout.QEMU);
        assertThat(a.settings()).as("launcher options, not device settings").isEmpty();
    }

    @Test
    void anUnknownLayoutIsAUsageError() {
        assertThatThrownBy(() -> parse("null", "--dma-layout=u64"))
                .isInstanceOf(IllegalArgumentException.class).hasMessage("--dma-layout=u64: qemu or spec");
    }
}
