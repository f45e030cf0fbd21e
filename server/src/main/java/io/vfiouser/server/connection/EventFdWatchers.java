package io.vfiouser.server.connection;

import io.netty.channel.IoEventLoop;
import io.vfiouser.transport.linux.ErrnoException;
import java.util.function.LongConsumer;

/**
 * How a connection watches eventfds (the doorbells it hands out, the INTx resample fd the client registers): the one
 * thing it needs from its event loop beyond an ordinary Netty channel. Production connections watch on their epoll
 * loop ({@link #epoll}); a test hands in a watcher it polls itself, so a connection runs in an
 * {@code EmbeddedChannel}.
 */
@FunctionalInterface
public interface EventFdWatchers {
    /**
     * Watches {@code fd}, an eventfd the caller gives up (the watch owns and closes it, also when this throws), and
     * hands each counter value read from it to {@code onSignal}, on the connection's event loop.
     */
    Watch watch(int fd, LongConsumer onSignal) throws ErrnoException;

    /** One watched eventfd. */
    interface Watch extends AutoCloseable {
        /** The eventfd, still owned by the watch (callers duplicate it to hand it out). */
        int eventFd();

        /** Stops watching and closes the eventfd; idempotent. */
        @Override
        void close();
    }

    /** Watches on an epoll event loop (the connection's own). */
    static EventFdWatchers epoll(IoEventLoop loop) {
        return (fd, onSignal) -> EventFdWatcher.watch(loop, fd, onSignal);
    }
}
