package io.vfiouser.examples;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;

/**
 * The device-specific options of the command line ({@code --key=value} beyond the common ones), taken one by one
 * by the device's factory; whatever no factory took is an error, so a typo never goes unnoticed.
 */
final class DeviceSettings {
    private final String device;
    private final Map<String, String> values;

    DeviceSettings(String device, Map<String, String> values) {
        this.device = device;
        this.values = new LinkedHashMap<>(values);
    }

    /** The value of {@code --key=}, which must be given. */
    String required(String key) {
        return optional(key).orElseThrow(
                () -> new IllegalArgumentException("device " + device + " needs --" + key + "=..."));
    }

    /** The value of {@code --key=}, if given. */
    Optional<String> optional(String key) {
        return Optional.ofNullable(values.remove(key));
    }

    /** Fails on any option that was not taken. */
    void finish() {
        if (!values.isEmpty()) {
            throw new IllegalArgumentException("unknown option --" + values.keySet().iterator().next()
                    + " for device " + device);
        }
    }
}
