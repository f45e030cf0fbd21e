package io.vfiouser.server.migration;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.vfiouser.codec.VfioUserProtocolException;
import io.vfiouser.codec.payload.DeviceFeature;
import io.vfiouser.codec.payload.DmaLoggingControl;
import io.vfiouser.codec.payload.DmaLoggingReport;
import io.vfiouser.codec.payload.MigDeviceState;
import io.vfiouser.device.MigrationState;
import io.vfiouser.device.VfioUserDevice;
import io.vfiouser.server.dma.DmaTable;
import io.vfiouser.transport.linux.Errno;
import java.util.concurrent.CompletableFuture;

/**
 * DEVICE_FEATURE (digest 3.16, 6.3, libvfio-user's rules): the features a migratable device offers, each with its
 * operations (MIGRATION: GET; MIG_DEVICE_STATE: GET, SET; DMA_LOGGING_START/STOP: SET; DMA_LOGGING_REPORT: GET;
 * all: PROBE). EINVAL for a device without migration, an unknown feature, an operation the feature does not offer,
 * GET and SET without PROBE, no operation, a GET whose argsz cannot hold the whole reply, a SET or PROBE whose argsz
 * is below the request's payload. SET and PROBE replies echo the request; GET replies carry the feature data with
 * argsz = the reply's size.
 *
 * <p>The parsing and the checks are here; the state machine it drives (one per connection) and the dirty log it
 * starts, stops and reads are given to it. Which migration states accept a DEVICE_FEATURE is not its concern: the
 * server's command rules decide that before it is called.
 */
public final class DeviceFeatures {
    /** The migration state machine of one connection's device, as the features see it. */
    public interface StateMachine {
        /** Whether the device offers PRE_COPY. */
        boolean preCopy();

        MigrationState state();

        /** MIG_DEVICE_STATE SET: completes when the state {@code code} is reached, or fails with an errno. */
        CompletableFuture<Void> setState(int code);
    }

    private final StateMachine migration;
    private final DmaTable dma;
    private final int maxDataTransferSize;

    /**
     * @param migration           the device's state machine; null for a device without migration, which offers no
     *                            feature at all
     * @param dma                 the connection's DMA table, which keeps the dirty log
     * @param maxDataTransferSize the largest dirty bitmap a DMA_LOGGING_REPORT may return (the reply is one message)
     */
    public DeviceFeatures(StateMachine migration, DmaTable dma, int maxDataTransferSize) {
        this.migration = migration;
        this.dma = dma;
        this.maxDataTransferSize = maxDataTransferSize;
    }

    /**
     * The reply payload of {@code request}; a refusal is thrown (or fails the future) as a
     * {@link VfioUserProtocolException}. The reply owns its data; {@code request} stays the caller's.
     */
    public CompletableFuture<DeviceFeature> handle(DeviceFeature request) {
        int flags = request.flags();
        int ops = flags & ~DeviceFeature.FEATURE_MASK;
        int feature = request.feature();
        int offered = migration != null ? operationsOf(feature) : 0;
        if (offered == 0) {
            throw invalid("feature " + feature + " is not supported by this device");
        }
        if (ops == 0 || (ops & ~offered) != 0) {
            throw invalid("feature " + feature + " does not offer operations 0x" + Integer.toHexString(ops));
        }
        long payloadLength = DeviceFeature.FIXED_SIZE + (long) request.data().readableBytes();
        if (ops == DeviceFeature.GET) {
            return CompletableFuture.completedFuture(get(request));
        }
        if (ops != DeviceFeature.SET && (ops & DeviceFeature.PROBE) == 0) {
            throw invalid("DEVICE_FEATURE GET with SET needs PROBE");
        }
        if (request.argsz() < payloadLength) {
            throw invalid("DEVICE_FEATURE argsz " + request.argsz() + " below the " + payloadLength + "-byte request");
        }
        if (ops != DeviceFeature.SET) {
            return CompletableFuture.completedFuture(echo(request));
        }
        return set(request).thenApply(ok -> echo(request));
    }

    private static int operationsOf(int feature) {
        return switch (feature) {
            case DeviceFeature.FEATURE_MIGRATION, DeviceFeature.FEATURE_DMA_LOGGING_REPORT ->
                    DeviceFeature.GET | DeviceFeature.PROBE;
            case DeviceFeature.FEATURE_MIG_DEVICE_STATE -> DeviceFeature.GET | DeviceFeature.SET | DeviceFeature.PROBE;
            case DeviceFeature.FEATURE_DMA_LOGGING_START, DeviceFeature.FEATURE_DMA_LOGGING_STOP ->
                    DeviceFeature.SET | DeviceFeature.PROBE;
            default -> 0;
        };
    }

    private static DeviceFeature echo(DeviceFeature request) {
        return new DeviceFeature(request.argsz(), request.flags(), request.data().retainedSlice());
    }

    private DeviceFeature get(DeviceFeature request) {
        switch (request.feature()) {
            case DeviceFeature.FEATURE_MIGRATION -> {
                requireGetArgsz(request, DeviceFeature.FIXED_SIZE + 8);
                long flags = DeviceFeature.MIGRATION_STOP_COPY
                        | (migration.preCopy() ? DeviceFeature.MIGRATION_PRE_COPY : 0);
                return DeviceFeature.of(request.flags(), Unpooled.buffer(8, 8).writeLongLE(flags));
            }
            case DeviceFeature.FEATURE_MIG_DEVICE_STATE -> {
                requireGetArgsz(request, DeviceFeature.FIXED_SIZE + MigDeviceState.SIZE);
                return DeviceFeature.of(request.flags(), MigDeviceState.of(migration.state().code()).encode());
            }
            default -> {
                DmaLoggingReport report = DmaLoggingReport.decode(request.data());
                long bitmapSize = report.bitmapSize();
                if (bitmapSize < 0) {
                    throw invalid("DMA_LOGGING_REPORT page size " + Long.toUnsignedString(report.pageSize()));
                }
                if (bitmapSize > maxDataTransferSize) {
                    // The reply must fit in one message; refused before the log is read and cleared.
                    throw invalid("DMA_LOGGING_REPORT bitmap of " + bitmapSize + " bytes exceeds "
                            + maxDataTransferSize + ": report a smaller range or larger pages");
                }
                requireGetArgsz(request, DeviceFeature.FIXED_SIZE + DmaLoggingReport.SIZE + bitmapSize);
                long[] words = dma.dirtyReport(report.iova(), report.length(), report.pageSize());
                ByteBuf data = Unpooled.buffer(DmaLoggingReport.SIZE + (int) bitmapSize);
                data.writeBytes(request.data(), request.data().readerIndex(), DmaLoggingReport.SIZE);
                for (long w : words) {
                    data.writeLongLE(w);
                }
                return DeviceFeature.of(request.flags(), data);
            }
        }
    }

    private static void requireGetArgsz(DeviceFeature request, long needed) {
        if (request.argsz() < needed) {
            throw invalid("DEVICE_FEATURE GET argsz " + request.argsz() + ", the reply needs " + needed);
        }
    }

    private CompletableFuture<Void> set(DeviceFeature request) {
        switch (request.feature()) {
            case DeviceFeature.FEATURE_MIG_DEVICE_STATE -> {
                MigDeviceState target = MigDeviceState.decode(request.data());
                return migration.setState(target.deviceState());
            }
            case DeviceFeature.FEATURE_DMA_LOGGING_START -> {
                DmaLoggingControl control = DmaLoggingControl.decode(request.data());
                if (control.pageSize() == 0) {
                    throw invalid("DMA_LOGGING_START with page size 0");
                }
                dma.startDirtyLogging(control.pageSize());
                return VfioUserDevice.DONE;
            }
            default -> {
                dma.stopDirtyLogging();
                return VfioUserDevice.DONE;
            }
        }
    }

    private static VfioUserProtocolException invalid(String message) {
        return new VfioUserProtocolException(Errno.EINVAL, message);
    }
}
