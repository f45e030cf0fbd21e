package io.vfiouser.codec;

import io.netty.buffer.ByteBuf;

/**
 * The 16-byte header that starts every vfio-user message (spec §1.2, §1.3):
 *
 * <pre>
 * off size field
 *   0   2  msg_id     chosen by the sender of a command, echoed in the reply
 *   2   2  command    command code, echoed in the reply
 *   4   4  msg_size   total message bytes, header included
 *   8   4  flags      bits 0-3 type (0 command, 1 reply), bit 4 NO_REPLY, bit 5 ERROR
 *  12   4  error      errno of an error reply, 0 otherwise
 * </pre>
 *
 * @param msgId u16 message id
 * @param command u16 command code; {@link VfioUserCommand#fromCode(int)} maps it
 * @param messageSize u32 total size in bytes, header included
 * @param flags the flag bits, reserved bits kept as received
 * @param error the errno of an error reply
 */
public record VfioUserHeader(int msgId, int command, long messageSize, int flags, int error) {
    /** Size of the header on the wire. */
    public static final int HEADER_SIZE = 16;
    /** The bits of {@link #flags()} that hold the message type. */
    public static final int TYPE_MASK = 0x0F;
    /** Message type: a command. */
    public static final int COMMAND = 0;
    /** Message type: a reply. */
    public static final int REPLY = 1;
    /** On a command: the sender wants no reply, not even an error reply. */
    public static final int NO_REPLY = 0x10;
    /** On a reply: the command failed and {@link #error()} holds the errno. */
    public static final int ERROR = 0x20;

    private static final long MAX_U32 = 0xFFFF_FFFFL;

    public VfioUserHeader {
        if ((msgId & ~0xFFFF) != 0) {
            throw new IllegalArgumentException("msg_id is a u16: " + msgId);
        }
        if ((command & ~0xFFFF) != 0) {
            throw new IllegalArgumentException("command is a u16: " + command);
        }
        if (messageSize < 0 || messageSize > MAX_U32) {
            throw new IllegalArgumentException("msg_size is a u32: " + messageSize);
        }
    }

    /** Reads a header at the reader index of {@code in} and advances it by {@link #HEADER_SIZE}. */
    public static VfioUserHeader decode(ByteBuf in) {
        int msgId = in.readUnsignedShortLE();
        int command = in.readUnsignedShortLE();
        long messageSize = in.readUnsignedIntLE();
        int flags = in.readIntLE();
        int error = in.readIntLE();
        return new VfioUserHeader(msgId, command, messageSize, flags, error);
    }

    /** Writes the 16 header bytes to {@code out}. */
    public void encode(ByteBuf out) {
        out.writeShortLE(msgId);
        out.writeShortLE(command);
        out.writeIntLE((int) messageSize);
        out.writeIntLE(flags);
        out.writeIntLE(error);
    }

    /** The same header with another {@code msg_size}. */
    public VfioUserHeader withMessageSize(long size) {
        return new VfioUserHeader(msgId, command, size, flags, error);
    }

    /** The type bits: {@link #COMMAND}, {@link #REPLY} or an invalid value 2-15. */
    public int type() {
        return flags & TYPE_MASK;
    }

    public boolean isCommand() {
        return type() == COMMAND;
    }

    public boolean isReply() {
        return type() == REPLY;
    }

    /** Whether the NO_REPLY bit is set (meaningful on commands only). */
    public boolean isNoReply() {
        return (flags & NO_REPLY) != 0;
    }

    /** Whether the ERROR bit is set (meaningful on replies only). */
    public boolean isError() {
        return (flags & ERROR) != 0;
    }

    /** A command whose sender waits for a reply: type command and no NO_REPLY bit. */
    public boolean expectsReply() {
        return isCommand() && !isNoReply();
    }

    /** {@code msg_size - 16}: the payload length this header announces. */
    public long payloadSize() {
        return messageSize - HEADER_SIZE;
    }

    @Override
    public String toString() {
        return "VfioUserHeader(id=" + msgId + ", command=" + commandName() + ", size=" + messageSize
                + ", flags=0x" + Integer.toHexString(flags) + ", error=" + error + ")";
    }

    private String commandName() {
        VfioUserCommand known = VfioUserCommand.fromCode(command);
        return known != null ? known.name() : Integer.toString(command);
    }
}
