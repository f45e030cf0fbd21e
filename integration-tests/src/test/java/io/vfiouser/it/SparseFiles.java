package io.vfiouser.it;

import io.vfiouser.transport.linux.Linux;
import java.nio.file.Path;

/** How much of a file the file system holds data for, for tests of sparse backing files. */
public final class SparseFiles {
    private SparseFiles() {
    }

    /**
     * The bytes of {@code file} in data extents, found with {@code lseek(SEEK_DATA)} and {@code lseek(SEEK_HOLE)}:
     * what {@code du} counts, without the file system's metadata. Holes (never written, or punched) count nothing.
     */
    public static long allocatedBytes(Path file) throws Exception {
        int fd = Linux.open(file.toString(), Linux.O_RDONLY);
        try {
            long total = 0;
            long at = 0;
            while (true) {
                long data = Linux.seek(fd, at, Linux.SEEK_DATA);
                if (data < 0) {
                    return total;
                }
                long hole = Linux.seek(fd, data, Linux.SEEK_HOLE);
                total += hole - data;
                at = hole;
            }
        } finally {
            Linux.close(fd);
        }
    }
}
