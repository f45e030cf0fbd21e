package io.vfiouser.transport.linux;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.junit.jupiter.api.Test;

class LinuxTest {

    @Test
    void errnoExceptionNamesTheCallAndTheErrno() {
        assertThatThrownBy(() -> Linux.close(-1))
                .isInstanceOfSatisfying(ErrnoException.class, e -> {
                    assertThat(e.call()).isEqualTo("close");
                    assertThat(e.errno()).isEqualTo(Errno.EBADF);
                    assertThat(e.getMessage()).contains("close").contains("EBADF");
                });
        assertThatThrownBy(() -> Linux.fstat(-1))
                .isInstanceOfSatisfying(ErrnoException.class, e -> assertThat(e.call()).isEqualTo("fstat"));
    }

    /**
     * Every wrapper hands its result to one call-and-check helper: a failure names the wrapper's call and carries the
     * errno of that call (read only after it failed, including behind the non-capturing first attempt of
     * recvmsg/sendmsg/send), an errno the wrapper expects is an answer, and a call that would block is -1.
     */
    @Test
    void failuresNameTheirCallAndExpectedErrnosAreAnswers() throws Exception {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buffer = arena.allocate(8);
            MsgHdr msg = new MsgHdr();
            msg.iov(0, buffer.address(), 8);
            msg.prepareReceive(1);
            assertFails(() -> Linux.recvmsg(-1, msg), "recvmsg", Errno.EBADF);
            msg.prepareSend(1, new int[0], 0);
            assertFails(() -> Linux.sendmsg(-1, msg), "sendmsg", Errno.EBADF);
            assertFails(() -> Linux.send(-1, buffer.address(), 8), "send", Errno.EBADF);
            assertFails(() -> Linux.read(-1, buffer), "read", Errno.EBADF);
            assertFails(() -> Linux.write(-1, buffer), "write", Errno.EBADF);
            assertFails(() -> Linux.accept(-1), "accept4", Errno.EBADF);
            assertFails(() -> Linux.connect(-1, "/nonexistent/vfu.sock"), "connect", Errno.EBADF);
            assertFails(() -> Linux.listen(-1, 1), "listen", Errno.EBADF);
            assertFails(() -> Linux.dup(-1), "fcntl(F_DUPFD_CLOEXEC)", Errno.EBADF);
            assertFails(() -> Linux.isNonBlocking(-1), "fcntl(F_GETFL)", Errno.EBADF);
            assertFails(() -> Linux.ftruncate(-1, 0), "ftruncate", Errno.EBADF);
            assertFails(() -> Linux.link("/nonexistent/a", "/nonexistent/b"), "link", Errno.ENOENT);
            assertFails(() -> Linux.eventfd(0, -1), "eventfd", Errno.EINVAL);
        }
        assertThat(Linux.unlink("/nonexistent-" + ProcessHandle.current().pid())).as("ENOENT is an answer").isFalse();

        int[] pipe = Linux.pipe(true);
        int[] pair = Linux.socketPair(true);
        int socket = Linux.socketUnix();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buffer = arena.allocate(8);
            assertThat(Linux.read(pipe[0], buffer)).as("EAGAIN").isEqualTo(-1);
            assertThat(Linux.isListeningUnixSocket(pipe[0])).as("ENOTSOCK is an answer").isFalse();
            assertFails(() -> Linux.accept(pair[0]), "accept4", Errno.EINVAL);
            assertFails(() -> Linux.getSeals(pipe[0]), "fcntl(F_GET_SEALS)", Errno.EINVAL);
            String path = System.getProperty("java.io.tmpdir") + "/linux-test-" + ProcessHandle.current().pid();
            Linux.unlink(path);
            assertFails(() -> Linux.connect(socket, path), "connect", Errno.ENOENT);
        } finally {
            for (int fd : new int[] {pipe[0], pipe[1], pair[0], pair[1], socket}) {
                Linux.close(fd);
            }
        }
    }

    private interface NativeCall {
        void run() throws Exception;
    }

    private static void assertFails(NativeCall call, String name, int errno) {
        assertThatThrownBy(call::run).isInstanceOfSatisfying(ErrnoException.class, e -> {
            assertThat(e.call()).isEqualTo(name);
            assertThat(e.errno()).isEqualTo(errno);
        });
    }

    @Test
    void memfdIsSizedMappedSharedAndUnmappedWithItsArena() throws Exception {
        int fd = Linux.memfdCreate("linux-test");
        try {
            Linux.ftruncate(fd, 8192);
            FileStat stat = Linux.fstat(fd);
            assertThat(stat.size()).isEqualTo(8192);
            assertThat(stat.type()).isEqualTo(0100000); // S_IFREG

            Arena first = Arena.ofShared();
            MemorySegment a = Linux.mmap(fd, 0, 8192, Linux.PROT_READ | Linux.PROT_WRITE, first);
            a.set(ValueLayout.JAVA_LONG, 4096, 0x1122334455667788L);
            try (Arena second = Arena.ofConfined()) {
                MemorySegment b = Linux.mmap(fd, 4096, 4096, Linux.PROT_READ, second);
                assertThat(b.get(ValueLayout.JAVA_LONG, 0)).isEqualTo(0x1122334455667788L);
            }
            first.close();
            assertThatThrownBy(() -> a.get(ValueLayout.JAVA_LONG, 0)).isInstanceOf(IllegalStateException.class);
        } finally {
            Linux.close(fd);
        }
    }

    @Test
    void mmapBeyondTheFileFailsWithoutCrashing() throws Exception {
        int fd = Linux.memfdCreate("linux-test");
        try (Arena arena = Arena.ofConfined()) {
            assertThatThrownBy(() -> Linux.mmap(-1, 0, 4096, Linux.PROT_READ, arena))
                    .isInstanceOfSatisfying(ErrnoException.class, e -> assertThat(e.errno()).isEqualTo(Errno.EBADF));
        } finally {
            Linux.close(fd);
        }
    }

    @Test
    void eventfdCountsWritesAndReadsReset() throws Exception {
        int fd = Linux.eventfd(0, Linux.EFD_NONBLOCK);
        try {
            assertThat(Linux.eventfdRead(fd)).isEqualTo(-1);
            Linux.eventfdWrite(fd, 1);
            Linux.eventfdWrite(fd, 2);
            assertThat(Linux.eventfdRead(fd)).isEqualTo(3);
            assertThat(Linux.eventfdRead(fd)).isEqualTo(-1);
        } finally {
            Linux.close(fd);
        }
    }

    @Test
    void onlyAnEventfdIsAnEventfd() throws Exception {
        int event = Linux.eventfd(0, 0);
        int[] pipe = Linux.pipe(false);
        int memfd = Linux.memfdCreate("linux-test");
        int[] pair = Linux.socketPair(false);
        try {
            assertThat(Linux.isEventFd(event)).isTrue();
            int copy = Linux.dup(event);
            assertThat(Linux.isEventFd(copy)).as("a duplicate is the same eventfd").isTrue();
            Linux.close(copy);
            assertThat(Linux.fdTarget(pipe[1])).startsWith("pipe:[");
            assertThat(Linux.isEventFd(pipe[0])).isFalse();
            assertThat(Linux.isEventFd(pipe[1])).isFalse();
            assertThat(Linux.isEventFd(memfd)).isFalse();
            assertThat(Linux.isEventFd(pair[0])).isFalse();
            assertThatThrownBy(() -> Linux.isEventFd(-1))
                    .isInstanceOfSatisfying(ErrnoException.class, e -> assertThat(e.errno()).isEqualTo(Errno.ENOENT));
        } finally {
            for (int fd : new int[] {event, pipe[0], pipe[1], memfd, pair[0], pair[1]}) {
                Linux.close(fd);
            }
        }
    }

    @Test
    void nonBlockingIsAFlagOfTheOpenFileDescriptionSharedByDuplicates() throws Exception {
        int fd = Linux.eventfd(0, 0);
        int copy = Linux.dup(fd);
        try {
            assertThat(Linux.isNonBlocking(fd)).isFalse();
            Linux.setNonBlocking(copy);
            assertThat(Linux.isNonBlocking(copy)).isTrue();
            assertThat(Linux.isNonBlocking(fd)).isTrue();
            int[] pipe = Linux.pipe(true);
            assertThat(Linux.isNonBlocking(pipe[1])).isTrue();
            Linux.close(pipe[0]);
            Linux.close(pipe[1]);
        } finally {
            Linux.close(fd);
            Linux.close(copy);
        }
    }

    @Test
    void dupGivesAnIndependentDescriptor() throws Exception {
        int fd = Linux.eventfd(0, Linux.EFD_NONBLOCK);
        int copy = Linux.dup(fd);
        assertThat(copy).isNotEqualTo(fd);
        Linux.close(fd);
        Linux.eventfdWrite(copy, 5);
        assertThat(Linux.eventfdRead(copy)).isEqualTo(5);
        Linux.close(copy);
    }

    @Test
    void sendmsgAndRecvmsgCarryFdsWithTheBytes() throws Exception {
        int[] pair = Linux.socketPair(true);
        int event = Linux.eventfd(0, Linux.EFD_NONBLOCK);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(16);
            out.set(ValueLayout.JAVA_LONG, 0, 42);
            MsgHdr send = new MsgHdr();
            send.iov(0, out.address(), 16);
            send.prepareSend(1, new int[] {event, event}, 2);
            assertThat(Linux.sendmsg(pair[0], send)).isEqualTo(16);

            MemorySegment in = arena.allocate(64);
            MsgHdr recv = new MsgHdr();
            recv.iov(0, in.address(), 64);
            recv.prepareReceive(1);
            assertThat(Linux.recvmsg(pair[1], recv)).isEqualTo(16);
            assertThat(recv.controlTruncated()).isFalse();
            int[] fds = recv.receivedFds();
            assertThat(fds).hasSize(2).doesNotContain(event);
            assertThat(in.get(ValueLayout.JAVA_LONG, 0)).isEqualTo(42);

            Linux.eventfdWrite(fds[0], 7);
            assertThat(Linux.eventfdRead(event)).isEqualTo(7);
            for (int fd : fds) {
                Linux.close(fd);
            }
            recv.prepareReceive(1);
            assertThat(Linux.recvmsg(pair[1], recv)).isEqualTo(-1); // EAGAIN
        } finally {
            Linux.close(event);
            Linux.close(pair[0]);
            Linux.close(pair[1]);
        }
    }

    @Test
    void peerCredentialsNameThisProcess() throws Exception {
        int[] pair = Linux.socketPair(true);
        try {
            PeerCredentials peer = Linux.peerCredentials(pair[0]);
            assertThat(peer.pid()).isEqualTo(ProcessHandle.current().pid());
        } finally {
            Linux.close(pair[0]);
            Linux.close(pair[1]);
        }
    }
}
