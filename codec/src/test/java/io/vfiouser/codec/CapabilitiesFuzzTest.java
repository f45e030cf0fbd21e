package io.vfiouser.codec;

import static org.assertj.core.api.Assertions.assertThat;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import io.vfiouser.transport.linux.Errno;
import java.nio.charset.StandardCharsets;

/**
 * Fuzzes {@link VfioUserCapabilities#parse(String, int)} with any VERSION JSON, decoded from bytes as
 * {@code VersionPayload} does. It must give capabilities or a {@link VfioUserProtocolException} with
 * {@code EINVAL}, nothing else; capabilities written by {@link VfioUserCapabilities#toJson()} must parse back to
 * equal capabilities, and write the same JSON again.
 *
 * <p>Input: the JSON's UTF-8 bytes, then (read from the end) a byte for the default {@code max_msg_fds} (0-16).
 */
class CapabilitiesFuzzTest {

    @FuzzTest(maxDuration = "10m")
    void json(FuzzedDataProvider data) {
        int defaultMaxMsgFds = data.consumeInt(0, 16);
        String json = new String(data.consumeRemainingAsBytes(), StandardCharsets.UTF_8);
        VfioUserCapabilities capabilities;
        try {
            capabilities = VfioUserCapabilities.parse(json, defaultMaxMsgFds);
        } catch (VfioUserProtocolException e) {
            assertThat(e.errno()).isEqualTo(Errno.EINVAL);
            return;
        }
        String written = capabilities.toJson();
        VfioUserCapabilities again = VfioUserCapabilities.parse(written, defaultMaxMsgFds);
        assertThat(again).as("%s written as %s and parsed", capabilities, written).isEqualTo(capabilities);
        assertThat(again.toJson()).isEqualTo(written);
    }
}
