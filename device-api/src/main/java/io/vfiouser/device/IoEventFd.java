package io.vfiouser.device;

import java.util.OptionalLong;

/**
 * A doorbell the client may turn into an eventfd write instead of a REGION_WRITE message (handed out through
 * DEVICE_GET_REGION_IO_FDS). When the client signals it, the framework calls
 * {@link VfioUserDevice#ioEventFdSignalled(IoEventFd, long)}.
 *
 * @param region    region index
 * @param offset    offset of the doorbell in the region
 * @param size      access size the doorbell matches (1, 2, 4, 8), 0 for any
 * @param datamatch the value that must be written for the eventfd to fire, empty for any value
 */
public record IoEventFd(int region, long offset, int size, OptionalLong datamatch) {
    public IoEventFd {
        if (size != 0 && size != 1 && size != 2 && size != 4 && size != 8) {
            throw new IllegalArgumentException("ioeventfd size must be 0, 1, 2, 4 or 8");
        }
    }
}
