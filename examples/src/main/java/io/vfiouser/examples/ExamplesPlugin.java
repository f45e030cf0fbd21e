package io.vfiouser.examples;

import io.vfiouser.device.spi.DeviceInstance;
import io.vfiouser.device.spi.DevicePlugin;
import io.vfiouser.device.spi.DeviceType;
import io.vfiouser.examples.gpio.PciIdio16;
import io.vfiouser.examples.nulldev.NullDevice;
import io.vfiouser.examples.nvme.DoorbellMode;
import io.vfiouser.examples.nvme.NvmeDevice;
import io.vfiouser.examples.nvme.NvmeOptions;
import java.nio.file.Path;
import java.util.List;

/**
 * The example devices as a plugin like any other: {@code null}, {@code gpio} and {@code nvme}, found by the server
 * launcher through {@code META-INF/services}.
 */
public final class ExamplesPlugin implements DevicePlugin {
    /** The settings of a device that has none: any key is an error. */
    public record NoSettings() {
    }

    /**
     * The NVMe controller's settings.
     *
     * @param backing   the file behind namespace 1, created when missing (required)
     * @param size      the namespace size such as {@code 64M} or {@code 1G}; absent: the existing file's size
     * @param doorbells how doorbells arrive: {@code write} (REGION_WRITE messages only), {@code shadow} (also
     *                  Doorbell Buffer Config) or {@code mmap} (the doorbell page mmappable, watched); absent:
     *                  {@link DoorbellMode#DEFAULT}
     */
    public record NvmeSettings(String backing, String size, String doorbells) {
    }

    @Override
    public String name() {
        return "vfio-user-examples";
    }

    @Override
    public List<DeviceType<?>> deviceTypes() {
        return List.of(
                DeviceType.of("null", NoSettings.class,
                        (name, s) -> new DeviceInstance(NullDevice.description(name), new NullDevice()),
                        "a test and benchmark device: registers, DMA engine, MSI-X, 1 MiB shared memory; no settings"),
                DeviceType.of("gpio", NoSettings.class,
                        (name, s) -> new DeviceInstance(PciIdio16.description(name), new PciIdio16()),
                        "an ACCES PCI-IDIO-16 card (Linux gpio-pci-idio-16), outputs wired to inputs; no settings"),
                DeviceType.of("nvme", NvmeSettings.class, ExamplesPlugin::nvme,
                        "an NVMe 1.4 controller; backing=FILE (created when missing), size=64M|1G|... "
                                + "(default: the file's size), doorbells=" + DoorbellMode.names() + " (default: "
                                + DoorbellMode.DEFAULT.optionName() + ")"));
    }

    private static DeviceInstance nvme(String name, NvmeSettings s) throws Exception {
        if (s.backing() == null || s.backing().isBlank()) {
            throw new IllegalArgumentException("nvme needs backing=FILE");
        }
        DoorbellMode doorbells = s.doorbells() == null ? DoorbellMode.DEFAULT : DoorbellMode.parse(s.doorbells());
        long size = s.size() == null ? 0 : NvmeOptions.parseSize(s.size());
        NvmeDevice device = new NvmeDevice(name, new NvmeOptions(Path.of(s.backing()), size, doorbells));
        return new DeviceInstance(device.description(), device);
    }
}
