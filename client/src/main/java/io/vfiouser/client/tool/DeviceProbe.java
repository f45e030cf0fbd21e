package io.vfiouser.client.tool;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.vfiouser.client.VfioUserClient;
import io.vfiouser.client.VfioUserErrorReplyException;
import io.vfiouser.codec.VfioUserCapabilities;
import io.vfiouser.codec.VfioUserCommand;
import io.vfiouser.codec.VfioUserMessage;
import io.vfiouser.codec.payload.DeviceFeature;
import io.vfiouser.codec.payload.DeviceInfo;
import io.vfiouser.codec.payload.IrqInfo;
import io.vfiouser.codec.payload.RegionAccess;
import io.vfiouser.codec.payload.RegionInfo;
import io.vfiouser.codec.payload.RegionInfoRequest;
import io.vfiouser.codec.payload.VersionPayload;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * The questions a VMM asks a device before it uses it, asked through a {@link VfioUserClient} and answered as
 * plain values: VERSION, DEVICE_GET_INFO, DEVICE_GET_REGION_INFO (asked again with the argsz the server names when
 * the capability chain did not fit, as QEMU does), DEVICE_GET_IRQ_INFO, DEVICE_FEATURE for migration, and
 * REGION_READ/REGION_WRITE. Nothing here
 * knows this project's server: only the protocol, so the tool works against any vfio-user server.
 *
 * <p>Every call waits at most {@code timeout}; a server that keeps the tool waiting (it has a client already, and
 * holds the new connection until that one leaves) ends in a {@link TimeoutException}.
 */
final class DeviceProbe {
    /** PCI region indexes of VFIO: BAR0..BAR5, the expansion ROM, the configuration space, VGA. */
    static final int ROM_REGION = 6;
    static final int CONFIG_REGION = 7;
    static final int VGA_REGION = 8;
    private static final String[] IRQ_NAMES = {"INTx", "MSI", "MSI-X", "ERR", "REQ"};

    private final VfioUserClient client;
    private final Duration timeout;

    /** What VERSION told: the version and the server's capabilities, with the JSON as it came. */
    record Version(int major, int minor, String json, VfioUserCapabilities capabilities) {
    }

    /** One region as DEVICE_GET_REGION_INFO describes it; {@code withFd}: the reply carried a file to mmap. */
    record RegionDescription(RegionInfo info, boolean withFd) {
    }

    DeviceProbe(VfioUserClient client, Duration timeout) {
        this.client = client;
        this.timeout = timeout;
    }

    /** Negotiates version 0.0 with the client's capabilities (the client was connected without negotiating). */
    Version version() throws Exception {
        VfioUserMessage reply = await(client.call(VfioUserCommand.VERSION,
                VersionPayload.of(0, 0, client.capabilities())));
        try {
            VersionPayload v = reply.payload(VersionPayload.class);
            String json = v.json() == null ? "" : v.json();
            return new Version(v.major(), v.minor(), json, VfioUserCapabilities.parse(json,
                    VfioUserCapabilities.SPEC_DEFAULT_MAX_MSG_FDS));
        } finally {
            reply.release();
        }
    }

    DeviceInfo deviceInfo() throws Exception {
        VfioUserMessage reply = await(client.call(VfioUserCommand.DEVICE_GET_INFO, DeviceInfo.request()));
        try {
            return reply.payload(DeviceInfo.class);
        } finally {
            reply.release();
        }
    }

    /** Region {@code index}, capability chain included (a second request when the first argsz was too small). */
    RegionDescription region(int index) throws Exception {
        RegionDescription first = region(RegionInfoRequest.of(index));
        if (first.info().argsz() > RegionInfo.FIXED_SIZE && first.info().caps().isEmpty()
                && first.info().argsz() <= 1 << 16) {
            return region(new RegionInfoRequest(first.info().argsz(), index));
        }
        return first;
    }

    private RegionDescription region(RegionInfoRequest request) throws Exception {
        VfioUserMessage reply = await(client.call(VfioUserCommand.DEVICE_GET_REGION_INFO, request));
        try {
            // The fd (if any) is the region's file; releasing the reply closes it: the tool maps nothing.
            return new RegionDescription(reply.payload(RegionInfo.class), !reply.fds().isEmpty());
        } finally {
            reply.release();
        }
    }

    /**
     * What DEVICE_FEATURE says about migration, as QEMU asks before it offers to migrate a device: the MIGRATION
     * feature's flags (GET), and whether dirty-page logging can start (PROBE of DMA_LOGGING_START); an error reply
     * (the server or the device does not migrate) is an answer too, kept as its errno.
     */
    Migration migration() throws Exception {
        long flags;
        try {
            VfioUserMessage reply = await(client.call(VfioUserCommand.DEVICE_FEATURE, new DeviceFeature(
                    DeviceFeature.FIXED_SIZE + 8, DeviceFeature.GET | DeviceFeature.FEATURE_MIGRATION,
                    Unpooled.EMPTY_BUFFER)));
            try {
                ByteBuf data = reply.payload(DeviceFeature.class).data();
                flags = data.readableBytes() >= 8 ? data.getLongLE(data.readerIndex()) : 0;
            } finally {
                reply.release();
            }
        } catch (VfioUserErrorReplyException e) {
            return new Migration(-1, e.errno(), false);
        }
        boolean logging;
        try {
            await(client.call(VfioUserCommand.DEVICE_FEATURE, DeviceFeature.of(DeviceFeature.PROBE
                    | DeviceFeature.FEATURE_DMA_LOGGING_START, Unpooled.EMPTY_BUFFER))).release();
            logging = true;
        } catch (VfioUserErrorReplyException e) {
            logging = false;
        }
        return new Migration(flags, 0, logging);
    }

    /** The MIGRATION feature's flags ({@code -1}: refused with {@code errno}) and dirty-page logging. */
    record Migration(long flags, int errno, boolean dirtyLogging) {
    }

    IrqInfo irq(int index) throws Exception {
        VfioUserMessage reply = await(client.call(VfioUserCommand.DEVICE_GET_IRQ_INFO, IrqInfo.request(index)));
        try {
            return reply.payload(IrqInfo.class);
        } finally {
            reply.release();
        }
    }

    /** {@code count} bytes at {@code offset} of {@code region}, in pieces the server accepts. */
    byte[] read(int region, long offset, int count, long maxTransfer) throws Exception {
        byte[] bytes = new byte[count];
        int done = 0;
        while (done < count) {
            int chunk = (int) Math.min(count - done, maxTransfer);
            VfioUserMessage reply = await(client.call(VfioUserCommand.REGION_READ,
                    RegionAccess.inRegion(region).atOffset(offset + done).count(chunk)));
            try {
                RegionAccess access = reply.payload(RegionAccess.class);
                ByteBuf data = access == null ? Unpooled.EMPTY_BUFFER : access.data();
                if (data.readableBytes() != chunk) {
                    throw new IllegalStateException("the server answered a read of " + chunk + " bytes with "
                            + data.readableBytes());
                }
                data.getBytes(data.readerIndex(), bytes, done, chunk);
            } finally {
                reply.release();
            }
            done += chunk;
        }
        return bytes;
    }

    void write(int region, long offset, byte[] bytes) throws Exception {
        await(client.call(VfioUserCommand.REGION_WRITE,
                RegionAccess.inRegion(region).atOffset(offset).data(Unpooled.wrappedBuffer(bytes)))).release();
    }

    /** The whole configuration space, as large as its region says (256 or 4096 bytes). */
    byte[] config(long maxTransfer) throws Exception {
        long size = region(CONFIG_REGION).info().size();
        if (size <= 0 || size > 4096) {
            throw new IllegalStateException("the configuration space region has size " + size);
        }
        return read(CONFIG_REGION, 0, (int) size, maxTransfer);
    }

    /** Every region the device announced. */
    List<RegionDescription> regions(int count) throws Exception {
        List<RegionDescription> regions = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            regions.add(region(i));
        }
        return regions;
    }

    static String regionName(int index) {
        return switch (index) {
            case 0, 1, 2, 3, 4, 5 -> "BAR" + index;
            case ROM_REGION -> "ROM";
            case CONFIG_REGION -> "config";
            case VGA_REGION -> "VGA";
            default -> "region " + index;
        };
    }

    static String irqName(int index) {
        return index < IRQ_NAMES.length ? IRQ_NAMES[index] : "IRQ index " + index;
    }

    private <T> T await(java.util.concurrent.CompletableFuture<T> future) throws Exception {
        try {
            return future.get(timeout.toMillis(), TimeUnit.MILLISECONDS);
        } catch (ExecutionException e) {
            throw e.getCause() instanceof Exception cause ? cause : e;
        }
    }
}
