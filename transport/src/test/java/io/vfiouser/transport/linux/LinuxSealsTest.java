package io.vfiouser.transport.linux;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

class LinuxSealsTest {
    @Test
    void aSealedMemfdCannotShrink() throws Exception {
        int fd = Linux.memfdCreate("sealed");
        try {
            Linux.ftruncate(fd, 8192);
            Linux.addSeals(fd, Linux.F_SEAL_SHRINK | Linux.F_SEAL_GROW);
            assertThat(Linux.getSeals(fd) & (Linux.F_SEAL_SHRINK | Linux.F_SEAL_GROW))
                    .isEqualTo(Linux.F_SEAL_SHRINK | Linux.F_SEAL_GROW);
            assertThatThrownBy(() -> Linux.ftruncate(fd, 4096)).isInstanceOfSatisfying(ErrnoException.class,
                    e -> assertThat(e.errno()).isEqualTo(Errno.EPERM));
            assertThat(Linux.fstat(fd).size()).isEqualTo(8192);
        } finally {
            Linux.close(fd);
        }
    }
}
