package io.vfiouser.server.irq;

import io.vfiouser.device.IrqType;
import io.vfiouser.transport.FdSet;
import io.vfiouser.transport.linux.ErrnoException;
import io.vfiouser.transport.linux.Linux;
import java.util.ArrayDeque;
import java.util.HashSet;
import java.util.Set;
import java.util.concurrent.atomic.LongAdder;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

/**
 * What a device remembers about its clients' interrupt fds across connections: whether one of them ever cleared
 * {@code O_NONBLOCK} behind the server's back (the device is then <em>tainted</em>), the signalling thread its
 * signals use from then on, and the signals dropped over its life.
 *
 * <h2>Why a taint</h2>
 * The {@link SignalWatchdog} releases a write that a client's eventfd holds, and the connection closes that client;
 * but the event loop was held for up to about 75 ms first, and the client can reconnect and do it again. So after
 * the first tampering every later signal of the device's interrupt tables goes to a thread of the device's own,
 * created then: the table hands it a duplicate of the eventfd ({@code dup} at hand-off, one system call paid only by
 * a tainted device), and the thread writes through that duplicate and closes it. Should a client hold that thread,
 * only this device's interrupts wait, and the watchdog releases it as well. An event loop is thus held at most once
 * per device.
 *
 * <p>The queue is bounded: at most one signal waits per interrupt (type and vector), since a second one would be
 * coalesced with it by the eventfd anyway, and at most {@value #MAX_PENDING} in all; beyond that signals are dropped
 * and counted. The guard lives as long as the device and points at no connection: the tables reach it, not the
 * other way round.
 */
public final class IrqGuard {
    private static final Logger LOG = LogManager.getLogger(IrqGuard.class);

    /** Signals that may wait for the device's signalling thread. */
    static final int MAX_PENDING = 64;

    private record Pending(int key, int fd) {
    }

    private final String name;
    private final Runnable onDrop;
    private final Runnable onTamper;
    private volatile boolean tainted;
    private final LongAdder tamperings = new LongAdder();
    private final LongAdder offLoop = new LongAdder();
    private final ArrayDeque<Pending> queue = new ArrayDeque<>();
    private final Set<Integer> queued = new HashSet<>();
    private Thread signaller;
    private boolean closed;

    /**
     * @param name   the device, for the log and the thread's name
     * @param onDrop told of every signal dropped (a full eventfd, a failed write, a full queue), for the device's
     *               counters; called on the signalling thread, so it must be cheap and allocation-free
     * @param onTamper told of every signal a client held (see {@link #tamperings()}), likewise
     */
    public IrqGuard(String name, Runnable onDrop, Runnable onTamper) {
        this.name = name;
        this.onDrop = onDrop;
        this.onTamper = onTamper;
    }

    /** A guard of its own, for a table made without one (tests). */
    static IrqGuard standalone(String name) {
        return new IrqGuard(name, () -> {
        }, () -> {
        });
    }

    /** Whether a client of this device ever cleared {@code O_NONBLOCK} on an interrupt eventfd. */
    public boolean tainted() {
        return tainted;
    }

    /** How often a client of this device was caught holding a signal (on an event loop or on the device's thread). */
    public long tamperings() {
        return tamperings.sum();
    }

    /** Signals the device's own thread wrote (after the taint). */
    public long offLoopSignals() {
        return offLoop.sum();
    }

    void dropped() {
        onDrop.run();
    }

    /** A signal of this device was held by its client: from now on signals leave the calling threads. */
    void tampered() {
        tamperings.increment();
        onTamper.run();
        if (!tainted) {
            synchronized (this) {
                if (!tainted) {
                    tainted = true;
                    // the connection's WARN line, which closes the client, says it for the operator
                    LOG.debug("{}: a client made its interrupt eventfd blocking again; this device's interrupts are "
                            + "signalled from a thread of its own from now on", name);
                }
            }
        }
    }

    /**
     * Hands the signal of {@code vector} of {@code type} to the device's thread, through a duplicate of {@code fd}
     * (the caller keeps {@code fd}). Coalesced with a signal of the same vector still waiting; dropped when
     * {@value #MAX_PENDING} wait.
     */
    void submit(IrqType type, int vector, int fd) {
        int key = (type.index() << 24) | vector;
        synchronized (this) {
            if (closed) {
                return;
            }
            if (queued.contains(key)) {
                return; // coalesced: the eventfd would add both into one count anyway
            }
            if (queue.size() >= MAX_PENDING) {
                onDrop.run();
                return;
            }
            int copy;
            try {
                copy = Linux.dup(fd);
            } catch (ErrnoException e) {
                LOG.warn("{}: {} vector {} not signalled: {}", name, type, vector, e.getMessage());
                onDrop.run();
                return;
            }
            queue.add(new Pending(key, copy));
            queued.add(key);
            if (signaller == null) {
                signaller = new Thread(this::drain, "vfio-user-irq-" + name);
                signaller.setDaemon(true);
                signaller.start();
            }
            notifyAll();
        }
    }

    /** The device is gone: stops its signalling thread, if any, and closes the duplicates still waiting. */
    public void close() {
        synchronized (this) {
            closed = true;
            if (signaller != null) {
                signaller.interrupt();
            }
            for (Pending p : queue) {
                FdSet.closeQuietly(p.fd());
            }
            queue.clear();
            queued.clear();
        }
    }

    private void drain() {
        while (true) {
            Pending p;
            synchronized (this) {
                while (queue.isEmpty()) {
                    try {
                        wait();
                    } catch (InterruptedException e) {
                        return;
                    }
                }
                p = queue.poll();
                queued.remove(p.key());
            }
            try {
                int r = EventFds.signal(p.fd());
                if (r == EventFds.DROPPED) {
                    onDrop.run();
                } else {
                    offLoop.increment();
                }
                if (r == EventFds.TAMPERED) { // written once the watchdog released it
                    tamperings.increment();
                    onTamper.run();
                    LOG.debug("{}: a client held an interrupt signal again (off the event loops)", name);
                }
            } finally {
                FdSet.closeQuietly(p.fd());
            }
        }
    }
}
