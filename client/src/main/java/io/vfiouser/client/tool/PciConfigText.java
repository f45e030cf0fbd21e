package io.vfiouser.client.tool;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * A PCI type-0 configuration space as text, in the spirit of {@code lspci -vvv}: identity, command and status,
 * the interrupt pin, and the capability lists, each capability decoded where the framework (or a common device)
 * has one. It reads only the bytes it is given: nothing here writes to a device (no BAR sizing, which would
 * change the device's registers; the region sizes come from DEVICE_GET_REGION_INFO instead).
 *
 * <p>Bytes outside the given array read as 0, and both capability walks stop at a pointer that goes backwards,
 * leaves the space or repeats, so a broken or hostile server cannot make the tool loop.
 */
final class PciConfigText {
    private static final Map<Integer, String> BASE_CLASSES = Map.ofEntries(
            Map.entry(0x00, "Unclassified device"), Map.entry(0x01, "Mass storage controller"),
            Map.entry(0x02, "Network controller"), Map.entry(0x03, "Display controller"),
            Map.entry(0x04, "Multimedia controller"), Map.entry(0x05, "Memory controller"),
            Map.entry(0x06, "Bridge"), Map.entry(0x07, "Communication controller"),
            Map.entry(0x08, "Generic system peripheral"), Map.entry(0x09, "Input device controller"),
            Map.entry(0x0a, "Docking station"), Map.entry(0x0b, "Processor"),
            Map.entry(0x0c, "Serial bus controller"), Map.entry(0x0d, "Wireless controller"),
            Map.entry(0x0e, "Intelligent controller"), Map.entry(0x0f, "Satellite communications controller"),
            Map.entry(0x10, "Encryption controller"), Map.entry(0x11, "Signal processing controller"),
            Map.entry(0x12, "Processing accelerators"), Map.entry(0x13, "Non-Essential Instrumentation"),
            Map.entry(0xff, "Unassigned class"));
    private static final Map<Integer, String> SUBCLASSES = Map.ofEntries(
            Map.entry(0x0100, "SCSI storage controller"), Map.entry(0x0101, "IDE interface"),
            Map.entry(0x0104, "RAID bus controller"), Map.entry(0x0106, "SATA controller"),
            Map.entry(0x0108, "Non-Volatile memory controller"), Map.entry(0x0200, "Ethernet controller"),
            Map.entry(0x0300, "VGA compatible controller"), Map.entry(0x0604, "PCI bridge"),
            Map.entry(0x0c03, "USB controller"), Map.entry(0x1180, "Signal processing controller"));
    private static final Map<Integer, String> CAPABILITIES = Map.ofEntries(
            Map.entry(0x01, "Power Management"), Map.entry(0x02, "AGP"), Map.entry(0x03, "Vital Product Data"),
            Map.entry(0x04, "Slot Identification"), Map.entry(0x05, "MSI"), Map.entry(0x07, "PCI-X"),
            Map.entry(0x08, "HyperTransport"), Map.entry(0x09, "Vendor Specific"), Map.entry(0x0a, "Debug port"),
            Map.entry(0x0c, "Hot-plug"), Map.entry(0x0d, "Subsystem vendor"), Map.entry(0x10, "Express"),
            Map.entry(0x11, "MSI-X"), Map.entry(0x12, "SATA"), Map.entry(0x13, "Advanced Features"));
    private static final Map<Integer, String> EXTENDED = Map.ofEntries(
            Map.entry(0x01, "Advanced Error Reporting"), Map.entry(0x02, "Virtual Channel"),
            Map.entry(0x03, "Device Serial Number"), Map.entry(0x04, "Power Budgeting"),
            Map.entry(0x0b, "Vendor Specific"), Map.entry(0x0d, "Access Control Services"),
            Map.entry(0x0e, "Alternative Routing-ID"), Map.entry(0x10, "Single Root I/O Virtualization"),
            Map.entry(0x15, "Resizable BAR"), Map.entry(0x18, "Latency Tolerance Reporting"),
            Map.entry(0x19, "Secondary PCI Express"), Map.entry(0x1e, "L1 PM Substates"));
    private static final String[] EXPRESS_TYPES = {"Endpoint", "Legacy Endpoint", "?2", "?3", "Root Port",
        "Upstream Port", "Downstream Port", "PCI-Express to PCI/PCI-X Bridge", "PCI/PCI-X to PCI-Express Bridge",
        "Root Complex Integrated Endpoint", "Root Complex Event Collector"};

    private final byte[] config;

    PciConfigText(byte[] config) {
        this.config = config.clone();
    }

    int u8(int offset) {
        return offset >= 0 && offset < config.length ? config[offset] & 0xff : 0;
    }

    int u16(int offset) {
        return u8(offset) | u8(offset + 1) << 8;
    }

    long u32(int offset) {
        return (u16(offset) | (long) u16(offset + 2) << 16) & 0xffffffffL;
    }

    /** {@code 1af4:1001 Mass storage controller [0108] (prog-if 02) (rev 01)}, lspci's first line. */
    String identityLine() {
        int base = u8(0x0b);
        int sub = u8(0x0a);
        String name = SUBCLASSES.getOrDefault(base << 8 | sub, BASE_CLASSES.getOrDefault(base, "Class"));
        return String.format("%04x:%04x %s [%02x%02x] (prog-if %02x) (rev %02x)", u16(0), u16(2), name, base, sub,
                u8(0x09), u8(0x08));
    }

    /** The header's fields after the identity, one per line. */
    List<String> headerLines() {
        int command = u16(0x04);
        int status = u16(0x06);
        int pin = u8(0x3d);
        List<String> lines = new ArrayList<>();
        lines.add(String.format("Subsystem: %04x:%04x", u16(0x2c), u16(0x2e)));
        lines.add(String.format("Header type: %02x%s", u8(0x0e) & 0x7f,
                (u8(0x0e) & 0x80) != 0 ? " (multi-function)" : ""));
        lines.add("Control: " + flag("I/O", command, 0) + " " + flag("Mem", command, 1) + " "
                + flag("BusMaster", command, 2) + " " + flag("DisINTx", command, 10));
        lines.add("Status: " + flag("Cap", status, 4) + " " + flag("INTx", status, 3));
        lines.add(pin == 0 ? "Interrupt: no pin"
                : pin <= 4 ? String.format("Interrupt: pin %c, line %d", (char) ('A' + pin - 1), u8(0x3c))
                : "Interrupt: invalid pin " + pin);
        return lines;
    }

    /**
     * What BAR {@code bar}'s register says about it: {@code 64-bit memory, prefetchable}, {@code I/O ports}, or
     * {@code upper half of BAR2}; with the address when one is programmed ({@code at 0xfe000000}).
     */
    String barKind(int bar) {
        if (bar > 0 && isWideMemory(bar - 1) && !(bar > 1 && isWideMemory(bar - 2))) {
            return "upper half of BAR" + (bar - 1);
        }
        long value = u32(0x10 + 4 * bar);
        if ((value & 1) != 0) {
            long address = value & ~0x3L;
            return "I/O ports" + (address != 0 ? String.format(" at 0x%x", address) : "");
        }
        long address = value & ~0xfL;
        if (isWideMemory(bar)) {
            address |= u32(0x10 + 4 * (bar + 1)) << 32;
        }
        return (isWideMemory(bar) ? "64-bit" : "32-bit") + " memory"
                + ((value & 0x8) != 0 ? ", prefetchable" : ", non-prefetchable")
                + (address != 0 ? String.format(" at 0x%x", address) : "");
    }

    private boolean isWideMemory(int bar) {
        long value = u32(0x10 + 4 * bar);
        return bar < 5 && (value & 1) == 0 && (value & 0x6) == 0x4;
    }

    /** The standard capability list (from 0x34), then the extended list (from 0x100, in a 4 KiB space). */
    List<String> capabilityLines() {
        List<String> lines = new ArrayList<>();
        if ((u16(0x06) & 0x10) != 0) {
            int at = u8(0x34) & 0xfc;
            boolean[] seen = new boolean[256];
            while (at >= 0x40 && at < 0x100 && at + 2 <= config.length && !seen[at]) {
                seen[at] = true;
                lines.add(String.format("[%02x] %s", at, capability(at, u8(at))));
                at = u8(at + 1) & 0xfc;
            }
        }
        if (config.length > 0x100 && u32(0x100) != 0 && u32(0x100) != 0xffffffffL) {
            int at = 0x100;
            boolean[] seen = new boolean[config.length];
            while (at >= 0x100 && at + 4 <= config.length && !seen[at]) {
                seen[at] = true;
                long header = u32(at);
                lines.add(String.format("[%03x v%d] %s", at, (header >> 16) & 0xf, extended(at, (int) header & 0xffff)));
                at = (int) (header >>> 20) & 0xffc;
            }
        }
        return lines;
    }

    private String capability(int at, int id) {
        String name = CAPABILITIES.getOrDefault(id, String.format("Capability id 0x%02x", id));
        int control = u16(at + 2);
        return switch (id) {
            case 0x01 -> String.format("%s version %d, state D%d", name, control & 0x7, u16(at + 4) & 0x3);
            case 0x05 -> String.format("%s: %s %d/%d vectors, %s%s", name, flag("Enable", control, 0),
                    1 << ((control >> 4) & 0x7), 1 << ((control >> 1) & 0x7),
                    (control & 0x80) != 0 ? "64-bit" : "32-bit", (control & 0x100) != 0 ? ", per-vector masking" : "");
            case 0x09 -> String.format("%s, %d bytes", name, u8(at + 2));
            case 0x10 -> express(at, name, control);
            case 0x11 -> String.format("%s: %s %s, %d vectors, table BAR%d+0x%x, PBA BAR%d+0x%x", name,
                    flag("Enable", control, 15), flag("Masked", control, 14), (control & 0x7ff) + 1,
                    u32(at + 4) & 0x7, u32(at + 4) & ~0x7L, u32(at + 8) & 0x7, u32(at + 8) & ~0x7L);
            default -> name;
        };
    }

    private String express(int at, String name, int capabilities) {
        int type = (capabilities >> 4) & 0xf;
        long deviceCapabilities = u32(at + 4);
        int deviceControl = u16(at + 8);
        return String.format("%s v%d %s, MaxPayload %d bytes (supported %d), %s", name, capabilities & 0xf,
                type < EXPRESS_TYPES.length ? EXPRESS_TYPES[type] : "type " + type,
                128 << ((deviceControl >> 5) & 0x7), 128 << (deviceCapabilities & 0x7),
                flag("FLReset", (int) (deviceCapabilities >> 28), 0));
    }

    private String extended(int at, int id) {
        String name = EXTENDED.getOrDefault(id, String.format("Extended capability id 0x%04x", id));
        return switch (id) {
            case 0x03 -> {
                StringBuilder serial = new StringBuilder();
                for (int i = 7; i >= 0; i--) {
                    serial.append(String.format("%02x", u8(at + 4 + i))).append(i > 0 ? "-" : "");
                }
                yield name + " " + serial;
            }
            case 0x0b -> String.format("%s: id 0x%04x rev %d, %d bytes", name, u32(at + 4) & 0xffff,
                    (u32(at + 4) >> 16) & 0xf, u32(at + 4) >>> 20);
            default -> name;
        };
    }

    private static String flag(String name, int value, int bit) {
        return name + ((value >> bit & 1) != 0 ? "+" : "-");
    }
}
