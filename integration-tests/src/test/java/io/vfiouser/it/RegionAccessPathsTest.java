package io.vfiouser.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.buffer.Unpooled;
import io.vfiouser.client.VfioUserClient;
import io.vfiouser.codec.VfioUserCommand;
import io.vfiouser.codec.VfioUserHeader;
import io.vfiouser.codec.VfioUserMessage;
import io.vfiouser.codec.payload.RegionAccess;
import io.vfiouser.device.VfioUserDevice;
import io.vfiouser.examples.nulldev.NullDevice;
import io.vfiouser.transport.FdSet;
import io.vfiouser.transport.linux.Errno;
import io.vfiouser.transport.linux.Linux;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.apache.logging.log4j.Level;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.core.config.Configurator;
import org.junit.jupiter.api.Test;

/**
 * Small device register accesses take a short path through the server (straight from the frame to the device and
 * back, while nothing else is queued); everything else takes the general path. These tests pin down that the two
 * paths cannot be told apart by a client: same bytes, same errnos, same order, NO_REPLY never answered, including
 * devices that answer later, fail, throw, return nothing or play with their buffer.
 */
class RegionAccessPathsTest {
    private static final int BAR0 = 0;

    /** Register-file device on the null device's description, with a few misbehaving registers. */
    static final class ScriptedDevice implements VfioUserDevice {
        static final long LATER = 0x100;     // read: completes when the test says so
        static final long FAILS = 0x108;     // read and write: a failed future (ENOTSUP)
        static final long THROWS = 0x110;    // read and write: throws IllegalStateException (EIO)
        static final long NOTHING = 0x118;   // read: returns null (EIO)
        static final long BIG_ENDIAN = 0x120; // read: switches the buffer to big-endian and puts an int

        final ByteBuffer registers = ByteBuffer.allocate(4096).order(ByteOrder.LITTLE_ENDIAN);
        final List<String> log = new CopyOnWriteArrayList<>();
        final LinkedBlockingQueue<CompletableFuture<Void>> later = new LinkedBlockingQueue<>();
        final List<ByteOrder> ordersSeen = new CopyOnWriteArrayList<>();

        @Override
        public CompletableFuture<Void> regionRead(int region, long offset, ByteBuffer dst) {
            log.add("read " + Long.toHexString(offset));
            ordersSeen.add(dst.order());
            if (offset == LATER) {
                CompletableFuture<Void> f = new CompletableFuture<>();
                ByteBuffer target = dst;
                later.add(f);
                return f.thenRun(() -> {
                    target.putInt(target.position(), 0x1a7e1a7e);
                    target.position(target.limit());
                    log.add("later done");
                });
            }
            if (offset == FAILS) {
                return CompletableFuture.failedFuture(new UnsupportedOperationException("no"));
            }
            if (offset == THROWS) {
                throw new IllegalStateException("device bug");
            }
            if (offset == NOTHING) {
                return null;
            }
            if (offset == BIG_ENDIAN) {
                dst.order(ByteOrder.BIG_ENDIAN).putInt(dst.position(), 0x01020304);
                dst.position(dst.limit());
                return DONE;
            }
            for (int i = 0; dst.hasRemaining(); i++) {
                dst.put(registers.get((int) offset + i));
            }
            return DONE;
        }

        @Override
        public CompletableFuture<Void> regionWrite(int region, long offset, ByteBuffer src) {
            log.add("write " + Long.toHexString(offset));
            ordersSeen.add(src.order());
            if (offset == FAILS) {
                return CompletableFuture.failedFuture(new UnsupportedOperationException("no"));
            }
            if (offset == THROWS) {
                throw new IllegalStateException("device bug");
            }
            assertThat(src.isReadOnly()).isTrue();
            for (int i = 0; src.hasRemaining(); i++) {
                registers.put((int) offset + i, src.get());
            }
            return DONE;
        }
    }

    @Test
    void aDeviceThatAnswersLaterHoldsBackEveryCommandBehindIt() throws Exception {
        ScriptedDevice device = new ScriptedDevice();
        try (ServerFixture fixture = new ServerFixture(NullDevice.description("scripted"), device)) {
            VfioUserClient client = fixture.client();
            List<String> replies = new CopyOnWriteArrayList<>();
            CompletableFuture<VfioUserMessage> a = client.send(VfioUserCommand.REGION_READ,
                    RegionAccess.inRegion(BAR0).atOffset(ScriptedDevice.LATER).count(4));
            a.thenRun(() -> replies.add("a"));
            CompletableFuture<Void> pending = device.later.poll(Wire.TIMEOUT_S, TimeUnit.SECONDS);
            assertThat(pending).as("the device saw the first read").isNotNull();

            CompletableFuture<VfioUserMessage> b = client.send(VfioUserCommand.REGION_WRITE,
                    RegionAccess.inRegion(BAR0).atOffset(0x10)
                            .data(Unpooled.copyInt(Integer.reverseBytes(0xb0b0b0b0))));
            b.thenRun(() -> replies.add("b"));
            CompletableFuture<VfioUserMessage> c = client.send(VfioUserCommand.REGION_READ,
                    RegionAccess.inRegion(BAR0).atOffset(0x10).count(4));
            c.thenRun(() -> replies.add("c"));
            // Once this NO_REPLY write is on the socket, so are b and c before it.
            client.sendNoReply(VfioUserCommand.REGION_WRITE,
                    RegionAccess.inRegion(BAR0).atOffset(0x20)
                            .data(Unpooled.copyInt(7))).get(Wire.TIMEOUT_S, TimeUnit.SECONDS);
            assertThat(device.log).as("nothing behind the unfinished read reaches the device")
                    .containsExactly("read 100");

            pending.complete(null);
            VfioUserMessage ra = a.get(Wire.TIMEOUT_S, TimeUnit.SECONDS);
            VfioUserMessage rb = b.get(Wire.TIMEOUT_S, TimeUnit.SECONDS);
            VfioUserMessage rc = c.get(Wire.TIMEOUT_S, TimeUnit.SECONDS);
            try {
                assertThat(ra.payload(RegionAccess.class).data().getIntLE(0)).isEqualTo(0x1a7e1a7e);
                assertThat(rb.header().isError()).isFalse();
                assertThat(rc.payload(RegionAccess.class).data().getIntLE(0)).isEqualTo(0xb0b0b0b0);
            } finally {
                ra.release();
                rb.release();
                rc.release();
            }
            assertThat(device.log).containsExactly("read 100", "later done", "write 10", "read 10", "write 20");
            assertThat(replies).containsExactly("a", "b", "c");
            assertThat(client.unexpectedMessages()).isEmpty();
        }
    }

    @Test
    void failuresGetTheSameErrnoOnBothPathsAndNoReplyIsNeverAnswered() throws Exception {
        for (boolean trace : new boolean[] {false, true}) {
            ScriptedDevice device = new ScriptedDevice();
            try (ServerFixture fixture = new ServerFixture(NullDevice.description("scripted"), device);
                 TraceLevel ignored = TraceLevel.on(trace)) {
                VfioUserClient client = fixture.client();
                String path = trace ? "general path" : "short path";
                assertThat(Wire.errno(client, VfioUserCommand.REGION_READ,
                        RegionAccess.inRegion(0).atOffset(ScriptedDevice.FAILS).count(4)))
                        .as(path).isEqualTo(Errno.ENOTSUP);
                assertThat(Wire.errno(client, VfioUserCommand.REGION_READ,
                        RegionAccess.inRegion(0).atOffset(ScriptedDevice.THROWS).count(4)))
                        .as(path).isEqualTo(Errno.EIO);
                assertThat(Wire.errno(client, VfioUserCommand.REGION_READ,
                        RegionAccess.inRegion(0).atOffset(ScriptedDevice.NOTHING)
                                .count(4))).as(path).isEqualTo(Errno.EIO);
                assertThat(Wire.errno(client, VfioUserCommand.REGION_WRITE,
                        RegionAccess.inRegion(0).atOffset(ScriptedDevice.THROWS).data(Unpooled.copyInt(1)))).as(path)
                        .isEqualTo(Errno.EIO);
                // Failing NO_REPLY writes, then a read: the read's reply is the only message that comes back.
                client.sendNoReply(VfioUserCommand.REGION_WRITE,
                        RegionAccess.inRegion(0).atOffset(ScriptedDevice.FAILS).data(Unpooled.copyInt(1)));
                client.sendNoReply(VfioUserCommand.REGION_WRITE,
                        RegionAccess.inRegion(0).atOffset(ScriptedDevice.THROWS).data(Unpooled.copyInt(1)));
                client.sendNoReply(VfioUserCommand.REGION_WRITE,
                        RegionAccess.inRegion(0).atOffset(0x40)
                                .data(Unpooled.copyLong(Long.reverseBytes(0x0102030405060708L))));
                Wire.ok(client, VfioUserCommand.REGION_READ, RegionAccess.inRegion(0).atOffset(0x40).count(8),
                        r -> assertThat(r.payload(RegionAccess.class).data().getLongLE(0))
                                .isEqualTo(0x0102030405060708L));
                assertThat(client.unexpectedMessages()).as(path).isEmpty();
            }
        }
    }

    @Test
    void theDeviceAlwaysGetsALittleEndianBufferAndItsBytesGoOutAsWritten() throws Exception {
        ScriptedDevice device = new ScriptedDevice();
        try (ServerFixture fixture = new ServerFixture(NullDevice.description("scripted"), device)) {
            VfioUserClient client = fixture.client();
            for (int round = 0; round < 2; round++) {
                Wire.ok(client, VfioUserCommand.REGION_READ,
                        RegionAccess.inRegion(0).atOffset(ScriptedDevice.BIG_ENDIAN).count(4),
                        r -> assertThat(ByteBufUtil.getBytes(r.payload(RegionAccess.class).data()))
                                .containsExactly(1, 2, 3, 4));
                Wire.ok(client, VfioUserCommand.REGION_WRITE,
                        RegionAccess.inRegion(0).atOffset(0x30)
                                .data(Unpooled.wrappedBuffer(new byte[] {9, 8, 7, 6, 5})), r -> {
                        });
                Wire.ok(client, VfioUserCommand.REGION_READ, RegionAccess.inRegion(0).atOffset(0x30).count(5),
                        r -> assertThat(ByteBufUtil.getBytes(r.payload(RegionAccess.class).data()))
                                .containsExactly(9, 8, 7, 6, 5));
            }
            assertThat(device.ordersSeen).containsOnly(ByteOrder.LITTLE_ENDIAN);
        }
    }

    /**
     * A register access that carries an fd goes the general path (which closes the fd nobody takes) and gets the
     * same answer; the accesses around it still take the short path and the stream stays in step.
     */
    @Test
    void anAccessCarryingAnFdIsAnsweredAndTheFdClosed() throws Exception {
        ScriptedDevice device = new ScriptedDevice();
        try (ServerFixture fixture = new ServerFixture(NullDevice.description("scripted"), device)) {
            VfioUserClient client = fixture.client();
            for (int round = 0; round < 3; round++) {
                Wire.ok(client, VfioUserCommand.REGION_WRITE,
                        RegionAccess.inRegion(0).atOffset(0x50)
                                .data(Unpooled.copyInt(Integer.reverseBytes(round))), r -> {
                        });
                VfioUserMessage reply = Wire.send(client, VfioUserCommand.REGION_WRITE,
                        RegionAccess.inRegion(0).atOffset(0x54)
                                .data(Unpooled.copyInt(Integer.reverseBytes(round + 100))),
                        FdSet.of(Linux.eventfd(0, 0)));
                try {
                    assertThat(reply.header().isError()).isFalse();
                } finally {
                    reply.release();
                }
                int expected = round;
                Wire.ok(client, VfioUserCommand.REGION_READ, RegionAccess.inRegion(0).atOffset(0x50).count(8),
                        r -> assertThat(r.payload(RegionAccess.class).data().getLongLE(0))
                                .isEqualTo(((long) (expected + 100) << 32) | expected));
            }
            assertThat(client.unexpectedMessages()).isEmpty();
        }
    }

    /**
     * The same raw frames, well-formed and not, get byte-identical replies whichever path serves them (trace
     * logging turns the short path off).
     */
    @Test
    void bothPathsGiveTheSameBytesForTheSameFrames() throws Exception {
        List<byte[]> frames = new ArrayList<>();
        // Accesses of every small size and alignment, on the register file.
        for (int count : new int[] {1, 2, 3, 4, 7, 8, 9, 16, 511, 512, 513}) {
            frames.add(frame(VfioUserCommand.REGION_WRITE, 0, 0x200 + count, BAR0, count, pattern(count)));
            frames.add(frame(VfioUserCommand.REGION_READ, 0, 0x200 + count, BAR0, count, new byte[0]));
        }
        frames.add(frame(VfioUserCommand.REGION_READ, 0, 0, BAR0, 0, new byte[0]));            // zero bytes
        frames.add(frame(VfioUserCommand.REGION_READ, 0, 0, BAR0, 0x7fff_ffff, new byte[0]));  // 2 GiB: EINVAL
        frames.add(frame(VfioUserCommand.REGION_READ, 0, 0, 2, 0x7fff_ffff, new byte[0]));     // same, memory BAR
        frames.add(frame(VfioUserCommand.REGION_READ, 0, 4092, BAR0, 8, new byte[0]));         // past the end
        frames.add(frame(VfioUserCommand.REGION_READ, 0, -8, BAR0, 4, new byte[0]));           // negative offset
        frames.add(frame(VfioUserCommand.REGION_READ, 0, 0, 1, 4, new byte[0]));               // no region 1
        frames.add(frame(VfioUserCommand.REGION_READ, 0, 0, 77, 4, new byte[0]));              // no region 77
        frames.add(frame(VfioUserCommand.REGION_READ, 0x40, 0, BAR0, 4, new byte[0]));         // reserved flag
        frames.add(frame(VfioUserCommand.REGION_WRITE, 0, 0, BAR0, 4, new byte[3]));           // short data
        frames.add(frame(VfioUserCommand.REGION_WRITE, 0, 0, BAR0, 4, new byte[5]));           // long data
        frames.add(frame(VfioUserCommand.REGION_READ, 0, 0, BAR0, 4, new byte[4]));            // read with data
        frames.add(frame(VfioUserCommand.REGION_READ, 0, 0x10, 2, 4, new byte[0]));            // memory BAR
        frames.add(frame(VfioUserCommand.REGION_READ, 0, 0, 4, 4, new byte[0]));               // MSI-X table
        frames.add(frame(VfioUserCommand.REGION_READ, 0, 0, 7, 4, new byte[0]));               // config space
        frames.add(frame(VfioUserCommand.REGION_READ, 0, ScriptedDevice.FAILS, BAR0, 4, new byte[0]));

        List<String> shortPath = replies(frames, false);
        List<String> generalPath = replies(frames, true);
        assertThat(shortPath).hasSize(frames.size()).isEqualTo(generalPath);
    }

    private static List<String> replies(List<byte[]> frames, boolean trace) throws Exception {
        List<String> out = new ArrayList<>();
        try (ServerFixture fixture = new ServerFixture(NullDevice.description("scripted"), new ScriptedDevice());
             TraceLevel ignored = TraceLevel.on(trace)) {
            VfioUserClient client = fixture.client();
            for (byte[] f : frames) {
                int id = client.nextId();
                ByteBuf bytes = Unpooled.wrappedBuffer(f.clone());
                bytes.setShortLE(0, id);
                VfioUserMessage reply = client.sendRaw(bytes, FdSet.EMPTY, id).get(Wire.TIMEOUT_S, TimeUnit.SECONDS);
                try {
                    VfioUserHeader h = reply.header();
                    RegionAccess p = h.isError() ? null : (RegionAccess) reply.payload();
                    out.add(h.command() + " " + h.messageSize() + " " + h.flags() + " " + h.error() + " "
                            + (p == null ? "-" : p.offset() + " " + p.region() + " " + p.count() + " "
                            + (p.data() == null ? "-" : ByteBufUtil.hexDump(p.data()))));
                } finally {
                    reply.release();
                }
            }
            assertThat(client.unexpectedMessages()).isEmpty();
        }
        return out;
    }

    private static byte[] frame(VfioUserCommand command, int flags, long offset, int region, int count, byte[] data) {
        ByteBuf b = Unpooled.buffer();
        int size = 32 + data.length;
        b.writeShortLE(0).writeShortLE(command.code()).writeIntLE(size).writeIntLE(flags).writeIntLE(0);
        b.writeLongLE(offset).writeIntLE(region).writeIntLE(count).writeBytes(data);
        return ByteBufUtil.getBytes(b);
    }

    private static byte[] pattern(int count) {
        byte[] b = new byte[count];
        for (int i = 0; i < count; i++) {
            b[i] = (byte) (count * 31 + i);
        }
        return b;
    }

    /** Trace logging for the server's loggers, on for the life of the object when asked. */
    private record TraceLevel(Level before) implements AutoCloseable {
        static TraceLevel on(boolean on) {
            Level before = LogManager.getLogger("io.vfiouser").getLevel();
            if (on) {
                Configurator.setLevel("io.vfiouser", Level.TRACE);
            }
            return new TraceLevel(on ? before : null);
        }

        @Override
        public void close() {
            if (before != null) {
                Configurator.setLevel("io.vfiouser", before);
            }
        }
    }
}
