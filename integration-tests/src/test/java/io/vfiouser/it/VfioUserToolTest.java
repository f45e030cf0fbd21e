package io.vfiouser.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.netty.buffer.ByteBuf;
import io.vfiouser.client.VfioUserClient;
import io.vfiouser.client.tool.VfioUserTool;
import io.vfiouser.codec.VfioUserCommand;
import io.vfiouser.codec.VfioUserMessage;
import io.vfiouser.codec.payload.RegionAccess;
import io.vfiouser.examples.gpio.PciIdio16;
import io.vfiouser.examples.nulldev.NullDevice;
import io.vfiouser.examples.nvme.NvmeDevice;
import io.vfiouser.examples.nvme.NvmeOptions;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * The command-line tool ({@code inspect}, {@code config}, {@code read}, {@code write}) against the example devices
 * served in-process, through their sockets: what it prints is what the devices describe, what it writes a normal
 * client reads back, and a refusal, a device held by another client and a bad command line end with their exit
 * statuses.
 */
class VfioUserToolTest {

    /** One run of the tool: exit status, stdout, stderr. */
    record Run(int status, String out, String err) {
    }

    static Run tool(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int status = VfioUserTool.run(args, new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        return new Run(status, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    @Test
    void inspectNullDevice() throws Exception {
        try (ServerFixture f = new ServerFixture()) {
            Run run = tool("inspect", f.socket().toString());
            assertThat(run.status()).as(run.err()).isZero();
            assertThat(run.out())
                    .contains("Protocol: version 0.")
                    .contains("max_dma_maps 1024")
                    .contains("write_multiple no, twin_socket no, migration dirty bitmap no")
                    .contains("Device: flags 0x3 (PCI reset), 9 regions, 5 interrupt types")
                    .contains("4a56:0001 Unassigned class [ff00] (prog-if 00) (rev 00)")
                    .contains("\t0 BAR0: 4 KiB (0x1000), 32-bit memory, non-prefetchable, read write\n")
                    .contains("\t2 BAR2: 1 MiB (0x100000), 64-bit memory, non-prefetchable, read write mmap, file at "
                            + "offset 0x0")
                    .contains("\t3 BAR3: upper half of BAR2")
                    .contains("\t\tsparse mmap: [0x80000, 0x100000)")
                    .contains("\t1 BAR1: none")
                    .contains("\t7 config: 4 KiB (0x1000), read write")
                    .contains("\tMSI-X: 4 (eventfd maskable)")
                    .contains("\tINTx: 0\n")
                    .contains("\tREQ: 1 (eventfd)")
                    .contains("Interrupt: no pin")
                    .contains("Migration: VFIO migration v2: STOP_COPY PRE_COPY, dirty-page logging yes")
                    .contains("\tMSI: 0\n")
                    .contains("Power Management version 3")
                    .contains("[48] MSI-X: Enable- Masked-, 4 vectors, table BAR4+0x0, PBA BAR4+0x800")
                    .contains("[40] Power Management version 3, state D0")
                    .contains("[54] Express v2 Endpoint, MaxPayload 128 bytes (supported 128), FLReset+");
            f.awaitNoClient();
        }
    }

    @Test
    void inspectGpioAndNvme() throws Exception {
        try (ServerFixture f = new ServerFixture(PciIdio16.description("gpio"), new PciIdio16())) {
            Run run = tool("inspect", f.socket().toString());
            assertThat(run.status()).as(run.err()).isZero();
            assertThat(run.out()).contains(String.format("%04x:%04x", PciIdio16.VENDOR_ID, PciIdio16.DEVICE_ID))
                    .contains("Interrupt: pin A")
                    .contains("Migration: no (DEVICE_FEATURE MIGRATION: EINVAL)");
            f.awaitNoClient();
        }
        Path dir = Files.createTempDirectory("tool-nvme");
        Path backing = dir.resolve("ns.img");
        try (ServerFixture f = new ServerFixture(NvmeDevice.description("nvme"),
                new NvmeDevice("nvme", new NvmeOptions(backing, 1 << 20)))) {
            Run run = tool("inspect", f.socket().toString());
            assertThat(run.status()).as(run.err()).isZero();
            assertThat(run.out()).contains("Non-Volatile memory controller [0108] (prog-if 02)")
                    .contains("MSI-X: Enable-");
            f.awaitNoClient();
        } finally {
            Files.deleteIfExists(backing);
            Files.deleteIfExists(dir);
        }
    }

    @Test
    void writeThenReadAtEveryWidth() throws Exception {
        try (ServerFixture f = new ServerFixture()) {
            String socket = f.socket().toString();
            // BAR2 is memory-backed: it keeps what was written across the reset that follows each run.
            assertThat(tool("write", socket, "bar2", "0x100", "0x1122334455667788", "--width", "8").status())
                    .isZero();
            assertThat(tool("read", socket, "2", "0x100", "--width=8").out()).isEqualTo("0x1122334455667788\n");
            assertThat(tool("read", socket, "bar2", "256").out()).isEqualTo("0x55667788\n");
            assertThat(tool("read", socket, "bar2", "0x106", "--width", "2").out()).isEqualTo("0x1122\n");
            assertThat(tool("read", socket, "bar2", "0x101", "--width", "1").out()).isEqualTo("0x77\n");
            assertThat(tool("read", socket, "config", "0", "--width", "2").out()).isEqualTo("0x4a56\n");
            f.awaitNoClient();

            VfioUserClient client = f.client();
            VfioUserMessage reply = client.call(VfioUserCommand.REGION_READ,
                    RegionAccess.inRegion(NullDevice.MEMORY_BAR).atOffset(0x100).count(8)).get(10, TimeUnit.SECONDS);
            try {
                ByteBuf data = reply.payload(RegionAccess.class).data();
                assertThat(data.getLongLE(data.readerIndex())).isEqualTo(0x1122334455667788L);
            } finally {
                reply.release();
            }
        }
    }

    @Test
    void configDumpsTheWholeSpace() throws Exception {
        try (ServerFixture f = new ServerFixture()) {
            Run run = tool("config", f.socket().toString());
            assertThat(run.status()).as(run.err()).isZero();
            String[] lines = run.out().split("\n");
            assertThat(lines).hasSize(4096 / 16);
            assertThat(lines[0]).startsWith("000: 56 4a 01 00");
            assertThat(lines[255]).startsWith("ff0: ");
            f.awaitNoClient();
        }
    }

    @Test
    void refusalsAndUsage() throws Exception {
        try (ServerFixture f = new ServerFixture()) {
            String socket = f.socket().toString();
            Run outside = tool("read", socket, "bar0", "0x1000");
            assertThat(outside.status()).isEqualTo(1);
            assertThat(outside.err()).contains("refused REGION_READ: EINVAL");
            f.awaitNoClient();

            assertThat(tool("read", socket, "bar0").status()).isEqualTo(2);
            assertThat(tool("write", socket, "bar0", "0", "0x100", "--width", "1").err())
                    .contains("does not fit in 1 byte");
            assertThat(tool("read", socket, "bar0", "0", "--width", "3").status()).isEqualTo(2);
            assertThat(tool("frobnicate", socket).status()).isEqualTo(2);
            assertThat(tool("inspect", f.socket().resolveSibling("nothing.sock").toString()).status()).isEqualTo(1);
        }
    }

    @Test
    void waitsNoLongerThanItsTimeoutForADeviceAnotherClientHolds() throws Exception {
        try (ServerFixture f = new ServerFixture()) {
            VfioUserClient holder = f.client();
            Run run = tool("inspect", f.socket().toString(), "--timeout", "300ms");
            assertThat(run.status()).isEqualTo(1);
            assertThat(run.err()).contains("no answer within 300 ms");
            assertThat(holder.isOpen()).isTrue();
        }
    }
}
