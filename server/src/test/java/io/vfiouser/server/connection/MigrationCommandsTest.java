package io.vfiouser.server.connection;

import static io.vfiouser.server.connection.ConnectionChannel.command;
import static io.vfiouser.server.connection.ConnectionChannel.concat;
import static io.vfiouser.server.connection.ConnectionChannel.hex;
import static io.vfiouser.server.connection.ConnectionChannel.le;
import static io.vfiouser.server.connection.UnitDevices.BAR2;
import static org.assertj.core.api.Assertions.assertThat;

import io.vfiouser.codec.VfioUserCommand;
import io.vfiouser.codec.VfioUserHeader;
import io.vfiouser.device.MigrationSupport;
import io.vfiouser.transport.linux.Errno;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;

/**
 * DEVICE_FEATURE (the MIGRATION and MIG_DEVICE_STATE features), MIG_DATA_READ and MIG_DATA_WRITE through the
 * connection's real pipeline, without a socket (digest 3.16-3.18, 6.3): golden request and reply bytes, the errno
 * of every refused case, the quiesce before a running device stops, NO_REPLY, and a whole migration from one
 * connection's device to another's.
 */
class MigrationCommandsTest {
    static final int GET = 0x10000;
    static final int SET = 0x20000;
    static final int PROBE = 0x40000;
    static final int MIGRATION = 1;
    static final int MIG_DEVICE_STATE = 2;
    /** MIG_DEVICE_STATE values (digest 3.16). */
    static final int ERROR = 0;
    static final int STOP = 1;
    static final int RUNNING = 2;
    static final int STOP_COPY = 3;
    static final int RESUMING = 4;
    static final int PRE_COPY = 6;

    private final ScriptedDevice device = new ScriptedDevice();
    private final MigratingDevice migrating = new MigratingDevice(device);

    /** DEVICE_FEATURE: argsz u32, flags u32 (feature | GET/SET/PROBE), data. */
    static byte[] feature(int msgId, long argsz, int flags, byte[] data) {
        return command(msgId, VfioUserCommand.DEVICE_FEATURE, concat(le(4, argsz, 4, flags), data));
    }

    /** DEVICE_FEATURE SET MIG_DEVICE_STATE: device_state u32, data_fd u32. */
    static byte[] setState(int msgId, int state) {
        return feature(msgId, 16, SET | MIG_DEVICE_STATE, le(4, state, 4, 0));
    }

    static byte[] getState(int msgId) {
        return feature(msgId, 16, GET | MIG_DEVICE_STATE, new byte[0]);
    }

    /** MIG_DATA_READ: argsz u32, size u32. */
    static byte[] dataRead(int msgId, long argsz, long size) {
        return command(msgId, VfioUserCommand.MIG_DATA_READ, le(4, argsz, 4, size));
    }

    /** MIG_DATA_WRITE: argsz u32, size u32, data. */
    static byte[] dataWrite(int msgId, int flags, byte[] data) {
        return command(msgId, VfioUserCommand.MIG_DATA_WRITE, flags, concat(le(4, 8 + data.length, 4,
                data.length), data));
    }

    private ConnectionChannel open(MigrationSupport support) throws Exception {
        ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.migratable(support), migrating);
        device.takeCalls();
        return c;
    }

    /** Sets the migration state and expects success. */
    static void moveTo(ConnectionChannel c, int msgId, int state) {
        c.send(setState(msgId, state));
        c.assertOk(msgId, VfioUserCommand.DEVICE_FEATURE);
    }

    /** The state GET MIG_DEVICE_STATE reports. */
    static int stateOf(ConnectionChannel c, int msgId) {
        c.send(getState(msgId));
        return c.assertOk(msgId, VfioUserCommand.DEVICE_FEATURE).le().getInt(16 + 8);
    }

    // ------------------------------------------------------------------------------------ DEVICE_FEATURE

    @Test
    void migrationFeatureGetReportsStopCopyAndPreCopy() throws Exception {
        try (ConnectionChannel c = open(MigrationSupport.PRE_COPY)) {
            c.send(command(1, VfioUserCommand.DEVICE_FEATURE, hex("10000000 01000100")));
            assertThat(c.reply().bytes()).isEqualTo(hex(
                    "0100 1000 20000000 01000000 00000000  10000000 01000100 0500000000000000"));
            c.send(feature(2, 0xFFFF_FFFFL, GET | MIGRATION, new byte[0]));
            assertThat(c.assertOk(2, VfioUserCommand.DEVICE_FEATURE).payload())
                    .as("argsz in the reply is what the reply needs").isEqualTo(hex("10000000 01000100 0500000000000000"));
            c.send(feature(3, 8, PROBE | GET | MIGRATION, new byte[0]));
            assertThat(c.assertOk(3, VfioUserCommand.DEVICE_FEATURE).payload()).isEqualTo(hex("08000000 01000500"));
            assertThat(device.takeCalls()).as("GET and PROBE neither quiesce nor change anything").isEmpty();
        }
    }

    @Test
    void stopCopyOnlyDeviceReportsNoPreCopyAndCannotEnterIt() throws Exception {
        try (ConnectionChannel c = open(MigrationSupport.STOP_COPY_ONLY)) {
            c.send(feature(1, 16, GET | MIGRATION, new byte[0]));
            assertThat(c.assertOk(1, VfioUserCommand.DEVICE_FEATURE).payload())
                    .isEqualTo(hex("10000000 01000100 0100000000000000"));
            c.send(setState(2, PRE_COPY));
            c.assertError(2, VfioUserCommand.DEVICE_FEATURE, Errno.EINVAL);
            assertThat(stateOf(c, 3)).isEqualTo(RUNNING);
        }
    }

    @Test
    void deviceFeatureRefusals() throws Exception {
        try (ConnectionChannel c = open(MigrationSupport.PRE_COPY)) {
            int id = 1;
            byte[][] refused = {
                    command(0, VfioUserCommand.DEVICE_FEATURE, hex("10000000 010001")), // payload < 8
                    feature(0, 16, SET | MIGRATION, le(8, 5)), // MIGRATION has no SET
                    feature(0, 16, PROBE | SET | MIGRATION, new byte[0]), // nor can SET be probed
                    feature(0, 15, GET | MIGRATION, new byte[0]), // GET argsz below the reply
                    feature(0, 16, MIGRATION, new byte[0]), // no operation
                    feature(0, 16, GET | SET | MIG_DEVICE_STATE, le(4, STOP, 4, 0)), // GET+SET without PROBE
                    feature(0, 15, SET | MIG_DEVICE_STATE, le(4, STOP, 4, 0)), // SET argsz below the request
                    feature(0, 16, SET | MIG_DEVICE_STATE, le(4, STOP)), // state data cut short
                    feature(0, 16, GET | 3, new byte[0]), // LOW_POWER: not offered
                    feature(0, 16, GET | 0, new byte[0]), // PCI_VF_TOKEN: not offered
                    feature(0, 16, GET | 0x7FFF, new byte[0]),
                    setState(0, ERROR), // ERROR cannot be requested
                    setState(0, 5), // RUNNING_P2P
                    setState(0, 7), // PRE_COPY_P2P
                    setState(0, 8), // no such state
                    setState(0, 0xFFFF_FFFF)};
            for (byte[] frame : refused) {
                frame[0] = (byte) id; // built before its turn: the msg id (below 256) is set here
                c.send(frame);
                c.assertError(id++, VfioUserCommand.DEVICE_FEATURE, Errno.EINVAL);
            }
            assertThat(device.takeCalls()).as("nothing refused reached the device").isEmpty();
            assertThat(stateOf(c, id)).isEqualTo(RUNNING);
        }
    }

    @Test
    void aDeviceWithoutMigrationOffersNoFeature() throws Exception {
        try (ConnectionChannel c = ConnectionChannel.negotiated(UnitDevices.basic(), device)) {
            c.send(feature(1, 16, GET | MIGRATION, new byte[0]));
            c.assertError(1, VfioUserCommand.DEVICE_FEATURE, Errno.EINVAL);
            c.send(feature(2, 8, PROBE | MIGRATION, new byte[0]));
            c.assertError(2, VfioUserCommand.DEVICE_FEATURE, Errno.EINVAL);
            c.send(getState(3));
            c.assertError(3, VfioUserCommand.DEVICE_FEATURE, Errno.EINVAL);
            c.send(dataRead(4, 8 + 16, 16));
            c.assertError(4, VfioUserCommand.MIG_DATA_READ, Errno.EINVAL);
        }
    }

    /**
     * MIG_DEVICE_STATE: GET reports the state (data_fd 0); a SET that stops a running device quiesces it first
     * and is answered, with the request echoed, once the device took every arc of the way (digest 3.16: RUNNING to
     * STOP_COPY goes through STOP).
     */
    @Test
    void setStateQuiescesARunningDeviceAndWalksArcByArc() throws Exception {
        try (ConnectionChannel c = open(MigrationSupport.PRE_COPY)) {
            c.send(getState(1));
            assertThat(c.reply().bytes()).isEqualTo(hex(
                    "0100 1000 20000000 01000000 00000000  10000000 02000100 02000000 00000000"));
            CompletableFuture<Void> quiesced = device.holdNextQuiesce();
            c.send(command(2, VfioUserCommand.DEVICE_FEATURE, hex("10000000 02000200 03000000 00000000")));
            assertThat(device.takeCalls()).containsExactly("quiesce");
            c.assertNoReply();
            quiesced.complete(null);
            assertThat(c.reply().bytes()).isEqualTo(hex(
                    "0200 1000 20000000 01000000 00000000  10000000 02000200 03000000 00000000"));
            assertThat(device.takeCalls()).containsExactly("migration RUNNING STOP", "migration STOP STOP_COPY");
            assertThat(stateOf(c, 3)).isEqualTo(STOP_COPY);
            c.send(setState(4, PRE_COPY));
            c.assertError(4, VfioUserCommand.DEVICE_FEATURE, Errno.EINVAL); // STOP_COPY -> PRE_COPY is forbidden
            moveTo(c, 5, RUNNING);
            assertThat(device.takeCalls()).containsExactly("migration STOP_COPY STOP", "migration STOP RUNNING");
            moveTo(c, 6, PRE_COPY);
            assertThat(device.takeCalls()).as("PRE_COPY runs: no quiesce").containsExactly(
                    "migration RUNNING PRE_COPY");
            moveTo(c, 7, STOP);
            assertThat(device.takeCalls()).as("the quiesce comes before the arc that stops the device")
                    .containsExactly("migration PRE_COPY RUNNING", "quiesce", "migration RUNNING STOP");
        }
    }

    // ------------------------------------------------------------------------------------ MIG_DATA_READ/WRITE

    @Test
    void dataReadLayoutAndRefusals() throws Exception {
        try (ConnectionChannel c = open(MigrationSupport.PRE_COPY)) {
            c.send(dataRead(1, 8 + 16, 16));
            c.assertError(1, VfioUserCommand.MIG_DATA_READ, Errno.EINVAL); // RUNNING: nothing to read
            moveTo(c, 2, PRE_COPY);
            c.send(dataRead(3, 8 + 16 - 1, 16));
            c.assertError(3, VfioUserCommand.MIG_DATA_READ, Errno.EINVAL); // argsz below 8 + size
            c.send(command(4, VfioUserCommand.MIG_DATA_READ, hex("18000000 100000")));
            c.assertError(4, VfioUserCommand.MIG_DATA_READ, Errno.EINVAL); // payload < 8
            c.send(dataRead(5, 8 + (1 << 20) + 1, (1 << 20) + 1));
            c.assertError(5, VfioUserCommand.MIG_DATA_READ, Errno.EINVAL); // above the client's max_data_xfer_size
            c.send(dataRead(6, 0xFFFF_FFFFL, 0xFFFF_FFF0L));
            c.assertError(6, VfioUserCommand.MIG_DATA_READ, Errno.EINVAL); // a u32 size, not a negative one

            c.send(dataRead(7, 8 + 4, 4));
            ConnectionChannel.Reply r = c.assertOk(7, VfioUserCommand.MIG_DATA_READ);
            assertThat(r.size()).isEqualTo(16 + 8 + 4);
            assertThat(r.payload()).startsWith(le(4, 12, 4, 4));
            c.send(dataRead(8, 0xFFFF_FFFFL, 4)); // argsz is only room: a u32 far above is fine
            r = c.assertOk(8, VfioUserCommand.MIG_DATA_READ);
            assertThat(r.payload()).startsWith(le(4, 12, 4, 4));
        }
    }

    @Test
    void dataWriteOnlyWhileResumingAndWhole() throws Exception {
        try (ConnectionChannel c = open(MigrationSupport.PRE_COPY)) {
            c.send(dataWrite(1, 0, hex("01020304")));
            c.assertError(1, VfioUserCommand.MIG_DATA_WRITE, Errno.EINVAL); // RUNNING
            moveTo(c, 2, RESUMING);
            c.send(command(3, VfioUserCommand.MIG_DATA_WRITE, concat(le(4, 8 + 3, 4, 4), hex("01020304"))));
            c.assertError(3, VfioUserCommand.MIG_DATA_WRITE, Errno.EINVAL); // argsz below 8 + size
            c.send(command(4, VfioUserCommand.MIG_DATA_WRITE, concat(le(4, 8 + 5, 4, 5), hex("01020304"))));
            c.assertError(4, VfioUserCommand.MIG_DATA_WRITE, Errno.EINVAL); // fewer bytes than size
            c.send(command(5, VfioUserCommand.MIG_DATA_WRITE, hex("08000000 000000")));
            c.assertError(5, VfioUserCommand.MIG_DATA_WRITE, Errno.EINVAL); // payload < 8
            c.send(command(6, VfioUserCommand.MIG_DATA_WRITE, concat(le(4, 0xFFFF_FFFFL, 4, 0xFFFF_FFFFL),
                    hex("01"))));
            c.assertError(6, VfioUserCommand.MIG_DATA_WRITE, Errno.EINVAL); // a u32 size far beyond the data
            c.send(dataWrite(7, 0, new byte[0]));
            assertThat(c.reply().bytes()).isEqualTo(hex("0700 1200 10000000 01000000 00000000"));
        }
    }

    /** Data that is not a migration stream fails the write (or the stream), and leaving RESUMING ends in ERROR. */
    @Test
    void aCorruptStreamLeavesTheDeviceInError() throws Exception {
        try (ConnectionChannel c = open(MigrationSupport.PRE_COPY)) {
            moveTo(c, 1, RESUMING);
            byte[] garbage = new byte[32];
            Arrays.fill(garbage, (byte) 0xA5);
            c.send(dataWrite(2, VfioUserHeader.NO_REPLY, garbage));
            c.assertNoReply();
            c.send(setState(3, STOP));
            c.assertError(3, VfioUserCommand.DEVICE_FEATURE, Errno.EINVAL);
            assertThat(stateOf(c, 4)).isEqualTo(ERROR);
            assertThat(migrating.loaded.size()).as("nothing of a corrupt stream was loaded").isZero();
        }
    }

    /**
     * A whole migration: the source's device state (the device's own chunks, a memory-backed region), read with
     * MIG_DATA_READ until it says nothing more, written with MIG_DATA_WRITE in other pieces into a second
     * connection's device, which then runs with that state.
     */
    @Test
    void aStateReadFromOneDeviceLoadsIntoAnother() throws Exception {
        byte[] stream;
        try (ConnectionChannel source = open(MigrationSupport.PRE_COPY)) {
            source.send(command(1, VfioUserCommand.REGION_WRITE, concat(le(8, 0x10, 4, BAR2, 4, 4),
                    hex("deadbeef"))));
            source.assertOk(1, VfioUserCommand.REGION_WRITE);
            migrating.chunks.add("early".getBytes(StandardCharsets.US_ASCII));
            moveTo(source, 2, PRE_COPY);
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            int id = 3;
            for (int phase = 0; phase < 2; phase++) {
                for (int i = 0; i < 10_000; i++) {
                    source.send(dataRead(id, 8 + 777, 777));
                    ConnectionChannel.Reply r = source.assertOk(id++, VfioUserCommand.MIG_DATA_READ);
                    int n = r.le().getInt(16 + 4);
                    assertThat(r.le().getInt(16)).as("argsz = 8 + bytes returned").isEqualTo(8 + n);
                    assertThat(r.size()).isEqualTo(16 + 8 + n);
                    out.write(r.bytes(), 16 + 8, n);
                    if (n < 777) {
                        break;
                    }
                }
                if (phase == 0) {
                    migrating.chunks.add("late".getBytes(StandardCharsets.US_ASCII));
                    moveTo(source, id++, STOP_COPY);
                }
            }
            source.send(dataRead(id, 8 + 16, 16));
            assertThat(source.assertOk(id, VfioUserCommand.MIG_DATA_READ).payload())
                    .as("the end: nothing more").isEqualTo(le(4, 8, 4, 0));
            stream = out.toByteArray();
        }

        ScriptedDevice target = new ScriptedDevice();
        MigratingDevice targetMigrating = new MigratingDevice(target);
        try (ConnectionChannel destination = ConnectionChannel.negotiated(
                UnitDevices.migratable(MigrationSupport.PRE_COPY), targetMigrating)) {
            moveTo(destination, 1, RESUMING);
            int id = 2;
            for (int at = 0; at < stream.length; at += 501) {
                destination.send(dataWrite(id, 0, Arrays.copyOfRange(stream, at, Math.min(stream.length,
                        at + 501))));
                destination.assertOk(id++, VfioUserCommand.MIG_DATA_WRITE);
            }
            target.takeCalls();
            moveTo(destination, id++, RUNNING);
            assertThat(target.takeCalls()).containsExactly("migration RESUMING STOP", "migration STOP RUNNING");
            assertThat(targetMigrating.loaded.toString(StandardCharsets.US_ASCII)).isEqualTo("earlylate");
            destination.send(command(id, VfioUserCommand.REGION_READ, le(8, 0x10, 4, BAR2, 4, 4)));
            assertThat(destination.assertOk(id, VfioUserCommand.REGION_READ).payload()).endsWith(hex("deadbeef"));
        }
    }
}
