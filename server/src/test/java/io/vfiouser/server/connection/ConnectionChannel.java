package io.vfiouser.server.connection;

import static org.assertj.core.api.Assertions.assertThat;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.buffer.Unpooled;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.MockTicker;
import io.netty.util.concurrent.Ticker;
import io.vfiouser.codec.VfioUserCommand;
import io.vfiouser.codec.VfioUserFrameDecoder;
import io.vfiouser.codec.VfioUserHeader;
import io.vfiouser.codec.VfioUserMessageDecoder;
import io.vfiouser.codec.VfioUserMessageEncoder;
import io.vfiouser.device.DeviceDescription;
import io.vfiouser.device.VfioUserDevice;
import io.vfiouser.server.ServerOptions;
import io.vfiouser.server.device.DeviceRuntime;
import io.vfiouser.transport.BytesWithFds;
import io.vfiouser.transport.FdSet;
import io.vfiouser.transport.ReceivedFds;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.CompletableFuture;

/**
 * One connection on an {@code EmbeddedChannel}: the production pipeline (frame decoder with the handler as its
 * shortcut, message decoder, encoder, {@link ConnectionHandler}) over a real {@link Connection} and
 * {@link DeviceRuntime}, without a socket. Frames go in as bytes, cut into odd-sized chunks (1 to 13 bytes, so
 * every header and payload is split somewhere), with their fds announced as {@code UnixChannel} does; replies come
 * out as the bytes the encoder wrote, cut back into frames.
 *
 * <p>Tests end with {@link #close()}, which closes the channel (the connection detaches, the device is reset as
 * after a real client), releases everything left with {@code finishAndReleaseAll()} and checks nothing was left
 * unread.
 */
final class ConnectionChannel implements AutoCloseable {
    /** QEMU's VERSION request (digest 3.1), msg id 0. */
    static final String QEMU_VERSION_JSON = "{\"capabilities\":{\"max_msg_fds\":16,\"max_data_xfer_size\":1048576,"
            + "\"migration\":{\"pgsize\":4096,\"max_bitmap_size\":134217728}}}";

    final EmbeddedChannel channel;
    final DeviceRuntime runtime;
    final Connection connection;
    final ConnectionHandler handler;
    final PolledWatchers watchers = new PolledWatchers();
    /** The clock of the channel's event loop: it stands still unless {@link #advanceTime} moves it. */
    private final MockTicker clock = Ticker.newMockTicker();
    private final ByteArrayOutputStream outbound = new ByteArrayOutputStream();
    /** The fds of each BytesWithFds written, by the offset in {@link #outbound} where its frame begins. */
    private final java.util.Map<Integer, int[]> outboundFds = new java.util.HashMap<>();
    private long streamOffset;
    private int chunkStep;
    private boolean closed;

    private ConnectionChannel(DeviceRuntime runtime, ServerOptions options) throws Exception {
        this.runtime = runtime;
        // The channel's clock moves only when a test moves it (advanceTime): a slow test never meets the
        // negotiation deadline by accident, and a test of the deadline is exact to the nanosecond.
        this.channel = EmbeddedChannel.builder().register(false).hasDisconnect(false).ticker(clock).build();
        // As HostedDevice does: the encoder writes the server's DMA requests in the configured layout.
        channel.attr(io.vfiouser.codec.DmaLayout.ATTRIBUTE).set(options.dmaLayout());
        this.connection = new Connection(runtime, options, channel, watchers,
                options.limits().clientFdLimit(Long.MAX_VALUE));
        this.handler = new ConnectionHandler(connection, CompletableFuture.completedFuture(null));
        channel.pipeline().addLast(new VfioUserFrameDecoder(options.maxMessageSize(), options.maxMsgFds(), handler),
                new VfioUserMessageDecoder(options.dmaLayout()), VfioUserMessageEncoder.INSTANCE, handler);
        channel.register();
    }

    static ConnectionChannel open(DeviceDescription description, VfioUserDevice device) throws Exception {
        return open(description, device, ServerOptions.DEFAULT);
    }

    static ConnectionChannel open(DeviceDescription description, VfioUserDevice device, ServerOptions options)
            throws Exception {
        return new ConnectionChannel(new DeviceRuntime(description, device, options.limits(), null), options);
    }

    /** Opens and negotiates with QEMU's VERSION; the reply is checked and dropped. */
    static ConnectionChannel negotiated(DeviceDescription description, VfioUserDevice device) throws Exception {
        ConnectionChannel c = open(description, device);
        c.negotiate();
        return c;
    }

    /** Opens with {@code options} (e.g. small {@code ConnectionLimits}) and negotiates with QEMU's VERSION. */
    static ConnectionChannel negotiated(DeviceDescription description, VfioUserDevice device, ServerOptions options)
            throws Exception {
        ConnectionChannel c = open(description, device, options);
        c.negotiate();
        return c;
    }

    void negotiate() {
        send(command(0, VfioUserCommand.VERSION, 0, version(0, 2, QEMU_VERSION_JSON)));
        Reply r = reply();
        assertThat(r.isError()).as("VERSION refused: %s", r).isFalse();
        assertThat(r.command()).isEqualTo(VfioUserCommand.VERSION.code());
    }

    // ------------------------------------------------------------------------------------------- building

    /** A VERSION payload: major, minor, the JSON and its NUL. */
    static byte[] version(int major, int minor, String json) {
        byte[] text = json.getBytes(StandardCharsets.UTF_8);
        return ByteBuffer.allocate(4 + text.length + 1).order(ByteOrder.LITTLE_ENDIAN)
                .putShort((short) major).putShort((short) minor).put(text).put((byte) 0).array();
    }

    /** A command frame: the 16-byte header (size computed) and {@code payload}. */
    static byte[] command(int msgId, VfioUserCommand command, int flags, byte[] payload) {
        return frame(msgId, command.code(), flags, 0, payload);
    }

    static byte[] command(int msgId, VfioUserCommand command, byte[] payload) {
        return command(msgId, command, 0, payload);
    }

    /** A command frame whose payload is given in hex (spaces ignored). */
    static byte[] command(int msgId, VfioUserCommand command, String payloadHex) {
        return command(msgId, command, 0, hex(payloadHex));
    }

    static byte[] frame(int msgId, int command, int flags, int error, byte[] payload) {
        return ByteBuffer.allocate(VfioUserHeader.HEADER_SIZE + payload.length).order(ByteOrder.LITTLE_ENDIAN)
                .putShort((short) msgId).putShort((short) command).putInt(VfioUserHeader.HEADER_SIZE + payload.length)
                .putInt(flags).putInt(error).put(payload).array();
    }

    static byte[] hex(String hex) {
        return HexFormat.of().parseHex(hex.replace(" ", ""));
    }

    /** Little-endian bytes of the given fields: {@code le(4, 7, 8, 0x1000L)} is a u32 7 then a u64 0x1000. */
    static byte[] le(Number... widthThenValue) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (int i = 0; i < widthThenValue.length; i += 2) {
            int width = widthThenValue[i].intValue();
            long v = widthThenValue[i + 1].longValue();
            for (int b = 0; b < width; b++) {
                out.write((int) (v >>> (8 * b)));
            }
        }
        return out.toByteArray();
    }

    static byte[] concat(byte[]... parts) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (byte[] p : parts) {
            out.writeBytes(p);
        }
        return out.toByteArray();
    }

    // ------------------------------------------------------------------------------------------- sending

    /** Sends one frame in odd-sized chunks; runs what the event loop has pending. */
    void send(byte[] frame) {
        send(frame, new int[0]);
    }

    /**
     * Sends one frame with {@code fds} as a well-behaved client does (one sendmsg starting at the frame's header:
     * the fds come with the first chunk); the connection owns the fds from here on.
     */
    void send(byte[] frame, int... fds) {
        sendStream(frame, fds);
    }

    /** Sends several frames as one stream (one burst, cut across frame boundaries). */
    void sendAll(byte[]... frames) {
        sendStream(concat(frames), new int[0]);
    }

    /**
     * Sends a large frame in reads of about 64 KiB, as a socket delivers one (the odd small chunks of
     * {@link #send} would take minutes for a megabyte under paranoid leak detection).
     */
    void sendLarge(byte[] frame) {
        sendStream(frame, new int[0], 1 << 16);
    }

    private void sendStream(byte[] bytes, int[] fds) {
        sendStream(bytes, fds, 0);
    }

    /** {@code chunkSize} 0: odd chunks of 1 to 13 bytes; else chunks of {@code chunkSize} bytes less 0 to 12. */
    private void sendStream(byte[] bytes, int[] fds, int chunkSize) {
        int at = 0;
        boolean first = true;
        while (at < bytes.length) {
            if (!channel.isOpen()) {
                // A closed connection reads nothing more, as a closed socket would not: the rest of the stream is
                // dropped, and fds never delivered are closed (the kernel closes those of an unread socket).
                if (first) {
                    for (int fd : fds) {
                        FdSet.closeQuietly(fd);
                    }
                }
                break;
            }
            int step = (chunkStep++ * 5) % 13;
            int next = Math.min(bytes.length, at + (chunkSize == 0 ? 1 + step : chunkSize - step));
            if (first && fds.length > 0) {
                channel.pipeline().fireChannelRead(new ReceivedFds(FdSet.of(fds), streamOffset + at,
                        streamOffset + next - 1));
            }
            first = false;
            ByteBuf chunk = channel.alloc().buffer(next - at);
            chunk.writeBytes(bytes, at, next - at);
            channel.pipeline().fireChannelRead(chunk);
            channel.pipeline().fireChannelReadComplete();
            at = next;
        }
        streamOffset += bytes.length;
        runTasks();
        channel.checkException();
    }

    /** Runs the event loop's pending tasks (completions handed back to the loop, scheduled tasks due). */
    void runTasks() {
        channel.runPendingTasks();
        channel.runScheduledPendingTasks();
        channel.runPendingTasks();
    }

    /**
     * Moves the channel's clock on by {@code by} and runs what became due (the negotiation deadline, for one): no
     * test waits for real time.
     */
    void advanceTime(java.time.Duration by) {
        clock.advance(by.toNanos(), java.util.concurrent.TimeUnit.NANOSECONDS);
        runTasks();
    }

    // ------------------------------------------------------------------------------------------- replies

    /** One frame the connection wrote: its bytes and the fds that went with it (now the test's to close). */
    record Reply(byte[] bytes, int[] fds) {
        ByteBuffer le() {
            return ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        }

        int msgId() {
            return le().getShort(0) & 0xFFFF;
        }

        int command() {
            return le().getShort(2) & 0xFFFF;
        }

        int size() {
            return le().getInt(4);
        }

        int flags() {
            return le().getInt(8);
        }

        int error() {
            return le().getInt(12);
        }

        boolean isError() {
            return (flags() & VfioUserHeader.ERROR) != 0;
        }

        boolean isReply() {
            return (flags() & VfioUserHeader.TYPE_MASK) == VfioUserHeader.REPLY;
        }

        /** The payload after the header. */
        byte[] payload() {
            return java.util.Arrays.copyOfRange(bytes, VfioUserHeader.HEADER_SIZE, bytes.length);
        }

        void closeFds() {
            for (int fd : fds) {
                FdSet.closeQuietly(fd);
            }
        }

        @Override
        public String toString() {
            return ByteBufUtil.hexDump(bytes) + (fds.length > 0 ? " fds=" + fds.length : "");
        }
    }

    /** Every complete frame written and flushed so far, in order. */
    List<Reply> replies() {
        runTasks();
        for (Object o; (o = channel.readOutbound()) != null; ) {
            try {
                if (o instanceof BytesWithFds b) {
                    int[] fds = new int[b.fds().size()];
                    for (int i = 0; i < fds.length; i++) {
                        fds[i] = b.fds().take(i);
                    }
                    outboundFds.put(outbound.size(), fds);
                    outbound.writeBytes(ByteBufUtil.getBytes(b.content()));
                } else {
                    outbound.writeBytes(ByteBufUtil.getBytes((ByteBuf) o));
                }
            } finally {
                ReferenceCountUtil.release(o);
            }
        }
        List<Reply> out = new ArrayList<>();
        byte[] all = outbound.toByteArray();
        int at = 0;
        while (all.length - at >= VfioUserHeader.HEADER_SIZE) {
            int size = ByteBuffer.wrap(all, at + 4, 4).order(ByteOrder.LITTLE_ENDIAN).getInt();
            if (all.length - at < size) {
                break;
            }
            int[] fds = outboundFds.remove(at);
            out.add(new Reply(java.util.Arrays.copyOfRange(all, at, at + size), fds != null ? fds : new int[0]));
            at += size;
        }
        // The fds of a frame not complete yet stay with it, at its offset in what is left.
        java.util.Map<Integer, int[]> left = new java.util.HashMap<>();
        for (var e : outboundFds.entrySet()) {
            left.put(e.getKey() - at, e.getValue());
        }
        outboundFds.clear();
        outboundFds.putAll(left);
        outbound.reset();
        outbound.write(all, at, all.length - at);
        return out;
    }

    /** Exactly one reply; fails otherwise. */
    Reply reply() {
        List<Reply> r = replies();
        assertThat(r).as("replies").hasSize(1);
        return r.get(0);
    }

    /** Asserts that nothing was written. */
    void assertNoReply() {
        assertThat(replies()).as("replies").isEmpty();
    }

    /** Asserts a header-only error reply to {@code msgId} with {@code errno}. */
    Reply assertError(int msgId, VfioUserCommand command, int errno) {
        Reply r = reply();
        assertThat(r.msgId()).as("msg id").isEqualTo(msgId);
        assertThat(r.command()).as("command").isEqualTo(command.code());
        assertThat(r.isError()).as("error flag of %s", r).isTrue();
        assertThat(r.error()).as("errno").isEqualTo(errno);
        assertThat(r.size()).as("header only").isEqualTo(VfioUserHeader.HEADER_SIZE);
        return r;
    }

    /** Asserts a successful reply to {@code msgId} and returns it. */
    Reply assertOk(int msgId, VfioUserCommand command) {
        Reply r = reply();
        assertThat(r.msgId()).as("msg id").isEqualTo(msgId);
        assertThat(r.command()).as("command").isEqualTo(command.code());
        assertThat(r.isReply()).as("reply").isTrue();
        assertThat(r.isError()).as("error of %s (errno %d)", r, r.error()).isFalse();
        return r;
    }

    // ------------------------------------------------------------------------------------------- closing

    /** The channel is still open (the connection did not close it). */
    boolean isOpen() {
        return channel.isOpen();
    }

    /**
     * The client leaves: the channel closes and the teardown starts, but nothing is released or checked yet, so a
     * test can watch a teardown that waits for the device (a held quiesce or reset); {@link #close()} follows.
     */
    void leave() {
        channel.close();
        runTasks();
    }

    /**
     * Closes the channel as a client leaving does, runs the teardown, releases everything left and checks that no
     * frame was left unread by the test.
     */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        List<Reply> left = replies();
        channel.close();
        runTasks();
        boolean more = channel.finishAndReleaseAll();
        for (Reply r : left) {
            r.closeFds();
        }
        List<int[]> partial = List.copyOf(outboundFds.values());
        outboundFds.clear();
        for (int[] fds : partial) {
            new Reply(new byte[0], fds).closeFds();
        }
        assertThat(handler.teardown()).as("teardown").isDone();
        runtime.close();
        assertThat(left).as("replies the test did not read").isEmpty();
        assertThat(more).as("messages left in the channel").isFalse();
        assertThat(partial).as("fds of a reply written only in part").isEmpty();
    }
}
