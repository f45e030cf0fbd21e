package io.vfiouser.server.connection;

import io.netty.channel.IoEvent;
import io.netty.channel.IoEventLoop;
import io.netty.channel.IoRegistration;
import io.netty.channel.epoll.EpollIoHandle;
import io.netty.channel.epoll.EpollIoOps;
import io.netty.channel.unix.FileDescriptor;
import io.vfiouser.transport.linux.ErrnoException;
import io.vfiouser.transport.linux.Linux;
import java.util.function.LongConsumer;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

/**
 * Watches a non-blocking eventfd on an epoll event loop and hands each counter value read to a callback, on that
 * loop. Owns the eventfd: {@link #close()} cancels the registration first, then closes it.
 */
final class EventFdWatcher implements EpollIoHandle, EventFdWatchers.Watch {
    private static final Logger LOG = LogManager.getLogger(EventFdWatcher.class);

    private final FileDescriptor fd;
    private final LongConsumer onSignal;
    private volatile IoRegistration registration;
    private volatile boolean closed;

    private EventFdWatcher(int fd, LongConsumer onSignal) {
        this.fd = new FileDescriptor(fd);
        this.onSignal = onSignal;
    }

    /** Watches {@code fd} (an eventfd, made non-blocking here) on {@code loop}; the watcher owns it from now on. */
    static EventFdWatcher watch(IoEventLoop loop, int fd, LongConsumer onSignal) throws ErrnoException {
        try {
            Linux.setNonBlocking(fd);
        } catch (ErrnoException e) {
            io.vfiouser.transport.FdSet.closeQuietly(fd);
            throw e;
        }
        EventFdWatcher watcher = new EventFdWatcher(fd, onSignal);
        loop.register(watcher).addListener(f -> {
            if (f.isSuccess()) {
                IoRegistration r = (IoRegistration) f.getNow();
                watcher.registration = r;
                if (watcher.closed) {
                    r.cancel();
                    watcher.closeFd();
                } else {
                    r.submit(EpollIoOps.EPOLLIN.with(EpollIoOps.EPOLLERR));
                }
            } else {
                LOG.warn("could not watch eventfd {}", fd, f.cause());
                watcher.closeFd();
            }
        });
        return watcher;
    }

    @Override
    public int eventFd() {
        return fd.intValue();
    }

    @Override
    public FileDescriptor fd() {
        return fd;
    }

    @Override
    public void handle(IoRegistration registration, IoEvent ioEvent) {
        try {
            long count = Linux.eventfdRead(fd.intValue());
            if (count > 0) {
                onSignal.accept(count);
            }
        } catch (ErrnoException e) {
            LOG.warn("reading eventfd {} failed: {}", fd.intValue(), e.getMessage());
            close();
        } catch (RuntimeException e) {
            LOG.warn("eventfd {} handler failed", fd.intValue(), e);
        }
    }

    /** Stops watching and closes the eventfd; idempotent. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        IoRegistration r = registration;
        if (r != null) {
            // Cancel first: the loop must not lose the registration of a reused fd number.
            r.cancel();
            closeFd();
        }
    }

    private void closeFd() {
        try {
            fd.close();
        } catch (java.io.IOException e) {
            LOG.warn("closing eventfd {} failed: {}", fd.intValue(), e.getMessage());
        }
    }
}
