package io.vfiouser.examples.nvme;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.UUID;
import org.junit.jupiter.api.Test;

/** The Identify layouts at the offsets NVMe 1.4 gives them. */
class IdentifyDataTest {
    private static final IdentifyData.ControllerInfo CTRL = new IdentifyData.ControllerInfo(0x4a56, 0x4a57,
            "SERIAL1", "Model", "1.2", "nqn.test", 10, 16, 4, 4, 16, IdentifyData.OACS_DOORBELL_BUFFER_CONFIG);

    @Test
    void controller() {
        ByteBuffer b = IdentifyData.controller(CTRL);
        assertThat(b.capacity()).isEqualTo(4096);
        assertThat(b.getShort(0)).isEqualTo((short) 0x4a56);
        assertThat(b.getShort(2)).isEqualTo((short) 0x4a57);
        assertThat(ascii(b, 4, 20)).isEqualTo("SERIAL1             ");
        assertThat(ascii(b, 24, 40)).startsWith("Model ").hasSize(40);
        assertThat(ascii(b, 64, 8)).isEqualTo("1.2     ");
        assertThat(b.get(77)).isEqualTo((byte) 10);
        assertThat(b.getInt(80)).isEqualTo(0x10400);
        assertThat(b.get(111)).as("I/O controller").isEqualTo((byte) 1);
        assertThat(b.getShort(256)).as("OACS: Doorbell Buffer Config").isEqualTo((short) 0x100);
        assertThat(b.get(259)).as("AERL 0-based").isEqualTo((byte) 3);
        assertThat(b.get(262)).as("ELPE 0-based").isEqualTo((byte) 15);
        assertThat(b.get(512)).isEqualTo((byte) 0x66);
        assertThat(b.get(513)).isEqualTo((byte) 0x44);
        assertThat(b.getInt(516)).isEqualTo(1);
        assertThat(b.getShort(520)).isEqualTo((short) 0b1100);
        assertThat(b.get(525) & 1).as("volatile write cache").isEqualTo(1);
        assertThat(b.getInt(536)).as("no SGLs").isZero();
        assertThat(ascii(b, 768, 8)).isEqualTo("nqn.test");
        assertThat(b.get(776)).isZero();
    }

    @Test
    void namespaceAndDescriptors() {
        UUID id = UUID.fromString("00112233-4455-6677-8899-aabbccddeeff");
        IdentifyData.NamespaceInfo ns = new IdentifyData.NamespaceInfo(131072, id);
        ByteBuffer b = IdentifyData.namespace(ns);
        assertThat(b.getLong(0)).isEqualTo(131072);
        assertThat(b.getLong(8)).isEqualTo(131072);
        assertThat(b.get(25)).as("one LBA format").isZero();
        assertThat(b.get(104)).as("NGUID, big-endian").isEqualTo((byte) 0x00);
        assertThat(b.get(119)).isEqualTo((byte) 0xff);
        assertThat(b.getInt(128)).as("LBAF0: 2^9 bytes").isEqualTo(9 << 16);

        ByteBuffer d = IdentifyData.namespaceDescriptors(ns);
        assertThat(d.get(0)).isEqualTo((byte) 2);
        assertThat(d.get(1)).isEqualTo((byte) 16);
        assertThat(d.get(5)).isEqualTo((byte) 0x11);
        assertThat(d.get(20)).isEqualTo((byte) 3);
        assertThat(d.get(21)).isEqualTo((byte) 16);
        assertThat(d.get(40)).as("terminator").isZero();
    }

    @Test
    void activeNamespaceList() {
        assertThat(IdentifyData.activeNamespaces(0).getInt(0)).isEqualTo(1);
        assertThat(IdentifyData.activeNamespaces(1).getInt(0)).isZero();
        assertThat(IdentifyData.activeNamespaces(5).getInt(0)).isZero();
    }

    private static String ascii(ByteBuffer b, int at, int length) {
        byte[] out = new byte[length];
        b.get(at, out);
        return new String(out, StandardCharsets.US_ASCII);
    }
}
