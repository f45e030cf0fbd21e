package io.vfiouser.benchmarks.load;

import io.vfiouser.examples.nulldev.NullDevice;
import io.vfiouser.server.HostedDevice;
import io.vfiouser.server.VfioUserServer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;

/**
 * Serves N null devices ({@link NullDevice}) from one JVM and one {@link VfioUserServer}, one listening socket
 * each, for the "many devices" load run ({@code vfu-load -c N ... /path/dev%d.sock}).
 *
 * <pre>
 * java --enable-native-access=ALL-UNNAMED -cp ... io.vfiouser.benchmarks.load.ManyNullDevices \
 *     [--threads=T] COUNT PATTERN          # PATTERN contains %d, e.g. /tmp/dev%d.sock
 * </pre>
 *
 * <p>{@code --threads} is the number of event-loop threads (default: available processors, i.e. 1 under
 * {@code taskset -c 1}). Prints {@code READY n} on stdout once every socket is listening; runs until SIGTERM or
 * SIGINT, which close the server and remove the socket files.
 */
public final class ManyNullDevices {
    private ManyNullDevices() {
    }

    public static void main(String[] args) throws Exception {
        int threads = Runtime.getRuntime().availableProcessors();
        List<String> rest = new ArrayList<>();
        for (String a : args) {
            if (a.startsWith("--threads=")) {
                threads = Integer.parseInt(a.substring("--threads=".length()));
            } else {
                rest.add(a);
            }
        }
        if (rest.size() != 2 || !rest.get(1).contains("%d")) {
            System.err.println("usage: ManyNullDevices [--threads=T] COUNT PATTERN   (PATTERN contains %d)");
            System.exit(2);
        }
        int count = Integer.parseInt(rest.get(0));
        String pattern = rest.get(1);
        VfioUserServer server = VfioUserServer.builder().threads(threads).build();
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            server.close();
            stopped.countDown();
        }, "many-null-devices-shutdown"));
        List<HostedDevice> hosted = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            String path = String.format(pattern, i);
            hosted.add(server.serve(NullDevice.description("null" + i), new NullDevice(), Path.of(path)));
        }
        System.out.println("READY " + hosted.size());
        System.out.flush();
        stopped.await();
    }
}
