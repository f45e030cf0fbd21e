package io.vfiouser.transport.testing;

import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.PooledByteBufAllocator;
import org.junit.jupiter.api.Test;

/** The leak check that runs after every test must really fail when a buffer leaks. */
class LeakDetectionTest {

    @Test
    void aLeakedBufferFailsTheCheck() {
        leak();
        assertThatThrownBy(LeakDetection::assertNoLeaks).isInstanceOf(AssertionError.class)
                .hasMessageContaining("LEAK");
        LeakDetection.assertNoLeaks();
    }

    private static void leak() {
        ByteBuf leaked = PooledByteBufAllocator.DEFAULT.directBuffer(64);
        leaked.writeLong(42);
    }
}
