package io.vfiouser.server.dma;

/**
 * How {@link ServerDmaSpace#withSegment} lets device code reach shared guest memory.
 *
 * <p>Why there is a choice: a client can shrink the file behind a mapping at any time, and a load from a page past
 * the new end raises SIGBUS. HotSpot recovers from that by skipping the faulting instruction and throwing later
 * (see {@link MemoryFaults}); in C2-compiled code the skipped load leaves whatever the register held before, and
 * code compiled on the assumption that a {@code byte}, {@code short}, {@code char} or {@code boolean} load yields a
 * value in that type's range (array indexing without bounds check, e.g. the {@code Byte.valueOf} cache) then reads
 * or writes wild memory. Measured on JDK 25.0.3: a device function {@code s -> s.get(JAVA_BYTE, 100)} (boxed to
 * {@code Byte}) crashed the JVM with SIGSEGV once C2 had compiled it. Bulk copies are not affected
 * (copied values are only stored, never used as indexes), and neither are {@code int}/{@code long}/floating-point
 * loads (their whole range is valid).
 */
public enum SegmentMode {
    /**
     * The device works on a private copy: guest memory is copied into it before the call (read), and the bytes
     * the device changed are copied back after it (write, also when the function throws). Guest memory is only
     * touched by bulk copies, so no client can crash the JVM. Costs: a copy (two for write), no zero-copy, no
     * atomic or ordered access across the guest boundary (a CAS or a release store on the copy is not visible to
     * the guest before the call returns, and bytes are written back in address order), and guest changes made
     * during the call are not seen. The copy is heap memory with the guest address's alignment modulo 8, at most
     * {@link ServerDmaSpace#MAX_COPY} bytes, and usable from any thread during the call. The default.
     */
    COPY,

    /**
     * The device works on the shared memory itself (zero-copy, atomics and ordering visible to the guest). Safe
     * only when the client cannot shrink the files behind its mappings (e.g. a memfd sealed with
     * {@code F_SEAL_SHRINK}, which is QEMU's {@code memory-backend-memfd} default) or is trusted not to, or when
     * device code never loads {@code byte}/{@code short}/{@code char}/{@code boolean} values from the segment
     * (read {@code int}/{@code long} and extract, or bulk-copy out).
     */
    DIRECT
}
