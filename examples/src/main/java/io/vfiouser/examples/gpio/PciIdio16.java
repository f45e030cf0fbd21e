package io.vfiouser.examples.gpio;

import io.vfiouser.device.DeviceContext;
import io.vfiouser.device.DeviceDescription;
import io.vfiouser.device.Region;
import io.vfiouser.device.ResetReason;
import io.vfiouser.device.VfioUserDevice;
import io.vfiouser.device.pci.PciIdentity;
import java.nio.ByteBuffer;
import java.util.concurrent.CompletableFuture;

/**
 * An ACCES PCI-IDIO-16 isolated digital I/O card (16 FET outputs, 16 isolated inputs, change-of-state interrupt),
 * as the Linux {@code gpio-pci-idio-16} driver (with the {@code gpio-idio-16} regmap library) drives it. On this
 * card the 16 outputs are wired back to the 16 inputs: input <i>n</i> reads what output <i>n</i> was last set to, so
 * setting an output is a change of state on an input.
 *
 * <h2>Resources</h2>
 * PCI id 494f:0dc8 (the driver's id table), class 0xff0000 (a class code of 0 makes Linux drop a hot-added
 * device), legacy INTx (pin INTA), no MSI or MSI-X. The registers are in BAR2, the only BAR the driver maps
 * ({@code pcim_iomap_regions(pdev, BIT(2), ...)}). On the real card BAR2 is an 8-byte I/O window behind a PLX
 * PCI9050 bridge; the driver reaches it through an iomap cookie with {@code ioread8}/{@code iowrite8} (regmap-mmio
 * with {@code io_port = true}), which works for I/O and memory BARs alike, so here BAR2 is a memory BAR of
 * {@value #BAR2_SIZE} bytes, the smallest a memory BAR can be: bytes 0-7 are the card's registers, 8-15 read 0
 * and ignore writes. The PLX bridge's own registers (BAR0/BAR1 on the real card, among them INTCSR) are not
 * modelled: the driver never maps or touches them, so the card's interrupt is gated only by its own enable.
 *
 * <h2>BAR2 registers (8-bit)</h2>
 * <table>
 * <caption>Register file</caption>
 * <tr><th>Offset</th><th>Read</th><th>Write</th></tr>
 * <tr><td>0</td><td>FET outputs 0-7</td><td>FET outputs 0-7</td></tr>
 * <tr><td>1</td><td>isolated inputs 0-7</td><td>clear interrupt (any value)</td></tr>
 * <tr><td>2</td><td>enable IRQ (reads 0)</td><td>disable IRQ (any value)</td></tr>
 * <tr><td>3</td><td>activate input filters 0-15 (reads 0)</td><td>deactivate input filters 0-15</td></tr>
 * <tr><td>4</td><td>FET outputs 8-15</td><td>FET outputs 8-15</td></tr>
 * <tr><td>5</td><td>isolated inputs 8-15</td><td>ignored</td></tr>
 * <tr><td>6</td><td>interrupt status</td><td>ignored</td></tr>
 * <tr><td>7</td><td>input filter status 0-7</td><td>input filter control 0-7</td></tr>
 * </table>
 * Wider accesses (QEMU may issue 2, 4 or 8 bytes) act as the byte accesses they cover, in increasing address
 * order, side effects included (as an 8-bit local bus behind the PCI bridge would).
 *
 * <h2>Interrupts</h2>
 * While the IRQ is enabled, a change of state on any input latches the interrupt: the status register (offset 6)
 * then reads {@link #STATUS_IRQ} (bit 2) plus {@link #STATUS_INPUTS_0_7} (bit 0) and/or
 * {@link #STATUS_INPUTS_8_15} (bit 1) for the group(s) that changed. INTx is asserted while the latch is set and
 * the IRQ is enabled. A write to offset 1 clears the latch and deasserts INTx; disabling the IRQ (write to 2)
 * deasserts INTx but keeps the latch; enabling it (read of 2) does not clear it. Changes while the IRQ is disabled
 * are not latched. The input filters are kept as state only: the wired-back inputs never bounce.
 *
 * <p>This is what the driver expects: it registers a regmap-irq chip with status register 6, mask ("enable")
 * register 2, ack register 1 and all 16 input interrupts on status bit 2; its mask-sync callback writes 0 to 2 when
 * every line is masked and, when the first line is unmasked, writes 0 to 1 and then reads 2. Its threaded handler
 * reads 6 and, when bit 2 is set, writes the status back to 1 before dispatching, so {@code gpiomon} sees every
 * edge. The driver before the regmap conversion (Linux 6.3 and older) instead required one of bits 0-1 together
 * with bit 2, hence the group bits.
 *
 * <p>Register and interrupt semantics are taken from Linux 6.12's {@code drivers/gpio/gpio-pci-idio-16.c}
 * ({@code idio_16_probe}, the regmap access tables), {@code drivers/gpio/gpio-idio-16.c}
 * ({@code devm_idio_16_regmap_register}, {@code idio_16_handle_mask_sync}, {@code idio_16_reg_mask_xlate}) and the
 * register layout documented in {@code drivers/gpio/gpio-idio-16.h}, with offset 7 from the card's manual.
 */
public final class PciIdio16 implements VfioUserDevice {
    /** FET drive outputs 0-7 (read/write). */
    public static final int OUT0_7 = 0;
    /** Read: isolated inputs 0-7; write: clear interrupt. */
    public static final int IN0_7 = 1;
    /** Write: clear interrupt (same offset as {@link #IN0_7}). */
    public static final int CLEAR_INTERRUPT = 1;
    /** Read: enable IRQ; write: disable IRQ. */
    public static final int IRQ_CTL = 2;
    /** Read: activate input filters 0-15; write: deactivate them. */
    public static final int FILTER_CTL = 3;
    /** FET drive outputs 8-15 (read/write). */
    public static final int OUT8_15 = 4;
    /** Read: isolated inputs 8-15. */
    public static final int IN8_15 = 5;
    /** Read: interrupt status. */
    public static final int IRQ_STATUS = 6;
    /** Read: input filter status 0-7; write: input filter control 0-7. */
    public static final int FILTER_0_7 = 7;

    /** Status bit: a change on inputs 0-7 was latched. */
    public static final int STATUS_INPUTS_0_7 = 0x01;
    /** Status bit: a change on inputs 8-15 was latched. */
    public static final int STATUS_INPUTS_8_15 = 0x02;
    /** Status bit: the card's interrupt is latched (the bit the driver's regmap-irq chip tests). */
    public static final int STATUS_IRQ = 0x04;

    /** The BAR holding the registers. */
    public static final int BAR = 2;
    /** BAR2's size: the smallest memory BAR; the card decodes the first 8 bytes. */
    public static final int BAR2_SIZE = 16;
    /** PCI vendor id of ACCES I/O Products. */
    public static final int VENDOR_ID = 0x494f;
    /** PCI device id of the PCI-IDIO-16. */
    public static final int DEVICE_ID = 0x0dc8;
    /** Class code "unassigned" (0xff0000). */
    public static final int CLASS_CODE = 0xff0000;

    private static final int REGISTERS = 8;

    private DeviceContext context;
    /** The FET outputs, bit n = output n; the inputs read the same bits. */
    private int outputs;
    private boolean irqEnabled;
    /** The latched status bits ({@code STATUS_*}), 0 when no interrupt is latched. */
    private int status;
    private boolean filtersActive;
    private int filters0to7;
    /** The INTx level last reported to the context. */
    private boolean reportedIntx;

    /** The description of a PCI-IDIO-16 named {@code name}. */
    public static DeviceDescription description(String name) {
        return DeviceDescription.builder(name, PciIdentity.of(VENDOR_ID, DEVICE_ID, CLASS_CODE))
                .region(Region.bar(BAR, BAR2_SIZE).build())
                .intx()
                .build();
    }

    @Override
    public synchronized CompletableFuture<Void> regionRead(int region, long offset, ByteBuffer dst) {
        while (dst.hasRemaining()) {
            dst.put((byte) (region == BAR ? readRegister(offset) : 0));
            offset++;
        }
        return DONE;
    }

    @Override
    public synchronized CompletableFuture<Void> regionWrite(int region, long offset, ByteBuffer src) {
        while (src.hasRemaining()) {
            int value = src.get() & 0xff;
            if (region == BAR) {
                writeRegister(offset, value);
            }
            offset++;
        }
        return DONE;
    }

    private int readRegister(long offset) {
        if (offset < 0 || offset >= REGISTERS) {
            return 0;
        }
        return switch ((int) offset) {
            case OUT0_7, IN0_7 -> outputs & 0xff;
            case OUT8_15, IN8_15 -> outputs >>> 8;
            case IRQ_CTL -> {
                irqEnabled = true;
                updateIntx();
                yield 0;
            }
            case FILTER_CTL -> {
                filtersActive = true;
                yield 0;
            }
            case IRQ_STATUS -> status;
            case FILTER_0_7 -> filtersActive ? 0xff : filters0to7;
            default -> throw new IllegalStateException("offset " + offset);
        };
    }

    private void writeRegister(long offset, int value) {
        if (offset < 0 || offset >= REGISTERS) {
            return;
        }
        switch ((int) offset) {
            case OUT0_7 -> setOutputs((outputs & 0xff00) | value);
            case CLEAR_INTERRUPT -> {
                status = 0;
                updateIntx();
            }
            case IRQ_CTL -> {
                irqEnabled = false;
                updateIntx();
            }
            case FILTER_CTL -> filtersActive = false;
            case OUT8_15 -> setOutputs((outputs & 0x00ff) | (value << 8));
            case FILTER_0_7 -> filters0to7 = value;
            case IN8_15, IRQ_STATUS -> {
                // read-only registers: the card ignores writes
            }
            default -> throw new IllegalStateException("offset " + offset);
        }
    }

    /** Drives the outputs, and so the wired-back inputs; a change while the IRQ is enabled latches it. */
    private void setOutputs(int newOutputs) {
        int changed = outputs ^ newOutputs;
        outputs = newOutputs;
        if (changed != 0 && irqEnabled) {
            status |= STATUS_IRQ;
            if ((changed & 0x00ff) != 0) {
                status |= STATUS_INPUTS_0_7;
            }
            if ((changed & 0xff00) != 0) {
                status |= STATUS_INPUTS_8_15;
            }
            updateIntx();
        }
    }

    /** Reports the INTx level (latched and enabled) to the client when it changed. */
    private void updateIntx() {
        boolean level = irqEnabled && (status & STATUS_IRQ) != 0;
        if (level == reportedIntx) {
            return;
        }
        reportedIntx = level;
        if (context != null) {
            if (level) {
                context.interrupts().assertIntx();
            } else {
                context.interrupts().deassertIntx();
            }
        }
    }

    @Override
    public synchronized void attached(DeviceContext context) {
        this.context = context;
        reportedIntx = false;
        updateIntx();
    }

    @Override
    public synchronized void detached() {
        context = null;
        reportedIntx = false;
    }

    /** Power-on state: outputs (and so inputs) low, IRQ disabled and nothing latched, filters off. */
    @Override
    public synchronized CompletableFuture<Void> reset(ResetReason reason) {
        outputs = 0;
        irqEnabled = false;
        status = 0;
        filtersActive = false;
        filters0to7 = 0;
        updateIntx();
        return DONE;
    }

    /** The 16 outputs, bit n = output n. */
    public synchronized int outputs() {
        return outputs;
    }

    /** The 16 isolated inputs, bit n = input n (wired to the outputs). */
    public synchronized int inputs() {
        return outputs;
    }

    /** Whether the driver enabled the card's interrupt. */
    public synchronized boolean irqEnabled() {
        return irqEnabled;
    }

    /** The interrupt status register as the driver would read it. */
    public synchronized int interruptStatus() {
        return status;
    }

    /** Whether the card currently drives INTx. */
    public synchronized boolean intxAsserted() {
        return irqEnabled && (status & STATUS_IRQ) != 0;
    }

    /** Whether the input filters were activated for all inputs (read of offset 3). */
    public synchronized boolean filtersActive() {
        return filtersActive;
    }
}
