package io.vfiouser.it;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.fail;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import io.netty.buffer.Unpooled;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.util.ReferenceCountUtil;
import io.vfiouser.codec.VfioUserMessage;
import io.vfiouser.codec.VfioUserMessageDecoder;
import io.vfiouser.examples.nulldev.NullDevice;
import io.vfiouser.it.isolation.Conditions;
import io.vfiouser.it.isolation.RawClient;
import io.vfiouser.it.isolation.RawPeer;
import io.vfiouser.server.HostedDevice;
import io.vfiouser.server.ServerOptions;
import io.vfiouser.server.VfioUserServer;
import io.vfiouser.transport.linux.ErrnoException;
import io.vfiouser.transport.testing.FdCount;
import io.vfiouser.transport.testing.LeakDetection;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;

/**
 * Fuzzes the server's dispatcher (the session's checks of every command, in every state, and the device behind
 * them) the way a client reaches it: through a real socket of a real server, one {@link VfioUserServer} with a
 * single event-loop thread hosting the example {@code null} device for the whole class. Per input a bare
 * {@link RawPeer} connects, negotiates VERSION, writes the input's frames and then a sentinel DEVICE_GET_INFO,
 * and reads until the sentinel's reply arrives or the server closes the connection, answering the server's own
 * DMA commands with an error so that nothing waits on the peer.
 *
 * <p>Input: frames, each as long as its {@code msg_size}; a {@code msg_size} below 16 or above the server's
 * maximum is a framing fault after which the server closes (the model stops there, and no sentinel is sent); the
 * last frame's {@code msg_size} is cut to the bytes left, fewer than 16 bytes left are dropped. At most 4 KiB,
 * and a REGION_READ asking for more than 4 KiB (up to the null device's 1 MiB BAR) gets its count cut to 12 bits,
 * so that a replay stays fast.
 *
 * <p>Checked: (1) a framing fault closes the connection, and a connection the server leaves open has answered
 * the sentinel, last; (2) the replies are, in order, for frames that asked for one (the msg_id and command of a
 * frame that is not a reply and has no NO_REPLY bit, the sentinel last), at most one each; (3) every reply decodes
 * with the codec's decoder (no {@code VfioUserInvalidMessage}), and an error reply is a header with a positive
 * errno; (4) once the peer has gone, the device has no client, and no fd and (at the end) no buffer leaked. The
 * server closing on an odd frame it is documented to close on (a second VERSION, say) is not modelled: the
 * weaker check (1) holds instead.
 */
class DispatcherFuzzTest {
    private static final int HEADER = 16;
    private static final int MAX_INPUT = 4096;
    private static final int DEVICE_GET_INFO = 4;
    private static final int REGION_READ = 9;
    private static final int DMA_READ = 11;
    private static final int DMA_WRITE = 12;
    private static final int TYPE_MASK = 0x0F;
    private static final int REPLY = 1;
    private static final int NO_REPLY = 0x10;
    private static final int ERROR = 0x20;
    private static final int EFAULT = 14;

    private static Path dir;
    private static VfioUserServer server;
    private static HostedDevice device;
    /** The process's fds after the first input (which opens what the process then keeps for good); -1 before. */
    private static long fdsBefore = -1;

    @BeforeAll
    static void start() throws Exception {
        RawClient.loadNio();
        dir = Files.createTempDirectory("vfio-user-dispatcher-fuzz");
        server = VfioUserServer.builder().threads(1).build();
        device = server.serve(NullDevice.description("fuzzed"), new NullDevice(), dir.resolve("null.sock"));
        // One whole session first, so that what the process opens once for good is in the baseline; a per-session
        // leak still shows on every input.
        Model warmUp = Model.of(new byte[0], ServerOptions.DEFAULT.maxMessageSize());
        try (RawPeer peer = RawPeer.connect(dir.resolve("null.sock"))) {
            peer.sendVersion(0);
            assertThat(peer.awaitReply()).as("VERSION's reply").isEqualTo(0L);
            peer.write(warmUp.sentinel());
            assertThat(peer.awaitReply()).as("DEVICE_GET_INFO's reply").isEqualTo(warmUp.sentinelId);
        }
        Conditions.await("the device has no client", () -> !device.hasClient());
    }

    @AfterAll
    static void stop() throws Exception {
        server.close();
        Files.deleteIfExists(dir.resolve("null.sock"));
        Files.deleteIfExists(dir);
        LeakDetection.assertNoLeaks();
    }

    @FuzzTest(maxDuration = "10m")
    void commands(FuzzedDataProvider data) throws Exception {
        byte[] input = data.consumeRemainingAsBytes();
        Model model = Model.of(Arrays.copyOf(input, Math.min(input.length, MAX_INPUT)),
                ServerOptions.DEFAULT.maxMessageSize());
        List<byte[]> replies = new ArrayList<>();
        boolean closed;
        try (RawPeer peer = RawPeer.connect(dir.resolve("null.sock"))) {
            peer.sendVersion(0);
            assertThat(peer.awaitReply()).as("VERSION's reply").isEqualTo(0L);
            closed = !write(peer, model.bytes);
            if (!model.fault && !closed) {
                closed = !write(peer, model.sentinel());
            }
            closed |= read(peer, model, replies);
        }
        model.check(replies, closed);
        Conditions.await("the device has no client", () -> !device.hasClient());
        if (fdsBefore < 0) {
            fdsBefore = FdCount.now();
        } else {
            FdCount.awaitAtMost(fdsBefore);
        }
    }

    /** Writes {@code bytes}; false if the server has closed the connection already. */
    private static boolean write(RawPeer peer, byte[] bytes) throws InterruptedException {
        try {
            if (bytes.length > 0) {
                peer.write(bytes);
            }
            return true;
        } catch (ErrnoException e) {
            return false; // EPIPE or ECONNRESET: the server closed it (check (1) says whether it may)
        }
    }

    /**
     * Reads the server's frames until the sentinel's reply (when the model expects one) or the end of the stream,
     * answering the server's DMA commands; returns whether the server closed the connection.
     */
    private static boolean read(RawPeer peer, Model model, List<byte[]> replies) throws Exception {
        ByteArrayOutputStream pending = new ByteArrayOutputStream();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(Conditions.DEADLINE_S);
        while (true) {
            pending.writeBytes(peer.take());
            byte[] buffered = pending.toByteArray();
            int at = 0;
            while (buffered.length - at >= HEADER) {
                int size = intAt(buffered, at + 4);
                assertThat(Integer.toUnsignedLong(size)).as("msg_size of a server frame").isGreaterThanOrEqualTo(HEADER)
                        .isLessThanOrEqualTo(ServerOptions.DEFAULT.maxMessageSize());
                if (buffered.length - at < size) {
                    break;
                }
                byte[] frame = Arrays.copyOfRange(buffered, at, at + size);
                at += size;
                int command = shortAt(frame, 2);
                if ((intAt(frame, 8) & TYPE_MASK) != REPLY && (command == DMA_READ || command == DMA_WRITE)) {
                    write(peer, errorReply(frame, EFAULT));
                    continue;
                }
                replies.add(frame);
                if (!model.fault && shortAt(frame, 0) == model.sentinelId && command == DEVICE_GET_INFO) {
                    assertThat(at).as("the sentinel's reply is the last thing the server sent")
                            .isEqualTo(buffered.length);
                    return false;
                }
            }
            pending.reset();
            pending.write(buffered, at, buffered.length - at);
            if (peer.closedByServer()) {
                pending.writeBytes(peer.take());
                if (pending.size() == 0) {
                    return true;
                }
                continue; // bytes that came just before the end: parse them first
            }
            if (System.nanoTime() > deadline) {
                fail("neither the sentinel's reply nor the end of the stream within " + Conditions.DEADLINE_S
                        + " s; frames sent: " + model.frames.size());
            }
            Thread.sleep(1);
        }
    }

    private static byte[] errorReply(byte[] command, int errno) {
        ByteBuffer b = ByteBuffer.allocate(HEADER).order(ByteOrder.LITTLE_ENDIAN);
        b.putShort(0, (short) shortAt(command, 0)).putShort(2, (short) shortAt(command, 2)).putInt(4, HEADER)
                .putInt(8, REPLY | ERROR).putInt(12, errno);
        return b.array();
    }

    private static int shortAt(byte[] b, int at) {
        return (b[at] & 0xFF) | (b[at + 1] & 0xFF) << 8;
    }

    private static int intAt(byte[] b, int at) {
        return ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).getInt(at);
    }

    /** A frame as the model sees it: its header and whether the server may answer it. */
    private record Frame(int msgId, int command, boolean awaitsReply) {
    }

    /** The input's frames as the server must read them (§1.5 framing), and what may come back. */
    private static final class Model {
        final byte[] bytes;
        final List<Frame> frames = new ArrayList<>();
        /** A framing fault ends the frames: the server closes the connection. */
        boolean fault;
        int sentinelId;

        private Model(byte[] bytes) {
            this.bytes = bytes;
        }

        static Model of(byte[] input, int maxMessageSize) {
            int at = 0;
            ByteBuffer b = ByteBuffer.wrap(input).order(ByteOrder.LITTLE_ENDIAN);
            Model model = null;
            List<Frame> frames = new ArrayList<>();
            boolean fault = false;
            while (input.length - at >= HEADER) {
                long size = Integer.toUnsignedLong(b.getInt(at + 4));
                int flags = b.getInt(at + 8);
                int command = Short.toUnsignedInt(b.getShort(at + 2));
                int msgId = Short.toUnsignedInt(b.getShort(at));
                if (size < HEADER || size > maxMessageSize) {
                    // The server may say why in an error reply (unless NO_REPLY), then closes.
                    frames.add(new Frame(msgId, command, (flags & NO_REPLY) == 0));
                    fault = true;
                    at = input.length;
                    break;
                }
                if (size > input.length - at) {
                    size = input.length - at;
                    b.putInt(at + 4, (int) size);
                }
                if (command == REGION_READ && (flags & TYPE_MASK) == 0 && size >= 32) {
                    long count = Integer.toUnsignedLong(b.getInt(at + 28));
                    if (count > 4096 && count <= 1 << 20) {
                        b.putInt(at + 28, (int) (count & 0xFFF));
                    }
                }
                // Every frame without NO_REPLY gets one reply: an unsolicited reply (or any type but a command) gets
                // EINVAL (digest 6.1).
                frames.add(new Frame(msgId, command, (flags & NO_REPLY) == 0));
                at += (int) size;
            }
            model = new Model(Arrays.copyOf(input, at));
            model.frames.addAll(frames);
            model.fault = fault;
            Set<Integer> ids = new HashSet<>();
            frames.forEach(f -> ids.add(f.msgId()));
            int id = 0xBEEF;
            while (ids.contains(id) || id == 0) {
                id = (id + 1) & 0xFFFF;
            }
            model.sentinelId = id;
            if (!fault) {
                model.frames.add(new Frame(id, DEVICE_GET_INFO, true));
            }
            return model;
        }

        /** DEVICE_GET_INFO: a header and argsz = 16, flags, num_regions, num_irqs all 0. */
        byte[] sentinel() {
            return ByteBuffer.allocate(32).order(ByteOrder.LITTLE_ENDIAN).putShort(0, (short) sentinelId)
                    .putShort(2, (short) DEVICE_GET_INFO).putInt(4, 32).putInt(8, 0).putInt(12, 0).putInt(16, 16)
                    .array();
        }

        void check(List<byte[]> replies, boolean closed) {
            if (fault) {
                assertThat(closed).as("the server closed the connection on a framing fault").isTrue();
            }
            if (!closed) {
                assertThat(replies).as("replies of a connection left open").isNotEmpty();
                byte[] last = replies.get(replies.size() - 1);
                assertThat(shortAt(last, 0)).as("the last reply is the sentinel's").isEqualTo(sentinelId);
            }
            int next = 0;
            for (byte[] reply : replies) {
                int msgId = shortAt(reply, 0);
                int command = shortAt(reply, 2);
                int flags = intAt(reply, 8);
                assertThat(flags & TYPE_MASK).as("type of a server frame %d/%d", msgId, command).isEqualTo(REPLY);
                while (next < frames.size() && !(frames.get(next).awaitsReply()
                        && frames.get(next).msgId() == msgId && frames.get(next).command() == command)) {
                    next++;
                }
                assertThat(next).as("reply %d/%d answers a later frame that awaits a reply, in order; frames %s",
                        msgId, command, frames).isLessThan(frames.size());
                next++;
                if ((flags & ERROR) != 0) {
                    assertThat(reply.length).as("an error reply is a header").isEqualTo(HEADER);
                    assertThat(intAt(reply, 12)).as("errno of an error reply").isPositive();
                } else {
                    decodes(reply);
                }
            }
        }

        private static void decodes(byte[] reply) {
            EmbeddedChannel channel = new EmbeddedChannel(new VfioUserMessageDecoder(ServerOptions.DEFAULT.dmaLayout()));
            try {
                channel.writeInbound(Unpooled.wrappedBuffer(reply));
                Object decoded = channel.readInbound();
                try {
                    assertThat(decoded).as("a reply decodes").isInstanceOf(VfioUserMessage.class);
                } finally {
                    ReferenceCountUtil.release(decoded);
                }
            } finally {
                channel.finishAndReleaseAll();
            }
        }
    }
}
