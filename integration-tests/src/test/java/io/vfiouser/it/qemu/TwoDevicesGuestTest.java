package io.vfiouser.it.qemu;

import static org.assertj.core.api.Assertions.assertThat;

import io.vfiouser.examples.gpio.PciIdio16;
import io.vfiouser.examples.nulldev.NullDevice;
import io.vfiouser.examples.nulldev.NullDevice.Access;
import io.vfiouser.examples.nulldev.NullDevice.Kind;
import io.vfiouser.server.VfioUserServer;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/** Two devices of one server in one guest: the gpio card (with its driver) and the null device, used in turn. */
@Tag("qemu")
class TwoDevicesGuestTest {

    static final String SCRIPT = """
            vfu_capture lspci lspci -nn
            gpio=$(vfu_pci_dev 494f 0dc8)
            null=$(vfu_pci_dev 4a56 0001)
            vfu_result gpio-dev "$gpio"
            vfu_result null-dev "$null"
            vfu_modprobe gpio-pci-idio-16 || exit 1
            vfu_capture lspci-k lspci -k -d 494f:0dc8
            chip=$(basename "$(ls -d "$gpio"/gpiochip* | head -n 1)")
            echo 1 >"$null/enable"
            b0=$(vfu_bar_start "$null" 0)
            devmem "$b0" 32 0x0badcafe
            gpioset -t0 -c "$chip" 3=1 12=1
            vfu_capture gpioget gpioget -c "$chip" --numeric 19 28 20
            vfu_result scratch "$(devmem "$b0" 32)"
            """;

    @Test
    void bothDevicesWorkSideBySide() throws Exception {
        QemuGuest guest = QemuGuest.create("two-devices");
        NullDevice nullDevice = new NullDevice();
        try (VfioUserServer server = VfioUserServer.builder().build()) {
            server.serve(PciIdio16.description("gpio"), new PciIdio16(), guest.socket("gpio"));
            server.serve(NullDevice.description("null"), nullDevice, guest.socket("null"));
            guest.device(guest.socket("gpio")).device(guest.socket("null"));
            QemuGuest.Run run = guest.run(SCRIPT);
            String why = run.describe();

            assertThat(run.finished()).as("test script ran to its end" + why).isTrue();
            assertThat(run.exitCode()).as(why).isZero();
            assertThat(run.lines("lspci")).as(why).anyMatch(l -> l.contains("[494f:0dc8]"))
                    .anyMatch(l -> l.contains("[4a56:0001]"));
            assertThat(run.lines("lspci-k")).as(why).contains("\tKernel driver in use: pci-idio-16");
            assertThat(run.lines("gpioget")).as(why).containsExactly("1 1 0");
            assertThat(run.result("scratch")).as(why).isEqualToIgnoringCase("0x0BADCAFE");
            assertThat(nullDevice.accesses()).as(why)
                    .extracting(a -> new Access(0, a.kind(), a.offset(), a.size(), a.value()))
                    .containsExactly(new Access(0, Kind.WRITE, NullDevice.SCRATCH, 4, 0x0badcafeL),
                            new Access(0, Kind.READ, NullDevice.SCRATCH, 4, 0x0badcafeL));
            assertThat(run.kernelProblems()).as(why).isEmpty();
        }
    }
}
