package io.vfiouser.it.launcher;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.jar.JarEntry;
import java.util.jar.JarOutputStream;
import java.util.stream.Stream;
import javax.tools.JavaCompiler;
import javax.tools.ToolProvider;

/**
 * Plugin jars built by the tests at run time, the way a device author would build one: sources compiled with
 * javac against the device API, and a jar with {@code META-INF/services/io.vfiouser.device.spi.DevicePlugin}.
 */
final class TestPlugins {
    static final String SERVICES = "META-INF/services/io.vfiouser.device.spi.DevicePlugin";

    /**
     * A device that is not among the examples: {@code magic}, whose BAR0 register 0 reads as the configured
     * {@code magic-value} and register 4 as the last value written to it.
     */
    static final String MAGIC_PLUGIN = """
            package org.example.magic;

            import io.vfiouser.device.DeviceDescription;
            import io.vfiouser.device.Region;
            import io.vfiouser.device.VfioUserDevice;
            import io.vfiouser.device.pci.PciIdentity;
            import io.vfiouser.device.spi.DeviceInstance;
            import io.vfiouser.device.spi.DevicePlugin;
            import io.vfiouser.device.spi.DeviceType;
            import java.nio.ByteBuffer;
            import java.util.List;
            import java.util.concurrent.CompletableFuture;

            public final class MagicPlugin implements DevicePlugin {
                public record Settings(int magicValue) {
                }

                public List<DeviceType<?>> deviceTypes() {
                    return List.of(DeviceType.of("magic", Settings.class, (name, s) -> new DeviceInstance(
                            DeviceDescription.builder(name, PciIdentity.of(0x1234, 0x5678, 0xff0000))
                                    .region(Region.bar(0, 4096).build()).build(),
                            new Magic(s.magicValue())), "a register that reads as magic-value"));
                }

                static final class Magic implements VfioUserDevice {
                    private final int magic;
                    private int scratch;

                    Magic(int magic) {
                        this.magic = magic;
                    }

                    public CompletableFuture<Void> regionRead(int region, long offset, ByteBuffer dst) {
                        dst.putInt(dst.position(), offset == 0 ? magic : scratch);
                        return DONE;
                    }

                    public CompletableFuture<Void> regionWrite(int region, long offset, ByteBuffer src) {
                        scratch = src.getInt(src.position());
                        return DONE;
                    }
                }
            }
            """;

    private TestPlugins() {
    }

    /** Compiles {@code source} (class {@code className}) and jars it with a services file naming {@code provider}. */
    static Path build(Path work, String jarName, String className, String source, String provider) throws IOException {
        Path src = work.resolve("src-" + jarName);
        Path classes = work.resolve("classes-" + jarName);
        Path file = src.resolve(className.replace('.', '/') + ".java");
        Files.createDirectories(file.getParent());
        Files.createDirectories(classes);
        Files.writeString(file, source);
        JavaCompiler javac = ToolProvider.getSystemJavaCompiler();
        assertThat(javac).as("a JDK compiler").isNotNull();
        int status = javac.run(null, null, null, "-d", classes.toString(), "--release", "25",
                "-cp", System.getProperty("java.class.path"), file.toString());
        assertThat(status).as("javac of %s", className).isZero();
        return jar(work.resolve(jarName), classes, provider);
    }

    /** A jar of the classes under {@code classes} (may be null: none) and a services file naming {@code provider}. */
    static Path jar(Path jar, Path classes, String provider) throws IOException {
        Files.createDirectories(jar.getParent());
        try (OutputStream out = Files.newOutputStream(jar); JarOutputStream j = new JarOutputStream(out)) {
            if (classes != null) {
                List<Path> files;
                try (Stream<Path> walk = Files.walk(classes)) {
                    files = walk.filter(Files::isRegularFile).sorted().toList();
                }
                for (Path f : files) {
                    j.putNextEntry(new JarEntry(classes.relativize(f).toString().replace('\\', '/')));
                    j.write(Files.readAllBytes(f));
                    j.closeEntry();
                }
            }
            j.putNextEntry(new JarEntry(SERVICES));
            j.write((provider + "\n").getBytes(StandardCharsets.UTF_8));
            j.closeEntry();
        }
        return jar;
    }
}
