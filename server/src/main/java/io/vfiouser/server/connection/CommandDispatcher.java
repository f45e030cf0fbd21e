package io.vfiouser.server.connection;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.vfiouser.codec.VfioUserCommand;
import io.vfiouser.codec.VfioUserHeader;
import io.vfiouser.codec.VfioUserMessage;
import io.vfiouser.codec.VfioUserProtocolException;
import io.vfiouser.codec.payload.DeviceFeature;
import io.vfiouser.codec.payload.DeviceInfo;
import io.vfiouser.codec.payload.DmaMapRequest;
import io.vfiouser.codec.payload.DmaUnmapReply;
import io.vfiouser.codec.payload.DmaUnmapRequest;
import io.vfiouser.codec.payload.IoFdEntry;
import io.vfiouser.codec.payload.IrqInfo;
import io.vfiouser.codec.payload.MigData;
import io.vfiouser.codec.payload.MigDataRead;
import io.vfiouser.codec.payload.RegionAccess;
import io.vfiouser.codec.payload.RegionCapability;
import io.vfiouser.codec.payload.RegionInfo;
import io.vfiouser.codec.payload.RegionInfoRequest;
import io.vfiouser.codec.payload.RegionIoFds;
import io.vfiouser.codec.payload.RegionIoFdsRequest;
import io.vfiouser.codec.payload.RegionWriteMulti;
import io.vfiouser.codec.payload.RegionWriteMultiReply;
import io.vfiouser.codec.payload.SetIrqs;
import io.vfiouser.codec.payload.SparseMmapCapability;
import io.vfiouser.codec.payload.WriteMultiEntry;
import io.vfiouser.device.IoEventFd;
import io.vfiouser.device.IrqType;
import io.vfiouser.device.MmapArea;
import io.vfiouser.device.Region;
import io.vfiouser.device.ResetReason;
import io.vfiouser.server.device.DeviceRuntime;
import io.vfiouser.server.device.RegionMemory;
import io.vfiouser.server.migration.DeviceFeatures;
import io.vfiouser.transport.FdSet;
import io.vfiouser.transport.linux.Errno;
import io.vfiouser.transport.linux.ErrnoException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;

/**
 * One method per client command, each returning the future of its reply. The {@link ConnectionHandler} calls
 * {@link #dispatch} one command at a time, in arrival order, on the connection's event loop; failures are thrown (or
 * fail the future) as exceptions that {@link Errors} maps to an errno. The wire shape (argsz, sizes, flags) was
 * checked by the payload decoders; the command's {@link CommandRules rule} is applied here, once; the rest is the
 * connection's parts. Layouts and errno rules: digest sections 3 and 6.3.
 */
final class CommandDispatcher {
    /** DEVICE_GET_INFO: every PCI device reports nine region indexes and five interrupt indexes. */
    static final int NUM_REGIONS = Region.COUNT;

    private final Connection connection;
    private final DeviceRuntime runtime;
    private final DeviceFeatures features;

    CommandDispatcher(Connection connection) {
        this.connection = connection;
        this.runtime = connection.runtime();
        ConnectionMigration migration = connection.migration();
        this.features = new DeviceFeatures(migration.supported() ? migration : null, connection.dmaTable(),
                connection.options().maxDataTransferSize());
    }

    /**
     * Applies the command's {@link CommandRules rule} (refused in this migration state, or quiesce first), then
     * runs it.
     */
    CompletableFuture<VfioUserMessage> dispatch(VfioUserMessage m) {
        VfioUserCommand command = m.command();
        if (command == null) {
            throw new VfioUserProtocolException(Errno.EINVAL, "unknown command " + m.header().command());
        }
        CommandRules.Rule rule = CommandRules.check(command, connection.migration().state());
        if (command == VfioUserCommand.DEVICE_RESET && !runtime.description().resetSupported()) {
            // Refused before its quiesce, like any refused command: a device without reset is not paused for one.
            throw invalid("the device does not support DEVICE_RESET");
        }
        if (rule.needsQuiesce()) {
            return quiesce().thenCompose(ok -> run(command, m));
        }
        return run(command, m);
    }

    private CompletableFuture<VfioUserMessage> run(VfioUserCommand command, VfioUserMessage m) {
        return switch (command) {
            case VERSION -> throw new VfioUserProtocolException(Errno.EINVAL, "VERSION after negotiation");
            case DMA_MAP -> dmaMap(m);
            case DMA_UNMAP -> dmaUnmap(m);
            case DEVICE_GET_INFO -> done(deviceInfo(m));
            case DEVICE_GET_REGION_INFO -> done(regionInfo(m));
            case DEVICE_GET_REGION_IO_FDS -> done(regionIoFds(m));
            case DEVICE_GET_IRQ_INFO -> done(irqInfo(m));
            case DEVICE_SET_IRQS -> done(setIrqs(m));
            case REGION_READ -> regionRead(m);
            case REGION_WRITE -> regionWrite(m);
            case DEVICE_RESET -> deviceReset(m);
            case REGION_WRITE_MULTI -> regionWriteMulti(m);
            case DEVICE_FEATURE -> deviceFeature(m);
            case MIG_DATA_READ -> migDataRead(m);
            case MIG_DATA_WRITE -> migDataWrite(m);
            case DMA_READ, DMA_WRITE ->
                    throw new VfioUserProtocolException(Errno.EINVAL, command + " is sent by servers only");
        };
    }

    private static CompletableFuture<VfioUserMessage> done(VfioUserMessage reply) {
        return CompletableFuture.completedFuture(reply);
    }

    private static VfioUserProtocolException invalid(String message) {
        return new VfioUserProtocolException(Errno.EINVAL, message);
    }

    // ------------------------------------------------------------------------------------------------ DMA

    /** Runs quiesced ({@link CommandRules}). */
    private CompletableFuture<VfioUserMessage> dmaMap(VfioUserMessage m) {
        DmaMapRequest request = m.payload(DmaMapRequest.class);
        FdSet fds = m.fds();
        if (fds.size() > 1) {
            throw invalid("DMA_MAP with " + fds.size() + " fds");
        }
        VfioUserHeader header = m.header();
        int fd = fds.isEmpty() ? -1 : fds.take(0);
        return connection.dmaTable().map(request.address(), request.size(), request.offset(), request.flags(), fd)
                .thenApply(ok -> VfioUserMessage.reply(header, null));
    }

    /** Runs quiesced ({@link CommandRules}). */
    private CompletableFuture<VfioUserMessage> dmaUnmap(VfioUserMessage m) {
        DmaUnmapRequest request = m.payload(DmaUnmapRequest.class);
        VfioUserHeader header = m.header();
        if (request.hasDirtyBitmap()) {
            return connection.dmaTable().unmapWithDirtyBitmap(request.address(), request.size(), request.flags(),
                            request.bitmapPageSize(), request.bitmapSize())
                    .thenApply(words -> VfioUserMessage.reply(header,
                            DmaUnmapReply.withBitmap(request, bitmap(words))));
        }
        return connection.dmaTable().unmap(request.address(), request.size(), request.flags())
                .thenApply(ok -> VfioUserMessage.reply(header, DmaUnmapReply.echo(request)));
    }

    private CompletableFuture<Void> quiesce() {
        return runtime.device().quiesce();
    }

    // ------------------------------------------------------------------------------------------- info

    private VfioUserMessage deviceInfo(VfioUserMessage m) {
        DeviceInfo request = m.payload(DeviceInfo.class);
        int flags = DeviceInfo.FLAG_PCI | (runtime.description().resetSupported() ? DeviceInfo.FLAG_RESET : 0);
        return VfioUserMessage.reply(m.header(), DeviceInfo.reply(flags, NUM_REGIONS, IrqType.COUNT));
    }

    /**
     * The region's size and flags, with a sparse-mmap capability and the region's memfd when it has mmappable
     * areas and the client's argsz leaves room for the capability (else the client learns the full argsz and
     * asks again, as QEMU does).
     */
    private VfioUserMessage regionInfo(VfioUserMessage m) {
        RegionInfoRequest request = m.payload(RegionInfoRequest.class);
        int index = request.index();
        if (index < 0 || index >= NUM_REGIONS) {
            throw invalid("no region " + Integer.toUnsignedString(index));
        }
        if (index == Region.CONFIG) {
            RegionInfo info = new RegionInfo(RegionInfo.FIXED_SIZE, RegionInfo.FLAG_READ | RegionInfo.FLAG_WRITE,
                    index, runtime.config().size(), 0, List.of());
            return VfioUserMessage.reply(m.header(), info);
        }
        Region region = runtime.description().region(index).orElse(null);
        if (region == null) {
            return VfioUserMessage.reply(m.header(), new RegionInfo(RegionInfo.FIXED_SIZE, 0, index, 0, 0, List.of()));
        }
        int flags = (region.readable() ? RegionInfo.FLAG_READ : 0) | (region.writable() ? RegionInfo.FLAG_WRITE : 0);
        if (!region.mappable()) {
            return VfioUserMessage.reply(m.header(),
                    new RegionInfo(RegionInfo.FIXED_SIZE, flags, index, region.size(), 0, List.of()));
        }
        // One fd per reply, every area in it at offset + area offset: QEMU refuses a reply with more than one fd,
        // SPDK maps area i with the reply's i-th fd, so both accept a region with one area (docs/device-authoring.md).
        flags |= RegionInfo.FLAG_MMAP;
        RegionMemory memory = runtime.memory(index).orElseThrow();
        List<SparseMmapCapability.Area> areas = new ArrayList<>();
        for (MmapArea a : region.mmapAreas()) {
            areas.add(new SparseMmapCapability.Area(a.offset(), a.size()));
        }
        List<RegionCapability> caps = List.of(new SparseMmapCapability(areas));
        int full = RegionInfo.sizeWith(caps);
        if (request.argsz() < full) {
            return VfioUserMessage.reply(m.header(),
                    new RegionInfo(full, flags, index, region.size(), memory.fileOffset(), List.of()));
        }
        int fd;
        try {
            fd = memory.dupFd();
        } catch (ErrnoException e) {
            throw new VfioUserProtocolException(e.errno(), e.getMessage());
        }
        RegionInfo info = new RegionInfo(full, flags | RegionInfo.FLAG_CAPS, index, region.size(),
                memory.fileOffset(), caps);
        return VfioUserMessage.reply(m.header(), info, FdSet.of(fd));
    }

    private VfioUserMessage regionIoFds(VfioUserMessage m) {
        RegionIoFdsRequest request = m.payload(RegionIoFdsRequest.class);
        if (request.flags() != 0 || request.count() != 0) {
            throw invalid("DEVICE_GET_REGION_IO_FDS flags and count must be 0");
        }
        int index = request.index();
        if (index < 0 || index >= NUM_REGIONS || connection.regions().size(index) == 0) {
            throw invalid("DEVICE_GET_REGION_IO_FDS: no region " + Integer.toUnsignedString(index));
        }
        List<IoEventFd> doorbells = runtime.description().ioEventFds().stream()
                .filter(e -> e.region() == index).toList();
        List<IoFdEntry> entries = new ArrayList<>();
        for (int i = 0; i < doorbells.size(); i++) {
            IoEventFd e = doorbells.get(i);
            int flags = e.datamatch().isPresent() ? IoFdEntry.FLAG_DATAMATCH : 0;
            entries.add(new IoFdEntry(e.offset(), e.size(), i, IoFdEntry.TYPE_IOEVENTFD, flags,
                    e.datamatch().orElse(0)));
        }
        RegionIoFds full = RegionIoFds.of(index, entries);
        if (entries.isEmpty()) {
            return VfioUserMessage.reply(m.header(), full);
        }
        if (request.argsz() < full.argsz()) {
            return VfioUserMessage.reply(m.header(),
                    new RegionIoFds(full.argsz(), 0, index, full.count(), List.of()));
        }
        return VfioUserMessage.reply(m.header(), full, connection.ioEventFds().duplicates(doorbells));
    }

    private VfioUserMessage irqInfo(VfioUserMessage m) {
        IrqInfo request = m.payload(IrqInfo.class);
        return VfioUserMessage.reply(m.header(), connection.irqs().irqInfo(request.index()));
    }

    private VfioUserMessage setIrqs(VfioUserMessage m) {
        connection.irqs().setIrqs(m.payload(SetIrqs.class), m.fds());
        return VfioUserMessage.reply(m.header(), null);
    }

    // ---------------------------------------------------------------------------------------- regions

    private CompletableFuture<VfioUserMessage> regionRead(VfioUserMessage m) {
        RegionAccess request = m.payload(RegionAccess.class);
        int count = request.count();
        if (count < 0 || count > connection.options().maxDataTransferSize()) {
            // Checked before the reply buffer is allocated: a client must not make the server allocate 2 GiB.
            throw invalid("REGION_READ of " + Integer.toUnsignedString(count) + " bytes exceeds "
                    + connection.options().maxDataTransferSize());
        }
        ByteBuf data = connection.alloc().directBuffer(count);
        ByteBuffer dst = data.nioBuffer(0, count).order(ByteOrder.LITTLE_ENDIAN);
        CompletableFuture<Void> done;
        try {
            done = connection.regions().read(request.region(), request.offset(), dst);
            if (done == null) {
                throw new NullPointerException("the device returned no future");
            }
        } catch (RuntimeException e) {
            data.release();
            throw e;
        }
        VfioUserHeader header = m.header();
        return done.handle((ok, err) -> {
            if (err != null) {
                data.release();
                throw new java.util.concurrent.CompletionException(err);
            }
            data.writerIndex(count);
            return VfioUserMessage.reply(header,
                    RegionAccess.inRegion(request.region()).atOffset(request.offset()).data(data));
        });
    }

    private CompletableFuture<VfioUserMessage> regionWrite(VfioUserMessage m) {
        RegionAccess request = m.payload(RegionAccess.class);
        ByteBuf data = request.data();
        ByteBuffer src = data.nioBuffer(data.readerIndex(), data.readableBytes()).order(ByteOrder.LITTLE_ENDIAN);
        VfioUserHeader header = m.header();
        return connection.regions().write(request.region(), request.offset(), src.asReadOnlyBuffer()
                        .order(ByteOrder.LITTLE_ENDIAN))
                .thenApply(ok -> VfioUserMessage.reply(header,
                        RegionAccess.inRegion(request.region()).atOffset(request.offset()).count(request.count())));
    }

    /** Posted writes batched by QEMU: applied in order, exactly like single REGION_WRITEs. */
    private CompletableFuture<VfioUserMessage> regionWriteMulti(VfioUserMessage m) {
        List<WriteMultiEntry> entries = m.payload(RegionWriteMulti.class).entries();
        VfioUserHeader header = m.header();
        CompletableFuture<Void> chain = CompletableFuture.completedFuture(null);
        for (WriteMultiEntry e : entries) {
            chain = chain.thenCompose(ok -> connection.regions().write(e.region(), e.offset(), e.count(), e.data()));
        }
        return chain.thenApply(ok -> VfioUserMessage.reply(header, new RegionWriteMultiReply(entries.size())));
    }

    // ------------------------------------------------------------------------------------ reset, features

    /** Runs quiesced ({@link CommandRules}); a device without reset support was refused in {@link #dispatch}. */
    private CompletableFuture<VfioUserMessage> deviceReset(VfioUserMessage m) {
        VfioUserHeader header = m.header();
        return connection.reset(ResetReason.CLIENT_REQUEST).thenApply(ok -> VfioUserMessage.reply(header, null));
    }

    /** DEVICE_FEATURE (digest 3.16): the migration package's {@link DeviceFeatures}. */
    private CompletableFuture<VfioUserMessage> deviceFeature(VfioUserMessage m) {
        VfioUserHeader header = m.header();
        return features.handle(m.payload(DeviceFeature.class)).thenApply(p -> VfioUserMessage.reply(header, p));
    }

    // --------------------------------------------------------------------------------------- migration data

    /** MIG_DATA_READ (digest 3.17): up to {@code size} bytes of the device's state; fewer mean "no more now". */
    private CompletableFuture<VfioUserMessage> migDataRead(VfioUserMessage m) {
        MigDataRead request = m.payload(MigDataRead.class);
        long size = Integer.toUnsignedLong(request.size());
        if (size > connection.clientMaxTransferSize()) {
            throw invalid("MIG_DATA_READ of " + size + " bytes, above the client's max_data_xfer_size "
                    + connection.clientMaxTransferSize());
        }
        VfioUserHeader header = m.header();
        return connection.migration().read((int) size)
                .thenApply(data -> VfioUserMessage.reply(header, MigData.of(data)));
    }

    /** MIG_DATA_WRITE (digest 3.18): the next bytes of a saved state, consumed whole. */
    private CompletableFuture<VfioUserMessage> migDataWrite(VfioUserMessage m) {
        MigData request = m.payload(MigData.class);
        long size = Integer.toUnsignedLong(request.size());
        if (size > connection.clientMaxTransferSize()) {
            throw invalid("MIG_DATA_WRITE of " + size + " bytes, above the client's max_data_xfer_size "
                    + connection.clientMaxTransferSize());
        }
        ByteBuf data = request.data();
        ByteBuffer bytes = data.nioBuffer(data.readerIndex(), (int) size);
        VfioUserHeader header = m.header();
        return connection.migration().write(bytes).thenApply(ok -> VfioUserMessage.reply(header, null));
    }

    private static ByteBuf bitmap(long[] words) {
        ByteBuf out = Unpooled.buffer(words.length * 8);
        for (long w : words) {
            out.writeLongLE(w);
        }
        return out;
    }
}
