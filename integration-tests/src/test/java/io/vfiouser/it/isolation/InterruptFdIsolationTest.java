package io.vfiouser.it.isolation;

import static org.assertj.core.api.Assertions.assertThat;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.vfiouser.client.VfioUserClient;
import io.vfiouser.codec.VfioUserCommand;
import io.vfiouser.codec.VfioUserMessage;
import io.vfiouser.codec.payload.RegionAccess;
import io.vfiouser.codec.payload.SetIrqs;
import io.vfiouser.codec.payload.VfioUserPayload;
import io.vfiouser.device.IrqType;
import io.vfiouser.examples.nulldev.NullDevice;
import io.vfiouser.transport.FdSet;
import io.vfiouser.transport.linux.Errno;
import io.vfiouser.transport.linux.Linux;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/**
 * Issue 11, defect 1: a client's interrupt fd must not freeze the event loop. The server signals an MSI-X eventfd
 * with {@code write(2)} on the loop the moment the device fires (a doorbell write). A blocking eventfd whose counter
 * is at its maximum, or a blocking pipe once full, made that write block, and every other device on the loop
 * stopped answering. Now only eventfds are taken, made non-blocking, and a full one drops the signal.
 */
class InterruptFdIsolationTest {
    private static final long FULL_COUNTER = 0xffff_ffff_ffff_fffeL;
    private static final long CALL_BOUND_S = 10;

    @Test
    void aFullBlockingEventfdAsMsixVectorDoesNotFreezeTheLoop() throws Exception {
        int full = Linux.eventfd(0, 0); // blocking
        try (IsolationFixture fixture = new IsolationFixture()) {
            try {
                Linux.eventfdWrite(full, FULL_COUNTER);
                Bystander bystander = fixture.startBystander();
                VfioUserClient victim = fixture.victimClient();
                enableMsixAndUnmask(victim, 0);
                assertThat(call(victim, VfioUserCommand.DEVICE_SET_IRQS,
                        SetIrqs.of(SetIrqs.ACTION_TRIGGER | SetIrqs.DATA_EVENTFD, IrqType.MSIX.index(), 0, 1),
                        FdSet.of(Linux.dup(full)))).isZero();

                try (Doorbells abuse = new Doorbells(victim, 0)) {
                    bystander.awaitProgress(500);
                    bystander.assertHealthy();
                    abuse.awaitRung(abuse.rung() + 50);
                    assertThat(abuse.errors()).isEmpty();
                }
                bystander.assertHealthy();
                assertThat(countOf(full)).as("the signals were coalesced, the counter untouched")
                        .isEqualTo(FULL_COUNTER);
            } finally {
                // Non-blocking by now; were the server blocked in write(2), this would release it.
                Linux.eventfdRead(full);
            }
        } finally {
            Linux.close(full);
        }
    }

    @Test
    void aBlockingPipeAsMsixVectorIsRefusedAndRingingCannotFillIt() throws Exception {
        int[] pipe = Linux.pipe(false);
        try (IsolationFixture fixture = new IsolationFixture()) {
            try {
                Bystander bystander = fixture.startBystander();
                VfioUserClient victim = fixture.victimClient();
                enableMsixAndUnmask(victim, 1);
                int errno = call(victim, VfioUserCommand.DEVICE_SET_IRQS,
                        SetIrqs.of(SetIrqs.ACTION_TRIGGER | SetIrqs.DATA_EVENTFD, IrqType.MSIX.index(), 1, 1),
                        FdSet.of(Linux.dup(pipe[1])));

                // 64 KiB of pipe buffer hold 8192 signals: ring more than that while the bystander is checked
                // (had the pipe been taken, the loop would block in write(2) once it is full).
                try (Doorbells abuse = new Doorbells(victim, 1)) {
                    bystander.awaitProgress(500);
                    abuse.awaitRung(10_000);
                    bystander.assertHealthy();
                    assertThat(abuse.errors()).isEmpty();
                }
                bystander.assertHealthy();
                assertThat(errno).as("a pipe is no eventfd").isEqualTo(Errno.EINVAL);
            } finally {
                Linux.setNonBlocking(pipe[0]);
                drain(pipe[0]); // were the server blocked on the pipe, this would release it
            }
        } finally {
            Linux.close(pipe[0]);
            Linux.close(pipe[1]);
        }
    }

    /** Rings the doorbell of one vector over and over on a thread of its own, each ring awaited within a bound. */
    static final class Doorbells implements AutoCloseable {
        private final AtomicLong rung = new AtomicLong();
        private final List<String> errors = new CopyOnWriteArrayList<>();
        private volatile boolean stop;
        private final Thread thread;

        Doorbells(VfioUserClient client, int vector) {
            thread = new Thread(() -> {
                while (!stop) {
                    try {
                        ByteBuf value = Unpooled.buffer(8).writeLongLE(vector);
                        int errno = call(client, VfioUserCommand.REGION_WRITE,
                                RegionAccess.inRegion(NullDevice.REGISTER_BAR).atOffset(NullDevice.DOORBELL)
                                        .data(value), FdSet.EMPTY);
                        if (errno != 0) {
                            errors.add("doorbell failed with errno " + errno);
                            return;
                        }
                        rung.incrementAndGet();
                    } catch (Exception e) {
                        errors.add("doorbell failed: " + e);
                        return;
                    }
                }
            }, "doorbells");
            thread.setDaemon(true);
            thread.start();
        }

        long rung() {
            return rung.get();
        }

        List<String> errors() {
            return List.copyOf(errors);
        }

        void awaitRung(long n) throws InterruptedException {
            Conditions.await(n + " doorbells answered (errors: " + errors + ")",
                    () -> rung.get() >= n || !errors.isEmpty());
        }

        @Override
        public void close() throws InterruptedException {
            stop = true;
            thread.join(TimeUnit.SECONDS.toMillis(CALL_BOUND_S + 1));
        }
    }

    /** Sets MSI-X Enable in configuration space and clears the Mask bit of {@code vector} in the table. */
    static void enableMsixAndUnmask(VfioUserClient client, int vector) throws Exception {
        int cap = msixCapability(client);
        assertThat(call(client, VfioUserCommand.REGION_WRITE,
                RegionAccess.inRegion(7).atOffset(cap + 2)
                        .data(Unpooled.buffer(2).writeShortLE(0x8000)), FdSet.EMPTY)).isZero();
        assertThat(call(client, VfioUserCommand.REGION_WRITE,
                RegionAccess.inRegion(NullDevice.MSIX_BAR).atOffset(NullDevice.MSIX_TABLE_OFFSET + 16L * vector + 12)
                        .data(Unpooled.buffer(4).writeIntLE(0)),
                FdSet.EMPTY)).isZero();
    }

    private static int msixCapability(VfioUserClient client) throws Exception {
        VfioUserMessage reply = client.send(VfioUserCommand.REGION_READ,
                RegionAccess.inRegion(7).atOffset(0).count(256))
                .get(CALL_BOUND_S, TimeUnit.SECONDS);
        try {
            ByteBuf c = reply.payload(RegionAccess.class).data();
            int base = c.readerIndex();
            for (int at = c.getUnsignedByte(base + 0x34); at != 0; at = c.getUnsignedByte(base + at + 1)) {
                if (c.getUnsignedByte(base + at) == 0x11) {
                    return at;
                }
            }
            throw new AssertionError("no MSI-X capability");
        } finally {
            reply.release();
        }
    }

    /** Sends a command and returns the errno of its reply (0 for success), waiting at most {@value #CALL_BOUND_S} s. */
    static int call(VfioUserClient client, VfioUserCommand command, VfioUserPayload payload, FdSet fds)
            throws Exception {
        VfioUserMessage reply = client.send(command, payload, fds).get(CALL_BOUND_S, TimeUnit.SECONDS);
        try {
            return reply.header().isError() ? reply.header().error() : 0;
        } finally {
            reply.release();
        }
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

    private static void drain(int fd) throws Exception {
        try (var arena = java.lang.foreign.Arena.ofConfined()) {
            var buffer = arena.allocate(65536);
            while (Linux.read(fd, buffer) > 0) {
                // keep reading
            }
        }
    }
}
