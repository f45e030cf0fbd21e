package io.vfiouser.device;

import java.util.EnumSet;
import java.util.Objects;
import java.util.Set;

/**
 * The file a device supplies behind a {@linkplain Region.Backing#DEVICE device-backed} region: its mmappable areas
 * (or, for a memory-backed region, all of it) live in {@code fd} starting at {@code offset}, the byte at region
 * offset {@code x} being at file offset {@code offset + x}. Handed over once, from
 * {@link VfioUserDevice#regionBacking}, when the device is hosted.
 *
 * <p><b>Ownership:</b> the server <em>takes</em> the fd (it does not duplicate it). From the moment
 * {@code regionBacking} returns, the fd is the server's: it closes it exactly once, when the device stops being
 * served, or at once if it refuses the fd or hosting fails halfway. A device that wants to keep using the file
 * itself passes a duplicate and keeps its own descriptor; it reaches the memory the server mapped through
 * {@link DeviceContext#areaMemory} or {@link DeviceContext#regionMemory}.
 *
 * <p>The server refuses the fd (hosting fails with {@link IllegalArgumentException}) when it is not a regular
 * file (a memfd, a tmpfs, hugetlbfs or DAX file, an ordinary file), when the file is shorter than
 * {@code offset} plus the span the region needs, or when it lacks one of {@code requiredSeals}. The client receives
 * the same file to mmap, and can map every byte of it, not only the areas: put nothing else in it.
 *
 * <p>Seals: a client holding a writable fd of a file can shrink it, and the server's own accesses to a page past
 * the new end fault (SIGBUS). {@link #sealed} requires {@link Seal#SHRINK}, which a memfd gets with
 * {@code fcntl(F_ADD_SEALS)}; use it whenever the file can be sealed. {@link #unsealed} is for files that cannot
 * be (an ordinary file): the server then serves the client's message accesses through fault-contained copies (a
 * fault becomes EIO), but the device's own accesses through the segment are its risk, as with
 * {@link DmaSpace#withSegment} on unsealed guest memory.
 *
 * @param fd            an open, read-write file descriptor; the server's from the call on
 * @param offset        where region offset 0 lies in the file; a multiple of 4096, reported to the client as the
 *                      region's {@code offset} in DEVICE_GET_REGION_INFO
 * @param requiredSeals seals the file must have; the server checks them with {@code F_GET_SEALS}
 */
public record RegionBacking(int fd, long offset, Set<Seal> requiredSeals) {
    /** A memfd seal the server can require ({@code F_SEAL_*}). */
    public enum Seal {
        /** {@code F_SEAL_SHRINK}: no one can make the file smaller, so mapped pages never vanish. */
        SHRINK,
        /** {@code F_SEAL_GROW}: no one can make the file larger. */
        GROW,
        /** {@code F_SEAL_SEAL}: the seals can no longer change. */
        SEAL
    }

    public RegionBacking {
        Objects.requireNonNull(requiredSeals, "requiredSeals");
        requiredSeals = requiredSeals.isEmpty() ? Set.of() : Set.copyOf(EnumSet.copyOf(requiredSeals));
        if (fd < 0) {
            throw new IllegalArgumentException("not an fd: " + fd);
        }
        if (offset < 0 || (offset & 4095) != 0) {
            throw new IllegalArgumentException("the offset of a region's backing is page aligned: " + offset);
        }
    }

    /** A sealable file (a memfd) that must be sealed against shrinking: the safe choice. */
    public static RegionBacking sealed(int fd, long offset) {
        return new RegionBacking(fd, offset, Set.of(Seal.SHRINK));
    }

    /** A file that cannot be sealed; see the class comment for what that costs. */
    public static RegionBacking unsealed(int fd, long offset) {
        return new RegionBacking(fd, offset, Set.of());
    }
}
