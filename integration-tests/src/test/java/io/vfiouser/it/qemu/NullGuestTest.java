package io.vfiouser.it.qemu;

import static org.assertj.core.api.Assertions.assertThat;

import io.vfiouser.examples.nulldev.NullDevice;
import io.vfiouser.examples.nulldev.NullDevice.Access;
import io.vfiouser.examples.nulldev.NullDevice.Kind;
import io.vfiouser.server.VfioUserServer;
import java.util.List;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The null example device under a real QEMU: what the guest's PCI core sees of it ({@code lspci -vvv}: BAR sizes,
 * MSI-X, PCI Express), and BAR accesses from the guest through {@code /dev/mem} (busybox {@code devmem}) that the
 * server must see exactly; with QEMU's posted writes (the default) and with {@code x-no-posted-writes=on}.
 */
@Tag("qemu")
class NullGuestTest {

    /**
     * BAR0: a 32-bit write and read of SCRATCH, a 64-bit write and read of DMA_SRC, a read of ACCESS_COUNT (which
     * counts itself). BAR2: a word in the mmappable upper half and one in the lower half (served through region
     * accesses), each written and read back. No driver binds the device; enabling it through sysfs turns on memory
     * decoding.
     */
    static final String SCRIPT = """
            vfu_capture lspci lspci -vvv -nn -d 4a56:0001
            dev=$(vfu_pci_dev 4a56 0001)
            vfu_result sysfs "$dev"
            echo 1 >"$dev/enable"
            b0=$(vfu_bar_start "$dev" 0)
            b2=$(vfu_bar_start "$dev" 2)
            vfu_result bar0 "$b0"
            vfu_result bar2 "$b2"
            vfu_capture resource cat "$dev/resource"
            devmem "$b0" 32 0x12345678
            vfu_result scratch32 "$(devmem "$b0" 32)"
            devmem $((b0 + 0x10)) 64 0x1122334455667788
            vfu_result src64 "$(devmem $((b0 + 0x10)) 64)"
            vfu_result count "$(devmem $((b0 + 0x38)) 32)"
            devmem $((b2 + 0x80000)) 32 0xcafef00d
            vfu_result bar2-high "$(devmem $((b2 + 0x80000)) 32)"
            devmem $((b2 + 0x100)) 32 0xdeadbeef
            vfu_result bar2-low "$(devmem $((b2 + 0x100)) 32)"
            """;

    @ParameterizedTest(name = "x-no-posted-writes={0}")
    @ValueSource(booleans = {false, true})
    void theGuestSeesTheDeviceAndTheServerSeesTheGuestsAccesses(boolean noPostedWrites) throws Exception {
        QemuGuest guest = QemuGuest.create(noPostedWrites ? "null-nonposted" : "null-posted");
        NullDevice device = new NullDevice();
        try (VfioUserServer server = VfioUserServer.builder().build()) {
            server.serve(NullDevice.description("null"), device, guest.socket("null"));
            guest.device(guest.socket("null"), "\"x-no-posted-writes\":" + noPostedWrites);
            QemuGuest.Run run = guest.run(SCRIPT);
            String why = run.describe();

            assertThat(run.finished()).as("test script ran to its end" + why).isTrue();
            assertThat(run.exitCode()).as(why).isZero();
            List<String> lspci = run.lines("lspci");
            assertThat(lspci).as(why).anyMatch(l -> l.contains("[4a56:0001]"))
                    .anyMatch(l -> l.matches("\\s*Region 0: Memory at \\p{XDigit}+ \\(32-bit, non-prefetchable\\)"
                            + " \\[size=4K\\].*"))
                    .anyMatch(l -> l.matches("\\s*Region 2: Memory at \\p{XDigit}+ \\(64-bit, .*\\) \\[size=1M\\].*"))
                    .anyMatch(l -> l.matches("\\s*Region 4: Memory at \\p{XDigit}+ \\(32-bit, .*\\) \\[size=4K\\].*"))
                    .anyMatch(l -> l.matches("\\s*Capabilities: \\[\\p{XDigit}+\\] MSI-X: Enable- Count=4 .*"))
                    .anyMatch(l -> l.matches("\\s*Vector table: BAR=4 offset=00000000"))
                    .anyMatch(l -> l.matches("\\s*PBA: BAR=4 offset=00000800"))
                    .anyMatch(l -> l.matches("\\s*Capabilities: \\[\\p{XDigit}+\\] Express \\(v2\\) Endpoint.*"))
                    .anyMatch(l -> l.matches("\\s*Capabilities: \\[\\p{XDigit}+\\] Power Management.*"));

            assertThat(run.result("scratch32")).as(why).isEqualToIgnoringCase("0x12345678");
            assertThat(run.result("src64")).as(why).isEqualToIgnoringCase("0x1122334455667788");
            assertThat(run.result("count")).as(why).isEqualToIgnoringCase("0x00000005");
            assertThat(run.result("bar2-high")).as(why).isEqualToIgnoringCase("0xCAFEF00D");
            assertThat(run.result("bar2-low")).as(why).isEqualToIgnoringCase("0xDEADBEEF");

            assertThat(device.accesses()).as("BAR0 accesses the server saw" + why)
                    .extracting(a -> new Access(0, a.kind(), a.offset(), a.size(), a.value()))
                    .containsExactly(
                            new Access(0, Kind.WRITE, NullDevice.SCRATCH, 4, 0x12345678L),
                            new Access(0, Kind.READ, NullDevice.SCRATCH, 4, 0x12345678L),
                            new Access(0, Kind.WRITE, NullDevice.DMA_SRC, 8, 0x1122334455667788L),
                            new Access(0, Kind.READ, NullDevice.DMA_SRC, 8, 0x1122334455667788L),
                            new Access(0, Kind.READ, NullDevice.ACCESS_COUNT, 4, 5L));
            assertThat(run.kernelProblems()).as(why).isEmpty();
        }
    }
}
