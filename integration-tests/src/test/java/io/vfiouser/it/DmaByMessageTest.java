package io.vfiouser.it;

import static io.vfiouser.it.Wire.errno;
import static org.assertj.core.api.Assertions.assertThat;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.vfiouser.client.ClientOptions;
import io.vfiouser.client.GuestMemory;
import io.vfiouser.client.VfioUserClient;
import io.vfiouser.codec.DmaLayout;
import io.vfiouser.codec.VfioUserCommand;
import io.vfiouser.codec.payload.DmaMapRequest;
import io.vfiouser.codec.payload.RegionAccess;
import io.vfiouser.device.DeviceContext;
import io.vfiouser.device.DeviceDescription;
import io.vfiouser.device.DmaException;
import io.vfiouser.device.Region;
import io.vfiouser.device.VfioUserDevice;
import io.vfiouser.device.pci.PciIdentity;
import io.vfiouser.server.ServerOptions;
import io.vfiouser.transport.FdSet;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.Test;

/**
 * A device that reads and writes guest memory by message where the client shared an fd, as libvfio-user's sample
 * server does ({@code vfu_sgl_write} a pattern, {@code vfu_sgl_read} it back, compare), through a real socket: the
 * client maps memfd-backed memory with DMA_MAP and answers the server's DMA_READ/DMA_WRITE from that memory, as
 * libvfio-user's sample client does. In both DMA layouts.
 */
class DmaByMessageTest {
    private static final long RAM = 0x2000_0000L;
    private static final int RAM_SIZE = 1 << 20;
    /** More than one message's worth for the client below (4 KiB per message): the server cuts it. */
    private static final int TRANSFER = 3 * 4096 + 100;

    private ServerFixture fixture;

    @AfterEach
    void stop() throws Exception {
        if (fixture != null) {
            fixture.close();
        }
    }

    /**
     * The sample device: a write of a guest address to BAR0 starts one round, which writes {@link #TRANSFER} bytes
     * of a pattern there by message, reads them back by message and compares. The register write is answered at
     * once (a region reply never waits for the client's DMA replies, digest 1.6); the round's outcome is a future.
     */
    static final class SampleDmaDevice implements VfioUserDevice {
        private volatile DeviceContext context;
        private volatile CompletableFuture<byte[]> round = new CompletableFuture<>();

        static DeviceDescription description() {
            return DeviceDescription.builder("sample-dma", PciIdentity.of(0x4e58, 0x0001, 0xff0000))
                    .region(Region.bar(0, 4096).build())
                    .build();
        }

        /** The next round's outcome: the bytes read back. */
        CompletableFuture<byte[]> nextRound() {
            return round;
        }

        static byte[] pattern(long seed) {
            byte[] p = new byte[TRANSFER];
            for (int i = 0; i < p.length; i++) {
                p[i] = (byte) (seed + i * 31);
            }
            return p;
        }

        @Override
        public void attached(DeviceContext context) {
            this.context = context;
        }

        @Override
        public CompletableFuture<Void> regionRead(int region, long offset, ByteBuffer dst) {
            return DONE;
        }

        @Override
        public CompletableFuture<Void> regionWrite(int region, long offset, ByteBuffer src) {
            long address = src.getLong(src.position());
            CompletableFuture<byte[]> done = round;
            round = new CompletableFuture<>();
            var dma = context.dmaByMessage();
            ByteBuffer back = ByteBuffer.allocate(TRANSFER);
            dma.write(address, ByteBuffer.wrap(pattern(address)))
                    .thenCompose(ok -> dma.read(address, back))
                    .whenComplete((ok, failure) -> {
                        if (failure != null) {
                            done.completeExceptionally(failure);
                        } else {
                            done.complete(back.array());
                        }
                    });
            return DONE;
        }
    }

    private static void start(VfioUserClient client, long address) throws Exception {
        ByteBuf value = Unpooled.directBuffer(8).writeLongLE(address);
        assertThat(errno(client, VfioUserCommand.REGION_WRITE, RegionAccess.inRegion(0).atOffset(0).data(value))).isZero();
    }

    /**
     * In both layouts, on the main socket and on a twin socket: with a twin, every request the server makes comes
     * on the twin, none on the main socket.
     */
    @ParameterizedTest
    @CsvSource({"QEMU, false", "SPEC, false", "QEMU, true", "SPEC, true"})
    void theDeviceReadsAndWritesSharedMemoryByMessageAndTheClientAnswers(DmaLayout layout, boolean twin)
            throws Exception {
        SampleDmaDevice device = new SampleDmaDevice();
        fixture = new ServerFixture(SampleDmaDevice.description(), device,
                ServerOptions.DEFAULT.withDmaLayout(layout));
        VfioUserClient client = fixture.client(ClientOptions.DEFAULT.withDmaLayout(layout)
                .withMaxDataTransferSize(4096).withTwinSocket(twin));
        assertThat(client.twinChannel() != null).as("twin socket negotiated").isEqualTo(twin);
        assertThat(client.serverCapabilities().twinSocket() != null).isEqualTo(twin);
        try (GuestMemory ram = GuestMemory.allocate(RAM, RAM_SIZE)) {
            client.serveDma(ram);
            assertThat(errno(client, VfioUserCommand.DMA_MAP, DmaMapRequest.of(3, 0, RAM, RAM_SIZE),
                    FdSet.of(ram.dupFd()))).isZero();
            long at = RAM + 0x1234;
            CompletableFuture<byte[]> round = device.nextRound();
            start(client, at);
            byte[] readBack = round.get(Wire.TIMEOUT_S, TimeUnit.SECONDS);
            byte[] expected = SampleDmaDevice.pattern(at);
            assertThat(readBack).isEqualTo(expected);
            MemorySegment guest = ram.at(at, TRANSFER);
            assertThat(guest.toArray(ValueLayout.JAVA_BYTE)).as("the client wrote its memory").isEqualTo(expected);
            assertThat(client.serverRequestsAnswered()).as("4 DMA_WRITEs and 4 DMA_READs of up to 4 KiB")
                    .isEqualTo(8);

            // Up to the mapping's last byte.
            CompletableFuture<byte[]> second = device.nextRound();
            start(client, RAM + RAM_SIZE - TRANSFER);
            assertThat(second.get(Wire.TIMEOUT_S, TimeUnit.SECONDS))
                    .isEqualTo(SampleDmaDevice.pattern(RAM + RAM_SIZE - TRANSFER));
            assertThat(client.serverRequestsAnswered()).isEqualTo(16);

            // Past the end of the mapping nothing is sent: the round fails with EFAULT.
            CompletableFuture<byte[]> outside = device.nextRound();
            start(client, RAM + RAM_SIZE - 16);
            assertThat(errnoOf(outside)).isEqualTo(io.vfiouser.transport.linux.Errno.EFAULT);
            assertThat(client.serverRequestsAnswered()).isEqualTo(16);
        }
    }

    static int errnoOf(CompletableFuture<?> f) throws InterruptedException {
        try {
            f.get(Wire.TIMEOUT_S, TimeUnit.SECONDS);
        } catch (java.util.concurrent.ExecutionException e) {
            Throwable t = e.getCause();
            while (t instanceof CompletionException && t.getCause() != null) {
                t = t.getCause();
            }
            assertThat(t).isInstanceOf(DmaException.class);
            return ((DmaException) t).errno();
        } catch (java.util.concurrent.TimeoutException e) {
            throw new AssertionError("the round did not end", e);
        }
        throw new AssertionError("the round succeeded");
    }

    /**
     * The twin is bound to its connection: a client that closes its end of the twin loses the connection (a
     * request waiting there would never be answered), the round in flight fails, and the device is free for the
     * next client; the fixture's close then finds every fd of both sockets closed.
     */
    @Test
    void closingTheTwinEndsTheConnection() throws Exception {
        SampleDmaDevice device = new SampleDmaDevice();
        fixture = new ServerFixture(SampleDmaDevice.description(), device, ServerOptions.DEFAULT);
        VfioUserClient client = fixture.client(ClientOptions.DEFAULT.withDmaLayout(DmaLayout.QEMU)
                .withTwinSocket(true));
        try (GuestMemory ram = GuestMemory.allocate(RAM, RAM_SIZE)) {
            client.serveDma(ram);
            assertThat(errno(client, VfioUserCommand.DMA_MAP, DmaMapRequest.of(3, 0, RAM, RAM_SIZE),
                    FdSet.of(ram.dupFd()))).isZero();
            client.holdServerRequests(true); // the server's first request stays unanswered
            CompletableFuture<byte[]> round = device.nextRound();
            start(client, RAM);
            // A reply on the main socket to the request on the twin answers nothing: an unsolicited reply, EINVAL.
            int id = 0; // the server's first request
            io.vfiouser.codec.VfioUserMessage refused = client.sendRaw(Wire.raw(id,
                    VfioUserCommand.DMA_WRITE.code(), io.vfiouser.codec.VfioUserHeader.REPLY), FdSet.EMPTY, id)
                    .get(Wire.TIMEOUT_S, TimeUnit.SECONDS);
            try {
                assertThat(refused.header().isError()).isTrue();
                assertThat(refused.header().error()).isEqualTo(io.vfiouser.transport.linux.Errno.EINVAL);
            } finally {
                refused.release();
            }
            assertThat(round).isNotDone();
            client.twinChannel().close().sync();
            client.closeFuture().get(Wire.TIMEOUT_S, TimeUnit.SECONDS);
            assertThat(errnoOf(round)).isNotZero();
            fixture.awaitNoClient();
            VfioUserClient next = fixture.client(ClientOptions.DEFAULT.withTwinSocket(true));
            assertThat(next.twinChannel()).isNotNull();
        }
    }

    /**
     * A client that asked for a twin socket and whose requests never ask the server for anything still talks on
     * the main socket as usual; the client's own commands never come back on the twin.
     */
    @Test
    void theClientsCommandsStayOnTheMainSocket() throws Exception {
        SampleDmaDevice device = new SampleDmaDevice();
        fixture = new ServerFixture(SampleDmaDevice.description(), device, ServerOptions.DEFAULT);
        VfioUserClient client = fixture.client(ClientOptions.DEFAULT.withTwinSocket(true));
        for (int i = 0; i < 50; i++) {
            assertThat(Wire.errno(client, VfioUserCommand.REGION_READ, RegionAccess.inRegion(0).atOffset(0).count(8))).isZero();
        }
        assertThat(client.serverRequestsAnswered()).isZero();
        assertThat(client.unexpectedMessages()).isEmpty();
    }
}
