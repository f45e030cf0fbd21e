package io.vfiouser.server.device;

import java.util.concurrent.atomic.AtomicLongArray;

/**
 * The counting side of a device's statistics over its whole life, across clients: commands received by command,
 * error replies by errno, bytes and fds each way on the socket, DMA mappings, interrupts the device raised, clients
 * accepted and refused. {@link io.vfiouser.server.DeviceStats} is the public, read-only view of them.
 *
 * <p>The counting side runs on the hot path, including the region fast path, so it allocates nothing: every counter
 * is a slot in an array made once with the device, and an increment is one uncontended atomic add (one client at a
 * time, on one event loop; device threads raising interrupts add theirs).
 */
public final class DeviceCounters {
    /** Command codes 0..MAX_COMMAND have their own slot; any other code counts in the last one. */
    public static final int MAX_COMMAND = 31;
    /** Errno values 0..MAX_ERRNO have their own slot; any other value counts in the last one. */
    public static final int MAX_ERRNO = 255;

    /** The counters that are one number each. */
    public enum Scalar {
        BYTES_IN, BYTES_OUT, FDS_IN, FDS_OUT, DMA_MAPS, DMA_UNMAPS, INTERRUPTS, ACCEPTED, REFUSED, IRQ_DROPPED,
        IRQ_TAMPERED
    }

    private static final int BYTES_IN = Scalar.BYTES_IN.ordinal();
    private static final int BYTES_OUT = Scalar.BYTES_OUT.ordinal();
    private static final int FDS_IN = Scalar.FDS_IN.ordinal();
    private static final int FDS_OUT = Scalar.FDS_OUT.ordinal();
    private static final int DMA_MAPS = Scalar.DMA_MAPS.ordinal();
    private static final int DMA_UNMAPS = Scalar.DMA_UNMAPS.ordinal();
    private static final int INTERRUPTS = Scalar.INTERRUPTS.ordinal();
    private static final int ACCEPTED = Scalar.ACCEPTED.ordinal();
    private static final int REFUSED = Scalar.REFUSED.ordinal();
    private static final int IRQ_DROPPED = Scalar.IRQ_DROPPED.ordinal();
    private static final int IRQ_TAMPERED = Scalar.IRQ_TAMPERED.ordinal();

    private final AtomicLongArray commands = new AtomicLongArray(MAX_COMMAND + 2);
    private final AtomicLongArray errors = new AtomicLongArray(MAX_ERRNO + 2);
    private final AtomicLongArray scalars = new AtomicLongArray(Scalar.values().length);

    /** A command (or a message that claimed to be one) arrived with code {@code code}. */
    public void command(int code) {
        commands.getAndIncrement(code >= 0 && code <= MAX_COMMAND ? code : MAX_COMMAND + 1);
    }

    /** An error reply with {@code errno} went out (or would have, for a NO_REPLY command). */
    public void error(int errno) {
        errors.getAndIncrement(errno >= 0 && errno <= MAX_ERRNO ? errno : MAX_ERRNO + 1);
    }

    public void bytesIn(long n) {
        scalars.getAndAdd(BYTES_IN, n);
    }

    public void bytesOut(long n) {
        scalars.getAndAdd(BYTES_OUT, n);
    }

    public void fdsIn(int n) {
        scalars.getAndAdd(FDS_IN, n);
    }

    public void fdsOut(int n) {
        scalars.getAndAdd(FDS_OUT, n);
    }

    public void dmaMapped() {
        scalars.getAndIncrement(DMA_MAPS);
    }

    public void dmaUnmapped() {
        scalars.getAndIncrement(DMA_UNMAPS);
    }

    public void interrupt() {
        scalars.getAndIncrement(INTERRUPTS);
    }

    /** A signal was dropped: the client's eventfd was full, the write failed, or too many waited off-loop. */
    public void interruptDropped() {
        scalars.getAndIncrement(IRQ_DROPPED);
    }

    /** A client had made its interrupt eventfd blocking again and held a signal until the watchdog released it. */
    public void interruptFdTampered() {
        scalars.getAndIncrement(IRQ_TAMPERED);
    }

    public void clientAccepted() {
        scalars.getAndIncrement(ACCEPTED);
    }

    public void clientRefused() {
        scalars.getAndIncrement(REFUSED);
    }

    // ------------------------------------------------------------------------------------- reading side

    /** Slots of {@link #commands(int)}: codes 0..{@link #MAX_COMMAND}, then "any other". */
    public int commandSlots() {
        return commands.length();
    }

    public long commands(int slot) {
        return commands.get(slot);
    }

    /** Slots of {@link #errors(int)}: errnos 0..{@link #MAX_ERRNO}, then "any other". */
    public int errorSlots() {
        return errors.length();
    }

    public long errors(int slot) {
        return errors.get(slot);
    }

    public long get(Scalar counter) {
        return scalars.get(counter.ordinal());
    }
}
