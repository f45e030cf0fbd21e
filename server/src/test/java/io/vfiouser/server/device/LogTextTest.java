package io.vfiouser.server.device;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class LogTextTest {
    @Test
    void printableTextIsKept() {
        assertThat(LogText.escape("{\"capabilities\":{\"max_msg_fds\":16}} é ✓")).isEqualTo(
                "{\"capabilities\":{\"max_msg_fds\":16}} é ✓");
    }

    @Test
    void lineBreaksAndTerminalEscapesCannotForgeLines() {
        String forged = "{}\n12:00:00.000 WARN  fake line\r\u001b[31mred\u001b[0m\t\\";
        String escaped = LogText.escape(forged);
        assertThat(escaped).doesNotContain("\n", "\r", "\u001b", "\t")
                .isEqualTo("{}\\n12:00:00.000 WARN  fake line\\r\\x1b[31mred\\x1b[0m\\t\\\\");
    }

    @Test
    void formatCharactersSeparatorsAndC1ControlsAreEscaped() {
        assertThat(LogText.escape("a\u202eb\u2028c\u0085d\u007fe\ud800f"))
                .isEqualTo("a\\u{202e}b\\u{2028}c\\x85d\\x7fe\\u{d800}f");
    }

    @Test
    void longTextIsCut() {
        String escaped = LogText.escape("x".repeat(1000), 10);
        assertThat(escaped).isEqualTo("xxxxxxxxxx...(990 more chars)");
        assertThat(LogText.escape(null)).isEqualTo("null");
    }
}
