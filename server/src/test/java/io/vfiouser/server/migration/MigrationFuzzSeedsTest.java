package io.vfiouser.server.migration;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * The seed corpus of {@link MigrationStreamFuzzTest}: a stream of every record kind, as a source writes it (HEADER,
 * DEVICE, CONFIG, IRQS, REGION, an empty DEVICE, END), as raw bytes for {@code bytes} and as a description of its
 * records for {@code records} (whole, with a bit flipped, cut short, with a second HEADER, with a record after
 * END), each followed by its target's trailer. Committed under
 * {@code src/test/resources/io/vfiouser/server/migration/MigrationStreamFuzzTestInputs/<method>/}, where Jazzer
 * replays them in every test run; this test fails when they differ from what this class gives, and
 * {@code -Dvfu.fuzz.writeSeeds=true} (re)writes them.
 */
class MigrationFuzzSeedsTest {
    private static final Path RESOURCES = Path.of("src/test/resources/io/vfiouser/server/migration");

    private record Rec(int tag, byte[] body) {
    }

    @Test
    void committedSeedsAreTheSampleStream() throws IOException {
        boolean write = Boolean.getBoolean("vfu.fuzz.writeSeeds");
        for (Map.Entry<Path, byte[]> seed : seeds().entrySet()) {
            Path file = RESOURCES.resolve(seed.getKey());
            if (write) {
                Files.createDirectories(file.getParent());
                Files.write(file, seed.getValue());
            }
            assertThat(file).as("seed %s (-Dvfu.fuzz.writeSeeds=true writes it)", file).exists();
            assertThat(Files.readAllBytes(file)).as("seed %s", file).isEqualTo(seed.getValue());
        }
    }

    static Map<Path, byte[]> seeds() {
        byte[] header = ByteBuffer.allocate(20).order(ByteOrder.LITTLE_ENDIAN).putInt(MigrationRecord.MAGIC)
                .putInt(MigrationRecord.VERSION).putShort((short) 0x4a56).putShort((short) 1).putInt(0xff0000)
                .putInt(256).array();
        byte[] config = new byte[256];
        new SplittableRandom(1).nextBytes(config);
        byte[] region = ByteBuffer.allocate(12 + 64).order(ByteOrder.LITTLE_ENDIAN).putInt(0).putLong(0x40).array();
        List<Rec> sample = List.of(new Rec(MigrationRecord.HEADER, header),
                new Rec(MigrationRecord.DEVICE, new byte[] {1, 2, 3, 4, 5, 6, 7, 8}),
                new Rec(MigrationRecord.CONFIG, config), new Rec(MigrationRecord.IRQS, new byte[40]),
                new Rec(MigrationRecord.REGION, region), new Rec(MigrationRecord.DEVICE, new byte[0]),
                new Rec(MigrationRecord.END, new byte[0]));
        Map<Path, byte[]> seeds = new LinkedHashMap<>();
        ByteArrayOutputStream stream = new ByteArrayOutputStream();
        sample.forEach(r -> stream.writeBytes(MigrationStreamFuzzTest.seal(r.tag(), r.body())));
        for (int i = 0; i < 3; i++) {
            seeds.put(Path.of("MigrationStreamFuzzTestInputs/bytes", "sample-" + i),
                    concat(stream.toByteArray(), longBytes(300 + i)));
        }
        // Heads announcing the largest body (allocated, then the stream is cut), one byte more and 2^32 - 1 (both
        // refused before anything is allocated), and a first record that is not HEADER.
        for (long length : new long[] {MigrationRecord.MAX_LENGTH, MigrationRecord.MAX_LENGTH + 1L, 0xffffffffL}) {
            byte[] head = ByteBuffer.allocate(12 + 16).order(ByteOrder.LITTLE_ENDIAN).putInt(MigrationRecord.HEADER)
                    .putInt((int) length).array();
            seeds.put(Path.of("MigrationStreamFuzzTestInputs/bytes", "head-length-" + length),
                    concat(head, longBytes(310)));
        }
        seeds.put(Path.of("MigrationStreamFuzzTestInputs/bytes", "device-first"),
                concat(MigrationStreamFuzzTest.seal(MigrationRecord.DEVICE, new byte[4]), longBytes(311)));
        byte[] description = describe(sample);
        seeds.put(Path.of("MigrationStreamFuzzTestInputs/records", "sample"),
                concat(description, longBytes(400), shortBytes(0), shortBytes(0)));
        seeds.put(Path.of("MigrationStreamFuzzTestInputs/records", "sample-flipped"),
                concat(description, longBytes(401), shortBytes(0), shortBytes(1 + 8 * 300 + 3)));
        seeds.put(Path.of("MigrationStreamFuzzTestInputs/records", "sample-cut"),
                concat(description, longBytes(402), shortBytes(290), shortBytes(0)));
        List<Rec> twoHeaders = new java.util.ArrayList<>(sample);
        twoHeaders.add(1, sample.get(0));
        seeds.put(Path.of("MigrationStreamFuzzTestInputs/records", "two-headers"),
                concat(describe(twoHeaders), longBytes(403), shortBytes(0), shortBytes(0)));
        List<Rec> afterEnd = new java.util.ArrayList<>(sample);
        afterEnd.add(sample.get(1));
        seeds.put(Path.of("MigrationStreamFuzzTestInputs/records", "after-end"),
                concat(describe(afterEnd), longBytes(404), shortBytes(0), shortBytes(0)));
        return seeds;
    }

    /** The records target's description: a kind byte (the tag), a 16-bit little-endian length, the body. */
    private static byte[] describe(List<Rec> records) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (Rec r : records) {
            out.write(r.tag());
            out.write(r.body().length);
            out.write(r.body().length >>> 8);
            out.writeBytes(r.body());
        }
        return out.toByteArray();
    }

    /** Two trailer bytes, read by {@code consumeInt(0, 0xffff)}. */
    private static byte[] shortBytes(int value) {
        return new byte[] {(byte) (value >>> 8), (byte) value};
    }

    private static byte[] longBytes(long value) {
        byte[] bytes = new byte[8];
        for (int i = 0; i < 8; i++) {
            bytes[i] = (byte) (value >>> 8 * i);
        }
        return bytes;
    }

    private static byte[] concat(byte[]... parts) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (byte[] part : parts) {
            out.writeBytes(part);
        }
        return out.toByteArray();
    }
}
