package io.vfiouser.device;

import java.util.Objects;

/**
 * The static description of a device: what a client learns about it before any behaviour runs. Built once,
 * immutable, shared by every connection to the device.
 *
 * @param name     a short name for logs and sockets (letters, digits, '-', '_', '.')
 * @param identity the PCI ids and class code
 */
public record DeviceDescription(String name, PciIdentity identity) {
    public DeviceDescription {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(identity, "identity");
        if (!name.matches("[A-Za-z0-9._-]{1,64}")) {
            throw new IllegalArgumentException("device name must be 1..64 of [A-Za-z0-9._-]: " + name);
        }
    }
}
