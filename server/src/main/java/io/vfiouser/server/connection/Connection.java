package io.vfiouser.server.connection;

import io.netty.buffer.ByteBufAllocator;
import io.netty.channel.Channel;
import io.vfiouser.codec.VfioUserCapabilities;
import io.vfiouser.device.IrqType;
import io.vfiouser.device.ResetReason;
import io.vfiouser.server.ServerOptions;
import io.vfiouser.server.device.DeviceRuntime;
import io.vfiouser.server.device.RateLimitedLog;
import io.vfiouser.server.dma.DirtyLog;
import io.vfiouser.server.dma.DmaTable;
import io.vfiouser.server.dma.ServerDmaSpace;
import io.vfiouser.server.irq.IrqTable;
import io.vfiouser.transport.FdBudget;
import io.vfiouser.transport.linux.ErrnoException;
import java.util.concurrent.CompletableFuture;
import org.apache.logging.log4j.Logger;

/**
 * One client's connection to one device, made of its parts: the interrupt table, the DMA table and the device's
 * view of it, the region router, the migration state, the doorbells, the server's own DMA requests, the resets. It
 * is built once per connection, before the client says anything, and owns what the client makes the server hold
 * (fds, mappings, eventfds) until {@link #detach}. The device-lifetime state it works on ({@link DeviceRuntime}:
 * configuration space, memory-backed regions) never points back at it: its configuration-space listener is
 * installed by {@link #attach} and removed by {@link #detach}.
 *
 * <p>Everything here runs on the connection's event loop except where a method says otherwise (interrupt
 * signalling, a device's DMA). It knows nothing of Netty's pipeline: the {@link ConnectionHandler} feeds it commands
 * one at a time through the {@link CommandDispatcher}; tests build it on an {@code EmbeddedChannel}.
 */
public final class Connection {
    private final DeviceRuntime runtime;
    private final ServerOptions options;
    private final Channel channel;
    private final EventFdWatchers watchers;
    /** This connection's share of the device's log budget: every line the client can cause goes through it. */
    private final RateLimitedLog.Connection warnings;
    private final IrqTable irqs;
    private final InterruptEvents interruptEvents;
    private final ConfigInterrupts configInterrupts;
    private final DmaTable dmaTable;
    private final ServerDmaRequests dmaRequests;
    private final ServerDmaSpace dmaSpace;
    private final ConnectionMigration migration;
    private final DeviceResets resets;
    private final RegionRouter regions;
    private IoEventFds ioEventFds;
    /** The device's scheduler for this client: made when the device is told, closed first when it leaves. */
    private ContextScheduler scheduler;
    private boolean attached;

    /**
     * @param channel       the client's channel: its allocator and event loop, and where the server's own DMA
     *                      requests are written
     * @param watchers      how the connection watches eventfds (doorbells, INTx resample) on its loop
     * @param clientFdLimit the most fds the client may make the server hold (mapping fds, interrupt eventfds)
     */
    public Connection(DeviceRuntime runtime, ServerOptions options, Channel channel, EventFdWatchers watchers,
                      int clientFdLimit) {
        this.runtime = runtime;
        this.options = options;
        this.channel = channel;
        this.watchers = watchers;
        this.warnings = runtime.warnings().connection();
        FdBudget fdBudget = new FdBudget(clientFdLimit);
        this.interruptEvents = new InterruptEvents(runtime, warnings, watchers, channel);
        this.irqs = new IrqTable(runtime.description(), interruptEvents, fdBudget, runtime.irqGuard());
        interruptEvents.reportsFor(irqs);
        this.configInterrupts = new ConfigInterrupts(runtime.config(), irqs);
        this.dmaTable = new DmaTable(new DmaListener(runtime), options.limits().maxDmaMappings(), fdBudget);
        this.dmaRequests = new ServerDmaRequests(channel, runtime.log(), runtime.name(),
                options.maxDataTransferSize());
        this.dmaSpace = new ServerDmaSpace(dmaTable, dmaRequests, DirtyLog.NONE, options.dmaSegments());
        this.migration = new ConnectionMigration(runtime, irqs, configInterrupts, channel.alloc());
        this.resets = new DeviceResets(runtime, irqs, configInterrupts, migration, warnings);
        this.regions = new RegionRouter(runtime, irqs, resets, options.maxDataTransferSize());
    }

    // ------------------------------------------------------------------------------------------- the parts

    DeviceRuntime runtime() {
        return runtime;
    }

    ServerOptions options() {
        return options;
    }

    Logger log() {
        return runtime.log();
    }

    String name() {
        return runtime.name();
    }

    RateLimitedLog.Connection warnings() {
        return warnings;
    }

    ByteBufAllocator alloc() {
        return channel.alloc();
    }

    IrqTable irqs() {
        return irqs;
    }

    DmaTable dmaTable() {
        return dmaTable;
    }

    ServerDmaSpace dmaSpace() {
        return dmaSpace;
    }

    ServerDmaRequests dmaRequests() {
        return dmaRequests;
    }

    RegionRouter regions() {
        return regions;
    }

    ConnectionMigration migration() {
        return migration;
    }

    DeviceResets resets() {
        return resets;
    }

    /** The doorbells; null before negotiation. */
    IoEventFds ioEventFds() {
        return ioEventFds;
    }

    /** The client's {@code max_data_xfer_size}: the most one MIG_DATA_READ/WRITE carries. */
    int clientMaxTransferSize() {
        return dmaRequests.clientMaxTransferSize();
    }

    // ------------------------------------------------------------------------------------------- lifecycle

    /**
     * The client negotiated: its doorbells are created and watched, the interrupt table follows configuration space
     * from now on, the server may send it DMA requests (on {@code twin}, the server end of a twin socket the
     * connection owns from here on, or on the main socket when it is null), and the device is told
     * {@code attached()}.
     *
     * @throws ErrnoException the doorbell eventfds could not be created (nothing is attached then)
     */
    void attach(VfioUserCapabilities client, Channel twin) throws ErrnoException {
        ioEventFds = new IoEventFds(runtime.description().ioEventFds(), runtime.device(), watchers);
        attached = true;
        configInterrupts.install();
        dmaRequests.open(client, twin);
    }

    /** Tells the device a client is attached (after the VERSION reply went out). */
    void announce() {
        try {
            scheduler = new ContextScheduler(channel.eventLoop(), runtime.log(), runtime.name());
            runtime.device().attached(new ConnectionContext(runtime, dmaSpace, irqs, scheduler));
        } catch (RuntimeException e) {
            warnings.warn("{}: attached() failed", runtime.name(), e);
        }
    }

    /**
     * The client left (on the event loop). The device's scheduler tasks are cancelled, waiting DMA requests fail,
     * the doorbells and the resample watch close, the configuration-space listener goes. A client that had
     * negotiated leaves a device to quiesce and reset ({@link DeviceResets#afterClientLeft}); one that had not only
     * its fds. Completes when the device is ready for the next client; never fails.
     */
    public CompletableFuture<Void> detach() {
        if (scheduler != null) {
            // First: no task of the device's may start while it is quiesced and its client's state goes.
            scheduler.close();
        }
        dmaRequests.close();
        if (ioEventFds != null) {
            ioEventFds.close();
        }
        interruptEvents.stopResample();
        if (!attached) {
            irqs.clear();
            dmaTable.clear();
            return CompletableFuture.completedFuture(null);
        }
        attached = false;
        configInterrupts.remove();
        return resets.afterClientLeft(() -> {
            dmaTable.clear();
            irqs.clear();
        });
    }

    /** DEVICE_RESET on a quiesced device (see {@link DeviceResets#reset}). */
    CompletableFuture<Void> reset(ResetReason reason) {
        return resets.reset(reason);
    }

    /**
     * Fires the REQ interrupt if the client registered an eventfd for it, the protocol's way to ask a client to let
     * go of the device (callable from any thread: the interrupt table locks); returns whether it did.
     */
    public boolean requestRelease() {
        if (!irqs.isEnabled(IrqType.REQ, 0)) {
            return false;
        }
        irqs.triggerRequest();
        runtime.stats().interrupt();
        return true;
    }
}
