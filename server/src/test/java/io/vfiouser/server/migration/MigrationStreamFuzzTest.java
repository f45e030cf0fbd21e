package io.vfiouser.server.migration;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import io.vfiouser.codec.VfioUserProtocolException;
import io.vfiouser.transport.linux.Errno;
import java.io.ByteArrayOutputStream;
import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.zip.CRC32C;

/**
 * Fuzzes {@link MigrationStreamReader}, which takes the bytes a client writes with MIG_DATA_WRITE into a device
 * in RESUMING, against an independent model of the stream (the layout of {@link MigrationRecord}'s javadoc,
 * checksummed here with {@link CRC32C} directly). Two targets:
 *
 * <ul>
 * <li>{@link #bytes}: any bytes, cut into writes anywhere. Almost every input fails its first checksum, so this one
 * exercises the refusals: lengths out of bounds, a first record that is not HEADER, a bad CRC;</li>
 * <li>{@link #records}: well-sealed records built from the input (any tags, any bodies), optionally one bit
 * flipped and the stream cut short, then cut into writes anywhere: the fuzzer gets past the checksum to the
 * stream's rules (one HEADER first, nothing after END).</li>
 * </ul>
 *
 * <p>After every write: the records it completed are exactly the model's, whole and equal to what was sealed; a
 * refusal is a {@link VfioUserProtocolException} with EINVAL at exactly the write where the model breaks a rule
 * (nothing else is thrown), after which the reader stays failed; the reader allocated no more than the bodies of
 * the records the model accepts a head for in that write (each at most {@link MigrationRecord#MAX_LENGTH}) and some
 * slack. At the end, {@link MigrationStreamReader#complete()} is the model's: a cut stream is incomplete.
 */
class MigrationStreamFuzzTest {
    /** Allocation allowed per write beyond record bodies: the reader's own objects, an exception and its message. */
    private static final long SLACK = 1 << 20;
    private static final com.sun.management.ThreadMXBean THREADS =
            (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();

    static {
        // The first pass through each of the reader's paths loads classes and links its string concatenations
        // (megabytes, once per JVM): take them before any write is measured, so that the bound is the reader's.
        byte[] header = seal(MigrationRecord.HEADER, new byte[20]);
        byte[] end = seal(MigrationRecord.END, new byte[0]);
        byte[] badCrc = seal(MigrationRecord.HEADER, new byte[4]);
        badCrc[12] ^= 1;
        byte[] tooLong = Arrays.copyOf(header, 12);
        tooLong[7] = 0x7f;
        for (byte[] stream : List.of(concat(header, end), concat(header, end, end), concat(header, header),
                seal(MigrationRecord.DEVICE, new byte[0]), badCrc, tooLong)) {
            MigrationStreamReader reader = new MigrationStreamReader();
            for (int i = 0; i < 2; i++) {
                try {
                    reader.feed(ByteBuffer.wrap(stream));
                } catch (VfioUserProtocolException expected) {
                    // warming up the refusals
                }
            }
            reader.complete();
        }
    }

    private static byte[] concat(byte[]... parts) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (byte[] part : parts) {
            out.writeBytes(part);
        }
        return out.toByteArray();
    }

    /** Input: the stream, then (from the end) a 64-bit seed for the write lengths. */
    @FuzzTest(maxDuration = "10m")
    void bytes(FuzzedDataProvider data) {
        long writeSeed = data.consumeLong();
        byte[] stream = data.consumeRemainingAsBytes();
        replay(stream, writeSeed);
    }

    /**
     * Input: a description of records (repeated: a byte whose high bit says "a 32-bit tag follows" and whose low 3
     * bits are the tag otherwise, a 16-bit little-endian body length, the body, shorter if the input ends), then
     * (from the end) a 16-bit bit to flip (0: none, else 1 more than the bit's index modulo the stream's bits), a
     * 16-bit cut (0: none, else the stream is cut to this many bytes modulo its length) and a 64-bit seed for the
     * write lengths.
     */
    @FuzzTest(maxDuration = "10m")
    void records(FuzzedDataProvider data) {
        int flip = data.consumeInt(0, 0xffff);
        int cut = data.consumeInt(0, 0xffff);
        long writeSeed = data.consumeLong();
        ByteBuffer description = ByteBuffer.wrap(data.consumeRemainingAsBytes()).order(ByteOrder.LITTLE_ENDIAN);

        List<Sealed> sealed = new ArrayList<>();
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        while (description.hasRemaining()) {
            int kind = description.get() & 0xff;
            int tag = (kind & 0x80) != 0 && description.remaining() >= 4 ? description.getInt() : kind & 7;
            int length = description.remaining() >= 2 ? description.getShort() & 0xffff : 0;
            byte[] body = new byte[Math.min(length, description.remaining())];
            description.get(body);
            byte[] record = seal(tag, body);
            // The production sealer writes the same bytes.
            ByteBuffer theirs = MigrationRecord.of(tag, body);
            assertThat(Arrays.copyOfRange(theirs.array(), theirs.position(), theirs.limit())).isEqualTo(record);
            sealed.add(new Sealed(tag, body, out.size()));
            out.writeBytes(record);
        }
        byte[] stream = out.toByteArray();
        int flipped = -1;
        if (flip != 0 && stream.length > 0) {
            int bit = (flip - 1) % (stream.length * 8);
            stream[bit / 8] ^= (byte) (1 << bit % 8);
            flipped = bit / 8;
        }
        if (cut != 0 && stream.length > 0) {
            stream = Arrays.copyOf(stream, cut % stream.length);
        }
        Outcome outcome = replay(stream, writeSeed);

        // Records come out whole and equal to what was sealed, in order, up to a flipped one: CRC32C catches
        // every single-bit error, so neither the record holding the flipped bit nor any after it comes out.
        int flippedAt = flipped;
        int limit = flippedAt < 0 ? sealed.size()
                : (int) sealed.stream().filter(s -> s.start() <= flippedAt).count() - 1;
        assertThat(outcome.records().size()).as("records out").isLessThanOrEqualTo(limit);
        for (int i = 0; i < outcome.records().size(); i++) {
            Model.Rec r = outcome.records().get(i);
            assertThat(r.tag()).isEqualTo(sealed.get(i).tag());
            assertThat(r.body()).isEqualTo(sealed.get(i).body());
        }
        int length = stream.length;
        if (length < out.size() && sealed.stream().noneMatch(r -> r.start() == length)) {
            assertThat(outcome.complete()).as("a stream cut inside a record is not complete").isFalse();
        }
        boolean wellFormed = !sealed.isEmpty() && sealed.get(0).tag() == MigrationRecord.HEADER
                && sealed.get(sealed.size() - 1).tag() == MigrationRecord.END
                && sealed.stream().filter(s -> s.tag() == MigrationRecord.HEADER).count() == 1
                && sealed.stream().filter(s -> s.tag() == MigrationRecord.END).count() == 1;
        if (wellFormed && flipped < 0 && stream.length == out.size()) {
            assertThat(outcome.complete()).as("a whole, well-formed stream is complete").isTrue();
            assertThat(outcome.records()).hasSize(sealed.size());
        }
    }

    private record Sealed(int tag, byte[] body, int start) {
    }

    private record Outcome(List<Model.Rec> records, boolean complete) {
    }

    /** Feeds {@code stream} in writes cut by {@code writeSeed}, checking each write against the model. */
    private static Outcome replay(byte[] stream, long writeSeed) {
        Model model = Model.of(stream);
        MigrationStreamReader reader = new MigrationStreamReader();
        List<Model.Rec> got = new ArrayList<>();
        int at = 0;
        boolean failed = false;
        for (int write : writes(stream.length, writeSeed)) {
            int end = at + write;
            ByteBuffer piece = ByteBuffer.wrap(Arrays.copyOfRange(stream, at, end));
            long allowed = SLACK + model.acceptedBodyBytes(at, end);
            long before = THREADS.getCurrentThreadAllocatedBytes();
            List<MigrationStreamReader.Record> records = null;
            VfioUserProtocolException refused = null;
            try {
                records = reader.feed(piece);
            } catch (VfioUserProtocolException e) {
                refused = e;
            }
            long allocated = THREADS.getCurrentThreadAllocatedBytes() - before;
            assertThat(allocated).as("bytes allocated by a write of [%d, %d)", at, end).isLessThanOrEqualTo(allowed);
            boolean shouldFail = model.failsAt() >= 0 && model.failsAt() < end;
            if (shouldFail) {
                assertThat(refused).as("write [%d, %d): %s", at, end, model.reason()).isNotNull();
                assertThat(refused.errno()).isEqualTo(Errno.EINVAL);
                failed = true;
                break;
            }
            if (refused != null) {
                throw new AssertionError("write [" + at + ", " + end + ") refused; the model accepts it", refused);
            }
            List<Model.Rec> expected = model.endingIn(at, end);
            assertThat(records).hasSize(expected.size());
            for (int i = 0; i < records.size(); i++) {
                MigrationStreamReader.Record r = records.get(i);
                byte[] body = new byte[r.body().remaining()];
                r.body().duplicate().get(body);
                assertThat(r.tag()).isEqualTo(expected.get(i).tag());
                assertThat(body).isEqualTo(expected.get(i).body());
                got.add(new Model.Rec(r.tag(), body, 0));
            }
            at = end;
        }
        assertThat(reader.failed()).isEqualTo(failed);
        if (failed) {
            // It stays failed, and nothing can complete it.
            assertThatThrownBy(() -> reader.feed(ByteBuffer.wrap(stream)))
                    .isInstanceOfSatisfying(VfioUserProtocolException.class,
                            e -> assertThat(e.errno()).isEqualTo(Errno.EINVAL));
            assertThat(reader.complete()).isFalse();
        } else {
            assertThat(reader.complete()).as("complete").isEqualTo(model.complete());
            assertThat(reader.bytes()).isEqualTo(stream.length);
        }
        return new Outcome(got, reader.complete());
    }

    /** Write lengths summing to {@code length}: single bytes, small pieces, large pieces, the rest at once. */
    static int[] writes(int length, long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        List<Integer> writes = new ArrayList<>();
        for (int left = length; left > 0; ) {
            int n = switch (random.nextInt(4)) {
                case 0 -> 1 + random.nextInt(12);
                case 1 -> 1 + random.nextInt(64);
                case 2 -> 1 + random.nextInt(left);
                default -> left;
            };
            n = Math.min(n, left);
            writes.add(n);
            left -= n;
        }
        return writes.stream().mapToInt(Integer::intValue).toArray();
    }

    /** A record sealed as {@link MigrationRecord}'s javadoc says, written independently of it. */
    static byte[] seal(int tag, byte[] body) {
        ByteBuffer b = ByteBuffer.allocate(12 + body.length).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(tag).putInt(body.length);
        CRC32C crc = new CRC32C();
        crc.update(b.array(), 0, 8);
        crc.update(body);
        b.putInt((int) crc.getValue()).put(body);
        return b.array();
    }

    /**
     * The stream's rules, applied to the whole stream at once: the records with the offset of their last byte, and
     * the offset of the byte at which the stream breaks a rule (-1: none).
     */
    private record Model(List<Rec> records, List<long[]> accepted, int failsAt, String reason, boolean complete) {
        record Rec(int tag, byte[] body, int end) {
        }

        static Model of(byte[] s) {
            List<Rec> records = new ArrayList<>();
            List<long[]> accepted = new ArrayList<>(); // {offset of the head's last byte, body length}
            ByteBuffer b = ByteBuffer.wrap(s).order(ByteOrder.LITTLE_ENDIAN);
            boolean header = false;
            boolean end = false;
            int p = 0;
            while (p < s.length) {
                if (end) {
                    return new Model(records, accepted, p, "data after END", false);
                }
                if (s.length - p < 12) {
                    return new Model(records, accepted, -1, "cut in a head", false);
                }
                int tag = b.getInt(p);
                long length = Integer.toUnsignedLong(b.getInt(p + 4));
                int crc = b.getInt(p + 8);
                int headEnd = p + 11;
                if (length > 16 << 20) {
                    return new Model(records, accepted, headEnd, "length " + length, false);
                }
                if (!header && tag != MigrationRecord.HEADER) {
                    return new Model(records, accepted, headEnd, "no HEADER first", false);
                }
                accepted.add(new long[] {headEnd, length});
                if (s.length - p - 12 < length) {
                    return new Model(records, accepted, -1, "cut in a body", false);
                }
                byte[] body = Arrays.copyOfRange(s, p + 12, p + 12 + (int) length);
                int last = p + 11 + (int) length;
                CRC32C c = new CRC32C();
                c.update(s, p, 8);
                c.update(body);
                if ((int) c.getValue() != crc) {
                    return new Model(records, accepted, last, "bad CRC", false);
                }
                if (tag == MigrationRecord.HEADER) {
                    if (header) {
                        return new Model(records, accepted, last, "second HEADER", false);
                    }
                    header = true;
                }
                end |= tag == MigrationRecord.END;
                records.add(new Rec(tag, body, last));
                p = last + 1;
            }
            return new Model(records, accepted, -1, "", end);
        }

        List<Rec> endingIn(int from, int to) {
            return records.stream().filter(r -> r.end() >= from && r.end() < to).toList();
        }

        long acceptedBodyBytes(int from, int to) {
            return accepted.stream().filter(a -> a[0] >= from && a[0] < to).mapToLong(a -> a[1]).sum();
        }
    }
}
