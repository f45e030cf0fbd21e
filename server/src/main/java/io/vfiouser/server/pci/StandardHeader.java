package io.vfiouser.server.pci;

import static io.vfiouser.server.pci.PciRegisters.BAR0;
import static io.vfiouser.server.pci.PciRegisters.BAR_COUNT;
import static io.vfiouser.server.pci.PciRegisters.BAR_IO;
import static io.vfiouser.server.pci.PciRegisters.BAR_MEMORY_64;
import static io.vfiouser.server.pci.PciRegisters.BAR_PREFETCHABLE;
import static io.vfiouser.server.pci.PciRegisters.CACHE_LINE_SIZE;
import static io.vfiouser.server.pci.PciRegisters.CAPABILITIES_POINTER;
import static io.vfiouser.server.pci.PciRegisters.CLASS_CODE;
import static io.vfiouser.server.pci.PciRegisters.COMMAND;
import static io.vfiouser.server.pci.PciRegisters.COMMAND_WRITABLE;
import static io.vfiouser.server.pci.PciRegisters.DEVICE_ID;
import static io.vfiouser.server.pci.PciRegisters.HEADER_SIZE;
import static io.vfiouser.server.pci.PciRegisters.INTERRUPT_LINE;
import static io.vfiouser.server.pci.PciRegisters.INTERRUPT_PIN;
import static io.vfiouser.server.pci.PciRegisters.LATENCY_TIMER;
import static io.vfiouser.server.pci.PciRegisters.REVISION_ID;
import static io.vfiouser.server.pci.PciRegisters.ROM_ADDRESS;
import static io.vfiouser.server.pci.PciRegisters.ROM_ADDRESS_MASK;
import static io.vfiouser.server.pci.PciRegisters.ROM_ENABLE;
import static io.vfiouser.server.pci.PciRegisters.ROM_MIN_SIZE;
import static io.vfiouser.server.pci.PciRegisters.STATUS;
import static io.vfiouser.server.pci.PciRegisters.STATUS_CAPABILITIES;
import static io.vfiouser.server.pci.PciRegisters.STATUS_ERRORS;
import static io.vfiouser.server.pci.PciRegisters.SUBSYSTEM_ID;
import static io.vfiouser.server.pci.PciRegisters.SUBSYSTEM_VENDOR_ID;
import static io.vfiouser.server.pci.PciRegisters.VENDOR_ID;

import io.vfiouser.device.DeviceDescription;
import io.vfiouser.device.IrqType;
import io.vfiouser.device.Region;
import io.vfiouser.device.pci.PciIdentity;
import io.vfiouser.transport.linux.Errno;

/**
 * The type 0 header (0x00..0x3F): its power-on image, write masks and write rules.
 *
 * <ul>
 *   <li>Identity registers, Header Type (0, single function), BIST (0), CardBus CIS (0), Capabilities Pointer,
 *       Interrupt Pin, Min_Gnt, Max_Lat, the reserved bytes: read-only, writes ignored.</li>
 *   <li>Command: the bits of {@link PciRegisters#COMMAND_WRITABLE} are stored, the others ignored.</li>
 *   <li>Status: Capabilities List (bit 4) read-only; the error bits {@link PciRegisters#STATUS_ERRORS} are RW1C
 *       (set by {@link #signalErrors}).</li>
 *   <li>Cache Line Size, Latency Timer, Interrupt Line: stored.</li>
 *   <li>BARs: {@code written & ~(size - 1)} over the read-only type bits, so writing all-ones reads back the size
 *       mask; the upper dword of a 64-bit BAR takes the upper half of that mask (all ones below 4 GiB). An unused
 *       BAR reads 0 and ignores writes.</li>
 *   <li>Expansion ROM: with a ROM region, like a 32-bit memory BAR plus the writable enable bit 0; without one it
 *       reads 0 and ignores every write (so QEMU's 0xFFFFF800 sizing finds no ROM).</li>
 * </ul>
 *
 * A write is split at register boundaries; it may start in the middle of a register (that register is partially
 * written, unwritten bytes keep their value) only if it ends within that register. A write starting in the middle
 * of a register and running past its end fails with {@code EINVAL}.
 */
final class StandardHeader {
    /** For each header byte, the offset of the register holding it. */
    private static final byte[] REGISTER_START = new byte[HEADER_SIZE];
    /** For each header byte, the offset just past the register holding it. */
    private static final byte[] REGISTER_END = new byte[HEADER_SIZE];

    static {
        int[][] registers = {
            {0x00, 2}, {0x02, 2}, {0x04, 2}, {0x06, 2}, {0x08, 1}, {0x09, 3}, {0x0C, 1}, {0x0D, 1}, {0x0E, 1},
            {0x0F, 1}, {0x10, 4}, {0x14, 4}, {0x18, 4}, {0x1C, 4}, {0x20, 4}, {0x24, 4}, {0x28, 4}, {0x2C, 2},
            {0x2E, 2}, {0x30, 4}, {0x34, 1}, {0x35, 3}, {0x38, 4}, {0x3C, 1}, {0x3D, 1}, {0x3E, 1}, {0x3F, 1},
        };
        for (int[] r : registers) {
            for (int i = r[0]; i < r[0] + r[1]; i++) {
                REGISTER_START[i] = (byte) r[0];
                REGISTER_END[i] = (byte) (r[0] + r[1]);
            }
        }
    }

    private final ConfigImage image;
    private final ConfigSpace.Listener listener;
    private int command;

    StandardHeader(DeviceDescription description, ConfigImage image, ConfigSpace.Listener listener,
                   boolean hasCapabilities) {
        this.image = image;
        this.listener = listener;
        PciIdentity identity = description.identity();
        image.set16(VENDOR_ID, identity.vendorId());
        image.set16(DEVICE_ID, identity.deviceId());
        image.writable16(COMMAND, COMMAND_WRITABLE);
        image.set16(STATUS, hasCapabilities ? STATUS_CAPABILITIES : 0);
        image.clearable16(STATUS, STATUS_ERRORS);
        image.set8(REVISION_ID, identity.revision());
        image.set8(CLASS_CODE, identity.classCode());
        image.set16(CLASS_CODE + 1, identity.classCode() >>> 8);
        image.writable8(CACHE_LINE_SIZE, 0xFF);
        image.writable8(LATENCY_TIMER, 0xFF);
        for (int i = 0; i < BAR_COUNT; i++) {
            description.region(i).ifPresent(this::bar);
        }
        image.set16(SUBSYSTEM_VENDOR_ID, identity.subsystemVendorId());
        image.set16(SUBSYSTEM_ID, identity.subsystemId());
        description.region(Region.ROM).ifPresent(this::rom);
        image.set8(CAPABILITIES_POINTER, hasCapabilities ? HEADER_SIZE : 0);
        image.writable8(INTERRUPT_LINE, 0xFF);
        image.set8(INTERRUPT_PIN, description.irqCount(IrqType.INTX) > 0 ? 1 : 0);
    }

    private void bar(Region region) {
        int register = BAR0 + 4 * region.index();
        long mask = ~(region.size() - 1);
        if (region.io()) {
            image.set32(register, BAR_IO);
        } else {
            int type = (region.bits64() ? BAR_MEMORY_64 : 0) | (region.prefetchable() ? BAR_PREFETCHABLE : 0);
            image.set32(register, type);
            if (region.bits64()) {
                image.writable32(register + 4, (int) (mask >>> 32));
            }
        }
        image.writable32(register, (int) mask);
    }

    private void rom(Region region) {
        if (region.size() < ROM_MIN_SIZE) {
            throw new IllegalArgumentException("the expansion ROM must be at least 2 KiB: " + region.size());
        }
        image.writable32(ROM_ADDRESS, (int) ~(region.size() - 1) & ROM_ADDRESS_MASK | ROM_ENABLE);
    }

    int command() {
        return command;
    }

    /** Sets error bits of the Status register (RW1C: software clears them by writing 1). */
    void signalErrors(int bits) {
        if ((bits & ~STATUS_ERRORS) != 0) {
            throw new IllegalArgumentException(String.format("not a Status error bit: 0x%x", bits));
        }
        image.set16(STATUS, image.u16(STATUS) | bits);
    }

    /** Refuses a write of {@code [from, to)} (to clipped to the header) that starts mid-register and runs past it. */
    void check(int from, int to) {
        if (REGISTER_START[from] != from && to > REGISTER_END[from]) {
            throw CapabilityRegisters.error(Errno.EINVAL,
                    "write at 0x%x runs past the end of the header register at 0x%x", from, REGISTER_START[from]);
        }
    }

    void written(int from, int to) {
        if (CapabilityRegisters.touches(from, to, COMMAND, 2)) {
            int old = command;
            command = image.u16(COMMAND);
            if (command != old) {
                listener.commandChanged(old, command);
            }
        }
    }

    void sync() {
        command = image.u16(COMMAND);
    }
}
