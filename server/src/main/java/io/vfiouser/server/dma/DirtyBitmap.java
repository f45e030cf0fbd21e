package io.vfiouser.server.dma;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;

/**
 * The dirty-page log of one shared mapping: one bit per page of {@code 1 << pageShift} bytes, counted from the
 * mapping's start. Devices mark pages from any thread while the event loop reads and clears them; every word is
 * updated atomically, so a page written while a report runs is either in this report or in the next one, never
 * lost.
 */
final class DirtyBitmap {
    private static final VarHandle WORDS = MethodHandles.arrayElementVarHandle(long[].class);

    private final int pageShift;
    private final long size;
    private final long[] words;

    /**
     * @param size      bytes of the mapping
     * @param pageShift log2 of the logging page size
     */
    DirtyBitmap(long size, int pageShift) {
        long pages = ((size - 1) >>> pageShift) + 1;
        if (pages > (long) Integer.MAX_VALUE * 64) {
            throw new IllegalArgumentException("a mapping of " + size + " bytes needs too large a dirty bitmap");
        }
        this.pageShift = pageShift;
        this.size = size;
        this.words = new long[(int) ((pages + 63) >>> 6)];
    }

    long pageSize() {
        return 1L << pageShift;
    }

    /** Marks the pages that {@code [offset, offset + length)} (mapping-relative, inside, length > 0) touches. */
    void mark(long offset, long length) {
        long first = offset >>> pageShift;
        long last = (offset + length - 1) >>> pageShift;
        for (long w = first >>> 6; w <= last >>> 6; w++) {
            long mask = rangeMask(w, first, last);
            int i = (int) w;
            if (((long) WORDS.getOpaque(words, i) & mask) != mask) {
                WORDS.getAndBitwiseOr(words, i, mask);
            }
        }
    }

    /**
     * Reads and clears the log of {@code [offset, offset + length)} (mapping-relative, inside, length > 0) and
     * returns it as a bitmap of {@code outPageSize}-byte pages counted from {@code offset}: page p is bit p % 64 of
     * word p / 64, LSB first. An output page is dirty if any logged page it overlaps is (a larger output page ORs
     * logged pages, a smaller one repeats a logged page's bit). Logged pages that stick out of the range are
     * cleared too: they were reported as far as the range goes.
     */
    long[] takeAndClear(long offset, long length, long outPageSize, int outWords) {
        long[] out = new long[outWords];
        long first = offset >>> pageShift;
        long last = (offset + length - 1) >>> pageShift;
        long end = offset + length;
        for (long w = first >>> 6; w <= last >>> 6; w++) {
            long mask = rangeMask(w, first, last);
            long bits = (long) WORDS.getAndBitwiseAnd(words, (int) w, ~mask) & mask;
            while (bits != 0) {
                int b = Long.numberOfTrailingZeros(bits);
                bits &= bits - 1;
                long page = (w << 6) + b;
                long from = Math.max(page << pageShift, offset) - offset;
                long to = Math.min((page + 1) << pageShift, end) - offset;
                for (long p = from / outPageSize; p <= (to - 1) / outPageSize; p++) {
                    out[(int) (p >>> 6)] |= 1L << (p & 63);
                }
            }
        }
        return out;
    }

    /** Whether {@code [offset, offset + length)} fits in the mapping this log covers. */
    boolean covers(long offset, long length) {
        return offset >= 0 && length >= 0 && offset <= size - length;
    }

    /** The bits of word {@code w} that lie in pages {@code [first, last]}. */
    private static long rangeMask(long w, long first, long last) {
        long lo = w << 6;
        int from = (int) Math.max(0, first - lo);
        int to = (int) Math.min(63, last - lo);
        long upTo = to == 63 ? -1L : (1L << (to + 1)) - 1;
        return upTo & (-1L << from);
    }
}
