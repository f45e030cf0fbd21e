package io.vfiouser.it;

import static io.vfiouser.it.Wire.errno;
import static org.assertj.core.api.Assertions.assertThat;

import io.netty.buffer.Unpooled;
import io.vfiouser.client.VfioUserClient;
import io.vfiouser.codec.VfioUserCommand;
import io.vfiouser.codec.payload.RegionAccess;
import io.vfiouser.codec.payload.SetIrqs;
import io.vfiouser.examples.gpio.PciIdio16;
import io.vfiouser.transport.FdSet;
import io.vfiouser.transport.linux.Errno;
import io.vfiouser.transport.linux.Linux;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * Level-triggered INTx end to end with the gpio card: an input edge raises the line, the eventfd fires, and while
 * the line stays raised every unmask (SET_IRQS UNMASK, or a signal on the resample eventfd QEMU registers under
 * KVM) fires it again; the driver's clear lowers it.
 */
class IntxTest {
    private static final int BAR = 2;

    @Test
    void theLineFiresAgainOnUnmaskWhileRaised() throws Exception {
        try (ServerFixture fixture = new ServerFixture(PciIdio16.description("gpio"), new PciIdio16())) {
            VfioUserClient client = fixture.client();
            int trigger = Linux.eventfd(0, Linux.EFD_NONBLOCK);
            int resample = Linux.eventfd(0, Linux.EFD_NONBLOCK);
            try {
                assertThat(errno(client, VfioUserCommand.DEVICE_SET_IRQS,
                        SetIrqs.of(SetIrqs.ACTION_TRIGGER | SetIrqs.DATA_EVENTFD, 0, 0, 1),
                        FdSet.of(Linux.dup(trigger)))).isZero();
                assertThat(errno(client, VfioUserCommand.DEVICE_SET_IRQS,
                        SetIrqs.of(SetIrqs.ACTION_UNMASK | SetIrqs.DATA_EVENTFD, 0, 0, 1),
                        FdSet.of(Linux.dup(resample)))).isZero();
                // The driver enables the card's interrupt (a read of register 2), then output 0 changes input 0.
                assertThat(errno(client, VfioUserCommand.REGION_READ,
                        RegionAccess.inRegion(BAR).atOffset(2).count(1))).isZero();
                write(client, 0, 0x01);
                assertThat(awaitSignal(trigger)).isEqualTo(1);

                // Still raised: an unmask fires it again, by message and by the resample eventfd.
                assertThat(errno(client, VfioUserCommand.DEVICE_SET_IRQS,
                        SetIrqs.of(SetIrqs.ACTION_UNMASK | SetIrqs.DATA_NONE, 0, 0, 1))).isZero();
                assertThat(awaitSignal(trigger)).isEqualTo(1);
                Linux.eventfdWrite(resample, 1);
                assertThat(awaitSignal(trigger)).isEqualTo(1);

                // The driver's clear lowers the line: an unmask no longer fires.
                write(client, 1, 0);
                assertThat(errno(client, VfioUserCommand.DEVICE_SET_IRQS,
                        SetIrqs.of(SetIrqs.ACTION_UNMASK | SetIrqs.DATA_NONE, 0, 0, 1))).isZero();
                assertThat(Linux.eventfdRead(trigger)).isEqualTo(-1);
            } finally {
                Linux.close(trigger);
                Linux.close(resample);
            }
        }
    }

    @Test
    void aResampleFdThatCannotBePolledIsEinvalAndTheLineStillWorks() throws Exception {
        try (ServerFixture fixture = new ServerFixture(PciIdio16.description("gpio"), new PciIdio16())) {
            VfioUserClient client = fixture.client();
            int file = Linux.memfdCreate("not-a-resample-fd");
            int[] pipe = Linux.pipe(false);
            int trigger = Linux.eventfd(0, Linux.EFD_NONBLOCK);
            try {
                // A regular file cannot be polled (epoll_ctl says EPERM), a pipe could block: both refused at once.
                for (int bad : new int[] {file, pipe[0]}) {
                    assertThat(errno(client, VfioUserCommand.DEVICE_SET_IRQS,
                            SetIrqs.of(SetIrqs.ACTION_UNMASK | SetIrqs.DATA_EVENTFD, 0, 0, 1),
                            FdSet.of(Linux.dup(bad)))).isEqualTo(Errno.EINVAL);
                }
                assertThat(errno(client, VfioUserCommand.DEVICE_SET_IRQS,
                        SetIrqs.of(SetIrqs.ACTION_TRIGGER | SetIrqs.DATA_EVENTFD, 0, 0, 1),
                        FdSet.of(Linux.dup(pipe[1])))).isEqualTo(Errno.EINVAL);
                assertThat(errno(client, VfioUserCommand.DEVICE_SET_IRQS,
                        SetIrqs.of(SetIrqs.ACTION_TRIGGER | SetIrqs.DATA_EVENTFD, 0, 0, 1),
                        FdSet.of(Linux.dup(trigger)))).isZero();
                assertThat(errno(client, VfioUserCommand.REGION_READ,
                        RegionAccess.inRegion(BAR).atOffset(2).count(1))).isZero();
                write(client, 0, 0x01);
                assertThat(awaitSignal(trigger)).isEqualTo(1);
            } finally {
                Linux.close(file);
                Linux.close(pipe[0]);
                Linux.close(pipe[1]);
                Linux.close(trigger);
            }
        }
    }

    private static void write(VfioUserClient client, int offset, int value) throws Exception {
        assertThat(errno(client, VfioUserCommand.REGION_WRITE,
                RegionAccess.inRegion(BAR).atOffset(offset).data(Unpooled.directBuffer(1).writeByte(value)))).isZero();
    }

    /** Waits for the eventfd to be signalled (the resample path is asynchronous) and returns its count. */
    private static long awaitSignal(int eventfd) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(Wire.TIMEOUT_S);
        long n;
        while ((n = Linux.eventfdRead(eventfd)) < 0) {
            assertThat(System.nanoTime()).as("eventfd signalled").isLessThan(deadline);
            Thread.sleep(1);
        }
        return n;
    }
}
