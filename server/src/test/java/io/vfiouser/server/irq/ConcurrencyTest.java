package io.vfiouser.server.irq;

import static io.vfiouser.server.irq.Devices.MASK_NONE;
import static io.vfiouser.server.irq.Devices.MSIX_VECTORS;
import static io.vfiouser.server.irq.Devices.TRIGGER_EVENTFD;
import static io.vfiouser.server.irq.Devices.TRIGGER_NONE;
import static io.vfiouser.server.irq.Devices.UNMASK_NONE;
import static io.vfiouser.server.irq.Devices.req;
import static org.assertj.core.api.Assertions.assertThat;

import io.vfiouser.device.IrqType;
import io.vfiouser.transport.FdSet;
import io.vfiouser.transport.testing.FdCount;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Triggers from device threads racing with the event loop's SET_IRQS, masks and clears. */
class ConcurrencyTest {
    private static final int THREADS = 4;

    private long fdsBefore;
    private IrqTable table;
    private Efd[] efds;

    @BeforeEach
    void setUp() {
        fdsBefore = FdCount.now();
        table = new IrqTable(Devices.full(), new RecordingListener());
        table.setMsixControl(true, false);
        efds = Efd.many(MSIX_VECTORS);
    }

    @AfterEach
    void tearDown() throws Exception {
        table.clear();
        Efd.closeAll(efds);
        FdCount.awaitAtMost(fdsBefore);
    }

    private List<Thread> start(int n, Runnable body, AtomicReference<Throwable> failure, CountDownLatch done) {
        List<Thread> threads = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            Thread t = new Thread(() -> {
                try {
                    body.run();
                } catch (Throwable e) {
                    failure.compareAndSet(null, e);
                } finally {
                    done.countDown();
                }
            }, "device-" + i);
            t.start();
            threads.add(t);
        }
        return threads;
    }

    @Test
    void triggersNeverHitAnEventfdBeingClosed() throws Exception {
        long failuresBefore = EventFds.failures();
        AtomicBoolean stop = new AtomicBoolean();
        AtomicReference<Throwable> failure = new AtomicReference<>();
        CountDownLatch done = new CountDownLatch(THREADS);
        start(THREADS, () -> {
            int i = 0;
            while (!stop.get()) {
                table.triggerMsix(i % MSIX_VECTORS);
                table.triggerMsi(i % Devices.MSI_VECTORS);
                table.trigger(i % MSIX_VECTORS);
                table.assertIntx();
                table.deassertIntx();
                table.triggerError();
                i++;
            }
        }, failure, done);
        for (int round = 0; round < 300; round++) {
            table.setIrqs(req(TRIGGER_EVENTFD, IrqType.MSIX, 0, 16), FdSet.of(Efd.give(efds, 0, 16)));
            table.setIrqs(req(TRIGGER_EVENTFD, IrqType.MSIX, 16, 4), FdSet.of(Efd.give(efds, 16, 4)));
            table.setIrqs(req(TRIGGER_EVENTFD, IrqType.MSI, 0, 4), FdSet.of(Efd.give(efds, 0, 4)));
            table.setIrqs(req(TRIGGER_EVENTFD, IrqType.INTX, 0, 1), FdSet.of(efds[0].give()));
            table.setIrqs(req(TRIGGER_EVENTFD, IrqType.ERR, 0, 1), FdSet.of(efds[1].give()));
            table.setMsixControl(round % 2 == 0, round % 3 == 0);
            table.setMsiControl(round % 5 == 0, 4);
            table.setIrqs(req(MASK_NONE, IrqType.MSIX, 0, 10), FdSet.EMPTY);
            table.setIrqs(req(UNMASK_NONE, IrqType.MSIX, 0, 10), FdSet.EMPTY);
            table.setIrqs(req(TRIGGER_EVENTFD, IrqType.MSIX, 5, 10), FdSet.EMPTY);
            table.setIrqs(req(TRIGGER_NONE, IrqType.MSI, 0, 0), FdSet.EMPTY);
            if (round % 10 == 0) {
                table.clear();
            } else {
                table.setIrqs(req(TRIGGER_NONE, IrqType.MSIX, 0, 0), FdSet.EMPTY);
            }
        }
        stop.set(true);
        assertThat(done.await(30, TimeUnit.SECONDS)).isTrue();
        assertThat(failure.get()).isNull();
        assertThat(EventFds.failures()).as("no write to a closed fd").isEqualTo(failuresBefore);
    }

    @Test
    void concurrentTriggersOfAMaskedVectorPendOnceAndFireOnceOnUnmask() throws Exception {
        table.setIrqs(req(TRIGGER_EVENTFD, IrqType.MSIX, 3, 1), FdSet.of(efds[3].give()));
        table.setIrqs(req(MASK_NONE, IrqType.MSIX, 3, 1), FdSet.EMPTY);
        AtomicReference<Throwable> failure = new AtomicReference<>();
        CountDownLatch done = new CountDownLatch(THREADS);
        CyclicBarrier go = new CyclicBarrier(THREADS);
        start(THREADS, () -> {
            try {
                go.await();
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
            for (int i = 0; i < 10_000; i++) {
                table.triggerMsix(3);
            }
        }, failure, done);
        assertThat(done.await(30, TimeUnit.SECONDS)).isTrue();
        assertThat(failure.get()).isNull();
        assertThat(efds[3].signals()).isZero();
        assertThat(table.msix().isPending(3)).isTrue();
        table.setIrqs(req(UNMASK_NONE, IrqType.MSIX, 3, 1), FdSet.EMPTY);
        assertThat(efds[3].signals()).isEqualTo(1);
        assertThat(table.msix().isPending(3)).isFalse();
    }

    @Test
    void noInterruptIsLostWhileTheClientTogglesTheMask() throws Exception {
        table.setIrqs(req(TRIGGER_EVENTFD, IrqType.MSIX, 0, 1), FdSet.of(efds[0].give()));
        AtomicBoolean stop = new AtomicBoolean();
        AtomicReference<Throwable> failure = new AtomicReference<>();
        CountDownLatch done = new CountDownLatch(1);
        // one device thread: each trigger after the previous was observed, so each must produce a signal
        // (directly, or through the pending bit when the vector is unmasked)
        start(1, () -> {
            long seen = 0;
            while (!stop.get()) {
                table.triggerMsix(0);
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
                long got;
                while ((got = efds[0].signals()) == 0) {
                    if (System.nanoTime() > deadline) {
                        throw new AssertionError("interrupt lost after " + seen);
                    }
                    Thread.onSpinWait();
                }
                seen += got;
            }
        }, failure, done);
        for (int round = 0; round < 20_000 && failure.get() == null; round++) {
            table.setIrqs(req(round % 2 == 0 ? MASK_NONE : UNMASK_NONE, IrqType.MSIX, 0, 1), FdSet.EMPTY);
            if (round % 7 == 0) {
                table.setMsixControl(true, round % 2 == 0);
            }
        }
        table.setMsixControl(true, false);
        table.setIrqs(req(UNMASK_NONE, IrqType.MSIX, 0, 1), FdSet.EMPTY);
        stop.set(true);
        assertThat(done.await(30, TimeUnit.SECONDS)).isTrue();
        assertThat(failure.get()).isNull();
    }

}
