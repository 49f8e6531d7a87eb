// SPDX-License-Identifier: GPL-2.0

//! Register layouts: PCI configuration space structures used for discovery, the CXL device
//! register block, the mailbox (CXL mailbox and PCIe MMB, which share one layout) and the PCIe
//! MMPT capability.
//!
//! Glossary:
//! - DVSEC: Designated Vendor-Specific Extended Capability (PCIe extended capability 0x23).
//! - Register Locator: the CXL DVSEC (vendor 1E98h, id 8) listing register blocks in BARs.
//! - MRBL: PCIe MMIO Register Block Locator (extended capability 0x36), the PCIe counterpart.
//! - MCAP: the PCIe MMIO capabilities array a MRBL points to.
//! - CCI: Component Command Interface; a mailbox is one kind of CCI.
//! - MMB: PCIe MMIO Mailbox; the CXL mailbox is an MMB with CXL extensions (background commands).
//! - MMPT: PCIe Management Message Passthrough, messages carried over MMB commands.
//!
//! References: CXL r3.1 §8.1.9 (Register Locator), §8.2.8 (device registers), §8.2.8.4
//! (mailbox); PCIe 6.3 §6.35, §6.36, §7.9.30 (MRBL, MMB, MMPT).

/// PCI extended capability id of a DVSEC.
pub const PCI_EXT_CAP_ID_DVSEC: u16 = 0x23;
/// PCI extended capability id of the MMIO Register Block Locator (MRBL).
pub const PCI_EXT_CAP_ID_MRBL: u16 = 0x36;
/// First offset of the PCIe extended configuration space.
pub const PCI_EXT_CAP_START: u16 = 0x100;
/// Size of the PCIe extended configuration space.
pub const PCI_CFG_SPACE_EXP_SIZE: u16 = 0x1000;

/// CXL's PCI-SIG vendor id, used in DVSECs and capability headers.
pub const CXL_VENDOR_ID: u16 = 0x1e98;
/// The vendor id of the PCI-SIG itself (0001h): MCAP capabilities it defines and MMB opcodes of
/// its command set (PCIe 6.3 §6.35, §6.36).
pub const VENDOR_PCI_SIG: u16 = 0x0001;
/// DVSEC id of the CXL Register Locator.
pub const CXL_DVSEC_REG_LOCATOR: u16 = 8;
/// Offset of the first Register Locator entry from the DVSEC start.
pub const CXL_REG_LOCATOR_FIRST_ENTRY: u16 = 0x0c;
/// Size of one Register Locator entry.
pub const CXL_REG_LOCATOR_ENTRY_SIZE: u16 = 8;

/// PCI class code (with programming interface) of a CXL Fabric Management Host Interface,
/// i.e. a switch mailbox CCI.
pub const PCI_CLASS_CXL_SWITCH_CCI: u32 = 0x0c0b00;

register! {
    /// PCIe extended capability header (first dword of every extended capability).
    pub ExtCapHeader(u32) @ 0x00 {
        /// Capability id.
        15:0 id, with_id: u16;
        /// Capability version.
        19:16 version, with_version: u8;
        /// Offset of the next capability, 0 at the end of the list.
        31:20 next, with_next: u16;
    }

    /// DVSEC header 1 (offset 4 of a DVSEC).
    pub DvsecHeader1(u32) @ 0x04 {
        /// Vendor that defined the DVSEC.
        15:0 vendor, with_vendor: u16;
        /// DVSEC revision.
        19:16 revision, with_revision: u8;
        /// Length of the whole DVSEC in bytes.
        31:20 length, with_length: u16;
    }

    /// DVSEC header 2 (offset 8 of a DVSEC).
    pub DvsecHeader2(u32) @ 0x08 {
        /// DVSEC id within the vendor's namespace.
        15:0 id, with_id: u16;
    }

    /// Register Locator entry, low dword (CXL r3.1 §8.1.9.1).
    pub RegLocatorLo(u32) @ 0x00 {
        /// BAR Indicator Register: the BAR that holds the block.
        2:0 bir, with_bir: u8;
        /// Register block identifier, see [`RegBlockId`](crate::discover::RegBlockId).
        15:8 block_id, with_block_id: u8;
        /// Offset of the block within the BAR, bits 31:16 (bits 15:0 are zero).
        31:16 offset_hi16, with_offset_hi16: u16;
    }

    /// MMIO Register Block Locator header, at offset 4 of the MRBL capability (PCIe 6.3 §7.9.30).
    pub MrblHeader(u32) @ 0x04 {
        /// Length of the MRBL structure in bytes: 08h + 8 * number of locators.
        11:0 length, with_length: u16;
    }

    /// One MRBL locator (64 bits, from offset 8 of the MRBL capability).
    pub MrblLocator(u64) @ 0x08 {
        /// BAR Indicator Register.
        2:0 bir, with_bir: u8;
        /// Block id: 00h empty, 01h MCAP, FFh vendor-defined.
        15:8 block_id, with_block_id: u8;
        /// Offset bits 63:16 within the BAR, in place (bits 15:0 of the offset are zero).
        63:16 offset_hi48, with_offset_hi48: u64;
    }

    /// Capabilities array register (offset 0 of a CXL device register block or a PCIe MCAP
    /// block).
    pub CapArrayHeader(u64) @ 0x00 {
        /// Capability id of the array itself: 0.
        15:0 id, with_id: u16;
        /// Version of the array.
        23:16 version, with_version: u8;
        /// Type (CXL r3.2 / PCIe MCAP): 0 = by class code; CXL defines 1-7.
        27:24 kind, with_kind: u8;
        /// Number of capability headers that follow.
        47:32 count, with_count: u16;
    }

    /// First dword of a 16-byte capability header in a capabilities array.
    pub CapHeader(u32) @ 0x00 {
        /// Capability id (meaning scoped by the vendor id in dword 3 for MCAP).
        15:0 id, with_id: u16;
        /// Capability version.
        23:16 version, with_version: u8;
    }

    /// Fourth dword of an MCAP capability header: the vendor that defines the capability id.
    pub McapVendor(u32) @ 0x0c {
        /// Vendor id: 0001h PCI-SIG, 1E98h CXL, 0000h legacy CXL.
        15:0 vendor, with_vendor: u16;
    }
}

/// Offset of the first capability header in a capabilities array.
pub const CAP_ARRAY_FIRST: usize = 0x10;
/// Size of one capability header.
pub const CAP_HEADER_SIZE: usize = 0x10;
/// Offset of the capability offset (dword 1) within a capability header.
pub const CAP_HEADER_OFFSET: usize = 0x04;
/// Offset of the capability length (dword 2) within a capability header.
pub const CAP_HEADER_LENGTH: usize = 0x08;

register! {
    /// Mailbox Capabilities (CXL r3.1 §8.2.8.4.3, PCIe MMB Capabilities).
    pub MboxCaps(u32) @ 0x00 {
        /// Payload size as log2 of bytes (8..=20 for 256 B..1 MiB).
        4:0 payload_size_log2, with_payload_size_log2: u8;
        /// Doorbell (command completion) interrupt supported.
        5:5 doorbell_irq, with_doorbell_irq: bool;
        /// Background command completion interrupt supported (CXL).
        6:6 background_irq, with_background_irq: bool;
        /// MSI/MSI-X message number of the mailbox interrupts.
        10:7 irq_msgnum, with_irq_msgnum: u8;
        /// Mailbox ready time in seconds (MMB; 0 means the default of 2 s).
        18:11 ready_time, with_ready_time: u8;
        /// Mailbox type.
        22:19 mb_type, with_mb_type: u8;
        /// The attention mechanism is supported (MMB).
        23:23 attention, with_attention: bool;
    }

    /// Mailbox Control.
    pub MboxCtrl(u32) @ 0x04 {
        /// Doorbell: set by the host to submit, cleared by the device on completion.
        0:0 doorbell, with_doorbell: bool;
        /// Doorbell (command completion) interrupt enable.
        1:1 doorbell_irq, with_doorbell_irq: bool;
        /// Background command completion interrupt enable (CXL).
        2:2 background_irq, with_background_irq: bool;
        /// "Attention not needed" (MMB; provisional bit position).
        3:3 attention_not_needed, with_attention_not_needed: bool;
    }

    /// Mailbox Command.
    pub MboxCmd(u64) @ 0x08 {
        /// Opcode: command set in 15:8, command in 7:0.
        15:0 opcode, with_opcode: u16;
        /// Payload length in bytes (input on submit, output on completion).
        36:16 payload_len, with_payload_len: u32;
        /// Opcode vendor id (MMB): 0000h legacy CXL, 0001h PCI-SIG.
        63:48 opcode_vendor, with_opcode_vendor: u16;
    }

    /// Mailbox Status.
    pub MboxStatus(u64) @ 0x10 {
        /// A background operation is running (CXL).
        0:0 background, with_background: bool;
        /// The mailbox is ready (MMB).
        1:1 ready, with_ready: bool;
        /// The function is at attention (MMB).
        2:2 at_attention, with_at_attention: bool;
        /// Return code of the last command.
        47:32 return_code, with_return_code: u16;
        /// Vendor specific extended status.
        63:48 vendor_status, with_vendor_status: u16;
    }

    /// Background Command Status (CXL).
    pub MboxBgStatus(u64) @ 0x18 {
        /// Opcode of the last background command.
        15:0 opcode, with_opcode: u16;
        /// Percentage complete, 0..=100.
        22:16 percent, with_percent: u8;
        /// Return code of the background command, valid at 100 %.
        47:32 return_code, with_return_code: u16;
        /// Vendor specific extended status.
        63:48 vendor_status, with_vendor_status: u16;
    }

    /// Event Status (CXL r3.1 §8.2.8.3.1): offset 0 of the Device Status registers
    /// (capability 0001h). A bit is set while its event log holds records (see
    /// [`EventLog::status_bit`](crate::payload::events::EventLog::status_bit)).
    pub EventStatus(u32) @ 0x00 {
        /// The Informational Event Log holds records.
        0:0 informational, with_informational: bool;
        /// The Warning Event Log holds records.
        1:1 warning, with_warning: bool;
        /// The Failure Event Log holds records.
        2:2 failure, with_failure: bool;
        /// The Fatal Event Log holds records.
        3:3 fatal, with_fatal: bool;
        /// The Dynamic Capacity Event Log holds records.
        4:4 dynamic_capacity, with_dynamic_capacity: bool;
    }

    /// CXL Memory Device Status (capability 4000h).
    pub MemdevStatus(u64) @ 0x00 {
        /// Device fatal error.
        0:0 fatal, with_fatal: bool;
        /// Firmware halted.
        1:1 fw_halt, with_fw_halt: bool;
        /// Media status.
        3:2 media_status, with_media_status: u8;
        /// Mailbox interface ready.
        4:4 mbox_ready, with_mbox_ready: bool;
        /// Reset needed.
        7:5 reset_needed, with_reset_needed: u8;
    }

    /// MMPT Capabilities (PCIe MMPT capability, offset 0).
    pub MmptCaps(u32) @ 0x00 {
        /// Receive-message interrupt supported.
        0:0 rx_irq, with_rx_irq: bool;
        /// MSI/MSI-X vector of the receive-message interrupt.
        4:1 rx_vector, with_rx_vector: u8;
    }

    /// MMPT Control.
    pub MmptCtrl(u32) @ 0x04 {
        /// Receive-message interrupt enable.
        0:0 rx_irq, with_rx_irq: bool;
    }

    /// MMPT Receive Message Notification.
    pub MmptRxNotify(u64) @ 0x08 {
        /// A received message is waiting.
        0:0 ready, with_ready: bool;
        /// Message type of the waiting message.
        23:16 msg_type, with_msg_type: u8;
        /// Length of the waiting message in bytes.
        63:32 msg_len, with_msg_len: u32;
    }
}

/// Offset of the payload registers from the start of the mailbox.
pub const MBOX_PAYLOAD: usize = 0x20;
/// log2 of the smallest payload a mailbox may have (CXL r3.1 §8.2.8.4.3: 256 bytes).
pub const MBOX_PAYLOAD_MIN_LOG2: u8 = 8;
/// log2 of the largest payload a mailbox may have (1 MiB).
pub const MBOX_PAYLOAD_MAX_LOG2: u8 = 20;
/// Smallest payload a mailbox may have, in bytes.
pub const MBOX_PAYLOAD_MIN: usize = 1 << MBOX_PAYLOAD_MIN_LOG2;
/// Largest payload a mailbox may have, in bytes.
pub const MBOX_PAYLOAD_MAX: usize = 1 << MBOX_PAYLOAD_MAX_LOG2;
/// Size of the MMPT capability registers.
pub const MMPT_REGS_SIZE: usize = 0x10;

/// CXL device capability ids (CXL r3.1 §8.2.8.2.1).
pub mod cxl_cap {
    /// Device Status registers.
    pub const DEVICE_STATUS: u16 = 0x0001;
    /// Primary mailbox.
    pub const PRIMARY_MAILBOX: u16 = 0x0002;
    /// Secondary mailbox.
    pub const SECONDARY_MAILBOX: u16 = 0x0003;
    /// Memory Device Status registers.
    pub const MEMDEV_STATUS: u16 = 0x4000;
}

/// PCIe MCAP capability ids with vendor 0001h (PCI-SIG).
pub mod mcap {
    /// PCI-SIG vendor id used for MCAP capabilities.
    pub use super::VENDOR_PCI_SIG;
    /// MMIO Mailbox.
    pub const MMB: u16 = 0x0001;
    /// Management Message Passthrough.
    pub const MMPT: u16 = 0x0002;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_register_layout() {
        let c = MboxCmd::default()
            .with_opcode(0x0401)
            .with_payload_len(0x1f_ffff)
            .with_opcode_vendor(1);
        assert_eq!(c.0, 0x0001_001f_ffff_0401);
        assert_eq!(c.payload_len(), 0x1f_ffff);
        // Truncation to the field width.
        assert_eq!(
            MboxCmd::default().with_payload_len(u32::MAX).0,
            0x1f_ffff << 16
        );
    }

    #[test]
    fn emulated_switch_caps() {
        // QEMU's switch CCI reads 0x1cb: 2 KiB payload, background interrupt, message number 3.
        let caps = MboxCaps(0x1cb);
        assert_eq!(caps.payload_size_log2(), 11);
        assert!(!caps.doorbell_irq());
        assert!(caps.background_irq());
        assert_eq!(caps.irq_msgnum(), 3);
        assert!(!caps.attention());
    }

    #[test]
    fn status_fields() {
        let s = MboxStatus(0xbeef_0016_0000_0001);
        assert!(s.background());
        assert_eq!(s.return_code(), 0x16);
        assert_eq!(s.vendor_status(), 0xbeef);
        let bg = MboxBgStatus::default()
            .with_opcode(0x4400)
            .with_percent(100)
            .with_return_code(0x12);
        assert_eq!(bg.0, 0x0012_0064_4400);
    }

    #[test]
    fn event_status_bits() {
        use crate::payload::events::EventLog;
        let s = EventStatus::default().with_warning(true).with_fatal(true);
        assert_eq!(s.0, 0b1010);
        assert_eq!(
            s.0,
            EventLog::Warning.status_bit() | EventLog::Fatal.status_bit()
        );
        assert!(!s.informational() && !s.failure() && !s.dynamic_capacity());
        // Reserved bits 31:5 are not fields.
        assert!(!EventStatus(0xffff_ffe0).fatal());
        assert_eq!(EventStatus::OFFSET, 0);
    }

    #[test]
    fn full_width_field() {
        assert_eq!(super::super::macros::field_mask(63, 0), u64::MAX);
        assert_eq!(super::super::macros::field_mask(0, 0), 1);
        let l = MrblLocator::default().with_offset_hi48(0x1234_5678_9abc);
        assert_eq!(l.0, 0x1234_5678_9abc_0000);
    }
}
