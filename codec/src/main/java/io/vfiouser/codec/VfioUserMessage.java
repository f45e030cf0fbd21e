package io.vfiouser.codec;

import io.netty.buffer.ByteBuf;
import io.netty.util.AbstractReferenceCounted;
import io.vfiouser.codec.payload.VfioUserPayload;
import io.vfiouser.transport.FdSet;
import java.util.Objects;

/**
 * A well-formed vfio-user message: its {@link VfioUserHeader}, its typed {@link VfioUserPayload} and the fds
 * that travelled with it.
 *
 * <p>The payload is {@code null} for messages without one: error replies (always header only), the replies to
 * DMA_MAP, SET_IRQS, DEVICE_RESET and MIG_DATA_WRITE, DEVICE_RESET requests, and replies that libvfio-user or
 * QEMU send header-only (see the payload types).
 *
 * <p>Ownership: the message owns the payload's {@link VfioUserPayload#data() data} buffer and its {@link FdSet}.
 * Reaching reference count 0 releases the buffer and closes every fd not {@link FdSet#take(int) taken}. The
 * factories take ownership of what they are given. {@link VfioUserMessageEncoder} moves the fds of a message it
 * encodes into the outbound {@code BytesWithFds}, which closes them once sent; pass duplicates of fds you keep.
 */
public final class VfioUserMessage extends AbstractReferenceCounted {
    private final VfioUserHeader header;
    private final VfioUserPayload payload;
    private FdSet fds;

    /**
     * @param header the header as sent or received
     * @param payload the payload, or {@code null}; must be {@code null} for an error reply
     * @param fds the fds of the message, {@link FdSet#EMPTY} for none
     */
    public VfioUserMessage(VfioUserHeader header, VfioUserPayload payload, FdSet fds) {
        this.header = Objects.requireNonNull(header, "header");
        this.fds = Objects.requireNonNull(fds, "fds");
        if (header.isReply() && header.isError() && payload != null) {
            throw new IllegalArgumentException("an error reply is header only");
        }
        this.payload = payload;
    }

    /** A command that expects a reply. */
    public static VfioUserMessage command(int msgId, VfioUserCommand command, VfioUserPayload payload) {
        return command(msgId, command, payload, FdSet.EMPTY);
    }

    /** A command that expects a reply and carries {@code fds}. */
    public static VfioUserMessage command(int msgId, VfioUserCommand command, VfioUserPayload payload, FdSet fds) {
        return build(msgId, command.code(), VfioUserHeader.COMMAND, 0, payload, fds);
    }

    /** A command with the NO_REPLY flag. */
    public static VfioUserMessage commandNoReply(int msgId, VfioUserCommand command, VfioUserPayload payload) {
        return build(msgId, command.code(), VfioUserHeader.COMMAND | VfioUserHeader.NO_REPLY, 0, payload,
                FdSet.EMPTY);
    }

    /** The successful reply to {@code request} (its id and command echoed). */
    public static VfioUserMessage reply(VfioUserHeader request, VfioUserPayload payload) {
        return reply(request, payload, FdSet.EMPTY);
    }

    /** The successful reply to {@code request}, carrying {@code fds}. */
    public static VfioUserMessage reply(VfioUserHeader request, VfioUserPayload payload, FdSet fds) {
        return build(request.msgId(), request.command(), VfioUserHeader.REPLY, 0, payload, fds);
    }

    /** The header-only error reply (flags 0x21) to {@code request}. */
    public static VfioUserMessage errorReply(VfioUserHeader request, int errno) {
        return errorReply(request.msgId(), request.command(), errno);
    }

    /** A header-only error reply (flags 0x21) with the given id and command code. */
    public static VfioUserMessage errorReply(int msgId, int command, int errno) {
        if (errno <= 0) {
            throw new IllegalArgumentException("an error reply needs a positive errno: " + errno);
        }
        return build(msgId, command, VfioUserHeader.REPLY | VfioUserHeader.ERROR, errno, null, FdSet.EMPTY);
    }

    private static VfioUserMessage build(int msgId, int command, int flags, int error, VfioUserPayload payload,
            FdSet fds) {
        long size = VfioUserHeader.HEADER_SIZE + (payload == null ? 0 : (long) payload.encodedSize());
        return new VfioUserMessage(new VfioUserHeader(msgId, command, size, flags, error), payload, fds);
    }

    public VfioUserHeader header() {
        return header;
    }

    public int msgId() {
        return header.msgId();
    }

    /** The command, or {@code null} if the header's code is unknown (only possible for built error replies). */
    public VfioUserCommand command() {
        return VfioUserCommand.fromCode(header.command());
    }

    /** The payload, or {@code null}; see the class comment. */
    public VfioUserPayload payload() {
        return payload;
    }

    /** The payload as {@code type}; fails if it is {@code null} or of another type. */
    public <T extends VfioUserPayload> T payload(Class<T> type) {
        if (!type.isInstance(payload)) {
            throw new IllegalStateException(header + " has payload " + payload + ", not " + type.getSimpleName());
        }
        return type.cast(payload);
    }

    /** The fds of the message, still owned by it; {@link FdSet#take(int) take} the ones you keep. */
    public FdSet fds() {
        return fds;
    }

    /** Moves the fds out: the caller owns the returned set, this message keeps an empty one. */
    FdSet takeFds() {
        FdSet taken = fds;
        fds = FdSet.EMPTY;
        return taken;
    }

    @Override
    public VfioUserMessage retain() {
        super.retain();
        return this;
    }

    @Override
    public VfioUserMessage retain(int increment) {
        super.retain(increment);
        return this;
    }

    @Override
    public VfioUserMessage touch() {
        return touch(null);
    }

    @Override
    public VfioUserMessage touch(Object hint) {
        ByteBuf data = payload == null ? null : payload.data();
        if (data != null) {
            data.touch(hint);
        }
        return this;
    }

    @Override
    protected void deallocate() {
        try {
            ByteBuf data = payload == null ? null : payload.data();
            if (data != null) {
                data.release();
            }
        } finally {
            closeFds(fds);
        }
    }

    /**
     * Closes a set unless it is empty: {@link FdSet#EMPTY} is shared, and closing it would mark it closed for
     * everyone (and lock one monitor from every thread).
     */
    static void closeFds(FdSet fds) {
        if (!fds.isEmpty()) {
            fds.close();
        }
    }

    @Override
    public String toString() {
        return "VfioUserMessage(" + header + ", " + payload + ", " + fds + ")";
    }
}
