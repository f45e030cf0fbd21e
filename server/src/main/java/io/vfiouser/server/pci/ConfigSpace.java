package io.vfiouser.server.pci;

import static io.vfiouser.server.pci.PciRegisters.EXTENDED_START;
import static io.vfiouser.server.pci.PciRegisters.HEADER_SIZE;

import io.vfiouser.codec.VfioUserProtocolException;
import io.vfiouser.device.DeviceDescription;
import io.vfiouser.device.pci.Capability;
import io.vfiouser.device.pci.ExtendedCapability;
import io.vfiouser.device.pci.MsiCapability;
import io.vfiouser.device.pci.MsixCapability;
import io.vfiouser.device.pci.PciExpressCapability;
import io.vfiouser.device.pci.PowerManagementCapability;
import io.vfiouser.device.pci.SerialNumberCapability;
import io.vfiouser.device.pci.VendorCapability;
import io.vfiouser.device.pci.VendorExtendedCapability;
import io.vfiouser.transport.linux.Errno;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * The emulated PCI configuration space (region index 7) of one device: 256 bytes, or 4096 for a PCI Express
 * device. Built from the {@link DeviceDescription}; used from one thread at a time (the device's event loop).
 *
 * <h2>Layout</h2>
 * <pre>
 * 0x000 type 0 header ({@code StandardHeader}): ids from the PciIdentity, header type 0, Status bit 4 and
 *       Capabilities Pointer 0x40 iff there are capabilities, BAR type bits from the regions,
 *       Interrupt Pin 1 (INTA) iff the device has INTx
 * 0x040 standard capabilities in description order, each at the next multiple of 4, chained by their next
 *       pointers (last 0): PM ({@code PowerManagementRegisters}), MSI ({@code MsiRegisters}),
 *       MSI-X ({@code MsixRegisters}), PCIe ({@code ExpressRegisters}), vendor ({@code VendorRegisters})
 * 0x100 (4096-byte spaces) extended capabilities the same way,
 *       header dword id | version &lt;&lt; 16 | next &lt;&lt; 20:
 *       DSN ({@code SerialNumberRegisters}), vendor-specific ({@code VendorExtendedRegisters}); with none,
 *       0x100 reads a zero dword
 * </pre>
 * Bytes that belong to no register (padding, space after the lists) read 0 and ignore writes.
 *
 * <h2>Reads</h2>
 * Any offset and length inside the space, served from the image, little-endian.
 *
 * <h2>Writes</h2>
 * QEMU forwards every guest configuration write, including those to registers it emulates itself (BARs, ROM
 * sizing, MSI and MSI-X), and only logs failures; so the model is forgiving: writes to read-only registers and
 * bits are ignored, and a write fails only where libvfio-user's conformance cases name an errno for something
 * QEMU itself never sends. A failing write changes nothing. The rules:
 * <table>
 *   <caption>Write rules</caption>
 *   <tr><th>Target</th><th>Behaviour</th></tr>
 *   <tr><td>outside the space (or negative offset)</td><td>EINVAL</td></tr>
 *   <tr><td>header: starts mid-register and runs past its end</td><td>EINVAL</td></tr>
 *   <tr><td>header: ids, class, revision, header type, BIST, CIS, cap pointer, pin, reserved</td>
 *       <td>ignored</td></tr>
 *   <tr><td>Command</td><td>IO, MEM, MASTER, MWI, VGA snoop, parity, SERR, INTx disable stored; others ignored;
 *       {@link Listener#commandChanged} on change</td></tr>
 *   <tr><td>Status</td><td>error bits 8, 11..15 RW1C, others ignored</td></tr>
 *   <tr><td>Cache Line Size, Latency Timer, Interrupt Line</td><td>stored</td></tr>
 *   <tr><td>BAR</td><td>written &amp; ~(size-1) | type bits; 64-bit upper dword masked by the upper half of
 *       ~(size-1); unused: ignored</td></tr>
 *   <tr><td>ROM</td><td>with a ROM region: address bits &amp; ~(size-1) and enable bit; else ignored</td></tr>
 *   <tr><td>any capability: only its header bytes (id, next; vendor: + length; extended: header dword;
 *       VSEC: + VSEC header)</td><td>EPERM (wider writes ignore the header bytes)</td></tr>
 *   <tr><td>PM: not touching PMCSR (PMC, BSE, Data)</td><td>ENOTSUP</td></tr>
 *   <tr><td>PM PMCSR</td><td>power state stored (unsupported D1/D2 ignored), PME_En if PME is supported</td></tr>
 *   <tr><td>MSI control with MME &gt; MMC</td><td>EINVAL</td></tr>
 *   <tr><td>MSI</td><td>enable, MME, address (bits 31:2), upper address, data, mask bits of existing vectors
 *       stored; {@link Listener#msiControlChanged}, {@link Listener#msiMaskChanged} on change</td></tr>
 *   <tr><td>MSI-X</td><td>Enable, Function Mask stored, rest ignored; {@link Listener#msixControlChanged} on
 *       change</td></tr>
 *   <tr><td>PCIe: partial write of DevCtl, LnkCtl, DevCtl2, LnkCtl2 (a wider write covering one entirely is
 *       fine)</td><td>EINVAL</td></tr>
 *   <tr><td>PCIe DevCtl with Initiate FLR, FLR not advertised</td><td>EINVAL</td></tr>
 *   <tr><td>PCIe DevCtl with Initiate FLR, FLR advertised</td><td>stored (bit reads 0); {@link #write}
 *       returns true: the caller runs the FLR as part of that write's completion</td></tr>
 *   <tr><td>PCIe control registers / other registers</td><td>stored / ignored</td></tr>
 *   <tr><td>vendor capability data, VSEC data</td><td>stored</td></tr>
 *   <tr><td>DSN (any byte)</td><td>EPERM</td></tr>
 *   <tr><td>bytes of no register (padding, after the lists)</td><td>ignored</td></tr>
 * </table>
 *
 * <h2>Listener</h2>
 * Listener methods run on the caller's thread after the write took effect, and only for actual changes.
 * {@link #reset()} itself does not call the listener. The space lives as long as its device, across clients; the
 * listener is the attached client's connection, installed with {@link #listen} when it attaches and removed when it
 * leaves, so the space never keeps a connection that is gone.
 */
public final class ConfigSpace {
    /** What the rest of the server learns from configuration writes. All methods default to doing nothing. */
    public interface Listener {
        /** The Command register changed. */
        default void commandChanged(int oldValue, int newValue) {
        }

        /**
         * MSI was enabled or disabled, or the number of enabled vectors changed.
         *
         * @param enabledVectors 2^MME while enabled, 0 while disabled
         */
        default void msiControlChanged(boolean enabled, int enabledVectors) {
        }

        /** The MSI-X Enable or Function Mask bit changed. */
        default void msixControlChanged(boolean enabled, boolean functionMasked) {
        }

        /** The MSI Mask Bits changed. */
        default void msiMaskChanged(int mask) {
        }
    }

    private static final Listener NO_LISTENER = new Listener() {
    };

    /** The installed listener; the register classes all talk to {@link Forwarder}, which forwards to it. */
    private volatile Listener listener;
    private final ConfigImage image;
    private final StandardHeader header;
    private final CapabilityRegisters[] registers;
    private final List<CapabilityLayout> capabilities;
    private final List<CapabilityLayout> extendedCapabilities;
    private final PowerManagementRegisters pm;
    private final MsiRegisters msi;
    private final MsixRegisters msix;
    private final ExpressRegisters express;

    /**
     * @param listener told about configuration writes that matter to the rest of the server; null for none (see
     *                 {@link #listen})
     * @throws IllegalArgumentException if the description has an expansion ROM smaller than 2 KiB, which the ROM
     *                                  register cannot describe
     */
    public ConfigSpace(DeviceDescription description, Listener listener) {
        Objects.requireNonNull(description, "description");
        this.listener = listener == null ? NO_LISTENER : listener;
        Listener l = new Forwarder();
        this.image = new ConfigImage(description.configSpaceSize());
        this.header = new StandardHeader(description, image, l, !description.capabilities().isEmpty());

        List<CapabilityRegisters> all = new ArrayList<>();
        int offset = HEADER_SIZE;
        CapabilityRegisters previous = null;
        for (Capability c : description.capabilities()) {
            CapabilityLayout layout = new CapabilityLayout(c.id(), offset, c.size(), false);
            CapabilityRegisters r = switch (c) {
                case PowerManagementCapability pmc -> new PowerManagementRegisters(pmc, image, layout);
                case MsiCapability m -> new MsiRegisters(m, image, layout, l);
                case MsixCapability m -> new MsixRegisters(m, image, layout, l);
                case PciExpressCapability e -> new ExpressRegisters(e, image, layout);
                case VendorCapability v -> new VendorRegisters(v, image, layout);
            };
            image.set8(offset, c.id());
            if (previous != null) {
                image.set8(previous.offset() + 1, offset);
            }
            all.add(r);
            previous = r;
            offset = align4(offset + c.size());
        }
        int standardCount = all.size();
        if (description.configSpaceSize() > EXTENDED_START) {
            offset = EXTENDED_START;
            previous = null;
            for (ExtendedCapability c : description.extendedCapabilities()) {
                CapabilityLayout layout = new CapabilityLayout(c.id(), offset, c.size(), true);
                CapabilityRegisters r = switch (c) {
                    case SerialNumberCapability s -> new SerialNumberRegisters(s, image, layout);
                    case VendorExtendedCapability v -> new VendorExtendedRegisters(v, image, layout);
                };
                image.set32(offset, c.id() | c.version() << 16);
                if (previous != null) {
                    image.set32(previous.offset(), image.u32(previous.offset()) | offset << 20);
                }
                all.add(r);
                previous = r;
                offset = align4(offset + c.size());
            }
        }
        this.registers = all.toArray(CapabilityRegisters[]::new);
        this.capabilities = all.subList(0, standardCount).stream().map(CapabilityRegisters::layout).toList();
        this.extendedCapabilities = all.subList(standardCount, all.size()).stream()
                .map(CapabilityRegisters::layout).toList();
        this.pm = find(PowerManagementRegisters.class);
        this.msi = find(MsiRegisters.class);
        this.msix = find(MsixRegisters.class);
        this.express = find(ExpressRegisters.class);
        image.savePowerOn();
        sync();
    }

    /** The size of the space: 256, or 4096 for a PCI Express device. */
    public int size() {
        return image.size();
    }

    /**
     * Copies {@code dst.remaining()} bytes from {@code offset} into {@code dst}, advancing its position.
     *
     * @throws VfioUserProtocolException EINVAL if the range is not inside the space
     */
    public void read(int offset, ByteBuffer dst) {
        int length = dst.remaining();
        checkRange(offset, length);
        image.read(offset, dst, length);
    }

    /**
     * Writes {@code src.remaining()} bytes at {@code offset} under the write rules of the class description,
     * consuming {@code src}; tells the listener what changed. Returns whether the write set Initiate FLR (of a
     * function that advertises FLR): the caller then runs the reset as part of this write, before answering it.
     *
     * @throws VfioUserProtocolException EINVAL, EPERM or ENOTSUP where the rules refuse the write; nothing is
     *                                   changed then and {@code src} is not consumed
     */
    public boolean write(int offset, ByteBuffer src) {
        int length = src.remaining();
        checkRange(offset, length);
        if (length == 0) {
            return false;
        }
        int from = offset;
        int to = offset + length;
        int base = src.position() - offset;
        if (from < HEADER_SIZE) {
            header.check(from, Math.min(to, HEADER_SIZE));
        }
        for (CapabilityRegisters r : registers) {
            if (r.overlaps(from, to)) {
                r.check(Math.max(from, r.offset()), Math.min(to, r.end()), src, base);
            }
        }
        boolean flr = express != null && express.overlaps(from, to)
                && express.initiatesFlr(Math.max(from, express.offset()), Math.min(to, express.end()), src, base);
        image.write(from, to, src, base);
        src.position(src.limit());
        if (from < HEADER_SIZE) {
            header.written(from, Math.min(to, HEADER_SIZE));
        }
        for (CapabilityRegisters r : registers) {
            if (r.overlaps(from, to)) {
                r.written(Math.max(from, r.offset()), Math.min(to, r.end()), src, base);
            }
        }
        return flr;
    }

    /**
     * Installs the listener told about later writes, replacing the one before; {@code null} removes it. A connection
     * installs its own when its client attaches and removes it when the client leaves.
     */
    public void listen(Listener listener) {
        this.listener = listener == null ? NO_LISTENER : listener;
    }

    /** What the register classes call: the listener installed at the time. */
    private final class Forwarder implements Listener {
        @Override
        public void commandChanged(int oldValue, int newValue) {
            listener.commandChanged(oldValue, newValue);
        }

        @Override
        public void msiControlChanged(boolean enabled, int enabledVectors) {
            listener.msiControlChanged(enabled, enabledVectors);
        }

        @Override
        public void msixControlChanged(boolean enabled, boolean functionMasked) {
            listener.msixControlChanged(enabled, functionMasked);
        }

        @Override
        public void msiMaskChanged(int mask) {
            listener.msiMaskChanged(mask);
        }
    }

    /**
     * Brings the space back to its power-on image, as a conventional reset or an FLR does: Command 0, Status
     * error bits clear, BARs and ROM back to their type bits (address 0, ROM disabled; QEMU re-writes BARs after a
     * reset, and a guest restores them after an FLR), Interrupt Line 0, PMCSR D0, MSI and MSI-X disabled with
     * address, data, mask and pending bits clear, PCIe control registers at their defaults, vendor data as
     * described. The listener is not called: the caller re-reads what it derives from this space.
     */
    public void reset() {
        image.restorePowerOn();
        sync();
    }

    /** A copy of the whole space as it is now, for migration. */
    public byte[] saveImage() {
        byte[] out = new byte[image.size()];
        image.read(0, java.nio.ByteBuffer.wrap(out), out.length);
        return out;
    }

    /**
     * Takes back an image {@link #saveImage} made on the source (same description): the bytes as they were, and
     * the state derived from them. The listener is not called: the caller re-reads what it derives from this
     * space, as after {@link #reset()}.
     *
     * @throws VfioUserProtocolException EINVAL for an image of another size, or with other identity registers
     */
    public void restoreImage(byte[] saved) {
        if (saved.length != image.size()) {
            throw new VfioUserProtocolException(io.vfiouser.transport.linux.Errno.EINVAL,
                    "configuration space image of " + saved.length + " bytes, the device has " + image.size());
        }
        for (int i = 0; i < 4; i++) {
            if (saved[i] != (byte) image.u8(i)) {
                throw new VfioUserProtocolException(io.vfiouser.transport.linux.Errno.EINVAL,
                        "configuration space image of another device (vendor/device id)");
            }
        }
        image.restore(saved);
        sync();
    }

    // ------------------------------------------------------------------------------------------- header

    /** The Command register. */
    public int command() {
        return header.command();
    }

    /** The Status register. */
    public int status() {
        return image.u16(PciRegisters.STATUS);
    }

    /**
     * Sets error bits of the Status register, e.g. {@link PciRegisters#STATUS_RECEIVED_MASTER_ABORT} after a DMA
     * the client refused; software clears them by writing 1.
     *
     * @throws IllegalArgumentException for bits outside {@link PciRegisters#STATUS_ERRORS}
     */
    public void signalStatusErrors(int bits) {
        header.signalErrors(bits);
    }

    /** Whether Bus Master Enable is set: the function may issue DMA. */
    public boolean busMasterEnabled() {
        return (command() & PciRegisters.COMMAND_MASTER) != 0;
    }

    /** Whether Interrupt Disable is set: the function must not assert INTx. */
    public boolean intxDisabled() {
        return (command() & PciRegisters.COMMAND_INTX_DISABLE) != 0;
    }

    // ------------------------------------------------------------------------------------- capabilities

    /** The standard capabilities as laid out from 0x40, in list order. */
    public List<CapabilityLayout> capabilities() {
        return capabilities;
    }

    /** The extended capabilities as laid out from 0x100, in list order (empty for a 256-byte space). */
    public List<CapabilityLayout> extendedCapabilities() {
        return extendedCapabilities;
    }

    /** The offset of the first standard capability with {@code id}, or -1. */
    public int capabilityOffset(int id) {
        return offsetOf(capabilities, id);
    }

    /** The offset of the first extended capability with {@code id}, or -1. */
    public int extendedCapabilityOffset(int id) {
        return offsetOf(extendedCapabilities, id);
    }

    /** The PM power state, 0 (D0) to 3 (D3hot); 0 without a PM capability. */
    public int powerState() {
        return pm == null ? 0 : pm.powerState();
    }

    /** Whether the MSI Enable bit is set (false without an MSI capability). */
    public boolean msiEnabled() {
        return msi != null && msi.enabled();
    }

    /** The MSI vectors software enabled (2^MME) while MSI is enabled, else 0. */
    public int msiEnabledVectors() {
        return msi == null ? 0 : msi.enabledVectors();
    }

    /** The MSI Mask Bits (0 without an MSI capability). */
    public int msiMask() {
        return msi == null ? 0 : msi.mask();
    }

    /** The MSI Pending Bits (0 without an MSI capability). */
    public int msiPending() {
        return msi == null ? 0 : msi.pending();
    }

    /**
     * Sets the MSI Pending Bits register (read-only to the client); bits of vectors the function lacks are dropped.
     *
     * @throws IllegalStateException without an MSI capability
     */
    public void setMsiPending(int bits) {
        if (msi == null) {
            throw new IllegalStateException("the device has no MSI capability");
        }
        msi.setPending(bits);
    }

    /** Whether the MSI-X Enable bit is set (false without an MSI-X capability). */
    public boolean msixEnabled() {
        return msix != null && msix.enabled();
    }

    /** Whether the MSI-X Function Mask bit is set (false without an MSI-X capability). */
    public boolean msixFunctionMasked() {
        return msix != null && msix.functionMasked();
    }

    // ---------------------------------------------------------------------------------------- internals

    private void checkRange(int offset, int length) {
        if (offset < 0 || (long) offset + length > image.size()) {
            throw new VfioUserProtocolException(Errno.EINVAL, String.format(
                    "config space access of %d bytes at 0x%x is outside the %d-byte space",
                    length, offset, image.size()));
        }
    }

    private void sync() {
        header.sync();
        for (CapabilityRegisters r : registers) {
            r.sync();
        }
    }

    private <T extends CapabilityRegisters> T find(Class<T> type) {
        for (CapabilityRegisters r : registers) {
            if (type.isInstance(r)) {
                return type.cast(r);
            }
        }
        return null;
    }

    private static int offsetOf(List<CapabilityLayout> layouts, int id) {
        for (CapabilityLayout c : layouts) {
            if (c.id() == id) {
                return c.offset();
            }
        }
        return -1;
    }

    private static int align4(int offset) {
        return (offset + 3) & ~3;
    }
}
