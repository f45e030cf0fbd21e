package io.vfiouser.examples.nvme;

import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * The two host pages of Doorbell Buffer Config (NVMe 1.4, 5.8; the protocol in NVMe 1.3, 7.13): the shadow
 * doorbells (PRP1), where the host writes its I/O queues' SQ tails and CQ heads, and the EventIdx page (PRP2), where
 * the controller writes, per doorbell, the value past which the host must also ring the register doorbell. Both are
 * laid out like the doorbell registers (CAP.DSTRD = 0): doorbell {@code i} (SQ y tail = 2y, CQ y head = 2y + 1) is
 * the little-endian dword at {@code 4 * i}. The host rings when its new value {@code n}, coming from {@code o},
 * passes the EventIdx {@code e}: when {@code e} lies in {@code [o, n)} modulo 2^16. So an EventIdx equal to the
 * value the controller last took asks for a ring on the next change.
 *
 * <p>Plain memory shared with the host needs the ordering both sides promise each other: the host writes its
 * shadow value, then (full barrier) reads the EventIdx; the controller writes the EventIdx, then (full barrier,
 * {@link #fence()}) reads the shadow value again, so at least one side sees the other's write and no submission
 * is left without either a ring or a look. Reads of the shadow page are followed by an acquire fence, so the
 * queue entries the host wrote before its shadow value are read after it. The values are aligned dwords read by a
 * bulk copy of guest memory; the controller validates each one (a value outside the queue is ignored) rather than
 * trust it. Owned by the controller thread.
 */
final class ShadowDoorbells {
    /** Each buffer is one memory page (CC.MPS = 0: 4 KiB), page aligned. */
    static final int PAGE = PrpWalker.PAGE_SIZE;

    final long doorbells;
    final long eventIdx;
    private ByteBuffer values;
    private ByteBuffer one = newBuffer(4);

    ShadowDoorbells(long doorbells, long eventIdx, int maxQueueId) {
        this.doorbells = doorbells;
        this.eventIdx = eventIdx;
        this.values = newBuffer(8 * (maxQueueId + 1));
    }

    /** Whether {@code address} can be one of the two buffers: page aligned and not null. */
    static boolean isPage(long address) {
        return address != 0 && (address & (PAGE - 1)) == 0;
    }

    /**
     * The shadow values of every doorbell of queues 0 to the largest id, read in one access; index the result as the
     * doorbells are numbered. Valid until the next call.
     */
    ByteBuffer readAll(GuestDma dma) throws CommandFailure {
        ByteBuffer b = values.clear();
        try {
            dma.read(doorbells, b);
        } catch (CommandFailure e) {
            values = newBuffer(values.capacity());
            throw e;
        }
        VarHandle.acquireFence();
        return b.flip();
    }

    /** The shadow value of doorbell {@code index}. */
    int read(GuestDma dma, int index) throws CommandFailure {
        ByteBuffer b = one.clear();
        try {
            dma.read(doorbells + 4L * index, b);
        } catch (CommandFailure e) {
            one = newBuffer(4);
            throw e;
        }
        VarHandle.acquireFence();
        return b.getInt(0);
    }

    /** Sets the shadow value of doorbell {@code index} (queues that exist when the buffers arrive, or are created). */
    void writeShadow(GuestDma dma, int index, int value) throws CommandFailure {
        write(dma, doorbells + 4L * index, value);
    }

    /** Publishes the EventIdx of doorbell {@code index}. */
    void writeEventIdx(GuestDma dma, int index, int value) throws CommandFailure {
        write(dma, eventIdx + 4L * index, value);
    }

    /** Orders the EventIdx writes before it against the shadow reads after it. */
    static void fence() {
        VarHandle.fullFence();
    }

    private void write(GuestDma dma, long address, int value) throws CommandFailure {
        ByteBuffer b = one.clear().putInt(0, value);
        try {
            dma.write(address, b);
        } catch (CommandFailure e) {
            one = newBuffer(4);
            throw e;
        }
    }

    private static ByteBuffer newBuffer(int size) {
        return ByteBuffer.allocate(size).order(ByteOrder.LITTLE_ENDIAN);
    }
}
