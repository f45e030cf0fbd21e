package io.vfiouser.it.qemu;

import static io.vfiouser.it.qemu.NvmeGuestScripts.PATTERN_BLOCKS;
import static org.assertj.core.api.Assertions.assertThat;

import io.vfiouser.examples.nvme.DoorbellMode;
import io.vfiouser.examples.nvme.NvmeDevice;
import io.vfiouser.it.SparseFiles;
import io.vfiouser.server.HostedDevice;
import io.vfiouser.server.VfioUserServer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.BitSet;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The NVMe example device (issue 5) under a real QEMU, driven by the guest's own {@code nvme} driver: the device is
 * served in-process on a backing file in a temporary folder, the guest has two CPUs (so the driver makes two I/O
 * queues). One boot for the identity and the I/O queues, and two per doorbell mode for a file system across a
 * reboot.
 */
@Tag("qemu")
class NvmeGuestTest {

    private static final long SIZE = 128L << 20;
    private static final String PCI_ID = String.format("%04x:%04x", NvmeDevice.VENDOR_ID, NvmeDevice.DEVICE_ID);

    @TempDir
    Path tmp;

    /**
     * The driver binds, the namespace has the configured size, sysfs and {@code nvme id-ctrl} show the identity we
     * configured; each of the two I/O queues (one per CPU) carries I/O: 256 direct writes pinned to CPU 0 raise the
     * interrupt count of CPU 0's queue by 256 and leave the other alone, and so on for CPU 1, reads likewise, and
     * what one CPU wrote the other reads back.
     */
    @Test
    void theGuestsDriverIdentifiesTheControllerAndUsesAnIoQueuePerCpu() throws Exception {
        QemuGuest guest = QemuGuest.create("nvme-identity");
        Path backing = tmp.resolve("disk.img");
        String serial = NvmeDevices.serial(backing);
        try (NvmeDevice device = NvmeDevices.open("nvme", backing, SIZE);
             VfioUserServer server = VfioUserServer.builder().build()) {
            server.serve(NvmeDevice.description("nvme"), device, guest.socket("nvme"));
            guest.device(guest.socket("nvme"));
            QemuGuest.Run run = guest.run(NvmeGuestScripts.identityAndQueues(PCI_ID));
            String why = run.describe();

            assertThat(run.finished()).as("test script ran to its end" + why).isTrue();
            assertThat(run.exitCode()).as(why).isZero();
            assertThat(run.lines("lspci-k")).as(why).contains("\tKernel driver in use: nvme");
            assertThat(Long.parseLong(run.result("size-sectors")) * 512).as("namespace size" + why).isEqualTo(SIZE);
            assertThat(run.result("lba-size")).as(why).isEqualTo("512");
            assertThat(run.result("model")).as(why).isEqualTo(NvmeDevices.MODEL);
            assertThat(run.result("serial")).as(why).isEqualTo(serial);
            assertThat(run.result("firmware")).as(why).isEqualTo(NvmeDevices.FIRMWARE);
            assertThat(run.lines("id-ctrl")).as(why)
                    .anyMatch(l -> l.matches("vid\\s+: 0x" + Integer.toHexString(NvmeDevice.VENDOR_ID)))
                    .anyMatch(l -> l.matches("sn\\s+: " + serial + "\\s*"))
                    .anyMatch(l -> l.matches("mn\\s+: " + NvmeDevices.MODEL + "\\s*"))
                    .anyMatch(l -> l.matches("fr\\s+: " + NvmeDevices.FIRMWARE + "\\s*"));
            assertThat(run.result("id-ns.rc")).as(why).isEqualTo("0");
            assertThat(run.lines("queues")).as("hardware queues and their CPUs" + why).containsExactly("0 0", "1 1");

            // hctx0 (CPU 0) is the I/O queue nvme0q1, hctx1 (CPU 1) is nvme0q2.
            Map<String, Long> start = NvmeGuestScripts.interrupts(run.lines("irq-start"), 2);
            Map<String, Long> write0 = NvmeGuestScripts.interrupts(run.lines("irq-write0"), 2);
            Map<String, Long> write1 = NvmeGuestScripts.interrupts(run.lines("irq-write1"), 2);
            Map<String, Long> read0 = NvmeGuestScripts.interrupts(run.lines("irq-read0"), 2);
            Map<String, Long> read1 = NvmeGuestScripts.interrupts(run.lines("irq-read1"), 2);
            assertThat(start).as("interrupt vectors" + why).containsOnlyKeys("nvme0q0", "nvme0q1", "nvme0q2");
            assertQueueStep("writes on CPU 0", start, write0, "nvme0q1", "nvme0q2", why);
            assertQueueStep("writes on CPU 1", write0, write1, "nvme0q2", "nvme0q1", why);
            assertQueueStep("reads on CPU 0", write1, read0, "nvme0q1", "nvme0q2", why);
            assertQueueStep("reads on CPU 1", read0, read1, "nvme0q2", "nvme0q1", why);
            assertThat(run.result("read0-matches")).as("CPU 0 reads what CPU 1 wrote" + why).isEqualTo("yes");
            assertThat(run.result("read1-matches")).as("CPU 1 reads what CPU 0 wrote" + why).isEqualTo("yes");
            assertThat(run.kernelProblems()).as(why).isEmpty();
        }
        // The device flushed and closed its file: the guest's writes are in it, block by block.
        BitSet blocks = NvmeGuestScripts.patternBlocksIn(backing);
        assertThat(blocks.cardinality()).as("blocks of the known content in the backing file").isEqualTo(512);
        assertThat(blocks.nextClearBit(0)).isEqualTo(512);
    }

    /** 256 I/Os of one CPU: completions (interrupts) on its own queue, none on the other. */
    private static void assertQueueStep(String step, Map<String, Long> before, Map<String, Long> after,
                                        String busy, String idle, String why) {
        assertThat(after.get(busy) - before.get(busy)).as(step + ": interrupts of " + busy + why)
                .isGreaterThanOrEqualTo(256);
        assertThat(after.get(idle) - before.get(idle)).as(step + ": interrupts of " + idle + why).isZero();
    }

    /**
     * ext4 on the namespace: a 64 MiB file of known content is written, synced and read back after the page cache
     * is dropped; after a guest reboot (machine and device reset) it reads back the same; and on the host the
     * backing file holds every 4 KiB block of it, exactly. In each doorbell mode: with {@code shadow} the guest's
     * driver takes the Doorbell Buffer Config it is offered (after each boot's controller reset) and rings an I/O
     * completion queue's head only when its head passes the EventIdx, which the controller never asks for here
     * (its rings have room): a few times per queue and boot, where register doorbells take one per interrupt. With
     * {@code mmap} QEMU maps the doorbell page into the guest, whose driver then writes its doorbells straight into
     * the page the controller watches: no doorbell reaches the server as a message. The REGION_WRITEs the framework
     * served itself (neither the device's nor configuration space's) stay a small fraction of the interrupts, where
     * a doorbell message per interrupt would be at least as many (one run: 16 of them, 1271 interrupts).
     */
    @ParameterizedTest
    @EnumSource(DoorbellMode.class)
    void anExt4FileKeepsItsContentAcrossAGuestRebootAndIsInTheBackingFile(DoorbellMode doorbells) throws Exception {
        QemuGuest guest = QemuGuest.create("nvme-ext4-" + doorbells.optionName()).reboots()
                .timeout(Duration.ofSeconds(480));
        String expected = NvmeGuestScripts.patternSha256(PATTERN_BLOCKS);
        Path backing = tmp.resolve("disk.img");
        DoorbellCountingDevice counting;
        long regionWrites;
        long interrupts;
        try (NvmeDevice device = NvmeDevices.open("nvme", backing, SIZE, doorbells);
             VfioUserServer server = VfioUserServer.builder().build()) {
            counting = new DoorbellCountingDevice(device);
            HostedDevice hosted = server.serve(device.description(), counting, guest.socket("nvme"));
            guest.device(guest.socket("nvme"));
            QemuGuest.Run run;
            try (QemuGuest.Booted booted = guest.start(NvmeGuestScripts.FILE_SYSTEM_ACROSS_REBOOT)) {
                // A second first boot means the file system did not survive the reboot: fail then, not at timeout.
                booted.awaitMark("END", 1, "RESULT boot 1", 2);
                run = booted.awaitExit();
            }
            String why = run.describe();

            assertThat(run.finished()).as("test script ran to its end" + why).isTrue();
            assertThat(run.exitCode()).as(why).isZero();
            List<String> begins = Files.readAllLines(guest.dir().resolve("marks.log")).stream()
                    .filter(l -> l.startsWith("@@VFU-BEGIN ")).toList();
            assertThat(begins).as("boots" + why).hasSize(2);
            assertThat(run.result("mkfs.rc")).as(why).isEqualTo("0");
            assertThat(run.result("sum-written")).as("SHA-256 of the file as written" + why).isEqualTo(expected);
            assertThat(run.result("sum-read1")).as("read back after dropping the caches" + why).isEqualTo(expected);
            assertThat(run.result("boot")).as(why).isEqualTo("2");
            assertThat(run.result("size2")).as(why).isEqualTo(String.valueOf(PATTERN_BLOCKS * 4096L));
            assertThat(run.result("sum-read2")).as("read back after the reboot" + why).isEqualTo(expected);
            assertThat(run.kernelProblems()).as(why).isEmpty();
            regionWrites = hosted.stats().getCommands().getOrDefault("REGION_WRITE", 0L);
            interrupts = hosted.stats().getInterrupts();
        }
        // REGION_WRITEs the framework served without the device: the doorbell page's (mmap), the MSI-X table's.
        long servedByFramework = regionWrites - counting.regionWrites.get() - counting.configWrites.get();
        String counts = String.format(" (I/O SQ doorbells %d, I/O CQ doorbells %d, REGION_WRITEs %d of which to the"
                        + " device %d, to configuration space %d; interrupts %d)", counting.ioSqDoorbells.get(),
                counting.ioCqDoorbells.get(), regionWrites, counting.regionWrites.get(), counting.configWrites.get(),
                interrupts);
        if (doorbells == DoorbellMode.MMAP) {
            assertThat(servedByFramework).as("no doorbell messages: the guest writes the mapped page" + counts)
                    .isLessThan(interrupts / 10);
        } else {
            assertThat(counting.ioSqDoorbells.get()).as("I/O submissions rang" + counts).isPositive();
        }
        if (doorbells == DoorbellMode.MMAP) {
            assertThat(counting.doorbells.get()).as("the device is never called for its doorbell page" + counts)
                    .isZero();
        } else if (doorbells == DoorbellMode.SHADOW) {
            assertThat(counting.ioCqDoorbells.get()).as("head doorbells of 2 I/O queues in 2 boots" + counts)
                    .isLessThanOrEqualTo(16);
        } else {
            assertThat(counting.ioCqDoorbells.get()).as("a head doorbell per interrupt" + counts)
                    .isGreaterThanOrEqualTo(100);
        }
        BitSet blocks = NvmeGuestScripts.patternBlocksIn(backing);
        assertThat(blocks.cardinality()).as("blocks of the 64 MiB file found in the backing file")
                .isEqualTo(PATTERN_BLOCKS);
        assertThat(blocks.nextClearBit(0)).isEqualTo(PATTERN_BLOCKS);
        // mkfs.ext4 discards the whole disk first (Dataset Management, deallocate): holes, not written zeros.
        assertThat(SparseFiles.allocatedBytes(backing)).as("bytes allocated in the sparse backing file")
                .isLessThan(SIZE * 3 / 4);
    }
}
