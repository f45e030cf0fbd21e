package io.vfiouser.examples.nvme;

import java.nio.file.Path;
import java.util.Locale;
import java.util.Objects;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * How to build an NVMe controller: the backing file of its namespace, the namespace size, how doorbells arrive.
 *
 * @param backing   the file behind namespace 1; created when missing
 * @param size      the namespace size in bytes, a multiple of 512; 0 to use the size of the existing file
 * @param doorbells how the host's doorbells reach the controller
 */
public record NvmeOptions(Path backing, long size, DoorbellMode doorbells) {
    private static final Pattern SIZE = Pattern.compile("(\\d+)([KMGT]?)(I?B)?");

    public NvmeOptions {
        Objects.requireNonNull(backing, "backing");
        Objects.requireNonNull(doorbells, "doorbells");
        if (size < 0 || size % NamespaceFile.BLOCK_SIZE != 0) {
            throw new IllegalArgumentException("size must be a multiple of " + NamespaceFile.BLOCK_SIZE + ": " + size);
        }
    }

    /** Options with the {@linkplain DoorbellMode#DEFAULT default doorbell mode}. */
    public NvmeOptions(Path backing, long size) {
        this(backing, size, DoorbellMode.DEFAULT);
    }

    /** Parses a size such as {@code 1048576}, {@code 64M}, {@code 1G} or {@code 512KiB} (binary multiples). */
    public static long parseSize(String text) {
        Matcher m = SIZE.matcher(text.trim().toUpperCase(Locale.ROOT));
        if (!m.matches()) {
            throw new IllegalArgumentException("not a size: " + text + " (use e.g. 64M or 1G)");
        }
        int shift = switch (m.group(2)) {
            case "K" -> 10;
            case "M" -> 20;
            case "G" -> 30;
            case "T" -> 40;
            default -> 0;
        };
        try {
            long n = Long.parseLong(m.group(1));
            if (n > (Long.MAX_VALUE >>> shift)) {
                throw new IllegalArgumentException("size too large: " + text);
            }
            return n << shift;
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("size too large: " + text);
        }
    }
}
