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

    long getClientsAccepted();

    long getClientsRefused();
}
