package io.vfiouser.device.pci;

/**
 * PCI Express (id 0x10, version 2, 60 bytes). Implies a 4096-byte configuration space.
 *
 * @param deviceType         the device/port type; QEMU accepts endpoints only
 * @param functionLevelReset whether the function advertises FLR (DevCap bit 28): a guest write of "Initiate FLR"
 *                           then resets the device with reason {@link io.vfiouser.device.ResetReason#FLR}
 */
public record PciExpressCapability(DeviceType deviceType, boolean functionLevelReset) implements Capability {
    public static final int ID = 0x10;

    /** The device/port types a vfio-user function can be. */
    public enum DeviceType {
        ENDPOINT(0), LEGACY_ENDPOINT(1), RC_INTEGRATED_ENDPOINT(9);

        private final int code;

        DeviceType(int code) {
            this.code = code;
        }

        /** The value of the type field (bits 7:4 of the PCIe Capabilities register). */
        public int code() {
            return code;
        }
    }

    /** An endpoint with FLR. */
    public static final PciExpressCapability ENDPOINT = new PciExpressCapability(DeviceType.ENDPOINT, true);

    public PciExpressCapability {
        java.util.Objects.requireNonNull(deviceType, "deviceType");
    }

    @Override
    public int id() {
        return ID;
    }

    @Override
    public int size() {
        return 0x3C;
    }
}
