package io.vfiouser.device.spi;

import java.util.Objects;
import java.util.regex.Pattern;

/**
 * One kind of device a plugin can create: the name configuration entries use ({@code type: nvme}), the class its
 * settings bind to, and the factory that builds a device from them.
 *
 * <p>The settings class is bound by the launcher with Jackson, from the entry's {@code settings} object in a JSON
 * or YAML configuration file or from the {@code --key=value} options of the single-device command line (values
 * then arrive as strings, which the launcher converts to numbers and booleans). Integer settings ({@code long},
 * {@code int}, {@code short}, {@code byte} and their boxes) take decimal, {@code 0x} hex, {@code _} between digits
 * and binary size suffixes ({@code --id=0x5a}, {@code size: 64M}, {@code 1GiB}), in a file as on the command line;
 * a value that does not fit the type is an error naming the setting. A record whose components are named
 * like the keys is all it takes; unknown keys are an error, so a typo never goes unnoticed. Jackson annotations
 * work too if the plugin depends on Jackson itself, but the SPI does not require it.
 *
 * @param <C> the settings class
 */
public final class DeviceType<C> {
    private static final Pattern NAME = Pattern.compile("[a-z][a-z0-9-]*");

    private final String name;
    private final Class<C> settingsType;
    private final DeviceFactory<C> factory;
    private final String summary;

    private DeviceType(String name, Class<C> settingsType, DeviceFactory<C> factory, String summary) {
        if (!NAME.matcher(name).matches()) {
            throw new IllegalArgumentException("a device type name is lower case letters, digits and '-': " + name);
        }
        this.name = name;
        this.settingsType = Objects.requireNonNull(settingsType, "settingsType");
        this.factory = Objects.requireNonNull(factory, "factory");
        this.summary = Objects.requireNonNull(summary, "summary");
    }

    /**
     * A device type.
     *
     * @param name         the type's name in configuration, lower case ({@code nvme})
     * @param settingsType what the entry's settings bind to
     * @param factory      builds a device from its name and settings
     * @param summary      one line for {@code --help} and docs, listing the settings
     */
    public static <C> DeviceType<C> of(String name, Class<C> settingsType, DeviceFactory<C> factory,
                                       String summary) {
        return new DeviceType<>(name, settingsType, factory, summary);
    }

    public String name() {
        return name;
    }

    public Class<C> settingsType() {
        return settingsType;
    }

    public DeviceFactory<C> factory() {
        return factory;
    }

    public String summary() {
        return summary;
    }

    /** Builds a device; {@code settings} must be an instance of {@link #settingsType()}. */
    public DeviceInstance create(String deviceName, Object settings) throws Exception {
        return factory.create(deviceName, settingsType.cast(settings));
    }

    @Override
    public String toString() {
        return name + "(" + settingsType.getSimpleName() + ")";
    }
}
