package io.vfiouser.transport.linux;

import java.lang.foreign.AddressLayout;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;
import java.nio.charset.StandardCharsets;

/**
 * The Linux calls of the project, made through the Foreign Function and Memory API. Nothing else in the
 * project calls native code. Every call captures errno and hands its result to one call-and-check helper
 * ({@code check}, {@code nonBlocking}), which turns a failure into an {@link ErrnoException} that names the call;
 * {@code EINTR} is retried. Non-blocking calls report {@code EAGAIN} as a return
 * value of {@code -1} instead of an exception, because it is the normal case on an event loop.
 */
public final class Linux {
    public static final int AF_UNIX = 1;
    public static final int SOCK_STREAM = 1;
    public static final int SOCK_NONBLOCK = 0x800;
    public static final int SOCK_CLOEXEC = 0x80000;

    public static final int MSG_CTRUNC = 0x8;
    public static final int MSG_DONTWAIT = 0x40;
    public static final int MSG_NOSIGNAL = 0x4000;
    public static final int MSG_CMSG_CLOEXEC = 0x40000000;

    public static final int SOL_SOCKET = 1;
    public static final int SCM_RIGHTS = 1;
    public static final int SO_PEERCRED = 17;
    public static final int SO_TYPE = 3;
    public static final int SO_ACCEPTCONN = 30;
    public static final int SO_DOMAIN = 39;

    public static final int PROT_READ = 0x1;
    public static final int PROT_WRITE = 0x2;
    public static final int MAP_SHARED = 0x1;

    public static final int MFD_CLOEXEC = 0x1;
    public static final int MFD_ALLOW_SEALING = 0x2;
    /** memfd backed by huge pages of the default size (the pool in {@code /proc/sys/vm/nr_hugepages}). */
    public static final int MFD_HUGETLB = 0x4;

    /** {@code open(2)} access modes. */
    public static final int O_RDONLY = 0;
    public static final int O_RDWR = 2;
    /** {@code fallocate(2)} modes: keep the file size; deallocate the range (with KEEP_SIZE). */
    public static final int FALLOC_FL_KEEP_SIZE = 0x1;
    public static final int FALLOC_FL_PUNCH_HOLE = 0x2;
    /** {@code lseek(2)} whences that find a file's allocated extents. */
    public static final int SEEK_DATA = 3;
    public static final int SEEK_HOLE = 4;

    public static final int EFD_SEMAPHORE = 0x1;
    public static final int EFD_NONBLOCK = 0x800;
    public static final int EFD_CLOEXEC = 0x80000;

    private static final int F_GETFL = 3;
    private static final int F_SETFL = 4;
    private static final int O_NONBLOCK = 0x800;
    private static final int O_CLOEXEC = 0x80000;
    private static final int F_DUPFD_CLOEXEC = 1030;
    private static final int F_ADD_SEALS = 1033;
    private static final int F_GET_SEALS = 1034;
    /** memfd seals ({@code fcntl(F_ADD_SEALS)}): no more seals, no shrinking, no growing. */
    public static final int F_SEAL_SEAL = 0x1;
    public static final int F_SEAL_SHRINK = 0x2;
    public static final int F_SEAL_GROW = 0x4;
    /** Length of {@code sun_path} in {@code struct sockaddr_un}. */
    public static final int UNIX_PATH_MAX = 108;

    private static final Linker LINKER = Linker.nativeLinker();
    private static final SymbolLookup LIBC = LINKER.defaultLookup();
    private static final StructLayout CAPTURE_LAYOUT = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO =
            CAPTURE_LAYOUT.varHandle(MemoryLayout.PathElement.groupElement("errno"));
    private static final ThreadLocal<MemorySegment> CAPTURE =
            ThreadLocal.withInitial(() -> Arena.ofAuto().allocate(CAPTURE_LAYOUT));

    private static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT;
    private static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG;
    private static final AddressLayout PTR = ValueLayout.ADDRESS;

    private static final MethodHandle SOCKET = call("socket", FunctionDescriptor.of(INT, INT, INT, INT));
    private static final MethodHandle SOCKETPAIR = call("socketpair", FunctionDescriptor.of(INT, INT, INT, INT, PTR));
    private static final MethodHandle BIND = call("bind", FunctionDescriptor.of(INT, INT, PTR, INT));
    private static final MethodHandle LISTEN = call("listen", FunctionDescriptor.of(INT, INT, INT));
    private static final MethodHandle ACCEPT4 = call("accept4", FunctionDescriptor.of(INT, INT, PTR, PTR, INT));
    private static final MethodHandle CONNECT = call("connect", FunctionDescriptor.of(INT, INT, PTR, INT));
    private static final MethodHandle GETSOCKOPT =
            call("getsockopt", FunctionDescriptor.of(INT, INT, INT, INT, PTR, PTR));
    private static final MethodHandle RECVMSG = call("recvmsg", FunctionDescriptor.of(LONG, INT, PTR, INT));
    private static final MethodHandle SENDMSG = call("sendmsg", FunctionDescriptor.of(LONG, INT, PTR, INT));
    /** {@code send(2)} with the buffer address as a plain long: no segment object per call on the hot path. */
    private static final MethodHandle SEND = call("send", FunctionDescriptor.of(LONG, INT, LONG, LONG, INT));
    /*
     * The same three calls without errno capture, for the first attempt on the hot path. A downcall that captures
     * errno makes the JDK slice the capture segment on every call (an allocation per call, about half of the
     * server's garbage per request before this); these make none. They are "critical" (no thread-state
     * transition): with MSG_DONTWAIT they never block. When one fails, the call is simply made again through the
     * capturing handle to learn why: a failed recvmsg/sendmsg/send moved no bytes and no fds, so repeating it is
     * harmless, and failures (EAGAIN after a wake-up, a peer gone) are rare.
     */
    private static final MethodHandle RECVMSG_FIRST = firstTry("recvmsg", FunctionDescriptor.of(LONG, INT, PTR, INT));
    private static final MethodHandle SENDMSG_FIRST = firstTry("sendmsg", FunctionDescriptor.of(LONG, INT, PTR, INT));
    private static final MethodHandle SEND_FIRST = firstTry("send", FunctionDescriptor.of(LONG, INT, LONG, LONG, INT));
    private static final MethodHandle SCHED_SETAFFINITY =
            call("sched_setaffinity", FunctionDescriptor.of(INT, INT, LONG, PTR));
    private static final MethodHandle CLOSE = call("close", FunctionDescriptor.of(INT, INT));
    private static final MethodHandle FCNTL = LINKER.downcallHandle(
            LIBC.findOrThrow("fcntl"), FunctionDescriptor.of(INT, INT, INT, INT),
            Linker.Option.captureCallState("errno"), Linker.Option.firstVariadicArg(2));
    private static final MethodHandle READ = call("read", FunctionDescriptor.of(LONG, INT, PTR, LONG));
    private static final MethodHandle WRITE = call("write", FunctionDescriptor.of(LONG, INT, PTR, LONG));
    private static final MethodHandle MMAP = call("mmap", FunctionDescriptor.of(PTR, PTR, LONG, INT, INT, INT, LONG));
    private static final MethodHandle MUNMAP = call("munmap", FunctionDescriptor.of(INT, PTR, LONG));
    private static final MethodHandle MEMFD_CREATE = call("memfd_create", FunctionDescriptor.of(INT, PTR, INT));
    private static final MethodHandle OPEN = LINKER.downcallHandle(LIBC.findOrThrow("open"),
            FunctionDescriptor.of(INT, PTR, INT, INT), Linker.Option.firstVariadicArg(2),
            Linker.Option.captureCallState("errno"));
    private static final MethodHandle FALLOCATE = call("fallocate", FunctionDescriptor.of(INT, INT, INT, LONG, LONG));
    private static final MethodHandle LSEEK = call("lseek", FunctionDescriptor.of(LONG, INT, LONG, INT));
    private static final MethodHandle FTRUNCATE = call("ftruncate", FunctionDescriptor.of(INT, INT, LONG));
    private static final MethodHandle FSTAT = call("fstat", FunctionDescriptor.of(INT, INT, PTR));
    private static final MethodHandle FCHMOD = call("fchmod", FunctionDescriptor.of(INT, INT, INT));
    private static final MethodHandle UNLINK = call("unlink", FunctionDescriptor.of(INT, PTR));
    private static final MethodHandle LINK = call("link", FunctionDescriptor.of(INT, PTR, PTR));
    private static final MethodHandle EVENTFD = call("eventfd", FunctionDescriptor.of(INT, INT, INT));
    private static final MethodHandle PIPE2 = call("pipe2", FunctionDescriptor.of(INT, PTR, INT));
    private static final MethodHandle READLINK = call("readlink", FunctionDescriptor.of(LONG, PTR, PTR, LONG));

    /** {@code struct stat} on x86-64: size 144, {@code st_mode} at 24, {@code st_size} at 48. */
    private static final long STAT_SIZE = 144;
    private static final long STAT_MODE = 24;
    private static final long STAT_ST_SIZE = 48;
    private static final long SOCKADDR_UN_SIZE = 2 + UNIX_PATH_MAX;

    private Linux() {
    }

    private static MethodHandle call(String name, FunctionDescriptor descriptor) {
        return LINKER.downcallHandle(LIBC.findOrThrow(name), descriptor, Linker.Option.captureCallState("errno"));
    }

    private static MethodHandle firstTry(String name, FunctionDescriptor descriptor) {
        return LINKER.downcallHandle(LIBC.findOrThrow(name), descriptor, Linker.Option.critical(false));
    }

    /** This thread's errno capture segment: the one every capturing call is given, and the one its check reads. */
    private static MemorySegment capture() {
        return CAPTURE.get();
    }

    /** The errno the last capturing call of this thread left in its capture segment. */
    private static int errno() {
        return (int) ERRNO.get(capture(), 0L);
    }

    /*
     * The call-and-check helpers. Every wrapper below is "invoke a capturing handle with capture(), hand its result
     * to one of these": the result when the call succeeded (>= 0), otherwise errno is read from this thread's capture
     * segment (the one the call just wrote) and either turned into an answer the caller expects or thrown as an
     * ErrnoException naming the call. They take and return primitives, so a successful call allocates nothing; errno
     * is read only after a failure.
     */

    /** {@code rc} when the call succeeded, otherwise an {@link ErrnoException} naming {@code call}. */
    private static int check(String call, int rc) throws ErrnoException {
        if (rc < 0) {
            throw new ErrnoException(call, errno());
        }
        return rc;
    }

    /** {@code rc} when the call succeeded, otherwise an {@link ErrnoException} naming {@code call}. */
    private static long check(String call, long rc) throws ErrnoException {
        if (rc < 0) {
            throw new ErrnoException(call, errno());
        }
        return rc;
    }

    /** As {@link #check(String, long)}, except that errno {@code expected} is an answer: {@code -1}. */
    private static long check(String call, long rc, int expected) throws ErrnoException {
        if (rc >= 0) {
            return rc;
        }
        int err = errno();
        if (err == expected) {
            return -1;
        }
        throw new ErrnoException(call, err);
    }

    /** What {@link #nonBlocking} returns for {@code EINTR}: make the call again. */
    private static final long INTERRUPTED = -2;

    /**
     * The check of a call that must not block: {@code rc} when it succeeded, {@code -1} when it would have blocked
     * ({@code EAGAIN}, or {@code EINPROGRESS} of a connect), {@link #INTERRUPTED} for {@code EINTR}, otherwise an
     * {@link ErrnoException} naming {@code call}.
     */
    private static long nonBlocking(String call, long rc) throws ErrnoException {
        if (rc >= 0) {
            return rc;
        }
        int err = errno();
        if (err == Errno.EAGAIN || err == Errno.EINPROGRESS) {
            return -1;
        }
        if (err == Errno.EINTR) {
            return INTERRUPTED;
        }
        throw new ErrnoException(call, err);
    }

    /**
     * For the {@code catch (Throwable)} that {@code invokeExact} forces on every wrapper: an {@link ErrnoException}
     * from a check goes on as it is, an unchecked one or an error too; anything else (a downcall throws nothing
     * checked) is wrapped.
     */
    private static RuntimeException rethrow(Throwable t) throws ErrnoException {
        if (t instanceof ErrnoException e) {
            throw e;
        }
        return unchecked(t);
    }

    private static RuntimeException unchecked(Throwable t) {
        if (t instanceof RuntimeException r) {
            return r;
        }
        if (t instanceof Error e) {
            throw e;
        }
        return new IllegalStateException(t);
    }

    // ------------------------------------------------------------------------------------------------ sockets

    /** A new non-blocking, close-on-exec {@code AF_UNIX} stream socket. */
    public static int socketUnix() throws ErrnoException {
        try {
            return check("socket",
                    (int) SOCKET.invokeExact(capture(), AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * A connected pair of {@code AF_UNIX} stream sockets, both close-on-exec.
     *
     * @param nonBlocking whether both ends are non-blocking
     */
    public static int[] socketPair(boolean nonBlocking) throws ErrnoException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment fds = arena.allocate(INT, 2);
            int type = SOCK_STREAM | SOCK_CLOEXEC | (nonBlocking ? SOCK_NONBLOCK : 0);
            check("socketpair", (int) SOCKETPAIR.invokeExact(capture(), AF_UNIX, type, 0, fds));
            return new int[] {fds.getAtIndex(INT, 0), fds.getAtIndex(INT, 1)};
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    private static MemorySegment sockaddrUn(Arena arena, String path) {
        byte[] bytes = path.getBytes(StandardCharsets.UTF_8);
        if (bytes.length == 0 || bytes.length >= UNIX_PATH_MAX) {
            throw new IllegalArgumentException("socket path must be 1.." + (UNIX_PATH_MAX - 1) + " bytes: " + path);
        }
        MemorySegment addr = arena.allocate(SOCKADDR_UN_SIZE);
        addr.set(ValueLayout.JAVA_SHORT, 0, (short) AF_UNIX);
        MemorySegment.copy(bytes, 0, addr, ValueLayout.JAVA_BYTE, 2, bytes.length);
        return addr;
    }

    /** {@code bind(2)} a unix socket to a filesystem path. */
    public static void bind(int fd, String path) throws ErrnoException {
        try (Arena arena = Arena.ofConfined()) {
            check("bind", (int) BIND.invokeExact(capture(), fd, sockaddrUn(arena, path), (int) SOCKADDR_UN_SIZE));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static void listen(int fd, int backlog) throws ErrnoException {
        try {
            check("listen", (int) LISTEN.invokeExact(capture(), fd, backlog));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** {@code accept4(2)} with {@code SOCK_NONBLOCK | SOCK_CLOEXEC}; {@code -1} when no connection is pending. */
    public static int accept(int fd) throws ErrnoException {
        try {
            long child;
            do {
                child = nonBlocking("accept4", (int) ACCEPT4.invokeExact(capture(), fd, MemorySegment.NULL,
                        MemorySegment.NULL, SOCK_NONBLOCK | SOCK_CLOEXEC));
            } while (child == INTERRUPTED);
            return (int) child;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * {@code connect(2)} to a unix socket path. Returns {@code true} when connected, {@code false} when a
     * non-blocking connect is still in progress.
     */
    public static boolean connect(int fd, String path) throws ErrnoException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment addr = sockaddrUn(arena, path);
            long rc;
            do {
                rc = nonBlocking("connect", (int) CONNECT.invokeExact(capture(), fd, addr, (int) SOCKADDR_UN_SIZE));
            } while (rc == INTERRUPTED);
            return rc == 0;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** The credentials of the peer of a connected unix socket ({@code SO_PEERCRED}). */
    public static PeerCredentials peerCredentials(int fd) throws ErrnoException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment ucred = arena.allocate(12);
            MemorySegment len = arena.allocateFrom(INT, 12);
            check("getsockopt(SO_PEERCRED)",
                    (int) GETSOCKOPT.invokeExact(capture(), fd, SOL_SOCKET, SO_PEERCRED, ucred, len));
            return new PeerCredentials(ucred.get(INT, 0), ucred.get(INT, 4), ucred.get(INT, 8));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * Whether {@code fd} is an {@code AF_UNIX} stream socket in the listening state ({@code SO_DOMAIN},
     * {@code SO_TYPE}, {@code SO_ACCEPTCONN}): what a handed-over {@code --fd=N} must be before the server adopts it,
     * so that a wrong number fails cleanly instead of taking over some other fd of the process.
     */
    public static boolean isListeningUnixSocket(int fd) throws ErrnoException {
        try {
            return intSocketOption(fd, SO_DOMAIN) == AF_UNIX && intSocketOption(fd, SO_TYPE) == SOCK_STREAM
                    && intSocketOption(fd, SO_ACCEPTCONN) == 1;
        } catch (ErrnoException e) {
            if (e.errno() == Errno.ENOTSOCK) {
                return false;
            }
            throw e;
        }
    }

    private static int intSocketOption(int fd, int option) throws ErrnoException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment value = arena.allocate(INT);
            MemorySegment len = arena.allocateFrom(INT, 4);
            check("getsockopt(" + option + ")",
                    (int) GETSOCKOPT.invokeExact(capture(), fd, SOL_SOCKET, option, value, len));
            return value.get(INT, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /*
     * recvmsg, sendmsg and send: the first attempt goes through the critical, non-capturing handle (no allocation);
     * only when it fails is the call made again through the capturing one, to learn errno.
     */

    /**
     * {@code recvmsg(2)} into the buffers and control space prepared in {@code msg}, with
     * {@code MSG_CMSG_CLOEXEC}. Returns the byte count (0 at end of stream) or {@code -1} for {@code EAGAIN}.
     */
    public static long recvmsg(int fd, MsgHdr msg) throws ErrnoException {
        try {
            long n = (long) RECVMSG_FIRST.invokeExact(fd, msg.segment(), MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
            if (n >= 0) {
                return n;
            }
            do {
                n = nonBlocking("recvmsg", (long) RECVMSG.invokeExact(capture(), fd, msg.segment(), MSG_CMSG_CLOEXEC));
            } while (n == INTERRUPTED);
            return n;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * {@code sendmsg(2)} of the buffers and fds prepared in {@code msg}, with {@code MSG_NOSIGNAL}. Returns the
     * byte count or {@code -1} for {@code EAGAIN}.
     */
    public static long sendmsg(int fd, MsgHdr msg) throws ErrnoException {
        int flags = MSG_NOSIGNAL | MSG_DONTWAIT;
        try {
            long n = (long) SENDMSG_FIRST.invokeExact(fd, msg.segment(), flags);
            if (n >= 0) {
                return n;
            }
            do {
                n = nonBlocking("sendmsg", (long) SENDMSG.invokeExact(capture(), fd, msg.segment(), flags));
            } while (n == INTERRUPTED);
            return n;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * {@code send(2)} of {@code length} bytes at native {@code address}, with {@code MSG_NOSIGNAL}: the cheaper call
     * for one buffer without fds. Returns the byte count or {@code -1} for {@code EAGAIN}.
     */
    public static long send(int fd, long address, long length) throws ErrnoException {
        int flags = MSG_NOSIGNAL | MSG_DONTWAIT;
        try {
            long n = (long) SEND_FIRST.invokeExact(fd, address, length, flags);
            if (n >= 0) {
                return n;
            }
            do {
                n = nonBlocking("send", (long) SEND.invokeExact(capture(), fd, address, length, flags));
            } while (n == INTERRUPTED);
            return n;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    // ------------------------------------------------------------------------------------------ descriptors

    /** {@code close(2)}. {@code EINTR} is not retried (Linux has released the fd already). */
    public static void close(int fd) throws ErrnoException {
        try {
            check("close", (int) CLOSE.invokeExact(capture(), fd), Errno.EINTR);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** A close-on-exec duplicate of {@code fd}. */
    public static int dup(int fd) throws ErrnoException {
        return fcntl("fcntl(F_DUPFD_CLOEXEC)", fd, F_DUPFD_CLOEXEC, 0);
    }

    /** Adds seals to a memfd created with sealing allowed ({@code fcntl(F_ADD_SEALS)}). */
    public static void addSeals(int fd, int seals) throws ErrnoException {
        fcntl("fcntl(F_ADD_SEALS)", fd, F_ADD_SEALS, seals);
    }

    /** The seals of a memfd ({@code fcntl(F_GET_SEALS)}); EINVAL for files that cannot be sealed. */
    public static int getSeals(int fd) throws ErrnoException {
        return fcntl("fcntl(F_GET_SEALS)", fd, F_GET_SEALS, 0);
    }

    /** Puts {@code fd} into non-blocking mode ({@code O_NONBLOCK}), as an event loop needs. */
    public static void setNonBlocking(int fd) throws ErrnoException {
        int flags = fcntl("fcntl(F_GETFL)", fd, F_GETFL, 0);
        if ((flags & O_NONBLOCK) == 0) {
            fcntl("fcntl(F_SETFL)", fd, F_SETFL, flags | O_NONBLOCK);
        }
    }

    /**
     * Clears {@code O_NONBLOCK} on {@code fd}'s open file description. The server never needs it; tests use it to
     * play a client that makes a shared eventfd blocking again behind the server's back.
     */
    public static void setBlocking(int fd) throws ErrnoException {
        int flags = fcntl("fcntl(F_GETFL)", fd, F_GETFL, 0);
        if ((flags & O_NONBLOCK) != 0) {
            fcntl("fcntl(F_SETFL)", fd, F_SETFL, flags & ~O_NONBLOCK);
        }
    }

    /** Whether {@code O_NONBLOCK} is set on {@code fd}'s open file description. */
    public static boolean isNonBlocking(int fd) throws ErrnoException {
        return (fcntl("fcntl(F_GETFL)", fd, F_GETFL, 0) & O_NONBLOCK) != 0;
    }

    /** {@code fcntl(2)} with one int argument; {@code call} names the command in a failure. */
    private static int fcntl(String call, int fd, int command, int argument) throws ErrnoException {
        try {
            return check(call, (int) FCNTL.invokeExact(capture(), fd, command, argument));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** What {@code /proc/self/fd/<fd>} links to: a path, or a kind such as {@code anon_inode:[eventfd]}. */
    public static String fdTarget(int fd) throws ErrnoException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment path = arena.allocateFrom("/proc/self/fd/" + fd);
            MemorySegment target = arena.allocate(4096);
            long n = check("readlink(/proc/self/fd/" + fd + ")",
                    (long) READLINK.invokeExact(capture(), path, target, target.byteSize()));
            return new String(target.asSlice(0, n).toArray(ValueLayout.JAVA_BYTE), StandardCharsets.UTF_8);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * Whether {@code fd} is an eventfd, from the kind the kernel names in {@code /proc/self/fd} (an eventfd has no
     * file type of its own: {@code fstat} shows an anonymous inode, as for a signalfd or a timerfd). A few
     * microseconds: for checking an fd once when it is handed over, not per use.
     */
    public static boolean isEventFd(int fd) throws ErrnoException {
        return "anon_inode:[eventfd]".equals(fdTarget(fd));
    }

    /** A close-on-exec pipe ({@code pipe2(2)}): {read end, write end}, blocking unless {@code nonBlocking}. */
    public static int[] pipe(boolean nonBlocking) throws ErrnoException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment fds = arena.allocate(INT, 2);
            check("pipe2", (int) PIPE2.invokeExact(capture(), fds, O_CLOEXEC | (nonBlocking ? O_NONBLOCK : 0)));
            return new int[] {fds.getAtIndex(INT, 0), fds.getAtIndex(INT, 1)};
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** {@code read(2)} into a native segment; {@code -1} for {@code EAGAIN}. */
    public static long read(int fd, MemorySegment buffer) throws ErrnoException {
        try {
            long n;
            do {
                n = nonBlocking("read", (long) READ.invokeExact(capture(), fd, buffer, buffer.byteSize()));
            } while (n == INTERRUPTED);
            return n;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** {@code write(2)} from a native segment; {@code -1} for {@code EAGAIN}. */
    public static long write(int fd, MemorySegment buffer) throws ErrnoException {
        try {
            long n;
            do {
                n = nonBlocking("write", (long) WRITE.invokeExact(capture(), fd, buffer, buffer.byteSize()));
            } while (n == INTERRUPTED);
            return n;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** {@code fstat(2)}: the fields the project uses. */
    public static FileStat fstat(int fd) throws ErrnoException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment st = arena.allocate(STAT_SIZE, 8);
            check("fstat", (int) FSTAT.invokeExact(capture(), fd, st));
            return new FileStat(st.get(INT, STAT_MODE), st.get(LONG, STAT_ST_SIZE));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** {@code fchmod(2)}; on a socket before {@code bind} it sets the mode of the socket file. */
    public static void fchmod(int fd, int mode) throws ErrnoException {
        try {
            check("fchmod", (int) FCHMOD.invokeExact(capture(), fd, mode));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** {@code unlink(2)}; returns {@code false} if the path did not exist. */
    public static boolean unlink(String path) throws ErrnoException {
        try (Arena arena = Arena.ofConfined()) {
            return check("unlink", (int) UNLINK.invokeExact(capture(), arena.allocateFrom(path)), Errno.ENOENT) == 0;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * {@code link(2)}: gives the file at {@code existing} the additional name {@code newPath}, atomically, and
     * fails with {@code EEXIST} rather than replace a file that already has that name.
     */
    public static void link(String existing, String newPath) throws ErrnoException {
        try (Arena arena = Arena.ofConfined()) {
            check("link", (int) LINK.invokeExact(capture(), arena.allocateFrom(existing), arena.allocateFrom(newPath)));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** Pins the calling thread to one CPU (0..63) with {@code sched_setaffinity(2)}; for benchmarks. */
    public static void pinCurrentThread(int cpu) throws ErrnoException {
        if (cpu < 0 || cpu > 63) {
            throw new IllegalArgumentException("cpu must be 0..63: " + cpu);
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment mask = arena.allocateFrom(LONG, 1L << cpu);
            check("sched_setaffinity", (int) SCHED_SETAFFINITY.invokeExact(capture(), 0, 8L, mask));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    // ------------------------------------------------------------------------------------- memory and events

    /** {@code memfd_create(2)} with {@code MFD_CLOEXEC}. */
    public static int memfdCreate(String name) throws ErrnoException {
        try (Arena arena = Arena.ofConfined()) {
            int flags = MFD_CLOEXEC | MFD_ALLOW_SEALING;
            return check("memfd_create", (int) MEMFD_CREATE.invokeExact(capture(), arena.allocateFrom(name), flags));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * {@code memfd_create(2)} with {@code MFD_CLOEXEC} and {@code extraFlags}, e.g. {@link #MFD_HUGETLB} (which
     * cannot be combined with sealing on older kernels, so sealing is not added here).
     */
    public static int memfdCreate(String name, int extraFlags) throws ErrnoException {
        try (Arena arena = Arena.ofConfined()) {
            int flags = MFD_CLOEXEC | extraFlags;
            return check("memfd_create", (int) MEMFD_CREATE.invokeExact(capture(), arena.allocateFrom(name), flags));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    // ------------------------------------------------------------------------------------------------- files

    /** {@code open(2)} of an existing file with {@code flags} ({@link #O_RDWR}, ...) and {@code O_CLOEXEC}. */
    public static int open(String path, int flags) throws ErrnoException {
        try (Arena arena = Arena.ofConfined()) {
            return check("open", (int) OPEN.invokeExact(capture(), arena.allocateFrom(path), flags | O_CLOEXEC, 0));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * {@code fallocate(2)} of {@code length} bytes at {@code offset} with {@code mode}; {@code EINTR} is retried.
     * {@code FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE} frees the range's blocks, which then read as zeros; a
     * file system without it fails with {@link Errno#ENOTSUP}.
     */
    public static void fallocate(int fd, int mode, long offset, long length) throws ErrnoException {
        try {
            while (check("fallocate", (int) FALLOCATE.invokeExact(capture(), fd, mode, offset, length),
                    Errno.EINTR) < 0) {
                // interrupted: again
            }
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * {@code lseek(2)}: the resulting offset, or {@code -1} for {@code ENXIO}, which {@link #SEEK_DATA} answers
     * when no data follows {@code offset} (and {@link #SEEK_HOLE} for an offset at or past the end).
     */
    public static long seek(int fd, long offset, int whence) throws ErrnoException {
        try {
            return check("lseek", (long) LSEEK.invokeExact(capture(), fd, offset, whence), Errno.ENXIO);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** {@code ftruncate(2)}; {@code EINTR} is retried. */
    public static void ftruncate(int fd, long size) throws ErrnoException {
        try {
            while (check("ftruncate", (int) FTRUNCATE.invokeExact(capture(), fd, size), Errno.EINTR) < 0) {
                // interrupted: again
            }
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * {@code mmap(2)} of {@code length} bytes of {@code fd} at {@code offset}, {@code MAP_SHARED}. The returned
     * segment belongs to {@code arena}: closing the arena unmaps it, after which any access fails with an
     * exception instead of touching unmapped memory.
     */
    public static MemorySegment mmap(int fd, long offset, long length, int prot, Arena arena) throws ErrnoException {
        try {
            MemorySegment addr = (MemorySegment) MMAP.invokeExact(capture(), MemorySegment.NULL, length, prot,
                    MAP_SHARED, fd, offset);
            // MAP_FAILED is (void *) -1; a user-space address is positive as a long.
            long base = check("mmap", addr.address());
            return addr.reinterpret(length, arena, ignored -> munmapQuietly(base, length));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    private static void munmapQuietly(long address, long length) {
        try {
            int ignored = (int) MUNMAP.invokeExact(capture(), MemorySegment.ofAddress(address), length);
        } catch (Throwable t) {
            throw unchecked(t);
        }
    }

    /** {@code eventfd(2)}, close-on-exec, with the extra flags given ({@link #EFD_NONBLOCK}, ...). */
    public static int eventfd(int initialValue, int flags) throws ErrnoException {
        try {
            return check("eventfd", (int) EVENTFD.invokeExact(capture(), initialValue, flags | EFD_CLOEXEC));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** Per-thread 8-byte scratch for eventfd reads and writes, so signalling allocates nothing. */
    private static final ThreadLocal<MemorySegment> EVENT_VALUE =
            ThreadLocal.withInitial(() -> Arena.ofAuto().allocate(LONG));

    /** Adds {@code value} to an eventfd's counter (8-byte {@code write(2)}); allocation-free. */
    public static void eventfdWrite(int fd, long value) throws ErrnoException {
        MemorySegment v = EVENT_VALUE.get();
        v.set(LONG, 0, value);
        long n = write(fd, v);
        if (n != 8) {
            throw new ErrnoException("write(eventfd)", n < 0 ? Errno.EAGAIN : Errno.EIO);
        }
    }

    /**
     * Reads and resets an eventfd's counter (8-byte {@code read(2)}). Returns {@code -1} when the counter is
     * zero and the eventfd is non-blocking.
     */
    public static long eventfdRead(int fd) throws ErrnoException {
        MemorySegment v = EVENT_VALUE.get();
        long n = read(fd, v);
        if (n < 0) {
            return -1;
        }
        if (n != 8) {
            throw new ErrnoException("read(eventfd)", Errno.EIO);
        }
        return v.get(LONG, 0);
    }
}
