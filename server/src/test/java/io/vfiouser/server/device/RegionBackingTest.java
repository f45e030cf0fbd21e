package io.vfiouser.server.device;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vfiouser.device.DeviceDescription;
import io.vfiouser.device.MmapArea;
import io.vfiouser.device.Region;
import io.vfiouser.device.RegionBacking;
import io.vfiouser.device.VfioUserDevice;
import io.vfiouser.device.pci.PciIdentity;
import io.vfiouser.server.ServerOptions;
import io.vfiouser.transport.linux.ErrnoException;
import io.vfiouser.transport.linux.Linux;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.IntFunction;
import org.junit.jupiter.api.Test;

/**
 * The files devices supply behind their regions ({@link RegionBacking}): what the server accepts and refuses when
 * the device is hosted, and that it closes each fd exactly once on every path: when the device stops, when it
 * refuses the fd, and when hosting fails halfway (a later region refused, or the device throwing).
 *
 * <p>"Closed" is checked by what {@code /proc/self/fd/N} names: each test file is a memfd with a name of its own,
 * so a number reused by another thread for another file does not pass for ours.
 */
class RegionBackingTest {
    private static final AtomicLong NAMES = new AtomicLong();
    /** A memfd of {@code size} bytes with {@code seals}, and its /proc target. */
    private record File(int fd, String target) {
        boolean open() {
            try {
                return Linux.fdTarget(fd).equals(target);
            } catch (ErrnoException e) {
                return false;
            }
        }
    }

    private static File memfd(long size, int seals) throws ErrnoException {
        int fd = Linux.memfdCreate("backing-test-" + ProcessHandle.current().pid() + "-" + NAMES.incrementAndGet());
        Linux.ftruncate(fd, size);
        if (seals != 0) {
            Linux.addSeals(fd, seals);
        }
        return new File(fd, Linux.fdTarget(fd));
    }

    private static DeviceDescription twoBackedRegions() {
        return DeviceDescription.builder("backing", PciIdentity.of(0x4a56, 0x0005, 0xff0000))
                .region(Region.bar(0, 0x4000).hybrid(new MmapArea(0x1000, 0x1000)).deviceBacked().build())
                .region(Region.bar(2, 0x2000).memoryBacked().deviceBacked().build())
                .build();
    }

    private static DeviceRuntime host(DeviceDescription d, Device device) throws ErrnoException {
        return new DeviceRuntime(d, device, ServerOptions.DEFAULT.limits(), null);
    }

    @Test
    void aSealedMemfdIsTakenServedAndClosedWhenTheDeviceStops() throws Exception {
        File bar0 = memfd(0x3000, Linux.F_SEAL_SHRINK);
        File bar2 = memfd(0x2000, Linux.F_SEAL_SHRINK | Linux.F_SEAL_GROW);
        DeviceRuntime runtime = host(twoBackedRegions(), new Device()
                .supply(0, i -> RegionBacking.sealed(bar0.fd(), 0))
                .supply(2, i -> RegionBacking.sealed(bar2.fd(), 0)));
        RegionMemory m0 = runtime.memory(0).orElseThrow();
        assertThat(m0.areaCount()).isEqualTo(1);
        assertThat(m0.area(0).byteSize()).isEqualTo(0x1000);
        assertThat(m0.shrinkSealed()).isTrue();
        m0.area(0).set(ValueLayout.JAVA_INT, 0, 7);
        assertThat(runtime.memory(2).orElseThrow().segment().byteSize()).isEqualTo(0x2000);
        assertThat(bar0.open()).as("the server holds the device's fd while it serves").isTrue();
        assertThat(bar2.open()).isTrue();

        runtime.close();
        assertThat(bar0.open()).as("closed when the device stops").isFalse();
        assertThat(bar2.open()).isFalse();
        assertThatThrownBy(() -> m0.area(0).get(ValueLayout.JAVA_INT, 0)).isInstanceOf(IllegalStateException.class);
    }

    @Test
    void aFileTooSmallForTheOffsetAndTheSpanIsRefusedAndClosed() throws Exception {
        File bar0 = memfd(0x2000, Linux.F_SEAL_SHRINK);
        DeviceDescription d = DeviceDescription.builder("backing", PciIdentity.of(0x4a56, 0x0005, 0xff0000))
                .region(Region.bar(0, 0x4000).hybrid(new MmapArea(0x1000, 0x1000)).deviceBacked().build()).build();
        // The area ends at 0x2000 of the region, which lies at 0x1000 of the file: 0x3000 bytes needed.
        assertThatThrownBy(() -> host(d, new Device().supply(0, i -> RegionBacking.sealed(bar0.fd(), 0x1000))))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("needs 12288");
        assertThat(bar0.open()).isFalse();
    }

    @Test
    void anUnsealedFileIsRefusedWhenTheDeviceRequiresSealsAndClosed() throws Exception {
        File bar0 = memfd(0x4000, 0);
        DeviceDescription d = DeviceDescription.builder("backing", PciIdentity.of(0x4a56, 0x0005, 0xff0000))
                .region(Region.bar(0, 0x4000).memoryBacked().deviceBacked().build()).build();
        assertThatThrownBy(() -> host(d, new Device().supply(0, i -> RegionBacking.sealed(bar0.fd(), 0))))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("F_SEAL_SHRINK");
        assertThat(bar0.open()).isFalse();

        File sealedOnlyAgainstShrinking = memfd(0x4000, Linux.F_SEAL_SHRINK);
        assertThatThrownBy(() -> host(d, new Device().supply(0, i -> new RegionBacking(
                sealedOnlyAgainstShrinking.fd(), 0, java.util.Set.of(RegionBacking.Seal.SHRINK,
                        RegionBacking.Seal.GROW)))))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("F_SEAL_GROW");
        assertThat(sealedOnlyAgainstShrinking.open()).isFalse();
    }

    @Test
    void anUnsealedFileIsAcceptedWhenTheDeviceRequiresNothing() throws Exception {
        File bar0 = memfd(0x4000, 0);
        DeviceDescription d = DeviceDescription.builder("backing", PciIdentity.of(0x4a56, 0x0005, 0xff0000))
                .region(Region.bar(0, 0x4000).memoryBacked().deviceBacked().build()).build();
        DeviceRuntime runtime = host(d, new Device().supply(0, i -> RegionBacking.unsealed(bar0.fd(), 0)));
        assertThat(runtime.memory(0).orElseThrow().shrinkSealed()).isFalse();
        runtime.close();
        assertThat(bar0.open()).isFalse();
    }

    @Test
    void somethingOtherThanARegularFileIsRefusedAndClosed() throws Exception {
        int efd = Linux.eventfd(0, 0);
        String target = Linux.fdTarget(efd);
        DeviceDescription d = DeviceDescription.builder("backing", PciIdentity.of(0x4a56, 0x0005, 0xff0000))
                .region(Region.bar(0, 0x4000).memoryBacked().deviceBacked().build()).build();
        assertThatThrownBy(() -> host(d, new Device().supply(0, i -> RegionBacking.unsealed(efd, 0))))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("not a regular file");
        assertThat(new File(efd, target).open()).isFalse();
    }

    @Test
    void hostingThatFailsAtALaterRegionClosesTheFdsTakenBefore() throws Exception {
        File bar0 = memfd(0x3000, Linux.F_SEAL_SHRINK);
        File tooSmall = memfd(0x1000, Linux.F_SEAL_SHRINK);
        Device device = new Device().supply(0, i -> RegionBacking.sealed(bar0.fd(), 0))
                .supply(2, i -> RegionBacking.sealed(tooSmall.fd(), 0));
        assertThatThrownBy(() -> host(twoBackedRegions(), device)).isInstanceOf(IllegalArgumentException.class);
        assertThat(bar0.open()).as("taken for BAR0, closed when BAR2 failed").isFalse();
        assertThat(tooSmall.open()).isFalse();
        assertThat(device.asked).containsExactly(0, 2);
    }

    @Test
    void hostingThatFailsBecauseTheDeviceThrowsClosesTheFdsTakenBefore() throws Exception {
        File bar0 = memfd(0x3000, Linux.F_SEAL_SHRINK);
        Device device = new Device().supply(0, i -> RegionBacking.sealed(bar0.fd(), 0))
                .supply(2, i -> {
                    throw new IllegalStateException("no file for BAR2");
                });
        assertThatThrownBy(() -> host(twoBackedRegions(), device)).hasMessage("no file for BAR2");
        assertThat(bar0.open()).isFalse();
    }

    @Test
    void aDeviceThatDoesNotSupplyItsFileFailsHostingClearly() throws Exception {
        assertThatThrownBy(() -> host(twoBackedRegions(), new Device()))
                .isInstanceOf(UnsupportedOperationException.class).hasMessageContaining("regionBacking");
    }

    /** Supplies backings per region, records which regions it was asked for. */
    private static final class Device implements VfioUserDevice {
        final List<Integer> asked = new ArrayList<>();
        private final Map<Integer, IntFunction<RegionBacking>> supply = new HashMap<>();

        Device supply(int region, IntFunction<RegionBacking> backing) {
            supply.put(region, backing);
            return this;
        }

        @Override
        public RegionBacking regionBacking(int region) {
            asked.add(region);
            IntFunction<RegionBacking> s = supply.get(region);
            return s == null ? VfioUserDevice.super.regionBacking(region) : s.apply(region);
        }

        @Override
        public CompletableFuture<Void> regionRead(int region, long offset, ByteBuffer dst) {
            return DONE;
        }

        @Override
        public CompletableFuture<Void> regionWrite(int region, long offset, ByteBuffer src) {
            return DONE;
        }
    }
}
