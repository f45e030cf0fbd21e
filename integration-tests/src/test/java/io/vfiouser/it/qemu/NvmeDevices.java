package io.vfiouser.it.qemu;

import io.vfiouser.examples.nvme.DoorbellMode;
import io.vfiouser.examples.nvme.NvmeDevice;
import io.vfiouser.examples.nvme.NvmeOptions;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.Locale;

/** The NVMe example device as the guest tests host it, and the identity the guest must see. */
final class NvmeDevices {
    private NvmeDevices() {
    }

    /** The model number (Identify Controller MN) of the example device. */
    static final String MODEL = "vfio-user-java NVMe example";
    /** Its firmware revision (Identify Controller FR). */
    static final String FIRMWARE = "0.1";

    /** A device named {@code name} with a namespace of {@code size} bytes on {@code backing} (created). */
    static NvmeDevice open(String name, Path backing, long size) throws IOException {
        return new NvmeDevice(name, new NvmeOptions(backing, size));
    }

    /** Like {@link #open(String, Path, long)}, with the given doorbell mode. */
    static NvmeDevice open(String name, Path backing, long size, DoorbellMode doorbells) throws IOException {
        return new NvmeDevice(name, new NvmeOptions(backing, size, doorbells));
    }

    /**
     * The serial number the device derives from its backing file, so that the same file keeps its identity: "VFU"
     * and the first 8 bytes of the SHA-256 of the file's absolute path, in upper-case hex.
     */
    static String serial(Path backing) {
        try {
            byte[] hash = MessageDigest.getInstance("SHA-256")
                    .digest(backing.toAbsolutePath().toString().getBytes(StandardCharsets.UTF_8));
            return "VFU" + HexFormat.of().formatHex(hash, 0, 8).toUpperCase(Locale.ROOT);
        } catch (NoSuchAlgorithmException e) {
            throw new AssertionError(e);
        }
    }
}
