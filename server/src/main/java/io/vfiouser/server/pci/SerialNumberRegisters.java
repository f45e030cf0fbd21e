package io.vfiouser.server.pci;

import static io.vfiouser.server.pci.PciRegisters.DSN_HIGH;
import static io.vfiouser.server.pci.PciRegisters.DSN_LOW;

import io.vfiouser.device.pci.SerialNumberCapability;
import io.vfiouser.transport.linux.Errno;
import java.nio.ByteBuffer;

/**
 * Device Serial Number extended capability (id 0x0003, version 1, 12 bytes), entirely read-only.
 *
 * <pre>
 * +0 header dword  +4 serial number bits 31:0  +8 serial number bits 63:32
 * </pre>
 *
 * Every write to it fails with {@code EPERM}.
 */
final class SerialNumberRegisters extends CapabilityRegisters {
    SerialNumberRegisters(SerialNumberCapability capability, ConfigImage image, CapabilityLayout layout) {
        super(image, layout, layout.length());
        image.set32(at(DSN_LOW), (int) capability.serialNumber());
        image.set32(at(DSN_HIGH), (int) (capability.serialNumber() >>> 32));
    }

    @Override
    void check(int from, int to, ByteBuffer src, int base) {
        throw error(Errno.EPERM, "the Device Serial Number capability at 0x%x is read-only", offset());
    }
}
