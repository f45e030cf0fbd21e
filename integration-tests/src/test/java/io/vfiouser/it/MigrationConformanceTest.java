package io.vfiouser.it;

import static io.vfiouser.it.Wire.errno;
import static io.vfiouser.it.Wire.rawErrno;
import static io.vfiouser.it.Wire.u32;
import static org.assertj.core.api.Assertions.assertThat;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.vfiouser.client.ClientOptions;
import io.vfiouser.client.DeviceMigration;
import io.vfiouser.client.VfioUserClient;
import io.vfiouser.codec.VfioUserCommand;
import io.vfiouser.codec.VfioUserMessage;
import io.vfiouser.codec.payload.DeviceFeature;
import io.vfiouser.codec.payload.DeviceInfo;
import io.vfiouser.codec.payload.DmaMapRequest;
import io.vfiouser.codec.payload.DmaUnmapRequest;
import io.vfiouser.codec.payload.IrqInfo;
import io.vfiouser.codec.payload.MigData;
import io.vfiouser.codec.payload.MigDataRead;
import io.vfiouser.codec.payload.MigDeviceState;
import io.vfiouser.codec.payload.RegionAccess;
import io.vfiouser.codec.payload.RegionInfoRequest;
import io.vfiouser.codec.payload.RegionIoFdsRequest;
import io.vfiouser.codec.payload.RegionWriteMulti;
import io.vfiouser.codec.payload.SetIrqs;
import io.vfiouser.codec.payload.VfioUserPayload;
import io.vfiouser.codec.payload.WriteMultiEntry;
import io.vfiouser.device.DeviceContext;
import io.vfiouser.device.MigrationState;
import io.vfiouser.device.ResetReason;
import io.vfiouser.device.VfioUserDevice;
import io.vfiouser.device.VfioUserMigration;
import io.vfiouser.examples.nulldev.NullDevice;
import io.vfiouser.server.migration.MigrationRecord;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Migration through the real socket (digest 3.16-3.18, 6.3): DEVICE_FEATURE's operation rules, every request of
 * the state machine from every state (legal arcs, multi-step paths, refusals), which commands each state accepts,
 * and the rules of MIG_DATA_READ/WRITE. The device is the null device, wrapped to record the arcs it is told.
 */
class MigrationConformanceTest {
    private static final int EINVAL = 22;
    private static final int ENOENT = 2;
    private static final long S = 20;

    /** The null device, recording every migration arc it is told about. */
    static final class Recording implements VfioUserDevice, VfioUserMigration {
        final NullDevice inner = new NullDevice();
        final List<String> arcs = Collections.synchronizedList(new ArrayList<>());

        @Override
        public CompletableFuture<Void> regionRead(int region, long offset, ByteBuffer dst) {
            return inner.regionRead(region, offset, dst);
        }

        @Override
        public CompletableFuture<Void> regionWrite(int region, long offset, ByteBuffer src) {
            return inner.regionWrite(region, offset, src);
        }

        @Override
        public void attached(DeviceContext context) {
            inner.attached(context);
        }

        @Override
        public void detached() {
            inner.detached();
        }

        @Override
        public CompletableFuture<Void> reset(ResetReason reason) {
            return inner.reset(reason);
        }

        @Override
        public CompletableFuture<Void> quiesce() {
            return inner.quiesce();
        }

        @Override
        public CompletableFuture<Void> migrationStateChanged(MigrationState from, MigrationState to) {
            arcs.add(from + ">" + to);
            return inner.migrationStateChanged(from, to);
        }

        @Override
        public CompletableFuture<ByteBuffer> saveState(MigrationState state) {
            return inner.saveState(state);
        }

        @Override
        public CompletableFuture<Void> loadState(ByteBuffer chunk) {
            return inner.loadState(chunk);
        }
    }

    private ServerFixture fixture;
    private Recording device;
    private VfioUserClient client;
    private DeviceMigration migration;

    @BeforeEach
    void start() throws Exception {
        device = new Recording();
        fixture = new ServerFixture(NullDevice.description("mig"), device);
        client = fixture.client();
        migration = new DeviceMigration(client);
    }

    @AfterEach
    void stop() throws Exception {
        fixture.close();
    }

    // ------------------------------------------------------------------------------------------ helpers

    private int feature(int flags, int argsz, ByteBuf data) throws Exception {
        return errno(client, VfioUserCommand.DEVICE_FEATURE, new DeviceFeature(argsz, flags, data));
    }

    private int setState(int state) throws Exception {
        return feature(DeviceFeature.SET | DeviceFeature.FEATURE_MIG_DEVICE_STATE, 16,
                MigDeviceState.of(state).encode());
    }

    private int state() throws Exception {
        return migration.state().get(S, TimeUnit.SECONDS);
    }

    /** The whole STOP_COPY stream of the device as it is (it ends in RUNNING again). */
    private byte[] savedStream() throws Exception {
        assertThat(setState(MigDeviceState.STOP_COPY)).isZero();
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        while (true) {
            ByteBuf data = migration.read(64 << 10).get(S, TimeUnit.SECONDS);
            try {
                if (!data.isReadable()) {
                    break;
                }
                byte[] b = new byte[data.readableBytes()];
                data.readBytes(b);
                out.write(b);
            } finally {
                data.release();
            }
        }
        assertThat(setState(MigDeviceState.RUNNING)).isZero();
        return out.toByteArray();
    }

    private void writeStream(byte[] stream) throws Exception {
        for (int at = 0; at < stream.length; at += 10_000) {
            int n = Math.min(10_000, stream.length - at);
            migration.write(Unpooled.wrappedBuffer(stream, at, n)).get(S, TimeUnit.SECONDS);
        }
    }

    /** Brings the device into {@code target} from RUNNING; RESUMING with a complete stream loaded. */
    private void reach(int target, byte[] stream) throws Exception {
        if (target == MigDeviceState.ERROR) {
            assertThat(setState(MigDeviceState.RESUMING)).isZero();
            assertThat(setState(MigDeviceState.STOP)).as("nothing loaded").isEqualTo(EINVAL);
        } else {
            assertThat(setState(target)).isZero();
            if (target == MigDeviceState.RESUMING) {
                writeStream(stream);
            }
        }
        assertThat(state()).isEqualTo(target);
    }

    private void backToRunning() throws Exception {
        int s = state();
        if (s == MigDeviceState.ERROR || s == MigDeviceState.RESUMING || s == MigDeviceState.PRE_COPY) {
            assertThat(errno(client, VfioUserCommand.DEVICE_RESET, null)).isZero();
        } else if (s != MigDeviceState.RUNNING) {
            assertThat(setState(MigDeviceState.RUNNING)).isZero();
        }
        assertThat(state()).isEqualTo(MigDeviceState.RUNNING);
        device.arcs.clear();
    }

    // ------------------------------------------------------------------------------------- DEVICE_FEATURE

    @Test
    void theMigrationFeatureAnnouncesStopCopyAndPreCopy() throws Exception {
        assertThat(migration.flags().get(S, TimeUnit.SECONDS))
                .isEqualTo(DeviceFeature.MIGRATION_STOP_COPY | DeviceFeature.MIGRATION_PRE_COPY);
        VfioUserMessage reply = Wire.send(client, VfioUserCommand.DEVICE_FEATURE,
                new DeviceFeature(16, DeviceFeature.GET | DeviceFeature.FEATURE_MIGRATION, Unpooled.EMPTY_BUFFER));
        try {
            assertThat(reply.payload(DeviceFeature.class).argsz()).as("GET reply argsz = its size").isEqualTo(16);
        } finally {
            reply.release();
        }
        assertThat(state()).isEqualTo(MigDeviceState.RUNNING);
    }

    @Test
    void probeGetAndSetFollowEachFeaturesOperations() throws Exception {
        int probe = DeviceFeature.PROBE;
        int get = DeviceFeature.GET;
        int set = DeviceFeature.SET;
        int mig = DeviceFeature.FEATURE_MIGRATION;
        int state = DeviceFeature.FEATURE_MIG_DEVICE_STATE;
        int start = DeviceFeature.FEATURE_DMA_LOGGING_START;
        int stopLog = DeviceFeature.FEATURE_DMA_LOGGING_STOP;
        int report = DeviceFeature.FEATURE_DMA_LOGGING_REPORT;
        ByteBuf none = Unpooled.EMPTY_BUFFER;
        // PROBE succeeds exactly for the operations a feature offers.
        assertThat(feature(probe | mig, 8, none)).isZero();
        assertThat(feature(probe | get | mig, 8, none)).isZero();
        assertThat(feature(probe | set | mig, 8, none)).isEqualTo(EINVAL);
        assertThat(feature(probe | get | set | state, 8, none)).isZero();
        assertThat(feature(probe | set | start, 8, none)).isZero();
        assertThat(feature(probe | get | start, 8, none)).isEqualTo(EINVAL);
        assertThat(feature(probe | set | stopLog, 8, none)).isZero();
        assertThat(feature(probe | get | report, 8, none)).isZero();
        assertThat(feature(probe | set | report, 8, none)).isEqualTo(EINVAL);
        // Unsupported features, no operation, GET with SET without PROBE, unknown flag bits.
        for (int f : new int[] {0, 3, 4, 5, 9, 0xFFFF}) {
            assertThat(feature(probe | f, 8, none)).as("feature %d", f).isEqualTo(EINVAL);
        }
        assertThat(feature(state, 8, none)).isEqualTo(EINVAL);
        assertThat(feature(get | set | state, 16, MigDeviceState.of(2).encode())).isEqualTo(EINVAL);
        assertThat(feature(0x80000 | get | mig, 16, none)).isEqualTo(EINVAL);
        // SET on a GET-only feature, GET on a SET-only one.
        assertThat(feature(set | mig, 16, Unpooled.buffer(8).writeLongLE(5))).isEqualTo(EINVAL);
        assertThat(feature(get | start, 32, none)).isEqualTo(EINVAL);
        // GET whose argsz cannot hold the reply; SET/PROBE whose argsz is below the request.
        assertThat(feature(get | mig, 15, none)).isEqualTo(EINVAL);
        assertThat(feature(get | state, 15, none)).isEqualTo(EINVAL);
        assertThat(feature(set | state, 15, MigDeviceState.of(MigDeviceState.STOP).encode())).isEqualTo(EINVAL);
        assertThat(feature(probe | state, 7, none)).isEqualTo(EINVAL);
        // Payloads too short for their layout.
        assertThat(rawErrno(client, VfioUserCommand.DEVICE_FEATURE, u32(8))).isEqualTo(EINVAL);
        assertThat(feature(set | state, 16, Unpooled.buffer(4).writeIntLE(1))).isEqualTo(EINVAL);
        assertThat(state()).as("no refused SET changed anything").isEqualTo(MigDeviceState.RUNNING);
        assertThat(device.arcs).isEmpty();
    }

    @Test
    void probeAndSetRepliesEchoTheRequest() throws Exception {
        ByteBuf data = MigDeviceState.of(MigDeviceState.STOP).encode();
        VfioUserMessage reply = Wire.send(client, VfioUserCommand.DEVICE_FEATURE,
                new DeviceFeature(64, DeviceFeature.SET | DeviceFeature.FEATURE_MIG_DEVICE_STATE, data));
        try {
            DeviceFeature echo = reply.payload(DeviceFeature.class);
            assertThat(echo.argsz()).isEqualTo(64);
            assertThat(echo.flags()).isEqualTo(DeviceFeature.SET | DeviceFeature.FEATURE_MIG_DEVICE_STATE);
            assertThat(MigDeviceState.decode(echo.data())).isEqualTo(MigDeviceState.of(MigDeviceState.STOP));
        } finally {
            reply.release();
        }
        assertThat(state()).isEqualTo(MigDeviceState.STOP);
    }

    // -------------------------------------------------------------------------------------- state machine

    /** Whether the state machine leads from {@code from} to {@code to} (digest 3.16). */
    private static boolean reachable(int from, int to) {
        if (to == MigDeviceState.ERROR || to == MigDeviceState.RUNNING_P2P || to == MigDeviceState.PRE_COPY_P2P
                || to < 0 || to > 7 || from == MigDeviceState.ERROR) {
            return false;
        }
        return !(from == MigDeviceState.STOP_COPY && to == MigDeviceState.PRE_COPY);
    }

    /** The arcs the device must see on the way (single arcs only; never through PRE_COPY or STOP_COPY). */
    private static List<String> path(int from, int to) {
        String[] names = {"ERROR", "STOP", "RUNNING", "STOP_COPY", "RESUMING", "RUNNING_P2P", "PRE_COPY"};
        List<Integer> hops = switch (from * 10 + to) {
            case 21, 26, 12, 13, 14, 31, 41, 62, 63 -> List.of(to);
            case 23, 24 -> List.of(1, to);                // RUNNING -> STOP -> ...
            case 16 -> List.of(2, 6);                     // STOP -> RUNNING -> PRE_COPY
            case 32, 34 -> List.of(1, to);                // STOP_COPY -> STOP -> ...
            case 42, 43 -> List.of(1, to);                // RESUMING -> STOP -> ...
            case 46 -> List.of(1, 2, 6);
            case 61 -> List.of(2, 1);                     // PRE_COPY -> RUNNING -> STOP
            case 64 -> List.of(2, 1, 4);
            default -> List.of();
        };
        List<String> arcs = new ArrayList<>();
        int at = from;
        for (int h : hops) {
            arcs.add(names[at] + ">" + names[h]);
            at = h;
        }
        return arcs;
    }

    @Test
    void everyRequestFromEveryStateIsTakenOrRefused() throws Exception {
        byte[] stream = savedStream();
        device.arcs.clear();
        int[] froms = {MigDeviceState.RUNNING, MigDeviceState.STOP, MigDeviceState.PRE_COPY, MigDeviceState.STOP_COPY,
                MigDeviceState.RESUMING, MigDeviceState.ERROR};
        int[] targets = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0x7FFFFFFF, -1};
        for (int from : froms) {
            for (int to : targets) {
                reach(from, stream);
                device.arcs.clear();
                int result = setState(to);
                if (from == to) {
                    assertThat(result).as("%d -> itself", from).isZero();
                    assertThat(device.arcs).isEmpty();
                } else if (reachable(from, to)) {
                    assertThat(result).as("%d -> %d", from, to).isZero();
                    assertThat(state()).as("%d -> %d", from, to).isEqualTo(to);
                    assertThat(device.arcs).as("%d -> %d", from, to).containsExactlyElementsOf(path(from, to));
                } else {
                    assertThat(result).as("%d -> %d refused", from, to).isEqualTo(EINVAL);
                    assertThat(state()).as("%d -> %d leaves the state", from, to).isEqualTo(from);
                    assertThat(device.arcs).as("%d -> %d", from, to).isEmpty();
                }
                backToRunning();
            }
        }
    }

    @Test
    void anIncompleteOrForeignStreamLeavesTheDeviceInErrorUntilAReset() throws Exception {
        byte[] stream = savedStream();
        assertThat(setState(MigDeviceState.RESUMING)).isZero();
        writeStream(java.util.Arrays.copyOf(stream, stream.length - 1));
        assertThat(setState(MigDeviceState.RUNNING)).isEqualTo(EINVAL);
        assertThat(state()).isEqualTo(MigDeviceState.ERROR);
        assertThat(setState(MigDeviceState.RUNNING)).as("ERROR is left by reset only").isEqualTo(EINVAL);
        assertThat(errno(client, VfioUserCommand.DEVICE_RESET, null)).isZero();
        assertThat(state()).isEqualTo(MigDeviceState.RUNNING);

        // Garbage instead of a stream: the write is refused, and so is leaving RESUMING.
        assertThat(setState(MigDeviceState.RESUMING)).isZero();
        assertThat(errno(client, VfioUserCommand.MIG_DATA_WRITE, MigData.of(Unpooled.wrappedBuffer(new byte[64]))))
                .isEqualTo(EINVAL);
        assertThat(setState(MigDeviceState.STOP)).isEqualTo(EINVAL);
        assertThat(state()).isEqualTo(MigDeviceState.ERROR);
        assertThat(errno(client, VfioUserCommand.DEVICE_RESET, null)).isZero();

        // A stream of another kind of device: its header is refused.
        byte[] foreign = stream.clone();
        foreign[MigrationRecord.HEAD_SIZE + 8] ^= 1; // vendor id in the header record
        MigrationRecord.seal(java.nio.ByteBuffer.wrap(foreign)); // a valid record, of another device
        assertThat(setState(MigDeviceState.RESUMING)).isZero();
        assertThat(errno(client, VfioUserCommand.MIG_DATA_WRITE, MigData.of(Unpooled.wrappedBuffer(foreign, 0, 100))))
                .isEqualTo(EINVAL);
        assertThat(errno(client, VfioUserCommand.DEVICE_RESET, null)).isZero();

        // Bytes after the end: refused.
        assertThat(setState(MigDeviceState.RESUMING)).isZero();
        writeStream(stream);
        assertThat(errno(client, VfioUserCommand.MIG_DATA_WRITE, MigData.of(Unpooled.wrappedBuffer(new byte[1]))))
                .isEqualTo(EINVAL);
    }

    // ------------------------------------------------------------------------------- commands per state

    private record Sample(String name, Supplier<VfioUserPayload> payload, VfioUserCommand command) {
    }

    private static List<Sample> samples() {
        return List.of(
                new Sample("DMA_MAP", () -> DmaMapRequest.of(3, 0, 0x9000_0000L, 4096), VfioUserCommand.DMA_MAP),
                new Sample("DMA_UNMAP", () -> DmaUnmapRequest.of(0, 0x7000_0000L, 4096), VfioUserCommand.DMA_UNMAP),
                new Sample("DEVICE_GET_INFO", DeviceInfo::request, VfioUserCommand.DEVICE_GET_INFO),
                new Sample("GET_REGION_INFO", () -> RegionInfoRequest.of(0), VfioUserCommand.DEVICE_GET_REGION_INFO),
                new Sample("GET_REGION_IO_FDS", () -> RegionIoFdsRequest.of(16, 0),
                        VfioUserCommand.DEVICE_GET_REGION_IO_FDS),
                new Sample("GET_IRQ_INFO", () -> IrqInfo.request(2), VfioUserCommand.DEVICE_GET_IRQ_INFO),
                new Sample("SET_IRQS", () -> SetIrqs.of(SetIrqs.DATA_NONE | SetIrqs.ACTION_TRIGGER, 2, 0, 0),
                        VfioUserCommand.DEVICE_SET_IRQS),
                new Sample("REGION_READ", () -> RegionAccess.inRegion(0).atOffset(NullDevice.SCRATCH)
                        .count(8), VfioUserCommand.REGION_READ),
                new Sample("REGION_WRITE", () -> RegionAccess.inRegion(0).atOffset(NullDevice.SCRATCH)
                        .data(Unpooled.buffer(8).writeLongLE(7)), VfioUserCommand.REGION_WRITE),
                new Sample("REGION_WRITE_MULTI", () -> new RegionWriteMulti(List.of(
                        new WriteMultiEntry(NullDevice.SCRATCH, 0, 8, 9))), VfioUserCommand.REGION_WRITE_MULTI),
                new Sample("DEVICE_FEATURE", () -> new DeviceFeature(16,
                        DeviceFeature.GET | DeviceFeature.FEATURE_MIG_DEVICE_STATE, Unpooled.EMPTY_BUFFER),
                        VfioUserCommand.DEVICE_FEATURE),
                new Sample("MIG_DATA_READ", () -> MigDataRead.of(0), VfioUserCommand.MIG_DATA_READ),
                new Sample("MIG_DATA_WRITE", () -> MigData.of(Unpooled.EMPTY_BUFFER), VfioUserCommand.MIG_DATA_WRITE));
    }

    /** What {@code sample} gets in {@code state}: digest 6.3 for acceptance, then the command's own outcome. */
    private static int expected(int state, Sample sample) {
        VfioUserCommand c = sample.command();
        boolean stopped = state == MigDeviceState.STOP || state == MigDeviceState.STOP_COPY
                || state == MigDeviceState.ERROR;
        boolean region = c == VfioUserCommand.REGION_READ || c == VfioUserCommand.REGION_WRITE
                || c == VfioUserCommand.REGION_WRITE_MULTI;
        boolean accepted = !stopped || c == VfioUserCommand.DEVICE_FEATURE || c == VfioUserCommand.MIG_DATA_READ
                || region && state != MigDeviceState.STOP_COPY;
        if (!accepted) {
            return EINVAL;
        }
        return switch (c) {
            case DMA_UNMAP -> ENOENT;
            case MIG_DATA_READ -> state == MigDeviceState.PRE_COPY || state == MigDeviceState.STOP_COPY ? 0 : EINVAL;
            case MIG_DATA_WRITE -> state == MigDeviceState.RESUMING ? 0 : EINVAL;
            default -> 0;
        };
    }

    @Test
    void eachStateAcceptsTheCommandsOfDigestSection63() throws Exception {
        byte[] stream = savedStream();
        int[] states = {MigDeviceState.RUNNING, MigDeviceState.PRE_COPY, MigDeviceState.STOP,
                MigDeviceState.STOP_COPY, MigDeviceState.RESUMING, MigDeviceState.ERROR};
        for (int state : states) {
            reach(state, state == MigDeviceState.RESUMING ? new byte[0] : stream);
            for (Sample sample : samples()) {
                assertThat(errno(client, sample.command(), sample.payload().get()))
                        .as("%s in state %d", sample.name(), state).isEqualTo(expected(state, sample));
            }
            // DEVICE_RESET: refused where the device is stopped, except in ERROR, which it ends.
            int reset = errno(client, VfioUserCommand.DEVICE_RESET, null);
            boolean refused = state == MigDeviceState.STOP || state == MigDeviceState.STOP_COPY;
            assertThat(reset).as("DEVICE_RESET in state %d", state).isEqualTo(refused ? EINVAL : 0);
            if (!refused) {
                assertThat(state()).as("a reset ends the migration").isEqualTo(MigDeviceState.RUNNING);
            }
            backToRunning();
        }
    }

    @Test
    void registerReadsTakeTheLongWayWhileTheDeviceIsStopped() throws Exception {
        // A small BAR0 read is normally served by the region fast path; in STOP_COPY it must still be refused.
        for (int i = 0; i < 3; i++) {
            assertThat(errno(client, VfioUserCommand.REGION_READ,
                    RegionAccess.inRegion(0).atOffset(0).count(4))).isZero();
        }
        assertThat(setState(MigDeviceState.STOP_COPY)).isZero();
        for (int i = 0; i < 3; i++) {
            assertThat(errno(client, VfioUserCommand.REGION_READ,
                    RegionAccess.inRegion(0).atOffset(0).count(4))).isEqualTo(EINVAL);
            assertThat(errno(client, VfioUserCommand.REGION_WRITE,
                    RegionAccess.inRegion(0).atOffset(0).data(Unpooled.buffer(4).writeIntLE(1)))).isEqualTo(EINVAL);
        }
        assertThat(setState(MigDeviceState.STOP)).isZero();
        assertThat(errno(client, VfioUserCommand.REGION_READ, RegionAccess.inRegion(0).atOffset(0).count(4))).isZero();
    }

    // ------------------------------------------------------------------------------------ migration data

    @Test
    void migrationDataSizesAreBoundedByTheClientsTransferSize() throws Exception {
        fixture.close();
        fixture = new ServerFixture(NullDevice.description("mig"), new NullDevice());
        client = fixture.client(new ClientOptions(4096, 16, 0, true, ClientOptions.DEFAULT.dmaLayout()));
        migration = new DeviceMigration(client);
        assertThat(setState(MigDeviceState.STOP_COPY)).isZero();
        assertThat(errno(client, VfioUserCommand.MIG_DATA_READ, MigDataRead.of(4097))).isEqualTo(EINVAL);
        assertThat(errno(client, VfioUserCommand.MIG_DATA_READ, new MigDataRead(8 + 4095, 4096)))
                .as("argsz below 8 + size").isEqualTo(EINVAL);
        assertThat(rawErrno(client, VfioUserCommand.MIG_DATA_READ, u32(8))).as("payload below 8").isEqualTo(EINVAL);
        ByteBuf first = migration.read(4096).get(S, TimeUnit.SECONDS);
        try {
            assertThat(first.readableBytes()).isEqualTo(4096);
        } finally {
            first.release();
        }
        assertThat(setState(MigDeviceState.RESUMING)).isZero();
        assertThat(errno(client, VfioUserCommand.MIG_DATA_WRITE, MigData.of(Unpooled.wrappedBuffer(new byte[4097]))))
                .isEqualTo(EINVAL);
        assertThat(rawErrno(client, VfioUserCommand.MIG_DATA_WRITE, u32(16, 8))).as("payload below 8 + size")
                .isEqualTo(EINVAL);
        assertThat(rawErrno(client, VfioUserCommand.MIG_DATA_WRITE, Wire.u32(11, 4, 0))).as("argsz below 8 + size")
                .isEqualTo(EINVAL);
    }

    @Test
    void preCopyReadsEndShortAndStopCopyReadsEndEmpty() throws Exception {
        assertThat(setState(MigDeviceState.PRE_COPY)).isZero();
        ByteBuf pre = migration.read(1 << 20).get(S, TimeUnit.SECONDS);
        int preBytes = pre.readableBytes();
        pre.release();
        assertThat(preBytes).as("only the stream header before STOP_COPY").isEqualTo(MigrationRecord.HEAD_SIZE + 20);
        ByteBuf again = migration.read(1 << 20).get(S, TimeUnit.SECONDS);
        assertThat(again.readableBytes()).as("nothing more for now").isZero();
        again.release();
        assertThat(setState(MigDeviceState.STOP_COPY)).isZero();
        long total = 0;
        while (true) {
            ByteBuf d = migration.read(100_000).get(S, TimeUnit.SECONDS);
            int n = d.readableBytes();
            d.release();
            if (n == 0) {
                break;
            }
            total += n;
        }
        // Config space (4 KiB), interrupts, BAR2 (1 MiB), the device's registers, record heads.
        assertThat(total).isGreaterThan(1 << 20).isLessThan((1 << 20) + 8192);
        assertThat(device.arcs).containsExactly("RUNNING>PRE_COPY", "PRE_COPY>STOP_COPY");
    }

    // ------------------------------------------------------------------------------------ resets, clients

    @Test
    void aResetEndsTheMigrationAndTheDeviceIsToldItRunsAgain() throws Exception {
        assertThat(setState(MigDeviceState.PRE_COPY)).isZero();
        assertThat(errno(client, VfioUserCommand.DEVICE_RESET, null)).isZero();
        assertThat(device.arcs).containsExactly("RUNNING>PRE_COPY", "PRE_COPY>RUNNING");
        assertThat(state()).isEqualTo(MigDeviceState.RUNNING);
        assertThat(errno(client, VfioUserCommand.MIG_DATA_READ, MigDataRead.of(16))).as("no saving session")
                .isEqualTo(EINVAL);
    }

    @Test
    void aClientLeavingMidMigrationLeavesTheDeviceRunningForTheNext() throws Exception {
        NullMigrationScenario.register(client, NullDevice.SCRATCH, 0x77);
        assertThat(setState(MigDeviceState.STOP_COPY)).isZero();
        client.close();
        fixture.awaitNoClient();
        NullDevice inner = device.inner;
        VfioUserClient next = fixture.client(); // negotiates once the last client's teardown is over
        assertThat(device.arcs).containsExactly("RUNNING>STOP", "STOP>STOP_COPY", "STOP_COPY>RUNNING");
        assertThat(new DeviceMigration(next).state().get(S, TimeUnit.SECONDS)).isEqualTo(MigDeviceState.RUNNING);
        for (int i = 0; i < 3; i++) { // register accesses (the fast path) work again
            assertThat(NullMigrationScenario.register(next, NullDevice.SCRATCH)).as("reset on the way").isZero();
        }
        assertThat(errno(next, VfioUserCommand.DEVICE_GET_INFO, DeviceInfo.request())).isZero();
        assertThat(inner.scratch()).isZero();
    }
}
