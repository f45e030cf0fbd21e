package io.vfiouser.server.connection;

import static io.vfiouser.server.connection.ConnectionChannel.command;
import static io.vfiouser.server.connection.ConnectionChannel.concat;
import static io.vfiouser.server.connection.ConnectionChannel.frame;
import static io.vfiouser.server.connection.ConnectionChannel.hex;
import static io.vfiouser.server.connection.ConnectionChannel.le;
import static io.vfiouser.server.connection.UnitDevices.BAR0;
import static org.assertj.core.api.Assertions.assertThat;

import io.vfiouser.codec.VfioUserCommand;
import io.vfiouser.codec.VfioUserHeader;
import io.vfiouser.codec.DmaLayout;
import io.vfiouser.device.DmaException;
import io.vfiouser.server.ServerOptions;
import io.vfiouser.transport.linux.Errno;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;

/**
 * The server's own DMA_READ and DMA_WRITE (digest 3.11, 3.12, 6.4) for guest memory mapped without an fd: the
 * device's {@code dma().read/write} makes the connection send a request in QEMU's layout (the default), the test
 * answers it as a client, and the device's future completes with the data or fails with the client's errno. Replies
 * bypass the command queue, so a device waiting for DMA never blocks the commands behind it.
 */
class ServerDmaMessagesTest {
    private static final int REPLY = VfioUserHeader.REPLY;
    private static final int ERROR_REPLY = VfioUserHeader.REPLY | VfioUserHeader.ERROR;

    private final ScriptedDevice device = new ScriptedDevice();

    /** Negotiates and maps {@code [0x40000, 0x41000)} without an fd: message mode. */
    private ConnectionChannel messageMapped() throws Exception {
        ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.basic(), device);
        c.send(DmaCommandsTest.map(1, 3, 0, 0x40000, 0x1000));
        c.assertOk(1, VfioUserCommand.DMA_MAP);
        device.takeCalls();
        return c;
    }

    /** A DMA_READ reply in QEMU's layout: address u64, count u32, data, 4 zero bytes. */
    private static byte[] readReply(int msgId, long address, byte[] data) {
        return frame(msgId, VfioUserCommand.DMA_READ.code(), REPLY, 0,
                concat(le(8, address, 4, data.length), data, new byte[4]));
    }

    private static int errnoOf(CompletableFuture<Void> f) {
        assertThat(f).isCompletedExceptionally();
        Throwable t = f.handle((ok, e) -> e).join();
        while (t instanceof java.util.concurrent.CompletionException && t.getCause() != null) {
            t = t.getCause();
        }
        assertThat(t).isInstanceOf(DmaException.class);
        return ((DmaException) t).errno();
    }

    @Test
    void aReadGoesOutAsDmaReadAndCompletesWithTheClientsBytes() throws Exception {
        try (ConnectionChannel c = messageMapped()) {
            ByteBuffer dst = ByteBuffer.allocate(8);
            CompletableFuture<Void> done = device.context.dma().read(0x40010, dst);
            ConnectionChannel.Reply request = c.reply();
            assertThat(request.bytes()).isEqualTo(hex(
                    "0000 0b00 20000000 00000000 00000000  1000040000000000 0800000000000000"));
            assertThat(done).isNotDone();
            c.send(readReply(request.msgId(), 0x40010, hex("0102030405060708")));
            assertThat(done).isCompleted();
            assertThat(dst.array()).isEqualTo(hex("0102030405060708"));
            c.assertNoReply();
        }
    }

    @Test
    void aWriteGoesOutAsDmaWriteAndCompletesWithTheClientsReply() throws Exception {
        try (ConnectionChannel c = messageMapped()) {
            CompletableFuture<Void> first = device.context.dma().write(0x40ffc, ByteBuffer.wrap(hex("a1a2a3a4")));
            ConnectionChannel.Reply request = c.reply();
            assertThat(request.bytes()).isEqualTo(hex(
                    "0000 0c00 24000000 00000000 00000000  fc0f040000000000 04000000 a1a2a3a4 00000000"));
            c.send(frame(request.msgId(), VfioUserCommand.DMA_WRITE.code(), REPLY, 0, new byte[0])); // QEMU's
            assertThat(first).isCompleted();
            CompletableFuture<Void> second = device.context.dma().write(0x40000, ByteBuffer.wrap(hex("b1")));
            request = c.reply();
            assertThat(request.msgId()).as("a fresh id").isEqualTo(1);
            c.send(frame(request.msgId(), VfioUserCommand.DMA_WRITE.code(), REPLY, 0, le(8, 0x40000, 8, 1)));
            assertThat(second).isCompleted(); // libvfio-user's 16-byte reply
        }
    }

    /**
     * While a region read waits for the device (and commands queue behind it), the client's reply to a DMA request
     * the device made meanwhile is read and completes that request; the queued commands then run in order.
     */
    @Test
    void aReplyIsTakenWhileACommandIsHeldBehindTheDevice() throws Exception {
        try (ConnectionChannel c = messageMapped()) {
            CompletableFuture<Void> held = device.holdNextAccess();
            c.sendAll(command(2, VfioUserCommand.REGION_READ, le(8, 0, 4, BAR0, 4, 4)),
                    command(3, VfioUserCommand.REGION_READ, le(8, 4, 4, BAR0, 4, 4)));
            ByteBuffer dst = ByteBuffer.allocate(2);
            CompletableFuture<Void> dma = device.context.dma().read(0x40000, dst);
            ConnectionChannel.Reply request = c.reply();
            assertThat(request.command()).isEqualTo(VfioUserCommand.DMA_READ.code());
            c.send(readReply(request.msgId(), 0x40000, hex("5a5b")));
            assertThat(dma).isCompleted();
            assertThat(dst.array()).isEqualTo(hex("5a5b"));
            c.assertNoReply();
            assertThat(device.takeCalls()).containsExactly("read 0 0x0 4");
            held.complete(null);
            assertThat(c.replies()).extracting(ConnectionChannel.Reply::msgId).containsExactly(2, 3);
        }
    }

    @Test
    void anErrorReplyFailsTheDevicesFutureWithItsErrno() throws Exception {
        try (ConnectionChannel c = messageMapped()) {
            CompletableFuture<Void> read = device.context.dma().read(0x40000, ByteBuffer.allocate(4));
            ConnectionChannel.Reply request = c.reply();
            c.send(frame(request.msgId(), VfioUserCommand.DMA_READ.code(), ERROR_REPLY, Errno.EFAULT, new byte[0]));
            assertThat(errnoOf(read)).isEqualTo(Errno.EFAULT);

            CompletableFuture<Void> write = device.context.dma().write(0x40000, ByteBuffer.wrap(hex("01")));
            request = c.reply();
            c.send(frame(request.msgId(), VfioUserCommand.DMA_WRITE.code(), ERROR_REPLY, Errno.EPERM, new byte[0]));
            assertThat(errnoOf(write)).isEqualTo(Errno.EPERM);

            CompletableFuture<Void> noErrno = device.context.dma().read(0x40000, ByteBuffer.allocate(4));
            request = c.reply();
            c.send(frame(request.msgId(), VfioUserCommand.DMA_READ.code(), ERROR_REPLY, 0, new byte[0]));
            assertThat(errnoOf(noErrno)).as("an error without errno").isEqualTo(Errno.EINVAL);

            // Not an errno (libvfio-user rewrites 0 and values above 4096 to EINVAL too, digest 1.3).
            CompletableFuture<Void> huge = device.context.dma().read(0x40000, ByteBuffer.allocate(4));
            request = c.reply();
            c.send(frame(request.msgId(), VfioUserCommand.DMA_READ.code(), ERROR_REPLY, 4097, new byte[0]));
            assertThat(errnoOf(huge)).as("an error above 4096").isEqualTo(Errno.EINVAL);
            c.assertNoReply();
        }
    }

    /** A DMA_READ reply for another address or count, or malformed, fails the request with EINVAL. */
    @Test
    void aReplyThatDoesNotMatchItsRequestFailsIt() throws Exception {
        try (ConnectionChannel c = messageMapped()) {
            CompletableFuture<Void> otherAddress = device.context.dma().read(0x40000, ByteBuffer.allocate(2));
            c.send(readReply(c.reply().msgId(), 0x40002, hex("0102")));
            assertThat(errnoOf(otherAddress)).isEqualTo(Errno.EINVAL);
            CompletableFuture<Void> otherCount = device.context.dma().read(0x40000, ByteBuffer.allocate(2));
            c.send(readReply(c.reply().msgId(), 0x40000, hex("010203")));
            assertThat(errnoOf(otherCount)).isEqualTo(Errno.EINVAL);
            CompletableFuture<Void> malformed = device.context.dma().read(0x40000, ByteBuffer.allocate(2));
            c.send(frame(c.reply().msgId(), VfioUserCommand.DMA_READ.code(), REPLY, 0, le(8, 0x40000)));
            assertThat(errnoOf(malformed)).isEqualTo(Errno.EINVAL);
            c.assertNoReply();
            assertThat(c.isOpen()).isTrue();
        }
    }

    /** A reply nobody waits for is a client's error (digest 6.1): EINVAL, and the connection goes on. */
    @Test
    void anUnsolicitedReplyIsRefused() throws Exception {
        try (ConnectionChannel c = messageMapped()) {
            c.send(readReply(7, 0x40000, hex("01")));
            c.assertError(7, VfioUserCommand.DMA_READ, Errno.EINVAL);
            c.send(command(8, VfioUserCommand.DMA_READ, le(8, 0x40000, 8, 1)));
            c.assertError(8, VfioUserCommand.DMA_READ, Errno.EINVAL); // a client does not send DMA_READ
        }
    }

    @Test
    void memoryNobodyMappedFailsWithoutAMessage() throws Exception {
        try (ConnectionChannel c = messageMapped()) {
            assertThat(errnoOf(device.context.dma().read(0x41000, ByteBuffer.allocate(1)))).isEqualTo(Errno.EFAULT);
            assertThat(errnoOf(device.context.dma().read(0x40fff, ByteBuffer.allocate(2)))).isEqualTo(Errno.EFAULT);
            c.assertNoReply();
        }
    }

    /** Larger than the client's max_data_xfer_size: one request per chunk, one after the other, in address order. */
    @Test
    void aTransferAboveTheClientsLimitGoesInChunks() throws Exception {
        try (ConnectionChannel c = ConnectionChannel.open(UnitDevices.basic(), device)) {
            c.send(command(0, VfioUserCommand.VERSION, 0, ConnectionChannel.version(0, 2,
                    "{\"capabilities\":{\"max_msg_fds\":16,\"max_data_xfer_size\":4096}}")));
            c.assertOk(0, VfioUserCommand.VERSION);
            c.send(DmaCommandsTest.map(1, 3, 0, 0x40000, 0x4000));
            c.assertOk(1, VfioUserCommand.DMA_MAP);
            ByteBuffer dst = ByteBuffer.allocate(4096 + 8);
            CompletableFuture<Void> done = device.context.dma().read(0x40000, dst);
            ConnectionChannel.Reply first = c.reply();
            assertThat(first.payload()).isEqualTo(le(8, 0x40000, 8, 4096));
            byte[] page = new byte[4096];
            page[4095] = 0x11;
            c.send(readReply(first.msgId(), 0x40000, page));
            ConnectionChannel.Reply second = c.reply();
            assertThat(second.payload()).isEqualTo(le(8, 0x41000, 8, 8));
            assertThat(done).isNotDone();
            c.send(readReply(second.msgId(), 0x41000, hex("2200000000000033")));
            assertThat(done).isCompleted();
            assertThat(dst.get(4095)).isEqualTo((byte) 0x11);
            assertThat(dst.get(4096)).isEqualTo((byte) 0x22);
            assertThat(dst.get(4096 + 7)).isEqualTo((byte) 0x33);
        }
    }

    /** The client leaving fails a request still waiting for its reply, and any made afterwards. */
    @Test
    void theClientLeavingFailsAWaitingRequest() throws Exception {
        ConnectionChannel c = messageMapped();
        CompletableFuture<Void> waiting = device.context.dma().read(0x40000, ByteBuffer.allocate(4));
        var dma = device.context.dma();
        assertThat(c.reply().command()).isEqualTo(VfioUserCommand.DMA_READ.code());
        c.close();
        assertThat(errnoOf(waiting)).isNotZero();
        CompletableFuture<Void> later = dma.write(0x40000, ByteBuffer.wrap(hex("01")));
        c.runTasks();
        assertThat(later).isCompletedExceptionally();
        assertThat(device.takeCalls()).containsSubsequence("quiesce", "dmaUnmapped 0x40000 0x1000",
                "reset LOST_CONNECTION", "detached");
    }

    /** With the spec's layout configured, counts are u64 and data follows at P+16 both ways. */
    @Test
    void theSpecLayoutWhenConfigured() throws Exception {
        ServerOptions spec = ServerOptions.DEFAULT.withDmaLayout(DmaLayout.SPEC);
        try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.basic(), device, spec)) {
            c.send(DmaCommandsTest.map(1, 3, 0, 0x40000, 0x1000));
            c.assertOk(1, VfioUserCommand.DMA_MAP);
            CompletableFuture<Void> write = device.context.dma().write(0x40000, ByteBuffer.wrap(hex("a1a2")));
            ConnectionChannel.Reply request = c.reply();
            assertThat(request.bytes()).isEqualTo(hex(
                    "0000 0c00 22000000 00000000 00000000  0000040000000000 0200000000000000 a1a2"));
            c.send(frame(request.msgId(), VfioUserCommand.DMA_WRITE.code(), REPLY, 0, le(8, 0x40000, 8, 2)));
            assertThat(write).isCompleted();
            ByteBuffer dst = ByteBuffer.allocate(2);
            CompletableFuture<Void> read = device.context.dma().read(0x40000, dst);
            request = c.reply();
            c.send(frame(request.msgId(), VfioUserCommand.DMA_READ.code(), REPLY, 0,
                    concat(le(8, 0x40000, 8, 2), hex("c1c2"))));
            assertThat(read).isCompleted();
            assertThat(dst.array()).isEqualTo(hex("c1c2"));
        }
    }
    /**
     * {@code dmaByMessage()} on memory the client shared as an fd (libvfio-user's {@code vfu_sgl_read/write}): the
     * read and the write go out as DMA messages and the client's answers are what the device gets, while
     * {@code dma()} on the same range still copies through the shared pages without a message.
     */
    @Test
    void byMessageAsksTheClientEvenWhereItSharedAnFd() throws Exception {
        try (TestFds.Memfd memory = TestFds.memfd(0x2000);
             ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.basic(), device)) {
            memory.write(0x10, hex("0a0b"));
            c.send(DmaCommandsTest.map(1, 3, 0, 0x40000, 0x2000), memory.give());
            c.assertOk(1, VfioUserCommand.DMA_MAP);
            var byMessage = device.context.dmaByMessage();

            ByteBuffer dst = ByteBuffer.allocate(2);
            CompletableFuture<Void> read = byMessage.read(0x40010, dst);
            ConnectionChannel.Reply request = c.reply();
            assertThat(request.command()).isEqualTo(VfioUserCommand.DMA_READ.code());
            assertThat(request.payload()).isEqualTo(le(8, 0x40010, 8, 2));
            c.send(readReply(request.msgId(), 0x40010, hex("5152")));
            assertThat(read).isCompleted();
            assertThat(dst.array()).as("the client's answer, not the shared page").isEqualTo(hex("5152"));

            CompletableFuture<Void> write = byMessage.write(0x41ffe, ByteBuffer.wrap(hex("c1c2")));
            request = c.reply();
            assertThat(request.bytes()).isEqualTo(hex(
                    "0100 0c00 22000000 00000000 00000000  fe1f040000000000 02000000 c1c2 00000000"));
            assertThat(write).isNotDone();
            c.send(frame(request.msgId(), VfioUserCommand.DMA_WRITE.code(), REPLY, 0, new byte[0]));
            assertThat(write).isCompleted();
            assertThat(memory.read(0x1ffe, 2)).as("the server did not write the page itself").isEqualTo(hex("0000"));

            ByteBuffer direct = ByteBuffer.allocate(2);
            device.context.dma().read(0x40010, direct).get();
            assertThat(direct.array()).isEqualTo(hex("0a0b"));
            byte shared = byMessage.withSegment(0x40010, 2, io.vfiouser.device.Access.READ,
                    s -> s.get(java.lang.foreign.ValueLayout.JAVA_BYTE, 1));
            assertThat(shared).as("withSegment is dma()'s").isEqualTo((byte) 0x0b);
            assertThat(byMessage.isMapped(0x40000, 0x2000)).isTrue();
            c.assertNoReply();
        }
    }

    /** By message too, the server asks only for memory the client mapped, with the permission it granted. */
    @Test
    void byMessageChecksTheMappingFirst() throws Exception {
        try (TestFds.Memfd memory = TestFds.memfd(0x1000);
             ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.basic(), device)) {
            c.send(DmaCommandsTest.map(1, 1, 0, 0x40000, 0x1000), memory.give()); // READ only
            c.assertOk(1, VfioUserCommand.DMA_MAP);
            var byMessage = device.context.dmaByMessage();
            assertThat(errnoOf(byMessage.write(0x40000, ByteBuffer.wrap(hex("01"))))).isEqualTo(Errno.EACCES);
            assertThat(errnoOf(byMessage.read(0x40fff, ByteBuffer.allocate(2)))).isEqualTo(Errno.EFAULT);
            c.assertNoReply();
        }
    }

    /**
     * Chunks follow the client's {@code max_data_xfer_size}, one request after the other; a larger client value is
     * capped at the server's own, the most the server reads in one reply.
     */
    @Test
    void byMessageGoesInChunksOfTheSmallerLimit() throws Exception {
        ServerOptions small = new ServerOptions(8192, 16, 0600, DmaLayout.SPEC,
                io.vfiouser.server.dma.SegmentMode.COPY);
        try (TestFds.Memfd memory = TestFds.memfd(0x4000);
             ConnectionChannel c = ConnectionChannel.open(UnitDevices.basic(), device, small)) {
            c.send(command(0, VfioUserCommand.VERSION, 0, ConnectionChannel.version(0, 2,
                    "{\"capabilities\":{\"max_msg_fds\":16,\"max_data_xfer_size\":1048576}}")));
            c.assertOk(0, VfioUserCommand.VERSION);
            c.send(DmaCommandsTest.map(1, 3, 0, 0x40000, 0x4000), memory.give());
            c.assertOk(1, VfioUserCommand.DMA_MAP);
            byte[] data = new byte[0x3000];
            data[0x2fff] = 0x77;
            CompletableFuture<Void> write = device.context.dmaByMessage().write(0x40000, ByteBuffer.wrap(data));
            ConnectionChannel.Reply first = c.reply();
            assertThat(first.payload().length).isEqualTo(16 + 8192);
            c.assertNoReply();
            c.send(frame(first.msgId(), VfioUserCommand.DMA_WRITE.code(), REPLY, 0, le(8, 0x40000, 8, 8192)));
            ConnectionChannel.Reply second = c.reply();
            assertThat(java.util.Arrays.copyOf(second.payload(), 16)).isEqualTo(le(8, 0x42000, 8, 0x1000));
            assertThat(second.payload()[16 + 0xfff]).isEqualTo((byte) 0x77);
            assertThat(write).isNotDone();
            c.send(frame(second.msgId(), VfioUserCommand.DMA_WRITE.code(), REPLY, 0, le(8, 0x42000, 8, 0x1000)));
            assertThat(write).isCompleted();
        }
    }
}
