package io.vfiouser.codec;

import io.netty.handler.codec.CorruptedFrameException;

/**
 * The byte stream cannot be split into messages: a header's {@code msg_size} is below 16 or above the configured
 * maximum. {@link VfioUserFrameDecoder} fires it down the pipeline and then closes the channel, because the
 * position of the next message is unknown. It carries what the bad header said, so that a handler may still
 * try to answer with an {@code EINVAL} error reply before the close completes.
 */
public final class VfioUserFramingException extends CorruptedFrameException {
    private static final long serialVersionUID = 1L;

    private final int msgId;
    private final int command;
    private final long messageSize;

    public VfioUserFramingException(String message, int msgId, int command, long messageSize) {
        super(message);
        this.msgId = msgId;
        this.command = command;
        this.messageSize = messageSize;
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
}
