package io.vfiouser.codec;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vfiouser.transport.linux.Errno;
import io.vfiouser.transport.linux.ErrnoException;
import io.vfiouser.transport.linux.Linux;

/** Real fds for ownership tests. */
final class Fds {
    private Fds() {
    }

    static int eventfd() throws ErrnoException {
        return Linux.eventfd(0, Linux.EFD_CLOEXEC);
    }

    static void assertOpen(int fd) throws ErrnoException {
        assertThat(Linux.fstat(fd)).isNotNull();
    }

    static void assertClosed(int fd) {
        assertThatThrownBy(() -> Linux.fstat(fd))
                .isInstanceOfSatisfying(ErrnoException.class, e -> assertThat(e.errno()).isEqualTo(Errno.EBADF));
    }
}
