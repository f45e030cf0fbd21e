package io.vfiouser.server;

import io.vfiouser.codec.VfioUserCommand;
import io.vfiouser.server.device.DeviceCounters;
import io.vfiouser.server.device.DeviceCounters.Scalar;
import io.vfiouser.transport.linux.Errno;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A device's counters over its whole life, across clients: commands received by command, error replies by errno,
 * bytes and fds each way on the socket, DMA mappings, interrupts the device raised, clients accepted and refused.
 *
 * <p>A read-only view: the server counts in the device's {@link DeviceCounters} (allocation-free, on the hot
 * path); reading builds maps and is meant for humans and JMX, not for the hot path.
 */
public final class DeviceStats implements DeviceStatsMXBean {
    private final String device;
    private final DeviceCounters counters;

    DeviceStats(String device, DeviceCounters counters) {
        this.device = device;
        this.counters = counters;
    }

    @Override
    public String getDevice() {
        return device;
    }

    @Override
    public Map<String, Long> getCommands() {
        Map<String, Long> out = new LinkedHashMap<>();
        for (int code = 0; code < counters.commandSlots(); code++) {
            long n = counters.commands(code);
            if (n != 0) {
                VfioUserCommand known = code <= DeviceCounters.MAX_COMMAND ? VfioUserCommand.fromCode(code) : null;
                String name = known != null ? known.name() : code <= DeviceCounters.MAX_COMMAND ? "code-" + code : "other";
                out.put(name, n);
            }
        }
        return out;
    }

    @Override
    public Map<String, Long> getErrors() {
        Map<String, Long> out = new LinkedHashMap<>();
        for (int errno = 0; errno < counters.errorSlots(); errno++) {
            long n = counters.errors(errno);
            if (n != 0) {
                out.put(errno <= DeviceCounters.MAX_ERRNO ? Errno.name(errno) : "other", n);
            }
        }
        return out;
    }

    @Override
    public long getMessagesIn() {
        long n = 0;
        for (int i = 0; i < counters.commandSlots(); i++) {
            n += counters.commands(i);
        }
        return n;
    }

    @Override
    public long getErrorReplies() {
        long n = 0;
        for (int i = 0; i < counters.errorSlots(); i++) {
            n += counters.errors(i);
        }
        return n;
    }

    @Override
    public long getBytesIn() {
        return counters.get(Scalar.BYTES_IN);
    }

    @Override
    public long getBytesOut() {
        return counters.get(Scalar.BYTES_OUT);
    }

    @Override
    public long getFdsIn() {
        return counters.get(Scalar.FDS_IN);
    }

    @Override
    public long getFdsOut() {
        return counters.get(Scalar.FDS_OUT);
    }

    @Override
    public long getDmaMaps() {
        return counters.get(Scalar.DMA_MAPS);
    }

    @Override
    public long getDmaUnmaps() {
        return counters.get(Scalar.DMA_UNMAPS);
    }

    @Override
    public long getInterrupts() {
        return counters.get(Scalar.INTERRUPTS);
    }

    @Override
    public long getInterruptsDropped() {
        return counters.get(Scalar.IRQ_DROPPED);
    }

    @Override
    public long getInterruptFdsTampered() {
        return counters.get(Scalar.IRQ_TAMPERED);
    }

    @Override
    public long getClientsAccepted() {
        return counters.get(Scalar.ACCEPTED);
    }

    @Override
    public long getClientsRefused() {
        return counters.get(Scalar.REFUSED);
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
