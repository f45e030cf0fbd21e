package io.vfiouser.server;

import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.util.ReferenceCountUtil;
import io.vfiouser.codec.VfioUserCapabilities;
import io.vfiouser.codec.VfioUserCommand;
import io.vfiouser.codec.VfioUserFramingException;
import io.vfiouser.codec.VfioUserHeader;
import io.vfiouser.codec.VfioUserInvalidMessage;
import io.vfiouser.codec.VfioUserMessage;
import io.vfiouser.codec.VfioUserProtocolException;
import io.vfiouser.codec.message.VersionPayload;
import io.vfiouser.device.DeviceDescription;
import io.vfiouser.transport.linux.Errno;
import java.io.IOException;
import org.apache.logging.log4j.Logger;

/**
 * One client's conversation with one device: negotiation, then commands in arrival order.
 *
 * <p>Every inbound message is released here, which closes any fd nobody took. Errors become header-only error
 * replies with the errno of the digest, never a reply to a NO_REPLY command; where the stream cannot be trusted
 * any more (framing lost, fds out of place, a bad first message) the connection is closed.
 */
final class VfioUserSession extends ChannelInboundHandlerAdapter {
    /** The newest protocol minor version the server speaks; a client gets {@code min(its minor, ours)}. */
    static final int OUR_MINOR = 2;

    private enum State { AWAITING_VERSION, NEGOTIATED }

    private final DeviceDescription device;
    private final ServerOptions options;
    private final Logger log;
    private State state = State.AWAITING_VERSION;
    private VfioUserCapabilities client;

    VfioUserSession(DeviceDescription device, ServerOptions options, Logger log) {
        this.device = device;
        this.options = options;
        this.log = log;
    }

    /** What the client announced in VERSION, or null before negotiation. */
    VfioUserCapabilities clientCapabilities() {
        return client;
    }

    @Override
    public void channelActive(ChannelHandlerContext ctx) throws Exception {
        log.info("{}: client attached", device.name());
        super.channelActive(ctx);
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) throws Exception {
        log.info("{}: client detached", device.name());
        super.channelInactive(ctx);
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
        try {
            if (msg instanceof VfioUserMessage message) {
                trace("<-", message);
                handle(ctx, message);
            } else if (msg instanceof VfioUserInvalidMessage invalid) {
                log.debug("{}: invalid message {}: {}", device.name(), invalid.header(), invalid.reason());
                fail(ctx, invalid.header(), invalid.errno(), state == State.AWAITING_VERSION);
            } else {
                log.warn("{}: unexpected {} in the pipeline", device.name(), msg.getClass().getSimpleName());
            }
        } finally {
            ReferenceCountUtil.release(msg);
        }
    }

    private void handle(ChannelHandlerContext ctx, VfioUserMessage message) {
        VfioUserHeader header = message.header();
        if (!header.isCommand()) {
            // No server-issued command is outstanding, so any reply from the client is unsolicited.
            fail(ctx, header, Errno.EINVAL, state == State.AWAITING_VERSION);
            return;
        }
        if (state == State.AWAITING_VERSION) {
            negotiate(ctx, message);
            return;
        }
        VfioUserCommand command = message.command();
        if (command == VfioUserCommand.VERSION) {
            fail(ctx, header, Errno.EINVAL, false);
            return;
        }
        // The commands after negotiation are the next step; until then they are refused cleanly.
        fail(ctx, header, Errno.ENOSYS, false);
    }

    private void negotiate(ChannelHandlerContext ctx, VfioUserMessage message) {
        VfioUserHeader header = message.header();
        if (message.command() != VfioUserCommand.VERSION) {
            log.warn("{}: first message was {}, not VERSION", device.name(), header);
            fail(ctx, header, Errno.EINVAL, true);
            return;
        }
        if (!message.fds().isEmpty()) {
            log.warn("{}: VERSION carried {} fds; closing", device.name(), message.fds().size());
            ctx.close();
            return;
        }
        VersionPayload version = message.payload(VersionPayload.class);
        if (version.major() != 0) {
            log.warn("{}: client speaks major version {}", device.name(), version.major());
            fail(ctx, header, Errno.EINVAL, true);
            return;
        }
        try {
            client = VfioUserCapabilities.parse(version.json(), VfioUserCapabilities.SPEC_DEFAULT_MAX_MSG_FDS);
        } catch (VfioUserProtocolException e) {
            log.warn("{}: bad VERSION capabilities: {}", device.name(), e.getMessage());
            fail(ctx, header, e.errno(), true);
            return;
        }
        int minor = Math.min(version.minor(), OUR_MINOR);
        VersionPayload reply = VersionPayload.of(0, minor, serverCapabilities(header.messageSize()));
        state = State.NEGOTIATED;
        log.info("{}: negotiated version 0.{} with {}", device.name(), minor, client);
        write(ctx, VfioUserMessage.reply(header, reply));
    }

    /**
     * What the server announces. QEMU reads the VERSION reply into the buffer of its own request, so the reply
     * must not be longer than the request: when the full set does not fit, only the essential keys are sent.
     */
    private VfioUserCapabilities serverCapabilities(long requestSize) {
        VfioUserCapabilities full = VfioUserCapabilities.builder()
                .maxMsgFds(options.maxMsgFds())
                .maxDataXferSize(options.maxDataTransferSize())
                .pgsizes(VfioUserCapabilities.DEFAULT_PGSIZES)
                .maxDmaMaps(VfioUserCapabilities.DEFAULT_MAX_DMA_MAPS)
                .build();
        if (replySize(full) <= requestSize) {
            return full;
        }
        return VfioUserCapabilities.builder()
                .maxMsgFds(options.maxMsgFds())
                .maxDataXferSize(options.maxDataTransferSize())
                .build();
    }

    private static long replySize(VfioUserCapabilities caps) {
        return VfioUserHeader.HEADER_SIZE + VersionPayload.of(0, 0, caps).encodedSize();
    }

    /**
     * Answers {@code request} with a header-only error reply unless it carries NO_REPLY (as libvfio-user does, an
     * unsolicited reply or a bad message type is answered too); closes the connection after the reply has gone
     * out when {@code close} is set.
     */
    private void fail(ChannelHandlerContext ctx, VfioUserHeader request, int errno, boolean close) {
        if (!request.isNoReply()) {
            VfioUserMessage reply = VfioUserMessage.errorReply(request, errno);
            trace("->", reply);
            if (close) {
                ctx.writeAndFlush(reply).addListener(ChannelFutureListener.CLOSE);
            } else {
                ctx.writeAndFlush(reply);
            }
        } else if (close) {
            ctx.close();
        }
    }

    private void write(ChannelHandlerContext ctx, VfioUserMessage reply) {
        trace("->", reply);
        ctx.writeAndFlush(reply);
    }

    private void trace(String direction, VfioUserMessage message) {
        if (log.isTraceEnabled()) {
            log.trace("{} {} {}", device.name(), direction, message);
        }
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
        if (cause instanceof VfioUserFramingException framing) {
            // The frame decoder closes the stream right after this; the reply is a best effort to say why.
            log.warn("{}: closing the connection: {}", device.name(), framing.getMessage());
            VfioUserMessage reply = VfioUserMessage.errorReply(framing.msgId(), framing.command(), Errno.EINVAL);
            ctx.writeAndFlush(reply).addListener(ChannelFutureListener.CLOSE);
            return;
        }
        if (cause instanceof IOException) {
            log.warn("{}: closing the connection: {}", device.name(), cause.getMessage());
        } else {
            log.warn("{}: closing the connection", device.name(), cause);
        }
        ctx.close();
    }
}
