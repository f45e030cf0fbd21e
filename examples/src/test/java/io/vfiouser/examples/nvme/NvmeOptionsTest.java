package io.vfiouser.examples.nvme;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class NvmeOptionsTest {
    @Test
    void sizesWithSuffixes() {
        assertThat(NvmeOptions.parseSize("4096")).isEqualTo(4096);
        assertThat(NvmeOptions.parseSize("64M")).isEqualTo(64L << 20);
        assertThat(NvmeOptions.parseSize("1g")).isEqualTo(1L << 30);
        assertThat(NvmeOptions.parseSize("512KiB")).isEqualTo(512L << 10);
        assertThat(NvmeOptions.parseSize("2T")).isEqualTo(2L << 40);
        assertThatThrownBy(() -> NvmeOptions.parseSize("12Q")).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> NvmeOptions.parseSize("99999999999999999999")).isInstanceOf(
                IllegalArgumentException.class);
        assertThatThrownBy(() -> new NvmeOptions(Path.of("x"), 1000)).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void doorbellModesByTheirOptionNames() {
        assertThat(DoorbellMode.parse("write")).isEqualTo(DoorbellMode.WRITE);
        assertThat(DoorbellMode.parse(" Shadow ")).isEqualTo(DoorbellMode.SHADOW);
        assertThat(DoorbellMode.parse("MMAP")).isEqualTo(DoorbellMode.MMAP);
        assertThat(DoorbellMode.names()).isEqualTo("write|shadow|mmap");
        assertThatThrownBy(() -> DoorbellMode.parse("posted")).isInstanceOf(IllegalArgumentException.class)
                .hasMessage("doorbells=posted: one of write|shadow|mmap");
        assertThat(new NvmeOptions(Path.of("x"), 0).doorbells()).isEqualTo(DoorbellMode.DEFAULT);
        assertThatThrownBy(() -> new NvmeOptions(Path.of("x"), 0, null)).isInstanceOf(NullPointerException.class);
    }

    @Test
    void theFileIsCreatedExtendedOrTakenAsItIs(@TempDir Path dir) throws Exception {
        Path f = dir.resolve("a.img");
        try (NamespaceFile ns = NamespaceFile.open(f, 1 << 20, "t")) {
            assertThat(ns.blocks()).isEqualTo(2048);
        }
        assertThat(Files.size(f)).isEqualTo(1 << 20);
        try (NamespaceFile ns = NamespaceFile.open(f, 0, "t")) {
            assertThat(ns.size()).as("the existing size").isEqualTo(1 << 20);
        }
        try (NamespaceFile ns = NamespaceFile.open(f, 2 << 20, "t")) {
            assertThat(ns.size()).isEqualTo(2 << 20);
        }
        assertThat(Files.size(f)).as("extended, never truncated").isEqualTo(2 << 20);
        assertThatThrownBy(() -> NamespaceFile.open(dir.resolve("missing.img"), 0, "t"))
                .isInstanceOf(IllegalArgumentException.class);
        Files.write(dir.resolve("odd.img"), new byte[1000]);
        assertThatThrownBy(() -> NamespaceFile.open(dir.resolve("odd.img"), 0, "t"))
                .isInstanceOf(IllegalArgumentException.class);
    }
}
