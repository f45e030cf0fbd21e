package io.vfiouser.server.migration;

/**
 * Where a saving session (a migration source) is in the state stream it sends, in stream order. The device's own
 * chunks come while it runs (PRE_COPY) and again once it has stopped (STOP_COPY); the framework's records (config
 * space, interrupts, memory-backed regions) only once it has stopped, since they must not change after they are
 * read. The stream is one pass: a phase never comes back.
 */
public enum SavePhase {
    /** The stream's header record is still to send. */
    HEADER,
    /** The device runs (PRE_COPY): its chunks as it offers them; an empty chunk means nothing more for now. */
    LIVE,
    /** The device has stopped (STOP_COPY): the configuration space and interrupt records are still to send. */
    FRAMEWORK,
    /** The memory-backed regions, one chunk at a time. */
    REGIONS,
    /** The stopped device's remaining chunks, until it offers an empty one. */
    FINAL,
    /** The end record is still to send. */
    END,
    /** Everything has been sent: a read returns what is left queued, then nothing. */
    DONE
}
