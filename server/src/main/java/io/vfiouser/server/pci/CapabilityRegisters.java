package io.vfiouser.server.pci;

import io.vfiouser.codec.VfioUserProtocolException;
import io.vfiouser.transport.linux.Errno;
import java.nio.ByteBuffer;

/**
 * The emulation of one capability's registers inside a {@link ConfigImage}. A subclass writes its power-on values
 * and write masks into the image when constructed; {@link ConfigSpace} writes the header (id and next pointer)
 * and calls, for every write that touches the capability:
 *
 * <ol>
 *   <li>{@link #check} before anything is applied (a failing write changes nothing),</li>
 *   <li>the image's masked write,</li>
 *   <li>{@link #written} to apply side effects and tell the listener.</li>
 * </ol>
 *
 * Offsets passed to these methods are absolute and already clipped to the capability; the written byte for offset
 * {@code x} is {@code src.get(base + x)}.
 *
 * <p>Common rule: a write that touches nothing but the capability's header bytes (id and next pointer, plus the
 * length byte of a vendor capability, the header dword of an extended capability, the VSEC header) fails with
 * {@code EPERM}. A wider write that merely includes header bytes is applied to the other bytes, the header bytes
 * being ignored, so that a guest's dword write at the start of a capability still reaches its control register.
 */
abstract sealed class CapabilityRegisters
        permits PowerManagementRegisters, MsiRegisters, MsixRegisters, ExpressRegisters, VendorRegisters,
        SerialNumberRegisters, VendorExtendedRegisters {

    protected final ConfigImage image;
    private final CapabilityLayout layout;
    private final int headerLength;

    /**
     * Sets up the emulation of the capability at {@code layout} in {@code image}.
     *
     * @param headerLength the leading bytes a write alone may not target ({@code EPERM})
     */
    CapabilityRegisters(ConfigImage image, CapabilityLayout layout, int headerLength) {
        this.image = image;
        this.layout = layout;
        this.headerLength = headerLength;
    }

    final CapabilityLayout layout() {
        return layout;
    }

    final int offset() {
        return layout.offset();
    }

    final int end() {
        return layout.end();
    }

    /** The absolute offset of the register at {@code relative} within this capability. */
    final int at(int relative) {
        return layout.offset() + relative;
    }

    final boolean overlaps(int from, int to) {
        return from < end() && offset() < to;
    }

    /** Validates a write of {@code [from, to)}; throws {@link VfioUserProtocolException} to refuse it. */
    void check(int from, int to, ByteBuffer src, int base) {
        if (to <= offset() + headerLength) {
            throw error(Errno.EPERM, "write to the header of %s", layout);
        }
    }

    /** Applies the side effects of a write of {@code [from, to)} that the image has taken already. */
    void written(int from, int to, ByteBuffer src, int base) {
    }

    /** Re-reads the state kept beside the image after the image was restored, without telling anyone. */
    void sync() {
    }

    /** Whether {@code [from, to)} touches any byte of the {@code width}-byte register at {@code register}. */
    static boolean touches(int from, int to, int register, int width) {
        return from < register + width && register < to;
    }

    /** Whether {@code [from, to)} covers all bytes of the {@code width}-byte register at {@code register}. */
    static boolean covers(int from, int to, int register, int width) {
        return from <= register && register + width <= to;
    }

    static VfioUserProtocolException error(int errno, String format, Object... args) {
        return new VfioUserProtocolException(errno, "config space: " + String.format(format, args));
    }
}
