package io.vfiouser.server;

import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.unix.DomainSocketAddress;
import io.vfiouser.device.DeviceDescription;
import io.vfiouser.device.VfioUserDevice;
import io.vfiouser.server.device.DeviceRuntime;
import io.vfiouser.transport.linux.ErrnoException;
import io.vfiouser.transport.UnixServerChannel;
import java.nio.file.Path;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

/**
 * Hosts vfio-user devices, each on its own socket (a path it binds, or a listening fd it was handed), all on one
 * shared event-loop group. One client at a time talks to a device; a connection that arrives meanwhile waits (see
 * {@link HostedDevice}) and attaches when the client before it has left and the device has been reset.
 *
 * <pre>{@code
 * try (VfioUserServer server = VfioUserServer.builder().build()) {
 *     HostedDevice dev = server.serve(description, behaviour, Path.of("/run/dev.sock"));
 *     dev.closeFuture().join();
 * }
 * }</pre>
 */
public final class VfioUserServer implements AutoCloseable {
    private static final Logger LOG = LogManager.getLogger(VfioUserServer.class);

    private final EventLoopGroup group;
    private final boolean ownsGroup;
    private final ServerOptions options;
    private final List<HostedDevice> devices = new CopyOnWriteArrayList<>();
    private volatile boolean closed;

    private VfioUserServer(Builder builder) {
        this.ownsGroup = builder.group == null;
        this.group = ownsGroup
                ? new MultiThreadIoEventLoopGroup(builder.threads, EpollIoHandler.newFactory())
                : builder.group;
        this.options = builder.options;
        long processFds = ProcessFds.softLimit();
        int clientFds = options.limits().clientFdLimit(processFds);
        if (clientFds < options.limits().maxClientFds()) {
            LOG.info("a client may hold {} fds, a {}th of the process's limit of {}, not the {} configured",
                    clientFds, ConnectionLimits.PROCESS_FD_SHARE, processFds, options.limits().maxClientFds());
        }
    }

    public static Builder builder() {
        return new Builder();
    }

    public ServerOptions options() {
        return options;
    }

    /**
     * Binds {@code socketPath} (mode {@link ServerOptions#socketFileMode()}) and serves the device described by
     * {@code description}, behaving as {@code device}, on it.
     */
    public HostedDevice serve(DeviceDescription description, VfioUserDevice device, Path socketPath)
            throws InterruptedException, ErrnoException {
        return serve(description, device, socketPath, SocketPolicy.DEFAULT);
    }

    /**
     * Like {@link #serve(DeviceDescription, VfioUserDevice, Path)}, with the socket file's mode and group and the
     * accepted peer uids given by {@code policy}. The socket file appears at {@code socketPath} only once it is
     * listening, with its group and mode (see {@link UnixServerChannel}), so a client that connects the moment it
     * appears is served. With a group, the file is bound accessible to its owner only, then given its group, then
     * its full mode, so no one else can connect in between, even under its temporary name.
     */
    public HostedDevice serve(DeviceDescription description, VfioUserDevice device, Path socketPath,
                              SocketPolicy policy) throws InterruptedException, ErrnoException {
        String path = socketPath.toString();
        int mode = policy.fileMode() >= 0 ? policy.fileMode() : options.socketFileMode();
        int bindMode = policy.group().isPresent() ? mode & 0700 : mode;
        UnixServerChannel.FilePreparation group = policy.group().isEmpty() ? file -> { } : file -> {
            try {
                SocketFiles.setGroupAndMode(file, policy.group().get(), mode);
            } catch (java.io.IOException | RuntimeException e) {
                String why = e instanceof java.nio.file.attribute.UserPrincipalNotFoundException
                        ? "no such group" : e.toString();
                throw new IllegalArgumentException("cannot give " + path + " group " + policy.group().get()
                        + ": " + why, e);
            }
        };
        return start(description, device, path, policy, () -> new UnixServerChannel(bindMode, group),
                bootstrap -> bootstrap.bind(new DomainSocketAddress(path)));
    }

    /**
     * Serves {@code device} on a socket that is already bound and listening, such as an fd handed over with
     * {@code --fd=N}. The server owns the fd from here on.
     */
    public HostedDevice serve(DeviceDescription description, VfioUserDevice device, int listeningFd)
            throws InterruptedException, ErrnoException {
        return serve(description, device, listeningFd, SocketPolicy.DEFAULT);
    }

    /**
     * Like {@link #serve(DeviceDescription, VfioUserDevice, int)}, accepting only the peers {@code policy}
     * allows (its file mode and group do not apply: the socket file is not the server's).
     */
    public HostedDevice serve(DeviceDescription description, VfioUserDevice device, int listeningFd,
                              SocketPolicy policy) throws InterruptedException, ErrnoException {
        String name = "fd:" + listeningFd;
        return start(description, device, name, policy,
                () -> new UnixServerChannel(listeningFd, new DomainSocketAddress(name)), ServerBootstrap::register);
    }

    private HostedDevice start(DeviceDescription description, VfioUserDevice device, String where,
                               SocketPolicy policy,
                               java.util.function.Supplier<UnixServerChannel> channel,
                               java.util.function.Function<ServerBootstrap, io.netty.channel.ChannelFuture> open)
            throws InterruptedException, ErrnoException {
        if (closed) {
            throw new IllegalStateException("server is closed");
        }
        DeviceRuntime runtime = new DeviceRuntime(description, device, options.limits(), group);
        HostedDevice hosted = new HostedDevice(runtime, where, options, policy);
        try {
            ServerBootstrap bootstrap = new ServerBootstrap()
                    .group(group)
                    .channelFactory(channel::get)
                    .childHandler(hosted.childInitializer());
            Channel listener = open.apply(bootstrap).sync().channel();
            hosted.listening(listener);
        } catch (Throwable e) {
            // Also a bind failure, which Netty rethrows as the checked ErrnoException: free the region memfds.
            runtime.close();
            throw e;
        }
        devices.add(hosted);
        hosted.closeFuture().whenComplete((ok, err) -> devices.remove(hosted));
        LOG.info("{}: serving {} on {}", description.name(), description.identity(), where);
        return hosted;
    }

    /** The devices being served. */
    public List<HostedDevice> devices() {
        return List.copyOf(devices);
    }

    /**
     * Stops every device: listeners close (socket files removed), clients are disconnected, each device's reset and
     * {@code detached()} after its client are waited for, and the event loops stop if the server created them.
     */
    @Override
    public void close() {
        closed = true;
        // Every client first, so the devices' resets after their clients run side by side; then wait for each.
        for (HostedDevice device : devices) {
            device.disconnect();
        }
        for (HostedDevice device : devices) {
            device.close();
        }
        if (ownsGroup) {
            group.shutdownGracefully(0, 2, TimeUnit.SECONDS).syncUninterruptibly();
        }
    }

    public static final class Builder {
        private EventLoopGroup group;
        private int threads = Runtime.getRuntime().availableProcessors();
        private ServerOptions options = ServerOptions.DEFAULT;

        private Builder() {
        }

        /** Runs on an existing epoll event-loop group, which the caller keeps and shuts down. */
        public Builder group(EventLoopGroup group) {
            this.group = Objects.requireNonNull(group);
            return this;
        }

        /** The number of event-loop threads when the server creates its own group (default: cores). */
        public Builder threads(int threads) {
            if (threads < 1) {
                throw new IllegalArgumentException("threads < 1");
            }
            this.threads = threads;
            return this;
        }

        public Builder options(ServerOptions options) {
            this.options = Objects.requireNonNull(options);
            return this;
        }

        public VfioUserServer build() {
            return new VfioUserServer(this);
        }
    }
}
