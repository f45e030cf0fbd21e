package io.vfiouser.codec;

import io.netty.handler.codec.CorruptedFrameException;

/**
 * The byte stream cannot be split into messages: a header's {@code msg_size} is below 16 or above the configured
 * maximum. {@link VfioUserFrameDecoder} fires it down the pipeline and then closes the channel, because the
 * position of the next message is unknown. It carries what the bad header said, so that a handler may still
 * try to answer with an {@code EINVAL} error reply before the close completes, unless the header asked for no
 * reply ({@link #noReply()}): a command flagged NO_REPLY is never answered, not even with an error (digest 1.3),
 * since a client such as QEMU takes a reply it did not wait for as the answer to something else.
 */
public final class VfioUserFramingException extends CorruptedFrameException {
    private static final long serialVersionUID = 1L;

    private final int msgId;
    private final int command;
    private final long messageSize;
    private final int flags;

    /** {@code flags}: the bad header's flags field (its NO_REPLY bit decides whether anyone may answer). */
    public VfioUserFramingException(String message, int msgId, int command, long messageSize, int flags) {
        super(message);
        this.msgId = msgId;
        this.command = command;
        this.messageSize = messageSize;
        this.flags = flags;
    }

    /** The {@code msg_id} of the bad header. */
    public int msgId() {
        return msgId;
    }

    /** The {@code command} code of the bad header. */
    public int command() {
        return command;
    }

    /** The {@code msg_size} of the bad header. */
    public long messageSize() {
        return messageSize;
    }

    /** The {@code flags} of the bad header. */
    public int flags() {
        return flags;
    }

    /** Whether the bad header carried NO_REPLY: then no error reply may be sent, only the close. */
    public boolean noReply() {
        return (flags & VfioUserHeader.NO_REPLY) != 0;
    }
}
