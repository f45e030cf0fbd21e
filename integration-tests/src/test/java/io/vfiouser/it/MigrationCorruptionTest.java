package io.vfiouser.it;

import static io.vfiouser.it.Wire.errno;
import static io.vfiouser.transport.linux.Errno.EINVAL;
import static org.assertj.core.api.Assertions.assertThat;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.vfiouser.client.DeviceMigration;
import io.vfiouser.client.VfioUserClient;
import io.vfiouser.codec.VfioUserCommand;
import io.vfiouser.codec.payload.DeviceFeature;
import io.vfiouser.codec.payload.MigData;
import io.vfiouser.codec.payload.MigDeviceState;
import io.vfiouser.examples.nulldev.NullDevice;
import io.vfiouser.server.migration.MigrationRecord;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Issue 11, defect 9, through a real socket with the null device: a saved state stream with one byte flipped, cut
 * short, replaced by garbage, or whose records pass their checks but cannot be loaded, fails the SET out of
 * RESUMING with EINVAL and leaves the device in ERROR, which only DEVICE_RESET leaves; after it the device works
 * and loads the intact stream.
 */
class MigrationCorruptionTest {
    private static final long S = 20;
    private static final long SCRATCH_VALUE = 0x0123_4567_89ab_cdefL;

    private ServerFixture fixture;
    private VfioUserClient client;
    private DeviceMigration migration;
    private byte[] stream;
    /** Where each record starts, and its tag. */
    private final List<int[]> records = new ArrayList<>();

    @BeforeEach
    void start() throws Exception {
        fixture = new ServerFixture();
        client = fixture.client();
        migration = new DeviceMigration(client);
        NullMigrationScenario.register(client, NullDevice.SCRATCH, SCRATCH_VALUE);
        stream = savedStream();
        ByteBuffer b = ByteBuffer.wrap(stream).order(ByteOrder.LITTLE_ENDIAN);
        for (int at = 0; at < stream.length; at += MigrationRecord.HEAD_SIZE + b.getInt(at + 4)) {
            records.add(new int[] {at, b.getInt(at)});
        }
        NullMigrationScenario.register(client, NullDevice.SCRATCH, 0);
    }

    @AfterEach
    void stop() throws Exception {
        fixture.close();
    }

    private int setState(int state) throws Exception {
        return errno(client, VfioUserCommand.DEVICE_FEATURE, new DeviceFeature(16,
                DeviceFeature.SET | DeviceFeature.FEATURE_MIG_DEVICE_STATE, MigDeviceState.of(state).encode()));
    }

    private int state() throws Exception {
        return migration.state().get(S, TimeUnit.SECONDS);
    }

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

    /** The start of the first record with {@code tag}. */
    private int record(int tag) {
        return records.stream().filter(r -> r[1] == tag).findFirst().orElseThrow()[0];
    }

    /** Writes {@code bytes} in pieces as a client would; returns the errno of the first refused piece (0: none). */
    private int write(byte[] bytes) throws Exception {
        int first = 0;
        for (int at = 0; at < bytes.length; at += 10_000) {
            int n = Math.min(10_000, bytes.length - at);
            int e = errno(client, VfioUserCommand.MIG_DATA_WRITE, MigData.of(Unpooled.wrappedBuffer(bytes, at, n)));
            first = first != 0 ? first : e;
        }
        return first;
    }

    /** Loads {@code bytes} and leaves RESUMING: refused, ERROR until DEVICE_RESET, then the device works. */
    private void refused(String what, byte[] bytes) throws Exception {
        assertThat(setState(MigDeviceState.RESUMING)).isZero();
        write(bytes);
        assertThat(setState(MigDeviceState.RUNNING)).as(what).isEqualTo(EINVAL);
        assertThat(state()).as(what).isEqualTo(MigDeviceState.ERROR);
        assertThat(setState(MigDeviceState.RUNNING)).as("ERROR is left by reset only").isEqualTo(EINVAL);
        assertThat(errno(client, VfioUserCommand.DEVICE_RESET, null)).isZero();
        assertThat(state()).isEqualTo(MigDeviceState.RUNNING);
        NullMigrationScenario.register(client, NullDevice.SCRATCH, 42);
        assertThat(NullMigrationScenario.register(client, NullDevice.SCRATCH)).as(what).isEqualTo(42);
    }

    private void loadsIntact() throws Exception {
        assertThat(setState(MigDeviceState.RESUMING)).isZero();
        assertThat(write(stream)).isZero();
        assertThat(setState(MigDeviceState.RUNNING)).isZero();
        assertThat(NullMigrationScenario.register(client, NullDevice.SCRATCH)).isEqualTo(SCRATCH_VALUE);
    }

    private byte[] flipped(int at) {
        byte[] bad = stream.clone();
        bad[at] ^= 0x01;
        return bad;
    }

    @Test
    void oneFlippedByteAnywhereIsRefused() throws Exception {
        assertThat(records.size()).as("header, device, config, irqs, regions, end").isGreaterThanOrEqualTo(6);
        int region = record(MigrationRecord.REGION);
        int[] positions = {
            0, // the header record's tag
            4, // its length
            MigrationRecord.CRC_OFFSET, // its checksum
            MigrationRecord.HEAD_SIZE + 9, // its device id
            record(MigrationRecord.CONFIG) + MigrationRecord.HEAD_SIZE + 0x10, // BAR0 in the config image
            record(MigrationRecord.IRQS) + 1, // a tag
            region + MigrationRecord.HEAD_SIZE + 12 + 0x8000, // the middle of a region's bytes
            stream.length / 2,
            stream.length - 1, // the END record's checksum
        };
        for (int at : positions) {
            refused("byte " + at + " of " + stream.length + " flipped", flipped(at));
        }
        loadsIntact();
    }

    @Test
    void aTruncatedStreamIsRefused() throws Exception {
        refused("cut inside a record", Arrays.copyOf(stream, stream.length / 2));
        refused("cut before END", Arrays.copyOf(stream, record(MigrationRecord.END)));
        refused("cut inside END's head", Arrays.copyOf(stream, stream.length - 3));
        refused("nothing written", new byte[0]);
        loadsIntact();
    }

    @Test
    void garbageIsRefused() throws Exception {
        byte[] garbage = new byte[50_000];
        new java.util.Random(9).nextBytes(garbage);
        refused("random bytes", garbage);
        refused("zeros", new byte[4096]);
        loadsIntact();
    }

    @Test
    void recordsThatPassTheirChecksButCannotBeLoadedAreRefused() throws Exception {
        // A well-formed, correctly sealed REGION record for a region that is not memory-backed: checks pass,
        // loading fails, and the rest of the stream is whole. The SET must fail all the same.
        byte[] bad = stream.clone();
        int region = record(MigrationRecord.REGION);
        ByteBuffer b = ByteBuffer.wrap(bad).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(region + MigrationRecord.HEAD_SIZE, NullDevice.REGISTER_BAR);
        MigrationRecord.seal(b.position(region));
        refused("a region record for a register BAR", bad);

        // A header of another kind of device, sealed, sent in a write of its own.
        byte[] foreign = stream.clone();
        ByteBuffer f = ByteBuffer.wrap(foreign).order(ByteOrder.LITTLE_ENDIAN);
        f.putShort(MigrationRecord.HEAD_SIZE + 8, (short) 0x1234); // vendor id
        MigrationRecord.seal(f.position(0));
        int headerEnd = MigrationRecord.HEAD_SIZE + f.getInt(4);
        assertThat(setState(MigDeviceState.RESUMING)).isZero();
        assertThat(errno(client, VfioUserCommand.MIG_DATA_WRITE,
                MigData.of(Unpooled.wrappedBuffer(foreign, 0, headerEnd)))).isEqualTo(EINVAL);
        write(Arrays.copyOfRange(stream, headerEnd, stream.length));
        assertThat(setState(MigDeviceState.STOP)).isEqualTo(EINVAL);
        assertThat(state()).isEqualTo(MigDeviceState.ERROR);
        assertThat(errno(client, VfioUserCommand.DEVICE_RESET, null)).isZero();
        loadsIntact();
    }
}
