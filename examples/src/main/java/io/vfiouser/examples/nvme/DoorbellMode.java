package io.vfiouser.examples.nvme;

import java.util.Arrays;
import java.util.Locale;
import java.util.stream.Collectors;

/**
 * How the host's doorbells reach the controller ({@code --doorbells=}). Every mode takes the doorbells at BAR0 +
 * 0x1000 as REGION_WRITE messages; a mode adds a faster path a host may choose to use.
 */
public enum DoorbellMode {
    /** Only register doorbells: every submission and every consumed completion is a REGION_WRITE message. */
    WRITE,
    /**
     * Register doorbells, and NVMe's Doorbell Buffer Config (admin opcode 7Ch, Identify Controller OACS bit 8) for
     * hosts that use it, such as Linux's {@code nvme} driver: the host writes its I/O queues' doorbell values into a
     * shadow page of its own memory and rings a register doorbell only when the value passes the EventIdx the
     * controller published there, so a busy controller is sent no doorbell messages.
     */
    SHADOW,
    /**
     * The doorbell page BAR0 + 0x1000 (4 KiB) is an mmappable area of a hybrid BAR0, SPDK's layout: the client maps
     * it and writes its doorbells into it without a message (SPDK's user-space driver; QEMU maps it into the guest,
     * whose writes then go straight to the page), and the controller watches the page ({@link MmapDoorbells}).
     * Doorbell messages still work: the framework serves them from the page, where the controller sees them. Costs
     * a watcher thread that spins while doorbells keep coming and wakes every millisecond when idle; and QEMU turns
     * off posted writes for the whole device once a region is mmappable.
     */
    MMAP;

    /**
     * The mode a controller gets when none is named: {@link #SHADOW}. A host that does not issue Doorbell Buffer
     * Config sees no difference from {@link #WRITE} but OACS bit 8, and the Linux guest's driver issues less than
     * half the doorbell messages with it (measured in {@code docs/performance.md}, "Shadow doorbells").
     */
    public static final DoorbellMode DEFAULT = SHADOW;

    /** The mode named {@code text} ({@code write}, {@code shadow}, {@code mmap}; any case). */
    public static DoorbellMode parse(String text) {
        try {
            return valueOf(text.trim().toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("doorbells=" + text + ": one of " + names());
        }
    }

    /** The modes as the option spells them, e.g. {@code write|shadow}. */
    public static String names() {
        return Arrays.stream(values()).map(DoorbellMode::optionName).collect(Collectors.joining("|"));
    }

    /** The mode as the option spells it. */
    public String optionName() {
        return name().toLowerCase(Locale.ROOT);
    }
}
