package io.vfiouser.server.connection;

import io.vfiouser.device.ResetReason;
import io.vfiouser.device.VfioUserDevice;
import io.vfiouser.server.device.DeviceRuntime;
import io.vfiouser.server.device.RateLimitedLog;
import io.vfiouser.server.irq.IrqTable;
import java.util.concurrent.CompletableFuture;

/**
 * The resets of a device while a client is attached: DEVICE_RESET, a function-level reset the guest starts with a
 * configuration write, and the reset after the client left. Each runs the device's {@link VfioUserDevice#reset},
 * then resets the framework's own state (configuration space, interrupt masks) and ends any migration.
 */
final class DeviceResets {
    private final DeviceRuntime runtime;
    private final IrqTable irqs;
    private final ConfigInterrupts configInterrupts;
    private final ConnectionMigration migration;
    private final RateLimitedLog.Connection warnings;

    DeviceResets(DeviceRuntime runtime, IrqTable irqs, ConfigInterrupts configInterrupts,
                 ConnectionMigration migration, RateLimitedLog.Connection warnings) {
        this.runtime = runtime;
        this.irqs = irqs;
        this.configInterrupts = configInterrupts;
        this.migration = migration;
        this.warnings = warnings;
    }

    /**
     * On a quiesced device: the device's reset, then the framework's own state (config space, interrupt masks); a
     * migration in progress ends and the device runs again.
     */
    CompletableFuture<Void> reset(ResetReason reason) {
        return VfioUserDevice.DONE
                .thenCompose(ok -> runtime.device().reset(reason))
                .thenRun(() -> {
                    runtime.config().reset();
                    irqs.reset();
                    configInterrupts.sync();
                    warnings.info("{}: reset ({})", runtime.name(), reason);
                })
                .thenCompose(ok -> migration.afterReset());
    }

    /**
     * The guest wrote Initiate FLR: part of that configuration write's completion (the write is answered when the
     * reset is over). No command asks for it, so no {@link CommandRules rule} quiesces for it: it quiesces here.
     */
    CompletableFuture<Void> functionLevelReset() {
        CompletableFuture<Void> quiesced;
        try {
            quiesced = runtime.device().quiesce();
        } catch (RuntimeException e) {
            return CompletableFuture.failedFuture(e);
        }
        return quiesced.thenCompose(ok -> reset(ResetReason.FLR));
    }

    /**
     * The client is gone: quiesce, drop its DMA mappings and eventfds ({@code dropClientState}), reset the device
     * with reason LOST_CONNECTION (digest 4.6), end any migration, tell the device {@code detached()}. A failure of
     * any step is logged and the next still runs; the future never fails.
     */
    CompletableFuture<Void> afterClientLeft(Runnable dropClientState) {
        CompletableFuture<Void> quiesced;
        try {
            quiesced = runtime.device().quiesce();
        } catch (RuntimeException e) {
            quiesced = CompletableFuture.failedFuture(e);
        }
        return quiesced.handle((ok, err) -> {
            dropClientState.run();
            try {
                return runtime.device().reset(ResetReason.LOST_CONNECTION);
            } catch (RuntimeException e) {
                return CompletableFuture.<Void>failedFuture(e);
            }
        }).thenCompose(f -> f).handle((ok, err) -> {
            if (err != null) {
                warnings.warn("{}: reset after the client left failed", runtime.name(), err);
            }
            return migration.afterReset();
        }).thenCompose(f -> f).handle((ok, err) -> {
            if (err != null) {
                warnings.warn("{}: reset after the client left failed", runtime.name(), err);
            }
            try {
                runtime.device().detached();
            } catch (RuntimeException e) {
                warnings.warn("{}: detached() failed", runtime.name(), e);
            }
            return null;
        });
    }
}
