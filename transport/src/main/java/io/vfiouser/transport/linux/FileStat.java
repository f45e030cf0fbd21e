package io.vfiouser.transport.linux;

/** What {@code fstat(2)} says of a file that the project cares about. */
public record FileStat(int mode, long size) {
    private static final int S_IFMT = 0170000;

    /** The file type bits of {@link #mode()} ({@code S_IFREG}, {@code S_IFSOCK}, ...). */
    public int type() {
        return mode & S_IFMT;
    }

    /** The permission bits of {@link #mode()}. */
    public int permissions() {
        return mode & 07777;
    }
}
