package io.vfiouser.client.tool;

import io.vfiouser.client.ClientOptions;
import io.vfiouser.client.VfioUserClient;
import io.vfiouser.client.VfioUserErrorReplyException;
import io.vfiouser.codec.VfioUserCommand;
import io.vfiouser.codec.payload.DeviceInfo;
import io.vfiouser.codec.payload.IrqInfo;
import io.vfiouser.transport.linux.Errno;
import java.io.PrintStream;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.TimeoutException;

/**
 * {@code vfio-user inspect|config|read|write}: looks at a device the way a VMM does, through its socket, and
 * prints what it learnt. Runs as a subcommand of the server launcher ({@code java -jar vfio-user-server.jar
 * inspect SOCKET}, {@code bin/vfio-user inspect SOCKET}), so the jar operators already have is the tool; it is
 * built on {@link VfioUserClient} only and speaks nothing but the protocol, so it works against any vfio-user
 * server.
 *
 * <p>A vfio-user device serves one client at a time and resets itself when its client leaves: the tool is that
 * client for the length of one command, so it waits while a VMM holds the device (until {@code --timeout}), and
 * what {@code write} changed lasts only until the reset that follows the tool's disconnect unless the device keeps
 * it (memory-backed regions and the configuration space do; device registers usually do not).
 */
public final class VfioUserTool {
    /** The subcommands, for launchers that dispatch on the first argument. */
    public static final Set<String> COMMANDS = Set.of("inspect", "config", "read", "write");

    static final String USAGE = """
            usage: vfio-user inspect SOCKET             what a VMM learns: version, regions, interrupts, PCI config
                   vfio-user config SOCKET              the configuration space as a hex dump
                   vfio-user read SOCKET REGION OFFSET [--width N]         one register (N = 1, 2, 4, 8; default 4)
                   vfio-user write SOCKET REGION OFFSET VALUE [--width N]  one register
              REGION: an index, or bar0..bar5, rom, config, vga; OFFSET and VALUE: decimal or 0x hex
              --timeout DURATION  how long to wait for each answer, e.g. 500ms, 10s (default 10s)
            Exit status: 0 done, 1 the server refused or did not answer, 2 usage.""";

    private VfioUserTool() {
    }

    public static void main(String[] args) {
        System.exit(run(args, System.out, System.err));
    }

    /** Runs one command; returns the exit status (0 done, 1 failed, 2 usage). */
    public static int run(String[] args, PrintStream out, PrintStream err) {
        ToolArguments a;
        try {
            a = ToolArguments.parse(args);
        } catch (IllegalArgumentException e) {
            err.println("vfio-user: " + e.getMessage());
            err.println(USAGE);
            return 2;
        }
        try (VfioUserClient client = VfioUserClient.connect(a.socket(), ClientOptions.DEFAULT.withoutNegotiation())) {
            DeviceProbe probe = new DeviceProbe(client, a.timeout());
            DeviceProbe.Version version = probe.version();
            long maxTransfer = Math.min(version.capabilities().maxDataXferSize(),
                    client.capabilities().maxDataXferSize());
            switch (a.command()) {
                case "inspect" -> inspect(a, probe, version, maxTransfer, out);
                case "config" -> hexDump(probe.config(maxTransfer), out);
                case "read" -> out.println(hex(littleEndian(probe.read(a.region(), a.offset(), a.width(),
                        maxTransfer)), a.width()));
                case "write" -> probe.write(a.region(), a.offset(), bytes(a.value(), a.width()));
                default -> throw new IllegalStateException(a.command());
            }
            return 0;
        } catch (VfioUserErrorReplyException e) {
            VfioUserCommand command = VfioUserCommand.fromCode(e.header().command());
            err.println("vfio-user: the server refused " + (command == null ? "command " + e.header().command()
                    : command.name()) + ": " + Errno.name(e.errno()));
        } catch (TimeoutException e) {
            err.println("vfio-user: no answer within " + a.timeout().toMillis() + " ms (does a VMM hold the device?)");
        } catch (Exception e) {
            err.println("vfio-user: " + a.socket() + ": " + (e.getMessage() == null ? e.toString() : e.getMessage()));
        }
        return 1;
    }

    private static void inspect(ToolArguments a, DeviceProbe probe, DeviceProbe.Version version, long maxTransfer,
                                PrintStream out) throws Exception {
        DeviceInfo device = probe.deviceInfo();
        List<DeviceProbe.RegionDescription> regions = probe.regions(device.numRegions());
        List<IrqInfo> irqs = new ArrayList<>();
        for (int i = 0; i < device.numIrqs(); i++) {
            irqs.add(probe.irq(i));
        }
        boolean pci = (device.flags() & DeviceInfo.FLAG_PCI) != 0 && device.numRegions() > DeviceProbe.CONFIG_REGION
                && regions.get(DeviceProbe.CONFIG_REGION).info().size() > 0;
        byte[] config = pci ? probe.config(maxTransfer) : null;
        DeviceProbe.Migration migration = probe.migration();
        for (String line : InspectReport.lines(a.socket().toString(), version, device, regions, irqs, migration,
                config)) {
            out.println(line);
        }
    }

    /** {@code lspci -xxx}'s layout: an offset, then 16 bytes. */
    static void hexDump(byte[] bytes, PrintStream out) {
        for (int row = 0; row < bytes.length; row += 16) {
            StringBuilder line = new StringBuilder(String.format("%03x:", row));
            for (int i = row; i < Math.min(row + 16, bytes.length); i++) {
                line.append(String.format(" %02x", bytes[i] & 0xff));
            }
            out.println(line);
        }
    }

    static long littleEndian(byte[] bytes) {
        long value = 0;
        for (int i = bytes.length - 1; i >= 0; i--) {
            value = value << 8 | (bytes[i] & 0xff);
        }
        return value;
    }

    static byte[] bytes(long value, int width) {
        byte[] bytes = new byte[width];
        for (int i = 0; i < width; i++) {
            bytes[i] = (byte) (value >>> (8 * i));
        }
        return bytes;
    }

    static String hex(long value, int width) {
        return String.format(Locale.ROOT, "0x%0" + 2 * width + "x", value);
    }

    /** The command line: the command, the socket, and what the command needs. */
    record ToolArguments(String command, Path socket, int region, long offset, long value, int width,
                         Duration timeout) {
        static ToolArguments parse(String[] args) {
            List<String> positional = new ArrayList<>();
            int width = 4;
            Duration timeout = Duration.ofSeconds(10);
            for (int i = 0; i < args.length; i++) {
                String arg = args[i];
                if ((arg.equals("--width") || arg.equals("--timeout")) && i + 1 < args.length) {
                    arg = arg + "=" + args[++i];
                }
                if (arg.startsWith("--width=")) {
                    width = (int) number("--width", arg.substring(8));
                    if (width != 1 && width != 2 && width != 4 && width != 8) {
                        throw new IllegalArgumentException("--width is 1, 2, 4 or 8, not " + width);
                    }
                } else if (arg.startsWith("--timeout=")) {
                    timeout = duration(arg.substring(10));
                } else if (arg.startsWith("-")) {
                    throw new IllegalArgumentException("unknown option " + arg);
                } else {
                    positional.add(arg);
                }
            }
            if (positional.isEmpty() || !COMMANDS.contains(positional.getFirst())) {
                throw new IllegalArgumentException(positional.isEmpty() ? "no command"
                        : "unknown command " + positional.getFirst());
            }
            String command = positional.getFirst();
            int expected = switch (command) {
                case "read" -> 4;
                case "write" -> 5;
                default -> 2;
            };
            if (positional.size() != expected) {
                throw new IllegalArgumentException(command + " takes " + (expected - 1) + " argument(s)");
            }
            Path socket = Path.of(positional.get(1));
            int region = expected > 2 ? region(positional.get(2)) : -1;
            long offset = expected > 2 ? number("OFFSET", positional.get(3)) : 0;
            long value = 0;
            if (expected == 5) {
                value = number("VALUE", positional.get(4));
                if (width < 8 && (value >>> (8 * width)) != 0) {
                    throw new IllegalArgumentException("VALUE " + positional.get(4) + " does not fit in " + width
                            + " byte(s)");
                }
            }
            return new ToolArguments(command, socket, region, offset, value, width, timeout);
        }

        static int region(String text) {
            String t = text.toLowerCase(Locale.ROOT);
            if (t.matches("bar[0-5]")) {
                return t.charAt(3) - '0';
            }
            return switch (t) {
                case "rom" -> DeviceProbe.ROM_REGION;
                case "config" -> DeviceProbe.CONFIG_REGION;
                case "vga" -> DeviceProbe.VGA_REGION;
                default -> {
                    long n = number("REGION", text);
                    if (n > Integer.MAX_VALUE) {
                        throw new IllegalArgumentException("REGION " + text + " is too large");
                    }
                    yield (int) n;
                }
            };
        }

        /** A non-negative number, decimal or {@code 0x} hex; hex up to 64 bits (a register's full width). */
        static long number(String what, String text) {
            try {
                if (text.startsWith("0x") || text.startsWith("0X")) {
                    return Long.parseUnsignedLong(text.substring(2), 16);
                }
                long n = Long.parseLong(text);
                if (n < 0) {
                    throw new NumberFormatException();
                }
                return n;
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException(what + " needs a number (decimal or 0x hex), not '" + text + "'");
            }
        }

        static Duration duration(String text) {
            try {
                if (text.endsWith("ms")) {
                    return positive(Duration.ofMillis(Long.parseLong(text.substring(0, text.length() - 2))));
                }
                if (text.endsWith("s")) {
                    return positive(Duration.ofSeconds(Long.parseLong(text.substring(0, text.length() - 1))));
                }
            } catch (NumberFormatException e) {
                // falls through to the message below
            }
            throw new IllegalArgumentException("--timeout needs a duration such as 500ms or 10s, not '" + text + "'");
        }

        private static Duration positive(Duration d) {
            if (d.isZero() || d.isNegative()) {
                throw new IllegalArgumentException("--timeout must be positive");
            }
            return d;
        }
    }
}
