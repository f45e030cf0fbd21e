package io.vfiouser.server.launcher;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.exc.MismatchedInputException;
import org.junit.jupiter.api.Test;

/** Device settings take integers in decimal, 0x hex and with size suffixes, from a file and from the command line. */
class SettingsNumbersTest {
    /** A plugin's settings record with every integer type. */
    public record Settings(int id, long size, Short queues, byte flags, Long limit) {
    }

    private static Settings bind(String json) throws Exception {
        JsonNode tree = LauncherConfig.settingsMapper().readTree(json);
        return LauncherConfig.settingsMapper().treeToValue(tree, Settings.class);
    }

    @Test
    void hexSuffixesAndSeparatorsInStrings() throws Exception {
        assertThat(bind("""
                {"id": "0x5a", "size": "64M", "queues": "0x10", "flags": "-3", "limit": "1_000_000"}"""))
                .isEqualTo(new Settings(0x5a, 64L << 20, (short) 16, (byte) -3, 1_000_000L));
        assertThat(bind("""
                {"id": "4K", "size": "1GiB", "flags": "0x7f"}"""))
                .isEqualTo(new Settings(4096, 1L << 30, null, (byte) 0x7f, null));
    }

    @Test
    void jsonNumbersStillBind() throws Exception {
        assertThat(bind("""
                {"id": 7, "size": 8, "queues": 2, "flags": 1, "limit": 9}"""))
                .isEqualTo(new Settings(7, 8, (short) 2, (byte) 1, 9L));
    }

    @Test
    void theCommandLineSingleDeviceTakesHex() throws Exception {
        LauncherArguments a = LauncherArguments.parse(new String[] {"mydev", "--socket-path=/tmp/x.sock",
            "--id=0x5a", "--size=2M", "--flags=0"});
        JsonNode settings = a.singleDevice().devices().getFirst().settings();
        assertThat(LauncherConfig.settingsMapper().treeToValue(settings, Settings.class))
                .isEqualTo(new Settings(0x5a, 2L << 20, null, (byte) 0, null));
    }

    @Test
    void whatDoesNotFitOrParseIsAnErrorNamingTheSetting() {
        assertThatThrownBy(() -> bind("""
                {"id": "0x100000000", "size": 1, "flags": 0}"""))
                .isInstanceOf(MismatchedInputException.class).hasMessageContaining("setting id")
                .hasMessageContaining("outside");
        assertThatThrownBy(() -> bind("""
                {"id": 1, "size": 1, "flags": "0x80"}"""))
                .hasMessageContaining("setting flags");
        assertThatThrownBy(() -> bind("""
                {"id": "ninety", "size": 1, "flags": 0}"""))
                .hasMessageContaining("setting id").hasMessageContaining("0x hex");
        assertThatThrownBy(() -> bind("""
                {"id": 1.5, "size": 1, "flags": 0}"""))
                .hasMessageContaining("setting id needs a number");
        assertThatThrownBy(() -> bind("""
                {"size": 1, "flags": 0}"""))
                .isInstanceOf(MismatchedInputException.class).hasMessageContaining("a number is required");
    }
}
