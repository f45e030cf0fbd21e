package io.vfiouser.examples.nvme;

import io.vfiouser.device.DeviceContext;
import io.vfiouser.device.DeviceDescription;
import io.vfiouser.device.DmaRange;
import io.vfiouser.device.IrqType;
import io.vfiouser.device.MigrationState;
import io.vfiouser.device.MigrationSupport;
import io.vfiouser.device.MmapArea;
import io.vfiouser.device.Region;
import io.vfiouser.device.ResetReason;
import io.vfiouser.device.VfioUserDevice;
import io.vfiouser.device.VfioUserMigration;
import io.vfiouser.device.pci.MsixCapability;
import io.vfiouser.device.pci.PciExpressCapability;
import io.vfiouser.device.pci.PciIdentity;
import io.vfiouser.device.pci.PowerManagementCapability;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.HexFormat;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

/**
 * An NVMe controller (NVMe 1.4 base specification) with one namespace backed by a file.
 *
 * <h2>Resources</h2>
 * PCI id 4a56:0002, class 010802 (NVM Express I/O controller), PCI Express endpoint with FLR, power management,
 * MSI-X with {@value #MSIX_VECTORS} vectors (one per completion queue: the admin queue and up to
 * {@value #MAX_IO_QUEUES} I/O queues), INTx when MSI-X is off.
 * <ul>
 * <li>BAR0 (64-bit, 8 KiB): the controller registers (CAP, VS, INTMS, INTMC, CC, CSTS, AQA, ASQ, ACQ) and from
 * 0x1000 the doorbells, 4 bytes apart, written with REGION_WRITE (posted writes welcome). With
 * {@link DoorbellMode#SHADOW} the controller also offers Doorbell Buffer Config, and a host that uses it rings
 * these only when the controller asks for it. With {@link DoorbellMode#MMAP} BAR0 is hybrid: the doorbell page
 * (0x1000, 4 KiB, the end of BAR0, so nothing device-served lies above it, as SPDK's client requires) is an
 * mmappable area the client writes straight into, watched by the controller ({@link MmapDoorbells}); the registers
 * below stay device-served.</li>
 * <li>BAR4 (4 KiB): MSI-X table at 0 and PBA at 2048, emulated by the framework.</li>
 * </ul>
 *
 * <h2>Behaviour</h2>
 * The controller itself ({@link NvmeController}) runs on its own thread: register and doorbell accesses are
 * handed to it in arrival order, so the server's event loop never waits for guest memory or the disk; register
 * reads complete once the controller has seen everything before them. Namespace 1 has 512-byte blocks; small
 * reads and writes go to the backing file right on the controller thread (a page-cache hit costs less than a
 * hand-off to another thread), larger ones and flushes asynchronously, so several queues are served at once.
 * A device reset (DEVICE_RESET, FLR, or the client going away) is a controller reset that also clears CC and the
 * admin queue registers. Closing the device flushes and closes the backing file.
 *
 * <h2>Migration</h2>
 * The controller migrates (STOP_COPY; the namespace file is shared storage that source and destination both
 * open). Stopping quiesces it: commands in flight finish (their writes reach the file) and their completions
 * wait; then the controller stays paused, region accesses notwithstanding, until it runs again. Its state
 * ({@link ControllerSnapshot}: registers, queues, waiting completions, parked event requests) goes to the
 * destination, which posts the waiting completions and fetches what the host submitted since, once it runs.
 */
public final class NvmeDevice implements VfioUserDevice, VfioUserMigration, AutoCloseable {
    private static final Logger LOG = LogManager.getLogger(NvmeDevice.class);

    public static final int VENDOR_ID = 0x4a56;
    public static final int DEVICE_ID = 0x0002;
    /** Mass storage, non-volatile memory, NVM Express I/O controller. */
    public static final int CLASS_CODE = 0x010802;
    public static final int MAX_IO_QUEUES = 16;
    public static final int MSIX_VECTORS = MAX_IO_QUEUES + 1;
    public static final int REGISTER_BAR = 0;
    public static final int REGISTER_BAR_SIZE = 0x2000;
    /** The doorbell page's area of BAR0 in {@link DoorbellMode#MMAP}: its only area, index 0. */
    public static final int DOORBELL_AREA = 0;
    public static final int MSIX_BAR = 4;
    public static final int MSIX_BAR_SIZE = 4096;
    public static final int MSIX_TABLE_OFFSET = 0;
    public static final int MSIX_PBA_OFFSET = 2048;
    /** MDTS: the largest transfer is 4 KiB &lt;&lt; 10 = 4 MiB. */
    public static final int MAX_TRANSFER_SHIFT = 10;
    static final int AER_LIMIT = 4;
    static final int ABORT_LIMIT = 4;
    static final int ERROR_LOG_ENTRIES = 16;
    static final String FIRMWARE = "0.1";

    private final String name;
    private final DoorbellMode doorbells;
    private final NamespaceFile namespace;
    private final ExecutorService executor;
    private final NvmeController controller;

    /** A controller named {@code name} over {@code options.backing()} (opened, and created when missing, now). */
    public NvmeDevice(String name, NvmeOptions options) throws IOException {
        this.name = name;
        this.doorbells = options.doorbells();
        this.executor = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "nvme-" + name);
            t.setDaemon(true);
            return t;
        });
        try {
            this.namespace = NamespaceFile.open(options.backing(), options.size(), "nvme-" + name);
        } catch (IOException | RuntimeException e) {
            executor.shutdownNow();
            throw e;
        }
        String serial = serialOf(options.backing().toAbsolutePath().toString());
        this.controller = new NvmeController(executor, namespace, serial, MAX_IO_QUEUES, MSIX_VECTORS,
                options.doorbells());
        if (doorbells == DoorbellMode.MMAP) {
            controller.mmap = new MmapDoorbells("nvme-" + name, executor, 2 * (MAX_IO_QUEUES + 1),
                    controller::takeMmapDoorbells);
        }
        LOG.info("{}: namespace 1 on {} ({} blocks of {} bytes), doorbells={}", name, options.backing(),
                namespace.blocks(), NamespaceFile.BLOCK_SIZE, options.doorbells().optionName());
    }

    /**
     * The description of an NVMe controller named {@code name} whose doorbells are registers ({@link
     * DoorbellMode#WRITE}, {@link DoorbellMode#SHADOW}).
     */
    public static DeviceDescription description(String name) {
        return description(name, DoorbellMode.WRITE);
    }

    /** This controller's description: {@link #description(String, DoorbellMode)} with its name and mode. */
    public DeviceDescription description() {
        return description(name, doorbells);
    }

    /**
     * The description of an NVMe controller named {@code name} with doorbell mode {@code doorbells}: in {@link
     * DoorbellMode#MMAP} BAR0's doorbell page is an mmappable area of a hybrid BAR0 (the controller must be
     * built in that mode too: it watches the page).
     */
    public static DeviceDescription description(String name, DoorbellMode doorbells) {
        Region.Builder bar0 = Region.bar(REGISTER_BAR, REGISTER_BAR_SIZE).bits64();
        if (doorbells == DoorbellMode.MMAP) {
            bar0.hybrid(new MmapArea(Registers.DOORBELLS, REGISTER_BAR_SIZE - Registers.DOORBELLS));
        }
        return DeviceDescription.builder(name, new PciIdentity(VENDOR_ID, DEVICE_ID, VENDOR_ID, DEVICE_ID,
                        CLASS_CODE, 0))
                .region(bar0.build())
                .region(Region.bar(MSIX_BAR, MSIX_BAR_SIZE).build())
                .capability(PowerManagementCapability.DEFAULT)
                .capability(new MsixCapability(MSIX_VECTORS, MSIX_BAR, MSIX_TABLE_OFFSET, MSIX_BAR, MSIX_PBA_OFFSET))
                .capability(PciExpressCapability.ENDPOINT)
                .intx()
                .migration(MigrationSupport.STOP_COPY_ONLY)
                .build();
    }

    /** A stable serial number for a backing file: the same file gives the same identity across runs. */
    private static String serialOf(String path) {
        byte[] hash;
        try {
            hash = java.security.MessageDigest.getInstance("SHA-256").digest(path.getBytes());
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
        return "VFU" + HexFormat.of().formatHex(hash, 0, 8).toUpperCase(java.util.Locale.ROOT);
    }

    /** The namespace size in bytes. */
    public long namespaceSize() {
        return namespace.size();
    }

    // ------------------------------------------------------------------------------------ region accesses

    @Override
    public CompletableFuture<Void> regionRead(int region, long offset, ByteBuffer dst) {
        if (region != REGISTER_BAR) {
            while (dst.hasRemaining()) {
                dst.put((byte) 0);
            }
            return DONE;
        }
        byte[] out = new byte[dst.remaining()];
        return run(() -> {
            if (offset < Registers.DOORBELLS) {
                controller.readRegisters(offset, out);
            }
            dst.put(out);
        });
    }

    @Override
    public CompletableFuture<Void> regionWrite(int region, long offset, ByteBuffer src) {
        byte[] bytes = new byte[src.remaining()];
        src.get(bytes);
        if (region != REGISTER_BAR) {
            return DONE;
        }
        if (offset >= Registers.DOORBELLS) {
            // A doorbell is posted: nothing that follows needs to wait for the controller to act on it, so it goes
            // to the controller thread as a bare task, without the futures of the other callbacks.
            post(() -> {
                controller.resume();
                controller.writeRegisters(offset, bytes);
            });
            return DONE;
        }
        return run(() -> controller.writeRegisters(offset, bytes));
    }

    // ---------------------------------------------------------------------------------------- life cycle

    @Override
    public void attached(DeviceContext context) {
        run(() -> controller.attach(context));
    }

    @Override
    public void detached() {
        run(controller::detach);
    }

    @Override
    public CompletableFuture<Void> quiesce() {
        return call(false, controller::quiesce);
    }

    /** A controller reset that also clears CC and the admin queue registers; the controller resumes afterwards. */
    @Override
    public CompletableFuture<Void> reset(ResetReason reason) {
        LOG.debug("{}: reset ({})", name, reason);
        return call(false, () -> controller.startReset(true));
    }

    @Override
    public void dmaMapped(DmaRange range) {
        run(() -> { });
    }

    @Override
    public void dmaUnmapped(DmaRange range) {
        run(() -> { });
    }

    @Override
    public void irqMaskChanged(IrqType type, int start, int count, boolean masked) {
        run(() -> { });
    }

    @Override
    public void configWritten(int offset, int length) {
        run(() -> { });
    }

    // ------------------------------------------------------------------------------------------ migration

    /** Whether the controller state went out in this saving session. */
    private volatile boolean stateSaved;

    @Override
    public CompletableFuture<Void> migrationStateChanged(MigrationState from, MigrationState to) {
        if (to == MigrationState.STOP_COPY) {
            stateSaved = false;
        }
        return call(false, () -> {
            if (to.running()) {
                controller.migrationStopped = false;
                controller.resume();
            } else if (from.running() || to == MigrationState.RESUMING) {
                // The framework quiesced the controller before STOP; RESUMING comes from STOP.
                controller.migrationStopped = true;
                controller.paused = true;
            }
            return DONE;
        });
    }

    /** The controller's state, once, in STOP_COPY. */
    @Override
    public CompletableFuture<ByteBuffer> saveState(MigrationState state) {
        if (state != MigrationState.STOP_COPY || stateSaved) {
            return NOTHING;
        }
        stateSaved = true;
        CompletableFuture<ByteBuffer> saved = new CompletableFuture<>();
        call(false, () -> {
            controller.takeMmapDoorbells(); // what the host rang before it stopped: the page does not travel
            ByteBuffer snapshot = ControllerSnapshot.save(controller);
            LOG.info("{}: controller state saved for migration ({} bytes, {} completions waiting, {} event requests"
                    + " parked)", name, snapshot.remaining(), controller.waitingCompletions(),
                    controller.parkedAers.size());
            saved.complete(snapshot);
            return DONE;
        }).whenComplete((v, e) -> {
            if (e != null) {
                saved.completeExceptionally(e);
            }
        });
        return saved;
    }

    @Override
    public CompletableFuture<Void> loadState(ByteBuffer chunk) {
        ByteBuffer copy = ByteBuffer.allocate(chunk.remaining()).put(chunk.duplicate()).flip();
        return call(false, () -> {
            ControllerSnapshot.load(controller, copy);
            controller.mmapRestored();
            return DONE;
        });
    }

    /**
     * Runs {@code action} on the controller thread after resuming from a quiesce: any callback from the framework
     * after {@link #quiesce()} means the reason for it is over.
     */
    private CompletableFuture<Void> run(Runnable action) {
        return call(true, () -> {
            action.run();
            return DONE;
        });
    }

    /** Runs {@code action} on the controller thread, in order with the other callbacks, and forgets it. */
    private void post(Runnable action) {
        try {
            executor.execute(() -> {
                try {
                    action.run();
                } catch (RuntimeException e) {
                    LOG.warn("{}: controller task failed", name, e);
                }
            });
        } catch (RejectedExecutionException e) {
            LOG.debug("{}: closed, callback ignored", name);
        }
    }

    private CompletableFuture<Void> call(boolean resume, Supplier<CompletableFuture<Void>> action) {
        CompletableFuture<Void> result = new CompletableFuture<>();
        try {
            executor.execute(() -> {
                try {
                    if (resume) {
                        controller.resume();
                    }
                    action.get().whenComplete((v, e) -> {
                        if (e != null) {
                            result.completeExceptionally(e);
                        } else {
                            result.complete(null);
                        }
                    });
                } catch (RuntimeException e) {
                    LOG.warn("{}: controller task failed", name, e);
                    result.completeExceptionally(e);
                }
            });
        } catch (RejectedExecutionException e) {
            // Closed: no controller left to act on anything (a teardown racing close() lands here).
            LOG.debug("{}: closed, callback ignored", name);
            result.complete(null);
        }
        return result;
    }

    /** Stops the controller thread and closes the backing file (flushed first). */
    @Override
    public void close() {
        if (controller.mmap != null) {
            controller.mmap.close();
        }
        executor.shutdown();
        try {
            if (!executor.awaitTermination(10, TimeUnit.SECONDS)) {
                executor.shutdownNow();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            executor.shutdownNow();
        }
        namespace.close();
    }
}
