package io.vfiouser.device.spi;

import java.util.List;

/**
 * A jar's contribution of device types to a server that hosts many devices: the launcher finds every
 * implementation with {@link java.util.ServiceLoader} (a line naming the class in
 * {@code META-INF/services/io.vfiouser.device.spi.DevicePlugin}) on its class path and in the jars of its plugins
 * folder, and creates devices of the types it names from configuration entries.
 *
 * <p>An implementation needs a public no-argument constructor and should do no work in it: a plugin that fails to
 * load is reported and skipped, and the other plugins' devices run regardless.
 */
public interface DevicePlugin {
    /** A short name for reports, such as the artifact; defaults to the class name. */
    default String name() {
        return getClass().getName();
    }

    /** The device types this plugin provides; each type name must be unique across all loaded plugins. */
    List<DeviceType<?>> deviceTypes();
}
