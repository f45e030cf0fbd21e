package io.vfiouser.examples;

import io.netty.util.ResourceLeakDetector;
import io.vfiouser.device.DeviceDescription;
import io.vfiouser.device.VfioUserDevice;
import io.vfiouser.examples.gpio.PciIdio16;
import io.vfiouser.examples.nulldev.NullDevice;
import io.vfiouser.server.HostedDevice;
import io.vfiouser.server.VfioUserServer;
import java.nio.file.Path;
import java.util.Map;
import java.util.function.Supplier;
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

    /** An example: its static description and a fresh instance of its behaviour. */
    record Example(DeviceDescription description, Supplier<VfioUserDevice> behaviour) {
    }

    /** The example devices by name. */
    static final Map<String, Supplier<Example>> DEVICES = Map.of(
            "null", () -> new Example(NullDevice.description("null"), NullDevice::new),
            "gpio", () -> new Example(PciIdio16.description("gpio"), PciIdio16::new));

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
        Supplier<Example> example = DEVICES.get(a.device());
        if (example == null) {
            System.err.println("vfio-user-examples: unknown device '" + a.device() + "'; devices: "
                    + String.join(", ", DEVICES.keySet()));
            System.exit(2);
            return;
        }
        if (System.getProperty("io.netty.leakDetection.level") == null) {
            // Netty's leak detector records a stack trace for a sample of all buffers: garbage and time on the hot
            // path. It is a debugging aid (the tests run it at "paranoid"): off unless asked for by that property.
            ResourceLeakDetector.setLevel(ResourceLeakDetector.Level.DISABLED);
        }
        VfioUserServer server = VfioUserServer.builder().build();
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            LOG.info("stopping");
            server.close();
            LogManager.shutdown();
        }, "vfio-user-shutdown"));
        Example device = example.get();
        HostedDevice hosted = a.fd() >= 0
                ? server.serve(device.description(), device.behaviour().get(), a.fd())
                : server.serve(device.description(), device.behaviour().get(), Path.of(a.socketPath()));
        hosted.closeFuture().join();
    }

    /** The command line: {@code <device> (--socket-path=PATH | --fd=N) [--trace]}. */
    record Arguments(String device, String socketPath, int fd, boolean trace, boolean help) {
        static final String USAGE = """
                usage: vfio-user-examples <device> (--socket-path=PATH | --fd=N) [--trace]
                  devices: null, gpio
                  --socket-path=PATH  listen on a new unix socket file at PATH (mode 0600, removed on exit)
                  --fd=N              serve on an already listening unix socket inherited as fd N
                  --trace             log every decoded message""";

        static Arguments parse(String[] args) {
            String device = null;
            String path = null;
            int fd = -1;
            boolean trace = false;
            for (String arg : args) {
                if (arg.equals("--help") || arg.equals("-h")) {
                    return new Arguments(null, null, -1, false, true);
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
            return new Arguments(device, path, fd, trace, false);
        }
    }
}
