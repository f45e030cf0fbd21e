package io.vfiouser.server.pci;

/**
 * Offsets and bits of the PCI configuration space registers the framework emulates: the type 0 header
 * (absolute offsets) and the capabilities (offsets relative to the capability's first byte).
 *
 * <pre>
 * Type 0 header (little-endian)
 *   0x00 Vendor ID (2)          0x02 Device ID (2)
 *   0x04 Command (2)            0x06 Status (2)
 *   0x08 Revision ID (1)        0x09 Class Code (3): prog-if, sub-class, base class
 *   0x0C Cache Line Size (1)    0x0D Latency Timer (1)   0x0E Header Type (1)   0x0F BIST (1)
 *   0x10..0x27 BAR0..BAR5 (4 each)
 *   0x28 CardBus CIS Pointer (4)
 *   0x2C Subsystem Vendor ID (2) 0x2E Subsystem ID (2)
 *   0x30 Expansion ROM Base Address (4)
 *   0x34 Capabilities Pointer (1)  0x35..0x3B reserved
 *   0x3C Interrupt Line (1)     0x3D Interrupt Pin (1)   0x3E Min_Gnt (1)   0x3F Max_Lat (1)
 * </pre>
 */
public final class PciRegisters {
    // ------------------------------------------------------------------------------------ type 0 header
    public static final int VENDOR_ID = 0x00;
    public static final int DEVICE_ID = 0x02;
    public static final int COMMAND = 0x04;
    public static final int STATUS = 0x06;
    public static final int REVISION_ID = 0x08;
    public static final int CLASS_CODE = 0x09;
    public static final int CACHE_LINE_SIZE = 0x0C;
    public static final int LATENCY_TIMER = 0x0D;
    public static final int HEADER_TYPE = 0x0E;
    public static final int BIST = 0x0F;
    public static final int BAR0 = 0x10;
    public static final int BAR_COUNT = 6;
    public static final int CARDBUS_CIS = 0x28;
    public static final int SUBSYSTEM_VENDOR_ID = 0x2C;
    public static final int SUBSYSTEM_ID = 0x2E;
    public static final int ROM_ADDRESS = 0x30;
    public static final int CAPABILITIES_POINTER = 0x34;
    public static final int INTERRUPT_LINE = 0x3C;
    public static final int INTERRUPT_PIN = 0x3D;
    public static final int MIN_GNT = 0x3E;
    public static final int MAX_LAT = 0x3F;
    /** The size of the type 0 header, and where the first standard capability goes. */
    public static final int HEADER_SIZE = 0x40;
    /** Where the extended capabilities of a 4096-byte configuration space start. */
    public static final int EXTENDED_START = 0x100;
    /** The size of a conventional configuration space. */
    public static final int CONVENTIONAL_SIZE = 0x100;
    /** The size of a PCI Express configuration space. */
    public static final int EXPRESS_SIZE = 0x1000;

    // -------------------------------------------------------------------------------------- Command bits
    public static final int COMMAND_IO = 0x0001;
    public static final int COMMAND_MEMORY = 0x0002;
    public static final int COMMAND_MASTER = 0x0004;
    public static final int COMMAND_SPECIAL = 0x0008;
    public static final int COMMAND_MWI = 0x0010;
    public static final int COMMAND_VGA_SNOOP = 0x0020;
    public static final int COMMAND_PARITY = 0x0040;
    public static final int COMMAND_SERR = 0x0100;
    public static final int COMMAND_FAST_BACK = 0x0200;
    public static final int COMMAND_INTX_DISABLE = 0x0400;
    /** The Command bits a write may change; writes to the others are ignored. */
    public static final int COMMAND_WRITABLE = COMMAND_IO | COMMAND_MEMORY | COMMAND_MASTER | COMMAND_MWI
            | COMMAND_VGA_SNOOP | COMMAND_PARITY | COMMAND_SERR | COMMAND_INTX_DISABLE;

    // --------------------------------------------------------------------------------------- Status bits
    public static final int STATUS_INTERRUPT = 0x0008;
    public static final int STATUS_CAPABILITIES = 0x0010;
    public static final int STATUS_MASTER_PARITY_ERROR = 0x0100;
    public static final int STATUS_SIGNALED_TARGET_ABORT = 0x0800;
    public static final int STATUS_RECEIVED_TARGET_ABORT = 0x1000;
    public static final int STATUS_RECEIVED_MASTER_ABORT = 0x2000;
    public static final int STATUS_SIGNALED_SYSTEM_ERROR = 0x4000;
    public static final int STATUS_DETECTED_PARITY_ERROR = 0x8000;
    /** The error bits of Status: set by the function, cleared by writing 1 (RW1C). */
    public static final int STATUS_ERRORS = STATUS_MASTER_PARITY_ERROR | STATUS_SIGNALED_TARGET_ABORT
            | STATUS_RECEIVED_TARGET_ABORT | STATUS_RECEIVED_MASTER_ABORT | STATUS_SIGNALED_SYSTEM_ERROR
            | STATUS_DETECTED_PARITY_ERROR;

    // ------------------------------------------------------------------------------------ BAR / ROM bits
    /** BAR bit 0: an I/O-space BAR. */
    public static final int BAR_IO = 0x1;
    /** Memory BAR bits 2:1 = 10b: a 64-bit BAR whose upper dword is the next BAR register. */
    public static final int BAR_MEMORY_64 = 0x4;
    /** Memory BAR bit 3: prefetchable. */
    public static final int BAR_PREFETCHABLE = 0x8;
    /** Expansion ROM bit 0: decoding enabled. */
    public static final int ROM_ENABLE = 0x1;
    /** The address bits of the Expansion ROM register (a ROM is at least 2 KiB). */
    public static final int ROM_ADDRESS_MASK = 0xFFFF_F800;
    /** The smallest expansion ROM the ROM register can describe. */
    public static final int ROM_MIN_SIZE = 0x800;

    // ------------------------------------------------------------------------------- Power Management
    /** PM: Power Management Capabilities (PMC, 2 bytes, read-only). */
    public static final int PM_PMC = 2;
    /** PM: Power Management Control/Status (PMCSR, 2 bytes). */
    public static final int PM_PMCSR = 4;
    /** PM: PMCSR bridge support extensions (1 byte, read-only 0). */
    public static final int PM_BSE = 6;
    /** PM: Data (1 byte, read-only 0). */
    public static final int PM_DATA = 7;
    public static final int PM_SIZE = 8;
    public static final int PMC_D1 = 0x0200;
    public static final int PMC_D2 = 0x0400;
    /** PMC bits 15:11: the states from which the function can assert PME#. */
    public static final int PMC_PME_SUPPORT = 0xF800;
    /** PMCSR bits 1:0: the power state, D0 (0) to D3hot (3). */
    public static final int PMCSR_POWER_STATE = 0x0003;
    /** PMCSR bit 3: the function keeps its state when going from D3hot to D0. */
    public static final int PMCSR_NO_SOFT_RESET = 0x0008;
    public static final int PMCSR_PME_ENABLE = 0x0100;

    // ------------------------------------------------------------------------------------------------ MSI
    /** MSI: Message Control (2 bytes). */
    public static final int MSI_CONTROL = 2;
    /** MSI: Message Address, low dword (bits 1:0 read 0). */
    public static final int MSI_ADDRESS_LO = 4;
    /** MSI: Message Upper Address. */
    public static final int MSI_ADDRESS_HI = 8;
    /** MSI: Message Data (2 bytes; 2 reserved bytes follow). */
    public static final int MSI_DATA = 12;
    /** MSI: Mask Bits (one per vector). */
    public static final int MSI_MASK = 16;
    /** MSI: Pending Bits (one per vector, read-only). */
    public static final int MSI_PENDING = 20;
    /** The size of the one MSI layout the framework emulates: 64-bit addresses and per-vector masking. */
    public static final int MSI_SIZE = 24;
    public static final int MSI_CONTROL_ENABLE = 0x0001;
    /** Multiple Message Capable, bits 3:1: log2 of the vectors the function requests. */
    public static final int MSI_CONTROL_MMC = 0x000E;
    /** Multiple Message Enable, bits 6:4: log2 of the vectors software allocated. */
    public static final int MSI_CONTROL_MME = 0x0070;
    public static final int MSI_CONTROL_64BIT = 0x0080;
    public static final int MSI_CONTROL_PER_VECTOR_MASK = 0x0100;

    // ---------------------------------------------------------------------------------------------- MSI-X
    /** MSI-X: Message Control (2 bytes). */
    public static final int MSIX_CONTROL = 2;
    /** MSI-X: Table Offset (bits 31:3) and Table BIR (bits 2:0). */
    public static final int MSIX_TABLE = 4;
    /** MSI-X: PBA Offset (bits 31:3) and PBA BIR (bits 2:0). */
    public static final int MSIX_PBA = 8;
    public static final int MSIX_SIZE = 12;
    /** Bits 10:0: the table size minus one. */
    public static final int MSIX_CONTROL_TABLE_SIZE = 0x07FF;
    public static final int MSIX_CONTROL_FUNCTION_MASK = 0x4000;
    public static final int MSIX_CONTROL_ENABLE = 0x8000;

    // ---------------------------------------------------------------------------------------- PCI Express
    /** PCIe: PCI Express Capabilities register (2 bytes): version bits 3:0, device/port type bits 7:4. */
    public static final int EXP_FLAGS = 2;
    public static final int EXP_DEVCAP = 4;
    public static final int EXP_DEVCTL = 8;
    public static final int EXP_DEVSTA = 10;
    public static final int EXP_LNKCAP = 12;
    public static final int EXP_LNKCTL = 16;
    public static final int EXP_LNKSTA = 18;
    public static final int EXP_SLTCAP = 20;
    public static final int EXP_SLTCTL = 24;
    public static final int EXP_SLTSTA = 26;
    public static final int EXP_RTCTL = 28;
    public static final int EXP_RTCAP = 30;
    public static final int EXP_RTSTA = 32;
    public static final int EXP_DEVCAP2 = 36;
    public static final int EXP_DEVCTL2 = 40;
    public static final int EXP_DEVSTA2 = 42;
    public static final int EXP_LNKCAP2 = 44;
    public static final int EXP_LNKCTL2 = 48;
    public static final int EXP_LNKSTA2 = 50;
    public static final int EXP_SLTCAP2 = 52;
    public static final int EXP_SLTCTL2 = 56;
    public static final int EXP_SLTSTA2 = 58;
    /** The size of a version 2 PCI Express capability. */
    public static final int EXP_SIZE = 0x3C;
    public static final int EXP_FLAGS_VERSION_2 = 0x0002;
    /** DevCap bit 15: Role-Based Error Reporting (set by every function of PCIe 1.1 and later). */
    public static final int EXP_DEVCAP_RBER = 1 << 15;
    /** DevCap bit 28: Function Level Reset capability. */
    public static final int EXP_DEVCAP_FLR = 1 << 28;
    /** DevCtl bit 15 of an endpoint: Initiate Function Level Reset (always reads 0). */
    public static final int EXP_DEVCTL_INITIATE_FLR = 0x8000;
    public static final int EXP_DEVCTL_RELAXED_ORDERING = 0x0010;
    public static final int EXP_DEVCTL_NO_SNOOP = 0x0800;
    /** DevCtl bits 14:12: Max_Read_Request_Size; 010b is 512 bytes. */
    public static final int EXP_DEVCTL_READ_REQUEST_512 = 0x2000;
    /** LnkCap/LnkSta bits 3:0 = 1: 2.5 GT/s (Gen1). */
    public static final int EXP_LINK_SPEED_2_5GT = 0x1;
    /** LnkCap/LnkSta bits 9:4 = 1: x1. */
    public static final int EXP_LINK_WIDTH_X1 = 0x10;
    /** LnkCap2 bits 7:1: Supported Link Speeds Vector; bit 1 is 2.5 GT/s. */
    public static final int EXP_LNKCAP2_SPEED_2_5GT = 0x2;
    /**
     * The LnkCtl bits an endpoint stores: ASPM Control (1:0), Read Completion Boundary (3), Common Clock (6),
     * Extended Synch (7), Clock Power Management (8), Hardware Autonomous Width Disable (9).
     */
    public static final int EXP_LNKCTL_WRITABLE = 0x03CB;

    // ------------------------------------------------------------------------------------ vendor-specific
    /** Vendor capability: the length byte (the capability's size, header included). */
    public static final int VNDR_LENGTH = 2;
    /** Vendor capability: the first data byte. */
    public static final int VNDR_DATA = 3;

    // ------------------------------------------------------------------------------ extended capabilities
    /** Extended header dword: id bits 15:0, version bits 19:16, next offset bits 31:20. */
    public static final int EXT_HEADER_SIZE = 4;
    /** Device Serial Number: lower dword of the serial number. */
    public static final int DSN_LOW = 4;
    /** Device Serial Number: upper dword of the serial number. */
    public static final int DSN_HIGH = 8;
    /** Vendor-specific extended capability: VSEC header (VSEC id 15:0, revision 19:16, length 31:20). */
    public static final int VSEC_HEADER = 4;
    /** Vendor-specific extended capability: the first data byte. */
    public static final int VSEC_DATA = 8;

    private PciRegisters() {
    }
}
