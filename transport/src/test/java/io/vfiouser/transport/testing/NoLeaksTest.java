package io.vfiouser.transport.testing;

import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.PooledByteBufAllocator;
import org.junit.jupiter.api.Test;

/** The leak check must really fail when a buffer leaks, or no test using it proves anything. */
class NoLeaksTest {

    @Test
    void aLeakedBufferFailsTheCheck() throws Exception {
        NoLeaks.assertNoLeaks("warm-up");
        leak();
        assertThatThrownBy(() -> NoLeaks.assertNoLeaks("this test")).isInstanceOf(AssertionError.class)
                .hasMessageContaining("LEAK");
        NoLeaks.assertNoLeaks("after the leak was reported");
    }

    private static void leak() {
        ByteBuf leaked = PooledByteBufAllocator.DEFAULT.directBuffer(64);
        leaked.writeLong(42);
    }
}
