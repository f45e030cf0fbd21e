package io.vfiouser.codec.payload;

/**
 * One sub-region of a {@link RegionIoFds} reply, in the spec's 40-byte layout:
 *
 * <pre>
 * +0   u64 offset     offset in the region
 * +8   u64 size       0 = any access size
 * +16  u32 fd_index   index of the fd among the reply's fds
 * +20  u32 type       IOEVENTFD 0, IOREGIONFD 1
 * +24  u32 flags      ioeventfd: DATAMATCH 0x1, PIO 0x2, VIRTIO_CCW_NOTIFY 0x8
 * +28  u32 padding
 * +32  u64 datamatch  (user_data for an ioregionfd)
 * </pre>
 */
public record IoFdEntry(long offset, long size, int fdIndex, int type, int flags, long datamatch) {
    public static final int SIZE = 40;
    public static final int TYPE_IOEVENTFD = 0;
    public static final int TYPE_IOREGIONFD = 1;
    public static final int FLAG_DATAMATCH = 0x1;
    public static final int FLAG_PIO = 0x2;
    public static final int FLAG_VIRTIO_CCW_NOTIFY = 0x8;
}
