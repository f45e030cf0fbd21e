package io.vfiouser.device.spi;

import io.vfiouser.device.DeviceDescription;
import io.vfiouser.device.VfioUserDevice;
import java.util.Objects;

/**
 * A device a factory built: its static description and its behaviour. If the behaviour is
 * {@link AutoCloseable}, the host closes it once the device has stopped being served (its client gone), so
 * it can flush files and release what it holds.
 */
public record DeviceInstance(DeviceDescription description, VfioUserDevice behaviour) {
    public DeviceInstance {
        Objects.requireNonNull(description, "description");
        Objects.requireNonNull(behaviour, "behaviour");
    }
}
