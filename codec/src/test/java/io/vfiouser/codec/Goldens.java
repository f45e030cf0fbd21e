package io.vfiouser.codec;

import static io.vfiouser.codec.Hex.ascii;
import static io.vfiouser.codec.Hex.bytes;
import static io.vfiouser.codec.Hex.concat;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.PooledByteBufAllocator;
import io.netty.buffer.Unpooled;
import io.vfiouser.codec.payload.DeviceFeature;
import io.vfiouser.codec.payload.DeviceInfo;
import io.vfiouser.codec.payload.DmaAccess;
import io.vfiouser.codec.payload.DmaMapRequest;
import io.vfiouser.codec.payload.DmaUnmapReply;
import io.vfiouser.codec.payload.DmaUnmapRequest;
import io.vfiouser.codec.payload.IoFdEntry;
import io.vfiouser.codec.payload.IrqInfo;
import io.vfiouser.codec.payload.MigData;
import io.vfiouser.codec.payload.MigDataRead;
import io.vfiouser.codec.payload.MsixMappableCapability;
import io.vfiouser.codec.payload.RegionAccess;
import io.vfiouser.codec.payload.RegionInfo;
import io.vfiouser.codec.payload.RegionInfoRequest;
import io.vfiouser.codec.payload.RegionIoFds;
import io.vfiouser.codec.payload.RegionIoFdsRequest;
import io.vfiouser.codec.payload.RegionWriteMulti;
import io.vfiouser.codec.payload.RegionWriteMultiReply;
import io.vfiouser.codec.payload.SetIrqs;
import io.vfiouser.codec.payload.SparseMmapCapability;
import io.vfiouser.codec.payload.TypeCapability;
import io.vfiouser.codec.payload.VersionPayload;
import io.vfiouser.codec.payload.VfioUserPayload;
import io.vfiouser.codec.payload.WriteMultiEntry;
import io.vfiouser.transport.FdSet;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;
import java.util.function.Supplier;

/**
 * Golden messages: bytes written by hand from the layouts of the protocol digest (sections 1-3), each with the
 * message they stand for. Header hex reads {@code msg_id command msg_size flags error}, all little-endian.
 */
final class Goldens {
    /** QEMU's VERSION JSON (spec §2.3): 193 characters, 214 bytes as a message. */
    static final String QEMU_VERSION_JSON = "{\"capabilities\": {\"max_msg_fds\": 16, \"max_data_xfer_size\": 1048576,"
            + " \"pgsizes\": 4096, \"max_dma_maps\": 65535, \"migration\": {\"pgsize\": 4096,"
            + " \"max_bitmap_size\": 268435456}, \"write_multiple\": true}}";
    /** The reply the digest recommends for QEMU (spec §2.4). */
    static final String RECOMMENDED_REPLY_JSON = "{\"capabilities\":{\"max_msg_fds\":8,"
            + "\"max_data_xfer_size\":1048576,\"pgsizes\":4096,\"max_dma_maps\":65535}}";

    /**
     * One golden message.
     *
     * @param layouts the DMA layouts in which these bytes stand for the message
     * @param roundTrip whether encoding the message gives back exactly these bytes (false for inputs we accept
     *     but never produce, e.g. padded or short replies)
     */
    record Golden(String name, byte[] bytes, Supplier<VfioUserMessage> message, Set<DmaLayout> layouts,
            boolean roundTrip) {
        Golden in(DmaLayout first, DmaLayout... rest) {
            return new Golden(name, bytes, message, EnumSet.of(first, rest), roundTrip);
        }

        Golden decodeOnly() {
            return new Golden(name, bytes, message, layouts, false);
        }

        @Override
        public String toString() {
            return name;
        }
    }

    private Goldens() {
    }

    static Golden golden(String name, String hex, Supplier<VfioUserMessage> message) {
        return golden(name, bytes(hex), message);
    }

    static Golden golden(String name, byte[] bytes, Supplier<VfioUserMessage> message) {
        return new Golden(name, bytes, message, EnumSet.of(DmaLayout.SPEC), true);
    }

    /** A tracked (leak-detected) direct buffer holding {@code hex}. */
    static ByteBuf buf(String hex) {
        return buf(bytes(hex));
    }

    static ByteBuf buf(byte[] bytes) {
        return PooledByteBufAllocator.DEFAULT.directBuffer(bytes.length).writeBytes(bytes);
    }

    /** The header of a command as a client would send it, for building replies. */
    static VfioUserHeader request(int msgId, VfioUserCommand command) {
        return new VfioUserHeader(msgId, command.code(), VfioUserHeader.HEADER_SIZE, VfioUserHeader.COMMAND, 0);
    }

    private static VfioUserMessage reply(int msgId, VfioUserCommand command, VfioUserPayload payload) {
        return VfioUserMessage.reply(request(msgId, command), payload);
    }

    /** A message with an explicit header, for decode-only goldens whose msg_size we would not produce. */
    private static VfioUserMessage received(int msgId, VfioUserCommand command, long size, int flags, int error,
            VfioUserPayload payload) {
        return new VfioUserMessage(new VfioUserHeader(msgId, command.code(), size, flags, error), payload,
                FdSet.EMPTY);
    }

    static List<Golden> all() {
        List<Golden> all = new ArrayList<>();
        version(all);
        dma(all);
        deviceInfo(all);
        regionInfo(all);
        ioFds(all);
        irqs(all);
        largeArgsz(all);
        regionAccess(all);
        serverDma(all);
        misc(all);
        migration(all);
        errors(all);
        return all;
    }

    /** The goldens that stand for their message in {@code layout}, in catalog order. */
    static List<Golden> in(DmaLayout layout) {
        return all().stream().filter(g -> g.layouts().contains(layout)).toList();
    }

    private static void version(List<Golden> all) {
        all.add(golden("VERSION request from QEMU (214 bytes)",
                concat(bytes("""
                        0000 0100 d6000000 00000000 00000000   # id 0, VERSION, 214 bytes, command
                        0000 0000                              # major 0, minor 0
                        """), ascii(QEMU_VERSION_JSON), bytes("00")),
                () -> VfioUserMessage.command(0, VfioUserCommand.VERSION,
                        new VersionPayload(0, 0, QEMU_VERSION_JSON))));
        all.add(golden("VERSION reply recommended for QEMU",
                concat(bytes("""
                        0000 0100 78000000 01000000 00000000   # id 0, VERSION, 120 bytes, reply
                        0000 0000                              # 0.0
                        """), ascii(RECOMMENDED_REPLY_JSON), bytes("00")),
                () -> reply(0, VfioUserCommand.VERSION, new VersionPayload(0, 0, RECOMMENDED_REPLY_JSON))));
        all.add(golden("VERSION request without JSON", """
                0100 0100 14000000 00000000 00000000   # id 1, VERSION, 20 bytes
                0000 0200                              # 0.2, no JSON
                """, () -> VfioUserMessage.command(1, VfioUserCommand.VERSION, new VersionPayload(0, 2, null))));
    }

    private static void dma(List<Golden> all) {
        all.add(golden("DMA_MAP request", """
                0200 0200 30000000 00000000 00000000   # id 2, DMA_MAP, 48 bytes
                20000000 03000000                      # argsz 32, flags READ|WRITE
                0010000000000000                       # offset 0x1000
                0000000001000000                       # address 0x1_0000_0000
                0000200000000000                       # size 2 MiB
                """, () -> VfioUserMessage.command(2, VfioUserCommand.DMA_MAP,
                        DmaMapRequest.of(3, 0x1000, 0x1_0000_0000L, 0x20_0000))));
        all.add(golden("DMA_MAP reply", """
                0200 0200 10000000 01000000 00000000   # header only
                """, () -> reply(2, VfioUserCommand.DMA_MAP, null)));
        all.add(golden("DMA_UNMAP request", """
                0300 0300 28000000 00000000 00000000   # id 3, DMA_UNMAP, 40 bytes
                18000000 00000000                      # argsz 24, flags 0
                0000000001000000                       # address
                0000200000000000                       # size
                """, () -> VfioUserMessage.command(3, VfioUserCommand.DMA_UNMAP,
                        DmaUnmapRequest.of(0, 0x1_0000_0000L, 0x20_0000))));
        all.add(golden("DMA_UNMAP request with GET_DIRTY_BITMAP", """
                0400 0300 38000000 00000000 00000000   # id 4, 56 bytes
                30000000 01000000                      # argsz 48 (40 + 8), GET_DIRTY_BITMAP
                0000100000000000                       # address 1 MiB
                0000040000000000                       # size 256 KiB: 64 pages
                0010000000000000                       # bitmap.pgsize 4096
                0800000000000000                       # bitmap.size 8
                """, () -> VfioUserMessage.command(4, VfioUserCommand.DMA_UNMAP,
                        new DmaUnmapRequest(48, 1, 0x10_0000, 0x4_0000, 4096, 8))));
        all.add(golden("DMA_UNMAP reply echo", """
                0300 0300 28000000 01000000 00000000
                18000000 00000000 0000000001000000 0000200000000000
                """, () -> reply(3, VfioUserCommand.DMA_UNMAP,
                        DmaUnmapReply.echo(DmaUnmapRequest.of(0, 0x1_0000_0000L, 0x20_0000)))));
        all.add(golden("DMA_UNMAP reply with bitmap", """
                0400 0300 40000000 01000000 00000000   # 64 bytes
                30000000 01000000 0000100000000000 0000040000000000
                0010000000000000 0800000000000000      # bitmap header
                ff0f000000000080                       # pages 0-11 and 63 dirty
                """, () -> reply(4, VfioUserCommand.DMA_UNMAP, DmaUnmapReply.withBitmap(
                        new DmaUnmapRequest(48, 1, 0x10_0000, 0x4_0000, 4096, 8), buf("ff0f000000000080")))));
        all.add(golden("DMA_UNMAP reply header only", """
                0500 0300 10000000 01000000 00000000
                """, () -> reply(5, VfioUserCommand.DMA_UNMAP, null)));
    }

    private static void deviceInfo(List<Golden> all) {
        all.add(golden("DEVICE_GET_INFO request", """
                0600 0400 20000000 00000000 00000000
                10000000 00000000 00000000 00000000    # argsz 16
                """, () -> VfioUserMessage.command(6, VfioUserCommand.DEVICE_GET_INFO, DeviceInfo.request())));
        all.add(golden("DEVICE_GET_INFO reply", """
                0600 0400 20000000 01000000 00000000
                10000000 03000000 09000000 05000000    # argsz 16, RESET|PCI, 9 regions, 5 irqs
                """, () -> reply(6, VfioUserCommand.DEVICE_GET_INFO,
                        DeviceInfo.reply(DeviceInfo.FLAG_RESET | DeviceInfo.FLAG_PCI, 9, 5))));
    }

    private static void regionInfo(List<Golden> all) {
        all.add(golden("DEVICE_GET_REGION_INFO request", """
                0700 0500 30000000 00000000 00000000
                20000000 00000000 07000000 00000000    # argsz 32, flags 0, index 7, cap_offset 0
                0000000000000000 0000000000000000      # size 0, offset 0
                """, () -> VfioUserMessage.command(7, VfioUserCommand.DEVICE_GET_REGION_INFO,
                        RegionInfoRequest.of(7))));
        all.add(golden("DEVICE_GET_REGION_INFO reply without caps", """
                0700 0500 30000000 01000000 00000000
                20000000 03000000 07000000 00000000    # argsz 32, READ|WRITE, index 7, cap_offset 0
                0010000000000000 0000000000000000      # size 4096, offset 0
                """, () -> reply(7, VfioUserCommand.DEVICE_GET_REGION_INFO,
                        new RegionInfo(32, 3, 7, 4096, 0, List.of()))));
        all.add(golden("DEVICE_GET_REGION_INFO reply with sparse mmap and MSI-X caps", """
                0800 0500 68000000 01000000 00000000   # 104 bytes
                58000000 0f000000 00000000 20000000    # argsz 88, READ|WRITE|MMAP|CAPS, index 0, cap_offset 32
                0040000000000000 0000000000000000      # size 16 KiB, offset 0
                0100 0100 50000000                     # @32 SPARSE_MMAP v1, next 80
                02000000 00000000                      # 2 areas
                0000000000000000 0010000000000000      # [0, 4 KiB)
                0020000000000000 0020000000000000      # [8 KiB, 16 KiB)
                0300 0100 00000000                     # @80 MSIX_MAPPABLE v1, last
                """, () -> reply(8, VfioUserCommand.DEVICE_GET_REGION_INFO, new RegionInfo(88, 0xf, 0, 0x4000, 0,
                        List.of(new SparseMmapCapability(List.of(new SparseMmapCapability.Area(0, 0x1000),
                                        new SparseMmapCapability.Area(0x2000, 0x2000))),
                                MsixMappableCapability.INSTANCE)))));
        all.add(golden("DEVICE_GET_REGION_INFO reply truncated (caps do not fit)", """
                0900 0500 30000000 01000000 00000000
                58000000 07000000 00000000 00000000    # argsz 88 needed, READ|WRITE|MMAP, no CAPS
                0040000000000000 0000000000000000
                """, () -> reply(9, VfioUserCommand.DEVICE_GET_REGION_INFO,
                        new RegionInfo(88, 7, 0, 0x4000, 0, List.of()))));
        all.add(golden("DEVICE_GET_REGION_INFO reply with TYPE cap", """
                0a00 0500 40000000 01000000 00000000   # 64 bytes
                30000000 0b000000 09000000 20000000    # argsz 48, READ|WRITE|CAPS, index 9, cap_offset 32
                0001000000000000 0000000000000000      # size 256
                0200 0100 00000000 03000000 01000000   # TYPE v1, last, type 3, subtype 1
                """, () -> reply(10, VfioUserCommand.DEVICE_GET_REGION_INFO,
                        new RegionInfo(48, 0xb, 9, 0x100, 0, List.of(new TypeCapability(3, 1))))));
    }

    private static void ioFds(List<Golden> all) {
        all.add(golden("DEVICE_GET_REGION_IO_FDS request", """
                0b00 0600 20000000 00000000 00000000
                00040000 00000000 02000000 00000000    # argsz 1024, flags 0, index 2, count 0
                """, () -> VfioUserMessage.command(11, VfioUserCommand.DEVICE_GET_REGION_IO_FDS,
                        RegionIoFdsRequest.of(1024, 2))));
        all.add(golden("DEVICE_GET_REGION_IO_FDS reply", """
                0b00 0600 70000000 01000000 00000000   # 112 bytes
                60000000 00000000 02000000 02000000    # argsz 96, flags 0, index 2, count 2
                0001000000000000 0400000000000000      # offset 0x100, size 4
                00000000 00000000 01000000 00000000    # fd 0, IOEVENTFD, DATAMATCH, padding
                adde000000000000                       # datamatch 0xdead
                0002000000000000 0000000000000000      # offset 0x200, any size
                01000000 00000000 00000000 00000000    # fd 1, IOEVENTFD, no flags
                0000000000000000
                """, () -> reply(11, VfioUserCommand.DEVICE_GET_REGION_IO_FDS, RegionIoFds.of(2, List.of(
                        new IoFdEntry(0x100, 4, 0, IoFdEntry.TYPE_IOEVENTFD, IoFdEntry.FLAG_DATAMATCH, 0xdead),
                        new IoFdEntry(0x200, 0, 1, IoFdEntry.TYPE_IOEVENTFD, 0, 0))))));
        all.add(golden("DEVICE_GET_REGION_IO_FDS reply with libvfio-user's 48-byte entries", """
                0c00 0600 50000000 01000000 00000000   # 80 bytes
                40000000 00000000 02000000 01000000    # argsz 64: stride (64 - 16) / 1 = 48
                0001000000000000 0400000000000000
                00000000 02000000 00000000 00000000    # fd 0, IOEVENTFD_SHADOW, flags 0, shadow fd 0
                0070000000000000                       # @32 shadow_offset (read as the spec's datamatch)
                5500000000000000                       # @40 libvfio-user's datamatch
                """, () -> received(12, VfioUserCommand.DEVICE_GET_REGION_IO_FDS, 80, VfioUserHeader.REPLY, 0,
                        new RegionIoFds(64, 0, 2, 1, List.of(new IoFdEntry(0x100, 4, 0, 2, 0, 0x7000)))))
                .decodeOnly());
        all.add(golden("DEVICE_GET_REGION_IO_FDS reply truncated (entries do not fit)", """
                0d00 0600 20000000 01000000 00000000
                60000000 00000000 02000000 02000000    # argsz 96 needed, count 2, no entries
                """, () -> reply(13, VfioUserCommand.DEVICE_GET_REGION_IO_FDS,
                        new RegionIoFds(96, 0, 2, 2, List.of()))));
    }

    /** argsz is a u32: 2^31 and above decode as large values (issue 11, defect 8), and encode back unchanged. */
    private static void largeArgsz(List<Golden> all) {
        all.add(golden("DEVICE_GET_INFO request with argsz 2^31", """
                1000 0400 20000000 00000000 00000000
                00000080 00000000 00000000 00000000    # argsz 0x80000000
                """, () -> VfioUserMessage.command(16, VfioUserCommand.DEVICE_GET_INFO,
                        new DeviceInfo(0x8000_0000L, 0, 0, 0))));
        all.add(golden("DEVICE_GET_REGION_INFO request with argsz 2^32 - 1", """
                1100 0500 30000000 00000000 00000000
                ffffffff 00000000 02000000 00000000    # argsz 0xffffffff, index 2
                0000000000000000 0000000000000000
                """, () -> VfioUserMessage.command(17, VfioUserCommand.DEVICE_GET_REGION_INFO,
                        new RegionInfoRequest(0xFFFF_FFFFL, 2))));
        all.add(golden("DEVICE_GET_IRQ_INFO request with argsz 2^32 - 1", """
                1200 0700 20000000 00000000 00000000
                ffffffff 00000000 02000000 00000000    # argsz 0xffffffff, index 2
                """, () -> VfioUserMessage.command(18, VfioUserCommand.DEVICE_GET_IRQ_INFO,
                        new IrqInfo(0xFFFF_FFFFL, 0, 2, 0))));
        all.add(golden("DMA_MAP request with argsz 2^31", """
                1300 0200 30000000 00000000 00000000
                00000080 03000000                      # argsz 0x80000000, READ|WRITE
                0000000000000000 0000100000000000 0000100000000000
                """, () -> VfioUserMessage.command(19, VfioUserCommand.DMA_MAP,
                        new DmaMapRequest(0x8000_0000L, 3, 0, 0x10_0000, 0x10_0000))));
        all.add(golden("DMA_UNMAP request with argsz 1 MiB", """
                1400 0300 28000000 00000000 00000000
                00001000 00000000 0000100000000000 0000100000000000
                """, () -> VfioUserMessage.command(20, VfioUserCommand.DMA_UNMAP,
                        new DmaUnmapRequest(1 << 20, 0, 0x10_0000, 0x10_0000, 0, 0))));
    }

    private static void irqs(List<Golden> all) {
        all.add(golden("DEVICE_GET_IRQ_INFO request", """
                0e00 0700 20000000 00000000 00000000
                10000000 00000000 03000000 00000000    # argsz 16, index 3 (ERR)
                """, () -> VfioUserMessage.command(14, VfioUserCommand.DEVICE_GET_IRQ_INFO, IrqInfo.request(3))));
        all.add(golden("DEVICE_GET_IRQ_INFO reply", """
                0e00 0700 20000000 01000000 00000000
                10000000 01000000 03000000 01000000    # EVENTFD, index 3, 1 vector
                """, () -> reply(14, VfioUserCommand.DEVICE_GET_IRQ_INFO,
                        IrqInfo.reply(IrqInfo.FLAG_EVENTFD, 3, 1))));
        all.add(golden("DEVICE_SET_IRQS request EVENTFD|TRIGGER (QEMU, fds out of band)", """
                0f00 0800 24000000 00000000 00000000   # 36 bytes
                14000000 24000000 02000000             # argsz 20, EVENTFD|TRIGGER, index 2 (MSI-X)
                00000000 01000000                      # start 0, count 1
                """, () -> VfioUserMessage.command(15, VfioUserCommand.DEVICE_SET_IRQS,
                        SetIrqs.of(SetIrqs.DATA_EVENTFD | SetIrqs.ACTION_TRIGGER, 2, 0, 1))));
        all.add(golden("DEVICE_SET_IRQS request BOOL|TRIGGER", """
                1000 0800 28000000 00000000 00000000   # 40 bytes
                18000000 22000000 01000000             # argsz 24, BOOL|TRIGGER, index 1 (MSI)
                00000000 04000000                      # start 0, count 4
                01000101                               # fire 0, 2, 3
                """, () -> VfioUserMessage.command(16, VfioUserCommand.DEVICE_SET_IRQS,
                        SetIrqs.withBools(SetIrqs.DATA_BOOL | SetIrqs.ACTION_TRIGGER, 1, 0, buf("01000101")))));
        all.add(golden("DEVICE_SET_IRQS reply", """
                0f00 0800 10000000 01000000 00000000
                """, () -> reply(15, VfioUserCommand.DEVICE_SET_IRQS, null)));
    }

    private static void regionAccess(List<Golden> all) {
        all.add(golden("REGION_READ request", """
                1100 0900 20000000 00000000 00000000
                0000000000000000 07000000 04000000     # offset 0, region 7 (config), 4 bytes
                """, () -> VfioUserMessage.command(17, VfioUserCommand.REGION_READ,
                        RegionAccess.inRegion(7).atOffset(0).count(4))));
        all.add(golden("REGION_READ reply", """
                1100 0900 24000000 01000000 00000000   # 36 bytes
                0000000000000000 07000000 04000000
                86803412                               # vendor 0x8086, device 0x1234
                """, () -> reply(17, VfioUserCommand.REGION_READ,
                        RegionAccess.inRegion(7).atOffset(0).data(buf("86803412")))));
        all.add(golden("REGION_READ reply header only (libvfio-user, count 0)", """
                1200 0900 10000000 01000000 00000000
                """, () -> reply(18, VfioUserCommand.REGION_READ, null)));
        all.add(golden("REGION_WRITE request NO_REPLY (posted)", """
                1300 0a00 24000000 10000000 00000000   # NO_REPLY
                1000000000000000 00000000 04000000     # offset 0x10, BAR0, 4 bytes
                78563412
                """, () -> VfioUserMessage.commandNoReply(19, VfioUserCommand.REGION_WRITE,
                        RegionAccess.inRegion(0).atOffset(0x10).data(buf("78563412")))));
        all.add(golden("REGION_WRITE reply", """
                1400 0a00 20000000 01000000 00000000
                1000000000000000 00000000 04000000
                """, () -> reply(20, VfioUserCommand.REGION_WRITE, RegionAccess.inRegion(0).atOffset(0x10).count(4))));
    }

    private static void serverDma(List<Golden> all) {
        all.add(golden("DMA_READ request (both layouts)", """
                0100 0b00 20000000 00000000 00000000
                0010000000000000 0800000000000000      # address 0x1000, count 8 (u64; QEMU reads u32 + 4 unused)
                """, () -> VfioUserMessage.command(1, VfioUserCommand.DMA_READ, DmaAccess.of(0x1000, 8)))
                .in(DmaLayout.SPEC, DmaLayout.QEMU));
        all.add(golden("DMA_READ reply (spec layout)", """
                0100 0b00 28000000 01000000 00000000   # 40 bytes
                0010000000000000 0800000000000000      # address, u64 count 8
                0102030405060708                       # data @16
                """, () -> reply(1, VfioUserCommand.DMA_READ, DmaAccess.withData(0x1000, buf("0102030405060708")))));
        all.add(golden("DMA_READ reply (QEMU layout)", """
                0100 0b00 28000000 01000000 00000000   # 40 bytes
                0010000000000000 08000000              # address, u32 count 8
                0102030405060708                       # data @12
                00000000                               # 4 trailing zero bytes
                """, () -> reply(1, VfioUserCommand.DMA_READ, DmaAccess.withData(0x1000, buf("0102030405060708"))))
                .in(DmaLayout.QEMU));
        all.add(golden("DMA_WRITE request (spec layout)", """
                0200 0c00 24000000 00000000 00000000   # 36 bytes
                0020000000000000 0400000000000000      # address 0x2000, u64 count 4
                aabbccdd
                """, () -> VfioUserMessage.command(2, VfioUserCommand.DMA_WRITE,
                        DmaAccess.withData(0x2000, buf("aabbccdd")))));
        all.add(golden("DMA_WRITE request (QEMU layout)", """
                0200 0c00 24000000 00000000 00000000   # 36 bytes
                0020000000000000 04000000              # address, u32 count 4
                aabbccdd 00000000                      # data @12, 4 zero bytes
                """, () -> VfioUserMessage.command(2, VfioUserCommand.DMA_WRITE,
                        DmaAccess.withData(0x2000, buf("aabbccdd")))).in(DmaLayout.QEMU));
        all.add(golden("DMA_WRITE reply of 16 bytes (libvfio-user)", """
                0200 0c00 20000000 01000000 00000000
                0020000000000000 0400000000000000      # address, u64 count
                """, () -> reply(2, VfioUserCommand.DMA_WRITE, DmaAccess.of(0x2000, 4)))
                .in(DmaLayout.SPEC, DmaLayout.QEMU));
        all.add(golden("DMA_WRITE reply of 12 bytes (spec table)", """
                0200 0c00 1c000000 01000000 00000000   # 28 bytes
                0020000000000000 04000000              # address, u32 count
                """, () -> received(2, VfioUserCommand.DMA_WRITE, 28, VfioUserHeader.REPLY, 0,
                        DmaAccess.of(0x2000, 4))).in(DmaLayout.SPEC, DmaLayout.QEMU).decodeOnly());
        all.add(golden("DMA_WRITE reply header only (QEMU)", """
                0200 0c00 10000000 01000000 00000000
                """, () -> reply(2, VfioUserCommand.DMA_WRITE, null)).in(DmaLayout.SPEC, DmaLayout.QEMU));
    }

    private static void misc(List<Golden> all) {
        all.add(golden("DEVICE_RESET request", """
                1500 0d00 10000000 00000000 00000000
                """, () -> VfioUserMessage.command(21, VfioUserCommand.DEVICE_RESET, null)));
        all.add(golden("DEVICE_RESET reply", """
                1500 0d00 10000000 01000000 00000000
                """, () -> reply(21, VfioUserCommand.DEVICE_RESET, null)));
        all.add(golden("REGION_WRITE_MULTI request NO_REPLY", """
                1600 0f00 48000000 10000000 00000000   # 72 bytes, NO_REPLY
                0200000000000000                       # wr_cnt 2
                1000000000000000 00000000 04000000     # offset 0x10, region 0, 4 bytes
                7856341200000000                       # data
                2000000000000000 02000000 08000000     # offset 0x20, region 2, 8 bytes
                8877665544332211
                """, () -> VfioUserMessage.commandNoReply(22, VfioUserCommand.REGION_WRITE_MULTI,
                        new RegionWriteMulti(List.of(new WriteMultiEntry(0x10, 0, 4, 0x12345678L),
                                new WriteMultiEntry(0x20, 2, 8, 0x1122334455667788L))))));
        all.add(golden("REGION_WRITE_MULTI reply", """
                1600 0f00 18000000 01000000 00000000
                0200000000000000                       # 2 writes done
                """, () -> reply(22, VfioUserCommand.REGION_WRITE_MULTI, new RegionWriteMultiReply(2))));
        all.add(golden("DEVICE_FEATURE request GET MIGRATION", """
                1700 1000 18000000 00000000 00000000
                10000000 01000100                      # argsz 16, GET | feature 1
                """, () -> VfioUserMessage.command(23, VfioUserCommand.DEVICE_FEATURE,
                        new DeviceFeature(16, DeviceFeature.GET | DeviceFeature.FEATURE_MIGRATION,
                                Unpooled.EMPTY_BUFFER))));
        all.add(golden("DEVICE_FEATURE reply GET MIGRATION", """
                1700 1000 20000000 01000000 00000000
                10000000 01000100
                0500000000000000                       # STOP_COPY | PRE_COPY
                """, () -> reply(23, VfioUserCommand.DEVICE_FEATURE,
                        DeviceFeature.of(DeviceFeature.GET | DeviceFeature.FEATURE_MIGRATION,
                                buf("0500000000000000")))));
        all.add(golden("DEVICE_FEATURE request SET MIG_DEVICE_STATE", """
                1800 1000 20000000 00000000 00000000
                10000000 02000200                      # argsz 16, SET | feature 2
                01000000 00000000                      # device_state STOP, data_fd 0
                """, () -> VfioUserMessage.command(24, VfioUserCommand.DEVICE_FEATURE,
                        DeviceFeature.of(DeviceFeature.SET | DeviceFeature.FEATURE_MIG_DEVICE_STATE,
                                buf("0100000000000000")))));
    }

    private static void migration(List<Golden> all) {
        all.add(golden("MIG_DATA_READ request", """
                1900 1100 18000000 00000000 00000000
                10000000 08000000                      # argsz 16, size 8
                """, () -> VfioUserMessage.command(25, VfioUserCommand.MIG_DATA_READ, MigDataRead.of(8))));
        all.add(golden("MIG_DATA_READ reply", """
                1900 1100 1c000000 01000000 00000000   # 28 bytes
                0c000000 04000000 deadbeef             # argsz 12, size 4, data
                """, () -> reply(25, VfioUserCommand.MIG_DATA_READ, MigData.of(buf("deadbeef")))));
        all.add(golden("MIG_DATA_READ reply padded to the request (libvfio-user)", """
                1a00 1100 20000000 01000000 00000000   # 32 bytes
                0c000000 04000000 deadbeef 00000000    # size 4 valid, 4 bytes of padding
                """, () -> received(26, VfioUserCommand.MIG_DATA_READ, 32, VfioUserHeader.REPLY, 0,
                        MigData.of(buf("deadbeef")))).decodeOnly());
        all.add(golden("MIG_DATA_WRITE request", """
                1b00 1200 1c000000 00000000 00000000
                0c000000 04000000 cafebabe
                """, () -> VfioUserMessage.command(27, VfioUserCommand.MIG_DATA_WRITE, MigData.of(buf("cafebabe")))));
        all.add(golden("MIG_DATA_WRITE reply", """
                1b00 1200 10000000 01000000 00000000
                """, () -> reply(27, VfioUserCommand.MIG_DATA_WRITE, null)));
    }

    private static void errors(List<Golden> all) {
        all.add(golden("error reply EINVAL to REGION_READ", """
                1100 0900 10000000 21000000 16000000   # REPLY|ERROR, errno 22
                """, () -> VfioUserMessage.errorReply(request(17, VfioUserCommand.REGION_READ), 22)));
        all.add(golden("error reply with a payload (libvfio-user region access)", """
                1100 0900 20000000 21000000 16000000
                0000000000000000 07000000 04000000     # ignored
                """, () -> received(17, VfioUserCommand.REGION_READ, 32, 0x21, 22, null)).decodeOnly());
    }
}
