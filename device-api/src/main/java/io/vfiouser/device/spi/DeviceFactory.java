package io.vfiouser.device.spi;

/**
 * Builds one device of a {@link DeviceType} from its settings.
 *
 * @param <C> the settings class of the type
 */
@FunctionalInterface
public interface DeviceFactory<C> {
    /**
     * Creates a device. Runs once per configuration entry, on the launcher's control thread, before the device's
     * socket is opened; it may open files and allocate memory (the launcher closes the behaviour when the device
     * stops if it is {@link AutoCloseable}). Throw {@link IllegalArgumentException} for settings that make no
     * sense: the entry is reported with the message and skipped.
     *
     * @param deviceName the entry's name, unique in the server; use it as the description's name so logs,
     *                   statistics and the device agree
     * @param settings   the entry's settings, bound and never null
     */
    DeviceInstance create(String deviceName, C settings) throws Exception;
}
