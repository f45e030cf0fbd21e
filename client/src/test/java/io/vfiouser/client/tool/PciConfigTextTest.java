package io.vfiouser.client.tool;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

/** The configuration-space decoder on hand-made spaces: BAR kinds, both capability lists, hostile pointers. */
class PciConfigTextTest {

    private static void put16(byte[] b, int at, int v) {
        b[at] = (byte) v;
        b[at + 1] = (byte) (v >> 8);
    }

    private static void put32(byte[] b, int at, long v) {
        put16(b, at, (int) v & 0xffff);
        put16(b, at + 2, (int) (v >>> 16) & 0xffff);
    }

    @Test
    void barsOfEveryKind() {
        byte[] c = new byte[256];
        put32(c, 0x10, 0xfe000000L);                 // BAR0 32-bit memory
        put32(c, 0x14, 0xc000000cL);                 // BAR1 64-bit prefetchable, upper half in BAR2
        put32(c, 0x18, 0x1);
        put32(c, 0x1c, 0xc001);                      // BAR3 I/O
        PciConfigText pci = new PciConfigText(c);
        assertThat(pci.barKind(0)).isEqualTo("32-bit memory, non-prefetchable at 0xfe000000");
        assertThat(pci.barKind(1)).isEqualTo("64-bit memory, prefetchable at 0x1c0000000");
        assertThat(pci.barKind(2)).isEqualTo("upper half of BAR1");
        assertThat(pci.barKind(3)).isEqualTo("I/O ports at 0xc000");
        assertThat(pci.barKind(4)).isEqualTo("32-bit memory, non-prefetchable");
    }

    @Test
    void capabilityListsAreDecodedAndLoopsEnd() {
        byte[] c = new byte[4096];
        put16(c, 0x00, 0x1b36);
        put16(c, 0x02, 0x0010);
        c[0x0b] = 0x01;
        c[0x0a] = 0x08;
        c[0x09] = 0x02;
        put16(c, 0x06, 0x10);                        // capability list present
        c[0x34] = 0x40;
        c[0x40] = 0x05;                              // MSI, 64-bit, 4 of 8 vectors enabled, enabled
        c[0x41] = 0x50;
        put16(c, 0x42, 0x80 | (3 << 1) | (2 << 4) | 1);
        c[0x50] = 0x11;                              // MSI-X pointing back at MSI: a loop
        c[0x51] = 0x40;
        put16(c, 0x52, 0x8000 | 15);
        put32(c, 0x54, 0x2000 | 4);
        put32(c, 0x58, 0x3000 | 4);
        put32(c, 0x100, 0x003L | 1L << 16 | 0x140L << 20);  // DSN, then a vendor-specific one
        put32(c, 0x104, 0x0706050403020100L & 0xffffffffL);
        put32(c, 0x108, 0x07060504L);
        put32(c, 0x140, 0x00bL | 1L << 16 | 0x140L << 20); // pointing at itself
        put32(c, 0x144, 0x1234 | 2L << 16 | 24L << 20);
        PciConfigText pci = new PciConfigText(c);
        assertThat(pci.identityLine()).isEqualTo(
                "1b36:0010 Non-Volatile memory controller [0108] (prog-if 02) (rev 00)");
        assertThat(pci.capabilityLines()).containsExactly(
                "[40] MSI: Enable+ 4/8 vectors, 64-bit",
                "[50] MSI-X: Enable+ Masked-, 16 vectors, table BAR4+0x2000, PBA BAR4+0x3000",
                "[100 v1] Device Serial Number 07-06-05-04-03-02-01-00",
                "[140 v1] Vendor Specific: id 0x1234 rev 2, 24 bytes");
    }

    @Test
    void aShortSpaceReadsAsZeros() {
        PciConfigText pci = new PciConfigText(new byte[8]);
        assertThat(pci.headerLines()).contains("Interrupt: no pin", "Subsystem: 0000:0000");
        assertThat(pci.capabilityLines()).isEmpty();
    }
}
