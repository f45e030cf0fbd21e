package io.vfiouser.server.dma;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

/** The per-mapping dirty log: marking, reading and clearing, in other page sizes. */
class DirtyBitmapTest {

    @Test
    void marksThePagesAWriteTouchesAndClearsThemWhenRead() {
        DirtyBitmap log = new DirtyBitmap(1 << 20, 12); // 256 pages of 4 KiB
        log.mark(4095, 2);        // pages 0 and 1
        log.mark(64 * 4096, 1);   // page 64 (second word)
        log.mark(255 * 4096 + 100, 1);
        long[] words = log.takeAndClear(0, 1 << 20, 4096, 4);
        assertThat(words).containsExactly(0b11L, 1L, 0L, 1L << 63);
        assertThat(log.takeAndClear(0, 1 << 20, 4096, 4)).as("read clears").containsOnly(0L);
    }

    @Test
    void largerReportPagesOrAndSmallerOnesRepeat() {
        DirtyBitmap log = new DirtyBitmap(64 * 4096, 12);
        log.mark(3 * 4096, 1);
        log.mark(9 * 4096, 4096);
        long[] big = log.takeAndClear(0, 64 * 4096, 8 * 4096, 1); // 8 pages of 32 KiB
        assertThat(big[0]).isEqualTo(0b11L);
        log.mark(4096, 1);
        long[] small = log.takeAndClear(0, 64 * 4096, 2048, 2); // 128 pages of 2 KiB: page 1 -> bits 2, 3
        assertThat(small).containsExactly(0b1100L, 0L);
    }

    @Test
    void aReportOfPartOfTheMappingSeesOnlyThatPart() {
        DirtyBitmap log = new DirtyBitmap(16 * 4096, 12);
        log.mark(0, 16 * 4096);
        long[] part = log.takeAndClear(0, 5 * 4096 + 1, 4096, 1); // pages 0..5
        assertThat(part[0]).isEqualTo(0b111111L);
        long[] rest = log.takeAndClear(0, 16 * 4096, 4096, 1);
        assertThat(rest[0]).as("pages 6..15 still dirty").isEqualTo(0xFFC0L);
    }
}
