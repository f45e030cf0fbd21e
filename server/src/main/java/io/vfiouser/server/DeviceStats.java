package io.vfiouser.server;

import io.vfiouser.codec.VfioUserCommand;
import io.vfiouser.transport.linux.Errno;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLongArray;

/**
 * A device's counters over its whole life, across clients: commands received by command, error replies by errno,
 * bytes and fds each way on the socket, DMA mappings, interrupts the device raised, clients accepted and refused.
 *
 * <p>The counting side runs on the hot path, including {@link RegionFastPath}, so it allocates nothing: every
 * counter is a slot in an array made once with the device, and an increment is one uncontended atomic add (one
 * client at a time, on one event loop; device threads raising interrupts add theirs). Reading builds maps and is
 * meant for humans and JMX, not for the hot path.
 */
public final class DeviceStats implements DeviceStatsMXBean {
    /** Command codes 0..MAX_COMMAND have their own slot; any other code counts in the last one. */
    private static final int MAX_COMMAND = 31;
    /** Errno values 0..MAX_ERRNO have their own slot; any other value counts in the last one. */
    private static final int MAX_ERRNO = 255;

    private static final int BYTES_IN = 0;
    private static final int BYTES_OUT = 1;
    private static final int FDS_IN = 2;
    private static final int FDS_OUT = 3;
    private static final int DMA_MAPS = 4;
    private static final int DMA_UNMAPS = 5;
    private static final int INTERRUPTS = 6;
    private static final int ACCEPTED = 7;
    private static final int REFUSED = 8;
    private static final int IRQ_DROPPED = 9;
    private static final int IRQ_TAMPERED = 10;
    private static final int SCALARS = 11;

    private final String device;
    private final AtomicLongArray commands = new AtomicLongArray(MAX_COMMAND + 2);
    private final AtomicLongArray errors = new AtomicLongArray(MAX_ERRNO + 2);
    private final AtomicLongArray scalars = new AtomicLongArray(SCALARS);

    public DeviceStats(String device) {
        this.device = device;
    }

    // ------------------------------------------------------------------------------------ counting side

    /** A command (or a message that claimed to be one) arrived with code {@code code}. */
    void command(int code) {
        commands.getAndIncrement(code >= 0 && code <= MAX_COMMAND ? code : MAX_COMMAND + 1);
    }

    /** An error reply with {@code errno} went out (or would have, for a NO_REPLY command). */
    void error(int errno) {
        errors.getAndIncrement(errno >= 0 && errno <= MAX_ERRNO ? errno : MAX_ERRNO + 1);
    }

    void bytesIn(long n) {
        scalars.getAndAdd(BYTES_IN, n);
    }

    void bytesOut(long n) {
        scalars.getAndAdd(BYTES_OUT, n);
    }

    void fdsIn(int n) {
        scalars.getAndAdd(FDS_IN, n);
    }

    void fdsOut(int n) {
        scalars.getAndAdd(FDS_OUT, n);
    }

    void dmaMapped() {
        scalars.getAndIncrement(DMA_MAPS);
    }

    void dmaUnmapped() {
        scalars.getAndIncrement(DMA_UNMAPS);
    }

    void interrupt() {
        scalars.getAndIncrement(INTERRUPTS);
    }

    /** A signal was dropped: the client's eventfd was full, the write failed, or too many waited off-loop. */
    void interruptDropped() {
        scalars.getAndIncrement(IRQ_DROPPED);
    }

    /** A client had made its interrupt eventfd blocking again and held a signal until the watchdog released it. */
    void interruptFdTampered() {
        scalars.getAndIncrement(IRQ_TAMPERED);
    }

    void clientAccepted() {
        scalars.getAndIncrement(ACCEPTED);
    }

    void clientRefused() {
        scalars.getAndIncrement(REFUSED);
    }

    // ------------------------------------------------------------------------------------- reading side

    @Override
    public String getDevice() {
        return device;
    }

    @Override
    public Map<String, Long> getCommands() {
        Map<String, Long> out = new LinkedHashMap<>();
        for (int code = 0; code < commands.length(); code++) {
            long n = commands.get(code);
            if (n != 0) {
                VfioUserCommand known = code <= MAX_COMMAND ? VfioUserCommand.fromCode(code) : null;
                out.put(known != null ? known.name() : code <= MAX_COMMAND ? "code-" + code : "other", n);
            }
        }
        return out;
    }

    @Override
    public Map<String, Long> getErrors() {
        Map<String, Long> out = new LinkedHashMap<>();
        for (int errno = 0; errno < errors.length(); errno++) {
            long n = errors.get(errno);
            if (n != 0) {
                out.put(errno <= MAX_ERRNO ? Errno.name(errno) : "other", n);
            }
        }
        return out;
    }

    @Override
    public long getMessagesIn() {
        long n = 0;
        for (int i = 0; i < commands.length(); i++) {
            n += commands.get(i);
        }
        return n;
    }

    @Override
    public long getErrorReplies() {
        long n = 0;
        for (int i = 0; i < errors.length(); i++) {
            n += errors.get(i);
        }
        return n;
    }

    @Override
    public long getBytesIn() {
        return scalars.get(BYTES_IN);
    }

    @Override
    public long getBytesOut() {
        return scalars.get(BYTES_OUT);
    }

    @Override
    public long getFdsIn() {
        return scalars.get(FDS_IN);
    }

    @Override
    public long getFdsOut() {
        return scalars.get(FDS_OUT);
    }

    @Override
    public long getDmaMaps() {
        return scalars.get(DMA_MAPS);
    }

    @Override
    public long getDmaUnmaps() {
        return scalars.get(DMA_UNMAPS);
    }

    @Override
    public long getInterrupts() {
        return scalars.get(INTERRUPTS);
    }

    @Override
    public long getInterruptsDropped() {
        return scalars.get(IRQ_DROPPED);
    }

    @Override
    public long getInterruptFdsTampered() {
        return scalars.get(IRQ_TAMPERED);
    }

    @Override
    public long getClientsAccepted() {
        return scalars.get(ACCEPTED);
    }

    @Override
    public long getClientsRefused() {
        return scalars.get(REFUSED);
    }

    /** One line for logs: {@code name: messages=N bytesIn=B ... commands={VERSION=1, ...} errors={EINVAL=2}}. */
    @Override
    public String toString() {
        return device + ": messages=" + getMessagesIn() + " bytesIn=" + getBytesIn() + " bytesOut=" + getBytesOut()
                + " fdsIn=" + getFdsIn() + " fdsOut=" + getFdsOut() + " dmaMaps=" + getDmaMaps()
                + " dmaUnmaps=" + getDmaUnmaps() + " interrupts=" + getInterrupts()
                + " interruptsDropped=" + getInterruptsDropped() + " interruptFdsTampered=" + getInterruptFdsTampered()
                + " clients=" + getClientsAccepted() + " refused=" + getClientsRefused()
                + " commands=" + getCommands() + " errors=" + getErrors();
    }
}
