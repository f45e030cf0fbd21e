package io.vfiouser.server.connection;

import io.vfiouser.device.IoEventFd;
import io.vfiouser.device.VfioUserDevice;
import io.vfiouser.transport.FdSet;
import io.vfiouser.transport.linux.ErrnoException;
import io.vfiouser.transport.linux.Linux;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The doorbell eventfds of one connection (DEVICE_GET_REGION_IO_FDS): one per {@link IoEventFd} of the
 * description, created when the client attaches and watched on the connection's event loop
 * ({@link EventFdWatchers}); a signal becomes {@link VfioUserDevice#ioEventFdSignalled}. Closed when the client
 * goes.
 */
final class IoEventFds implements AutoCloseable {
    private final Map<IoEventFd, EventFdWatchers.Watch> watchers = new LinkedHashMap<>();

    IoEventFds(List<IoEventFd> doorbells, VfioUserDevice device, EventFdWatchers watch) throws ErrnoException {
        try {
            for (IoEventFd d : doorbells) {
                watchers.put(d, watch.watch(Linux.eventfd(0, Linux.EFD_NONBLOCK),
                        count -> device.ioEventFdSignalled(d, count)));
            }
        } catch (ErrnoException | RuntimeException e) {
            close();
            throw e;
        }
    }

    /** Duplicates of the eventfds of {@code doorbells}, in that order, for a reply that owns them. */
    FdSet duplicates(List<IoEventFd> doorbells) {
        int[] fds = new int[doorbells.size()];
        int n = 0;
        try {
            for (IoEventFd d : doorbells) {
                fds[n] = Linux.dup(watchers.get(d).eventFd());
                n++;
            }
            return FdSet.of(fds);
        } catch (ErrnoException e) {
            for (int i = 0; i < n; i++) {
                FdSet.closeQuietly(fds[i]);
            }
            throw new io.vfiouser.codec.VfioUserProtocolException(e.errno(), e.getMessage());
        }
    }

    @Override
    public void close() {
        for (EventFdWatchers.Watch w : watchers.values()) {
            w.close();
        }
        watchers.clear();
    }
}
