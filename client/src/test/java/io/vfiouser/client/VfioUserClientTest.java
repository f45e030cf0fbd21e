package io.vfiouser.client;

import static org.assertj.core.api.Assertions.assertThat;

import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.unix.DomainSocketAddress;
import io.vfiouser.codec.DmaLayout;
import io.vfiouser.codec.VfioUserCapabilities;
import io.vfiouser.codec.VfioUserCommand;
import io.vfiouser.codec.VfioUserFrameDecoder;
import io.vfiouser.codec.VfioUserMessage;
import io.vfiouser.codec.VfioUserMessageDecoder;
import io.vfiouser.codec.VfioUserMessageEncoder;
import io.vfiouser.codec.payload.DeviceInfo;
import io.vfiouser.codec.payload.DmaAccess;
import io.vfiouser.codec.payload.VersionPayload;
import io.vfiouser.transport.FdSet;
import io.vfiouser.transport.UnixChannel;
import io.vfiouser.transport.UnixServerChannel;
import io.vfiouser.transport.linux.Errno;
import io.vfiouser.transport.linux.Linux;
import io.vfiouser.transport.testing.FdCount;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The client against a scripted server built from the same codec: negotiation, replies by id, fds on replies,
 * and the server-issued DMA_READ/DMA_WRITE commands answered from the client's guest memory in both layouts.
 */
class VfioUserClientTest {
    @TempDir
    Path dir;
    private EventLoopGroup group;
    private Channel listener;
    private long fdsBefore;
    /** Server side: every message the scripted server received, and its channel. */
    private final BlockingQueue<VfioUserMessage> received = new LinkedBlockingQueue<>();
    private final CompletableFuture<Channel> serverSide = new CompletableFuture<>();

    @BeforeEach
    void startScriptedServer() throws Exception {
        fdsBefore = FdCount.now();
        group = new MultiThreadIoEventLoopGroup(1, EpollIoHandler.newFactory());
        listener = new ServerBootstrap().group(group)
                .channelFactory(() -> new UnixServerChannel())
                .childHandler(new ChannelInitializer<UnixChannel>() {
                    @Override
                    protected void initChannel(UnixChannel ch) {
                        ch.pipeline().addLast(new VfioUserFrameDecoder(
                                        VfioUserFrameDecoder.DEFAULT_MAX_MESSAGE_SIZE, 16),
                                new VfioUserMessageDecoder(), VfioUserMessageEncoder.INSTANCE,
                                new ScriptedServer());
                        serverSide.complete(ch);
                    }
                })
                .bind(new DomainSocketAddress(dir.resolve("s.sock").toString())).sync().channel();
    }

    @AfterEach
    void stop() throws Exception {
        listener.close().sync();
        group.shutdownGracefully(0, 1, TimeUnit.SECONDS).sync();
        VfioUserMessage m;
        while ((m = received.poll()) != null) {
            m.release();
        }
        FdCount.awaitAtMost(fdsBefore);
    }

    /** Answers VERSION and DEVICE_GET_INFO (with an eventfd on the reply); queues everything else. */
    private final class ScriptedServer extends SimpleChannelInboundHandler<VfioUserMessage> {
        ScriptedServer() {
            super(false);
        }

        @Override
        protected void channelRead0(ChannelHandlerContext ctx, VfioUserMessage msg) throws Exception {
            if (msg.command() == VfioUserCommand.VERSION && msg.header().isCommand()) {
                VfioUserCapabilities caps = VfioUserCapabilities.builder().maxMsgFds(8).build();
                ctx.writeAndFlush(VfioUserMessage.reply(msg.header(), VersionPayload.of(0, 0, caps)));
                msg.release();
            } else if (msg.command() == VfioUserCommand.DEVICE_GET_INFO) {
                ctx.writeAndFlush(VfioUserMessage.reply(msg.header(), DeviceInfo.reply(3, 9, 5),
                        FdSet.of(Linux.eventfd(0, 0))));
                msg.release();
            } else {
                received.add(msg);
            }
        }
    }

    @Test
    void negotiatesAndMatchesRepliesById() throws Exception {
        try (VfioUserClient client = VfioUserClient.connect(dir.resolve("s.sock"))) {
            assertThat(client.serverCapabilities().maxMsgFds()).isEqualTo(8);
            CompletableFuture<VfioUserMessage> a = client.send(VfioUserCommand.DEVICE_GET_INFO, DeviceInfo.request());
            CompletableFuture<VfioUserMessage> b = client.send(VfioUserCommand.DEVICE_GET_INFO, DeviceInfo.request());
            VfioUserMessage ra = a.get(20, TimeUnit.SECONDS);
            VfioUserMessage rb = b.get(20, TimeUnit.SECONDS);
            try {
                assertThat(rb.header().msgId()).isEqualTo((ra.header().msgId() + 1) & 0xFFFF);
                assertThat(ra.payload(DeviceInfo.class).numRegions()).isEqualTo(9);
                // The eventfd on the reply is ours now: signal it through its own fd.
                Linux.eventfdWrite(ra.fds().get(0), 1);
                assertThat(Linux.eventfdRead(ra.fds().get(0))).isEqualTo(1);
            } finally {
                ra.release();
                rb.release();
            }
        }
    }

    @Test
    void errorRepliesBecomeExceptionsWithTheirErrno() throws Exception {
        try (VfioUserClient client = VfioUserClient.connect(dir.resolve("s.sock"))) {
            CompletableFuture<VfioUserMessage> call = client.call(VfioUserCommand.DEVICE_RESET, null);
            VfioUserMessage request = received.poll(20, TimeUnit.SECONDS);
            serverSide.get().writeAndFlush(VfioUserMessage.errorReply(request.header(), Errno.EBUSY));
            request.release();
            assertThat(call).failsWithin(20, TimeUnit.SECONDS).withThrowableThat()
                    .havingCause().isInstanceOfSatisfying(VfioUserErrorReplyException.class,
                            e -> assertThat(e.errno()).isEqualTo(Errno.EBUSY));
        }
    }

    @ParameterizedTest
    @EnumSource(DmaLayout.class)
    void answersServerIssuedDmaFromItsGuestMemory(DmaLayout layout) throws Exception {
        ClientOptions options = ClientOptions.DEFAULT.withDmaLayout(layout);
        try (GuestMemory ram = GuestMemory.allocate(0x10000, 0x4000);
             VfioUserClient client = VfioUserClient.connect(dir.resolve("s.sock"), options)) {
            client.serveDma(ram);
            Channel server = serverSide.get(20, TimeUnit.SECONDS);
            server.attr(DmaLayout.ATTRIBUTE).set(layout);
            MemorySegment mem = ram.segment();
            for (int i = 0; i < 64; i++) {
                mem.set(ValueLayout.JAVA_BYTE, 0x100 + i, (byte) (i * 3));
            }

            // DMA_WRITE: the server puts 32 bytes into guest memory.
            ByteBuf data = Unpooled.directBuffer(32);
            for (int i = 0; i < 32; i++) {
                data.writeByte(0xA0 + i);
            }
            server.writeAndFlush(VfioUserMessage.command(1, VfioUserCommand.DMA_WRITE,
                    DmaAccess.withData(0x12000, data)));
            VfioUserMessage writeReply = received.poll(20, TimeUnit.SECONDS);
            try {
                assertThat(writeReply.header().isError()).isFalse();
                assertThat(writeReply.header().msgId()).isEqualTo(1);
            } finally {
                writeReply.release();
            }
            for (int i = 0; i < 32; i++) {
                assertThat(mem.get(ValueLayout.JAVA_BYTE, 0x2000 + i)).isEqualTo((byte) (0xA0 + i));
            }

            // DMA_READ: the server reads 64 bytes back.
            server.writeAndFlush(VfioUserMessage.command(2, VfioUserCommand.DMA_READ, DmaAccess.of(0x10100, 64)));
            VfioUserMessage readReply = received.poll(20, TimeUnit.SECONDS);
            try {
                DmaAccess got = readReply.payload(DmaAccess.class);
                assertThat(got.address()).isEqualTo(0x10100);
                assertThat(got.data().readableBytes()).isEqualTo(64);
                for (int i = 0; i < 64; i++) {
                    assertThat(got.data().getByte(got.data().readerIndex() + i)).isEqualTo((byte) (i * 3));
                }
            } finally {
                readReply.release();
            }

            // Outside guest memory: an error reply, and the connection lives on.
            server.writeAndFlush(VfioUserMessage.command(3, VfioUserCommand.DMA_READ, DmaAccess.of(0x90000, 8)));
            VfioUserMessage bad = received.poll(20, TimeUnit.SECONDS);
            try {
                assertThat(bad.header().isError()).isTrue();
                assertThat(bad.header().error()).isEqualTo(Errno.EFAULT);
            } finally {
                bad.release();
            }
            assertThat(client.isOpen()).isTrue();
        }
    }

    @Test
    void pendingCommandsFailWhenTheServerGoesAway() throws Exception {
        try (VfioUserClient client = VfioUserClient.connect(dir.resolve("s.sock"))) {
            CompletableFuture<VfioUserMessage> reply = client.send(VfioUserCommand.DEVICE_RESET, null);
            VfioUserMessage request = received.poll(20, TimeUnit.SECONDS);
            request.release();
            serverSide.get().close();
            assertThat(reply).failsWithin(20, TimeUnit.SECONDS);
            client.closeFuture().get(20, TimeUnit.SECONDS);
        }
    }
}
