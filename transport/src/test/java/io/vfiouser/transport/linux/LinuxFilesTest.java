package io.vfiouser.transport.linux;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assumptions.assumeThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code open}, {@code fallocate} hole punching and {@code lseek} over a file's extents. */
class LinuxFilesTest {
    private static final int MIB = 1 << 20;

    @TempDir
    Path dir;

    @Test
    void punchedHoleReadsAsZerosKeepsTheSizeAndIsFoundBySeekHole() throws Exception {
        Path file = dir.resolve("data");
        byte[] data = new byte[4 * MIB];
        Arrays.fill(data, (byte) 0x5A);
        Files.write(file, data);
        int fd = Linux.open(file.toString(), Linux.O_RDWR);
        try {
            assertThat(Linux.seek(fd, 0, Linux.SEEK_DATA)).as("written from the start").isZero();
            assertThat(Linux.seek(fd, 0, Linux.SEEK_HOLE)).as("no hole before the end").isEqualTo(4L * MIB);
            try {
                Linux.fallocate(fd, Linux.FALLOC_FL_PUNCH_HOLE | Linux.FALLOC_FL_KEEP_SIZE, MIB, 2L * MIB);
            } catch (ErrnoException e) {
                assumeThat(e.errno()).as("the file system of %s cannot punch holes", dir).isNotEqualTo(Errno.ENOTSUP);
                throw e;
            }
            assertThat(Linux.seek(fd, 0, Linux.SEEK_HOLE)).as("the hole starts where it was punched")
                    .isEqualTo(MIB);
            assertThat(Linux.seek(fd, MIB, Linux.SEEK_DATA)).as("data again after it").isEqualTo(3L * MIB);
            assertThat(Linux.fstat(fd).size()).as("KEEP_SIZE").isEqualTo(4L * MIB);
        } finally {
            Linux.close(fd);
        }
        byte[] after = Files.readAllBytes(file);
        for (int i = 0; i < after.length; i += 4096) {
            assertThat(after[i]).as("byte %d", i).isEqualTo(i >= MIB && i < 3 * MIB ? (byte) 0 : (byte) 0x5A);
        }
    }

    @Test
    void seekDataPastTheLastExtentAnswersMinusOne() throws Exception {
        Path file = dir.resolve("sparse");
        Files.write(file, new byte[] {1});
        int fd = Linux.open(file.toString(), Linux.O_RDWR);
        try {
            Linux.ftruncate(fd, 64L * MIB);
            assertThat(Linux.seek(fd, 4096, Linux.SEEK_DATA)).as("ENXIO: only holes follow").isEqualTo(-1);
            assertThat(Linux.seek(fd, 0, 0)).as("SEEK_SET").isZero();
        } finally {
            Linux.close(fd);
        }
    }

    @Test
    void openOfAMissingFileNamesTheCall() {
        assertThatThrownBy(() -> Linux.open(dir.resolve("missing").toString(), Linux.O_RDONLY))
                .isInstanceOfSatisfying(ErrnoException.class, e -> assertThat(e.errno()).isEqualTo(Errno.ENOENT))
                .hasMessageContaining("open");
    }
}
