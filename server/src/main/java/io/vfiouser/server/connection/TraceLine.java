package io.vfiouser.server.connection;

import io.vfiouser.codec.VfioUserCommand;
import io.vfiouser.codec.VfioUserHeader;
import io.vfiouser.codec.VfioUserInvalidMessage;
import io.vfiouser.codec.VfioUserMessage;
import io.vfiouser.server.device.LogText;
import io.vfiouser.transport.linux.Errno;

/**
 * The one line {@code --trace} logs per decoded message, with every field an operator needs to follow a
 * conversation without a packet capture:
 *
 * <pre>
 * nvme0 &lt;- #12 REGION_WRITE command size=32 payload=16 fds=0 flags=0x0
 * nvme0 -&gt; #12 REGION_WRITE reply size=32 payload=16 fds=0 flags=0x1
 * nvme0 -&gt; #13 DMA_MAP error size=16 payload=0 fds=0 flags=0x21 errno=22 EINVAL
 * nvme0 &lt;- #14 code-99 invalid size=16 payload=0 fds=0 flags=0x0 errno=22 EINVAL: unknown command 99
 * </pre>
 *
 * Direction ({@code <-} from the client, {@code ->} to it), message id, command, kind, {@code msg_size} and the
 * payload size it announces, fds attached, header flags, and the errno of error replies and of messages that
 * could not be decoded (with the reason).
 */
final class TraceLine {
    private TraceLine() {
    }

    static String of(String device, String direction, VfioUserMessage message) {
        VfioUserHeader h = message.header();
        StringBuilder b = start(device, direction, h, kind(h));
        b.append(" fds=").append(message.fds().size());
        flagsAndErrno(b, h, h.isError() ? h.error() : 0);
        return b.toString();
    }

    static String ofInvalid(String device, VfioUserInvalidMessage invalid) {
        VfioUserHeader h = invalid.header();
        StringBuilder b = start(device, "<-", h, "invalid");
        b.append(" fds=").append(invalid.fds().size());
        flagsAndErrno(b, h, invalid.errno());
        return b.append(": ").append(LogText.escape(invalid.reason())).toString();
    }

    private static StringBuilder start(String device, String direction, VfioUserHeader h, String kind) {
        VfioUserCommand command = VfioUserCommand.fromCode(h.command());
        return new StringBuilder(96).append(device).append(' ').append(direction)
                .append(" #").append(h.msgId()).append(' ')
                .append(command != null ? command.name() : "code-" + h.command()).append(' ').append(kind)
                .append(" size=").append(h.messageSize()).append(" payload=").append(h.payloadSize());
    }

    private static String kind(VfioUserHeader h) {
        if (h.isError()) {
            return "error";
        }
        if (h.isReply()) {
            return "reply";
        }
        return h.isNoReply() ? "command(no-reply)" : "command";
    }

    private static void flagsAndErrno(StringBuilder b, VfioUserHeader h, int errno) {
        b.append(" flags=0x").append(Integer.toHexString(h.flags()));
        if (errno != 0) {
            b.append(" errno=").append(errno).append(' ').append(Errno.name(errno));
        }
    }
}
