package io.vfiouser.examples.nvme;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vfiouser.examples.nvme.PrpWalker.Segment;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** PRP walking against a map of guest qwords: every legal shape, and the malformed ones. */
class PrpWalkerTest {
    private static final int P = PrpWalker.PAGE_SIZE;
    private final Map<Long, Long> memory = new HashMap<>();
    private final List<Long> listReads = new ArrayList<>();

    private long[] read(long address, int count) throws CommandFailure {
        listReads.add(address);
        if ((address & (P - 1)) + 8L * count > P) {
            throw new AssertionError("a list read crosses a page: " + address + " x" + count);
        }
        long[] out = new long[count];
        for (int i = 0; i < count; i++) {
            Long v = memory.get(address + 8L * i);
            if (v == null) {
                throw new CommandFailure(Status.DATA_TRANSFER_ERROR, "unmapped");
            }
            out[i] = v;
        }
        return out;
    }

    private List<Segment> walk(long prp1, long prp2, long length) throws CommandFailure {
        return PrpWalker.walk(prp1, prp2, length, this::read);
    }

    @Test
    void singlePageTransfersUsePrp1Only() throws Exception {
        assertThat(walk(0x10000, 0xDEAD, 4096)).containsExactly(new Segment(0x10000, 4096));
        assertThat(walk(0x10200, 0xDEAD, 512)).containsExactly(new Segment(0x10200, 512));
        assertThat(walk(0x10E00, 0xDEAD, 512)).containsExactly(new Segment(0x10E00, 512));
        assertThat(walk(0x10000, 0, 0)).isEmpty();
        assertThat(listReads).isEmpty();
    }

    @Test
    void twoPagesUsePrp2AsTheSecondPage() throws Exception {
        assertThat(walk(0x10000, 0x50000, 8192))
                .containsExactly(new Segment(0x10000, 4096), new Segment(0x50000, 4096));
        assertThat(walk(0x10800, 0x50000, 4096))
                .containsExactly(new Segment(0x10800, 2048), new Segment(0x50000, 2048));
        // Contiguous pages merge into one range.
        assertThat(walk(0x10800, 0x11000, 4096)).containsExactly(new Segment(0x10800, 4096));
        assertThat(listReads).isEmpty();
    }

    @Test
    void aListStartingMidPageChainsToTheNextListPage() throws Exception {
        // 0x400 into the first page, then 9 more pages; the list starts 3 slots before the end of its page.
        long list = 0x80000 + P - 24;
        long[] pages = new long[9];
        for (int i = 0; i < 9; i++) {
            pages[i] = 0x200000L + 0x2000L * i; // not contiguous
        }
        memory.put(list, pages[0]);
        memory.put(list + 8, pages[1]);
        memory.put(list + 16, 0x90000L); // chain
        for (int i = 2; i < 9; i++) {
            memory.put(0x90000L + 8L * (i - 2), pages[i]);
        }
        long length = (P - 0x400) + 8L * P + 100;
        List<Segment> s = walk(0x10400, list, length);
        assertThat(s).hasSize(10);
        assertThat(s.getFirst()).isEqualTo(new Segment(0x10400, P - 0x400));
        for (int i = 0; i < 8; i++) {
            assertThat(s.get(i + 1)).isEqualTo(new Segment(pages[i], P));
        }
        assertThat(s.getLast()).isEqualTo(new Segment(pages[8], 100));
        assertThat(listReads).containsExactly(list, 0x90000L);
    }

    @Test
    void aLastEntryThatFitsInTheLastSlotIsData() throws Exception {
        long list = 0x80000 + P - 16; // two slots, two entries: no chain
        memory.put(list, 0x300000L);
        memory.put(list + 8, 0x400000L);
        assertThat(walk(0x10000, list, 3L * P))
                .containsExactly(new Segment(0x10000, P), new Segment(0x300000, P), new Segment(0x400000, P));
    }

    @Test
    void malformedPointersFailWithTheirStatus() {
        assertThatThrownBy(() -> walk(0x10002, 0, 512)).isInstanceOfSatisfying(CommandFailure.class,
                f -> assertThat(f.status()).isEqualTo(Status.PRP_OFFSET_INVALID));
        assertThatThrownBy(() -> walk(0x10000, 0x50200, 8192)).isInstanceOfSatisfying(CommandFailure.class,
                f -> assertThat(f.status()).isEqualTo(Status.PRP_OFFSET_INVALID));
        assertThatThrownBy(() -> walk(0x10000, 0x80004, 3L * P)).isInstanceOfSatisfying(CommandFailure.class,
                f -> assertThat(f.status()).isEqualTo(Status.PRP_OFFSET_INVALID));
        memory.put(0x80000L, 0x300010L);
        memory.put(0x80008L, 0x400000L);
        assertThatThrownBy(() -> walk(0x10000, 0x80000, 3L * P)).as("list entry with an offset")
                .isInstanceOfSatisfying(CommandFailure.class,
                        f -> assertThat(f.status()).isEqualTo(Status.PRP_OFFSET_INVALID));
        assertThatThrownBy(() -> walk(0x10000, 0xF0000, 3L * P)).as("list not readable")
                .isInstanceOfSatisfying(CommandFailure.class,
                        f -> assertThat(f.status()).isEqualTo(Status.DATA_TRANSFER_ERROR));
    }

    @Test
    void aChainThatPointsAtItselfEnds() {
        long list = 0x80000 + P - 8; // one slot: a pointer to itself, for ever
        memory.put(list, list);
        assertThatThrownBy(() -> walk(0x10000, list, 4L * P)).isInstanceOf(CommandFailure.class);
    }
}
