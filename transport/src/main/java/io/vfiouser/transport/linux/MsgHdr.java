package io.vfiouser.transport.linux;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Native scratch for one {@code recvmsg(2)} or {@code sendmsg(2)} at a time: a {@code struct msghdr}, an
 * {@code iovec} array and a control buffer big enough for {@link #MAX_FDS} descriptors. One instance belongs
 * to one channel and is used from its event loop only, so the hot path allocates nothing.
 *
 * <p>Layout (x86-64): {@code msghdr} is 56 bytes ({@code msg_name} 0, {@code msg_namelen} 8, {@code msg_iov}
 * 16, {@code msg_iovlen} 24, {@code msg_control} 32, {@code msg_controllen} 40, {@code msg_flags} 48); an
 * {@code iovec} is 16 bytes; a {@code cmsghdr} is 16 bytes ({@code cmsg_len} 0, {@code cmsg_level} 8,
 * {@code cmsg_type} 12) followed by its data.
 */
public final class MsgHdr {
    /** The kernel's limit of descriptors in one message ({@code SCM_MAX_FD}). */
    public static final int MAX_FDS = 253;
    /** The most buffers one call gathers or scatters. */
    public static final int MAX_IOV = 64;

    private static final long MSG_IOV = 16;
    private static final long MSG_IOVLEN = 24;
    private static final long MSG_CONTROL = 32;
    private static final long MSG_CONTROLLEN = 40;
    private static final long MSG_FLAGS = 48;
    private static final long MSGHDR_SIZE = 56;
    private static final long IOVEC_SIZE = 16;
    private static final long CMSG_HDR = 16;
    private static final long CONTROL_SIZE = cmsgSpace(MAX_FDS * 4L);

    private final MemorySegment segment;
    private final MemorySegment iov;
    private final MemorySegment control;

    public MsgHdr() {
        segment = Arena.ofAuto().allocate(MSGHDR_SIZE + MAX_IOV * IOVEC_SIZE + CONTROL_SIZE, 8);
        iov = segment.asSlice(MSGHDR_SIZE, MAX_IOV * IOVEC_SIZE);
        control = segment.asSlice(MSGHDR_SIZE + MAX_IOV * IOVEC_SIZE, CONTROL_SIZE);
        segment.set(ValueLayout.ADDRESS, MSG_IOV, iov);
    }

    private static long cmsgSpace(long dataLength) {
        return CMSG_HDR + ((dataLength + 7) & ~7L);
    }

    MemorySegment segment() {
        return segment;
    }

    /** Points buffer {@code index} at {@code length} native bytes at {@code address}. */
    public void iov(int index, long address, long length) {
        long at = index * IOVEC_SIZE;
        iov.set(ValueLayout.JAVA_LONG, at, address);
        iov.set(ValueLayout.JAVA_LONG, at + 8, length);
    }

    /** Prepares a receive into the first {@code iovCount} buffers, with room for {@link #MAX_FDS} fds. */
    public void prepareReceive(int iovCount) {
        checkIovCount(iovCount);
        segment.set(ValueLayout.JAVA_LONG, MSG_IOVLEN, iovCount);
        segment.set(ValueLayout.ADDRESS, MSG_CONTROL, control);
        segment.set(ValueLayout.JAVA_LONG, MSG_CONTROLLEN, CONTROL_SIZE);
        segment.set(ValueLayout.JAVA_INT, MSG_FLAGS, 0);
    }

    /** Prepares a send of the first {@code iovCount} buffers, with {@code fdCount} fds from {@code fds}. */
    public void prepareSend(int iovCount, int[] fds, int fdCount) {
        checkIovCount(iovCount);
        if (fdCount < 0 || fdCount > MAX_FDS) {
            throw new IllegalArgumentException("fd count " + fdCount + " not in 0.." + MAX_FDS);
        }
        segment.set(ValueLayout.JAVA_LONG, MSG_IOVLEN, iovCount);
        segment.set(ValueLayout.JAVA_INT, MSG_FLAGS, 0);
        if (fdCount == 0) {
            segment.set(ValueLayout.ADDRESS, MSG_CONTROL, MemorySegment.NULL);
            segment.set(ValueLayout.JAVA_LONG, MSG_CONTROLLEN, 0);
            return;
        }
        long dataLength = fdCount * 4L;
        control.set(ValueLayout.JAVA_LONG, 0, CMSG_HDR + dataLength);
        control.set(ValueLayout.JAVA_INT, 8, Linux.SOL_SOCKET);
        control.set(ValueLayout.JAVA_INT, 12, Linux.SCM_RIGHTS);
        for (int i = 0; i < fdCount; i++) {
            control.set(ValueLayout.JAVA_INT, CMSG_HDR + i * 4L, fds[i]);
        }
        segment.set(ValueLayout.ADDRESS, MSG_CONTROL, control);
        segment.set(ValueLayout.JAVA_LONG, MSG_CONTROLLEN, cmsgSpace(dataLength));
    }

    private static void checkIovCount(int iovCount) {
        if (iovCount < 1 || iovCount > MAX_IOV) {
            throw new IllegalArgumentException("iov count " + iovCount + " not in 1.." + MAX_IOV);
        }
    }

    /** {@code msg_flags} as the last receive left it. */
    public int flags() {
        return segment.get(ValueLayout.JAVA_INT, MSG_FLAGS);
    }

    /** Whether the last receive lost control data ({@code MSG_CTRUNC}). */
    public boolean controlTruncated() {
        return (flags() & Linux.MSG_CTRUNC) != 0;
    }

    /**
     * The descriptors the last receive installed in this process, in order. The caller owns them from here on.
     * Returns an empty array when none arrived.
     */
    public int[] receivedFds() {
        long controlLength = segment.get(ValueLayout.JAVA_LONG, MSG_CONTROLLEN);
        if (controlLength < CMSG_HDR) {
            return EMPTY;
        }
        int[] fds = EMPTY;
        long at = 0;
        while (at + CMSG_HDR <= controlLength) {
            long length = control.get(ValueLayout.JAVA_LONG, at);
            if (length < CMSG_HDR || at + length > controlLength) {
                break;
            }
            int level = control.get(ValueLayout.JAVA_INT, at + 8);
            int type = control.get(ValueLayout.JAVA_INT, at + 12);
            if (level == Linux.SOL_SOCKET && type == Linux.SCM_RIGHTS) {
                int n = (int) ((length - CMSG_HDR) / 4);
                int[] grown = new int[fds.length + n];
                System.arraycopy(fds, 0, grown, 0, fds.length);
                for (int i = 0; i < n; i++) {
                    grown[fds.length + i] = control.get(ValueLayout.JAVA_INT, at + CMSG_HDR + i * 4L);
                }
                fds = grown;
            }
            at += (length + 7) & ~7L;
        }
        return fds;
    }

    private static final int[] EMPTY = new int[0];
}
