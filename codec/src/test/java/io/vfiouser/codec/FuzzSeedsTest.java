package io.vfiouser.codec;

import static org.assertj.core.api.Assertions.assertThat;

import io.vfiouser.codec.Goldens.Golden;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * The seed corpus of the fuzz targets: the golden messages of every command, requests and replies, in each DMA
 * layout they stand for, each followed by the trailer of control bytes its target reads from the end of an input.
 * The seeds are committed under {@code src/test/resources/io/vfiouser/codec/<Target>Inputs/<method>/}, where
 * Jazzer replays them in every test run and starts its campaigns from them. This test fails when they differ from
 * what the goldens give; {@code -Dvfu.fuzz.writeSeeds=true} (re)writes them.
 *
 * <p>Files of other names in those folders (inputs a campaign found worth keeping, crash reproducers) are left
 * alone.
 */
class FuzzSeedsTest {
    private static final Path RESOURCES = Path.of("src/test/resources/io/vfiouser/codec");

    @Test
    void committedSeedsAreTheGoldens() throws IOException {
        boolean write = Boolean.getBoolean("vfu.fuzz.writeSeeds");
        Map<Path, byte[]> seeds = seeds();
        for (Map.Entry<Path, byte[]> seed : seeds.entrySet()) {
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
        Map<Path, byte[]> seeds = new LinkedHashMap<>();
        ByteArrayOutputStream everything = new ByteArrayOutputStream();
        Map<DmaLayout, ByteArrayOutputStream> byLayout = new EnumMap<>(DmaLayout.class);
        for (DmaLayout layout : DmaLayout.values()) {
            byLayout.put(layout, new ByteArrayOutputStream());
        }
        for (Golden golden : Goldens.all()) {
            everything.writeBytes(golden.bytes());
            String name = "golden-" + golden.name().toLowerCase(Locale.ROOT).replaceAll("[^a-z0-9]+", "-")
                    .replaceAll("^-|-$", "");
            for (DmaLayout layout : golden.layouts()) {
                byLayout.get(layout).writeBytes(golden.bytes());
            }
            if (golden.bytes().length > 21 && golden.bytes()[3] == 0 && golden.bytes()[2] == 1) {
                byte[] json = Arrays.copyOfRange(golden.bytes(), 20, golden.bytes().length - 1);
                seeds.put(Path.of("CapabilitiesFuzzTestInputs/json", name), concat(json, new byte[] {1}));
            }
        }
        // MessageDecoderFuzzTest.frames: the goldens of each layout, type 0 (as in the frames), the layout.
        for (DmaLayout layout : DmaLayout.values()) {
            seeds.put(Path.of("MessageDecoderFuzzTestInputs/frames", "all-goldens-" + layout.name().toLowerCase(
                    Locale.ROOT)), concat(byLayout.get(layout).toByteArray(), new byte[] {0, layoutByte(layout)}));
        }
        byte[] stream = everything.toByteArray();
        // The stream targets get every golden in one stream (a seed per golden would only add replay time): cut
        // into reads of many sizes, some frames served by the shortcut, some reads with fds.
        for (int i = 0; i < 6; i++) {
            byte serveMask = (byte) (i == 0 ? 0 : 0x55 << (i & 1));
            seeds.put(Path.of("FrameDecoderFuzzTestInputs/stream", "all-goldens-" + i),
                    concat(stream, longBytes(100 + i), new byte[] {serveMask, 0}));
            seeds.put(Path.of("FdPairingFuzzTestInputs/reads", "all-goldens-" + i),
                    concat(stream, longBytes(200 + i), longBytes(100 + i), new byte[] {serveMask, (byte) (i & 1), 8}));
        }
        // A maximum of 16 + 16 * 4 = 80 bytes: the stream fails at its first longer message.
        seeds.put(Path.of("FrameDecoderFuzzTestInputs/stream", "all-goldens-max-80"),
                concat(stream, longBytes(7), new byte[] {0, 4}));
        Stream.of(Goldens.QEMU_VERSION_JSON, Goldens.RECOMMENDED_REPLY_JSON, "{}", "",
                "{\"capabilities\":{\"max_msg_fds\":8,\"max_data_xfer_size\":1048576,\"pgsizes\":4096,"
                        + "\"max_dma_maps\":65535,\"write_multiple\":true,\"twin_socket\":{\"supported\":true,"
                        + "\"fd_index\":0},\"migration\":{\"pgsize\":4096,\"max_bitmap_size\":268435456}}}")
                .forEach(json -> seeds.put(Path.of("CapabilitiesFuzzTestInputs/json", "json-" + json.hashCode()),
                        concat(json.getBytes(StandardCharsets.UTF_8), new byte[] {1})));
        return seeds;
    }

    /** The byte {@code consumeBoolean()} reads as the layout: odd is QEMU. */
    private static byte layoutByte(DmaLayout layout) {
        return (byte) (layout == DmaLayout.QEMU ? 1 : 0);
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
