package io.vfiouser.it.qemu;

import static org.assertj.core.api.Assertions.assertThat;

import io.vfiouser.examples.gpio.PciIdio16;
import io.vfiouser.examples.nulldev.NullDevice;
import io.vfiouser.examples.nulldev.NullDevice.Access;
import io.vfiouser.examples.nulldev.NullDevice.Kind;
import io.vfiouser.server.HostedDevice;
import io.vfiouser.server.VfioUserServer;
import io.vfiouser.transport.testing.FdCount;
import java.nio.file.Files;
import java.time.Duration;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * Lifecycle of a served device under a real QEMU (issue 4, "Lifecycle"): a guest reboot (QEMU resets the machine and
 * our device, the guest boots again and uses it again), hot-unplug and re-plug through QMP (the client leaves, a new
 * client attaches to the same device), and QEMU killed with SIGKILL (the server stays up and serves the next QEMU).
 */
@Tag("qemu")
class LifecycleGuestTest {

    private static final Duration SERVER_NOTICES = Duration.ofSeconds(20);

    /**
     * Both boots run this script. It tells them apart by a flag word in the null device's BAR2 (its memory, which
     * a reset leaves alone, unlike the registers): the first boot sets it and reboots with {@code reboot -f}; the
     * second one ends normally (and the guest powers off). Each boot reports SCRATCH as it finds it and after
     * writing it.
     */
    static final String REBOOT_SCRIPT = """
            dev=$(vfu_pci_dev 4a56 0001)
            [ -n "$dev" ] || { echo 'no null device'; exit 1; }
            echo 1 >"$dev/enable"
            b0=$(vfu_bar_start "$dev" 0)
            b2=$(vfu_bar_start "$dev" 2)
            flag=$((b2 + 0x80040))
            if [ "$(devmem $flag 32)" = 0x600DB007 ]; then boot=2; else boot=1; fi
            vfu_result boot "$boot"
            vfu_result boot$boot-scratch-at-start "$(devmem "$b0" 32)"
            devmem "$b0" 32 0x1000000$boot
            vfu_result boot$boot-scratch "$(devmem "$b0" 32)"
            if [ $boot = 1 ]; then
              devmem $flag 32 0x600DB007
              vfu_result rebooting yes
              reboot -f
              sleep 60
              echo 'reboot -f did not reboot'
              exit 3
            fi
            """;

    @Test
    void theDeviceWorksAgainAfterAGuestReboot() throws Exception {
        QemuGuest guest = QemuGuest.create("reboot").reboots();
        NullDevice device = new NullDevice();
        try (VfioUserServer server = VfioUserServer.builder().build()) {
            server.serve(NullDevice.description("null"), device, guest.socket("null"));
            guest.device(guest.socket("null"));
            QemuGuest.Run run = guest.run(REBOOT_SCRIPT);
            String why = run.describe();

            assertThat(run.finished()).as("test script ran to its end" + why).isTrue();
            assertThat(run.exitCode()).as(why).isZero();
            String marks = Files.readString(guest.dir().resolve("marks.log"));
            assertThat(marks.lines().filter(l -> l.startsWith("@@VFU-BEGIN "))).as("boots" + why).hasSize(2);
            assertThat(run.qemuExit()).as("QEMU ended by the second boot's power-off" + why).isZero();
            assertThat(run.result("boot")).as(why).isEqualTo("2");
            assertThat(run.result("boot1-scratch-at-start")).as(why).isEqualToIgnoringCase("0x00000000");
            assertThat(run.result("boot1-scratch")).as(why).isEqualToIgnoringCase("0x10000001");
            // The machine reset reached the server (VFIO_USER_DEVICE_RESET): the registers were cleared.
            assertThat(run.result("boot2-scratch-at-start")).as(why).isEqualToIgnoringCase("0x00000000");
            assertThat(run.result("boot2-scratch")).as(why).isEqualToIgnoringCase("0x10000002");
            assertThat(device.accesses()).as("BAR0 accesses the server saw" + why)
                    .extracting(a -> new Access(0, a.kind(), a.offset(), a.size(), a.value()))
                    .containsExactly(
                            new Access(0, Kind.READ, NullDevice.SCRATCH, 4, 0L),
                            new Access(0, Kind.WRITE, NullDevice.SCRATCH, 4, 0x10000001L),
                            new Access(0, Kind.READ, NullDevice.SCRATCH, 4, 0x10000001L),
                            new Access(0, Kind.READ, NullDevice.SCRATCH, 4, 0L),
                            new Access(0, Kind.WRITE, NullDevice.SCRATCH, 4, 0x10000002L),
                            new Access(0, Kind.READ, NullDevice.SCRATCH, 4, 0x10000002L));
            assertThat(run.kernelProblems()).as(why).isEmpty();
        }
    }

    /**
     * Binds the gpio card's driver and uses it, reports {@code phase plugged}, waits for the card to vanish from sysfs
     * (the host unplugs it), reports {@code phase unplugged}, waits for it to come back (the host plugs it again; a
     * rescan now and then in case the hotplug notification is missed) and for the driver to bind again, and uses it
     * again.
     *
     * <p>The gpio card, not the null device: unplugging the null device aborts QEMU 11.1.3 in its unrealize
     * ({@code memory_region_del_subregion: Assertion `subregion->container == mr' failed}), see the report of issue 4.
     */
    static final String HOTPLUG_SCRIPT = """
            dev=$(vfu_pci_dev 494f 0dc8)
            [ -n "$dev" ] || { echo 'no gpio card'; exit 1; }
            vfu_result dev1 "$dev"
            vfu_modprobe gpio-pci-idio-16 || exit 1
            chip=$(basename "$(ls -d "$dev"/gpiochip* | head -n 1)")
            gpioset -t0 -c "$chip" 3=1 12=1 4=0
            vfu_capture gpioget1 gpioget -c "$chip" --numeric 19 28 20
            vfu_result phase plugged
            i=0
            while [ -d "$dev" ]; do
              i=$((i + 1)); [ $i -le 1200 ] || { echo 'the card never went'; exit 2; }
              sleep 0.1
            done
            vfu_result phase unplugged
            i=0
            while [ -z "$(vfu_pci_dev 494f 0dc8 2>/dev/null)" ]; do
              i=$((i + 1)); [ $i -le 1200 ] || { echo 'the card never came back'; exit 3; }
              [ $((i % 50)) = 0 ] && echo 1 >/sys/bus/pci/rescan
              sleep 0.1
            done
            dev=$(vfu_pci_dev 494f 0dc8)
            vfu_result dev2 "$dev"
            i=0
            while ! ls -d "$dev"/gpiochip* >/dev/null 2>&1; do
              i=$((i + 1)); [ $i -le 600 ] || { echo 'the driver never bound again'; exit 4; }
              sleep 0.1
            done
            vfu_capture lspci-k lspci -k -d 494f:0dc8
            chip=$(basename "$(ls -d "$dev"/gpiochip* | head -n 1)")
            gpioset -t0 -c "$chip" 3=0 12=1 4=1
            vfu_capture gpioget2 gpioget -c "$chip" --numeric 19 28 20
            """;

    @Test
    void hotUnplugAndReplugThroughQmp() throws Exception {
        QemuGuest guest = QemuGuest.create("hotplug").withQmp();
        try (VfioUserServer server = VfioUserServer.builder().build()) {
            HostedDevice hosted = server.serve(PciIdio16.description("gpio"), new PciIdio16(), guest.socket("gpio"));
            guest.device(guest.socket("gpio"));
            Qmp.prepareJdkSockets();
            long fdsBefore = FdCount.now();
            QemuGuest.Run run;
            String qmpTranscript;
            try (QemuGuest.Booted booted = guest.start(HOTPLUG_SCRIPT)) {
                Qmp qmp = booted.qmp();
                booted.awaitMark("RESULT phase plugged");
                assertThat(hosted.hasClient()).as("QEMU attached").isTrue();

                qmp.execute("device_del", "{\"id\":\"vfu0\"}", booted.remaining());
                qmp.awaitEvent("DEVICE_DELETED", "\"device\"\\s*:\\s*\"vfu0\"", booted.remaining());
                Conditions.await(() -> !hosted.hasClient(), SERVER_NOTICES,
                        () -> "the server still has a client after DEVICE_DELETED");
                // Our own QMP connection is the one socket more than before QEMU started.
                FdCount.awaitAtMost(fdsBefore + 1);
                booted.awaitMark("RESULT phase unplugged");
                assertThat(hosted.closeFuture()).as("the device is still served").isNotDone();

                qmp.execute("device_add", guest.deviceJson(0), booted.remaining());
                run = booted.awaitExit();
                qmpTranscript = qmp.transcript();
            }
            String why = run.describe() + qmpTranscript;

            assertThat(run.finished()).as("test script ran to its end" + why).isTrue();
            assertThat(run.exitCode()).as(why).isZero();
            assertThat(run.lines("gpioget1")).as(why).containsExactly("1 1 0");
            assertThat(run.lines("lspci-k")).as(why).contains("\tKernel driver in use: pci-idio-16");
            assertThat(run.lines("gpioget2")).as(why).containsExactly("0 1 1");
            assertThat(run.kernelProblems()).as(why).isEmpty();
            Conditions.await(() -> !hosted.hasClient(), SERVER_NOTICES, () -> "client still attached after power-off");
            FdCount.awaitAtMost(fdsBefore);
        }
    }

    static final String USE_AND_WAIT_SCRIPT = """
            dev=$(vfu_pci_dev 4a56 0001)
            [ -n "$dev" ] || { echo 'no null device'; exit 1; }
            echo 1 >"$dev/enable"
            b0=$(vfu_bar_start "$dev" 0)
            devmem "$b0" 32 0x5A5A5A5A
            vfu_result scratch "$(devmem "$b0" 32)"
            vfu_result phase used
            sleep 600
            """;

    static final String USE_SCRIPT = """
            dev=$(vfu_pci_dev 4a56 0001)
            [ -n "$dev" ] || { echo 'no null device'; exit 1; }
            echo 1 >"$dev/enable"
            b0=$(vfu_bar_start "$dev" 0)
            devmem "$b0" 32 0x0C0FFEE0
            vfu_result scratch "$(devmem "$b0" 32)"
            """;

    @Test
    void theServerSurvivesQemuKilledWithSigkill() throws Exception {
        QemuGuest first = QemuGuest.create("sigkill");
        NullDevice device = new NullDevice();
        try (VfioUserServer server = VfioUserServer.builder().build()) {
            HostedDevice hosted = server.serve(NullDevice.description("null"), device, first.socket("null"));
            first.device(first.socket("null"));
            long fdsBefore = FdCount.now();
            try (QemuGuest.Booted booted = first.start(USE_AND_WAIT_SCRIPT)) {
                booted.awaitMark("RESULT phase used");
                assertThat(hosted.hasClient()).as("QEMU attached").isTrue();
                booted.kill();
                QemuGuest.Run killed = booted.result(false);
                assertThat(killed.result("scratch")).as(killed.describe()).isEqualToIgnoringCase("0x5A5A5A5A");
            }
            Conditions.await(() -> !hosted.hasClient(), SERVER_NOTICES,
                    () -> "the server still has a client after QEMU was killed");
            FdCount.awaitAtMost(fdsBefore);
            assertThat(hosted.closeFuture()).as("the device is still served").isNotDone();

            QemuGuest second = QemuGuest.create("sigkill-after");
            second.device(first.socket("null"));
            QemuGuest.Run run = second.run(USE_SCRIPT);
            String why = run.describe();
            assertThat(run.finished()).as("test script ran to its end" + why).isTrue();
            assertThat(run.exitCode()).as(why).isZero();
            assertThat(run.result("scratch")).as(why).isEqualToIgnoringCase("0x0C0FFEE0");
            assertThat(run.kernelProblems()).as(why).isEmpty();
            assertThat(device.accesses()).as(why)
                    .extracting(a -> new Access(0, a.kind(), a.offset(), a.size(), a.value()))
                    .endsWith(new Access(0, Kind.WRITE, NullDevice.SCRATCH, 4, 0x0C0FFEE0L),
                            new Access(0, Kind.READ, NullDevice.SCRATCH, 4, 0x0C0FFEE0L));
            Conditions.await(() -> !hosted.hasClient(), SERVER_NOTICES, () -> "client still attached after power-off");
            FdCount.awaitAtMost(fdsBefore);
        }
    }
}
