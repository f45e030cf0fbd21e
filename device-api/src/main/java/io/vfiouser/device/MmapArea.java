package io.vfiouser.device;

/** A part of a memory-backed region that the client may mmap: page-aligned offset and size within the region. */
public record MmapArea(long offset, long size) {
    public MmapArea {
        if (offset < 0 || size <= 0 || (offset & 4095) != 0 || (size & 4095) != 0) {
            throw new IllegalArgumentException("mmap areas are page aligned and non-empty: " + offset + "+" + size);
        }
    }
}
