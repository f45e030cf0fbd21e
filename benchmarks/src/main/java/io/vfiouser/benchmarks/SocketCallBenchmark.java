package io.vfiouser.benchmarks;

import io.netty.channel.unix.Socket;
import io.vfiouser.transport.linux.Linux;
import io.vfiouser.transport.linux.MsgHdr;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The cost of one 16-byte send plus one 16-byte receive over a non-blocking {@code AF_UNIX} socketpair, on one
 * thread (no wake-ups, no event loop): the syscall pair that each side of a {@link ChannelRoundTripBenchmark}
 * round trip makes, by the different ways of calling it.
 *
 * <ul>
 *   <li>{@code ffmMsgHdr}: what {@code UnixChannel} does: {@code Linux.sendmsg} with a one-iovec {@link MsgHdr},
 *       then {@code Linux.recvmsg} with the control buffer for {@link MsgHdr#MAX_FDS} fds;</li>
 *   <li>{@code ffmMsgHdrNoControl}: the same, but the receive passes no control buffer;</li>
 *   <li>{@code ffmWriteThenRecvmsg}: {@code Linux.write} to send (no msghdr), {@code recvmsg} with the control
 *       buffer to receive: a channel that uses {@code sendmsg} only when a message carries fds;</li>
 *   <li>{@code ffmReadWrite}: {@code Linux.write} / {@code Linux.read} (FFM, no msghdr);</li>
 *   <li>{@code nettyJni}: what the stock {@code EpollDomainSocketChannel} does: Netty's JNI
 *       {@code Socket.sendAddress} ({@code send}) / {@code Socket.recvAddress} ({@code recv}).</li>
 * </ul>
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED"})
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
public class SocketCallBenchmark {
    private static final int SIZE = ChannelRoundTripBenchmark.MESSAGE;

    private int a;
    private int b;
    private Arena arena;
    private MemorySegment out;
    private MemorySegment in;
    private final MsgHdr sendMsg = new MsgHdr();
    private final MsgHdr recvMsg = new MsgHdr();
    private Socket sa;
    private Socket sb;

    @Setup(Level.Trial)
    public void setUp() throws Exception {
        // Loads Netty's JNI library, which also registers the natives of io.netty.channel.unix.
        io.netty.channel.epoll.Epoll.ensureAvailability();
        int[] pair = Linux.socketPair(true);
        a = pair[0];
        b = pair[1];
        arena = Arena.ofShared();
        out = arena.allocate(SIZE, 64);
        in = arena.allocate(8192, 64);
        sendMsg.iov(0, out.address(), SIZE);
        recvMsg.iov(0, in.address(), in.byteSize());
        sa = new Socket(a);
        sb = new Socket(b);
    }

    @TearDown(Level.Trial)
    public void tearDown() throws Exception {
        Linux.close(a);
        Linux.close(b);
        arena.close();
    }

    @Benchmark
    public long ffmMsgHdr() throws Exception {
        sendMsg.prepareSend(1, null, 0);
        long n = Linux.sendmsg(a, sendMsg);
        recvMsg.prepareReceive(1);
        long m = Linux.recvmsg(b, recvMsg);
        return n + m + recvMsg.receivedFds().length;
    }

    @Benchmark
    public long ffmMsgHdrNoControl() throws Exception {
        sendMsg.prepareSend(1, null, 0);
        long n = Linux.sendmsg(a, sendMsg);
        // prepareSend without fds leaves msg_control NULL: a recvmsg with no control buffer.
        recvMsg.prepareSend(1, null, 0);
        long m = Linux.recvmsg(b, recvMsg);
        return n + m;
    }

    @Benchmark
    public long ffmWriteThenRecvmsg() throws Exception {
        long n = Linux.write(a, out);
        recvMsg.prepareReceive(1);
        long m = Linux.recvmsg(b, recvMsg);
        return n + m + recvMsg.receivedFds().length;
    }

    @Benchmark
    public long ffmReadWrite() throws Exception {
        long n = Linux.write(a, out);
        long m = Linux.read(b, in);
        return n + m;
    }

    @Benchmark
    public long nettyJni() throws Exception {
        int n = sa.sendAddress(out.address(), 0, SIZE);
        int m = sb.recvAddress(in.address(), 0, (int) in.byteSize());
        return n + m;
    }
}
