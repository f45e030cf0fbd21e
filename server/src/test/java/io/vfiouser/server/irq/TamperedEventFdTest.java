package io.vfiouser.server.irq;

import static io.vfiouser.server.irq.Devices.TRIGGER_EVENTFD;
import static io.vfiouser.server.irq.Devices.req;
import static org.assertj.core.api.Assertions.assertThat;

import io.vfiouser.device.IrqType;
import io.vfiouser.transport.FdSet;
import io.vfiouser.transport.linux.Linux;
import io.vfiouser.transport.testing.FdCount;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * A client that makes its eventfd blocking again after SET_IRQS (O_NONBLOCK is shared with the server's copy) and
 * fills the counter holds the next signal in write(2). The watchdog releases it, the table reports the tampering,
 * and the device's later signals are written off the signalling thread.
 */
class TamperedEventFdTest {
    private static final long FULL = 0xffff_ffff_ffff_fffeL;
    private static final long BOUND_S = 2;

    private long fdsBefore;
    private final AtomicLong drops = new AtomicLong();
    private final AtomicLong tampers = new AtomicLong();
    private IrqGuard guard;
    private int client = -1;

    @BeforeEach
    void setUp() {
        fdsBefore = FdCount.now();
        guard = new IrqGuard("tampered", drops::incrementAndGet, tampers::incrementAndGet);
    }

    @AfterEach
    void tearDown() throws Exception {
        guard.close();
        if (client >= 0) {
            Linux.close(client);
        }
        FdCount.awaitAtMost(fdsBefore);
    }

    /** A table of a new connection to the guarded device, with {@code client}'s eventfd as MSI-X vector 0. */
    private IrqTable connect(Listener listener, int eventfd) throws Exception {
        IrqTable table = new IrqTable(Devices.full(), listener, guard);
        table.setMsixControl(true, false);
        table.setIrqs(req(TRIGGER_EVENTFD, IrqType.MSIX, 0, 1), FdSet.of(Linux.dup(eventfd)));
        assertThat(Linux.isNonBlocking(eventfd)).as("the server made it non-blocking").isTrue();
        return table;
    }

    /** What the hostile client does behind the server's back: blocking again, and full. */
    private static void tamper(int eventfd) throws Exception {
        Linux.setBlocking(eventfd);
        Linux.eventfdWrite(eventfd, FULL - countOf(eventfd));
        assertThat(countOf(eventfd)).isEqualTo(FULL);
    }

    /** Triggers MSI-X vector 0 on a thread of its own and waits for it to return, at most {@value #BOUND_S} s. */
    private void triggerWithinBound(IrqTable table) throws Exception {
        CountDownLatch done = new CountDownLatch(1);
        Thread device = new Thread(() -> {
            table.triggerMsix(0);
            done.countDown();
        }, "device");
        device.setDaemon(true);
        device.start();
        try {
            assertThat(done.await(BOUND_S, TimeUnit.SECONDS)).as("the signal returned").isTrue();
        } finally {
            if (done.getCount() > 0) {
                Linux.eventfdRead(client); // release the writer, so that the test fails instead of hanging
            }
        }
    }

    @Test
    void aSignalHeldByABlockingFullEventfdIsReleasedAndReported() throws Exception {
        client = Linux.eventfd(0, Linux.EFD_NONBLOCK);
        Listener listener = new Listener();
        IrqTable table = connect(listener, client);
        try {
            tamper(client);
            triggerWithinBound(table);

            assertThat(listener.tampered).containsExactly("MSIX 0");
            assertThat(guard.tainted()).isTrue();
            assertThat(tampers.get()).isEqualTo(1);
            assertThat(drops.get()).as("the released write went through").isZero();
            assertThat(Linux.isNonBlocking(client)).as("the watchdog made it non-blocking again").isTrue();
            assertThat(countOf(client)).as("the watchdog read the counter, then the write added 1").isEqualTo(1);
            assertThat(Linux.eventfdRead(client)).isEqualTo(1);

            assertThat(table.isEnabled(IrqType.MSIX, 0)).as("the table keeps its fd").isTrue();

            // Tainted: the next signal is written by the device's thread, through a duplicate of the fd.
            table.triggerMsix(0);
            await("the off-loop signal", () -> guard.offLoopSignals() == 1);
            await("the counter took it", () -> countOf(client) == 1);
        } finally {
            table.clear();
        }
    }

    @Test
    void onATaintedDeviceASecondTamperingHoldsOnlyTheDevicesOwnThread() throws Exception {
        client = Linux.eventfd(0, Linux.EFD_NONBLOCK);
        Listener first = new Listener();
        IrqTable table = connect(first, client);
        tamper(client);
        triggerWithinBound(table);
        table.clear();
        assertThat(guard.tainted()).isTrue();
        Linux.eventfdRead(client);

        // The client reconnects and does it again.
        Listener second = new Listener();
        IrqTable again = connect(second, client);
        try {
            tamper(client);
            triggerWithinBound(again);
            await("the watchdog released the device's thread", () -> tampers.get() == 2);
            assertThat(second.tampered).as("not reported: the table's caller never wrote, the device thread did")
                    .isEmpty();
            await("the released write went through", () -> guard.offLoopSignals() == 1);
            assertThat(countOf(client)).isEqualTo(1);

            // The device's thread is free again: signals keep flowing.
            Linux.eventfdRead(client);
            again.triggerMsix(0);
            await("a later signal", () -> guard.offLoopSignals() == 2 && countOf(client) == 1);
        } finally {
            again.clear();
        }
    }

    private static void await(String what, Check condition) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(BOUND_S);
        while (!condition.holds()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out waiting for " + what);
            }
            Thread.sleep(1);
        }
    }

    @FunctionalInterface
    private interface Check {
        boolean holds() throws Exception;
    }

    /** An eventfd's counter, read from /proc without consuming it. */
    static long countOf(int eventfd) throws Exception {
        for (String line : Files.readAllLines(Path.of("/proc/self/fdinfo/" + eventfd))) {
            if (line.startsWith("eventfd-count:")) {
                return Long.parseUnsignedLong(line.substring("eventfd-count:".length()).trim(), 16);
            }
        }
        throw new AssertionError("fd " + eventfd + " is not an eventfd");
    }

    private static final class Listener implements IrqTable.Listener {
        final List<String> tampered = new CopyOnWriteArrayList<>();

        @Override
        public void irqMaskChanged(IrqType type, int start, int count, boolean masked) {
        }

        @Override
        public void clientFdTampered(IrqType type, int vector) {
            tampered.add(type + " " + vector);
        }
    }
}
