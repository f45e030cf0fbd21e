package io.vfiouser.server.irq;

import static io.vfiouser.server.irq.Devices.MASK_NONE;
import static io.vfiouser.server.irq.Devices.MSIX_VECTORS;
import static io.vfiouser.server.irq.Devices.PBA_BAR;
import static io.vfiouser.server.irq.Devices.PBA_OFFSET;
import static io.vfiouser.server.irq.Devices.TABLE_BAR;
import static io.vfiouser.server.irq.Devices.TABLE_OFFSET;
import static io.vfiouser.server.irq.Devices.TRIGGER_EVENTFD;
import static io.vfiouser.server.irq.Devices.TRIGGER_NONE;
import static io.vfiouser.server.irq.Devices.UNMASK_NONE;
import static io.vfiouser.server.irq.Devices.req;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vfiouser.codec.payload.SetIrqs;
import io.vfiouser.device.IrqType;
import io.vfiouser.transport.FdSet;
import io.vfiouser.transport.testing.FdCount;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** MSI-X: QEMU's enabling sequence, masks, the PBA, the function mask and the emulated table. */
class MsixTest {
    /** QEMU's max_msg_fds: our server announces at most 16 fds per message. */
    private static final int MAX_MSG_FDS = 16;

    private long fdsBefore;
    private RecordingListener listener;
    private IrqTable table;
    private Efd[] efds;

    @BeforeEach
    void setUp() {
        fdsBefore = FdCount.now();
        listener = new RecordingListener();
        table = new IrqTable(Devices.full(), listener);
        table.setMsixControl(true, false); // the guest enabled MSI-X (QEMU forwards the write before SET_IRQS)
        efds = Efd.many(MSIX_VECTORS);
    }

    @AfterEach
    void tearDown() throws Exception {
        table.clear();
        Efd.closeAll(efds);
        FdCount.awaitAtMost(fdsBefore);
    }

    private void set(SetIrqs request, int... fds) {
        table.setIrqs(request, FdSet.of(fds));
    }

    private long[] signals() {
        long[] out = new long[efds.length];
        for (int i = 0; i < efds.length; i++) {
            out[i] = efds[i].signals();
        }
        return out;
    }

    private static long[] only(int vector) {
        long[] out = new long[MSIX_VECTORS];
        out[vector] = 1;
        return out;
    }

    /**
     * What QEMU's vfio_msix_enable / vfio_msix_vector_do_use send for an MSI-X array in which {@code fds[v]} is
     * the eventfd of vector v or -1: runs of valid fds (at most max_msg_fds each) with those fds, runs of -1
     * without fds.
     */
    private void qemuSendArray(int[] fds) {
        int i = 0;
        while (i < fds.length) {
            boolean valid = fds[i] >= 0;
            int n = 1;
            while (i + n < fds.length && (fds[i + n] >= 0) == valid && (!valid || n < MAX_MSG_FDS)) {
                n++;
            }
            if (valid) {
                set(req(TRIGGER_EVENTFD, IrqType.MSIX, i, n), Arrays.copyOfRange(fds, i, i + n));
            } else {
                set(req(TRIGGER_EVENTFD, IrqType.MSIX, i, n));
            }
            i += n;
        }
    }

    @Test
    void qemuEnablingSequence() {
        // guest sets MSI-X enable: INTx off, then "enabled, no vectors"
        set(req(TRIGGER_NONE, IrqType.INTX, 0, 0));
        set(req(TRIGGER_EVENTFD, IrqType.MSIX, 0, 1));
        table.setMsixControl(true, false);
        assertThat(table.isEnabled(IrqType.MSIX, 0)).isFalse();

        // the guest unmasks vectors one by one: one SET_IRQS with one fd each
        List<Integer> given = new ArrayList<>();
        for (int v : new int[] {0, 1, 2}) {
            int fd = efds[v].give();
            given.add(fd);
            set(req(TRIGGER_EVENTFD, IrqType.MSIX, v, 1), fd);
        }
        assertThat(listener.takeMasks()).as("assigning unmasks the vector in our table")
                .containsExactly("unmask MSIX 0+1", "unmask MSIX 1+1", "unmask MSIX 2+1");
        for (int v = 0; v < 3; v++) {
            table.triggerMsix(v);
            assertThat(signals()).isEqualTo(only(v));
        }

        // later the whole array, split into runs of at most max_msg_fds fds
        int[] all = Efd.give(efds, 0, MSIX_VECTORS);
        qemuSendArray(all);
        for (int fd : given) {
            assertThat(FdCount.isOpen(fd)).as("replaced fd %d", fd).isFalse();
        }
        for (int v = 0; v < MSIX_VECTORS; v++) {
            assertThat(table.isEnabled(IrqType.MSIX, v)).isTrue();
            table.triggerMsix(v);
            assertThat(signals()).isEqualTo(only(v));
        }

        // and again with vectors 5 and 6 released (-1): a no-fd run de-assigns exactly [5, 7)
        int[] sent = new int[MSIX_VECTORS];
        for (int v = 0; v < MSIX_VECTORS; v++) {
            sent[v] = v == 5 || v == 6 ? -1 : efds[v].give();
        }
        qemuSendArray(sent);
        assertThat(FdCount.isOpen(all[5])).isFalse();
        assertThat(FdCount.isOpen(all[6])).isFalse();
        assertThat(table.isEnabled(IrqType.MSIX, 4)).isTrue();
        assertThat(table.isEnabled(IrqType.MSIX, 5)).isFalse();
        assertThat(table.isEnabled(IrqType.MSIX, 6)).isFalse();
        assertThat(table.isEnabled(IrqType.MSIX, 7)).isTrue();
        table.triggerMsix(5);
        assertThat(signals()).isEqualTo(new long[MSIX_VECTORS]);
        table.triggerMsix(7);
        assertThat(signals()).isEqualTo(only(7));

        // guest clears MSI-X enable: NONE|TRIGGER count 0 closes everything
        set(req(TRIGGER_NONE, IrqType.MSIX, 0, 0));
        table.setMsixControl(false, false);
        for (int v = 0; v < MSIX_VECTORS; v++) {
            assertThat(table.isEnabled(IrqType.MSIX, v)).isFalse();
            if (sent[v] >= 0) {
                assertThat(FdCount.isOpen(sent[v])).isFalse();
            }
        }
    }

    @Test
    void theFirstRunIsSplitByMaxMsgFds() {
        int[] all = Efd.give(efds, 0, MSIX_VECTORS);
        // the two messages QEMU sends for 20 vectors with max_msg_fds 16
        set(req(TRIGGER_EVENTFD, IrqType.MSIX, 0, 16), Arrays.copyOfRange(all, 0, 16));
        set(req(TRIGGER_EVENTFD, IrqType.MSIX, 16, 4), Arrays.copyOfRange(all, 16, 20));
        assertThat(listener.takeMasks()).containsExactly("unmask MSIX 0+16", "unmask MSIX 16+4");
        table.triggerMsix(19);
        assertThat(signals()).isEqualTo(only(19));
    }

    @Test
    void maskedVectorPendsInThePbaAndFiresOnceWhenTheTableUnmasksIt() {
        set(req(TRIGGER_EVENTFD, IrqType.MSIX, 0, MSIX_VECTORS), Efd.give(efds, 0, MSIX_VECTORS));
        listener.takeMasks();
        set(req(MASK_NONE, IrqType.MSIX, 9, 1));
        assertThat(listener.takeMasks()).containsExactly("mask MSIX 9+1");
        assertThat(readTable(9 * 16 + 12, 4)).as("Vector Control shows the mask").isEqualTo(1);

        table.triggerMsix(9);
        table.triggerMsix(9);
        assertThat(signals()).isEqualTo(new long[MSIX_VECTORS]);
        assertThat(readPba(0, 8)).isEqualTo(1L << 9);
        assertThat(readPba(1, 1)).as("byte 1 of the PBA").isEqualTo(0b10);

        writeTable(9 * 16 + 12, 4, 0); // unmask through the table
        assertThat(signals()).isEqualTo(only(9));
        assertThat(readPba(0, 8)).isZero();
        assertThat(listener.takeMasks()).containsExactly("unmask MSIX 9+1");
        writeTable(9 * 16 + 12, 4, 0);
        assertThat(signals()).isEqualTo(new long[MSIX_VECTORS]);
        assertThat(listener.takeMasks()).as("no change, no news").isEmpty();
    }

    @Test
    void setIrqsUnmaskFiresThePendingVectorToo() {
        set(req(TRIGGER_EVENTFD, IrqType.MSIX, 3, 1), efds[3].give());
        set(req(MASK_NONE, IrqType.MSIX, 3, 1));
        table.triggerMsix(3);
        assertThat(table.msix().isPending(3)).isTrue();
        set(req(UNMASK_NONE, IrqType.MSIX, 0, 4));
        assertThat(signals()).isEqualTo(only(3));
        assertThat(table.msix().isPending(3)).isFalse();
    }

    @Test
    void aVectorPendingBeforeQemuAssignsItFiresOnAssignment() {
        table.triggerMsix(4); // masked since reset
        assertThat(table.msix().isPending(4)).isTrue();
        set(req(TRIGGER_EVENTFD, IrqType.MSIX, 4, 1), efds[4].give());
        assertThat(signals()).isEqualTo(only(4));
        assertThat(table.msix().isPending(4)).isFalse();
    }

    @Test
    void unmaskingAPendingVectorWithoutEventfdDropsIt() {
        table.triggerMsix(4);
        writeTable(4 * 16 + 12, 4, 0);
        assertThat(table.msix().isPending(4)).isFalse();
        set(req(TRIGGER_EVENTFD, IrqType.MSIX, 4, 1), efds[4].give());
        assertThat(signals()).isEqualTo(new long[MSIX_VECTORS]);
    }

    @Test
    void functionMask() {
        set(req(TRIGGER_EVENTFD, IrqType.MSIX, 0, MSIX_VECTORS), Efd.give(efds, 0, MSIX_VECTORS));
        table.setMsixControl(true, true);
        table.triggerMsix(2);
        table.triggerMsix(5);
        set(req(MASK_NONE, IrqType.MSIX, 5, 1));
        assertThat(signals()).isEqualTo(new long[MSIX_VECTORS]);
        assertThat(readPba(0, 4)).isEqualTo((1L << 2) | (1L << 5));

        table.setMsixControl(true, false);
        assertThat(signals()).as("vector 5 is still masked on its own").isEqualTo(only(2));
        assertThat(readPba(0, 4)).isEqualTo(1L << 5);
        table.setMsixControl(true, true);
        set(req(UNMASK_NONE, IrqType.MSIX, 5, 1));
        assertThat(signals()).as("function still masked").isEqualTo(new long[MSIX_VECTORS]);
        table.setMsixControl(true, false);
        assertThat(signals()).isEqualTo(only(5));
        assertThat(readPba(0, 8)).isZero();
    }

    @Test
    void aVectorFiredWhileMsixIsDisabledIsDroppedNotPending() {
        set(req(TRIGGER_EVENTFD, IrqType.MSIX, 0, 2), Efd.give(efds, 0, 2)); // vectors 0 and 1 unmasked
        set(req(MASK_NONE, IrqType.MSIX, 1, 1));
        table.setMsixControl(false, false);
        table.triggerMsix(0);
        table.triggerMsix(1);
        assertThat(signals()).as("PCI: no MSI-X message while Enable is clear").isEqualTo(new long[MSIX_VECTORS]);
        assertThat(readPba(0, 8)).as("and nothing pends, masked or not").isZero();
        table.setMsixControl(false, true);
        table.triggerMsix(0);
        assertThat(readPba(0, 8)).as("the Function Mask does not matter while disabled").isZero();

        table.setMsixControl(true, false);
        assertThat(signals()).as("enabling fires nothing that was dropped").isEqualTo(new long[MSIX_VECTORS]);
        table.triggerMsix(0);
        assertThat(signals()).isEqualTo(only(0));
    }

    @Test
    void aPendingVectorWaitsThroughADisableAndFiresWhenEnabledAndUnmasked() {
        set(req(TRIGGER_EVENTFD, IrqType.MSIX, 6, 1), efds[6].give());
        set(req(MASK_NONE, IrqType.MSIX, 6, 1));
        table.triggerMsix(6);
        assertThat(table.msix().isPending(6)).isTrue();
        table.setMsixControl(false, false);
        set(req(UNMASK_NONE, IrqType.MSIX, 6, 1));
        assertThat(signals()).as("unmasked, but MSI-X is disabled").isEqualTo(new long[MSIX_VECTORS]);
        assertThat(table.msix().isPending(6)).isTrue();
        table.setMsixControl(true, true);
        assertThat(signals()).as("enabled, but the function is masked").isEqualTo(new long[MSIX_VECTORS]);
        table.setMsixControl(true, false);
        assertThat(signals()).isEqualTo(only(6));
        assertThat(table.msix().isPending(6)).isFalse();
    }

    @Test
    void enablingWithTheFunctionUnmaskedFiresPendingUnmaskedVectors() {
        set(req(TRIGGER_EVENTFD, IrqType.MSIX, 0, MSIX_VECTORS), Efd.give(efds, 0, MSIX_VECTORS));
        table.setMsixControl(true, true);
        table.triggerMsix(8);
        table.setMsixControl(false, true);
        table.setMsixControl(true, false); // enable and function unmask in one write
        assertThat(signals()).isEqualTo(only(8));
    }

    @Test
    void pbaBeyondTheFirstWord() {
        IrqTable big = new IrqTable(Devices.withMsix(100), listener);
        big.setMsixControl(true, false);
        big.triggerMsix(70);
        big.triggerMsix(99);
        assertThat(read(big, PBA_BAR, PBA_OFFSET + 8, 8)).isEqualTo((1L << 6) | (1L << 35));
        assertThat(read(big, PBA_BAR, PBA_OFFSET, 8)).isZero();
        assertThat(big.msix().isPending(70)).isTrue();
        assertThat(big.msix().covers(PBA_BAR, PBA_OFFSET + 16, 1)).isFalse();
        assertThat(big.msix().covers(PBA_BAR, PBA_OFFSET + 15, 1)).isTrue();
    }

    // -------------------------------------------------------------------------------- table emulation

    @Test
    void tableEntriesReadBackAsWritten() {
        writeTable(16, 4, 0xFEE0_1000L);
        writeTable(20, 4, 0x1);
        writeTable(24, 4, 0x4041);
        assertThat(readTable(16, 8)).isEqualTo(0x1_FEE0_1000L);
        assertThat(readTable(24, 8)).isEqualTo(0x1_0000_4041L);
        writeTable(32, 8, 0x0000_0002_FEE0_2000L);
        assertThat(readTable(32, 4)).isEqualTo(0xFEE0_2000L);
        assertThat(readTable(36, 4)).isEqualTo(2);
        assertThat(readTable(0, 8)).isZero();
        assertThat(readTable(12, 4)).as("masked after reset").isEqualTo(1);
    }

    @Test
    void eightByteWriteOfDataAndControlUnmasksAtomically() {
        set(req(TRIGGER_EVENTFD, IrqType.MSIX, 1, 1), efds[1].give());
        set(req(MASK_NONE, IrqType.MSIX, 1, 1));
        table.triggerMsix(1);
        writeTable(16 + 8, 8, 0x0000_0000_0000_0099L);
        assertThat(signals()).isEqualTo(only(1));
        assertThat(readTable(16 + 8, 4)).isEqualTo(0x99);
        writeTable(16 + 8, 8, 0xFFFF_FFFF_0000_0077L);
        assertThat(readTable(16 + 12, 4)).as("only the mask bit of Vector Control is kept").isEqualTo(1);
        assertThat(table.msix().isMasked(1)).isTrue();
    }

    @Test
    void smallAndUnalignedAccessesWorkBytewise() {
        writeTable(3 * 16 + 1, 2, 0xBEEF);
        assertThat(readTable(3 * 16, 4)).isEqualTo(0x00BE_EF00L);
        assertThat(readTable(3 * 16 + 2, 1)).isEqualTo(0xBE);
        table.triggerMsix(3);
        set(req(TRIGGER_EVENTFD, IrqType.MSIX, 3, 1), efds[3].give()); // fires the pending one, unmasks
        assertThat(signals()).isEqualTo(only(3));
        writeTable(3 * 16 + 12, 1, 1); // one-byte mask
        assertThat(table.msix().isMasked(3)).isTrue();
        table.triggerMsix(3);
        assertThat(readPba(0, 1)).isEqualTo(0b1000);
        writeTable(3 * 16 + 12, 1, 0);
        assertThat(signals()).isEqualTo(only(3));
    }

    @Test
    void pbaIsReadOnly() {
        table.triggerMsix(1);
        write(table, PBA_BAR, PBA_OFFSET, 8, 0);
        write(table, PBA_BAR, PBA_OFFSET, 8, -1L);
        assertThat(readPba(0, 8)).isEqualTo(0b10);
    }

    @Test
    void coversExactlyTableAndPba() {
        MsixTableEmulation m = table.msix();
        long tableEnd = TABLE_OFFSET + 16L * MSIX_VECTORS;
        assertThat(m.covers(TABLE_BAR, TABLE_OFFSET, 4)).isTrue();
        assertThat(m.covers(TABLE_BAR, tableEnd - 8, 8)).isTrue();
        assertThat(m.covers(TABLE_BAR, tableEnd, 4)).isFalse();
        assertThat(m.covers(TABLE_BAR, TABLE_OFFSET - 4, 4)).isFalse();
        assertThat(m.covers(TABLE_BAR, TABLE_OFFSET - 4, 8)).as("straddles the start").isTrue();
        assertThat(m.covers(PBA_BAR, PBA_OFFSET, 8)).isTrue();
        assertThat(m.covers(PBA_BAR, PBA_OFFSET + 8, 8)).as("20 vectors: one PBA word").isFalse();
        assertThat(m.covers(0, TABLE_OFFSET, 4)).as("another BAR").isFalse();
        assertThat(m.covers(TABLE_BAR, TABLE_OFFSET, 0)).isFalse();
        assertThat(m.covers(TABLE_BAR, -8, 16)).isFalse();
        assertThat(m.vectors()).isEqualTo(MSIX_VECTORS);
        assertThat(m.toString()).contains("20 vectors");
        assertThatThrownBy(() -> m.read(0, 0, ByteBuffer.allocate(4))).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> m.write(TABLE_BAR, tableEnd, ByteBuffer.allocate(4)))
                .isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void bytesOutsideTableAndPbaOfAStraddlingAccessReadZeroAndAreNotWritten() {
        writeTable(0, 4, 0x11223344L);
        write(table, TABLE_BAR, TABLE_OFFSET - 4, 8, 0xAAAA_AAAA_5555_5555L);
        assertThat(read(table, TABLE_BAR, TABLE_OFFSET - 4, 8)).isEqualTo(0xAAAA_AAAA_0000_0000L);
    }

    @Test
    void readAndWriteMoveTheBufferPosition() {
        ByteBuffer dst = ByteBuffer.allocate(12).order(ByteOrder.LITTLE_ENDIAN);
        dst.position(4);
        table.msix().read(TABLE_BAR, TABLE_OFFSET + 8, dst);
        assertThat(dst.position()).isEqualTo(12);
        assertThat(dst.getInt(8)).isEqualTo(1); // vector 0's control
        ByteBuffer src = ByteBuffer.allocate(6).order(ByteOrder.LITTLE_ENDIAN);
        src.position(2);
        src.putInt(2, 0x12345678);
        table.msix().write(TABLE_BAR, TABLE_OFFSET, src);
        assertThat(src.position()).isEqualTo(6);
        assertThat(readTable(0, 4)).isEqualTo(0x12345678L);
    }

    @Test
    void overlappingTableAndPbaAreRefused() {
        assertThatThrownBy(() -> new IrqTable(io.vfiouser.device.DeviceDescription
                .builder("overlap", io.vfiouser.device.pci.PciIdentity.of(1, 2, 3))
                .region(io.vfiouser.device.Region.bar(0, 0x1000).build())
                .capability(new io.vfiouser.device.pci.MsixCapability(4, 0, 0, 0, 0x20))
                .build(), listener)).isInstanceOf(IllegalArgumentException.class).hasMessageContaining("overlap");
    }

    // ------------------------------------------------------------------------------------------ helpers

    private long readTable(long offset, int size) {
        return read(table, TABLE_BAR, TABLE_OFFSET + offset, size);
    }

    private void writeTable(long offset, int size, long value) {
        write(table, TABLE_BAR, TABLE_OFFSET + offset, size, value);
    }

    private long readPba(long offset, int size) {
        return read(table, PBA_BAR, PBA_OFFSET + offset, size);
    }

    static long read(IrqTable t, int bar, long offset, int size) {
        ByteBuffer dst = ByteBuffer.allocate(size).order(ByteOrder.LITTLE_ENDIAN);
        assertThat(t.msix().covers(bar, offset, size)).isTrue();
        t.msix().read(bar, offset, dst);
        long v = 0;
        for (int i = 0; i < size; i++) {
            v |= (dst.get(i) & 0xFFL) << (8 * i);
        }
        return v;
    }

    static void write(IrqTable t, int bar, long offset, int size, long value) {
        ByteBuffer src = ByteBuffer.allocate(size).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < size; i++) {
            src.put(i, (byte) (value >>> (8 * i)));
        }
        assertThat(t.msix().covers(bar, offset, size)).isTrue();
        t.msix().write(bar, offset, src);
    }
}
