package io.vfiouser.it;

import static io.vfiouser.it.Wire.errno;
import static io.vfiouser.it.Wire.ok;
import static org.assertj.core.api.Assertions.assertThat;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.vfiouser.client.ClientOptions;
import io.vfiouser.client.GuestMemory;
import io.vfiouser.client.VfioUserClient;
import io.vfiouser.codec.DmaLayout;
import io.vfiouser.codec.VfioUserCommand;
import io.vfiouser.codec.payload.DmaMapRequest;
import io.vfiouser.codec.payload.DmaUnmapRequest;
import io.vfiouser.codec.payload.RegionAccess;
import io.vfiouser.codec.payload.SetIrqs;
import io.vfiouser.examples.nulldev.NullDevice;
import io.vfiouser.server.ServerOptions;
import io.vfiouser.transport.FdSet;
import io.vfiouser.transport.linux.Errno;
import io.vfiouser.transport.linux.Linux;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** DMA through shared memory and through DMA messages, and interrupts through eventfds, end to end. */
class DmaAndInterruptsTest {
    private static final long RAM = 0x1000_0000L;
    private static final int RAM_SIZE = 4 << 20;
    /** The largest value an eventfd counter holds: a write of 1 blocks then, unless the file is non-blocking. */
    static final long FULL_COUNTER = 0xffff_ffff_ffff_fffeL;
    private ServerFixture fixture;

    @BeforeEach
    void start() throws Exception {
        fixture = new ServerFixture();
    }

    @AfterEach
    void stop() throws Exception {
        fixture.close();
    }

    private static void writeRegister(VfioUserClient client, int offset, long value) throws Exception {
        ByteBuf v = Unpooled.directBuffer(8).writeLongLE(value);
        assertThat(errno(client, VfioUserCommand.REGION_WRITE,
                RegionAccess.inRegion(0).atOffset(offset).data(v))).isZero();
    }

    private static long readRegister(VfioUserClient client, int offset) throws Exception {
        long[] out = new long[1];
        ok(client, VfioUserCommand.REGION_READ, RegionAccess.inRegion(0).atOffset(offset).count(8), r -> {
            ByteBuf d = r.payload(RegionAccess.class).data();
            out[0] = d.getLongLE(d.readerIndex());
        });
        return out[0];
    }

    private static void copy(VfioUserClient client, long src, long dst, long length) throws Exception {
        writeRegister(client, NullDevice.DMA_SRC, src);
        writeRegister(client, NullDevice.DMA_DST, dst);
        writeRegister(client, NullDevice.DMA_LEN, length);
        writeRegister(client, NullDevice.DMA_CTRL, NullDevice.CTRL_START);
    }

    @Test
    void theDeviceCopiesInsideSharedGuestMemory() throws Exception {
        VfioUserClient client = fixture.client();
        try (GuestMemory ram = GuestMemory.allocate(RAM, RAM_SIZE)) {
            assertThat(errno(client, VfioUserCommand.DMA_MAP, DmaMapRequest.of(3, 0, RAM, RAM_SIZE),
                    FdSet.of(ram.dupFd()))).isZero();
            MemorySegment mem = ram.segment();
            for (int i = 0; i < 100_000; i++) {
                mem.set(ValueLayout.JAVA_BYTE, i, (byte) (i * 7));
            }
            copy(client, RAM, RAM + (2 << 20), 100_000);
            assertThat(readRegister(client, NullDevice.DMA_STATUS)).isEqualTo(NullDevice.STATUS_DONE);
            for (int i = 0; i < 100_000; i++) {
                assertThat(mem.get(ValueLayout.JAVA_BYTE, (2 << 20) + i)).isEqualTo((byte) (i * 7));
            }
            // Outside the mapping: the copy fails with an errno in the status register, the connection lives.
            copy(client, RAM + RAM_SIZE - 16, RAM, 64);
            assertThat(readRegister(client, NullDevice.DMA_STATUS)).isEqualTo(Errno.EFAULT);
            // After unmap the device can no longer reach it.
            assertThat(errno(client, VfioUserCommand.DMA_UNMAP, DmaUnmapRequest.of(0, RAM, RAM_SIZE))).isZero();
            copy(client, RAM, RAM + 4096, 16);
            assertThat(readRegister(client, NullDevice.DMA_STATUS)).isEqualTo(Errno.EFAULT);
        }
    }

    @ParameterizedTest
    @EnumSource(DmaLayout.class)
    void withoutAnFdTheDeviceReachesGuestMemoryThroughDmaMessages(DmaLayout layout) throws Exception {
        fixture.close();
        fixture = new ServerFixture(ServerOptions.DEFAULT.withDmaLayout(layout));
        VfioUserClient client = fixture.client(ClientOptions.DEFAULT.withDmaLayout(layout));
        try (GuestMemory ram = GuestMemory.allocate(RAM, RAM_SIZE)) {
            client.serveDma(ram);
            assertThat(errno(client, VfioUserCommand.DMA_MAP, DmaMapRequest.of(3, 0, RAM, RAM_SIZE))).isZero();
            MemorySegment mem = ram.segment();
            int length = 3 << 20; // more than one message's worth: the server splits it
            for (int i = 0; i < length; i += 4093) {
                mem.set(ValueLayout.JAVA_BYTE, i, (byte) (i >>> 4));
            }
            copy(client, RAM, RAM + (1 << 20) - 7, 4096 * 3 + 5);
            assertThat(readRegister(client, NullDevice.DMA_STATUS)).isEqualTo(NullDevice.STATUS_DONE);
            for (int i = 0; i < 4096 * 3 + 5; i++) {
                assertThat(mem.get(ValueLayout.JAVA_BYTE, (1 << 20) - 7 + i))
                        .as("byte %d", i).isEqualTo(mem.get(ValueLayout.JAVA_BYTE, i));
            }
        }
    }

    @Test
    void doorbellsRaiseMsixVectorsThroughEventfdsAndMaskedOnesWaitInThePba() throws Exception {
        VfioUserClient client = fixture.client();
        int[] events = new int[4];
        int[] dups = new int[4];
        for (int i = 0; i < 4; i++) {
            events[i] = Linux.eventfd(0, Linux.EFD_NONBLOCK);
            dups[i] = Linux.dup(events[i]);
        }
        try {
            // Enable MSI-X in config space, unmask every vector in the emulated table.
            enableMsix(client);
            assertThat(errno(client, VfioUserCommand.DEVICE_SET_IRQS,
                    SetIrqs.of(SetIrqs.ACTION_TRIGGER | SetIrqs.DATA_EVENTFD, 2, 0, 4), FdSet.of(dups))).isZero();
            for (int v = 0; v < 4; v++) {
                writeVectorControl(client, v, 0);
            }
            for (int v = 0; v < 4; v++) {
                writeRegister(client, NullDevice.DOORBELL, v);
                assertThat(Linux.eventfdRead(events[v])).as("vector %d fired", v).isEqualTo(1);
            }
            // Mask vector 2: the doorbell sets its pending bit instead, and unmasking fires it once.
            writeVectorControl(client, 2, 1);
            writeRegister(client, NullDevice.DOORBELL, 2);
            assertThat(Linux.eventfdRead(events[2])).isEqualTo(-1);
            assertThat(readPba(client) & 0b100).isNotZero();
            writeVectorControl(client, 2, 0);
            assertThat(Linux.eventfdRead(events[2])).isEqualTo(1);
            assertThat(readPba(client) & 0b100).isZero();
            // The client takes the vectors away: the doorbell is dropped, not queued.
            assertThat(errno(client, VfioUserCommand.DEVICE_SET_IRQS,
                    SetIrqs.of(SetIrqs.ACTION_TRIGGER | SetIrqs.DATA_NONE, 2, 0, 0))).isZero();
            writeRegister(client, NullDevice.DOORBELL, 1);
            assertThat(Linux.eventfdRead(events[1])).isEqualTo(-1);
        } finally {
            for (int fd : events) {
                Linux.close(fd);
            }
        }
    }

    @Test
    void setIrqsWithAPipeAFileOrASocketIsEinval() throws Exception {
        VfioUserClient client = fixture.client();
        int[] pipe = Linux.pipe(false);
        int[] pair = Linux.socketPair(false);
        int file = Linux.memfdCreate("not-an-eventfd");
        int event = Linux.eventfd(0, 0);
        try {
            enableMsix(client);
            for (int bad : new int[] {pipe[1], pipe[0], pair[0], file}) {
                assertThat(errno(client, VfioUserCommand.DEVICE_SET_IRQS,
                        SetIrqs.of(SetIrqs.ACTION_TRIGGER | SetIrqs.DATA_EVENTFD, 2, 0, 1), FdSet.of(Linux.dup(bad))))
                        .as("fd %s", Linux.fdTarget(bad)).isEqualTo(Errno.EINVAL);
            }
            // an eventfd among them does not help
            assertThat(errno(client, VfioUserCommand.DEVICE_SET_IRQS,
                    SetIrqs.of(SetIrqs.ACTION_TRIGGER | SetIrqs.DATA_EVENTFD, 2, 0, 2),
                    FdSet.of(Linux.dup(event), Linux.dup(pipe[1])))).isEqualTo(Errno.EINVAL);
            assertThat(Linux.isNonBlocking(event)).as("a refused request changes nothing").isFalse();
            writeVectorControl(client, 0, 0);
            writeVectorControl(client, 1, 0);
            writeRegister(client, NullDevice.DOORBELL, 0);
            writeRegister(client, NullDevice.DOORBELL, 1);
            assertThat(eventfdCount(event)).isZero();
            Linux.setNonBlocking(pipe[0]);
            assertThat(Linux.read(pipe[0], Arena.ofAuto().allocate(8))).as("nothing written to the pipe").isEqualTo(-1);
        } finally {
            for (int fd : new int[] {pipe[0], pipe[1], pair[0], pair[1], file, event}) {
                Linux.close(fd);
            }
        }
    }

    @Test
    void aFullBlockingEventfdDropsTheSignalOfItsVectorWithoutStoppingTheServer() throws Exception {
        VfioUserClient client = fixture.client();
        int full = Linux.eventfd(0, 0); // blocking, as a careless client might make it
        int other = Linux.eventfd(0, Linux.EFD_NONBLOCK);
        try {
            Linux.eventfdWrite(full, FULL_COUNTER);
            enableMsix(client);
            assertThat(errno(client, VfioUserCommand.DEVICE_SET_IRQS,
                    SetIrqs.of(SetIrqs.ACTION_TRIGGER | SetIrqs.DATA_EVENTFD, 2, 0, 2),
                    FdSet.of(Linux.dup(full), Linux.dup(other)))).isZero();
            writeVectorControl(client, 0, 0);
            writeVectorControl(client, 1, 0);
            // Before the fix the server's event loop blocked in write(2) here, and this reply never came.
            for (int i = 0; i < 3; i++) {
                writeRegister(client, NullDevice.DOORBELL, 0);
                writeRegister(client, NullDevice.DOORBELL, 1);
            }
            assertThat(readRegister(client, NullDevice.SCRATCH)).isZero();
            assertThat(eventfdCount(full)).as("coalesced with the unread signals").isEqualTo(FULL_COUNTER);
            assertThat(Linux.eventfdRead(other)).as("the other vector is served").isEqualTo(3);
            // once the client reads its eventfd, the vector is signalled again
            assertThat(Linux.eventfdRead(full)).isEqualTo(FULL_COUNTER);
            writeRegister(client, NullDevice.DOORBELL, 0);
            assertThat(Linux.eventfdRead(full)).isEqualTo(1);
        } finally {
            Linux.eventfdRead(full); // non-blocking by now; if not, this releases a blocked server
            Linux.close(full);
            Linux.close(other);
        }
    }

    @Test
    void aDoorbellWhileMsixIsDisabledFiresNothingAndNothingPends() throws Exception {
        VfioUserClient client = fixture.client();
        int event = Linux.eventfd(0, Linux.EFD_NONBLOCK);
        try {
            // eventfd assigned and vector unmasked, but the Enable bit in config space is clear
            assertThat(errno(client, VfioUserCommand.DEVICE_SET_IRQS,
                    SetIrqs.of(SetIrqs.ACTION_TRIGGER | SetIrqs.DATA_EVENTFD, 2, 3, 1),
                    FdSet.of(Linux.dup(event)))).isZero();
            writeVectorControl(client, 3, 0);
            writeRegister(client, NullDevice.DOORBELL, 3);
            assertThat(Linux.eventfdRead(event)).as("PCI: no MSI-X message while Enable is clear").isEqualTo(-1);
            assertThat(readPba(client)).isZero();
            writeVectorControl(client, 3, 1);
            writeRegister(client, NullDevice.DOORBELL, 3);
            assertThat(readPba(client)).as("masked and disabled: nothing pends either").isZero();
            writeVectorControl(client, 3, 0);
            enableMsix(client);
            assertThat(Linux.eventfdRead(event)).as("enabling fires nothing that was dropped").isEqualTo(-1);
            writeRegister(client, NullDevice.DOORBELL, 3);
            assertThat(Linux.eventfdRead(event)).isEqualTo(1);
        } finally {
            Linux.close(event);
        }
    }

    /** An eventfd's counter, read from /proc without consuming it (and without blocking on a blocking one). */
    static long eventfdCount(int fd) throws Exception {
        for (String line : java.nio.file.Files.readAllLines(java.nio.file.Path.of("/proc/self/fdinfo/" + fd))) {
            if (line.startsWith("eventfd-count:")) {
                return Long.parseUnsignedLong(line.substring("eventfd-count:".length()).trim(), 16);
            }
        }
        throw new AssertionError("fd " + fd + " is not an eventfd");
    }

    private static void enableMsix(VfioUserClient client) throws Exception {
        int cap = findCapability(client, 0x11);
        ByteBuf control = Unpooled.directBuffer(2).writeShortLE(0x8000);
        assertThat(errno(client, VfioUserCommand.REGION_WRITE,
                RegionAccess.inRegion(7).atOffset(cap + 2).data(control)))
                .isZero();
    }

    static int findCapability(VfioUserClient client, int id) throws Exception {
        int[] found = {-1};
        ok(client, VfioUserCommand.REGION_READ, RegionAccess.inRegion(7).atOffset(0).count(256), r -> {
            ByteBuf c = r.payload(RegionAccess.class).data();
            int base = c.readerIndex();
            int at = c.getUnsignedByte(base + 0x34);
            while (at != 0) {
                if (c.getUnsignedByte(base + at) == id) {
                    found[0] = at;
                    return;
                }
                at = c.getUnsignedByte(base + at + 1);
            }
        });
        assertThat(found[0]).as("capability 0x%x", id).isPositive();
        return found[0];
    }

    private static void writeVectorControl(VfioUserClient client, int vector, int control) throws Exception {
        ByteBuf v = Unpooled.directBuffer(4).writeIntLE(control);
        assertThat(errno(client, VfioUserCommand.REGION_WRITE,
                RegionAccess.inRegion(NullDevice.MSIX_BAR).atOffset(NullDevice.MSIX_TABLE_OFFSET + 16L * vector + 12)
                        .data(v)))
                .isZero();
    }

    private static long readPba(VfioUserClient client) throws Exception {
        long[] out = new long[1];
        ok(client, VfioUserCommand.REGION_READ,
                RegionAccess.inRegion(NullDevice.MSIX_BAR).atOffset(NullDevice.MSIX_PBA_OFFSET).count(8),
                r -> {
                    ByteBuf d = r.payload(RegionAccess.class).data();
                    out[0] = d.getLongLE(d.readerIndex());
                });
        return out[0];
    }

    @Test
    void aClientThatLeavesTakesItsMappingsAndEventfdsWithIt() throws Exception {
        VfioUserClient first = fixture.client();
        try (GuestMemory ram = GuestMemory.allocate(RAM, RAM_SIZE)) {
            assertThat(errno(first, VfioUserCommand.DMA_MAP, DmaMapRequest.of(3, 0, RAM, RAM_SIZE),
                    FdSet.of(ram.dupFd()))).isZero();
            int event = Linux.eventfd(0, Linux.EFD_NONBLOCK);
            assertThat(errno(first, VfioUserCommand.DEVICE_SET_IRQS,
                    SetIrqs.of(SetIrqs.ACTION_TRIGGER | SetIrqs.DATA_EVENTFD, 3, 0, 1), FdSet.of(event))).isZero();
            writeRegister(first, NullDevice.SCRATCH, 0x5a5a);
            first.close();
            fixture.awaitNoClient();
            VfioUserClient second = fixture.client();
            // The device was reset with reason LOST_CONNECTION (the null device clears its registers then).
            assertThat(readRegister(second, NullDevice.SCRATCH)).isZero();
            // The old mapping is gone: mapping the same range again is not an overlap.
            assertThat(errno(second, VfioUserCommand.DMA_MAP, DmaMapRequest.of(3, 0, RAM, RAM_SIZE),
                    FdSet.of(ram.dupFd()))).isZero();
            second.close();
        }
    }

    static void await(java.util.concurrent.CompletableFuture<?> f) throws Exception {
        f.get(Wire.TIMEOUT_S, TimeUnit.SECONDS);
    }
}
