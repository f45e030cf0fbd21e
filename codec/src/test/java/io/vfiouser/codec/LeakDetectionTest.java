package io.vfiouser.codec;

import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.netty.channel.embedded.EmbeddedChannel;
import io.vfiouser.transport.testing.LeakDetection;
import org.junit.jupiter.api.Test;

/** The leak check that runs after every test really fails on a leak. */
class LeakDetectionTest {

    @Test
    void aLeakedFrameFailsTheCheck() {
        leakADecodedMessage();
        assertThatThrownBy(LeakDetection::assertNoLeaks)
                .isInstanceOf(AssertionError.class)
                .hasMessageContaining("LEAK");
        LeakDetection.assertNoLeaks();
    }

    private static void leakADecodedMessage() {
        EmbeddedChannel channel = CodecChannels.decoding(DmaLayout.SPEC);
        channel.writeInbound(Goldens.buf("""
                1100 0900 24000000 01000000 00000000
                0000000000000000 07000000 04000000 86803412
                """));
        channel.readInbound();
        channel.close();
    }
}
