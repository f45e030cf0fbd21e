package io.vfiouser.it.isolation;

import static io.vfiouser.it.isolation.InterruptFdIsolationTest.call;
import static io.vfiouser.it.isolation.InterruptFdIsolationTest.countOf;
import static org.assertj.core.api.Assertions.assertThat;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.vfiouser.client.VfioUserClient;
import io.vfiouser.codec.VfioUserCommand;
import io.vfiouser.codec.VfioUserMessage;
import io.vfiouser.codec.payload.RegionAccess;
import io.vfiouser.codec.payload.SetIrqs;
import io.vfiouser.device.IrqType;
import io.vfiouser.examples.nulldev.NullDevice;
import io.vfiouser.transport.FdSet;
import io.vfiouser.transport.linux.Linux;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * Issue 11, defect 10: a device fired MSI-X vectors while the MSI-X Enable bit in configuration space was clear,
 * and the framework signalled the eventfd. As on PCI, a function with MSI-X disabled sends nothing and nothing
 * pends. Here a victim client assigns an eventfd and unmasks the vector but never enables MSI-X, then rings the
 * doorbell over and over while the bystander on the same loop is checked: the eventfd stays silent, the PBA empty.
 */
class MsixWhileDisabledIsolationTest {
    @Test
    void doorbellsWhileMsixIsDisabledSignalNothing() throws Exception {
        int event = Linux.eventfd(0, Linux.EFD_NONBLOCK);
        try (IsolationFixture fixture = new IsolationFixture()) {
            Bystander bystander = fixture.startBystander();
            VfioUserClient victim = fixture.victimClient();
            assertThat(call(victim, VfioUserCommand.DEVICE_SET_IRQS,
                    SetIrqs.of(SetIrqs.ACTION_TRIGGER | SetIrqs.DATA_EVENTFD, IrqType.MSIX.index(), 2, 1),
                    FdSet.of(Linux.dup(event)))).isZero();
            assertThat(call(victim, VfioUserCommand.REGION_WRITE,
                    RegionAccess.inRegion(NullDevice.MSIX_BAR).atOffset(NullDevice.MSIX_TABLE_OFFSET + 16L * 2 + 12)
                            .data(Unpooled.buffer(4).writeIntLE(0)),
                    FdSet.EMPTY)).isZero();

            try (InterruptFdIsolationTest.Doorbells abuse = new InterruptFdIsolationTest.Doorbells(victim, 2)) {
                bystander.awaitProgress(500);
                abuse.awaitRung(100);
                assertThat(abuse.errors()).isEmpty();
            }
            bystander.assertHealthy();
            assertThat(countOf(event)).as("no MSI-X message while Enable is clear").isZero();
            assertThat(pba(victim)).as("and nothing pends").isZero();
        } finally {
            Linux.close(event);
        }
    }

    private static long pba(VfioUserClient client) throws Exception {
        VfioUserMessage reply = client.send(VfioUserCommand.REGION_READ,
                RegionAccess.inRegion(NullDevice.MSIX_BAR).atOffset(NullDevice.MSIX_PBA_OFFSET)
                        .count(8)).get(10, TimeUnit.SECONDS);
        try {
            ByteBuf d = reply.payload(RegionAccess.class).data();
            return d.getLongLE(d.readerIndex());
        } finally {
            reply.release();
        }
    }
}
