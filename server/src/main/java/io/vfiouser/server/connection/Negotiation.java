package io.vfiouser.server.connection;

import io.vfiouser.codec.VfioUserCapabilities;
import io.vfiouser.codec.VfioUserCommand;
import io.vfiouser.codec.VfioUserHeader;
import io.vfiouser.codec.VfioUserMessage;
import io.vfiouser.codec.VfioUserProtocolException;
import io.vfiouser.codec.payload.VersionPayload;
import io.vfiouser.server.ServerOptions;
import io.vfiouser.server.device.LogText;
import io.vfiouser.transport.linux.Errno;

/**
 * VERSION, the first message of every connection (digest 3.1): what the client may send first, and what the server
 * answers. A pure decision: the handler applies its {@link Outcome}.
 */
final class Negotiation {
    /** The newest protocol minor version the server speaks; a client gets {@code min(its minor, ours)}. */
    static final int OUR_MINOR = 2;

    /** What a first message leads to. */
    sealed interface Outcome {
    }

    /**
     * The client speaks our protocol: reply with {@code reply}, then the connection attaches. {@code twinReply} is
     * set when the client asked for a twin socket and can take one (it receives fds, and it wants a reply): the
     * reply to send, with the socket's client end as fd 0, if the server makes one.
     */
    record Agreed(VfioUserCapabilities client, int minor, VersionPayload reply, VersionPayload twinReply)
            implements Outcome {
    }

    /** Where the twin socket's client end travels in the VERSION reply's fds. */
    static final int TWIN_FD_INDEX = 0;

    /**
     * The first message is refused: an error reply with {@code errno} unless {@code replies} is false (fds where
     * none belong: the stream cannot be trusted), then the connection closes. {@code why} is for the log (client
     * text escaped).
     */
    record Refused(int errno, boolean replies, String why) implements Outcome {
    }

    private final ServerOptions options;
    private final int maxDmaMappings;

    Negotiation(ServerOptions options, int maxDmaMappings) {
        this.options = options;
        this.maxDmaMappings = maxDmaMappings;
    }

    /** Decides on the first message of a connection (the caller still owns and releases it). */
    Outcome negotiate(VfioUserMessage message) {
        VfioUserHeader header = message.header();
        if (!header.isCommand() || message.command() != VfioUserCommand.VERSION) {
            return new Refused(Errno.EINVAL, true, "first message was " + header + ", not VERSION");
        }
        if (!message.fds().isEmpty()) {
            return new Refused(Errno.EINVAL, false, "VERSION carried " + message.fds().size() + " fds; closing");
        }
        VersionPayload version = message.payload(VersionPayload.class);
        if (version.major() != 0) {
            return new Refused(Errno.EINVAL, true, "client speaks major version " + version.major());
        }
        VfioUserCapabilities client;
        try {
            client = VfioUserCapabilities.parse(version.json(), VfioUserCapabilities.SPEC_DEFAULT_MAX_MSG_FDS);
        } catch (VfioUserProtocolException e) {
            return new Refused(e.errno(), true, "bad VERSION capabilities: " + LogText.escape(e.getMessage()));
        }
        int minor = Math.min(version.minor(), OUR_MINOR);
        VfioUserCapabilities.TwinSocket twin = client.twinSocket();
        boolean twinPossible = twin != null && twin.supported() && client.maxMsgFds() >= 1 && !header.isNoReply();
        return new Agreed(client, minor, VersionPayload.of(0, minor, serverCapabilities(header.messageSize(), false)),
                twinPossible ? VersionPayload.of(0, minor, serverCapabilities(header.messageSize(), true)) : null);
    }

    /**
     * What the server announces. QEMU reads the VERSION reply into the buffer of its own request, so the reply
     * must not be longer than the request: when the full set does not fit, only the essential keys are sent, the
     * limits the server enforces first ({@code max_dma_maps} is below the client's default, 65535).
     */
    VfioUserCapabilities serverCapabilities(long requestSize) {
        return serverCapabilities(requestSize, false);
    }

    /**
     * As {@link #serverCapabilities(long)}, announcing a twin socket at fd {@link #TWIN_FD_INDEX} when {@code twin}
     * is set (at every size: the client must learn where the server's requests will come).
     */
    VfioUserCapabilities serverCapabilities(long requestSize, boolean twin) {
        VfioUserCapabilities full = withTwin(VfioUserCapabilities.builder()
                .maxMsgFds(options.maxMsgFds())
                .maxDataXferSize(options.maxDataTransferSize())
                .pgsizes(VfioUserCapabilities.DEFAULT_PGSIZES)
                .maxDmaMaps(maxDmaMappings)
                .writeMultiple(true), twin);
        if (replySize(full) <= requestSize) {
            return full;
        }
        // max_dma_maps is below the client's default (65535): a client that does not learn it meets ENOSPC.
        VfioUserCapabilities essential = withTwin(VfioUserCapabilities.builder()
                .maxMsgFds(options.maxMsgFds())
                .maxDataXferSize(options.maxDataTransferSize())
                .maxDmaMaps(maxDmaMappings)
                .writeMultiple(true), twin);
        if (replySize(essential) <= requestSize) {
            return essential;
        }
        VfioUserCapabilities limits = withTwin(VfioUserCapabilities.builder()
                .maxMsgFds(options.maxMsgFds())
                .maxDataXferSize(options.maxDataTransferSize())
                .maxDmaMaps(maxDmaMappings), twin);
        if (replySize(limits) <= requestSize) {
            return limits;
        }
        return withTwin(VfioUserCapabilities.builder()
                .maxMsgFds(options.maxMsgFds())
                .maxDataXferSize(options.maxDataTransferSize()), twin);
    }

    private static VfioUserCapabilities withTwin(VfioUserCapabilities.Builder caps, boolean twin) {
        if (twin) {
            caps.twinSocket(new VfioUserCapabilities.TwinSocket(true, java.util.OptionalInt.of(TWIN_FD_INDEX)));
        }
        return caps.build();
    }

    private static long replySize(VfioUserCapabilities caps) {
        return VfioUserHeader.HEADER_SIZE + VersionPayload.of(0, 0, caps).encodedSize();
    }
}
