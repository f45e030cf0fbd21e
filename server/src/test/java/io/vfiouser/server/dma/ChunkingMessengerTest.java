package io.vfiouser.server.dma;

import static io.vfiouser.server.dma.DmaTesting.await;
import static org.assertj.core.api.Assertions.assertThat;

import io.vfiouser.codec.VfioUserProtocolException;
import io.vfiouser.device.Access;
import io.vfiouser.server.dma.FakeMessenger.Call;
import io.vfiouser.transport.linux.Errno;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

class ChunkingMessengerTest {
    private static final long BASE = 0x7000_0000L;

    @Test
    void splitsAReadIntoChunksOfTheMaxTransferSize() throws Exception {
        FakeMessenger client = new FakeMessenger(BASE, 64 * 1024, 4096);
        ChunkingMessenger chunking = new ChunkingMessenger(client);
        ByteBuffer dst = ByteBuffer.allocate(10_000 + 20);
        dst.position(10).limit(10 + 10_000);

        await(chunking.read(BASE + 100, dst));

        assertThat(client.calls()).containsExactly(new Call(Access.READ, BASE + 100, 4096),
                new Call(Access.READ, BASE + 100 + 4096, 4096),
                new Call(Access.READ, BASE + 100 + 8192, 10_000 - 8192));
        assertThat(dst.position()).isEqualTo(10 + 10_000);
        assertThat(Arrays.copyOfRange(dst.array(), 10, 10 + 10_000))
                .isEqualTo(Arrays.copyOfRange(client.memory, 100, 100 + 10_000));
        assertThat(client.violations()).isEmpty();
    }

    @Test
    void splitsAWriteIntoChunks() throws Exception {
        FakeMessenger client = new FakeMessenger(BASE, 64 * 1024, 1000);
        ChunkingMessenger chunking = new ChunkingMessenger(client);
        byte[] data = new byte[3000];
        Arrays.fill(data, (byte) 0x5A);
        ByteBuffer src = ByteBuffer.allocateDirect(3000).put(data).flip();

        await(chunking.write(BASE, src));

        assertThat(client.calls()).containsExactly(new Call(Access.WRITE, BASE, 1000),
                new Call(Access.WRITE, BASE + 1000, 1000), new Call(Access.WRITE, BASE + 2000, 1000));
        assertThat(src.remaining()).isZero();
        assertThat(Arrays.copyOfRange(client.memory, 0, 3000)).isEqualTo(data);
    }

    @Test
    void aSmallTransferIsOneMessageAndAnEmptyOneIsNone() throws Exception {
        FakeMessenger client = new FakeMessenger(BASE, 4096, 1 << 20);
        ChunkingMessenger chunking = new ChunkingMessenger(client);
        await(chunking.read(BASE + 8, ByteBuffer.allocate(16)));
        await(chunking.write(BASE, ByteBuffer.allocate(0)));
        assertThat(client.calls()).containsExactly(new Call(Access.READ, BASE + 8, 16));
        assertThat(chunking.maxTransferSize()).isEqualTo(1 << 20);
    }

    @Test
    void readsTheMaxTransferSizeAfreshForEveryTransfer() throws Exception {
        FakeMessenger client = new FakeMessenger(BASE, 4096, 1 << 20);
        ChunkingMessenger chunking = new ChunkingMessenger(client);
        await(chunking.read(BASE, ByteBuffer.allocate(2048)));
        client.maxTransferSize = 1024; // negotiated later
        await(chunking.read(BASE, ByteBuffer.allocate(2048)));
        assertThat(client.calls()).hasSize(3);
        assertThat(client.violations()).isEmpty();
    }

    @Test
    void aNonPositiveMaxTransferSizeFails() {
        FakeMessenger client = new FakeMessenger(BASE, 4096, 0);
        CompletableFuture<Void> f = new ChunkingMessenger(client).read(BASE, ByteBuffer.allocate(10));
        assertThat(f).isCompletedExceptionally();
        assertThat(client.calls()).isEmpty();
    }

    @Test
    void sendsTheNextChunkOnlyWhenThePreviousCompleted() throws Exception {
        FakeMessenger client = new FakeMessenger(BASE, 4096, 1024);
        client.manual = true;
        ByteBuffer dst = ByteBuffer.allocate(3000);
        CompletableFuture<Void> f = new ChunkingMessenger(client).read(BASE, dst);

        for (int sent = 1; sent <= 3; sent++) {
            assertThat(client.calls()).hasSize(sent);
            assertThat(f).isNotDone();
            assertThat(dst.position()).isZero();
            assertThat(client.completeNext()).isTrue();
        }
        assertThat(f).isCompleted();
        assertThat(dst.position()).isEqualTo(3000);
        assertThat(Arrays.copyOf(dst.array(), 3000)).isEqualTo(Arrays.copyOf(client.memory, 3000));
    }

    @Test
    void completionsOnAnotherThreadWork() throws Exception {
        FakeMessenger client = new FakeMessenger(BASE, 8192, 100);
        client.manual = true;
        ByteBuffer dst = ByteBuffer.allocate(8192);
        CompletableFuture<Void> f = new ChunkingMessenger(client).read(BASE, dst);
        Thread replier = Thread.ofPlatform().start(() -> {
            while (!f.isDone()) {
                if (!client.completeNext()) {
                    Thread.onSpinWait();
                }
            }
        });
        await(f);
        replier.join();
        assertThat(client.calls()).hasSize(82);
        assertThat(dst.array()).isEqualTo(client.memory);
    }

    @Test
    void theFirstFailureEndsTheTransfer() throws Exception {
        FakeMessenger client = new FakeMessenger(BASE, 8192, 1024);
        VfioUserProtocolException refused = new VfioUserProtocolException(Errno.EFAULT, "no");
        client.failAt(1, refused);
        ByteBuffer dst = ByteBuffer.allocate(4096);
        CompletableFuture<Void> f = new ChunkingMessenger(client).read(BASE, dst);

        assertThat(f).failsWithin(5, TimeUnit.SECONDS).withThrowableOfType(ExecutionException.class)
                .withCause(refused);
        assertThat(client.calls()).hasSize(2);
        assertThat(dst.position()).isZero();
    }

    @Test
    void aMessengerThrowingFailsTheFuture() {
        FakeMessenger client = new FakeMessenger(BASE, 8192, 1024);
        IllegalStateException broken = new IllegalStateException("channel gone");
        client.throwAt(2, broken);
        CompletableFuture<Void> f = new ChunkingMessenger(client).write(BASE, ByteBuffer.allocate(4096));
        assertThat(f).failsWithin(5, TimeUnit.SECONDS).withThrowableOfType(ExecutionException.class)
                .withCause(broken);
        assertThat(client.calls()).hasSize(3);
    }

    @Test
    void manyChunksCompletingAtOnceDoNotGrowTheStack() throws Exception {
        FakeMessenger client = new FakeMessenger(BASE, 300_000, 1);
        ByteBuffer dst = ByteBuffer.allocate(300_000);
        await(new ChunkingMessenger(client).read(BASE, dst));
        assertThat(client.calls()).hasSize(300_000);
        assertThat(dst.array()).isEqualTo(client.memory);
    }

    @Test
    void ofDoesNotWrapTwice() {
        ChunkingMessenger once = ChunkingMessenger.of(new FakeMessenger(BASE, 16, 16));
        assertThat(ChunkingMessenger.of(once)).isSameAs(once);
    }
}
