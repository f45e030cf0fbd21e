package io.vfiouser.device;

/** Why a device is reset. */
public enum ResetReason {
    /** The client sent DEVICE_RESET (QEMU does at machine reset and guest reboot). */
    CLIENT_REQUEST,
    /** The client went away; the next one finds the device as after a reset. */
    LOST_CONNECTION,
    /** The guest initiated a PCI Express function-level reset. */
    FLR
}
