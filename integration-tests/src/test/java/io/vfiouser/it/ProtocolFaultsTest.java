package io.vfiouser.it;

import static io.vfiouser.it.Wire.errno;
import static io.vfiouser.it.Wire.ok;
import static io.vfiouser.transport.linux.Errno.EINVAL;
import static org.assertj.core.api.Assertions.assertThat;

import io.vfiouser.client.GuestMemory;
import io.vfiouser.client.VfioUserClient;
import io.vfiouser.codec.VfioUserCommand;
import io.vfiouser.codec.payload.DeviceInfo;
import io.vfiouser.codec.payload.DmaMapRequest;
import io.vfiouser.codec.payload.DmaUnmapRequest;
import io.vfiouser.codec.payload.IrqInfo;
import io.vfiouser.codec.payload.RegionInfo;
import io.vfiouser.codec.payload.RegionInfoRequest;
import io.vfiouser.codec.payload.RegionIoFdsRequest;
import io.vfiouser.codec.payload.SetIrqs;
import io.vfiouser.device.IrqType;
import io.vfiouser.it.isolation.RawPeer;
import io.vfiouser.transport.FdSet;
import io.vfiouser.transport.testing.FdCount;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Issue 11, defect 8, through a real socket: an {@code argsz} of 2^31 or more is a large u32, not a negative
 * number (digest 1.5, 3.x: a larger argsz than the struct is fine for the info commands and DMA_MAP; DMA_UNMAP and
 * GET_REGION_IO_FDS cap it at 1 MiB), and a frame that fails framing while flagged NO_REPLY gets no reply, only the
 * close (digest 1.3).
 */
class ProtocolFaultsTest {
    private ServerFixture fixture;
    private VfioUserClient client;

    @BeforeEach
    void start() throws Exception {
        fixture = new ServerFixture();
        client = fixture.client();
    }

    @AfterEach
    void stop() throws Exception {
        fixture.close();
    }

    @ParameterizedTest
    @ValueSource(longs = {0x8000_0000L, 0xFFFF_FFFFL})
    void largeArgszIsAnsweredLikeAnyArgszAboveTheStruct(long argsz) throws Exception {
        ok(client, VfioUserCommand.DEVICE_GET_INFO, new DeviceInfo(argsz, 0, 0, 0), r -> {
            assertThat(r.header().messageSize()).isEqualTo(16 + 16);
            assertThat(r.payload(DeviceInfo.class).argsz()).isEqualTo(16);
            assertThat(r.payload(DeviceInfo.class).numRegions()).isEqualTo(9);
        });
        ok(client, VfioUserCommand.DEVICE_GET_IRQ_INFO, new IrqInfo(argsz, 0, 2, 0), r -> {
            assertThat(r.header().messageSize()).isEqualTo(16 + 16);
            assertThat(r.payload(IrqInfo.class).count()).isEqualTo(4);
        });
        long fdsBefore = FdCount.now();
        // BAR2 has a sparse-mmap capability: a large argsz gets the whole answer at once, with the region's fd.
        ok(client, VfioUserCommand.DEVICE_GET_REGION_INFO, new RegionInfoRequest(argsz, 2), r -> {
            RegionInfo info = r.payload(RegionInfo.class);
            assertThat(info.flags() & RegionInfo.FLAG_CAPS).isNotZero();
            assertThat(r.header().messageSize()).isEqualTo(16 + info.argsz());
            assertThat(r.fds().size()).isEqualTo(1);
        });
        FdCount.awaitAtMost(fdsBefore);
        try (GuestMemory ram = GuestMemory.allocate(0x100000, 0x10000)) {
            assertThat(errno(client, VfioUserCommand.DMA_MAP, new DmaMapRequest(argsz, 3, 0, ram.iova(), ram.size()),
                    FdSet.of(ram.dupFd()))).isZero();
            // DMA_UNMAP's argsz sizes a reply (at most 1 MiB, digest 3.3): EINVAL, and the mapping stays.
            assertThat(errno(client, VfioUserCommand.DMA_UNMAP,
                    new DmaUnmapRequest(argsz, 0, ram.iova(), ram.size(), 0, 0))).isEqualTo(EINVAL);
            assertThat(errno(client, VfioUserCommand.DMA_UNMAP, DmaUnmapRequest.of(0, ram.iova(), ram.size())))
                    .isZero();
        }
        // SET_IRQS too (its decoder read argsz as a signed int and refused these with EINVAL): disable MSI-X.
        assertThat(errno(client, VfioUserCommand.DEVICE_SET_IRQS, new SetIrqs(argsz,
                SetIrqs.DATA_NONE | SetIrqs.ACTION_TRIGGER, IrqType.MSIX.index(), 0, 0, null))).isZero();
        // The same 1 MiB cap for GET_REGION_IO_FDS (digest 3.6).
        assertThat(errno(client, VfioUserCommand.DEVICE_GET_REGION_IO_FDS, new RegionIoFdsRequest(argsz, 0, 0, 0)))
                .isEqualTo(EINVAL);
        ok(client, VfioUserCommand.DEVICE_GET_REGION_IO_FDS, RegionIoFdsRequest.of(1 << 20, 0), r -> {
        });
    }

    @Test
    void framingFaultFlaggedNoReplyIsClosedWithoutAReply() throws Exception {
        client.close(); // the device takes one client at a time
        fixture.awaitNoClient();
        // msg_size 8 is below the header: the stream is closed; NO_REPLY forbids the error reply.
        assertThat(bytesBeforeEof(header(5, VfioUserCommand.REGION_WRITE.code(), 8, 0x10))).isEmpty();
        fixture.awaitNoClient();
        assertThat(bytesBeforeEof(header(6, VfioUserCommand.REGION_WRITE.code(), 64L << 20, 0x10))).isEmpty();
        fixture.awaitNoClient();
        // Without NO_REPLY the client is told why: one header-only EINVAL reply, then the close.
        ByteBuffer reply = ByteBuffer.wrap(bytesBeforeEof(header(7, VfioUserCommand.REGION_WRITE.code(), 8, 0)))
                .order(ByteOrder.LITTLE_ENDIAN);
        assertThat(reply.remaining()).isEqualTo(16);
        assertThat(reply.getShort(0)).isEqualTo((short) 7);
        assertThat(reply.getInt(8)).isEqualTo(0x21);
        assertThat(reply.getInt(12)).isEqualTo(EINVAL);
        fixture.awaitNoClient();
    }

    private static byte[] header(int id, int command, long size, int flags) {
        ByteBuffer b = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN);
        b.putShort((short) id).putShort((short) command).putInt((int) size).putInt(flags).putInt(0);
        return b.array();
    }

    /** Sends {@code request} on a bare socket (no VERSION first); what arrives until the server closes. */
    private byte[] bytesBeforeEof(byte[] request) throws Exception {
        try (RawPeer raw = RawPeer.connect(fixture.socket())) {
            raw.write(request);
            return raw.readUntilEof();
        }
    }
}
