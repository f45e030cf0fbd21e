package io.vfiouser.examples.nvme;

import java.util.ArrayList;
import java.util.List;

/**
 * Turns a command's PRP1/PRP2 into the guest memory ranges of its data transfer (NVMe 1.4, 4.3), for a memory page
 * size of {@link #PAGE_SIZE}:
 * <ul>
 * <li>PRP1 points at the first byte, at any dword-aligned offset in its page; the transfer runs to the end of
 * that page at most.</li>
 * <li>If the rest fits in one page, PRP2 is that page (offset 0).</li>
 * <li>Otherwise PRP2 points at a PRP list (qword-aligned, any offset): entries naming one page each (offset 0). When
 * more entries are needed than fit in the rest of a list page, the last entry of that page points to the next list
 * page instead of data.</li>
 * </ul>
 * A misaligned pointer fails with PRP Offset Invalid; a list the controller cannot read fails with Data Transfer
 * Error. Neighbouring pages that are contiguous in guest memory are merged into one range, so a transfer into
 * contiguous memory costs one DMA access.
 */
final class PrpWalker {
    static final int PAGE_SIZE = 4096;
    private static final long PAGE_MASK = PAGE_SIZE - 1;

    /** One contiguous range of guest memory. */
    record Segment(long address, long length) {
    }

    /** Reads PRP list entries from guest memory. */
    @FunctionalInterface
    interface ListReader {
        /** The {@code count} little-endian qwords at guest address {@code address}. */
        long[] read(long address, int count) throws CommandFailure;
    }

    private PrpWalker() {
    }

    /** The ranges of a transfer of {@code length} bytes (at most the controller's maximum transfer size). */
    static List<Segment> walk(long prp1, long prp2, long length, ListReader lists) throws CommandFailure {
        List<Segment> out = new ArrayList<>();
        if (length <= 0) {
            return out;
        }
        if ((prp1 & 3) != 0) {
            throw new CommandFailure(Status.PRP_OFFSET_INVALID, "PRP1 is not dword aligned");
        }
        long first = Math.min(length, PAGE_SIZE - (prp1 & PAGE_MASK));
        add(out, prp1, first);
        long remaining = length - first;
        if (remaining == 0) {
            return out;
        }
        if (remaining <= PAGE_SIZE) {
            checkPage(prp2, "PRP2");
            add(out, prp2, remaining);
            return out;
        }
        long list = prp2;
        long entries = (remaining + PAGE_SIZE - 1) / PAGE_SIZE;
        // Each list page carries at least one data entry unless it is a bare pointer; bound the walk anyway.
        long pagesLeft = entries + 1;
        while (entries > 0) {
            if ((list & 7) != 0) {
                throw new CommandFailure(Status.PRP_OFFSET_INVALID, "PRP list pointer is not qword aligned");
            }
            if (pagesLeft-- == 0) {
                throw new CommandFailure(Status.INVALID_FIELD, "PRP list chain does not end");
            }
            int slots = (int) ((PAGE_SIZE - (list & PAGE_MASK)) / 8);
            boolean last = entries <= slots;
            int count = last ? (int) entries : slots;
            long[] e = lists.read(list, count);
            int data = last ? count : count - 1;
            for (int i = 0; i < data; i++) {
                checkPage(e[i], "PRP list entry");
                long n = Math.min(PAGE_SIZE, remaining);
                add(out, e[i], n);
                remaining -= n;
            }
            entries -= data;
            if (!last) {
                list = e[count - 1];
            }
        }
        return out;
    }

    private static void checkPage(long entry, String what) throws CommandFailure {
        if ((entry & PAGE_MASK) != 0) {
            throw new CommandFailure(Status.PRP_OFFSET_INVALID, what + " has an offset: 0x" + Long.toHexString(entry));
        }
    }

    private static void add(List<Segment> out, long address, long length) {
        if (!out.isEmpty()) {
            Segment prev = out.getLast();
            if (prev.address() + prev.length() == address) {
                out.set(out.size() - 1, new Segment(prev.address(), prev.length() + length));
                return;
            }
        }
        out.add(new Segment(address, length));
    }
}
