package io.vfiouser.server.connection;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.vfiouser.codec.VfioUserCommand;
import io.vfiouser.codec.VfioUserHeader;
import io.vfiouser.codec.VfioUserMessage;
import io.vfiouser.codec.payload.RegionAccess;
import io.vfiouser.device.Access;
import io.vfiouser.device.VfioUserDevice;
import io.vfiouser.server.device.DeviceCounters;
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
 * <p>The decoder offers only frames that carry no fds, and the {@link ConnectionHandler} passes them on only while
 * nothing else waits or runs on the connection (arrival order) and trace logging is off (so the trace shows every
 * command). Everything else is {@link Outcome#DECLINED declined} and goes down the pipeline (message decoder,
 * handler) unchanged: replies, other commands, malformed or unusual frames (reserved flag bits, a size that does
 * not match the count), accesses that fail a check or go to the configuration space, the MSI-X table or shared
 * memory ({@link RegionRouter#goesToDevice}), accesses above {@link #MAX_DATA} bytes, and accesses that
 * {@link CommandRules} does not accept without a quiesce in the current migration state. Errors are therefore
 * still mapped in one place, and the two paths give the same answer to the same frame.
 *
 * <p>It answers with its {@link Outcome} and never calls back into the handler: the reply of an
 * {@link Outcome#ANSWERED answered} access is {@link #takeReply taken} by the handler; when the device does not
 * complete at once, or fails, the access is {@link Outcome#PENDING pending} and the handler takes over the future
 * ({@link #takePending}) as if the command had come the long way: it waits, sends the reply or the error reply, and
 * only then handles the next command. The reusable buffer stays the device's until then, since no other command
 * can start meanwhile.
 */
final class RegionFastPath {
    /** What {@link #serve} did with a frame. */
    enum Outcome {
        /** Not for the fast path: the frame goes down the pipeline. */
        DECLINED,
        /** Served: the reply (null for NO_REPLY) is ready for {@link #takeReply}. */
        ANSWERED,
        /** Started, and the device has not completed: {@link #takePending} gives the reply's future. */
        PENDING
    }

    /** An access the device did not complete at once: the handler waits for {@code reply} in order. */
    record Pending(VfioUserHeader header, CompletableFuture<VfioUserMessage> reply) {
    }
    /** The largest access served here; QEMU's BAR accesses are at most 8 bytes. */
    static final int MAX_DATA = 512;

    private static final int REGION_READ = VfioUserCommand.REGION_READ.code();
    private static final int REGION_WRITE = VfioUserCommand.REGION_WRITE.code();
    private static final int ACCESS_SIZE = VfioUserHeader.HEADER_SIZE + RegionAccess.FIXED_SIZE;
    private static final ValueLayout.OfLong LONG_LE =
            ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final ConnectionMigration migration;
    private final ByteBufAllocator alloc;
    private final RegionRouter regions;
    private final VfioUserDevice device;
    /** What the device reads into or writes from; never handed out twice at once (see the class comment). */
    private final ByteBuffer data = ByteBuffer.allocateDirect(MAX_DATA).order(ByteOrder.LITTLE_ENDIAN);
    private final ByteBuffer readOnlyData = data.asReadOnlyBuffer().order(ByteOrder.LITTLE_ENDIAN);
    /** The same memory, for copying in and out whatever the device did to the buffers' order, position, limit. */
    private final MemorySegment dataMemory = MemorySegment.ofBuffer(data);

    private final DeviceCounters stats;
    private ByteBuf reply;
    private Pending pending;

    RegionFastPath(Connection connection) {
        this.stats = connection.runtime().stats();
        this.regions = connection.regions();
        this.device = connection.runtime().device();
        this.migration = connection.migration();
        this.alloc = connection.alloc();
    }

    /** The reply of the last {@link Outcome#ANSWERED} access, now the caller's (null for NO_REPLY). */
    ByteBuf takeReply() {
        ByteBuf r = reply;
        reply = null;
        return r;
    }

    /** The last {@link Outcome#PENDING} access, now the caller's. */
    Pending takePending() {
        Pending p = pending;
        pending = null;
        return p;
    }

    /** Serves the frame at {@code at} of {@code frame} ({@code length} bytes, no fds) if it is for the fast path. */
    Outcome serve(ByteBuf frame, int at, int length) {
        if (length < ACCESS_SIZE || length > ACCESS_SIZE + MAX_DATA) {
            return Outcome.DECLINED;
        }
        int command = frame.getUnsignedShortLE(at + 2);
        int flags = frame.getIntLE(at + 8);
        boolean read = command == REGION_READ;
        Access access = read ? Access.READ : Access.WRITE;
        if (!read && command != REGION_WRITE || (flags & ~VfioUserHeader.NO_REPLY) != 0
                || !CommandRules.runsAsIs(read ? VfioUserCommand.REGION_READ : VfioUserCommand.REGION_WRITE,
                        migration.state())) {
            return Outcome.DECLINED;
        }
        long offset = frame.getLongLE(at + 16);
        int region = frame.getIntLE(at + 24);
        int count = frame.getIntLE(at + 28);
        if (count <= 0 || count > MAX_DATA || length != ACCESS_SIZE + (read ? 0 : count)
                || !regions.goesToDevice(region, offset, count, access)) {
            return Outcome.DECLINED;
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
            reply = noReply ? null : reply(msgId, command, offset, region, count, access);
            return Outcome.ANSWERED;
        }
        VfioUserHeader header = new VfioUserHeader(msgId, command, length, flags, 0);
        pending = new Pending(header, done.thenApply(ok -> noReply ? null
                : VfioUserMessage.reply(header, read
                        ? RegionAccess.inRegion(region).atOffset(offset).data(copyOfData(count))
                        : RegionAccess.inRegion(region).atOffset(offset).count(count))));
        return Outcome.PENDING;
    }

    private ByteBuf reply(int msgId, int command, long offset, int region, int count, Access access) {
        boolean read = access == Access.READ;
        int size = ACCESS_SIZE + (read ? count : 0);
        ByteBuf out = alloc.directBuffer(size);
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

    private ByteBuf copyOfData(int count) {
        ByteBuf copy = alloc.directBuffer(count);
        for (int i = 0; i < count; i++) {
            copy.writeByte(dataMemory.get(ValueLayout.JAVA_BYTE, i));
        }
        return copy;
    }
}
