package io.vfiouser.it.isolation;

import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.epoll.EpollIoHandler;
import io.vfiouser.client.ClientOptions;
import io.vfiouser.client.VfioUserClient;
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
 * Two devices in one server whose event-loop group has a single thread, so that both devices' connections share
 * one event loop: the configuration in which a misbehaving client of one device is most able to hurt the other.
 * The {@link #victim()} device takes the abuse; the {@link #bystander()} device is served to a {@link Bystander}
 * that checks every round trip. Closing the fixture checks that every fd the test opened is closed again and that
 * no buffer leaked.
 */
public final class IsolationFixture implements AutoCloseable {
    private final long fdsBefore;
    private final Path dir;
    private final EventLoopGroup clientLoops;
    private final VfioUserServer server;
    private final HostedDevice victim;
    private final HostedDevice bystander;
    private final NullDevice victimDevice = new NullDevice();
    private final List<AutoCloseable> toClose = new ArrayList<>();

    public IsolationFixture() throws Exception {
        this(ServerOptions.DEFAULT);
    }

    public IsolationFixture(ServerOptions options) throws Exception {
        RawClient.loadNio();
        fdsBefore = FdCount.now();
        dir = Files.createTempDirectory("vfio-user-isolation");
        clientLoops = new MultiThreadIoEventLoopGroup(1, EpollIoHandler.newFactory());
        server = VfioUserServer.builder().threads(1).options(options).build();
        victim = server.serve(NullDevice.description("victim"), victimDevice, dir.resolve("victim.sock"));
        bystander = server.serve(NullDevice.description("bystander"), new NullDevice(),
                dir.resolve("bystander.sock"));
    }

    public VfioUserServer server() {
        return server;
    }

    public HostedDevice victim() {
        return victim;
    }

    /** The victim's behaviour, a {@code null} device. */
    public NullDevice victimDevice() {
        return victimDevice;
    }

    public HostedDevice bystander() {
        return bystander;
    }

    public Path victimSocket() {
        return dir.resolve("victim.sock");
    }

    public Path bystanderSocket() {
        return dir.resolve("bystander.sock");
    }

    /** A negotiated client of the victim device on the fixture's client event loop, closed with the fixture. */
    public VfioUserClient victimClient() throws Exception {
        return victimClient(ClientOptions.DEFAULT);
    }

    public VfioUserClient victimClient(ClientOptions options) throws Exception {
        VfioUserClient client = VfioUserClient.connect(clientLoops, victimSocket(), options);
        toClose.add(client);
        return client;
    }

    /** A {@link RawClient} of the victim device that has negotiated VERSION, closed with the fixture. */
    public RawClient rawVictimClient() throws Exception {
        return closeLater(RawClient.negotiated(victimSocket()));
    }

    /** Starts checking the bystander device; the checker is stopped (not asserted) when the fixture closes. */
    public Bystander startBystander() {
        Bystander b = new Bystander(bystanderSocket(), bystander);
        toClose.add(b);
        b.start();
        return b;
    }

    /** Closes {@code resource} with the fixture, before the server, in the reverse order of registration. */
    public <T extends AutoCloseable> T closeLater(T resource) {
        toClose.add(resource);
        return resource;
    }

    /** Waits until the victim device has no client attached. */
    public void awaitVictimFree() throws InterruptedException {
        Conditions.await("the victim device has no client", () -> !victim.hasClient());
    }

    @Override
    public void close() throws Exception {
        Exception first = null;
        for (int i = toClose.size() - 1; i >= 0; i--) {
            try {
                toClose.get(i).close();
            } catch (Exception e) {
                if (first == null) {
                    first = e;
                }
            }
        }
        server.close();
        clientLoops.shutdownGracefully(0, 1, TimeUnit.SECONDS).sync();
        try (var files = Files.list(dir)) {
            for (Path p : files.toList()) {
                Files.deleteIfExists(p);
            }
        }
        Files.deleteIfExists(dir);
        if (first != null) {
            throw first;
        }
        FdCount.awaitAtMost(fdsBefore);
        LeakDetection.assertNoLeaks();
    }
}
