package io.vfiouser.it;

import static io.vfiouser.it.Wire.errno;
import static org.assertj.core.api.Assertions.assertThat;

import io.netty.buffer.Unpooled;
import io.vfiouser.client.GuestMemory;
import io.vfiouser.client.VfioUserClient;
import io.vfiouser.codec.VfioUserCommand;
import io.vfiouser.codec.payload.DmaMapRequest;
import io.vfiouser.codec.payload.RegionAccess;
import io.vfiouser.device.Access;
import io.vfiouser.device.DeviceContext;
import io.vfiouser.device.DmaException;
import io.vfiouser.device.VfioUserDevice;
import io.vfiouser.examples.nulldev.NullDevice;
import io.vfiouser.server.ServerOptions;
import io.vfiouser.server.dma.SegmentMode;
import io.vfiouser.transport.FdSet;
import io.vfiouser.transport.linux.Linux;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;

/**
 * How a device reaches guest memory shared with an fd: a private copy for memory the client could shrink (the safe
 * default), the shared pages themselves for memory sealed against shrinking, or when the server is told to trust its
 * clients ({@link ServerOptions#withDmaSegments}). Either way the device's writes land in guest memory.
 */
class DmaSegmentModeTest {
    private static final long RAM = 0x1_0000_0000L;
    private static final long RAM_SIZE = 1 << 20;

    /** A write of a guest address to BAR0 offset 0 stores a marker there through withSegment; offset 8 reads
     * whether the segment the device got was the shared memory (1) or a copy (0). */
    static final class SegmentProbe implements VfioUserDevice {
        private volatile DeviceContext context;
        private volatile long shared = -1;

        @Override
        public void attached(DeviceContext context) {
            this.context = context;
        }

        @Override
        public CompletableFuture<Void> regionWrite(int region, long offset, ByteBuffer src) {
            long address = src.getLong(src.position());
            src.position(src.limit());
            try {
                shared = context.dma().withSegment(address, 8, Access.WRITE, (MemorySegment s) -> {
                    s.set(ValueLayout.JAVA_LONG_UNALIGNED, 0, 0x5e6e_0000_0000_0001L);
                    return s.isNative() ? 1L : 0L;
                });
            } catch (DmaException e) {
                return CompletableFuture.failedFuture(e);
            }
            return DONE;
        }

        @Override
        public CompletableFuture<Void> regionRead(int region, long offset, ByteBuffer dst) {
            dst.putLong(dst.position(), shared);
            dst.position(dst.limit());
            return DONE;
        }
    }

    private static long probe(ServerOptions options, boolean seal) throws Exception {
        try (ServerFixture fixture = new ServerFixture(NullDevice.description("probe"), new SegmentProbe(), options);
             GuestMemory ram = GuestMemory.allocate(RAM, RAM_SIZE)) {
            if (seal) {
                Linux.addSeals(ram.fd(), Linux.F_SEAL_SHRINK);
            }
            VfioUserClient client = fixture.client();
            assertThat(errno(client, VfioUserCommand.DMA_MAP, DmaMapRequest.of(3, 0, RAM, RAM_SIZE),
                    FdSet.of(ram.dupFd()))).isZero();
            assertThat(errno(client, VfioUserCommand.REGION_WRITE,
                    RegionAccess.inRegion(0).atOffset(0)
                            .data(Unpooled.copyLong(Long.reverseBytes(RAM + 4096))))).isZero();
            assertThat(ram.segment().get(ValueLayout.JAVA_LONG_UNALIGNED, 4096))
                    .as("the device's write reached guest memory").isEqualTo(0x5e6e_0000_0000_0001L);
            long[] shared = new long[1];
            Wire.ok(client, VfioUserCommand.REGION_READ, RegionAccess.inRegion(0).atOffset(8).count(8),
                    r -> shared[0] = r.payload(RegionAccess.class).data().getLongLE(0));
            return shared[0];
        }
    }

    @Test
    void unsealedMemoryIsReachedThroughACopyByDefault() throws Exception {
        assertThat(probe(ServerOptions.DEFAULT, false)).isZero();
    }

    @Test
    void memorySealedAgainstShrinkingIsShared() throws Exception {
        assertThat(probe(ServerOptions.DEFAULT, true)).isOne();
    }

    @Test
    void aServerThatTrustsItsClientsSharesUnsealedMemory() throws Exception {
        assertThat(probe(ServerOptions.DEFAULT.withDmaSegments(SegmentMode.DIRECT), false)).isOne();
    }
}
