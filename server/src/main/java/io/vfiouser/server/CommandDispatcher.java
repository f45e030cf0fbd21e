package io.vfiouser.server;

import io.netty.buffer.ByteBuf;
import io.vfiouser.codec.VfioUserCommand;
import io.vfiouser.codec.VfioUserHeader;
import io.vfiouser.codec.VfioUserMessage;
import io.vfiouser.codec.VfioUserProtocolException;
import io.vfiouser.codec.message.DeviceFeature;
import io.vfiouser.codec.message.DeviceInfo;
import io.vfiouser.codec.message.DmaMapRequest;
import io.vfiouser.codec.message.DmaUnmapReply;
import io.vfiouser.codec.message.DmaUnmapRequest;
import io.vfiouser.codec.message.IoFdEntry;
import io.vfiouser.codec.message.IrqInfo;
import io.vfiouser.codec.message.RegionAccess;
import io.vfiouser.codec.message.RegionCapability;
import io.vfiouser.codec.message.RegionInfo;
import io.vfiouser.codec.message.RegionInfoRequest;
import io.vfiouser.codec.message.RegionIoFds;
import io.vfiouser.codec.message.RegionIoFdsRequest;
import io.vfiouser.codec.message.RegionWriteMulti;
import io.vfiouser.codec.message.RegionWriteMultiReply;
import io.vfiouser.codec.message.SetIrqs;
import io.vfiouser.codec.message.SparseMmapCapability;
import io.vfiouser.codec.message.WriteMultiEntry;
import io.vfiouser.device.IoEventFd;
import io.vfiouser.device.MmapArea;
import io.vfiouser.device.Region;
import io.vfiouser.device.ResetReason;
import io.vfiouser.transport.FdSet;
import io.vfiouser.transport.linux.Errno;
import io.vfiouser.transport.linux.ErrnoException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;

/**
 * One method per client command, each returning the future of its reply. The session calls them one at a time,
 * in arrival order, on the connection's event loop; failures are thrown (or fail the future) as exceptions that
 * {@link Errors} maps to an errno. Layouts and errno rules: digest section 3 and 6.3.
 */
final class CommandDispatcher {
    /** DEVICE_GET_INFO: every PCI device reports nine region indexes and five interrupt indexes. */
    static final int NUM_REGIONS = Region.COUNT;
    static final int NUM_IRQS = 5;

    private final VfioUserSession session;
    private final DeviceRuntime runtime;

    CommandDispatcher(VfioUserSession session) {
        this.session = session;
        this.runtime = session.runtime();
    }

    CompletableFuture<VfioUserMessage> dispatch(VfioUserMessage m) {
        VfioUserCommand command = m.command();
        if (command == null) {
            throw new VfioUserProtocolException(Errno.EINVAL, "unknown command " + m.header().command());
        }
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
            case MIG_DATA_READ, MIG_DATA_WRITE ->
                    throw new VfioUserProtocolException(Errno.EINVAL, "the device does not support migration");
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

    private CompletableFuture<VfioUserMessage> dmaMap(VfioUserMessage m) {
        DmaMapRequest request = m.payload(DmaMapRequest.class);
        FdSet fds = m.fds();
        if (fds.size() > 1) {
            throw invalid("DMA_MAP with " + fds.size() + " fds");
        }
        if (request.argsz() < DmaMapRequest.SIZE) {
            throw invalid("DMA_MAP argsz " + request.argsz());
        }
        VfioUserHeader header = m.header();
        return quiesce().thenCompose(ok -> {
            int fd = fds.isEmpty() ? -1 : fds.take(0);
            return session.dmaTable().map(request.address(), request.size(), request.offset(), request.flags(), fd);
        }).thenApply(ok -> VfioUserMessage.reply(header, null));
    }

    private CompletableFuture<VfioUserMessage> dmaUnmap(VfioUserMessage m) {
        DmaUnmapRequest request = m.payload(DmaUnmapRequest.class);
        if (request.argsz() < DmaUnmapRequest.SIZE || request.argsz() > (1 << 20)) {
            throw invalid("DMA_UNMAP argsz " + request.argsz());
        }
        VfioUserHeader header = m.header();
        return quiesce()
                .thenCompose(ok -> session.dmaTable().unmap(request.address(), request.size(), request.flags()))
                .thenApply(ok -> VfioUserMessage.reply(header, DmaUnmapReply.echo(request)));
    }

    private CompletableFuture<Void> quiesce() {
        return runtime.device().quiesce();
    }

    // ------------------------------------------------------------------------------------------- info

    private VfioUserMessage deviceInfo(VfioUserMessage m) {
        DeviceInfo request = m.payload(DeviceInfo.class);
        if (request.argsz() < DeviceInfo.SIZE) {
            throw invalid("DEVICE_GET_INFO argsz " + request.argsz());
        }
        int flags = DeviceInfo.FLAG_PCI | (runtime.description().resetSupported() ? DeviceInfo.FLAG_RESET : 0);
        return VfioUserMessage.reply(m.header(), DeviceInfo.reply(flags, NUM_REGIONS, NUM_IRQS));
    }

    /**
     * The region's size and flags, with a sparse-mmap capability and the region's memfd when it has mmappable
     * areas and the client's argsz leaves room for the capability (else the client learns the full argsz and
     * asks again, as QEMU does).
     */
    private VfioUserMessage regionInfo(VfioUserMessage m) {
        RegionInfoRequest request = m.payload(RegionInfoRequest.class);
        if (request.argsz() < RegionInfo.FIXED_SIZE) {
            throw invalid("DEVICE_GET_REGION_INFO argsz " + request.argsz());
        }
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
        flags |= RegionInfo.FLAG_MMAP;
        List<SparseMmapCapability.Area> areas = new ArrayList<>();
        for (MmapArea a : region.mmapAreas()) {
            areas.add(new SparseMmapCapability.Area(a.offset(), a.size()));
        }
        List<RegionCapability> caps = List.of(new SparseMmapCapability(areas));
        int full = RegionInfo.sizeWith(caps);
        if (Integer.toUnsignedLong(request.argsz()) < full) {
            return VfioUserMessage.reply(m.header(), new RegionInfo(full, flags, index, region.size(), 0, List.of()));
        }
        int fd;
        try {
            fd = runtime.memory(index).orElseThrow().dupFd();
        } catch (ErrnoException e) {
            throw new VfioUserProtocolException(e.errno(), e.getMessage());
        }
        RegionInfo info = new RegionInfo(full, flags | RegionInfo.FLAG_CAPS, index, region.size(), 0, caps);
        return VfioUserMessage.reply(m.header(), info, FdSet.of(fd));
    }

    private VfioUserMessage regionIoFds(VfioUserMessage m) {
        RegionIoFdsRequest request = m.payload(RegionIoFdsRequest.class);
        if (request.flags() != 0 || request.count() != 0) {
            throw invalid("DEVICE_GET_REGION_IO_FDS flags and count must be 0");
        }
        if (request.argsz() < RegionIoFds.FIXED_SIZE || request.argsz() > (1 << 20)) {
            throw invalid("DEVICE_GET_REGION_IO_FDS argsz " + request.argsz());
        }
        int index = request.index();
        if (index < 0 || index >= NUM_REGIONS || session.regions().size(index) == 0) {
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
        if (Integer.toUnsignedLong(request.argsz()) < full.argsz()) {
            return VfioUserMessage.reply(m.header(),
                    new RegionIoFds(full.argsz(), 0, index, full.count(), List.of()));
        }
        return VfioUserMessage.reply(m.header(), full, session.ioEventFds().duplicates(doorbells));
    }

    private VfioUserMessage irqInfo(VfioUserMessage m) {
        IrqInfo request = m.payload(IrqInfo.class);
        if (request.argsz() < IrqInfo.SIZE) {
            throw invalid("DEVICE_GET_IRQ_INFO argsz " + request.argsz());
        }
        return VfioUserMessage.reply(m.header(), session.irqs().irqInfo(request.index()));
    }

    private VfioUserMessage setIrqs(VfioUserMessage m) {
        session.irqs().setIrqs(m.payload(SetIrqs.class), m.fds());
        return VfioUserMessage.reply(m.header(), null);
    }

    // ---------------------------------------------------------------------------------------- regions

    private CompletableFuture<VfioUserMessage> regionRead(VfioUserMessage m) {
        RegionAccess request = m.payload(RegionAccess.class);
        int count = request.count();
        if (count < 0) {
            throw invalid("REGION_READ of " + Integer.toUnsignedString(count) + " bytes");
        }
        ByteBuf data = session.context().alloc().directBuffer(count);
        ByteBuffer dst = data.nioBuffer(0, count).order(ByteOrder.LITTLE_ENDIAN);
        CompletableFuture<Void> done;
        try {
            done = session.regions().read(request.region(), request.offset(), dst);
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
            return VfioUserMessage.reply(header, RegionAccess.withData(request.offset(), request.region(), data));
        });
    }

    private CompletableFuture<VfioUserMessage> regionWrite(VfioUserMessage m) {
        RegionAccess request = m.payload(RegionAccess.class);
        ByteBuf data = request.data();
        ByteBuffer src = data.nioBuffer(data.readerIndex(), data.readableBytes()).order(ByteOrder.LITTLE_ENDIAN);
        VfioUserHeader header = m.header();
        return session.regions().write(request.region(), request.offset(), src.asReadOnlyBuffer()
                        .order(ByteOrder.LITTLE_ENDIAN))
                .thenApply(ok -> VfioUserMessage.reply(header,
                        RegionAccess.of(request.offset(), request.region(), request.count())));
    }

    /** Posted writes batched by QEMU: applied in order, exactly like single REGION_WRITEs. */
    private CompletableFuture<VfioUserMessage> regionWriteMulti(VfioUserMessage m) {
        List<WriteMultiEntry> entries = m.payload(RegionWriteMulti.class).entries();
        VfioUserHeader header = m.header();
        CompletableFuture<Void> chain = CompletableFuture.completedFuture(null);
        for (WriteMultiEntry e : entries) {
            chain = chain.thenCompose(ok -> session.regions().write(e.region(), e.offset(), e.count(), e.data()));
        }
        return chain.thenApply(ok -> VfioUserMessage.reply(header, new RegionWriteMultiReply(entries.size())));
    }

    // ------------------------------------------------------------------------------------ reset, features

    private CompletableFuture<VfioUserMessage> deviceReset(VfioUserMessage m) {
        if (!runtime.description().resetSupported()) {
            throw invalid("the device does not support DEVICE_RESET");
        }
        VfioUserHeader header = m.header();
        return session.resetDevice(ResetReason.CLIENT_REQUEST).thenApply(ok -> VfioUserMessage.reply(header, null));
    }

    /**
     * DEVICE_FEATURE is validated (digest 3.16, 6.3); the device supports no feature yet (migration and dirty
     * logging come with their own support), so every well-formed request is refused with EINVAL, as libvfio-user
     * does for a device without migration.
     */
    private CompletableFuture<VfioUserMessage> deviceFeature(VfioUserMessage m) {
        DeviceFeature request = m.payload(DeviceFeature.class);
        int flags = request.flags();
        int ops = flags & (DeviceFeature.GET | DeviceFeature.SET | DeviceFeature.PROBE);
        if (ops == 0) {
            throw invalid("DEVICE_FEATURE without GET, SET or PROBE");
        }
        if ((flags & DeviceFeature.GET) != 0 && (flags & DeviceFeature.SET) != 0
                && (flags & DeviceFeature.PROBE) == 0) {
            throw invalid("DEVICE_FEATURE GET with SET needs PROBE");
        }
        if ((flags & ~(DeviceFeature.FEATURE_MASK | DeviceFeature.GET | DeviceFeature.SET | DeviceFeature.PROBE)) != 0) {
            throw invalid("DEVICE_FEATURE unknown flag bits");
        }
        throw invalid("feature " + (flags & DeviceFeature.FEATURE_MASK) + " is not supported by this device");
    }
}
