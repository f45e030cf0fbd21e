package io.vfiouser.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.epoll.EpollIoHandler;
import io.vfiouser.client.ClientOptions;
import io.vfiouser.client.VfioUserClient;
import io.vfiouser.device.DeviceContext;
import io.vfiouser.device.ResetReason;
import io.vfiouser.device.VfioUserDevice;
import io.vfiouser.examples.nulldev.NullDevice;
import io.vfiouser.server.VfioUserServer;
import io.vfiouser.transport.testing.FdCount;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * Closing the server with a client attached: the client is disconnected, and close returns only after the device
 * has been reset and told {@code detached()}, so a device (or the resources behind it, which its owner frees right
 * after) never sees a framework callback once the server is closed.
 */
class ShutdownTest {

    static final class SlowResetDevice implements VfioUserDevice {
        final List<String> events = new CopyOnWriteArrayList<>();
        final CompletableFuture<Void> resetDone = new CompletableFuture<>();
        final CompletableFuture<Void> resetAsked = new CompletableFuture<>();

        @Override
        public void attached(DeviceContext context) {
            events.add("attached");
        }

        @Override
        public CompletableFuture<Void> regionRead(int region, long offset, ByteBuffer dst) {
            dst.position(dst.limit());
            return DONE;
        }

        @Override
        public CompletableFuture<Void> regionWrite(int region, long offset, ByteBuffer src) {
            src.position(src.limit());
            return DONE;
        }

        @Override
        public CompletableFuture<Void> reset(ResetReason reason) {
            events.add("reset " + reason);
            resetAsked.complete(null);
            return resetDone;
        }

        @Override
        public void detached() {
            events.add("detached");
        }
    }

    @Test
    void closeWaitsForTheResetAndDetachAfterTheLastClient() throws Exception {
        long fdsBefore = FdCount.now();
        Path dir = Files.createTempDirectory("vfio-user-shutdown");
        EventLoopGroup clientLoops = new MultiThreadIoEventLoopGroup(1, EpollIoHandler.newFactory());
        SlowResetDevice device = new SlowResetDevice();
        try {
            VfioUserServer server = VfioUserServer.builder().threads(1).build();
            server.serve(NullDevice.description("slow-reset"), device, dir.resolve("dev.sock"));
            VfioUserClient client = VfioUserClient.connect(clientLoops, dir.resolve("dev.sock"),
                    ClientOptions.DEFAULT);
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(Wire.TIMEOUT_S);
            while (!device.events.contains("attached") && System.nanoTime() < deadline) {
                Thread.onSpinWait();
            }

            CompletableFuture<Void> closing = CompletableFuture.runAsync(() -> {
                server.close();
                device.events.add("closed");
            });
            device.resetAsked.get(Wire.TIMEOUT_S, TimeUnit.SECONDS);
            assertThat(closing).as("close waits for the reset").isNotDone();
            device.resetDone.complete(null);
            closing.get(Wire.TIMEOUT_S, TimeUnit.SECONDS);

            assertThat(device.events)
                    .containsExactly("attached", "reset " + ResetReason.LOST_CONNECTION, "detached", "closed");
            client.closeFuture().get(Wire.TIMEOUT_S, TimeUnit.SECONDS);
            assertThat(Files.exists(dir.resolve("dev.sock"))).isFalse();
        } finally {
            clientLoops.shutdownGracefully(0, 2, TimeUnit.SECONDS).syncUninterruptibly();
            Files.deleteIfExists(dir.resolve("dev.sock"));
            Files.deleteIfExists(dir);
        }
        FdCount.awaitAtMost(fdsBefore);
    }
}
