package io.vfiouser.client;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.vfiouser.codec.VfioUserCommand;
import io.vfiouser.codec.VfioUserMessage;
import io.vfiouser.codec.payload.DeviceFeature;
import io.vfiouser.codec.payload.DmaLoggingControl;
import io.vfiouser.codec.payload.DmaLoggingReport;
import io.vfiouser.codec.payload.MigData;
import io.vfiouser.codec.payload.MigDataRead;
import io.vfiouser.codec.payload.MigDeviceState;
import java.util.List;
import java.util.concurrent.CompletableFuture;

/**
 * The migration commands of one device, through a {@link VfioUserClient} (digest 3.16-3.18): the MIGRATION and
 * MIG_DEVICE_STATE device features, MIG_DATA_READ/WRITE and dirty-page logging. Every future fails with
 * {@link VfioUserErrorReplyException} when the server refuses.
 */
public final class DeviceMigration {
    private final VfioUserClient client;

    public DeviceMigration(VfioUserClient client) {
        this.client = client;
    }

    public VfioUserClient client() {
        return client;
    }

    /** GET MIGRATION: the device's migration flags ({@link DeviceFeature#MIGRATION_STOP_COPY} ...). */
    public CompletableFuture<Long> flags() {
        return get(DeviceFeature.FEATURE_MIGRATION, Unpooled.EMPTY_BUFFER, 8).thenApply(data -> {
            try {
                return data.getLongLE(data.readerIndex());
            } finally {
                data.release();
            }
        });
    }

    /** GET MIG_DEVICE_STATE: the current state ({@link MigDeviceState#RUNNING} ...). */
    public CompletableFuture<Integer> state() {
        return get(DeviceFeature.FEATURE_MIG_DEVICE_STATE, Unpooled.EMPTY_BUFFER, MigDeviceState.SIZE)
                .thenApply(data -> {
                    try {
                        return MigDeviceState.decode(data).deviceState();
                    } finally {
                        data.release();
                    }
                });
    }

    /** SET MIG_DEVICE_STATE: completes when the device has reached {@code state}. */
    public CompletableFuture<Void> setState(int state) {
        return set(DeviceFeature.FEATURE_MIG_DEVICE_STATE, MigDeviceState.of(state).encode());
    }

    /**
     * MIG_DATA_READ of up to {@code size} bytes: the data the server returned (the caller releases it); fewer
     * bytes than asked for mean "no more for now", none in STOP_COPY the end of the stream.
     */
    public CompletableFuture<ByteBuf> read(int size) {
        return client.call(VfioUserCommand.MIG_DATA_READ, MigDataRead.of(size)).thenApply(reply -> {
            try {
                MigData data = reply.payload(MigData.class);
                return data.data().retainedSlice();
            } finally {
                reply.release();
            }
        });
    }

    /** MIG_DATA_WRITE of {@code data}'s readable bytes (ownership moves in). */
    public CompletableFuture<Void> write(ByteBuf data) {
        return client.call(VfioUserCommand.MIG_DATA_WRITE, MigData.of(data)).thenAccept(VfioUserMessage::release);
    }

    /** DMA_LOGGING_START in pages of {@code pageSize} for {@code ranges}. */
    public CompletableFuture<Void> startDirtyLogging(long pageSize, List<DmaLoggingControl.Range> ranges) {
        return set(DeviceFeature.FEATURE_DMA_LOGGING_START, new DmaLoggingControl(pageSize, ranges).encode());
    }

    /** DMA_LOGGING_STOP. */
    public CompletableFuture<Void> stopDirtyLogging() {
        return set(DeviceFeature.FEATURE_DMA_LOGGING_STOP, new DmaLoggingControl(0, List.of()).encode());
    }

    /**
     * DMA_LOGGING_REPORT of {@code [iova, iova + length)} in pages of {@code pageSize}: the bitmap as u64 words
     * (page p is bit p % 64 of word p / 64), read and cleared on the server.
     */
    public CompletableFuture<long[]> dirtyReport(long iova, long length, long pageSize) {
        DmaLoggingReport report = new DmaLoggingReport(iova, length, pageSize);
        long bitmap = report.bitmapSize();
        if (bitmap < 0) {
            return CompletableFuture.failedFuture(new IllegalArgumentException("page size " + pageSize));
        }
        return get(DeviceFeature.FEATURE_DMA_LOGGING_REPORT, report.encode(), DmaLoggingReport.SIZE + bitmap)
                .thenApply(data -> {
                    try {
                        long[] words = new long[(int) (bitmap / 8)];
                        int at = data.readerIndex() + DmaLoggingReport.SIZE;
                        for (int i = 0; i < words.length; i++) {
                            words[i] = data.getLongLE(at + 8 * i);
                        }
                        return words;
                    } finally {
                        data.release();
                    }
                });
    }

    /** GET of a feature: its reply data (retained; the caller releases it). */
    private CompletableFuture<ByteBuf> get(int feature, ByteBuf request, long replyData) {
        int argsz = (int) (DeviceFeature.FIXED_SIZE + replyData);
        return client.call(VfioUserCommand.DEVICE_FEATURE,
                new DeviceFeature(argsz, DeviceFeature.GET | feature, request)).thenApply(reply -> {
                    try {
                        ByteBuf data = reply.payload(DeviceFeature.class).data();
                        if (data.readableBytes() < replyData) {
                            throw new IllegalStateException("DEVICE_FEATURE " + feature + " reply has "
                                    + data.readableBytes() + " bytes of data, expected " + replyData);
                        }
                        return data.retainedSlice();
                    } finally {
                        reply.release();
                    }
                });
    }

    private CompletableFuture<Void> set(int feature, ByteBuf data) {
        return client.call(VfioUserCommand.DEVICE_FEATURE, DeviceFeature.of(DeviceFeature.SET | feature, data))
                .thenAccept(VfioUserMessage::release);
    }
}
