package io.vfiouser.it;

import static io.vfiouser.it.Wire.errno;
import static io.vfiouser.it.Wire.ok;
import static org.assertj.core.api.Assertions.assertThat;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.vfiouser.client.ClientOptions;
import io.vfiouser.client.GuestMemory;
import io.vfiouser.client.VfioUserClient;
import io.vfiouser.codec.VfioUserCommand;
import io.vfiouser.codec.VfioUserMessage;
import io.vfiouser.codec.payload.DeviceInfo;
import io.vfiouser.codec.payload.DmaMapRequest;
import io.vfiouser.codec.payload.DmaUnmapRequest;
import io.vfiouser.codec.payload.IrqInfo;
import io.vfiouser.codec.payload.RegionAccess;
import io.vfiouser.codec.payload.RegionInfo;
import io.vfiouser.codec.payload.RegionInfoRequest;
import io.vfiouser.codec.payload.SetIrqs;
import io.vfiouser.device.DeviceDescription;
import io.vfiouser.device.VfioUserDevice;
import io.vfiouser.examples.gpio.PciIdio16;
import io.vfiouser.examples.nulldev.NullDevice;
import io.vfiouser.transport.FdSet;
import io.vfiouser.transport.linux.Linux;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Replays what QEMU's {@code vfio-user-pci} sends when it realizes a device (digest 5.2), at machine reset (5.7)
 * and at hot-unplug (5.11), against both example devices. Every command must succeed and every reply must fit
 * the buffer QEMU reads it into (5.9).
 */
class QemuSequenceTest {

    static Stream<Arguments> devices() {
        return Stream.of(
                Arguments.of(NullDevice.description("null"), new NullDevice()),
                Arguments.of(PciIdio16.description("gpio"), new PciIdio16()));
    }

    @ParameterizedTest
    @MethodSource("devices")
    void realizeResetAndUnplug(DeviceDescription description, VfioUserDevice behaviour) throws Exception {
        try (ServerFixture fixture = new ServerFixture(description, behaviour);
             GuestMemory low = GuestMemory.allocate(0, 0xA0000);
             GuestMemory high = GuestMemory.allocate(0x100000, 0x7F00000)) {
            VfioUserClient qemu = fixture.client(ClientOptions.DEFAULT.withoutNegotiation());
            // 2. VERSION with QEMU's own JSON; the reply fits the 214-byte request buffer.
            int id = qemu.nextId();
            VfioUserMessage version = qemu.sendRaw(NegotiationTest.version(id, 0, 0, NegotiationTest.QEMU_JSON),
                    FdSet.EMPTY, id).get(20, TimeUnit.SECONDS);
            assertThat(version.header().isError()).isFalse();
            assertThat(version.header().messageSize()).isLessThanOrEqualTo(214);
            assertThat(version.payload(io.vfiouser.codec.payload.VersionPayload.class).json())
                    .contains("\"write_multiple\":true");
            version.release();

            // 3. DMA_MAP per RAM section, pipelined, fds attached; a read-only ROM section without fd.
            List<CompletableFuture<VfioUserMessage>> maps = new ArrayList<>();
            maps.add(qemu.send(VfioUserCommand.DMA_MAP, DmaMapRequest.of(3, 0, 0, 0xA0000), FdSet.of(low.dupFd())));
            maps.add(qemu.send(VfioUserCommand.DMA_MAP, DmaMapRequest.of(3, 0, 0x100000, 0x7F00000),
                    FdSet.of(high.dupFd())));
            maps.add(qemu.send(VfioUserCommand.DMA_MAP, DmaMapRequest.of(1, 0, 0xFFFC0000L, 0x40000)));
            for (CompletableFuture<VfioUserMessage> f : maps) {
                VfioUserMessage r = f.get(20, TimeUnit.SECONDS);
                assertThat(r.header().isError()).isFalse();
                assertThat(r.header().messageSize()).isLessThanOrEqualTo(48);
                r.release();
            }

            // 4. DEVICE_GET_INFO: PCI, RESET, 9 regions, 5 irqs, 16-byte payload (32 bytes in all).
            ok(qemu, VfioUserCommand.DEVICE_GET_INFO, DeviceInfo.request(), r -> {
                assertThat(r.header().messageSize()).isEqualTo(32);
                assertThat(r.payload(DeviceInfo.class).numRegions()).isEqualTo(9);
            });

            // 5. GET_REGION_INFO 0..5 with argsz 32, retried with the bigger argsz; then config space.
            for (int index : new int[] {0, 1, 2, 3, 4, 5, 7}) {
                regionInfo(qemu, index);
            }
            // 6. ERR irq info.
            ok(qemu, VfioUserCommand.DEVICE_GET_IRQ_INFO, IrqInfo.request(3),
                    r -> assertThat(r.payload(IrqInfo.class).count()).isEqualTo(1));

            // 7. The whole config space, ROM sizing, BAR type reads.
            int configSize = description.configSpaceSize();
            ok(qemu, VfioUserCommand.REGION_READ, RegionAccess.inRegion(7).atOffset(0).count(configSize),
                    r -> assertThat(r.header().messageSize()).isEqualTo(32 + configSize));
            int rom = readConfig(qemu, 0x30, 4);
            writeConfig(qemu, 0x30, 4, 0xFFFFF800);
            readConfig(qemu, 0x30, 4);
            writeConfig(qemu, 0x30, 4, rom);
            for (int bar = 0; bar < 6; bar++) {
                if (description.region(bar).isPresent()) {
                    readConfig(qemu, 0x10 + 4 * bar, 4);
                }
            }
            // 8. MSI-X capability registers and its irq info.
            if (description.msixCapability().isPresent()) {
                int cap = DmaAndInterruptsTest.findCapability(qemu, 0x11);
                readConfig(qemu, cap + 2, 2);
                readConfig(qemu, cap + 4, 4);
                readConfig(qemu, cap + 8, 4);
                ok(qemu, VfioUserCommand.DEVICE_GET_IRQ_INFO, IrqInfo.request(2),
                        r -> assertThat(r.payload(IrqInfo.class).count()).isEqualTo(4));
            }
            // 10. Interrupt pin, INTx enable when the pin is set; 11. ERR notifier.
            int pin = readConfig(qemu, 0x3D, 1);
            assertThat(pin).isEqualTo(description.irqCount(io.vfiouser.device.IrqType.INTX) > 0 ? 1 : 0);
            if (pin != 0) {
                setIrqEventfd(qemu, 0);
            }
            setIrqEventfd(qemu, 3);

            // The guest enables the device: BARs and command register, as Linux does.
            writeConfig(qemu, 0x10 + 4 * 2, 4, 0xFFFFFFFF);
            readConfig(qemu, 0x10 + 4 * 2, 4);
            writeConfig(qemu, 0x10 + 4 * 2, 4, 0xFE000000);
            writeConfig(qemu, 0x04, 2, 0x0006);

            // 5.7 machine reset: disable interrupts, clear the command register, DEVICE_RESET, INTx again, BARs 0.
            if (pin != 0) {
                assertThat(errno(qemu, VfioUserCommand.DEVICE_SET_IRQS,
                        SetIrqs.of(SetIrqs.ACTION_MASK | SetIrqs.DATA_NONE, 0, 0, 1))).isZero();
                assertThat(errno(qemu, VfioUserCommand.DEVICE_SET_IRQS,
                        SetIrqs.of(SetIrqs.ACTION_TRIGGER | SetIrqs.DATA_NONE, 0, 0, 0))).isZero();
            }
            int command = readConfig(qemu, 0x04, 2);
            writeConfig(qemu, 0x04, 2, command & ~0x0407);
            VfioUserMessage reset = Wire.send(qemu, VfioUserCommand.DEVICE_RESET, null);
            assertThat(reset.header().isError()).isFalse();
            assertThat(reset.header().messageSize()).isEqualTo(16);
            reset.release();
            if (pin != 0) {
                setIrqEventfd(qemu, 0);
            }
            for (int bar = 0; bar < 6; bar++) {
                writeConfig(qemu, 0x10 + 4 * bar, 4, 0);
            }

            // 5.11 hot-unplug: ERR off (no fd), interrupts off, unmap every section, then EOF.
            assertThat(errno(qemu, VfioUserCommand.DEVICE_SET_IRQS,
                    SetIrqs.of(SetIrqs.ACTION_TRIGGER | SetIrqs.DATA_EVENTFD, 3, 0, 1))).isZero();
            assertThat(errno(qemu, VfioUserCommand.DEVICE_SET_IRQS,
                    SetIrqs.of(SetIrqs.ACTION_TRIGGER | SetIrqs.DATA_NONE, pin != 0 ? 0 : 2, 0, 0))).isZero();
            assertThat(errno(qemu, VfioUserCommand.DMA_UNMAP, DmaUnmapRequest.of(0, 0, 0xA0000))).isZero();
            assertThat(errno(qemu, VfioUserCommand.DMA_UNMAP, DmaUnmapRequest.of(0, 0x100000, 0x7F00000))).isZero();
            assertThat(errno(qemu, VfioUserCommand.DMA_UNMAP, DmaUnmapRequest.of(0, 0xFFFC0000L, 0x40000))).isZero();
            assertThat(qemu.unexpectedMessages()).isEmpty();
            qemu.close();
        }
    }

    private static void regionInfo(VfioUserClient qemu, int index) throws Exception {
        VfioUserMessage first = Wire.send(qemu, VfioUserCommand.DEVICE_GET_REGION_INFO, RegionInfoRequest.of(index));
        int argsz;
        try {
            assertThat(first.header().isError()).isFalse();
            // QEMU's buffer is argsz + 16: the payload must not exceed the argsz it sent.
            assertThat(first.header().messageSize()).isLessThanOrEqualTo(32 + 16);
            argsz = (int) first.payload(RegionInfo.class).argsz();
        } finally {
            first.release();
        }
        if (argsz > 32) {
            VfioUserMessage again = Wire.send(qemu, VfioUserCommand.DEVICE_GET_REGION_INFO,
                    new RegionInfoRequest(argsz, index));
            try {
                assertThat(again.header().messageSize()).isLessThanOrEqualTo(argsz + 16);
                assertThat(again.payload(RegionInfo.class).flags() & RegionInfo.FLAG_CAPS).isNotZero();
                assertThat(again.fds().size()).isEqualTo(1);
            } finally {
                again.release();
            }
        }
    }

    private static void setIrqEventfd(VfioUserClient qemu, int index) throws Exception {
        int fd = Linux.eventfd(0, Linux.EFD_NONBLOCK);
        assertThat(errno(qemu, VfioUserCommand.DEVICE_SET_IRQS,
                SetIrqs.of(SetIrqs.ACTION_TRIGGER | SetIrqs.DATA_EVENTFD, index, 0, 1), FdSet.of(fd))).isZero();
    }

    static int readConfig(VfioUserClient qemu, int offset, int size) throws Exception {
        int[] value = new int[1];
        ok(qemu, VfioUserCommand.REGION_READ, RegionAccess.inRegion(7).atOffset(offset).count(size), r -> {
            ByteBuf d = r.payload(RegionAccess.class).data();
            int v = 0;
            for (int i = 0; i < size; i++) {
                v |= (d.getByte(d.readerIndex() + i) & 0xFF) << (8 * i);
            }
            value[0] = v;
        });
        return value[0];
    }

    static void writeConfig(VfioUserClient qemu, int offset, int size, int value) throws Exception {
        ByteBuf data = Unpooled.directBuffer(size);
        for (int i = 0; i < size; i++) {
            data.writeByte(value >>> (8 * i));
        }
        assertThat(errno(qemu, VfioUserCommand.REGION_WRITE, RegionAccess.inRegion(7).atOffset(offset).data(data)))
                .as("config write of 0x%x at 0x%x", value, offset).isZero();
    }
}
