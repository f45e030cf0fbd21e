package io.vfiouser.server.irq;

import static io.vfiouser.server.irq.Devices.TRIGGER_EVENTFD;
import static io.vfiouser.server.irq.Devices.UNMASK_EVENTFD;
import static io.vfiouser.server.irq.Devices.req;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vfiouser.codec.VfioUserProtocolException;
import io.vfiouser.codec.payload.SetIrqs;
import io.vfiouser.device.IrqType;
import io.vfiouser.transport.FdSet;
import io.vfiouser.transport.linux.Errno;
import io.vfiouser.transport.linux.ErrnoException;
import io.vfiouser.transport.linux.Linux;
import io.vfiouser.transport.testing.FdCount;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The fds a client hands over with SET_IRQS are eventfds, and signalling them never blocks: a pipe, a file or a
 * socket is EINVAL; a blocking eventfd is taken and made non-blocking; a signal to a full eventfd is dropped for
 * that vector only, and counted.
 */
class ClientEventFdTest {
    /** The largest value an eventfd counter holds; a write of 1 then blocks unless the file is non-blocking. */
    private static final long FULL = 0xffff_ffff_ffff_fffeL;

    private long fdsBefore;
    private RecordingListener listener;
    private IrqTable table;
    private final List<Integer> mine = new ArrayList<>();

    @BeforeEach
    void setUp() {
        fdsBefore = FdCount.now();
        listener = new RecordingListener();
        table = new IrqTable(Devices.full(), listener);
        table.setMsixControl(true, false);
    }

    @AfterEach
    void tearDown() throws Exception {
        table.clear();
        for (int fd : mine) {
            Linux.close(fd);
        }
        FdCount.awaitAtMost(fdsBefore);
    }

    private int keep(int fd) {
        mine.add(fd);
        return fd;
    }

    /** One of each kind of fd that is not an eventfd, each a duplicate for the table (the test keeps the original). */
    private int[] notEventFds() throws ErrnoException {
        int[] pipe = Linux.pipe(false);
        int[] pair = Linux.socketPair(false);
        keep(pipe[0]);
        keep(pipe[1]);
        keep(pair[0]);
        keep(pair[1]);
        int memfd = keep(Linux.memfdCreate("not-an-eventfd"));
        return new int[] {Linux.dup(pipe[1]), Linux.dup(pipe[0]), Linux.dup(pair[0]), Linux.dup(memfd)};
    }

    private void assertRefused(SetIrqs request, int... fds) {
        assertThatThrownBy(() -> table.setIrqs(request, FdSet.of(fds)))
                .isInstanceOfSatisfying(VfioUserProtocolException.class,
                        e -> assertThat(e.errno()).isEqualTo(Errno.EINVAL))
                .hasMessageContaining("not an eventfd");
        for (int fd : fds) {
            assertThat(FdCount.isOpen(fd)).as("fd %d closed", fd).isFalse();
        }
    }

    @Test
    void aPipeAFileOrASocketIsNoEventfd() throws Exception {
        for (int bad : notEventFds()) {
            assertRefused(req(TRIGGER_EVENTFD, IrqType.MSIX, 0, 1), bad);
        }
        for (int bad : notEventFds()) {
            assertRefused(req(UNMASK_EVENTFD, IrqType.INTX, 0, 1), bad); // QEMU's resample fd: must be pollable
        }
        for (int bad : notEventFds()) {
            assertRefused(req(TRIGGER_EVENTFD, IrqType.ERR, 0, 1), bad);
        }
        for (int bad : notEventFds()) {
            assertRefused(req(Devices.MASK_EVENTFD, IrqType.MSI, 0, 1), bad);
        }
        for (IrqType t : IrqType.values()) {
            assertThat(table.isEnabled(t, 0)).isFalse();
        }
        assertThat(table.resampleFd()).isEqualTo(-1);
        assertThat(listener.notifiers).isEmpty();
    }

    @Test
    void oneBadFdRefusesTheWholeRequest() throws Exception {
        Efd good = new Efd();
        try {
            int[] bad = notEventFds();
            int[] fds = {good.give(), bad[0], good.give()};
            assertRefused(req(TRIGGER_EVENTFD, IrqType.MSIX, 4, 3), fds);
            for (int v = 4; v < 7; v++) {
                assertThat(table.isEnabled(IrqType.MSIX, v)).isFalse();
            }
            assertThat(listener.takeMasks()).as("nothing unmasked").isEmpty();
            for (int i = 1; i < bad.length; i++) {
                Linux.close(bad[i]);
            }
        } finally {
            good.close();
        }
    }

    @Test
    void aBlockingEventfdIsTakenAndMadeNonBlockingForEveryHolder() throws Exception {
        int event = keep(Linux.eventfd(0, 0));
        table.setIrqs(req(TRIGGER_EVENTFD, IrqType.MSIX, 2, 1), FdSet.of(Linux.dup(event)));
        assertThat(table.isEnabled(IrqType.MSIX, 2)).isTrue();
        assertThat(Linux.isNonBlocking(event)).as("O_NONBLOCK is shared with the client's descriptor").isTrue();
        table.triggerMsix(2);
        assertThat(Linux.eventfdRead(event)).isEqualTo(1);
    }

    @Test
    void aFullBlockingEventfdDropsItsSignalWithoutBlockingAndOnlyForItsVector() throws Exception {
        int full = keep(Linux.eventfd(0, 0));
        Linux.eventfdWrite(full, FULL);
        Efd other = new Efd();
        try {
            table.setIrqs(req(TRIGGER_EVENTFD, IrqType.MSIX, 0, 1), FdSet.of(Linux.dup(full)));
            table.setIrqs(req(TRIGGER_EVENTFD, IrqType.MSIX, 1, 1), FdSet.of(other.give()));
            table.setIrqs(req(TRIGGER_EVENTFD, IrqType.ERR, 0, 1), FdSet.of(Linux.dup(full)));

            // On a thread of its own: if a trigger blocked, the test fails instead of hanging (and the finally
            // block below reads the counter, which lets the blocked write finish).
            CountDownLatch done = new CountDownLatch(1);
            Thread device = new Thread(() -> {
                for (int i = 0; i < 3; i++) {
                    table.triggerMsix(0);
                    table.triggerMsix(1);
                    table.triggerError();
                }
                done.countDown();
            }, "device");
            device.setDaemon(true);
            device.start();
            try {
                assertThat(done.await(10, TimeUnit.SECONDS)).as("no trigger blocked").isTrue();
            } finally {
                long left = Linux.eventfdRead(full);
                assertThat(left).as("the full counter is untouched").isEqualTo(FULL);
            }
            assertThat(other.signals()).as("the other vector is served").isEqualTo(3);
            assertThat(table.signalsDropped()).isEqualTo(6);

            // once the client reads its eventfd, the vector is signalled again
            table.triggerMsix(0);
            assertThat(Linux.eventfdRead(full)).isEqualTo(1);
            assertThat(table.signalsDropped()).isEqualTo(6);
        } finally {
            other.close();
        }
    }
}
