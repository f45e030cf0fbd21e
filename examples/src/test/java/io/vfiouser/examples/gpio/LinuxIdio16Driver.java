package io.vfiouser.examples.gpio;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;

/**
 * The BAR2 accesses Linux 6.12's gpio-pci-idio-16 driver (regmap-mmio, 8-bit registers, flat cache; regmap-irq
 * chip with status 6, mask 2, ack 1 and every input interrupt on status bit 2) makes, replayed against the device.
 * Output registers 0 and 4 are not readable in the driver's regmap, so their values come from the regmap cache.
 */
final class LinuxIdio16Driver {
    private static final int MASK_BIT = 0x04;

    private final PciIdio16 device;
    private final List<String> trace = new ArrayList<>();
    /** The regmap cache of the two output registers. */
    private int out0to7;
    private int out8to15;
    /** regmap-irq's mask buffer: bit 2 set = all input interrupts masked. */
    private int maskBuf = MASK_BIT;
    /** idio_16_handle_mask_sync's remembered mask (starts at 0: kzalloc). */
    private int syncedMask;
    /** Input lines (0-15 = IIN0-15) with an edge request. */
    private int requested;

    LinuxIdio16Driver(PciIdio16 device) {
        this.device = device;
    }

    /** Every register access so far, "r6=05" / "w1=04". */
    List<String> trace() {
        return List.copyOf(trace);
    }

    void clearTrace() {
        trace.clear();
    }

    int read8(int offset) {
        ByteBuffer b = ByteBuffer.allocate(1);
        device.regionRead(PciIdio16.BAR, offset, b).join();
        int v = b.get(0) & 0xff;
        trace.add(String.format("r%d=%02x", offset, v));
        return v;
    }

    void write8(int offset, int value) {
        ByteBuffer b = ByteBuffer.allocate(1).order(ByteOrder.LITTLE_ENDIAN);
        b.put(0, (byte) value);
        device.regionWrite(PciIdio16.BAR, offset, b).join();
        trace.add(String.format("w%d=%02x", offset, value & 0xff));
    }

    /** idio_16_probe → devm_idio_16_regmap_register. */
    void probe() {
        write8(PciIdio16.IRQ_CTL, 0);        // disable IRQ before the chip is registered
        maskSync();                          // regmap_add_irq_chip: all masked → write 0 to 2
        write8(PciIdio16.FILTER_CTL, 0);     // deactivate input filters
    }

    /** regmap-irq's bus_sync_unlock → idio_16_handle_mask_sync. */
    private void maskSync() {
        if (maskBuf == syncedMask) {
            return;
        }
        int prev = syncedMask;
        syncedMask = maskBuf;
        if (prev == MASK_BIT) {
            write8(PciIdio16.CLEAR_INTERRUPT, 0);
            read8(PciIdio16.IRQ_CTL);
        } else if (maskBuf == MASK_BIT) {
            write8(PciIdio16.IRQ_CTL, 0);
        }
    }

    /** gpio_regmap_set on OUT0-15 (regmap_write_bits: read from the cache, then write the whole byte). */
    void set(int line, boolean high) {
        if (line < 8) {
            out0to7 = high ? out0to7 | (1 << line) : out0to7 & ~(1 << line);
            write8(PciIdio16.OUT0_7, out0to7);
        } else {
            out8to15 = high ? out8to15 | (1 << (line - 8)) : out8to15 & ~(1 << (line - 8));
            write8(PciIdio16.OUT8_15, out8to15);
        }
    }

    /** gpio_regmap_get on gpio 0-31 (OUT0-15 from the cache, IIN0-15 from registers 1 and 5). */
    boolean get(int gpio) {
        if (gpio < 8) {
            return (out0to7 & (1 << gpio)) != 0;
        } else if (gpio < 16) {
            return (out8to15 & (1 << (gpio - 8))) != 0;
        } else if (gpio < 24) {
            return (read8(PciIdio16.IN0_7) & (1 << (gpio - 16))) != 0;
        }
        return (read8(PciIdio16.IN8_15) & (1 << (gpio - 24))) != 0;
    }

    /** gpiomon on IIN{input}: the line's irq is enabled (regmap_irq_enable + sync). */
    void requestEdges(int input) {
        requested |= 1 << input;
        maskBuf = 0;
        maskSync();
    }

    /** The edge request on IIN{input} is released (regmap_irq_disable + sync; the shared bit masks all). */
    void releaseEdges(int input) {
        requested &= ~(1 << input);
        maskBuf = MASK_BIT;
        maskSync();
    }

    /**
     * regmap_irq_thread: reads status, acks what is unmasked, then each requested line's edge handler reads its
     * level. Returns the levels reported per requested input (bit n = IIN n high), or -1 for IRQ_NONE.
     */
    int irqThread() {
        int status = read8(PciIdio16.IRQ_STATUS);
        status &= ~maskBuf;
        if (status != 0) {
            write8(PciIdio16.CLEAR_INTERRUPT, status);
        }
        if ((status & MASK_BIT) == 0) {
            return -1;
        }
        int levels = 0;
        for (int input = 0; input < 16; input++) {
            if ((requested & (1 << input)) != 0 && get(16 + input)) {
                levels |= 1 << input;
            }
        }
        return levels;
    }
}
