package io.vfiouser.codec;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.vfiouser.codec.VfioUserCapabilities.Migration;
import io.vfiouser.codec.VfioUserCapabilities.TwinSocket;
import io.vfiouser.codec.payload.VersionPayload;
import io.vfiouser.transport.linux.Errno;
import java.util.List;
import java.util.OptionalInt;
import java.util.OptionalLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.NullSource;
import org.junit.jupiter.params.provider.ValueSource;

class VfioUserCapabilitiesTest {

    @Test
    void parsesQemusCapabilities() {
        VfioUserCapabilities caps = VfioUserCapabilities.parse(Goldens.QEMU_VERSION_JSON);
        assertThat(caps.maxMsgFds()).isEqualTo(16);
        assertThat(caps.maxDataXferSize()).isEqualTo(1048576);
        assertThat(caps.pgsizes()).isEqualTo(4096);
        assertThat(caps.maxDmaMaps()).isEqualTo(65535);
        assertThat(caps.writeMultiple()).isTrue();
        assertThat(caps.migration()).isEqualTo(new Migration(OptionalLong.of(4096), OptionalLong.of(268435456)));
        assertThat(caps.twinSocket()).isNull();
        assertThat(caps.keys()).containsExactly("max_msg_fds", "max_data_xfer_size", "pgsizes", "max_dma_maps",
                "write_multiple", "migration");
    }

    @Test
    void parsesLibvfioUsersReply() {
        VfioUserCapabilities caps = VfioUserCapabilities.parse("{\"capabilities\":{\"max_msg_fds\":8,"
                + "\"max_data_xfer_size\":1048576,\"migration\":{\"pgsize\":4096},"
                + "\"twin_socket\":{\"supported\":true,\"fd_index\":0}}}");
        assertThat(caps.maxMsgFds()).isEqualTo(8);
        assertThat(caps.migration()).isEqualTo(Migration.of(4096));
        assertThat(caps.twinSocket()).isEqualTo(new TwinSocket(true, OptionalInt.of(0)));
        assertThat(caps.writeMultiple()).isFalse();
    }

    @ParameterizedTest
    @NullSource
    @ValueSource(strings = {"", "  ", "{}", "{\"capabilities\":{}}", "{\"other\":1}",
            "{\"capabilities\":{\"unknown\":[1,2]}}"})
    void absentKeysTakeTheirDefaults(String json) {
        VfioUserCapabilities caps = VfioUserCapabilities.parse(json);
        assertThat(caps.maxMsgFds()).isEqualTo(1);
        assertThat(caps.maxDataXferSize()).isEqualTo(1 << 20);
        assertThat(caps.pgsizes()).isEqualTo(4096);
        assertThat(caps.maxDmaMaps()).isEqualTo(65535);
        assertThat(caps.writeMultiple()).isFalse();
        assertThat(caps.twinSocket()).isNull();
        assertThat(caps.migration()).isNull();
        assertThat(caps.keys()).isEmpty();
    }

    @Test
    void defaultMaxMsgFdsIsConfigurable() {
        assertThat(VfioUserCapabilities.parse("{}", 8).maxMsgFds()).isEqualTo(8);
        assertThat(VfioUserCapabilities.parse("{\"capabilities\":{\"max_msg_fds\":2}}", 8).maxMsgFds())
                .isEqualTo(2);
    }

    @ParameterizedTest
    @ValueSource(strings = {
        "not json",
        "{\"capabilities\":",
        "{} trailing",
        "[]",
        "null",
        "42",
        "{\"capabilities\":[]}",
        "{\"capabilities\":null}",
        "{\"capabilities\":{\"max_msg_fds\":-1}}",
        "{\"capabilities\":{\"max_msg_fds\":1025}}",
        "{\"capabilities\":{\"max_msg_fds\":\"16\"}}",
        "{\"capabilities\":{\"max_msg_fds\":1.5}}",
        "{\"capabilities\":{\"max_msg_fds\":8.0}}",
        "{\"capabilities\":{\"max_data_xfer_size\":-4096}}",
        "{\"capabilities\":{\"max_data_xfer_size\":1e6}}",
        "{\"capabilities\":{\"max_data_xfer_size\":99999999999999999999}}",
        "{\"capabilities\":{\"pgsizes\":\"4096\"}}",
        "{\"capabilities\":{\"max_dma_maps\":true}}",
        "{\"capabilities\":{\"write_multiple\":1}}",
        "{\"capabilities\":{\"twin_socket\":true}}",
        "{\"capabilities\":{\"twin_socket\":{\"supported\":\"yes\"}}}",
        "{\"capabilities\":{\"twin_socket\":{\"supported\":true,\"fd_index\":-1}}}",
        "{\"capabilities\":{\"migration\":[]}}",
        "{\"capabilities\":{\"migration\":{\"pgsize\":\"4096\"}}}",
        "{\"capabilities\":{\"migration\":{\"max_bitmap_size\":-1}}}",
    })
    void rejectsInvalidCapabilitiesWithEinval(String json) {
        assertThatThrownBy(() -> VfioUserCapabilities.parse(json))
                .isInstanceOfSatisfying(VfioUserProtocolException.class,
                        e -> assertThat(e.errno()).isEqualTo(Errno.EINVAL));
    }

    @Test
    void acceptsTheBoundsOfMaxMsgFds() {
        assertThat(VfioUserCapabilities.parse("{\"capabilities\":{\"max_msg_fds\":0}}").maxMsgFds()).isZero();
        assertThat(VfioUserCapabilities.parse("{\"capabilities\":{\"max_msg_fds\":1024}}").maxMsgFds())
                .isEqualTo(1024);
    }

    @Test
    void formatsCompactJsonWithTheGivenKeysOnly() {
        VfioUserCapabilities caps = VfioUserCapabilities.builder()
                .maxMsgFds(8).maxDataXferSize(1 << 20).pgsizes(4096).maxDmaMaps(65535).build();
        assertThat(caps.toJson()).isEqualTo(Goldens.RECOMMENDED_REPLY_JSON);
        assertThat(VfioUserCapabilities.builder().build().toJson()).isEqualTo("{\"capabilities\":{}}");
        assertThat(VfioUserCapabilities.builder().maxMsgFds(8).writeMultiple(true).build().toJson())
                .isEqualTo("{\"capabilities\":{\"max_msg_fds\":8,\"write_multiple\":true}}");
    }

    @Test
    void formatsEveryKey() {
        VfioUserCapabilities caps = VfioUserCapabilities.builder()
                .maxMsgFds(8).maxDataXferSize(1 << 20).pgsizes(4096).maxDmaMaps(65535).writeMultiple(false)
                .twinSocket(new TwinSocket(true, OptionalInt.of(0)))
                .migration(new Migration(OptionalLong.of(4096), OptionalLong.of(1 << 28)))
                .build();
        assertThat(caps.toJson()).isEqualTo("{\"capabilities\":{\"max_msg_fds\":8,\"max_data_xfer_size\":1048576,"
                + "\"pgsizes\":4096,\"max_dma_maps\":65535,\"write_multiple\":false,"
                + "\"twin_socket\":{\"supported\":true,\"fd_index\":0},"
                + "\"migration\":{\"pgsize\":4096,\"max_bitmap_size\":268435456}}}");
        assertThat(VfioUserCapabilities.parse(caps.toJson())).isEqualTo(caps);
    }

    @Test
    void reformatsParsedCapabilitiesWithTheSameKeys() {
        VfioUserCapabilities qemu = VfioUserCapabilities.parse(Goldens.QEMU_VERSION_JSON);
        VfioUserCapabilities again = VfioUserCapabilities.parse(qemu.toJson());
        assertThat(again).isEqualTo(qemu);
        assertThat(again.keys()).isEqualTo(qemu.keys());
    }

    @Test
    void versionPayloadCarriesTheJsonNulTerminated() {
        VersionPayload payload = VersionPayload.of(0, 0,
                VfioUserCapabilities.builder().maxMsgFds(8).build());
        assertThat(payload.json()).isEqualTo("{\"capabilities\":{\"max_msg_fds\":8}}");
        assertThat(payload.encodedSize()).isEqualTo(4 + payload.json().length() + 1);
        ByteBuf out = Unpooled.buffer();
        try {
            payload.encode(out);
            assertThat(out.getByte(out.writerIndex() - 1)).isZero();
            assertThat(out.readableBytes()).isEqualTo(payload.encodedSize());
        } finally {
            out.release();
        }
    }

    @Test
    void builderRejectsOutOfRangeValues() {
        assertThatThrownBy(() -> VfioUserCapabilities.builder().maxMsgFds(1025))
                .isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> VfioUserCapabilities.builder().pgsizes(-1))
                .isInstanceOf(IllegalArgumentException.class);
        assertThat(List.of(VfioUserCapabilities.builder().maxMsgFds(0).build().maxMsgFds())).containsExactly(0);
    }
}
