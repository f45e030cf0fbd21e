package io.vfiouser.server.dma;

import io.vfiouser.device.DmaException;
import io.vfiouser.transport.linux.Errno;
import java.lang.foreign.MemorySegment;
import java.util.function.Function;

/**
 * Runs code that touches memory a client can take away (guest memory from DMA_MAP, or any shared file mapping
 * whose file the client holds) so that a fault becomes a {@link DmaException} instead of an {@link Error}.
 *
 * <h2>What HotSpot does (measured on JDK 25.0.3, x86-64; see the package documentation)</h2>
 * A client may shrink the file behind a mapping (ftruncate); touching a page beyond the new end raises SIGBUS.
 * HotSpot survives a SIGBUS in a {@link MemorySegment} access (single values, VarHandles, bulk copy, fill,
 * mismatch; interpreted, C1 and C2 code) and reports it as {@code java.lang.InternalError: a fault occurred in an
 * unsafe memory access operation}. But the error is <em>asynchronous</em>: the signal handler skips the faulting
 * instruction (a load yields garbage, a store is dropped, a bulk copy stops) and queues the error as a handshake
 * on the thread, which throws it at the thread's next safepoint poll. In interpreted code that is the access
 * itself; in compiled code it is the next loop back-edge or method return, which may lie outside the
 * {@code try} block around the access, in a caller, or in unrelated code (measured: C2 code threw it at the loop
 * back-edge of the caller of the method holding the {@code try}).
 *
 * <h2>How this class pins it down</h2>
 * After the access returns, and also after it throws, {@link #barrier()} makes a JNI call
 * ({@link Thread#holdsLock}); the native-to-Java transition on return processes pending asynchronous exceptions
 * (JDK 20+: {@code check_special_condition_for_native_trans} runs the handshake with async exceptions enabled).
 * So a fault inside the access surfaces no later than the barrier, inside our {@code try}. Measured: with the
 * barrier 100 000 of 100 000 faults were caught inside for every access kind in tiered, C2-only, C1-only and
 * {@code -Xcomp} modes; without it C2-only code let the error escape on the first fault.
 *
 * <p>What remains for code run under the guard: between the fault and the barrier it runs on garbage values
 * (a skipped load leaves the register's previous content, writes are lost); it may throw because of them, in
 * which case the fault still wins (it becomes the {@link DmaException}, the other exception is attached as
 * suppressed). Garbage in a narrow-typed value can do worse: C2 trusts that a {@code byte}/{@code short}/
 * {@code char}/{@code boolean} load stays in its range and may index arrays with it unchecked, which crashed the
 * JVM in a test (see {@link SegmentMode}). So the guard makes bulk copies and wide loads safe, not arbitrary
 * code; {@link ServerDmaSpace} runs device code on copies unless told otherwise. Guarded code must not catch and
 * swallow {@link Error}s, and must not hand guest memory to native code (a SIGBUS in native code kills the JVM) —
 * system calls are fine (the kernel answers EFAULT).
 */
public final class MemoryFaults {
    /** Never locked: {@link Thread#holdsLock} on it is a cheap JNI call that only serves as a barrier. */
    private static final Object BARRIER = new Object();
    private static final String FAULT_MESSAGE = "unsafe memory access";
    private static final String CLOSED_MESSAGE = "Already closed";

    private MemoryFaults() {
    }

    /**
     * Applies {@code access} to {@code segment}. A memory fault during it (SIGBUS: the file behind the memory
     * shrank) becomes {@link DmaException} {@code EIO}; use of a segment whose arena was closed becomes
     * {@code EFAULT}. Other exceptions of {@code access} pass through unchanged.
     *
     * @param address the DMA address of the segment, for messages
     */
    public static <T> T apply(MemorySegment segment, long address, Function<? super MemorySegment, T> access)
            throws DmaException {
        T result;
        try {
            result = access.apply(segment);
            barrier();
        } catch (Throwable t) {
            throw translate(t, address, segment.byteSize());
        }
        return result;
    }

    /** Copies {@code length} bytes between segments, either of which may be guest memory; see {@link #apply}. */
    public static void copy(MemorySegment src, long srcOffset, MemorySegment dst, long dstOffset, long length,
            long address) throws DmaException {
        try {
            MemorySegment.copy(src, srcOffset, dst, dstOffset, length);
            barrier();
        } catch (Throwable t) {
            throw translate(t, address, length);
        }
    }

    /**
     * Delivers a memory fault this thread has pending, if any, as the {@link InternalError} HotSpot creates for
     * it. Call it after touching shared memory and before leaving the {@code try} that handles the fault.
     */
    public static void barrier() {
        Thread.holdsLock(BARRIER);
    }

    /** Whether {@code t}, or one of its causes, is HotSpot's report of a memory fault in an access. */
    public static boolean isMemoryFault(Throwable t) {
        Throwable c = t;
        for (int depth = 0; c != null && depth < 32; depth++, c = c.getCause()) {
            if (c instanceof InternalError e && e.getMessage() != null && e.getMessage().contains(FAULT_MESSAGE)) {
                return true;
            }
        }
        return false;
    }

    /** Whether {@code t} reports an access to a segment of a closed arena. */
    static boolean isClosedArena(Throwable t) {
        return t instanceof IllegalStateException && t.getMessage() != null
                && t.getMessage().startsWith(CLOSED_MESSAGE);
    }

    /**
     * What to throw for {@code t}, thrown by a guarded access: a {@link DmaException} for a memory fault (also one
     * still pending, delivered here by a second barrier) or a closed arena; else {@code t} itself.
     */
    private static <X extends Throwable> DmaException translate(Throwable t, long address, long length) throws X {
        DmaException fault = null;
        if (isMemoryFault(t)) {
            fault = gone(address, length, t);
        } else {
            try {
                barrier();
            } catch (Throwable late) {
                if (!isMemoryFault(late)) {
                    t.addSuppressed(late);
                    throw MemoryFaults.<X>sneaky(t);
                }
                fault = gone(address, length, late);
                fault.addSuppressed(t);
            }
        }
        if (fault != null) {
            return fault;
        }
        if (t instanceof DmaException d) {
            return d;
        }
        if (isClosedArena(t)) {
            return new DmaException(Errno.EFAULT, "guest memory at 0x" + Long.toHexString(address)
                    + " was accessed after it was unmapped", t);
        }
        throw MemoryFaults.<X>sneaky(t);
    }

    private static DmaException gone(long address, long length, Throwable cause) {
        return new DmaException(Errno.EIO, "guest memory at 0x" + Long.toHexString(address) + " (+" + length
                + " bytes) faulted: the client shrank the file behind it", cause);
    }

    @SuppressWarnings("unchecked")
    private static <X extends Throwable> X sneaky(Throwable t) throws X {
        throw (X) t;
    }
}
