package io.vfiouser.server.launcher;

import java.time.Duration;
import java.util.Locale;

/**
 * Numbers as people write them on a command line or in a configuration file: counts in decimal or {@code 0x} hex,
 * sizes with a binary suffix ({@code 4M}, {@code 512KiB}, {@code 1G}), durations with a unit ({@code 500ms},
 * {@code 30s}, {@code 2m}).
 */
final class Quantities {
    private Quantities() {
    }

    /** A count: decimal or {@code 0x} hex, at least {@code min}. */
    static long count(String what, String text, long min) {
        long n;
        try {
            String t = text.trim().replace("_", "");
            n = t.startsWith("0x") || t.startsWith("0X") ? Long.parseLong(t.substring(2), 16) : Long.parseLong(t);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(what + " needs a number, not '" + text + "'");
        }
        if (n < min) {
            throw new IllegalArgumentException(what + ": at least " + min);
        }
        return n;
    }

    /** An int count: decimal or {@code 0x} hex, {@code min..Integer.MAX_VALUE}. */
    static int intCount(String what, String text, int min) {
        long n = count(what, text, min);
        if (n > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(what + ": at most " + Integer.MAX_VALUE);
        }
        return (int) n;
    }

    /** A size in bytes: a count, or a count with K, M, G (or KiB, MiB, GiB; powers of 1024). */
    static long size(String what, String text, long min) {
        String t = text.trim();
        String lower = t.toLowerCase(Locale.ROOT);
        long unit = 1;
        for (String[] suffix : new String[][] {{"kib", "10"}, {"mib", "20"}, {"gib", "30"}, {"k", "10"},
                {"m", "20"}, {"g", "30"}, {"b", "0"}}) {
            if (lower.endsWith(suffix[0]) && !lower.startsWith("0x")) {
                unit = 1L << Integer.parseInt(suffix[1]);
                t = t.substring(0, t.length() - suffix[0].length());
                break;
            }
        }
        long n = count(what, t, 0);
        if (n > Long.MAX_VALUE / unit) {
            throw new IllegalArgumentException(what + ": too large");
        }
        n *= unit;
        if (n < min) {
            throw new IllegalArgumentException(what + ": at least " + min + " bytes");
        }
        return n;
    }

    /** A duration: a number with ms, s, m or h. */
    static Duration duration(String what, String text) {
        String t = text.trim().toLowerCase(Locale.ROOT);
        try {
            if (t.endsWith("ms")) {
                return positive(what, Duration.ofMillis(Long.parseLong(t.substring(0, t.length() - 2))));
            }
            long n = Long.parseLong(t.substring(0, t.length() - 1));
            return positive(what, switch (t.charAt(t.length() - 1)) {
                case 's' -> Duration.ofSeconds(n);
                case 'm' -> Duration.ofMinutes(n);
                case 'h' -> Duration.ofHours(n);
                default -> throw new NumberFormatException();
            });
        } catch (NumberFormatException | StringIndexOutOfBoundsException e) {
            throw new IllegalArgumentException(what + " needs a duration such as 500ms, 30s or 2m, not '" + text
                    + "'");
        }
    }

    private static Duration positive(String what, Duration d) {
        if (d.isNegative() || d.isZero()) {
            throw new IllegalArgumentException(what + " must be positive");
        }
        return d;
    }
}
