package io.vfiouser.it;

import static io.vfiouser.it.Wire.errno;
import static io.vfiouser.transport.linux.Errno.EMFILE;
import static io.vfiouser.transport.linux.Errno.ENOSPC;
import static org.assertj.core.api.Assertions.assertThat;

import io.vfiouser.client.GuestMemory;
import io.vfiouser.client.VfioUserClient;
import io.vfiouser.codec.VfioUserCommand;
import io.vfiouser.codec.payload.DmaMapRequest;
import io.vfiouser.codec.payload.DmaUnmapRequest;
import io.vfiouser.codec.payload.SetIrqs;
import io.vfiouser.server.ConnectionLimits;
import io.vfiouser.server.ServerOptions;
import io.vfiouser.transport.FdSet;
import io.vfiouser.transport.linux.Linux;
import io.vfiouser.transport.testing.FdCount;
import org.junit.jupiter.api.Test;

/**
 * Issue 11, defect 6 (per client), through a real socket: a client holds at most {@code maxDmaMappings} mappings
 * (announced as {@code max_dma_maps}; one more is ENOSPC) and at most {@code maxClientFds} fds (mapping fds and
 * interrupt eventfds together; one more is EMFILE); the fds of a refused message are closed, and a client that
 * leaves gives every fd back.
 */
class ClientFdLimitsTest {
    private static final int TRIGGER_EVENTFD = SetIrqs.ACTION_TRIGGER | SetIrqs.DATA_EVENTFD;
    private static final int MSIX = 2;
    private static final long IOVA = 0x1_0000_0000L;
    private static final long PAGE = 0x1000;

    private static ServerOptions limits(int maxDmaMappings, int maxClientFds) {
        return ServerOptions.DEFAULT.withLimits(ConnectionLimits.builder().maxDmaMappings(maxDmaMappings)
                .maxClientFds(maxClientFds).build());
    }

    private static int map(VfioUserClient client, GuestMemory ram, int i) throws Exception {
        return errno(client, VfioUserCommand.DMA_MAP, DmaMapRequest.of(3, 0, IOVA + i * PAGE, PAGE),
                FdSet.of(ram.dupFd()));
    }

    private static int unmap(VfioUserClient client, int i) throws Exception {
        return errno(client, VfioUserCommand.DMA_UNMAP, DmaUnmapRequest.of(0, IOVA + i * PAGE, PAGE));
    }

    private static int setMsix(VfioUserClient client, int start, int count) throws Exception {
        int[] fds = new int[count];
        for (int i = 0; i < count; i++) {
            fds[i] = Linux.eventfd(0, Linux.EFD_NONBLOCK);
        }
        return errno(client, VfioUserCommand.DEVICE_SET_IRQS, SetIrqs.of(TRIGGER_EVENTFD, MSIX, start, count),
                FdSet.of(fds));
    }

    @Test
    void theDefaultsAnnounce1024MappingsAndCapFdsAtAQuarterOfTheProcessLimit() throws Exception {
        assertThat(ConnectionLimits.DEFAULT.maxDmaMappings()).isEqualTo(1024);
        assertThat(ConnectionLimits.DEFAULT.clientFdLimit(20_000)).isEqualTo(2048);
        assertThat(ConnectionLimits.DEFAULT.clientFdLimit(4096)).isEqualTo(1024);
        try (ServerFixture fixture = new ServerFixture()) {
            assertThat(fixture.client().serverCapabilities().maxDmaMaps()).isEqualTo(1024);
        }
    }

    @Test
    void mappingsStopAtTheAnnouncedMaximum() throws Exception {
        try (ServerFixture fixture = new ServerFixture(limits(32, 2048));
             GuestMemory ram = GuestMemory.allocate(IOVA, PAGE)) {
            VfioUserClient client = fixture.client();
            assertThat(client.serverCapabilities().maxDmaMaps()).isEqualTo(32);
            for (int i = 0; i < 32; i++) {
                assertThat(map(client, ram, i)).as("mapping %d", i).isZero();
            }
            long held = FdCount.now();
            assertThat(map(client, ram, 32)).isEqualTo(ENOSPC);
            assertThat(errno(client, VfioUserCommand.DMA_MAP, DmaMapRequest.of(3, 0, IOVA + 40 * PAGE, PAGE)))
                    .as("a mapping without fd counts too").isEqualTo(ENOSPC);
            FdCount.awaitAtMost(held); // the refused message's fd is closed
            assertThat(unmap(client, 0)).isZero();
            assertThat(map(client, ram, 32)).isZero();
        }
    }

    @Test
    void mappingFdsAndEventfdsShareOneBudget() throws Exception {
        try (ServerFixture fixture = new ServerFixture(limits(64, 8));
             GuestMemory ram = GuestMemory.allocate(IOVA, PAGE)) {
            VfioUserClient client = fixture.client();
            for (int i = 0; i < 6; i++) {
                assertThat(map(client, ram, i)).as("mapping %d", i).isZero();
            }
            assertThat(errno(client, VfioUserCommand.DMA_MAP, DmaMapRequest.of(3, 0, IOVA + 50 * PAGE, PAGE)))
                    .as("a mapping without fd holds none").isZero();
            long held = FdCount.now();
            assertThat(setMsix(client, 0, 4)).as("6 + 4 > 8").isEqualTo(EMFILE);
            FdCount.awaitAtMost(held); // the 4 eventfds were closed
            assertThat(setMsix(client, 0, 2)).isZero();
            assertThat(map(client, ram, 6)).isEqualTo(EMFILE);
            // Replacing eventfds holds no more: allowed at the limit.
            assertThat(setMsix(client, 0, 2)).isZero();
            assertThat(setMsix(client, 1, 2)).as("vector 2 would be a ninth fd").isEqualTo(EMFILE);
            // Giving fds back makes room again: an unmap, and de-assigning eventfds (EVENTFD with no fds).
            assertThat(unmap(client, 0)).isZero();
            assertThat(setMsix(client, 2, 1)).isZero();
            assertThat(errno(client, VfioUserCommand.DEVICE_SET_IRQS, SetIrqs.of(TRIGGER_EVENTFD, MSIX, 0, 3),
                    FdSet.EMPTY)).isZero();
            for (int i = 6; i < 9; i++) {
                assertThat(map(client, ram, i)).as("mapping %d", i).isZero();
            }
            assertThat(map(client, ram, 9)).isEqualTo(EMFILE);
            // A new client starts with the whole budget (the fixture checks that every fd was closed).
            client.close();
            fixture.awaitNoClient();
            VfioUserClient next = fixture.client();
            for (int i = 0; i < 8; i++) {
                assertThat(map(next, ram, i)).as("mapping %d of the next client", i).isZero();
            }
        }
    }
}
