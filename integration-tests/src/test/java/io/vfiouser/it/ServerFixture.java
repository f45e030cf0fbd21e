package io.vfiouser.it;

import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.epoll.EpollIoHandler;
import io.vfiouser.client.ClientOptions;
import io.vfiouser.client.VfioUserClient;
import io.vfiouser.device.DeviceDescription;
import io.vfiouser.device.VfioUserDevice;
import io.vfiouser.examples.nulldev.NullDevice;
import io.vfiouser.server.HostedDevice;
import io.vfiouser.server.ServerOptions;
import io.vfiouser.server.VfioUserServer;
import io.vfiouser.transport.testing.FdCount;
import io.vfiouser.transport.testing.LeakDetection;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A server with one device on a socket in a fresh directory, clients that connect to it, and the checks every
 * test ends with: every client closed, no fd of the process left open that was not open before, no leaked buffer.
 * A device behaviour that is {@link AutoCloseable} (one that holds files or threads) is closed after the server.
 */
final class ServerFixture implements AutoCloseable {

    private final long fdsBefore;
    private final Path dir;
    private final EventLoopGroup clientLoops;
    private final VfioUserServer server;
    private final HostedDevice device;
    private final VfioUserDevice behaviour;
    private final List<VfioUserClient> clients = new ArrayList<>();

    /** A server with the example {@code null} device. */
    ServerFixture() throws Exception {
        this(NullDevice.description("test-null"), new NullDevice());
    }

    /** A server with the example {@code null} device and the given options. */
    ServerFixture(ServerOptions options) throws Exception {
        this(NullDevice.description("test-null"), new NullDevice(), options);
    }

    ServerFixture(DeviceDescription description, VfioUserDevice behaviour) throws Exception {
        this(description, behaviour, ServerOptions.DEFAULT);
    }

    ServerFixture(DeviceDescription description, VfioUserDevice behaviour, ServerOptions options)
            throws Exception {
        fdsBefore = FdCount.now();
        dir = Files.createTempDirectory("vfio-user-it");
        clientLoops = new MultiThreadIoEventLoopGroup(1, EpollIoHandler.newFactory());
        server = VfioUserServer.builder().threads(2).options(options).build();
        this.behaviour = behaviour;
        device = server.serve(description, behaviour, dir.resolve("dev.sock"));
    }

    /** The behaviour of the device being served. */
    @SuppressWarnings("unchecked")
    <T extends VfioUserDevice> T behaviour() {
        return (T) behaviour;
    }

    Path socket() {
        return dir.resolve("dev.sock");
    }

    HostedDevice device() {
        return device;
    }

    VfioUserClient client() throws Exception {
        return client(ClientOptions.DEFAULT);
    }

    VfioUserClient client(ClientOptions options) throws Exception {
        VfioUserClient client = VfioUserClient.connect(clientLoops, socket(), options);
        clients.add(client);
        return client;
    }

    /** Waits until the device has no client attached, as after a disconnect the server notices. */
    void awaitNoClient() throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (device.hasClient()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("the device still has a client attached");
            }
            Thread.sleep(2);
        }
    }

    @Override
    public void close() throws Exception {
        closeNested();
        FdCount.awaitAtMost(fdsBefore);
        LeakDetection.assertNoLeaks();
    }

    /**
     * Closes everything without the fd and leak checks, for a fixture opened inside another one (a second server):
     * its baseline includes what the outer fixture opened after it, so the outer fixture's close checks for both.
     */
    void closeNested() throws Exception {
        for (VfioUserClient c : clients) {
            c.close();
        }
        server.close();
        if (behaviour instanceof AutoCloseable closeable) {
            closeable.close();
        }
        clientLoops.shutdownGracefully(0, 1, TimeUnit.SECONDS).sync();
        Files.deleteIfExists(socket());
        Files.deleteIfExists(dir);
    }
}
