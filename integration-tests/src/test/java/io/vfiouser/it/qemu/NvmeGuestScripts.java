package io.vfiouser.it.qemu;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;
import java.util.BitSet;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What the NVMe guest tests and benchmark run in the guest, and how they read its answers: the guest scripts, the
 * known file content they write (and its expected digest, computed here on the host), the scan of a backing file for
 * that content, and the per-queue interrupt counts of {@code /proc/interrupts}.
 */
final class NvmeGuestScripts {
    private NvmeGuestScripts() {
    }

    /** Blocks of 4 KiB of the known file: 64 MiB. */
    static final int PATTERN_BLOCKS = 16384;
    static final int BLOCK = 4096;
    /** The first bytes of each block of the known file (then an 8-digit block number). */
    static final String PATTERN_PREFIX = "vfu-nvme-test block ";

    /**
     * Shell functions of every NVMe script: {@code nvme_wait_disk NAME} waits for a block device to appear (the nvme
     * driver probes asynchronously); {@code nvme_pattern BLOCKS [FIRST]} prints the known content: block {@code i} is
     * the 32-byte line {@code "vfu-nvme-test block %08d ..\n"} of its number, 128 times.
     */
    static final String FUNCTIONS = """
            nvme_wait_disk() {
              i=0
              while [ ! -e "/sys/block/$1" ] || [ ! -b "/dev/$1" ]; do
                i=$((i + 1)); [ $i -le 1200 ] || { echo "no $1"; return 1; }
                sleep 0.1
              done
            }
            nvme_pattern() {
              awk -v n="$1" -v first="${2:-0}" 'BEGIN {
                for (i = first; i < first + n; i++) {
                  s = sprintf("vfu-nvme-test block %08d ..\\n", i)
                  for (k = 0; k < 7; k++) s = s s
                  printf "%s", s
                }
              }'
            }
            nvme_irqs() { grep -E ' nvme0q[0-9]+$' /proc/interrupts; }
            """;

    /**
     * One boot: loads the nvme driver, waits for {@code nvme0n1} and reports its size, the controller's identity
     * (sysfs and {@code nvme id-ctrl}) and the I/O queues' CPUs; then, pinned to each CPU in turn, writes 1 MiB of
     * the known content (256 direct 4 KiB writes) at the CPU's own offset and reads back the other CPU's MiB, with
     * the per-queue interrupt counts after each step.
     */
    static String identityAndQueues(String pciId) {
        return FUNCTIONS + """
                vfu_modprobe nvme || exit 1
                nvme_wait_disk nvme0n1 || exit 2
                vfu_capture lspci-k lspci -k -nn -d %s
                vfu_result size-sectors "$(cat /sys/block/nvme0n1/size)"
                vfu_result lba-size "$(cat /sys/block/nvme0n1/queue/logical_block_size)"
                vfu_result model "$(cat /sys/class/nvme/nvme0/model)"
                vfu_result serial "$(cat /sys/class/nvme/nvme0/serial)"
                vfu_result firmware "$(cat /sys/class/nvme/nvme0/firmware_rev)"
                vfu_capture id-ctrl nvme id-ctrl /dev/nvme0
                vfu_capture id-ns nvme id-ns /dev/nvme0n1
                vfu_capture queues sh -c \\
                  'for q in /sys/block/nvme0n1/mq/*; do echo "$(basename $q) $(cat $q/cpu_list)"; done'
                vfu_capture irq-start nvme_irqs
                nvme_pattern 256 0 >/tmp/cpu0.bin
                nvme_pattern 256 256 >/tmp/cpu1.bin
                for cpu in 0 1; do
                  taskset -c $cpu dd if=/tmp/cpu$cpu.bin of=/dev/nvme0n1 bs=4k count=256 seek=$((cpu * 256)) \\
                    oflag=direct 2>/dev/null || { echo "write on cpu $cpu failed"; exit 3; }
                  vfu_capture irq-write$cpu nvme_irqs
                done
                for cpu in 0 1; do
                  other=$((1 - cpu))
                  taskset -c $cpu dd if=/dev/nvme0n1 of=/tmp/back$other.bin bs=4k count=256 skip=$((other * 256)) \\
                    iflag=direct 2>/dev/null || { echo "read on cpu $cpu failed"; exit 4; }
                  vfu_capture irq-read$cpu nvme_irqs
                  cmp /tmp/cpu$other.bin /tmp/back$other.bin && vfu_result read$cpu-matches yes
                done
                """.formatted(pciId);
    }

    /**
     * Two boots of the same script, told apart by the ext4 magic on the disk. The first makes an ext4 file system,
     * writes the 64 MiB known file, syncs, reports its SHA-256 as written (from the page cache) and as read back
     * after dropping the caches, unmounts and reboots ({@code reboot -f}: the machine is reset, the device too). The
     * second mounts the file system again and reports the file's SHA-256.
     */
    static final String FILE_SYSTEM_ACROSS_REBOOT = FUNCTIONS + """
            vfu_modprobe nvme || exit 1
            vfu_modprobe ext4 || exit 1
            nvme_wait_disk nvme0n1 || exit 2
            magic=$(dd if=/dev/nvme0n1 bs=1 skip=1080 count=2 2>/dev/null | od -An -tx1 | tr -d ' \\n')
            if [ "$magic" = 53ef ]; then boot=2; else boot=1; fi
            vfu_result boot "$boot"
            if [ $boot = 1 ]; then
              vfu_capture mkfs mkfs.ext4 -F -q -b 4096 -L vfu-nvme /dev/nvme0n1 || exit 3
              mount -t ext4 /dev/nvme0n1 /mnt || exit 4
              nvme_pattern %1$d >/mnt/data || exit 5
              sync
              vfu_result sum-written "$(sha256sum </mnt/data | cut -d' ' -f1)"
              echo 3 >/proc/sys/vm/drop_caches
              vfu_result sum-read1 "$(sha256sum </mnt/data | cut -d' ' -f1)"
              umount /mnt || exit 6
              vfu_result rebooting yes
              reboot -f
              sleep 60
              echo 'reboot -f did not reboot'
              exit 7
            fi
            mount -t ext4 /dev/nvme0n1 /mnt || exit 8
            vfu_result size2 "$(stat -c %%s /mnt/data)"
            vfu_result sum-read2 "$(sha256sum </mnt/data | cut -d' ' -f1)"
            umount /mnt || exit 9
            """.formatted(PATTERN_BLOCKS);

    /**
     * A controller under benchmark: its label in the results, its PCI vendor and device ids (hex), and its serial
     * number when controllers of the same ids must be told apart (else null).
     */
    record Target(String label, String vendor, String device, String serial) {
        Target(String label, String vendor, String device) {
            this(label, vendor, device, null);
        }
    }

    /** The phases of one benchmark round on one target, in order: name and guest command ({@code $disk} is the
     * target's block device, {@code $mib} the MiB of a sequential pass, {@code $seconds} the length of a timed fio
     * run). */
    static final List<Map.Entry<String, String>> BENCH_PHASES = List.of(
            Map.entry("seqwrite", "dd if=/dev/zero of=/dev/$disk bs=1M count=$mib oflag=direct"),
            Map.entry("seqread", "dd if=/dev/$disk of=/dev/null bs=1M count=$mib iflag=direct"),
            Map.entry("randread-qd1", "fio --name=rr --filename=/dev/$disk --rw=randread --bs=4k --direct=1"
                    + " --ioengine=libaio --iodepth=1 --norandommap --runtime=$seconds --time_based --minimal"),
            Map.entry("randread-qd16", "fio --name=rr --filename=/dev/$disk --rw=randread --bs=4k --direct=1"
                    + " --ioengine=libaio --iodepth=16 --norandommap --runtime=$seconds --time_based --minimal"));

    /** The name of a phase's results: {@code LABEL-PHASE-ROUND}. */
    static String phaseName(Target t, String phase, int round) {
        return t.label() + "-" + phase + "-" + round;
    }

    /**
     * The benchmark: waits for every target's namespace, then for each round, each target in turn, runs the phases of
     * {@link #BENCH_PHASES}. For each phase it reports {@code phase start NAME} and {@code phase end NAME} (for the
     * host to sample CPU times in between), {@code NAME} as the guest's uptime before and after (10 ms resolution)
     * and, for fio, {@code NAME-fio} as fio's terse line (field 8 is the read IOPS).
     */
    static String benchmark(List<Target> targets, int rounds, int mib, int seconds) {
        StringBuilder script = new StringBuilder(FUNCTIONS).append("""
                vfu_modprobe nvme || exit 1
                nvme_disk_of() { # VENDOR DEVICE [SERIAL]
                  for c in /sys/class/nvme/nvme*; do
                    [ "$(cat "$c/device/vendor")" = "0x$1" ] && [ "$(cat "$c/device/device")" = "0x$2" ] \\
                      && { [ -z "$3" ] || [ "$(tr -d ' ' <"$c/serial")" = "$3" ]; } \\
                      && { echo "$(basename "$c")n1"; return 0; }
                  done
                  return 1
                }
                nvme_find() { # VENDOR DEVICE [SERIAL]: waits for the controller's first namespace, prints its name
                  i=0
                  until d=$(nvme_disk_of "$1" "$2" "$3") && [ -b "/dev/$d" ]; do
                    i=$((i + 1)); [ $i -le 1200 ] || { echo "no namespace of $1:$2" >&2; return 1; }
                    sleep 0.1
                  done
                  echo "$d"
                }
                bench() { # NAME COMMAND
                  vfu_result phase "start $1"
                  t0=$(cut -d' ' -f1 /proc/uptime)
                  out=$(eval "$2" 2>/tmp/bench.err) || { cat /tmp/bench.err; echo "$1 failed"; exit 3; }
                  t1=$(cut -d' ' -f1 /proc/uptime)
                  vfu_result phase "end $1"
                  vfu_result "$1" "$t0 $t1"
                  case "$2" in fio*) vfu_result "$1-fio" "$out" ;; esac
                }
                """);
        script.append("mib=").append(mib).append(" seconds=").append(seconds).append('\n');
        for (Target t : targets) {
            script.append("disk_").append(t.label()).append("=$(nvme_find ").append(t.vendor()).append(' ')
                    .append(t.device()).append(t.serial() == null ? "" : " " + t.serial()).append(") || exit 2\n");
            script.append("vfu_result disk-").append(t.label()).append(" \"$disk_").append(t.label())
                    .append("\"\n");
        }
        for (int round = 1; round <= rounds; round++) {
            for (Target t : targets) {
                script.append("disk=$disk_").append(t.label()).append('\n');
                for (Map.Entry<String, String> phase : BENCH_PHASES) {
                    script.append("bench ").append(phaseName(t, phase.getKey(), round)).append(" \"")
                            .append(phase.getValue().replace("\"", "\\\"")).append("\"\n");
                }
            }
        }
        return script.toString();
    }

    /** Block {@code i} of the known content. */
    static byte[] patternBlock(int i) {
        byte[] line = String.format("%s%08d ..\n", PATTERN_PREFIX, i).getBytes(StandardCharsets.US_ASCII);
        byte[] block = new byte[BLOCK];
        for (int at = 0; at < BLOCK; at += line.length) {
            System.arraycopy(line, 0, block, at, line.length);
        }
        return block;
    }

    /** The SHA-256 (hex) of the first {@code blocks} blocks of the known content. */
    static String patternSha256(int blocks) {
        try {
            MessageDigest sha = MessageDigest.getInstance("SHA-256");
            for (int i = 0; i < blocks; i++) {
                sha.update(patternBlock(i));
            }
            return HexFormat.of().formatHex(sha.digest());
        } catch (NoSuchAlgorithmException e) {
            throw new AssertionError(e);
        }
    }

    /**
     * Scans a disk image 4 KiB block by 4 KiB block for blocks of the known content: returns the block numbers found
     * whose whole block is exactly right, and fails on a block that starts like one but differs.
     */
    static BitSet patternBlocksIn(Path image) throws IOException {
        BitSet found = new BitSet();
        byte[] prefix = PATTERN_PREFIX.getBytes(StandardCharsets.US_ASCII);
        byte[] block = new byte[BLOCK];
        long offset = 0;
        try (InputStream in = Files.newInputStream(image)) {
            while (in.readNBytes(block, 0, BLOCK) == BLOCK) {
                if (Arrays.equals(block, 0, prefix.length, prefix, 0, prefix.length)) {
                    String digits = new String(block, prefix.length, 8, StandardCharsets.US_ASCII);
                    int n = digits.chars().allMatch(Character::isDigit) ? Integer.parseInt(digits) : -1;
                    if (n < 0 || !Arrays.equals(block, patternBlock(n))) {
                        throw new AssertionError("the block at offset " + offset + " of " + image
                                + " starts like block '" + digits + "' of the known content but differs");
                    }
                    found.set(n);
                }
                offset += BLOCK;
            }
        }
        return found;
    }

    /**
     * Interrupt counts (summed over the CPUs) by queue name ({@code nvme0q0} is the admin queue) from lines of
     * {@code /proc/interrupts}, e.g. {@code " 24:  1  513  PCI-MSIX-0000:01:00.0  1-edge  nvme0q1"}.
     */
    static Map<String, Long> interrupts(List<String> lines, int cpus) {
        Map<String, Long> counts = new LinkedHashMap<>();
        for (String line : lines) {
            String[] f = line.trim().split("\\s+");
            long sum = 0;
            for (int c = 1; c <= cpus; c++) {
                sum += Long.parseLong(f[c]);
            }
            counts.merge(f[f.length - 1], sum, Long::sum);
        }
        return counts;
    }
}
