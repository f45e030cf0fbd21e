package io.vfiouser.server.irq;

import static io.vfiouser.server.irq.Devices.MASK_BOOL;
import static io.vfiouser.server.irq.Devices.MASK_NONE;
import static io.vfiouser.server.irq.Devices.TRIGGER_BOOL;
import static io.vfiouser.server.irq.Devices.TRIGGER_EVENTFD;
import static io.vfiouser.server.irq.Devices.TRIGGER_NONE;
import static io.vfiouser.server.irq.Devices.UNMASK_BOOL;
import static io.vfiouser.server.irq.Devices.UNMASK_EVENTFD;
import static io.vfiouser.server.irq.Devices.UNMASK_NONE;
import static io.vfiouser.server.irq.Devices.bools;
import static io.vfiouser.server.irq.Devices.req;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vfiouser.codec.VfioUserProtocolException;
import io.vfiouser.codec.payload.IrqInfo;
import io.vfiouser.codec.payload.SetIrqs;
import io.vfiouser.device.IrqType;
import io.vfiouser.transport.FdSet;
import io.vfiouser.transport.linux.Errno;
import io.vfiouser.transport.testing.FdCount;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** IRQ_INFO, INTx, MSI, ERR/REQ, trigger(), loopback triggers, reset and clear. */
class IrqTableTest {
    private long fdsBefore;
    private RecordingListener listener;
    private IrqTable table;

    @BeforeEach
    void setUp() {
        fdsBefore = FdCount.now();
        listener = new RecordingListener();
        table = new IrqTable(Devices.full(), listener);
    }

    @AfterEach
    void tearDown() throws Exception {
        table.clear();
        FdCount.awaitAtMost(fdsBefore);
    }

    private void set(SetIrqs request, int... fds) {
        try {
            table.setIrqs(request, FdSet.of(fds));
        } finally {
            if (request.data() != null) {
                request.data().release();
            }
        }
    }

    // ------------------------------------------------------------------------------------------ IRQ_INFO

    @Test
    void irqInfoForEveryIndex() {
        int both = IrqInfo.FLAG_EVENTFD | IrqInfo.FLAG_MASKABLE;
        assertThat(table.irqInfo(0)).isEqualTo(new IrqInfo(16, both, 0, 1));
        assertThat(table.irqInfo(1)).isEqualTo(new IrqInfo(16, both, 1, Devices.MSI_VECTORS));
        assertThat(table.irqInfo(2)).isEqualTo(new IrqInfo(16, both, 2, Devices.MSIX_VECTORS));
        assertThat(table.irqInfo(3)).isEqualTo(new IrqInfo(16, IrqInfo.FLAG_EVENTFD, 3, 1));
        assertThat(table.irqInfo(4)).isEqualTo(new IrqInfo(16, IrqInfo.FLAG_EVENTFD, 4, 1));
        for (int i = 0; i < 5; i++) {
            assertThat(table.irqInfo(i).flags() & (IrqInfo.FLAG_NORESIZE | IrqInfo.FLAG_AUTOMASKED)).isZero();
        }
    }

    @Test
    void irqInfoOfABareDevice() {
        IrqTable bare = new IrqTable(Devices.bare(true, false), listener);
        assertThat(bare.irqInfo(0).count()).isZero();
        assertThat(bare.irqInfo(1).count()).isZero();
        assertThat(bare.irqInfo(2).count()).isZero();
        assertThat(bare.irqInfo(3).count()).isEqualTo(1);
        assertThat(bare.irqInfo(4).count()).isZero();
        assertThat(bare.msix().vectors()).isZero();
        assertThat(bare.msix().covers(Devices.TABLE_BAR, Devices.TABLE_OFFSET, 4)).isFalse();
    }

    @Test
    void irqInfoIndexBeyond4IsEinval() {
        for (int index : new int[] {5, 9, -1}) {
            assertThatThrownBy(() -> table.irqInfo(index))
                    .isInstanceOfSatisfying(VfioUserProtocolException.class,
                            e -> assertThat(e.errno()).isEqualTo(Errno.EINVAL));
        }
    }

    // ---------------------------------------------------------------------------------------------- INTx

    @Test
    void intxAsQemuWithoutKvm() {
        try (Efd intx = new Efd()) {
            int fd = intx.give();
            set(req(TRIGGER_EVENTFD, IrqType.INTX, 0, 1), fd);
            assertThat(table.isEnabled(IrqType.INTX, 0)).isTrue();
            assertThat(FdCount.isOpen(fd)).as("taken by the table").isTrue();

            table.assertIntx();
            assertThat(intx.signals()).isEqualTo(1);
            table.assertIntx(); // already high: a level does not edge again
            assertThat(intx.signals()).isZero();
            assertThat(table.intxAsserted()).isTrue();

            // guest EOI while the device still holds the line: signalled again
            set(req(UNMASK_NONE, IrqType.INTX, 0, 1));
            assertThat(intx.signals()).isEqualTo(1);
            assertThat(listener.takeMasks()).containsExactly("unmask INTX 0+1");

            table.deassertIntx();
            set(req(UNMASK_NONE, IrqType.INTX, 0, 1));
            assertThat(intx.signals()).isZero();
            assertThat(listener.takeMasks()).containsExactly("unmask INTX 0+1");

            // disable (QEMU before MSI or reset): the eventfd goes
            set(req(TRIGGER_NONE, IrqType.INTX, 0, 0));
            assertThat(FdCount.isOpen(fd)).isFalse();
            table.assertIntx();
            assertThat(intx.signals()).isZero();
        }
    }

    @Test
    void intxAsQemuWithKvmAndItsResampleFd() {
        try (Efd intx = new Efd(); Efd resample = new Efd(); Efd resample2 = new Efd()) {
            int fd = intx.give();
            int rfd = resample.give();
            set(req(TRIGGER_EVENTFD, IrqType.INTX, 0, 1), fd);
            set(req(MASK_NONE, IrqType.INTX, 0, 1));
            set(req(UNMASK_EVENTFD, IrqType.INTX, 0, 1), rfd);
            set(req(UNMASK_NONE, IrqType.INTX, 0, 1));
            assertThat(listener.takeMasks()).containsExactly("mask INTX 0+1", "unmask INTX 0+1");
            assertThat(listener.takeNotifiers()).containsExactly("unmask INTX 0: -1 -> " + rfd);
            assertThat(table.resampleFd()).isEqualTo(rfd);
            assertThat(table.unmaskFd(IrqType.INTX, 0)).isEqualTo(rfd);
            assertThat(table.maskFd(IrqType.INTX, 0)).isEqualTo(-1);

            table.assertIntx();
            assertThat(intx.signals()).isEqualTo(1);
            // KVM signals the resample fd at guest EOI; the session then unmasks: still high, so again
            table.mask(IrqType.INTX, 0, 1, false);
            assertThat(intx.signals()).isEqualTo(1);
            assertThat(listener.takeMasks()).containsExactly("unmask INTX 0+1");

            // a new resample fd replaces (and closes) the old one, telling the listener before
            int rfd2 = resample2.give();
            set(req(UNMASK_EVENTFD, IrqType.INTX, 0, 1), rfd2);
            assertThat(FdCount.isOpen(rfd)).isFalse();
            assertThat(listener.takeNotifiers()).containsExactly("unmask INTX 0: " + rfd + " -> " + rfd2);

            // disabling the index closes trigger and resample fds
            set(req(TRIGGER_NONE, IrqType.INTX, 0, 0));
            assertThat(FdCount.isOpen(fd)).isFalse();
            assertThat(FdCount.isOpen(rfd2)).isFalse();
            assertThat(table.resampleFd()).isEqualTo(-1);
            assertThat(listener.takeNotifiers()).containsExactly("unmask INTX 0: " + rfd2 + " -> -1");
        }
    }

    @Test
    void notifierWithoutFdsUnregisters() {
        try (Efd n = new Efd()) {
            int fd = n.give();
            set(req(Devices.MASK_EVENTFD, IrqType.MSIX, 3, 1), fd);
            assertThat(table.maskFd(IrqType.MSIX, 3)).isEqualTo(fd);
            set(req(Devices.MASK_EVENTFD, IrqType.MSIX, 2, 3));
            assertThat(table.maskFd(IrqType.MSIX, 3)).isEqualTo(-1);
            assertThat(FdCount.isOpen(fd)).isFalse();
            assertThat(listener.takeNotifiers()).containsExactly("mask MSIX 3: -1 -> " + fd,
                    "mask MSIX 3: " + fd + " -> -1");
            assertThat(table.maskFd(IrqType.MSIX, 99)).isEqualTo(-1);
        }
    }

    @Test
    void maskedIntxSignalsOnUnmask() {
        try (Efd intx = new Efd()) {
            set(req(TRIGGER_EVENTFD, IrqType.INTX, 0, 1), intx.give());
            set(req(MASK_NONE, IrqType.INTX, 0, 1));
            table.assertIntx();
            assertThat(intx.signals()).isZero();
            set(req(UNMASK_NONE, IrqType.INTX, 0, 1));
            assertThat(intx.signals()).isEqualTo(1);
        }
    }

    @Test
    void maskedIntxThatWentLowStaysQuiet() {
        try (Efd intx = new Efd()) {
            set(req(TRIGGER_EVENTFD, IrqType.INTX, 0, 1), intx.give());
            set(req(MASK_NONE, IrqType.INTX, 0, 1));
            table.assertIntx();
            table.deassertIntx();
            set(req(UNMASK_NONE, IrqType.INTX, 0, 1));
            assertThat(intx.signals()).isZero();
        }
    }

    @Test
    void commandRegisterIntxDisable() {
        try (Efd intx = new Efd()) {
            set(req(TRIGGER_EVENTFD, IrqType.INTX, 0, 1), intx.give());
            table.setIntxDisabled(true);
            table.assertIntx();
            assertThat(intx.signals()).isZero();
            table.setIntxDisabled(true);
            assertThat(intx.signals()).isZero();
            table.setIntxDisabled(false);
            assertThat(intx.signals()).as("the line is still high").isEqualTo(1);
            table.setIntxDisabled(false);
            assertThat(intx.signals()).as("no change, no edge").isZero();
        }
    }

    @Test
    void intxIsSilentWhileMsiOrMsixIsEnabled() {
        try (Efd intx = new Efd()) {
            set(req(TRIGGER_EVENTFD, IrqType.INTX, 0, 1), intx.give());
            table.setMsiControl(true, 1);
            table.assertIntx();
            assertThat(intx.signals()).isZero();
            table.setMsiControl(false, 1);
            assertThat(intx.signals()).isEqualTo(1);

            table.deassertIntx();
            table.setMsixControl(true, false);
            table.assertIntx();
            assertThat(intx.signals()).isZero();
            table.setMsixControl(false, false);
            assertThat(intx.signals()).isEqualTo(1);
        }
    }

    @Test
    void assigningIntxWhileTheLineIsHighSignals() {
        try (Efd intx = new Efd()) {
            table.assertIntx();
            set(req(TRIGGER_EVENTFD, IrqType.INTX, 0, 1), intx.give());
            assertThat(intx.signals()).isEqualTo(1);
        }
    }

    @Test
    void disablingIntxForgetsTheClientsMask() {
        try (Efd intx = new Efd()) {
            set(req(TRIGGER_EVENTFD, IrqType.INTX, 0, 1), intx.give());
            set(req(MASK_NONE, IrqType.INTX, 0, 1));
            set(req(TRIGGER_NONE, IrqType.INTX, 0, 0));
            set(req(TRIGGER_EVENTFD, IrqType.INTX, 0, 1), intx.give());
            table.assertIntx();
            assertThat(intx.signals()).isEqualTo(1);
        }
    }

    // ----------------------------------------------------------------------------------------------- MSI

    @Test
    void msiAsQemuEnablesIt() {
        Efd[] msi = Efd.many(Devices.MSI_VECTORS);
        try (Efd intx = new Efd()) {
            int intxFd = intx.give();
            set(req(TRIGGER_EVENTFD, IrqType.INTX, 0, 1), intxFd);
            // guest sets MSI enable: INTx off, then all enabled vectors at once
            set(req(TRIGGER_NONE, IrqType.INTX, 0, 0));
            assertThat(FdCount.isOpen(intxFd)).isFalse();
            int[] fds = Efd.give(msi, 0, 4);
            set(req(TRIGGER_EVENTFD, IrqType.MSI, 0, 4), fds);
            table.setMsiControl(true, 4);
            for (int v = 0; v < 4; v++) {
                table.triggerMsi(v);
                for (int w = 0; w < 4; w++) {
                    assertThat(msi[w].signals()).as("vector %d fired, eventfd %d", v, w).isEqualTo(v == w ? 1 : 0);
                }
            }
            // guest clears MSI enable: MSI off, INTx back
            set(req(TRIGGER_NONE, IrqType.MSI, 0, 0));
            table.setMsiControl(false, 4);
            for (int fd : fds) {
                assertThat(FdCount.isOpen(fd)).isFalse();
            }
            table.triggerMsi(0);
            assertThat(msi[0].signals()).isZero();
        } finally {
            Efd.closeAll(msi);
        }
    }

    @Test
    void msiMaskBitsHoldInterruptsPending() {
        Efd[] msi = Efd.many(4);
        try {
            set(req(TRIGGER_EVENTFD, IrqType.MSI, 0, 4), Efd.give(msi, 0, 4));
            table.setMsiControl(true, 4);
            table.setMsiMask(0b0100);
            table.triggerMsi(2);
            table.triggerMsi(2);
            assertThat(msi[2].signals()).isZero();
            assertThat(table.msiPending()).isEqualTo(0b0100);
            table.triggerMsi(1);
            assertThat(msi[1].signals()).isEqualTo(1);
            table.setMsiMask(0b0100);
            assertThat(msi[2].signals()).isZero();
            table.setMsiMask(0);
            assertThat(msi[2].signals()).as("once, however often it fired").isEqualTo(1);
            assertThat(table.msiPending()).isZero();
            table.setMsiMask(0);
            assertThat(msi[2].signals()).isZero();
        } finally {
            Efd.closeAll(msi);
        }
    }

    @Test
    void msiSetIrqsMaskAndConfigMaskAreSeparate() {
        Efd[] msi = Efd.many(4);
        try {
            set(req(TRIGGER_EVENTFD, IrqType.MSI, 0, 4), Efd.give(msi, 0, 4));
            table.setMsiControl(true, 4);
            set(req(MASK_NONE, IrqType.MSI, 1, 2));
            assertThat(listener.takeMasks()).containsExactly("mask MSI 1+2");
            table.setMsiMask(0b0010);
            table.triggerMsi(1);
            table.triggerMsi(2);
            assertThat(table.msiPending()).isEqualTo(0b0110);
            set(req(UNMASK_NONE, IrqType.MSI, 1, 2));
            assertThat(msi[1].signals()).as("config still masks it").isZero();
            assertThat(msi[2].signals()).isEqualTo(1);
            assertThat(table.msiPending()).isEqualTo(0b0010);
            table.setMsiMask(0);
            assertThat(msi[1].signals()).isEqualTo(1);
        } finally {
            Efd.closeAll(msi);
        }
    }

    @Test
    void disablingMsiDropsTheClientsMask() {
        Efd[] msi = Efd.many(1);
        try {
            set(req(TRIGGER_EVENTFD, IrqType.MSI, 0, 1), Efd.give(msi, 0, 1));
            table.setMsiControl(true, 1);
            set(req(MASK_NONE, IrqType.MSI, 0, 1));
            table.triggerMsi(0);
            assertThat(table.msiPending()).isEqualTo(1);
            set(req(TRIGGER_NONE, IrqType.MSI, 0, 0));
            assertThat(table.msiPending()).as("unmasked with no eventfd left: dropped").isZero();
            set(req(TRIGGER_EVENTFD, IrqType.MSI, 0, 1), Efd.give(msi, 0, 1));
            table.triggerMsi(0);
            assertThat(msi[0].signals()).isEqualTo(1);
        } finally {
            Efd.closeAll(msi);
        }
    }

    @Test
    void msiFiredWhileDisabledIsDroppedNotPending() {
        Efd[] msi = Efd.many(2);
        try {
            set(req(TRIGGER_EVENTFD, IrqType.MSI, 0, 2), Efd.give(msi, 0, 2));
            table.setMsiMask(0b10);
            table.triggerMsi(0);
            table.triggerMsi(1);
            assertThat(msi[0].signals() + msi[1].signals()).as("PCI: no MSI message while Enable is clear").isZero();
            assertThat(table.msiPending()).as("and nothing pends, masked or not").isZero();
            table.setMsiControl(true, 2);
            assertThat(msi[0].signals() + msi[1].signals()).isZero();
            table.triggerMsi(1);
            assertThat(table.msiPending()).isEqualTo(0b10);
            table.setMsiControl(false, 2);
            table.setMsiMask(0);
            assertThat(msi[1].signals()).as("unmasked while disabled: still pending").isZero();
            assertThat(table.msiPending()).isEqualTo(0b10);
            table.setMsiControl(true, 2);
            assertThat(msi[1].signals()).as("fires when enabled again").isEqualTo(1);
            assertThat(table.msiPending()).isZero();
        } finally {
            Efd.closeAll(msi);
        }
    }

    @Test
    void msiVectorOutOfRangeIsABug() {
        assertThatThrownBy(() -> table.triggerMsi(Devices.MSI_VECTORS)).isInstanceOf(IndexOutOfBoundsException.class);
        assertThatThrownBy(() -> table.triggerMsi(-1)).isInstanceOf(IndexOutOfBoundsException.class);
        assertThatThrownBy(() -> table.triggerMsix(Devices.MSIX_VECTORS))
                .isInstanceOf(IndexOutOfBoundsException.class);
    }

    // -------------------------------------------------------------------------------------- ERR and REQ

    @Test
    void errorAndRequest() {
        try (Efd err = new Efd(); Efd reqFd = new Efd()) {
            table.triggerError(); // no eventfd: dropped
            table.triggerRequest();
            int e = err.give();
            set(req(TRIGGER_EVENTFD, IrqType.ERR, 0, 1), e);
            set(req(TRIGGER_EVENTFD, IrqType.REQ, 0, 1), reqFd.give());
            assertThat(table.isEnabled(IrqType.ERR, 0)).isTrue();
            table.triggerError();
            assertThat(err.signals()).isEqualTo(1);
            assertThat(reqFd.signals()).isZero();
            table.triggerRequest();
            table.triggerRequest();
            assertThat(reqFd.signals()).isEqualTo(2);
            assertThat(err.signals()).isZero();
            // QEMU's hot-unplug: ERR eventfd -1, i.e. EVENTFD with no fd
            set(req(TRIGGER_EVENTFD, IrqType.ERR, 0, 1));
            assertThat(FdCount.isOpen(e)).isFalse();
            table.triggerError();
            assertThat(err.signals()).isZero();
        }
    }

    @Test
    void errorAndRequestOfADeviceWithoutThem() {
        IrqTable bare = new IrqTable(Devices.bare(false, false), listener);
        bare.triggerError();
        bare.triggerRequest();
        bare.assertIntx();
        bare.trigger(0);
        assertThat(bare.isEnabled(IrqType.ERR, 0)).isFalse();
    }

    // ------------------------------------------------------------------------------------------- trigger()

    @Test
    void triggerPicksTheEnabledType() {
        Efd[] msi = Efd.many(4);
        Efd[] msix = Efd.many(Devices.MSIX_VECTORS);
        try (Efd intx = new Efd()) {
            set(req(TRIGGER_EVENTFD, IrqType.INTX, 0, 1), intx.give());
            set(req(TRIGGER_EVENTFD, IrqType.MSI, 0, 4), Efd.give(msi, 0, 4));
            set(req(TRIGGER_EVENTFD, IrqType.MSIX, 0, Devices.MSIX_VECTORS), Efd.give(msix, 0, Devices.MSIX_VECTORS));

            table.trigger(3);
            assertThat(intx.signals()).as("nothing enabled in config: INTx").isEqualTo(1);
            assertThat(table.intxAsserted()).isTrue();
            table.deassertIntx();

            table.setMsiControl(true, 2);
            table.trigger(3);
            assertThat(msi[1].signals()).as("vector 3 folded into the 2 enabled vectors").isEqualTo(1);
            assertThat(msi[3].signals()).isZero();
            assertThat(intx.signals()).isZero();
            table.setMsiControl(true, 4);
            table.trigger(3);
            assertThat(msi[3].signals()).isEqualTo(1);
            table.trigger(6);
            assertThat(msi[2].signals()).as("6 mod 4").isEqualTo(1);
            assertThatThrownBy(() -> table.trigger(-1)).isInstanceOf(IndexOutOfBoundsException.class);

            table.setMsixControl(true, false);
            table.trigger(17);
            assertThat(msix[17].signals()).isEqualTo(1);
            assertThat(msi[1].signals() + msi[3].signals() + intx.signals()).isZero();
            assertThatThrownBy(() -> table.trigger(Devices.MSIX_VECTORS))
                    .isInstanceOf(IndexOutOfBoundsException.class);

            table.setMsixControl(true, true);
            table.trigger(17);
            assertThat(msix[17].signals()).as("function masked").isZero();
            assertThat(table.msix().isPending(17)).isTrue();
        } finally {
            Efd.closeAll(msi);
            Efd.closeAll(msix);
        }
    }

    // ------------------------------------------------------------------------------------ loopback triggers

    @Test
    void triggerNoneAndBoolSignalTheEventfdsAsTheyAre() {
        Efd[] msix = Efd.many(4);
        try {
            set(req(TRIGGER_EVENTFD, IrqType.MSIX, 0, 4), Efd.give(msix, 0, 4));
            set(req(MASK_NONE, IrqType.MSIX, 0, 4));
            set(req(TRIGGER_NONE, IrqType.MSIX, 1, 2));
            assertThat(new long[] {msix[0].signals(), msix[1].signals(), msix[2].signals(), msix[3].signals()})
                    .containsExactly(0, 1, 1, 0);
            set(bools(TRIGGER_BOOL, IrqType.MSIX, 0, 1, 0, 2, 1));
            assertThat(new long[] {msix[0].signals(), msix[1].signals(), msix[2].signals(), msix[3].signals()})
                    .as("only bytes equal to 1 are true").containsExactly(1, 0, 0, 1);
            set(req(TRIGGER_NONE, IrqType.MSIX, 10, 5)); // no eventfds there: nothing
        } finally {
            Efd.closeAll(msix);
        }
    }

    @Test
    void maskAndUnmaskWithBoolTellTheListenerPerRun() {
        set(bools(MASK_BOOL, IrqType.MSIX, 2, 1, 1, 0, 1, 0, 0, 1, 1, 1));
        assertThat(listener.takeMasks()).containsExactly("mask MSIX 2+2", "mask MSIX 5+1", "mask MSIX 8+3");
        set(bools(UNMASK_BOOL, IrqType.MSIX, 8, 0, 1));
        assertThat(listener.takeMasks()).containsExactly("unmask MSIX 9+1");
        assertThat(table.msix().isMasked(8)).isTrue();
        assertThat(table.msix().isMasked(9)).isFalse();
        set(bools(UNMASK_BOOL, IrqType.INTX, 0, 0));
        assertThat(listener.takeMasks()).isEmpty();
    }

    @Test
    void maskRejectsWhatHasNoMask() {
        assertThatThrownBy(() -> table.mask(IrqType.ERR, 0, 1, true)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> table.mask(IrqType.MSI, 3, 2, true)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> table.mask(IrqType.MSIX, -1, 1, true)).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void aFailingListenerDoesNotFailTheRequestNorLeakFds() {
        IrqTable t = new IrqTable(Devices.full(), new IrqTable.Listener() {
            @Override
            public void irqMaskChanged(IrqType type, int start, int count, boolean masked) {
                throw new IllegalStateException("device bug");
            }

            @Override
            public void notifierChanged(IrqType type, int vector, boolean unmask, int oldFd, int newFd) {
                throw new IllegalStateException("session bug");
            }
        });
        try (Efd n = new Efd()) {
            int a = n.give();
            int b = n.give();
            t.setIrqs(req(UNMASK_EVENTFD, IrqType.INTX, 0, 1), FdSet.of(a));
            t.setIrqs(req(UNMASK_EVENTFD, IrqType.INTX, 0, 1), FdSet.of(b));
            assertThat(FdCount.isOpen(a)).isFalse();
            t.setIrqs(req(MASK_NONE, IrqType.INTX, 0, 1), FdSet.EMPTY);
            t.clear();
            assertThat(FdCount.isOpen(b)).isFalse();
        }
    }

    // ---------------------------------------------------------------------------------- reset and clear

    @Test
    void resetKeepsEventfdsAndResetsDeviceState() {
        Efd[] msix = Efd.many(2);
        Efd[] msi = Efd.many(1);
        try (Efd intx = new Efd()) {
            set(req(TRIGGER_EVENTFD, IrqType.INTX, 0, 1), intx.give());
            set(req(TRIGGER_EVENTFD, IrqType.MSI, 0, 1), Efd.give(msi, 0, 1));
            set(req(TRIGGER_EVENTFD, IrqType.MSIX, 0, 2), Efd.give(msix, 0, 2));
            table.setIntxDisabled(true);
            table.assertIntx();
            table.setMsiControl(true, 1);
            table.setMsiMask(1);
            table.triggerMsi(0);
            assertThat(table.msiPending()).isEqualTo(1);
            table.setMsixControl(true, true);
            table.triggerMsix(1);

            table.reset();

            assertThat(table.isEnabled(IrqType.INTX, 0)).isTrue();
            assertThat(table.isEnabled(IrqType.MSI, 0)).isTrue();
            assertThat(table.isEnabled(IrqType.MSIX, 1)).isTrue();
            assertThat(table.intxAsserted()).isFalse();
            assertThat(table.msiPending()).isZero();
            assertThat(table.msix().isPending(1)).isFalse();
            assertThat(table.msix().isMasked(0)).as("every vector masked after reset").isTrue();

            table.assertIntx();
            assertThat(intx.signals()).as("INTx-disable cleared by reset").isEqualTo(1);
            table.triggerMsi(0);
            table.triggerMsix(1);
            assertThat(msi[0].signals() + msix[1].signals()).as("MSI and MSI-X disabled by reset").isZero();
            assertThat(table.msiPending()).isZero();
            assertThat(table.msix().isPending(1)).isFalse();
            table.setMsiControl(true, 1);
            table.triggerMsi(0);
            assertThat(msi[0].signals()).as("MSI mask cleared by reset").isEqualTo(1);
            table.setMsixControl(true, false);
            table.triggerMsix(1);
            assertThat(msix[1].signals()).isZero();
            assertThat(table.msix().isPending(1)).isTrue();
            set(req(UNMASK_NONE, IrqType.MSIX, 1, 1));
            assertThat(msix[1].signals()).isEqualTo(1);
        } finally {
            Efd.closeAll(msix);
            Efd.closeAll(msi);
        }
    }

    @Test
    void resetKeepsTheClientsIntxMask() {
        try (Efd intx = new Efd()) {
            set(req(TRIGGER_EVENTFD, IrqType.INTX, 0, 1), intx.give());
            set(req(MASK_NONE, IrqType.INTX, 0, 1));
            table.reset();
            table.assertIntx();
            assertThat(intx.signals()).isZero();
            set(req(UNMASK_NONE, IrqType.INTX, 0, 1));
            assertThat(intx.signals()).isEqualTo(1);
        }
    }

    @Test
    void clearClosesEveryEventfd() {
        Efd[] efds = Efd.many(12);
        try {
            int[] given = new int[12];
            given[0] = efds[0].give();
            set(req(TRIGGER_EVENTFD, IrqType.INTX, 0, 1), given[0]);
            given[1] = efds[1].give();
            set(req(UNMASK_EVENTFD, IrqType.INTX, 0, 1), given[1]);
            given[2] = efds[2].give();
            set(req(TRIGGER_EVENTFD, IrqType.ERR, 0, 1), given[2]);
            given[3] = efds[3].give();
            set(req(TRIGGER_EVENTFD, IrqType.REQ, 0, 1), given[3]);
            int[] msi = Efd.give(efds, 4, 4);
            System.arraycopy(msi, 0, given, 4, 4);
            set(req(TRIGGER_EVENTFD, IrqType.MSI, 0, 4), msi);
            int[] msix = Efd.give(efds, 8, 3);
            System.arraycopy(msix, 0, given, 8, 3);
            set(req(TRIGGER_EVENTFD, IrqType.MSIX, 5, 3), msix);
            given[11] = efds[11].give();
            set(req(Devices.MASK_EVENTFD, IrqType.MSIX, 19, 1), given[11]);
            listener.takeNotifiers();
            table.setMsixControl(true, true);
            table.assertIntx();

            table.clear();

            for (int fd : given) {
                assertThat(FdCount.isOpen(fd)).as("fd %d", fd).isFalse();
            }
            assertThat(listener.takeNotifiers()).containsExactly("unmask INTX 0: " + given[1] + " -> -1",
                    "mask MSIX 19: " + given[11] + " -> -1");
            for (IrqType t : IrqType.values()) {
                assertThat(table.isEnabled(t, 0)).isFalse();
            }
            assertThat(table.intxAsserted()).isFalse();
            // triggers after a clear go nowhere
            table.assertIntx();
            table.triggerMsix(5);
            table.triggerError();
            for (Efd e : efds) {
                assertThat(e.signals()).isZero();
            }
            table.clear();
        } finally {
            Efd.closeAll(efds);
        }
    }

    @Test
    void theTableOwnsWhatItTookUntilItLetsGo() {
        try (Efd e = new Efd()) {
            int a = e.give();
            int b = e.give();
            set(req(TRIGGER_EVENTFD, IrqType.MSIX, 0, 1), a);
            assertThat(FdCount.isOpen(a)).isTrue();
            set(req(TRIGGER_EVENTFD, IrqType.MSIX, 0, 1), b);
            assertThat(FdCount.isOpen(a)).as("replaced").isFalse();
            assertThat(FdCount.isOpen(b)).isTrue();
            assertThat(List.of(table.isEnabled(IrqType.MSIX, 0), table.isEnabled(IrqType.MSIX, 1)))
                    .containsExactly(true, false);
        }
    }
}
