package io.vfiouser.server.migration;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vfiouser.codec.VfioUserProtocolException;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

/** The migration stream cut back into records, whatever the pieces the client writes. */
class MigrationStreamReaderTest {

    private static byte[] stream(ByteBuffer... records) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (ByteBuffer r : records) {
            byte[] b = new byte[r.remaining()];
            r.duplicate().get(b);
            out.writeBytes(b);
        }
        return out.toByteArray();
    }

    private static byte[] sample() {
        byte[] big = new byte[100_000];
        new Random(1).nextBytes(big);
        return stream(MigrationRecord.header(0x4a56, 1, 0xff0000, 4096),
                MigrationRecord.of(MigrationRecord.DEVICE, new byte[] {1, 2, 3}),
                MigrationRecord.of(MigrationRecord.REGION, big),
                MigrationRecord.of(MigrationRecord.DEVICE, new byte[0]),
                MigrationRecord.of(MigrationRecord.END, new byte[0]));
    }

    @Test
    void piecesOfAnySizeGiveTheSameRecords() {
        byte[] s = sample();
        for (int piece : new int[] {1, 7, 8, 9, 4096, s.length}) {
            MigrationStreamReader reader = new MigrationStreamReader();
            List<MigrationStreamReader.Record> records = new ArrayList<>();
            for (int at = 0; at < s.length; at += piece) {
                assertThat(reader.complete()).isFalse();
                records.addAll(reader.feed(ByteBuffer.wrap(s, at, Math.min(piece, s.length - at))));
            }
            assertThat(reader.complete()).as("pieces of %d", piece).isTrue();
            assertThat(records).extracting(MigrationStreamReader.Record::tag).containsExactly(
                    MigrationRecord.HEADER, MigrationRecord.DEVICE, MigrationRecord.REGION, MigrationRecord.DEVICE,
                    MigrationRecord.END);
            assertThat(records.get(1).body().remaining()).isEqualTo(3);
            assertThat(records.get(2).body().remaining()).isEqualTo(100_000);
            assertThat(reader.bytes()).isEqualTo(s.length);
        }
    }

    @Test
    void aStreamMustStartWithItsHeaderAndStopAtItsEnd() {
        MigrationStreamReader noHeader = new MigrationStreamReader();
        assertThatThrownBy(() -> noHeader.feed(MigrationRecord.of(MigrationRecord.DEVICE, new byte[1])))
                .isInstanceOf(VfioUserProtocolException.class);
        assertThatThrownBy(() -> noHeader.feed(ByteBuffer.allocate(0))).as("failed for good")
                .isInstanceOf(VfioUserProtocolException.class);

        MigrationStreamReader twoHeaders = new MigrationStreamReader();
        twoHeaders.feed(MigrationRecord.header(1, 2, 3, 256));
        assertThatThrownBy(() -> twoHeaders.feed(MigrationRecord.header(1, 2, 3, 256)))
                .isInstanceOf(VfioUserProtocolException.class);

        MigrationStreamReader afterEnd = new MigrationStreamReader();
        byte[] s = sample();
        afterEnd.feed(ByteBuffer.wrap(s));
        assertThatThrownBy(() -> afterEnd.feed(ByteBuffer.wrap(new byte[1])))
                .isInstanceOf(VfioUserProtocolException.class);
        assertThat(afterEnd.complete()).isFalse();

        MigrationStreamReader huge = new MigrationStreamReader();
        huge.feed(MigrationRecord.header(1, 2, 3, 256));
        ByteBuffer head = ByteBuffer.allocate(MigrationRecord.HEAD_SIZE).order(java.nio.ByteOrder.LITTLE_ENDIAN)
                .putInt(MigrationRecord.DEVICE).putInt(MigrationRecord.MAX_LENGTH + 1).putInt(0).flip();
        assertThatThrownBy(() -> huge.feed(head)).as("no allocation for a record above the limit")
                .isInstanceOf(VfioUserProtocolException.class);

        MigrationStreamReader cut = new MigrationStreamReader();
        cut.feed(ByteBuffer.wrap(s, 0, s.length - 1));
        assertThat(cut.complete()).isFalse();
    }

    @Test
    void everyFlippedByteFailsTheStream() {
        byte[] s = sample();
        // Every byte of the first records (heads, the header's fields), then bytes throughout the long body, and
        // every byte of the last records.
        IntStream positions = IntStream.concat(
                IntStream.concat(IntStream.range(0, 100),
                        IntStream.range(100, s.length - 100).filter(i -> i % 997 == 0)),
                IntStream.range(s.length - 100, s.length));
        for (int at : positions.toArray()) {
            byte[] bad = s.clone();
            bad[at] ^= 0x20;
            MigrationStreamReader reader = new MigrationStreamReader();
            try {
                reader.feed(ByteBuffer.wrap(bad));
            } catch (VfioUserProtocolException e) {
                assertThat(e.errno()).isEqualTo(io.vfiouser.transport.linux.Errno.EINVAL);
            }
            // Caught by a CRC, a shape rule, or (a length made longer) left incomplete: never whole.
            assertThat(reader.complete()).as("byte %d flipped", at).isFalse();
        }
    }

    @Test
    void aLoadFailureFailsTheStream() {
        MigrationStreamReader reader = new MigrationStreamReader();
        reader.feed(ByteBuffer.wrap(sample()));
        assertThat(reader.complete()).isTrue();
        reader.fail();
        assertThat(reader.complete()).isFalse();
        assertThatThrownBy(() -> reader.feed(ByteBuffer.wrap(new byte[1])))
                .isInstanceOf(VfioUserProtocolException.class);
    }
}
