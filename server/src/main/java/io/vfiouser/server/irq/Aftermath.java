package io.vfiouser.server.irq;

import io.vfiouser.device.IrqType;
import io.vfiouser.transport.FdSet;
import java.util.ArrayList;
import java.util.List;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

/**
 * What a state change under the table's write lock leaves to do once the lock is released: tell the listener
 * (device code must never run under the lock: it may trigger interrupts, which take the lock) and close the
 * eventfds that were replaced or removed (after the listener heard of them, so that a connection can stop watching
 * a notifier before its fd number is recycled).
 */
final class Aftermath {
    private static final Logger LOG = LogManager.getLogger(Aftermath.class);

    private record MaskChange(IrqType type, int start, int count, boolean masked) {
    }

    private record NotifierChange(IrqType type, int vector, boolean unmask, int oldFd, int newFd) {
    }

    private final List<Object> events = new ArrayList<>();
    private final List<Integer> retired = new ArrayList<>();

    void maskChanged(IrqType type, int start, int count, boolean masked) {
        if (count > 0) {
            events.add(new MaskChange(type, start, count, masked));
        }
    }

    void notifierChanged(IrqType type, int vector, boolean unmask, int oldFd, int newFd) {
        events.add(new NotifierChange(type, vector, unmask, oldFd, newFd));
    }

    /** {@code fd} is no longer in the table: close it once the listener has been told. */
    void retire(int fd) {
        if (fd >= 0) {
            retired.add(fd);
        }
    }

    /** Tells the listener, in the order the changes happened, then closes the retired fds. */
    void run(IrqTable.Listener listener) {
        try {
            for (Object e : events) {
                try {
                    if (e instanceof MaskChange m) {
                        listener.irqMaskChanged(m.type(), m.start(), m.count(), m.masked());
                    } else if (e instanceof NotifierChange n) {
                        listener.notifierChanged(n.type(), n.vector(), n.unmask(), n.oldFd(), n.newFd());
                    }
                } catch (RuntimeException ex) {
                    LOG.warn("interrupt listener failed on {}", e, ex);
                }
            }
        } finally {
            for (int fd : retired) {
                FdSet.closeQuietly(fd);
            }
        }
    }
}
