package io.vfiouser.server;

import io.netty.channel.unix.DomainSocketAddress;
import io.vfiouser.device.DeviceDescription;
import io.vfiouser.device.Region;
import io.vfiouser.device.VfioUserDevice;
import io.vfiouser.device.pci.PciIdentity;
import io.vfiouser.server.device.DeviceRuntime;
import io.vfiouser.transport.UnixServerChannel;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Comparator;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.stream.Stream;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

/**
 * Makes a freshly started server answer its first client at once: before the first device's socket appears, the
 * server hosts a throwaway device on a socket in a temporary directory and talks to it the way a VMM starts (VERSION
 * with QEMU's capabilities, the info commands, region accesses on the fast and the general path, a DMA mapping), so
 * the classes, method handles and lambdas the first real message needs are loaded and linked by then: the FFM
 * downcalls of the channel, the pipeline, the connection, Jackson. Once per JVM; bounded ({@link #BUDGET}); a
 * failure only loses the warm-up (logged at DEBUG), never the device. {@code -Dvfu.warmup=false} leaves it out.
 *
 * <p>The throwaway device logs under {@code io.vfiouser.warmup} (the launcher's configuration keeps it quiet), is
 * not among {@link VfioUserServer#devices()} and is closed before the real device is bound.
 */
final class ServerWarmup {
    private static final Logger LOG = LogManager.getLogger("io.vfiouser.warmup");
    private static final AtomicBoolean DONE = new AtomicBoolean();
    /** The longest the warm-up may take before it is abandoned. */
    static final Duration BUDGET = Duration.ofSeconds(5);

    private static final DeviceDescription DESCRIPTION =
            DeviceDescription.builder("warmup", PciIdentity.of(0x4a56, 0xffff, 0xff0000))
                    .region(Region.bar(0, 0x1000).build())
                    .region(Region.bar(2, 0x1000).memoryBacked().build())
                    .intx()
                    .resetSupported(true)
                    .build();

    private ServerWarmup() {
    }

    /** Warms up once per JVM, on the caller's thread. */
    static void once(VfioUserServer server) {
        if (Boolean.parseBoolean(System.getProperty("vfu.warmup", "true")) && DONE.compareAndSet(false, true)) {
            run(server);
        }
    }

    /** One warm-up conversation; whether it went through without a failure. */
    static boolean run(VfioUserServer server) {
        long start = System.nanoTime();
        Path dir = null;
        HostedDevice hosted = null;
        try {
            dir = Files.createTempDirectory("vfio-user-warmup");
            Path socket = dir.resolve("s");
            String path = socket.toString();
            DeviceRuntime runtime = new DeviceRuntime(DESCRIPTION, new Quiet(), server.options().limits(),
                    server.group(), LOG.getName());
            hosted = server.host(runtime, path, SocketPolicy.DEFAULT,
                    () -> new UnixServerChannel(0600, file -> { }),
                    bootstrap -> bootstrap.bind(new DomainSocketAddress(path)), false);
            CompletableFuture<Void> talk = CompletableFuture.runAsync(() -> converse(socket));
            talk.get(BUDGET.toMillis(), TimeUnit.MILLISECONDS);
            LOG.debug("warmed up in {} ms", TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start));
            return true;
        } catch (Exception e) {
            LOG.debug("warm-up abandoned after {} ms: {}", TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start),
                    e.toString());
            if (e instanceof InterruptedException) {
                Thread.currentThread().interrupt();
            }
            return false;
        } finally {
            if (hosted != null) {
                hosted.close();
            }
            deleteQuietly(dir);
        }
    }

    /** A VMM's first steps, every reply read whole. */
    private static void converse(Path socket) {
        try (SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            ch.connect(UnixDomainSocketAddress.of(socket));
            String json = "{\"capabilities\":{\"max_msg_fds\":16,\"max_data_xfer_size\":1048576,\"pgsizes\":4096,"
                    + "\"max_dma_maps\":65535,\"migration\":{\"pgsize\":4096,\"max_bitmap_size\":268435456},"
                    + "\"write_multiple\":true}}";
            byte[] text = json.getBytes(StandardCharsets.US_ASCII);
            int id = 0;
            exchange(ch, id++, 1, le(2, 0, 2, 2), text, new byte[1]);      // VERSION 0.2
            exchange(ch, id++, 4, le(4, 16, 4, 0, 4, 0, 4, 0));           // DEVICE_GET_INFO
            for (int region : new int[] {0, 2, 7}) {                       // DEVICE_GET_REGION_INFO
                exchange(ch, id++, 5, le(4, 32, 4, 0, 4, region, 4, 0, 8, 0, 8, 0));
            }
            exchange(ch, id++, 6, le(4, 16, 4, 0, 4, 0, 4, 0));           // DEVICE_GET_IRQ_INFO (INTx)
            for (int round = 0; round < 4; round++) {
                exchange(ch, id++, 9, le(8, 0x10, 4, 0, 4, 4));                          // REGION_READ, fast path
                exchange(ch, id++, 10, le(8, 0x10, 4, 0, 4, 4, 4, round));               // REGION_WRITE, fast path
                exchange(ch, id++, 9, le(8, 0, 4, 0, 4, 1024));                          // general path
                exchange(ch, id++, 9, le(8, 0, 4, 7, 4, 4));                             // configuration space
                exchange(ch, id++, 10, le(8, 0x100, 4, 2, 4, 4, 4, round));              // shared memory
            }
            exchange(ch, id++, 2, le(4, 32, 4, 3, 8, 0, 8, 0x100000, 8, 0x1000));     // DMA_MAP, no fd
            exchange(ch, id++, 3, le(4, 24, 4, 0, 8, 0x100000, 8, 0x1000));           // DMA_UNMAP
            exchange(ch, id++, 13, new byte[0]);                                          // DEVICE_RESET
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    /** Sends one command (header + parts) and reads its whole reply; fails on an error reply. */
    private static void exchange(SocketChannel ch, int id, int command, byte[]... parts) throws IOException {
        ByteArrayOutputStream payload = new ByteArrayOutputStream();
        for (byte[] p : parts) {
            payload.writeBytes(p);
        }
        ByteBuffer out = ByteBuffer.allocate(16 + payload.size()).order(ByteOrder.LITTLE_ENDIAN);
        out.putShort((short) id).putShort((short) command).putInt(16 + payload.size()).putInt(0).putInt(0);
        out.put(payload.toByteArray()).flip();
        while (out.hasRemaining()) {
            ch.write(out);
        }
        ByteBuffer header = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN);
        readFully(ch, header);
        int size = header.getInt(4);
        if ((header.getInt(8) & 0x20) != 0 || size < 16) {
            throw new IOException("warm-up command " + command + " failed with errno " + header.getInt(12));
        }
        readFully(ch, ByteBuffer.allocate(size - 16));
    }

    private static void readFully(SocketChannel ch, ByteBuffer b) throws IOException {
        while (b.hasRemaining()) {
            if (ch.read(b) < 0) {
                throw new IOException("the warm-up device closed the connection");
            }
        }
    }

    /** Little-endian bytes of the given fields: width, value, width, value, ... */
    private static byte[] le(long... widthThenValue) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (int i = 0; i < widthThenValue.length; i += 2) {
            for (int b = 0; b < widthThenValue[i]; b++) {
                out.write((int) (widthThenValue[i + 1] >>> (8 * b)));
            }
        }
        return out.toByteArray();
    }

    private static void deleteQuietly(Path dir) {
        if (dir == null) {
            return;
        }
        try (Stream<Path> files = Files.walk(dir)) {
            for (Path p : files.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        } catch (IOException e) {
            LOG.debug("could not remove {}: {}", dir, e.toString());
        }
    }

    /** The throwaway device: registers that read as zeros and take writes. */
    private static final class Quiet implements VfioUserDevice {
        @Override
        public CompletableFuture<Void> regionRead(int region, long offset, ByteBuffer dst) {
            while (dst.hasRemaining()) {
                dst.put((byte) 0);
            }
            return DONE;
        }

        @Override
        public CompletableFuture<Void> regionWrite(int region, long offset, ByteBuffer src) {
            src.position(src.limit());
            return DONE;
        }
    }
}
