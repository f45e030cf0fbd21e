package io.vfiouser.client.tool;

import io.vfiouser.codec.VfioUserCapabilities;
import io.vfiouser.codec.payload.DeviceFeature;
import io.vfiouser.codec.payload.DeviceInfo;
import io.vfiouser.codec.payload.IrqInfo;
import io.vfiouser.codec.payload.MsixMappableCapability;
import io.vfiouser.codec.payload.RegionCapability;
import io.vfiouser.codec.payload.RegionInfo;
import io.vfiouser.codec.payload.SparseMmapCapability;
import io.vfiouser.codec.payload.TypeCapability;
import io.vfiouser.transport.linux.Errno;
import java.util.ArrayList;
import java.util.List;

/**
 * What {@code inspect} prints: everything a VMM learns from a device before it starts it, in the order it learns
 * it (VERSION, DEVICE_GET_INFO, each region, each interrupt type, migration, then the configuration space through region 7),
 * as text laid out like {@code lspci -vvv}. Built from the answers alone, so it is a pure function and tested
 * without a socket as well as through one.
 */
final class InspectReport {
    private InspectReport() {
    }

    static List<String> lines(String socket, DeviceProbe.Version version, DeviceInfo device,
                              List<DeviceProbe.RegionDescription> regions, List<IrqInfo> irqs,
                              DeviceProbe.Migration migration, byte[] config) {
        List<String> out = new ArrayList<>();
        out.add("vfio-user device at " + socket);
        out.add("Protocol: version " + version.major() + "." + version.minor());
        out.addAll(indent(capabilities(version.capabilities())));
        out.add("\tJSON: " + version.json());
        out.add(String.format("Device: flags 0x%x (%s), %d regions, %d interrupt types", device.flags(),
                deviceFlags(device.flags()), device.numRegions(), device.numIrqs()));
        if (config != null) {
            PciConfigText pci = new PciConfigText(config);
            out.add(pci.identityLine());
            out.addAll(indent(pci.headerLines()));
        }
        out.add("Regions:");
        PciConfigText pci = config == null ? null : new PciConfigText(config);
        for (int i = 0; i < regions.size(); i++) {
            out.addAll(indent(region(i, regions.get(i), pci)));
        }
        out.add("Interrupts:");
        for (int i = 0; i < irqs.size(); i++) {
            IrqInfo irq = irqs.get(i);
            out.add(String.format("\t%s: %d%s", DeviceProbe.irqName(i), irq.count(),
                    irq.count() == 0 ? "" : " (" + irqFlags(irq.flags()) + ")"));
        }
        out.add("Migration: " + migration(migration));
        if (config != null) {
            out.add("Capabilities:");
            List<String> caps = new PciConfigText(config).capabilityLines();
            out.addAll(caps.isEmpty() ? List.of("\tnone") : indent(caps));
        }
        return out;
    }

    private static String migration(DeviceProbe.Migration m) {
        if (m.flags() < 0) {
            return "no (DEVICE_FEATURE MIGRATION: " + Errno.name(m.errno()) + ")";
        }
        StringBuilder s = new StringBuilder("VFIO migration v2:");
        s.append((m.flags() & DeviceFeature.MIGRATION_STOP_COPY) != 0 ? " STOP_COPY" : "");
        s.append((m.flags() & DeviceFeature.MIGRATION_P2P) != 0 ? " P2P" : "");
        s.append((m.flags() & DeviceFeature.MIGRATION_PRE_COPY) != 0 ? " PRE_COPY" : "");
        return s.append(", dirty-page logging ").append(m.dirtyLogging() ? "yes" : "no").toString();
    }

    private static List<String> capabilities(VfioUserCapabilities c) {
        List<String> lines = new ArrayList<>();
        lines.add(String.format("max_msg_fds %d, max_data_xfer_size %s, pgsizes 0x%x, max_dma_maps %d",
                c.maxMsgFds(), size(c.maxDataXferSize()), c.pgsizes(), c.maxDmaMaps()));
        VfioUserCapabilities.TwinSocket twin = c.twinSocket();
        VfioUserCapabilities.Migration migration = c.migration();
        lines.add("write_multiple " + (c.writeMultiple() ? "yes" : "no")
                + ", twin_socket " + (twin == null || !twin.supported() ? "no" : "yes")
                + ", migration dirty bitmap " + (migration == null ? "no"
                : "yes (pgsize " + (migration.pgsize().isPresent()
                        ? "0x" + Long.toHexString(migration.pgsize().getAsLong()) : "unset")
                + (migration.maxBitmapSize().isPresent()
                        ? ", max_bitmap_size " + migration.maxBitmapSize().getAsLong() : "") + ")"));
        return lines;
    }

    private static List<String> region(int index, DeviceProbe.RegionDescription description, PciConfigText pci) {
        RegionInfo info = description.info();
        String name = index + " " + DeviceProbe.regionName(index);
        boolean bar = pci != null && index < 6;
        if (info.size() == 0) {
            String kind = bar ? pci.barKind(index) : "";
            return List.of(name + ": " + (kind.startsWith("upper half") ? kind : "none"));
        }
        List<String> lines = new ArrayList<>();
        StringBuilder flags = new StringBuilder();
        appendIf(flags, info.flags(), RegionInfo.FLAG_READ, "read");
        appendIf(flags, info.flags(), RegionInfo.FLAG_WRITE, "write");
        appendIf(flags, info.flags(), RegionInfo.FLAG_MMAP, "mmap");
        lines.add(String.format("%s: %s%s, %s%s%s", name, size(info.size()), bar ? ", " + pci.barKind(index) : "",
                flags,
                description.withFd() ? ", file at offset 0x" + Long.toHexString(info.offset()) : "",
                (info.flags() & RegionInfo.FLAG_MMAP) != 0 && !description.withFd() ? " (but no file was sent)" : ""));
        for (RegionCapability cap : info.caps()) {
            switch (cap) {
                case SparseMmapCapability sparse -> {
                    StringBuilder areas = new StringBuilder("\tsparse mmap:");
                    for (SparseMmapCapability.Area area : sparse.areas()) {
                        areas.append(String.format(" [0x%x, 0x%x)", area.offset(), area.offset() + area.size()));
                    }
                    lines.add(areas.append(sparse.areas().isEmpty() ? " none (nothing mappable)" : "").toString());
                }
                case TypeCapability type -> lines.add(String.format("\ttype 0x%x, subtype 0x%x", type.type(),
                        type.subtype()));
                case MsixMappableCapability msix -> lines.add("\tMSI-X table and PBA may be mmapped");
                default -> lines.add("\tcapability id " + cap.id());
            }
        }
        return lines;
    }

    private static String deviceFlags(int flags) {
        StringBuilder s = new StringBuilder();
        appendIf(s, flags, DeviceInfo.FLAG_PCI, "PCI");
        appendIf(s, flags, DeviceInfo.FLAG_RESET, "reset");
        int other = flags & ~(DeviceInfo.FLAG_PCI | DeviceInfo.FLAG_RESET);
        if (other != 0) {
            appendIf(s, other, other, String.format("unknown 0x%x", other));
        }
        return s.isEmpty() ? "none" : s.toString();
    }

    private static String irqFlags(int flags) {
        StringBuilder s = new StringBuilder();
        appendIf(s, flags, IrqInfo.FLAG_EVENTFD, "eventfd");
        appendIf(s, flags, IrqInfo.FLAG_MASKABLE, "maskable");
        appendIf(s, flags, IrqInfo.FLAG_AUTOMASKED, "automasked");
        appendIf(s, flags, IrqInfo.FLAG_NORESIZE, "noresize");
        return s.isEmpty() ? "no flags" : s.toString();
    }

    private static void appendIf(StringBuilder s, int flags, int bit, String word) {
        if ((flags & bit) != 0) {
            s.append(s.isEmpty() ? "" : " ").append(word);
        }
    }

    /** {@code 4 KiB (0x1000)}; plain bytes below 1 KiB or when not a whole number of KiB. */
    static String size(long bytes) {
        String[] units = {"GiB", "MiB", "KiB"};
        for (int i = 0; i < units.length; i++) {
            long unit = 1L << (30 - 10 * i);
            if (bytes >= unit && bytes % unit == 0) {
                return bytes / unit + " " + units[i] + " (0x" + Long.toHexString(bytes) + ")";
            }
        }
        return bytes + " bytes (0x" + Long.toHexString(bytes) + ")";
    }

    private static List<String> indent(List<String> lines) {
        return lines.stream().map(l -> "\t" + l).toList();
    }
}
