package io.vfiouser.it.qemu;

import static org.assertj.core.api.Assertions.assertThat;

import io.vfiouser.examples.gpio.PciIdio16;
import io.vfiouser.server.VfioUserServer;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The PCI-IDIO-16 example under a real QEMU, driven by the guest kernel's own {@code gpio_pci_idio_16} driver and
 * the gpiod tools: enumeration, driver binding, the 32 lines, the output-to-input loopback, and an input edge seen
 * by {@code gpiomon} (INTx from the server through QEMU to the guest driver's interrupt handler).
 */
@Tag("qemu")
class GpioGuestTest {

    /** Outputs pattern written first (bit n = output n), then its complement. */
    static final int PATTERN = 0xA5C3;

    /** The guest commands that set outputs 0-15 to {@code pattern} and read inputs 16-31 (numeric, one line). */
    static String loopback(String key, int pattern) {
        String set = IntStream.range(0, 16).mapToObj(i -> i + "=" + ((pattern >> i) & 1))
                .collect(Collectors.joining(" "));
        String inputs = IntStream.range(16, 32).mapToObj(Integer::toString).collect(Collectors.joining(" "));
        return "gpioset -t0 -c \"$chip\" " + set + " || echo 'gpioset failed'\n"
                + "vfu_capture " + key + " gpioget -c \"$chip\" --numeric " + inputs + "\n";
    }

    /** What gpioget --numeric prints for inputs 16-31 after outputs were set to {@code pattern}. */
    static String expected(int pattern) {
        return IntStream.range(0, 16).mapToObj(i -> Integer.toString((pattern >> i) & 1))
                .collect(Collectors.joining(" "));
    }

    static final String SCRIPT_PROBE = """
            vfu_capture lspci-nn lspci -nn -d 494f:0dc8
            dev=$(vfu_pci_dev 494f 0dc8)
            vfu_result sysfs "$dev"
            vfu_modprobe gpio-pci-idio-16 || { echo 'cannot load gpio-pci-idio-16'; exit 1; }
            vfu_capture lspci-k lspci -k -d 494f:0dc8
            vfu_capture gpiodetect gpiodetect
            chip=$(basename "$(ls -d "$dev"/gpiochip* | head -n 1)")
            vfu_result chip "$chip"
            vfu_capture gpioinfo gpioinfo -c "$chip"
            """;

    /**
     * Edge test. All 16 inputs are requested for edges at once (Linux 6.12's driver oopses in regmap_irq_thread when
     * the card interrupts while some inputs never had their interrupt requested); the monitor's banner says the
     * lines are requested, then output 5 goes high and input 21 must report a rising edge.
     *
     * <p>All inputs share one status bit, so the driver's regmap-irq chip dispatches the card's interrupt to every
     * requested line; with both edges requested, gpiolib tells rising from falling by reading each line's level.
     * One interrupt therefore yields one event per input (16): input 21 rising, the others falling.
     */
    static final String SCRIPT_EDGE = """
            gpioset -t0 -c "$chip" 0=0 1=0 2=0 3=0 4=0 5=0 6=0 7=0 8=0 9=0 10=0 11=0 12=0 13=0 14=0 15=0
            irq=$(cat "$dev/irq")
            vfu_result irq "$irq"
            vfu_result irqs-before "$(awk -v irq="$irq:" '$1 == irq {s = 0; for (i = 2; i <= 3; i++) s += $i; print s}' /proc/interrupts)"
            gpiomon --banner -c "$chip" -e both -n 16 --idle-timeout 60s -F 'EDGE %o %E' \\
                16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 >/tmp/mon.out 2>&1 &
            mon=$!
            i=0
            while ! grep -q -i monitoring /tmp/mon.out && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
            vfu_capture gpioinfo-mon gpioinfo -c "$chip"
            gpioset -t0 -c "$chip" 5=1
            wait $mon
            vfu_result gpiomon.rc $?
            vfu_capture gpiomon cat /tmp/mon.out
            vfu_capture interrupts grep -E "^ *$irq:" /proc/interrupts
            vfu_result irqs-after "$(awk -v irq="$irq:" '$1 == irq {s = 0; for (i = 2; i <= 3; i++) s += $i; print s}' /proc/interrupts)"
            """;

    @Test
    void theGuestDriverUsesTheCard() throws Exception {
        QemuGuest guest = QemuGuest.create("gpio");
        try (VfioUserServer server = VfioUserServer.builder().build()) {
            server.serve(PciIdio16.description("gpio"), new PciIdio16(), guest.socket("gpio"));
            guest.device(guest.socket("gpio"));
            QemuGuest.Run run = guest.run(SCRIPT_PROBE
                    + loopback("loop1", PATTERN) + loopback("loop2", ~PATTERN & 0xffff) + SCRIPT_EDGE);
            String why = run.describe();

            assertThat(run.finished()).as("test script ran to its end" + why).isTrue();
            assertThat(run.exitCode()).as(why).isZero();
            assertThat(run.lines("lspci-nn")).as(why).anyMatch(l -> l.contains("[494f:0dc8]"));
            assertThat(run.lines("lspci-k")).as(why).contains("\tKernel driver in use: pci-idio-16")
                    .contains("\tKernel modules: gpio_pci_idio_16");
            assertThat(run.lines("gpiodetect")).as(why)
                    .anyMatch(l -> l.startsWith(run.result("chip") + " ") && l.endsWith("(32 lines)"));
            assertThat(run.lines("gpioinfo")).as(why).hasSize(33);

            assertThat(run.result("loop1.rc")).as(why).isEqualTo("0");
            assertThat(run.lines("loop1")).as(why).containsExactly(expected(PATTERN));
            assertThat(run.lines("loop2")).as(why).containsExactly(expected(~PATTERN & 0xffff));

            assertThat(run.result("gpiomon.rc")).as(why).isEqualTo("0");
            assertThat(run.lines("gpiomon")).as(why).contains("EDGE 21 rising")
                    .filteredOn(l -> l.startsWith("EDGE ")).hasSize(16)
                    .filteredOn(l -> l.endsWith(" rising")).containsExactly("EDGE 21 rising");
            int before = Integer.parseInt(run.result("irqs-before").trim());
            int after = Integer.parseInt(run.result("irqs-after").trim());
            assertThat(after).as("INTx interrupts handled by the guest" + why).isGreaterThan(before);
            assertThat(run.kernelProblems()).as(why).isEmpty();
        }
    }
}
