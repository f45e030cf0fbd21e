package io.vfiouser.codec;

import io.netty.buffer.AbstractByteBufAllocator;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.CompositeByteBuf;
import io.netty.buffer.UnpooledHeapByteBuf;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.util.ReferenceCountUtil;
import io.vfiouser.transport.FdSet;
import io.vfiouser.transport.linux.ErrnoException;
import io.vfiouser.transport.linux.Linux;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.logging.log4j.Level;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.core.LogEvent;
import org.apache.logging.log4j.core.Logger;
import org.apache.logging.log4j.core.appender.AbstractAppender;
import org.apache.logging.log4j.core.config.Property;

/**
 * What the fuzz targets share: an allocator that remembers every buffer it made, so that a target can check after
 * each input that every one of them was released (exact and cheap, unlike waiting for the leak detector's garbage
 * collections), and the fd checks (every fd a target created is closed afterwards, and none was closed twice).
 *
 * <p>Adding a target: give its channel {@link #channel(io.netty.channel.ChannelHandler...)}, allocate its input
 * with {@link #buffer(byte[])}, end it with {@link #finish(EmbeddedChannel, List)} and {@link #assertReleased()};
 * docs/fuzzing.md has the rest.
 */
final class FuzzSupport {
    private static final ThreadLocal<TrackingAllocator> ALLOCATOR = ThreadLocal.withInitial(TrackingAllocator::new);
    private static final AtomicInteger FAILED_CLOSES = new AtomicInteger();

    static {
        // A second close of an fd fails with EBADF (the targets open no fd while one runs, so its number cannot
        // have been reused), and FdSet reports that as a warning: count those.
        Logger fdSetLogger = (Logger) LogManager.getLogger(FdSet.class);
        AbstractAppender appender = new AbstractAppender("fuzz-close-failures", null, null, true,
                Property.EMPTY_ARRAY) {
            @Override
            public void append(LogEvent event) {
                if (event.getLevel().isMoreSpecificThan(Level.WARN)) {
                    FAILED_CLOSES.incrementAndGet();
                }
            }
        };
        appender.start();
        fdSetLogger.addAppender(appender);
    }

    private FuzzSupport() {
    }

    /** The allocator of this thread's targets; {@link #assertReleased()} checks what it made since the last check. */
    static TrackingAllocator allocator() {
        return ALLOCATOR.get();
    }

    /** An EmbeddedChannel with {@code handlers} that allocates from the tracking allocator. */
    static EmbeddedChannel channel(io.netty.channel.ChannelHandler... handlers) {
        EmbeddedChannel channel = new EmbeddedChannel();
        channel.config().setAllocator(allocator());
        channel.pipeline().addLast(handlers);
        return channel;
    }

    /** A tracked buffer holding {@code bytes}. */
    static ByteBuf buffer(byte[] bytes) {
        return allocator().heapBuffer(bytes.length).writeBytes(bytes);
    }

    /** Closes the channel, releases what it still holds and {@code received}. */
    static void finish(EmbeddedChannel channel, List<?> received) {
        try {
            received.forEach(ReferenceCountUtil::release);
        } finally {
            channel.finishAndReleaseAll();
        }
    }

    /** Fails unless every buffer allocated since the last call has been released; forgets them. */
    static void assertReleased() {
        allocator().assertReleased();
    }

    /**
     * Where to cut a stream of {@code length} bytes into reads, from {@code seed}: the lengths of the reads, which
     * add up to {@code length}. Mostly short reads (a header split anywhere), sometimes long ones (many frames in
     * one read), so that the fuzzer's seed bytes choose among all the ways a socket may deliver a stream.
     */
    static int[] reads(int length, long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        List<Integer> reads = new ArrayList<>();
        for (int left = length; left > 0; ) {
            int n = switch (random.nextInt(4)) {
                case 0 -> 1 + random.nextInt(8);
                case 1 -> 1 + random.nextInt(64);
                case 2 -> 1 + random.nextInt(Math.max(1, left));
                default -> left;
            };
            n = Math.min(n, left);
            reads.add(n);
            left -= n;
        }
        return reads.stream().mapToInt(Integer::intValue).toArray();
    }

    /** A frame of a stream: its bytes are {@code stream[start, start + size)}. */
    record Frame(int start, int size) {
        int end() {
            return start + size;
        }
    }

    /**
     * How the protocol splits {@code stream} into frames (spec §1.5), written independently of the decoder: the
     * complete frames, and the offset of the header whose {@code msg_size} is below 16 or above {@code max} (-1 if
     * none); bytes after the last complete frame that do not make one are neither.
     */
    record Framing(List<Frame> frames, int badHeader) {
        static Framing of(byte[] stream, int max) {
            List<Frame> frames = new ArrayList<>();
            int at = 0;
            while (stream.length - at >= 8) {
                long size = Integer.toUnsignedLong(
                        (stream[at + 4] & 0xff) | (stream[at + 5] & 0xff) << 8
                                | (stream[at + 6] & 0xff) << 16 | (stream[at + 7] & 0xff) << 24);
                if (size < VfioUserHeader.HEADER_SIZE || size > max) {
                    return new Framing(frames, at);
                }
                if (stream.length - at < size) {
                    break;
                }
                frames.add(new Frame(at, (int) size));
                at += (int) size;
            }
            return new Framing(frames, -1);
        }

        /** The u16 at {@code offset} of {@code stream}, little-endian. */
        static int u16(byte[] stream, int offset) {
            return (stream[offset] & 0xff) | (stream[offset + 1] & 0xff) << 8;
        }
    }

    /** {@code n} fresh eventfds, owned by the caller (a cheap source of real fds). */
    static int[] eventfds(int n) {
        int[] fds = new int[n];
        for (int i = 0; i < n; i++) {
            try {
                fds[i] = Linux.eventfd(0, 0);
            } catch (ErrnoException e) {
                for (int j = 0; j < i; j++) {
                    FdSet.closeQuietly(fds[j]);
                }
                throw new IllegalStateException(e);
            }
        }
        return fds;
    }

    /** Whether {@code fd} is open: {@code dup(2)} succeeds only on an open fd (the copy is closed again). */
    static boolean isOpen(int fd) {
        try {
            Linux.close(Linux.dup(fd));
            return true;
        } catch (ErrnoException e) {
            return false;
        }
    }

    /**
     * Fails if one of {@code fds} is still open (it is closed then, so that one finding does not cascade) or if an
     * fd was closed twice since the last call.
     */
    static void assertClosedOnce(int[] fds) {
        List<Integer> open = new ArrayList<>();
        for (int fd : fds) {
            if (isOpen(fd)) {
                open.add(fd);
                FdSet.closeQuietly(fd);
            }
        }
        int failedCloses = FAILED_CLOSES.getAndSet(0);
        if (!open.isEmpty()) {
            throw new AssertionError("fds left open (leaked): " + open);
        }
        if (failedCloses != 0) {
            throw new AssertionError(failedCloses + " close(2) call(s) failed: an fd was closed twice");
        }
    }

    /**
     * Heap buffers without the leak detector's wrappers (the targets check every buffer exactly, and PARANOID
     * tracking would slow fuzzing tenfold), each remembered until {@link #assertReleased()}.
     */
    static final class TrackingAllocator extends AbstractByteBufAllocator {
        private final List<ByteBuf> allocated = new ArrayList<>();

        TrackingAllocator() {
            super(false);
        }

        @Override
        public ByteBuf heapBuffer(int initialCapacity, int maxCapacity) {
            return track(new UnpooledHeapByteBuf(this, initialCapacity, maxCapacity));
        }

        @Override
        public ByteBuf directBuffer(int initialCapacity, int maxCapacity) {
            return heapBuffer(initialCapacity, maxCapacity);
        }

        @Override
        public CompositeByteBuf compositeHeapBuffer(int maxNumComponents) {
            return track(new CompositeByteBuf(this, false, maxNumComponents));
        }

        @Override
        public CompositeByteBuf compositeDirectBuffer(int maxNumComponents) {
            return compositeHeapBuffer(maxNumComponents);
        }

        @Override
        protected ByteBuf newHeapBuffer(int initialCapacity, int maxCapacity) {
            return heapBuffer(initialCapacity, maxCapacity);
        }

        @Override
        protected ByteBuf newDirectBuffer(int initialCapacity, int maxCapacity) {
            return heapBuffer(initialCapacity, maxCapacity);
        }

        @Override
        public boolean isDirectBufferPooled() {
            return false;
        }

        private <B extends ByteBuf> B track(B buf) {
            allocated.add(buf);
            return buf;
        }

        void assertReleased() {
            try {
                for (ByteBuf buf : allocated) {
                    if (buf.refCnt() != 0) {
                        throw new AssertionError("buffer not released (refCnt " + buf.refCnt() + "): " + buf);
                    }
                }
            } finally {
                for (ByteBuf buf : allocated) {
                    if (buf.refCnt() != 0) {
                        buf.release(buf.refCnt());
                    }
                }
                allocated.clear();
            }
        }
    }
}
