package io.vfiouser.examples;

import io.vfiouser.device.DeviceDescription;
import io.vfiouser.device.VfioUserDevice;
import io.vfiouser.examples.gpio.PciIdio16;
import io.vfiouser.examples.nulldev.NullDevice;
import io.vfiouser.examples.nvme.NvmeDevice;
import io.vfiouser.examples.nvme.NvmeOptions;
import io.vfiouser.server.HostedDevice;
import io.vfiouser.server.VfioUserServer;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.apache.logging.log4j.Level;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;
import org.apache.logging.log4j.core.config.Configurator;

/**
 * Runs one example device the way VMMs expect a vfio-user backend program to run:
 * {@code java -jar vfio-user-examples.jar <device> --socket-path=PATH} (or {@code --fd=N} for a socket that is
 * already listening). It never daemonizes; SIGTERM or SIGINT stop it cleanly and remove the socket file.
 */
public final class ExamplesMain {
    private static final Logger LOG = LogManager.getLogger(ExamplesMain.class);

    /** An example: its static description and its behaviour. */
    record Example(DeviceDescription description, VfioUserDevice behaviour) {
    }

    /** Builds an example from its device-specific options; rejects options it does not know. */
    @FunctionalInterface
    interface ExampleFactory {
        Example create(DeviceSettings settings) throws Exception;
    }

    /** The example devices by name. */
    static final Map<String, ExampleFactory> DEVICES = Map.of(
            "null", s -> {
                s.finish();
                return new Example(NullDevice.description("null"), new NullDevice());
            },
            "gpio", s -> {
                s.finish();
                return new Example(PciIdio16.description("gpio"), new PciIdio16());
            },
            "nvme", ExamplesMain::nvme);

    private static Example nvme(DeviceSettings s) throws Exception {
        Path backing = Path.of(s.required("backing"));
        long size = s.optional("size").map(NvmeOptions::parseSize).orElse(0L);
        String doorbells = s.optional("doorbells").orElse("write");
        if (!doorbells.equals("write")) {
            throw new IllegalArgumentException("--doorbells=" + doorbells
                    + ": only REGION_WRITE doorbells (--doorbells=write) are implemented");
        }
        s.finish();
        return new Example(NvmeDevice.description("nvme"), new NvmeDevice("nvme", new NvmeOptions(backing, size)));
    }

    private ExamplesMain() {
    }

    public static void main(String[] args) throws Exception {
        Arguments a;
        try {
            a = Arguments.parse(args);
        } catch (IllegalArgumentException e) {
            System.err.println("vfio-user-examples: " + e.getMessage());
            System.err.println(Arguments.USAGE);
            System.exit(2);
            return;
        }
        if (a.help()) {
            System.out.println(Arguments.USAGE);
            return;
        }
        if (a.trace()) {
            Configurator.setLevel("io.vfiouser", Level.TRACE);
        }
        ExampleFactory factory = DEVICES.get(a.device());
        if (factory == null) {
            System.err.println("vfio-user-examples: unknown device '" + a.device() + "'; devices: "
                    + String.join(", ", DEVICES.keySet()));
            System.exit(2);
            return;
        }
        Example device;
        try {
            device = factory.create(new DeviceSettings(a.device(), a.settings()));
        } catch (IllegalArgumentException e) {
            System.err.println("vfio-user-examples: " + e.getMessage());
            System.err.println(Arguments.USAGE);
            System.exit(2);
            return;
        } catch (Exception e) {
            System.err.println("vfio-user-examples: " + a.device() + ": " + e);
            System.exit(1);
            return;
        }
        VfioUserServer server = VfioUserServer.builder().build();
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            LOG.info("stopping");
            server.close();
            if (device.behaviour() instanceof AutoCloseable closeable) {
                try {
                    closeable.close();
                } catch (Exception e) {
                    LOG.warn("closing {} failed", a.device(), e);
                }
            }
            LogManager.shutdown();
        }, "vfio-user-shutdown"));
        HostedDevice hosted = a.fd() >= 0
                ? server.serve(device.description(), device.behaviour(), a.fd())
                : server.serve(device.description(), device.behaviour(), Path.of(a.socketPath()));
        hosted.closeFuture().join();
    }

    /**
     * The command line: {@code <device> (--socket-path=PATH | --fd=N) [--trace] [--key=value ...]}, where the
     * {@code --key=value} options other than the common ones are the device's own ({@link #settings()}).
     */
    record Arguments(String device, String socketPath, int fd, boolean trace, boolean help,
                     Map<String, String> settings) {
        static final String USAGE = """
                usage: vfio-user-examples <device> (--socket-path=PATH | --fd=N) [--trace] [device options]
                  devices: null, gpio, nvme
                  --socket-path=PATH  listen on a new unix socket file at PATH (mode 0600, removed on exit)
                  --fd=N              serve on an already listening unix socket inherited as fd N
                  --trace             log every decoded message
                nvme options:
                  --backing=FILE      the file behind namespace 1 (created when missing)
                  --size=SIZE         namespace size, e.g. 64M or 1G (default: the size of the existing file)
                  --doorbells=write   doorbells are REGION_WRITE messages (the only mode implemented)""";

        Arguments {
            settings = Map.copyOf(settings);
        }

        static Arguments parse(String[] args) {
            String device = null;
            String path = null;
            int fd = -1;
            boolean trace = false;
            Map<String, String> settings = new LinkedHashMap<>();
            for (String arg : args) {
                if (arg.equals("--help") || arg.equals("-h")) {
                    return new Arguments(null, null, -1, false, true, Map.of());
                } else if (arg.startsWith("--socket-path=")) {
                    path = arg.substring("--socket-path=".length());
                } else if (arg.startsWith("--fd=")) {
                    try {
                        fd = Integer.parseInt(arg.substring("--fd=".length()));
                    } catch (NumberFormatException e) {
                        throw new IllegalArgumentException("--fd needs a number: " + arg);
                    }
                } else if (arg.equals("--trace")) {
                    trace = true;
                } else if (arg.matches("--[a-z][a-z0-9-]*=.*")) {
                    String key = arg.substring(2, arg.indexOf('='));
                    if (settings.put(key, arg.substring(arg.indexOf('=') + 1)) != null) {
                        throw new IllegalArgumentException("--" + key + " given twice");
                    }
                } else if (arg.startsWith("-")) {
                    throw new IllegalArgumentException("unknown option " + arg);
                } else if (device == null) {
                    device = arg;
                } else {
                    throw new IllegalArgumentException("more than one device given: " + arg);
                }
            }
            if (device == null) {
                throw new IllegalArgumentException("no device given");
            }
            if ((path == null) == (fd < 0)) {
                throw new IllegalArgumentException("give exactly one of --socket-path=PATH and --fd=N");
            }
            return new Arguments(device, path, fd, trace, false, settings);
        }
    }
}
