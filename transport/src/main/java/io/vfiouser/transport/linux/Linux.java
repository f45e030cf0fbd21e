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
 * project calls native code. Every call captures errno and turns a failure into an {@link ErrnoException}
 * that names the call; {@code EINTR} is retried. Non-blocking calls report {@code EAGAIN} as a return
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

    private static MemorySegment capture() {
        return CAPTURE.get();
    }

    private static int errno(MemorySegment capture) {
        return (int) ERRNO.get(capture, 0L);
    }

    private static RuntimeException rethrow(Throwable t) {
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
        MemorySegment cs = capture();
        try {
            int fd = (int) SOCKET.invokeExact(cs, AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            if (fd < 0) {
                throw new ErrnoException("socket", errno(cs));
            }
            return fd;
        } catch (ErrnoException e) {
            throw e;
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
        MemorySegment cs = capture();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment fds = arena.allocate(INT, 2);
            int type = SOCK_STREAM | SOCK_CLOEXEC | (nonBlocking ? SOCK_NONBLOCK : 0);
            int rc = (int) SOCKETPAIR.invokeExact(cs, AF_UNIX, type, 0, fds);
            if (rc < 0) {
                throw new ErrnoException("socketpair", errno(cs));
            }
            return new int[] {fds.getAtIndex(INT, 0), fds.getAtIndex(INT, 1)};
        } catch (ErrnoException e) {
            throw e;
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
        MemorySegment cs = capture();
        try (Arena arena = Arena.ofConfined()) {
            int rc = (int) BIND.invokeExact(cs, fd, sockaddrUn(arena, path), (int) SOCKADDR_UN_SIZE);
            if (rc < 0) {
                throw new ErrnoException("bind", errno(cs));
            }
        } catch (ErrnoException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static void listen(int fd, int backlog) throws ErrnoException {
        MemorySegment cs = capture();
        try {
            if ((int) LISTEN.invokeExact(cs, fd, backlog) < 0) {
                throw new ErrnoException("listen", errno(cs));
            }
        } catch (ErrnoException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** {@code accept4(2)} with {@code SOCK_NONBLOCK | SOCK_CLOEXEC}; {@code -1} when no connection is pending. */
    public static int accept(int fd) throws ErrnoException {
        MemorySegment cs = capture();
        try {
            while (true) {
                int child = (int) ACCEPT4.invokeExact(cs, fd, MemorySegment.NULL, MemorySegment.NULL,
                        SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (child >= 0) {
                    return child;
                }
                int err = errno(cs);
                if (err == Errno.EAGAIN) {
                    return -1;
                }
                if (err != Errno.EINTR) {
                    throw new ErrnoException("accept4", err);
                }
            }
        } catch (ErrnoException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * {@code connect(2)} to a unix socket path. Returns {@code true} when connected, {@code false} when a
     * non-blocking connect is still in progress.
     */
    public static boolean connect(int fd, String path) throws ErrnoException {
        MemorySegment cs = capture();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment addr = sockaddrUn(arena, path);
            while (true) {
                int rc = (int) CONNECT.invokeExact(cs, fd, addr, (int) SOCKADDR_UN_SIZE);
                if (rc == 0) {
                    return true;
                }
                int err = errno(cs);
                if (err == Errno.EINPROGRESS || err == Errno.EAGAIN) {
                    return false;
                }
                if (err != Errno.EINTR) {
                    throw new ErrnoException("connect", err);
                }
            }
        } catch (ErrnoException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** The credentials of the peer of a connected unix socket ({@code SO_PEERCRED}). */
    public static PeerCredentials peerCredentials(int fd) throws ErrnoException {
        MemorySegment cs = capture();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment ucred = arena.allocate(12);
            MemorySegment len = arena.allocate(INT);
            len.set(INT, 0, 12);
            int rc = (int) GETSOCKOPT.invokeExact(cs, fd, SOL_SOCKET, SO_PEERCRED, ucred, len);
            if (rc < 0) {
                throw new ErrnoException("getsockopt(SO_PEERCRED)", errno(cs));
            }
            return new PeerCredentials(ucred.get(INT, 0), ucred.get(INT, 4), ucred.get(INT, 8));
        } catch (ErrnoException e) {
            throw e;
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
        MemorySegment cs = capture();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment value = arena.allocate(INT);
            MemorySegment len = arena.allocate(INT);
            len.set(INT, 0, 4);
            int rc = (int) GETSOCKOPT.invokeExact(cs, fd, SOL_SOCKET, option, value, len);
            if (rc < 0) {
                throw new ErrnoException("getsockopt(" + option + ")", errno(cs));
            }
            return value.get(INT, 0);
        } catch (ErrnoException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * {@code recvmsg(2)} into the buffers and control space prepared in {@code msg}, with
     * {@code MSG_CMSG_CLOEXEC}. Returns the byte count (0 at end of stream) or {@code -1} for {@code EAGAIN}.
     */
    public static long recvmsg(int fd, MsgHdr msg) throws ErrnoException {
        try {
            long first = (long) RECVMSG_FIRST.invokeExact(fd, msg.segment(), MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
            if (first >= 0) {
                return first;
            }
        } catch (Throwable t) {
            throw rethrow(t);
        }
        MemorySegment cs = capture();
        try {
            while (true) {
                long n = (long) RECVMSG.invokeExact(cs, fd, msg.segment(), MSG_CMSG_CLOEXEC);
                if (n >= 0) {
                    return n;
                }
                int err = errno(cs);
                if (err == Errno.EAGAIN) {
                    return -1;
                }
                if (err != Errno.EINTR) {
                    throw new ErrnoException("recvmsg", err);
                }
            }
        } catch (ErrnoException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * {@code sendmsg(2)} of the buffers and fds prepared in {@code msg}, with {@code MSG_NOSIGNAL}. Returns the
     * byte count or {@code -1} for {@code EAGAIN}.
     */
    public static long sendmsg(int fd, MsgHdr msg) throws ErrnoException {
        try {
            long first = (long) SENDMSG_FIRST.invokeExact(fd, msg.segment(), MSG_NOSIGNAL | MSG_DONTWAIT);
            if (first >= 0) {
                return first;
            }
        } catch (Throwable t) {
            throw rethrow(t);
        }
        MemorySegment cs = capture();
        try {
            while (true) {
                long n = (long) SENDMSG.invokeExact(cs, fd, msg.segment(), MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n >= 0) {
                    return n;
                }
                int err = errno(cs);
                if (err == Errno.EAGAIN) {
                    return -1;
                }
                if (err != Errno.EINTR) {
                    throw new ErrnoException("sendmsg", err);
                }
            }
        } catch (ErrnoException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * {@code send(2)} of {@code length} bytes at native {@code address}, with {@code MSG_NOSIGNAL}: the cheaper call
     * for one buffer without fds. Returns the byte count or {@code -1} for {@code EAGAIN}.
     */
    public static long send(int fd, long address, long length) throws ErrnoException {
        try {
            long first = (long) SEND_FIRST.invokeExact(fd, address, length, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (first >= 0) {
                return first;
            }
        } catch (Throwable t) {
            throw rethrow(t);
        }
        MemorySegment cs = capture();
        try {
            while (true) {
                long n = (long) SEND.invokeExact(cs, fd, address, length, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n >= 0) {
                    return n;
                }
                int err = errno(cs);
                if (err == Errno.EAGAIN) {
                    return -1;
                }
                if (err != Errno.EINTR) {
                    throw new ErrnoException("send", err);
                }
            }
        } catch (ErrnoException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    // ------------------------------------------------------------------------------------------ descriptors

    /** {@code close(2)}. {@code EINTR} is not retried (Linux has released the fd already). */
    public static void close(int fd) throws ErrnoException {
        MemorySegment cs = capture();
        try {
            int rc = (int) CLOSE.invokeExact(cs, fd);
            if (rc < 0) {
                int err = errno(cs);
                if (err != Errno.EINTR) {
                    throw new ErrnoException("close", err);
                }
            }
        } catch (ErrnoException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** A close-on-exec duplicate of {@code fd}. */
    public static int dup(int fd) throws ErrnoException {
        MemorySegment cs = capture();
        try {
            int copy = (int) FCNTL.invokeExact(cs, fd, F_DUPFD_CLOEXEC, 0);
            if (copy < 0) {
                throw new ErrnoException("fcntl(F_DUPFD_CLOEXEC)", errno(cs));
            }
            return copy;
        } catch (ErrnoException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** Adds seals to a memfd created with sealing allowed ({@code fcntl(F_ADD_SEALS)}). */
    public static void addSeals(int fd, int seals) throws ErrnoException {
        MemorySegment cs = capture();
        try {
            if ((int) FCNTL.invokeExact(cs, fd, F_ADD_SEALS, seals) < 0) {
                throw new ErrnoException("fcntl(F_ADD_SEALS)", errno(cs));
            }
        } catch (ErrnoException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** The seals of a memfd ({@code fcntl(F_GET_SEALS)}); EINVAL for files that cannot be sealed. */
    public static int getSeals(int fd) throws ErrnoException {
        MemorySegment cs = capture();
        try {
            int seals = (int) FCNTL.invokeExact(cs, fd, F_GET_SEALS, 0);
            if (seals < 0) {
                throw new ErrnoException("fcntl(F_GET_SEALS)", errno(cs));
            }
            return seals;
        } catch (ErrnoException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** Puts {@code fd} into non-blocking mode ({@code O_NONBLOCK}), as an event loop needs. */
    public static void setNonBlocking(int fd) throws ErrnoException {
        MemorySegment cs = capture();
        try {
            int flags = (int) FCNTL.invokeExact(cs, fd, F_GETFL, 0);
            if (flags < 0) {
                throw new ErrnoException("fcntl(F_GETFL)", errno(cs));
            }
            if ((flags & O_NONBLOCK) == 0 && (int) FCNTL.invokeExact(cs, fd, F_SETFL, flags | O_NONBLOCK) < 0) {
                throw new ErrnoException("fcntl(F_SETFL)", errno(cs));
            }
        } catch (ErrnoException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * Clears {@code O_NONBLOCK} on {@code fd}'s open file description. The server never needs it; tests use it to
     * play a client that makes a shared eventfd blocking again behind the server's back.
     */
    public static void setBlocking(int fd) throws ErrnoException {
        MemorySegment cs = capture();
        try {
            int flags = (int) FCNTL.invokeExact(cs, fd, F_GETFL, 0);
            if (flags < 0) {
                throw new ErrnoException("fcntl(F_GETFL)", errno(cs));
            }
            if ((flags & O_NONBLOCK) != 0 && (int) FCNTL.invokeExact(cs, fd, F_SETFL, flags & ~O_NONBLOCK) < 0) {
                throw new ErrnoException("fcntl(F_SETFL)", errno(cs));
            }
        } catch (ErrnoException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** Whether {@code O_NONBLOCK} is set on {@code fd}'s open file description. */
    public static boolean isNonBlocking(int fd) throws ErrnoException {
        MemorySegment cs = capture();
        try {
            int flags = (int) FCNTL.invokeExact(cs, fd, F_GETFL, 0);
            if (flags < 0) {
                throw new ErrnoException("fcntl(F_GETFL)", errno(cs));
            }
            return (flags & O_NONBLOCK) != 0;
        } catch (ErrnoException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** What {@code /proc/self/fd/<fd>} links to: a path, or a kind such as {@code anon_inode:[eventfd]}. */
    public static String fdTarget(int fd) throws ErrnoException {
        MemorySegment cs = capture();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment path = arena.allocateFrom("/proc/self/fd/" + fd);
            MemorySegment target = arena.allocate(4096);
            long n = (long) READLINK.invokeExact(cs, path, target, target.byteSize());
            if (n < 0) {
                throw new ErrnoException("readlink(/proc/self/fd/" + fd + ")", errno(cs));
            }
            return new String(target.asSlice(0, n).toArray(ValueLayout.JAVA_BYTE), StandardCharsets.UTF_8);
        } catch (ErrnoException e) {
            throw e;
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
        MemorySegment cs = capture();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment fds = arena.allocate(INT, 2);
            int rc = (int) PIPE2.invokeExact(cs, fds, O_CLOEXEC | (nonBlocking ? O_NONBLOCK : 0));
            if (rc < 0) {
                throw new ErrnoException("pipe2", errno(cs));
            }
            return new int[] {fds.getAtIndex(INT, 0), fds.getAtIndex(INT, 1)};
        } catch (ErrnoException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** {@code read(2)} into a native segment; {@code -1} for {@code EAGAIN}. */
    public static long read(int fd, MemorySegment buffer) throws ErrnoException {
        MemorySegment cs = capture();
        try {
            while (true) {
                long n = (long) READ.invokeExact(cs, fd, buffer, buffer.byteSize());
                if (n >= 0) {
                    return n;
                }
                int err = errno(cs);
                if (err == Errno.EAGAIN) {
                    return -1;
                }
                if (err != Errno.EINTR) {
                    throw new ErrnoException("read", err);
                }
            }
        } catch (ErrnoException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** {@code write(2)} from a native segment; {@code -1} for {@code EAGAIN}. */
    public static long write(int fd, MemorySegment buffer) throws ErrnoException {
        MemorySegment cs = capture();
        try {
            while (true) {
                long n = (long) WRITE.invokeExact(cs, fd, buffer, buffer.byteSize());
                if (n >= 0) {
                    return n;
                }
                int err = errno(cs);
                if (err == Errno.EAGAIN) {
                    return -1;
                }
                if (err != Errno.EINTR) {
                    throw new ErrnoException("write", err);
                }
            }
        } catch (ErrnoException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** {@code fstat(2)}: the fields the project uses. */
    public static FileStat fstat(int fd) throws ErrnoException {
        MemorySegment cs = capture();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment st = arena.allocate(STAT_SIZE, 8);
            int rc = (int) FSTAT.invokeExact(cs, fd, st);
            if (rc < 0) {
                throw new ErrnoException("fstat", errno(cs));
            }
            return new FileStat(st.get(INT, STAT_MODE), st.get(LONG, STAT_ST_SIZE));
        } catch (ErrnoException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** {@code fchmod(2)}; on a socket before {@code bind} it sets the mode of the socket file. */
    public static void fchmod(int fd, int mode) throws ErrnoException {
        MemorySegment cs = capture();
        try {
            if ((int) FCHMOD.invokeExact(cs, fd, mode) < 0) {
                throw new ErrnoException("fchmod", errno(cs));
            }
        } catch (ErrnoException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** {@code unlink(2)}; returns {@code false} if the path did not exist. */
    public static boolean unlink(String path) throws ErrnoException {
        MemorySegment cs = capture();
        try (Arena arena = Arena.ofConfined()) {
            int rc = (int) UNLINK.invokeExact(cs, arena.allocateFrom(path));
            if (rc < 0) {
                int err = errno(cs);
                if (err == Errno.ENOENT) {
                    return false;
                }
                throw new ErrnoException("unlink", err);
            }
            return true;
        } catch (ErrnoException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * {@code link(2)}: gives the file at {@code existing} the additional name {@code newPath}, atomically, and
     * fails with {@code EEXIST} rather than replace a file that already has that name.
     */
    public static void link(String existing, String newPath) throws ErrnoException {
        MemorySegment cs = capture();
        try (Arena arena = Arena.ofConfined()) {
            if ((int) LINK.invokeExact(cs, arena.allocateFrom(existing), arena.allocateFrom(newPath)) < 0) {
                throw new ErrnoException("link", errno(cs));
            }
        } catch (ErrnoException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** Pins the calling thread to one CPU (0..63) with {@code sched_setaffinity(2)}; for benchmarks. */
    public static void pinCurrentThread(int cpu) throws ErrnoException {
        if (cpu < 0 || cpu > 63) {
            throw new IllegalArgumentException("cpu must be 0..63: " + cpu);
        }
        MemorySegment cs = capture();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment mask = arena.allocate(LONG);
            mask.set(LONG, 0, 1L << cpu);
            if ((int) SCHED_SETAFFINITY.invokeExact(cs, 0, 8L, mask) != 0) {
                throw new ErrnoException("sched_setaffinity", errno(cs));
            }
        } catch (ErrnoException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    // ------------------------------------------------------------------------------------- memory and events

    /** {@code memfd_create(2)} with {@code MFD_CLOEXEC}. */
    public static int memfdCreate(String name) throws ErrnoException {
        MemorySegment cs = capture();
        try (Arena arena = Arena.ofConfined()) {
            int fd = (int) MEMFD_CREATE.invokeExact(cs, arena.allocateFrom(name), MFD_CLOEXEC | MFD_ALLOW_SEALING);
            if (fd < 0) {
                throw new ErrnoException("memfd_create", errno(cs));
            }
            return fd;
        } catch (ErrnoException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static void ftruncate(int fd, long size) throws ErrnoException {
        MemorySegment cs = capture();
        try {
            while (true) {
                int rc = (int) FTRUNCATE.invokeExact(cs, fd, size);
                if (rc == 0) {
                    return;
                }
                int err = errno(cs);
                if (err != Errno.EINTR) {
                    throw new ErrnoException("ftruncate", err);
                }
            }
        } catch (ErrnoException e) {
            throw e;
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
        MemorySegment cs = capture();
        try {
            MemorySegment addr = (MemorySegment) MMAP.invokeExact(cs, MemorySegment.NULL, length, prot, MAP_SHARED,
                    fd, offset);
            if (addr.address() == -1L) {
                throw new ErrnoException("mmap", errno(cs));
            }
            long base = addr.address();
            return addr.reinterpret(length, arena, ignored -> munmapQuietly(base, length));
        } catch (ErrnoException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    private static void munmapQuietly(long address, long length) {
        try {
            int ignored = (int) MUNMAP.invokeExact(capture(), MemorySegment.ofAddress(address), length);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** {@code eventfd(2)}, close-on-exec, with the extra flags given ({@link #EFD_NONBLOCK}, ...). */
    public static int eventfd(int initialValue, int flags) throws ErrnoException {
        MemorySegment cs = capture();
        try {
            int fd = (int) EVENTFD.invokeExact(cs, initialValue, flags | EFD_CLOEXEC);
            if (fd < 0) {
                throw new ErrnoException("eventfd", errno(cs));
            }
            return fd;
        } catch (ErrnoException e) {
            throw e;
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
