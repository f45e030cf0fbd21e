package io.vfiouser.server.irq;

import static io.vfiouser.server.irq.Devices.MASK_BOOL;
import static io.vfiouser.server.irq.Devices.MASK_EVENTFD;
import static io.vfiouser.server.irq.Devices.MASK_NONE;
import static io.vfiouser.server.irq.Devices.MSIX_VECTORS;
import static io.vfiouser.server.irq.Devices.TRIGGER_BOOL;
import static io.vfiouser.server.irq.Devices.TRIGGER_EVENTFD;
import static io.vfiouser.server.irq.Devices.TRIGGER_NONE;
import static io.vfiouser.server.irq.Devices.UNMASK_NONE;
import static io.vfiouser.server.irq.Devices.bools;
import static io.vfiouser.server.irq.Devices.req;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.params.provider.Arguments.arguments;

import io.netty.buffer.Unpooled;
import io.netty.util.ReferenceCountUtil;
import io.vfiouser.codec.VfioUserProtocolException;
import io.vfiouser.codec.payload.SetIrqs;
import io.vfiouser.device.DeviceDescription;
import io.vfiouser.device.IrqType;
import io.vfiouser.transport.FdSet;
import io.vfiouser.transport.linux.Errno;
import io.vfiouser.transport.testing.FdCount;
import java.util.function.Supplier;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Every DEVICE_SET_IRQS row of the digest (§3.8, §6.3) that the interrupt table owns: the rejected ones answer
 * EINVAL, change nothing and close every fd that came with them; the accepted corner cases succeed. The wire shape
 * (argsz, BOOL data length) is the decoder's and is tested with it ({@code MalformedMessagesTest}).
 */
class SetIrqsValidationTest {
    private static final int MSIX = IrqType.MSIX.index();

    static Stream<Arguments> rejected() {
        return Stream.of(
                row("index 5", () -> SetIrqs.of(TRIGGER_EVENTFD, 5, 0, 1), 1),
                row("index u32 max", () -> SetIrqs.of(TRIGGER_EVENTFD, -1, 0, 1), 1),
                row("no action bit", () -> req(SetIrqs.DATA_EVENTFD, IrqType.MSIX, 0, 1), 1),
                row("MASK and TRIGGER", () -> req(TRIGGER_NONE | SetIrqs.ACTION_MASK, IrqType.MSIX, 0, 1), 0),
                row("MASK and UNMASK", () -> req(MASK_NONE | SetIrqs.ACTION_UNMASK, IrqType.MSIX, 0, 1), 0),
                row("no data bit", () -> req(SetIrqs.ACTION_TRIGGER, IrqType.MSIX, 0, 1), 1),
                row("NONE and EVENTFD", () -> req(TRIGGER_EVENTFD | SetIrqs.DATA_NONE, IrqType.MSIX, 0, 1), 1),
                row("NONE and BOOL", () -> new SetIrqs(21, TRIGGER_NONE | SetIrqs.DATA_BOOL, MSIX, 0, 1,
                        Unpooled.wrappedBuffer(new byte[] {1})), 0),
                row("unknown flag bit 0x40", () -> req(TRIGGER_EVENTFD | 0x40, IrqType.MSIX, 0, 1), 1),
                row("start = vector count", () -> req(TRIGGER_EVENTFD, IrqType.MSIX, MSIX_VECTORS, 1), 1),
                row("start beyond, count 0", () -> req(TRIGGER_NONE, IrqType.MSIX, MSIX_VECTORS + 5, 0), 0),
                row("start + count beyond", () -> req(TRIGGER_EVENTFD, IrqType.MSIX, MSIX_VECTORS - 1, 2), 2),
                row("start + count wraps u32", () -> req(TRIGGER_NONE, IrqType.MSIX, 1, -1), 0),
                row("start u32 max", () -> req(TRIGGER_NONE, IrqType.MSIX, -1, 1), 0),
                row("INTx MSI range: MSI has 4", () -> req(TRIGGER_EVENTFD, IrqType.MSI, 2, 3), 3),
                row("INTx has one vector", () -> req(TRIGGER_EVENTFD, IrqType.INTX, 1, 1), 1),
                row("ERR with MASK", () -> req(MASK_NONE, IrqType.ERR, 0, 1), 0),
                row("ERR with UNMASK", () -> req(UNMASK_NONE, IrqType.ERR, 0, 1), 0),
                row("REQ with MASK+EVENTFD", () -> req(MASK_EVENTFD, IrqType.REQ, 0, 1), 1),
                row("ERR with count 2", () -> req(TRIGGER_EVENTFD, IrqType.ERR, 0, 2), 2),
                row("REQ with start 1", () -> req(TRIGGER_EVENTFD, IrqType.REQ, 1, 1), 1),
                row("count 0 with start 3", () -> req(TRIGGER_NONE, IrqType.MSIX, 3, 0), 0),
                row("count 0 with TRIGGER+EVENTFD", () -> req(TRIGGER_EVENTFD, IrqType.MSIX, 0, 0), 0),
                row("count 0 with MASK+NONE", () -> req(MASK_NONE, IrqType.MSIX, 0, 0), 0),
                row("count 0 with TRIGGER+BOOL", () -> bools(TRIGGER_BOOL, IrqType.MSIX, 0), 0),
                row("count 0 with MASK+EVENTFD", () -> req(MASK_EVENTFD, IrqType.INTX, 0, 0), 0),
                row("fds with DATA_NONE", () -> req(TRIGGER_NONE, IrqType.MSIX, 0, 1), 1),
                row("fds with DATA_BOOL", () -> bools(MASK_BOOL, IrqType.MSIX, 0, 1), 1),
                row("fds with the disable form", () -> req(TRIGGER_NONE, IrqType.MSIX, 0, 0), 1),
                row("fewer fds than count", () -> req(TRIGGER_EVENTFD, IrqType.MSIX, 0, 3), 2),
                row("more fds than count", () -> req(TRIGGER_EVENTFD, IrqType.MSIX, 0, 1), 2),
                row("fds for UNMASK+EVENTFD not matching", () -> req(Devices.UNMASK_EVENTFD, IrqType.MSIX, 0, 2), 1));
    }

    private static Arguments row(String name, Supplier<SetIrqs> request, int fds) {
        return arguments(name, request, fds);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("rejected")
    void rejectedWithEinvalAndFdsClosed(String name, Supplier<SetIrqs> make, int nfds) throws Exception {
        long before = FdCount.now();
        RecordingListener listener = new RecordingListener();
        IrqTable table = new IrqTable(Devices.full(), listener);
        int[] fds = new int[nfds];
        try (Efd efd = new Efd()) {
            for (int i = 0; i < nfds; i++) {
                fds[i] = efd.give();
            }
            SetIrqs request = make.get();
            try {
                assertThatThrownBy(() -> table.setIrqs(request, FdSet.of(fds)))
                        .isInstanceOfSatisfying(VfioUserProtocolException.class,
                                e -> assertThat(e.errno()).isEqualTo(Errno.EINVAL));
            } finally {
                ReferenceCountUtil.release(request.data());
            }
            for (int fd : fds) {
                assertThat(FdCount.isOpen(fd)).as("fd %d closed", fd).isFalse();
            }
            for (IrqType t : IrqType.values()) {
                for (int v = 0; v < MSIX_VECTORS; v++) {
                    assertThat(table.isEnabled(t, v)).isFalse();
                }
            }
            assertThat(listener.masks).isEmpty();
            assertThat(listener.notifiers).isEmpty();
        }
        FdCount.awaitAtMost(before);
    }

    @Test
    void checksInLibvfioUsersOrder() {
        IrqTable table = new IrqTable(Devices.full(), new RecordingListener());
        assertThatThrownBy(() -> table.setIrqs(SetIrqs.of(0, 9, 50, 0), FdSet.EMPTY))
                .hasMessageContaining("index");
        assertThatThrownBy(() -> table.setIrqs(SetIrqs.of(0, MSIX, 50, 0), FdSet.EMPTY))
                .hasMessageContaining("action");
        assertThatThrownBy(() -> table.setIrqs(SetIrqs.of(SetIrqs.ACTION_TRIGGER, MSIX, 50, 0), FdSet.EMPTY))
                .hasMessageContaining("data-type");
        assertThatThrownBy(() -> table.setIrqs(SetIrqs.of(MASK_NONE, IrqType.ERR.index(), 3, 0), FdSet.EMPTY))
                .hasMessageContaining("start beyond");
        assertThatThrownBy(() -> table.setIrqs(SetIrqs.of(MASK_NONE, IrqType.ERR.index(), 0, 1), FdSet.EMPTY))
                .hasMessageContaining("can only be triggered");
        assertThatThrownBy(() -> table.setIrqs(SetIrqs.of(MASK_NONE, MSIX, 2, 0), FdSet.EMPTY))
                .hasMessageContaining("count 0 with start");
    }

    @Test
    void theCodecCannotBuildBoolDataOfTheWrongLength() {
        assertThatThrownBy(() -> new SetIrqs(22, TRIGGER_BOOL, MSIX, 0, 3, Unpooled.wrappedBuffer(new byte[2])))
                .isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void eventfdWithoutFdsDeassigns() throws Exception {
        long before = FdCount.now();
        IrqTable table = new IrqTable(Devices.full(), new RecordingListener());
        try (Efd a = new Efd()) {
            int fd = a.give();
            table.setIrqs(req(TRIGGER_EVENTFD, IrqType.MSIX, 4, 1), FdSet.of(fd));
            assertThat(table.isEnabled(IrqType.MSIX, 4)).isTrue();
            table.setIrqs(req(TRIGGER_EVENTFD, IrqType.MSIX, 3, 3), FdSet.EMPTY);
            assertThat(table.isEnabled(IrqType.MSIX, 4)).isFalse();
            assertThat(FdCount.isOpen(fd)).isFalse();
        }
        FdCount.awaitAtMost(before);
    }

    @Test
    void disablingAnIndexWithoutVectorsIsAccepted() {
        IrqTable table = new IrqTable(Devices.bare(false, false), new RecordingListener());
        for (IrqType t : IrqType.values()) {
            assertThatCode(() -> table.setIrqs(req(TRIGGER_NONE, t, 0, 0), FdSet.EMPTY)).doesNotThrowAnyException();
        }
        // ...but nothing else is, on such an index
        assertThatThrownBy(() -> table.setIrqs(req(TRIGGER_EVENTFD, IrqType.INTX, 0, 1), FdSet.EMPTY))
                .isInstanceOf(VfioUserProtocolException.class);
        assertThatThrownBy(() -> table.setIrqs(req(TRIGGER_EVENTFD, IrqType.ERR, 0, 1), FdSet.EMPTY))
                .isInstanceOf(VfioUserProtocolException.class);
    }

    @Test
    void argszAbove20IsAccepted() throws Exception {
        long before = FdCount.now();
        IrqTable table = new IrqTable(Devices.full(), new RecordingListener());
        try (Efd a = new Efd()) {
            table.setIrqs(new SetIrqs(64, TRIGGER_EVENTFD, MSIX, 0, 1, null), FdSet.of(a.give()));
            assertThat(table.isEnabled(IrqType.MSIX, 0)).isTrue();
            table.clear();
        }
        FdCount.awaitAtMost(before);
    }

    @Test
    void aRequestThatPassesIsNotAffectedByRowsOfOtherIndexes() {
        DeviceDescription d = Devices.full();
        IrqTable table = new IrqTable(d, new RecordingListener());
        // the last sub-index of each type is fine
        for (IrqType t : IrqType.values()) {
            int last = d.irqCount(t) - 1;
            assertThatCode(() -> table.setIrqs(req(TRIGGER_NONE, t, last, 1), FdSet.EMPTY))
                    .doesNotThrowAnyException();
        }
    }
}
