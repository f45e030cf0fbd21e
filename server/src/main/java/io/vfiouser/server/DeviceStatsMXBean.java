package io.vfiouser.server;

import java.util.Map;

/**
 * A hosted device's counters as JMX shows them (the launcher registers one per device under
 * {@code io.vfiouser:type=Device,name=<device>}); all counts since the device started, across clients.
 */
public interface DeviceStatsMXBean {
    String getDevice();

    /** Commands received, by command name. */
    Map<String, Long> getCommands();

    /** Error replies, by errno name. */
    Map<String, Long> getErrors();

    long getMessagesIn();

    long getErrorReplies();

    long getBytesIn();

    long getBytesOut();

    long getFdsIn();

    long getFdsOut();

    long getDmaMaps();

    long getDmaUnmaps();

    /** Interrupts the device raised (triggers, MSI-X pending bits included). */
    long getInterrupts();

    /**
     * Interrupt signals dropped: the client's eventfd was full (it had 2^64-2 unread signals, with which the
     * interrupt coalesces), the write failed, or the device's off-loop queue was full.
     */
    long getInterruptsDropped();

    /**
     * Signals a client held by making its interrupt eventfd blocking again and filling it, each released by the
     * server's watchdog; the first one closes that client and moves the device's signals off the event loops.
     */
    long getInterruptFdsTampered();

    long getClientsAccepted();

    long getClientsRefused();
}
