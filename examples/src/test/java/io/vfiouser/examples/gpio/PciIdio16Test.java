package io.vfiouser.examples.gpio;

import static org.assertj.core.api.Assertions.assertThat;

import io.vfiouser.device.DeviceDescription;
import io.vfiouser.device.IrqType;
import io.vfiouser.device.Region;
import io.vfiouser.device.ResetReason;
import io.vfiouser.examples.FakeDeviceContext;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

class PciIdio16Test {
    private PciIdio16 device;
    private FakeDeviceContext context;
    private LinuxIdio16Driver driver;

    @BeforeEach
    void setUp() {
        device = new PciIdio16();
        context = new FakeDeviceContext("gpio").enable(IrqType.INTX, 1);
        device.attached(context);
        driver = new LinuxIdio16Driver(device);
    }

    @Test
    void descriptionIsTheCardTheDriverBindsTo() {
        DeviceDescription d = PciIdio16.description("gpio");

        assertThat(d.name()).isEqualTo("gpio");
        assertThat(d.identity().vendorId()).isEqualTo(0x494f);
        assertThat(d.identity().deviceId()).isEqualTo(0x0dc8);
        assertThat(d.identity().classCode()).isEqualTo(0xff0000);
        assertThat(d.regions()).hasSize(1);
        Region bar2 = d.region(2).orElseThrow();
        assertThat(bar2.size()).isEqualTo(16);
        assertThat(bar2.io()).isFalse();
        assertThat(bar2.bits64()).isFalse();
        assertThat(bar2.memoryBacked()).isFalse();
        assertThat(bar2.readable()).isTrue();
        assertThat(bar2.writable()).isTrue();
        assertThat(d.irqCount(IrqType.INTX)).isEqualTo(1);
        assertThat(d.irqCount(IrqType.MSI)).isZero();
        assertThat(d.irqCount(IrqType.MSIX)).isZero();
        assertThat(d.isExpress()).isFalse();
        assertThat(d.resetSupported()).isTrue();
    }

    @Test
    void probeDisablesTheInterruptAndDeactivatesFilters() {
        driver.read8(PciIdio16.FILTER_CTL);   // filters on, as firmware might have left them
        driver.clearTrace();

        driver.probe();

        assertThat(driver.trace()).containsExactly("w2=00", "w2=00", "w3=00");
        assertThat(device.irqEnabled()).isFalse();
        assertThat(device.filtersActive()).isFalse();
        assertThat(device.interruptStatus()).isZero();
        assertThat(context.events()).isEmpty();
    }

    @Test
    void outputsAreWiredBackToInputs() {
        driver.probe();

        driver.set(3, true);
        driver.set(12, true);
        driver.set(15, true);

        assertThat(device.outputs()).isEqualTo(0x9008);
        assertThat(driver.get(3)).isTrue();
        assertThat(driver.get(16 + 3)).isTrue();
        assertThat(driver.get(16 + 4)).isFalse();
        assertThat(driver.get(16 + 12)).isTrue();
        assertThat(driver.get(16 + 15)).isTrue();
        assertThat(read(PciIdio16.OUT0_7, 1)).isEqualTo(0x08);
        assertThat(read(PciIdio16.OUT8_15, 1)).isEqualTo(0x90);
        assertThat(read(PciIdio16.IN0_7, 1)).isEqualTo(0x08);
        assertThat(read(PciIdio16.IN8_15, 1)).isEqualTo(0x90);

        driver.set(3, false);

        assertThat(driver.get(16 + 3)).isFalse();
        assertThat(device.inputs()).isEqualTo(0x9000);
        assertThat(context.events()).as("interrupt stays disabled without gpiomon").isEmpty();
    }

    @Test
    void gpiosetAndGpiogetTouchOnlyTheDataRegisters() {
        driver.probe();
        driver.clearTrace();

        driver.set(9, true);
        boolean level = driver.get(16 + 9);

        assertThat(level).isTrue();
        assertThat(driver.trace()).containsExactly("w4=02", "r5=02");
    }

    @Test
    void inputEdgeWithInterruptEnabledRaisesIntxUntilTheDriverAcks() {
        driver.probe();
        driver.clearTrace();

        driver.requestEdges(0);

        assertThat(driver.trace()).containsExactly("w1=00", "r2=00");
        assertThat(device.irqEnabled()).isTrue();
        assertThat(context.events()).isEmpty();

        driver.set(0, true);                                  // rising edge on IIN0

        assertThat(context.events()).containsExactly("assert");
        assertThat(context.intx()).isTrue();
        assertThat(device.interruptStatus())
                .isEqualTo(PciIdio16.STATUS_IRQ | PciIdio16.STATUS_INPUTS_0_7);

        driver.clearTrace();
        int levels = driver.irqThread();

        assertThat(levels).isEqualTo(0x0001);                  // gpiomon reads IIN0 high: rising
        assertThat(driver.trace()).containsExactly("r6=05", "w1=05", "r1=01");
        assertThat(context.events()).containsExactly("assert", "deassert");
        assertThat(context.intx()).isFalse();
        assertThat(device.interruptStatus()).isZero();

        context.clearEvents();
        driver.set(0, false);                                 // falling edge

        assertThat(context.events()).containsExactly("assert");
        assertThat(driver.irqThread()).isZero();               // IIN0 low: falling
        assertThat(context.events()).containsExactly("assert", "deassert");
    }

    @Test
    void edgesInBothGroupsLatchBothGroupBitsAndOneInterrupt() {
        driver.probe();
        driver.requestEdges(1);
        driver.requestEdges(9);

        driver.set(1, true);
        driver.set(9, true);

        assertThat(context.events()).containsExactly("assert");
        int status = read(PciIdio16.IRQ_STATUS, 1);
        assertThat(status).isEqualTo(0x07);
        // the pre-regmap driver's check: one of bits 0-1 and bit 2
        assertThat((status & 0x3) != 0 && (status & 0x4) != 0).isTrue();
        assertThat(driver.irqThread()).isEqualTo((1 << 1) | (1 << 9));
        assertThat(context.intx()).isFalse();
    }

    @Test
    void noInterruptWhileTheDriverHasNotEnabledIt() {
        driver.probe();

        driver.set(5, true);
        driver.set(13, true);

        assertThat(context.events()).isEmpty();
        assertThat(device.interruptStatus()).isZero();
        assertThat(device.intxAsserted()).isFalse();
        assertThat(driver.irqThread()).as("a shared-line poll finds nothing").isEqualTo(-1);
    }

    @Test
    void releasingTheLastEdgeRequestDisablesTheInterrupt() {
        driver.probe();
        driver.requestEdges(2);
        driver.clearTrace();

        driver.releaseEdges(2);
        driver.set(2, true);

        assertThat(driver.trace()).containsExactly("w2=00", "w0=04");
        assertThat(device.irqEnabled()).isFalse();
        assertThat(context.events()).isEmpty();
    }

    @Test
    void disablingDeassertsButKeepsTheLatchUntilCleared() {
        driver.probe();
        driver.requestEdges(0);
        driver.set(0, true);
        assertThat(context.intx()).isTrue();

        driver.releaseEdges(0);                    // write 2: disable

        assertThat(context.events()).containsExactly("assert", "deassert");
        assertThat(device.interruptStatus()).isEqualTo(0x05);

        context.clearEvents();
        driver.requestEdges(0);                    // clear (write 1), then enable (read 2)

        assertThat(context.events()).isEmpty();
        assertThat(device.interruptStatus()).isZero();
        assertThat(device.irqEnabled()).isTrue();
    }

    @Test
    void wideAccessesActAsTheByteAccessesTheyCover() {
        driver.probe();
        driver.set(0, true);
        driver.set(8, true);

        // a 4-byte read at 0 covers outputs, inputs, "enable IRQ" and "activate filters"
        assertThat(read(0, 4)).isEqualTo(0x00000101);
        assertThat(device.irqEnabled()).isTrue();
        assertThat(device.filtersActive()).isTrue();

        write(0, 8, 0x0000_0033_0000_00a5L);   // outputs 0-7 = a5, clear, disable, filters off, outputs 8-15 = 33
        assertThat(device.outputs()).isEqualTo(0x33a5);
        assertThat(device.irqEnabled()).isFalse();
        assertThat(device.filtersActive()).isFalse();
        assertThat(read(8, 8)).as("bytes 8-15 decode nothing").isZero();
    }

    @Test
    void readOnlyRegistersIgnoreWritesAndFilterControlIsKept() {
        write(PciIdio16.IN8_15, 1, 0xff);
        write(PciIdio16.IRQ_STATUS, 1, 0xff);
        write(PciIdio16.FILTER_0_7, 1, 0x5a);

        assertThat(device.outputs()).isZero();
        assertThat(device.interruptStatus()).isZero();
        assertThat(read(PciIdio16.FILTER_0_7, 1)).isEqualTo(0x5a);
        read(PciIdio16.FILTER_CTL, 1);
        assertThat(read(PciIdio16.FILTER_0_7, 1)).isEqualTo(0xff);
        write(12, 4, 0xffff_ffffL);
        assertThat(read(12, 4)).isZero();
    }

    @Test
    void otherRegionsReadZero() {
        ByteBuffer b = ByteBuffer.allocate(4);
        device.regionRead(0, 0, b).join();
        device.regionWrite(1, 0, ByteBuffer.allocate(4)).join();

        assertThat(b.getInt(0)).isZero();
        assertThat(device.outputs()).isZero();
    }

    @Test
    void resetTurnsOutputsAndInterruptOff() {
        driver.probe();
        driver.requestEdges(0);
        driver.set(0, true);
        driver.read8(PciIdio16.FILTER_CTL);
        assertThat(context.intx()).isTrue();

        device.reset(ResetReason.CLIENT_REQUEST).join();

        assertThat(device.outputs()).isZero();
        assertThat(device.inputs()).isZero();
        assertThat(device.irqEnabled()).isFalse();
        assertThat(device.interruptStatus()).isZero();
        assertThat(device.filtersActive()).isFalse();
        assertThat(context.intx()).isFalse();
        assertThat(context.events()).containsExactly("assert", "deassert");

        write(PciIdio16.OUT0_7, 1, 0x10);                  // an edge after reset: the interrupt is off
        assertThat(device.inputs()).isEqualTo(0x0010);
        assertThat(context.events()).hasSize(2);
    }

    @Test
    void aLatchedInterruptIsRaisedAgainForTheNextClient() {
        driver.probe();
        driver.requestEdges(0);
        driver.set(0, true);
        device.detached();

        FakeDeviceContext next = new FakeDeviceContext("gpio").enable(IrqType.INTX, 1);
        device.attached(next);

        assertThat(next.events()).containsExactly("assert");
    }

    private int read(int offset, int size) {
        ByteBuffer b = ByteBuffer.allocate(size).order(ByteOrder.LITTLE_ENDIAN);
        device.regionRead(PciIdio16.BAR, offset, b).join();
        long v = 0;
        for (int i = 0; i < size; i++) {
            v |= (b.get(i) & 0xffL) << (8 * i);
        }
        return (int) v;
    }

    private void write(int offset, int size, long value) {
        ByteBuffer b = ByteBuffer.allocate(size).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < size; i++) {
            b.put((byte) (value >>> (8 * i)));
        }
        b.flip();
        device.regionWrite(PciIdio16.BAR, offset, b).join();
    }
}
