package io.vfiouser.server;

import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelHandlerContext;
import io.vfiouser.codec.VfioUserCommand;
import io.vfiouser.codec.VfioUserFrameShortcut;
import io.vfiouser.codec.VfioUserHeader;
import io.vfiouser.codec.VfioUserMessage;
import io.vfiouser.codec.message.RegionAccess;
import io.vfiouser.device.Access;
import io.vfiouser.device.VfioUserDevice;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.concurrent.CompletableFuture;

/**
 * The short way for the commonest command: a small REGION_READ or REGION_WRITE of a device register, arriving
 * while nothing else is queued or running on the connection. The frame decoder offers it every complete frame
 * where it lies in the receive buffer; it reads the few fields it needs in place, calls the device with a reusable
 * buffer, and writes the reply bytes straight into one pooled buffer. No frame slice, header record, message,
 * payload record, future or buffer view is created, so a device that answers at once costs the server no garbage
 * per request.
 *
 * <p>The decoder offers only frames that carry no fds. Everything else is declined and goes down the pipeline
 * (message decoder, session) unchanged: replies, other commands, malformed or unusual frames (reserved flag bits,
 * a size that does not match the count), accesses that fail a check or go to the configuration space, the MSI-X
 * table or shared memory ({@link RegionRouter#goesToDevice}), accesses above {@link #MAX_DATA} bytes, accesses
 * that {@link CommandRules} does not accept without a quiesce in the current migration state, every command while
 * the session is busy or has commands queued (arrival order), and every command while trace logging is on (so the
 * trace shows them all). Errors are therefore still mapped in one place, and the two paths give the same answer
 * to the same frame.
 *
 * <p>When the device does not complete at once, or fails, the session takes over the command as if it had come the
 * long way: it waits for the future, sends the reply or the error reply, and only then handles the next command.
 * The reusable buffer stays the device's until then, since no other command can start meanwhile.
 */
final class RegionFastPath implements VfioUserFrameShortcut {
    /** The largest access served here; QEMU's BAR accesses are at most 8 bytes. */
    static final int MAX_DATA = 512;

    private static final int REGION_READ = VfioUserCommand.REGION_READ.code();
    private static final int REGION_WRITE = VfioUserCommand.REGION_WRITE.code();
    private static final int ACCESS_SIZE = VfioUserHeader.HEADER_SIZE + RegionAccess.FIXED_SIZE;
    private static final ValueLayout.OfLong LONG_LE =
            ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final VfioUserSession session;
    private final RegionRouter regions;
    private final VfioUserDevice device;
    /** What the device reads into or writes from; never handed out twice at once (see the class comment). */
    private final ByteBuffer data = ByteBuffer.allocateDirect(MAX_DATA).order(ByteOrder.LITTLE_ENDIAN);
    private final ByteBuffer readOnlyData = data.asReadOnlyBuffer().order(ByteOrder.LITTLE_ENDIAN);
    /** The same memory, for copying in and out whatever the device did to the buffers' order, position, limit. */
    private final MemorySegment dataMemory = MemorySegment.ofBuffer(data);

    private final DeviceStats stats;

    RegionFastPath(VfioUserSession session) {
        this.session = session;
        this.stats = session.runtime().stats();
        this.regions = session.regions();
        this.device = session.runtime().device();
    }

    @Override
    public boolean serve(ChannelHandlerContext ctx, ByteBuf frame, int at, int length) {
        if (length < ACCESS_SIZE || length > ACCESS_SIZE + MAX_DATA) {
            return false;
        }
        int command = frame.getUnsignedShortLE(at + 2);
        int flags = frame.getIntLE(at + 8);
        Access access = command == REGION_READ ? Access.READ : Access.WRITE;
        if (command != REGION_READ && command != REGION_WRITE || (flags & ~VfioUserHeader.NO_REPLY) != 0
                || !session.fastPathOpen(access == Access.READ ? VfioUserCommand.REGION_READ
                        : VfioUserCommand.REGION_WRITE)) {
            return false;
        }
        long offset = frame.getLongLE(at + 16);
        int region = frame.getIntLE(at + 24);
        int count = frame.getIntLE(at + 28);
        if (count <= 0 || count > MAX_DATA || length != ACCESS_SIZE + (access == Access.READ ? 0 : count)
                || !regions.goesToDevice(region, offset, count, access)) {
            return false;
        }
        stats.command(command);
        int msgId = frame.getUnsignedShortLE(at);
        boolean noReply = (flags & VfioUserHeader.NO_REPLY) != 0;
        CompletableFuture<Void> done;
        try {
            if (access == Access.READ) {
                data.order(ByteOrder.LITTLE_ENDIAN).clear().limit(count);
                done = device.regionRead(region, offset, data);
            } else {
                int i = 0;
                for (; i + Long.BYTES <= count; i += Long.BYTES) {
                    dataMemory.set(LONG_LE, i, frame.getLongLE(at + ACCESS_SIZE + i));
                }
                for (; i < count; i++) {
                    dataMemory.set(ValueLayout.JAVA_BYTE, i, frame.getByte(at + ACCESS_SIZE + i));
                }
                readOnlyData.order(ByteOrder.LITTLE_ENDIAN).clear().limit(count);
                done = device.regionWrite(region, offset, readOnlyData);
            }
            if (done == null) {
                throw new NullPointerException("the device returned no future");
            }
        } catch (RuntimeException e) {
            done = CompletableFuture.failedFuture(e);
        }
        if (done == VfioUserDevice.DONE || done.isDone() && !done.isCompletedExceptionally()) {
            if (!noReply) {
                session.fastPathReply(reply(ctx, msgId, command, offset, region, count, access));
            }
            return true;
        }
        VfioUserHeader header = new VfioUserHeader(msgId, command, length, flags, 0);
        session.fastPathPending(header, done.thenApply(ok -> noReply ? null
                : VfioUserMessage.reply(header, access == Access.READ
                        ? RegionAccess.withData(offset, region, copyOfData(ctx, count))
                        : RegionAccess.of(offset, region, count))));
        return true;
    }

    private ByteBuf reply(ChannelHandlerContext ctx, int msgId, int command, long offset, int region, int count,
                          Access access) {
        int size = ACCESS_SIZE + (access == Access.READ ? count : 0);
        ByteBuf out = ctx.alloc().directBuffer(size);
        out.writeShortLE(msgId);
        out.writeShortLE(command);
        out.writeIntLE(size);
        out.writeIntLE(VfioUserHeader.REPLY);
        out.writeIntLE(0);
        out.writeLongLE(offset);
        out.writeIntLE(region);
        out.writeIntLE(count);
        if (access == Access.READ) {
            int i = 0;
            for (; i + Long.BYTES <= count; i += Long.BYTES) {
                out.writeLongLE(dataMemory.get(LONG_LE, i));
            }
            for (; i < count; i++) {
                out.writeByte(dataMemory.get(ValueLayout.JAVA_BYTE, i));
            }
        }
        return out;
    }

    private ByteBuf copyOfData(ChannelHandlerContext ctx, int count) {
        ByteBuf copy = ctx.alloc().directBuffer(count);
        for (int i = 0; i < count; i++) {
            copy.writeByte(dataMemory.get(ValueLayout.JAVA_BYTE, i));
        }
        return copy;
    }
}
