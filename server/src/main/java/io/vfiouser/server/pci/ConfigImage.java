package io.vfiouser.server.pci;

import java.nio.ByteBuffer;

/**
 * The bytes of one configuration space, little-endian, with two masks per byte that say what a write does:
 *
 * <ul>
 *   <li>{@code writable}: the bits a write stores (all others keep their value);</li>
 *   <li>{@code clearable}: the RW1C bits, cleared where the written byte has a 1.</li>
 * </ul>
 *
 * A write of byte {@code v} over byte {@code b} leaves {@code (b & ~writable | v & writable) & ~(v & clearable)}.
 * The register emulations set up the image and masks once; {@link #savePowerOn()} then records the image that
 * {@link #restorePowerOn()} brings back on reset.
 */
final class ConfigImage {
    private final byte[] bytes;
    private final byte[] writable;
    private final byte[] clearable;
    private byte[] powerOn;

    ConfigImage(int size) {
        bytes = new byte[size];
        writable = new byte[size];
        clearable = new byte[size];
    }

    int size() {
        return bytes.length;
    }

    int u8(int offset) {
        return bytes[offset] & 0xFF;
    }

    int u16(int offset) {
        return u8(offset) | u8(offset + 1) << 8;
    }

    int u32(int offset) {
        return u16(offset) | u16(offset + 2) << 16;
    }

    void set8(int offset, int value) {
        put(bytes, offset, value, 1);
    }

    void set16(int offset, int value) {
        put(bytes, offset, value, 2);
    }

    void set32(int offset, int value) {
        put(bytes, offset, value, 4);
    }

    void writable8(int offset, int mask) {
        put(writable, offset, mask, 1);
    }

    void writable16(int offset, int mask) {
        put(writable, offset, mask, 2);
    }

    void writable32(int offset, int mask) {
        put(writable, offset, mask, 4);
    }

    void clearable16(int offset, int mask) {
        put(clearable, offset, mask, 2);
    }

    /** Copies {@code length} bytes from {@code offset} into {@code dst}, advancing its position. */
    void read(int offset, ByteBuffer dst, int length) {
        dst.put(bytes, offset, length);
    }

    /**
     * Applies the bytes of a write to {@code [from, to)} through the masks; the byte for offset {@code x} is
     * {@code src.get(base + x)} (absolute, the buffer's position is not used or moved).
     */
    void write(int from, int to, ByteBuffer src, int base) {
        for (int i = from; i < to; i++) {
            int v = src.get(base + i);
            int w = writable[i];
            int c = clearable[i];
            bytes[i] = (byte) ((bytes[i] & ~w | v & w) & ~(v & c));
        }
    }

    /** Replaces the image with {@code saved} (same size; the masks stay). */
    void restore(byte[] saved) {
        System.arraycopy(saved, 0, bytes, 0, bytes.length);
    }

    /** Records the current image as the one a reset restores. */
    void savePowerOn() {
        powerOn = bytes.clone();
    }

    /** Brings back the image recorded by {@link #savePowerOn()}. */
    void restorePowerOn() {
        System.arraycopy(powerOn, 0, bytes, 0, bytes.length);
    }

    private static void put(byte[] array, int offset, int value, int width) {
        for (int i = 0; i < width; i++) {
            array[offset + i] = (byte) (value >>> 8 * i);
        }
    }
}
