// SPDX-License-Identifier: GPL-2.0

//! The PCI configuration space (4 KiB, vfio-user region 7).
//!
//! Layout:
//! - Type 0 header: vendor/device, command/status (capability list), class code, BAR0 a 64-bit
//!   non-prefetchable memory BAR (the registers), BAR2 a 32-bit memory BAR of 4 KiB (MSI-X table
//!   at 0, PBA at 0x800) when MSI-X is present, subsystem ids, capability pointer, no INTx pin.
//! - 0x40: PCI Express capability (version 2, endpoint, FLR capable).
//! - 0x80: MSI-X capability, 16 vectors (unless disabled); or, for an MSI-only function, the
//!   MSI capability (64-bit addresses, no per-vector masking, Multiple Message Capable from
//!   `--msi`).
//! - 0x100: switch: CXL Register Locator DVSEC (one entry: BAR0, CXL device registers, offset 0),
//!   then at 0x120 the MRBL (one locator: BAR0, MCAP, offset 0). mmpt: the MRBL at 0x100.
//!
//! Every byte has a write mask: writes only change writable bits, so BAR sizing by writing all
//! ones reads back the size mask, and read-only fields ignore writes. The write-only "Initiate
//! Function Level Reset" bit is reported as [`ConfigEvent::Flr`] and never stored.

use crate::irq::MSIX_VECTORS;
use swcci_proto::discover::{self, block_id};
use swcci_proto::regs::{
    DvsecHeader1, DvsecHeader2, ExtCapHeader, MrblHeader, MrblLocator, RegLocatorLo,
    CXL_DVSEC_REG_LOCATOR, CXL_REG_LOCATOR_ENTRY_SIZE, CXL_REG_LOCATOR_FIRST_ENTRY, CXL_VENDOR_ID,
    PCI_CFG_SPACE_EXP_SIZE, PCI_EXT_CAP_ID_DVSEC, PCI_EXT_CAP_ID_MRBL, PCI_EXT_CAP_START,
};

/// Size of the configuration space.
pub const CFG_SIZE: usize = PCI_CFG_SPACE_EXP_SIZE as usize;
/// BAR holding the MSI-X table and PBA.
pub const MSIX_BAR: u8 = 2;
/// Size of that BAR.
pub const MSIX_BAR_SIZE: u64 = 0x1000;
/// Offset of the MSI-X table in its BAR.
pub const MSIX_TABLE_OFFSET: u32 = 0;
/// Offset of the MSI-X PBA in its BAR.
pub const MSIX_PBA_OFFSET: u32 = 0x800;
/// Offset of the PCI Express capability.
pub const CAP_PCIE: usize = 0x40;
/// Offset of the MSI-X capability.
pub const CAP_MSIX: usize = 0x80;
/// Offset of the MSI capability of an MSI-only function (where MSI-X would be).
pub const CAP_MSI: usize = 0x80;
/// Offset of the CXL Register Locator DVSEC (switch personality).
pub const EXT_DVSEC: usize = PCI_EXT_CAP_START as usize;
/// Offset of the MRBL when a DVSEC precedes it.
pub const EXT_MRBL_AFTER_DVSEC: usize = 0x120;

const PCI_COMMAND: usize = 0x04;
const PCI_STATUS_CAP_LIST: u16 = 1 << 4;
const PCI_BAR0: usize = 0x10;
const PCI_SUBSYSTEM: usize = 0x2c;
const PCI_CAP_PTR: usize = 0x34;
const PCI_INTERRUPT_LINE: usize = 0x3c;
/// Command register bits the function implements: memory space, bus master, parity error
/// response, SERR#, INTx disable.
const COMMAND_WMASK: u16 = 0x0002 | 0x0004 | 0x0040 | 0x0100 | 0x0400;
const PCI_CAP_ID_EXP: u8 = 0x10;
const PCI_CAP_ID_MSIX: u8 = 0x11;
const PCI_CAP_ID_MSI: u8 = 0x05;
/// MSI Message Control: enable (0) and Multiple Message Enable (6:4) are writable.
const MSI_CONTROL_WMASK: u16 = 0x0071;
/// MSI Message Control: 64-bit address capable.
const MSI_64BIT: u16 = 1 << 7;
/// Length of the version 2 PCI Express capability.
const PCIE_CAP_LEN: usize = 0x3c;
const PCI_EXP_DEVCTL: usize = 0x08;
const PCI_EXP_DEVCTL_BCR_FLR: u16 = 1 << 15;
const PCI_EXP_DEVCAP_FLR: u32 = 1 << 28;
const PCI_EXP_LNKCTL: usize = 0x10;
const PCI_EXP_DEVCTL2: usize = 0x28;
const PCI_EXP_LNKCTL2: usize = 0x30;
const _: () = assert!(CAP_PCIE + PCIE_CAP_LEN <= CAP_MSIX);

/// What the configuration space describes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigParams {
    /// Vendor id.
    pub vendor: u16,
    /// Device id.
    pub device: u16,
    /// Class code with programming interface (24 bits).
    pub class: u32,
    /// Revision id.
    pub revision: u8,
    /// Subsystem vendor id.
    pub subsys_vendor: u16,
    /// Subsystem id.
    pub subsys_id: u16,
    /// Size of BAR0 (a power of two, at least 4 KiB).
    pub bar0_size: u64,
    /// MSI-X capability and its BAR.
    pub msix: bool,
    /// MSI capability with this many messages (0: none); excludes MSI-X.
    pub msi: u8,
    /// The CXL Register Locator DVSEC before the MRBL (switch personality).
    pub cxl_dvsec: bool,
}

/// Something a configuration write asked of the function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigEvent {
    /// Function Level Reset.
    Flr,
    /// The MSI-X Message Control register was written (new value).
    MsixControl(u16),
    /// The MSI Message Control register was written (new value).
    MsiControl(u16),
    /// The Command register was written (new value).
    Command(u16),
}

/// The configuration space model.
#[derive(Clone)]
pub struct ConfigSpace {
    data: Vec<u8>,
    wmask: Vec<u8>,
    params: ConfigParams,
}

impl std::fmt::Debug for ConfigSpace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigSpace")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

impl ConfigSpace {
    /// Builds the configuration space for `p`.
    pub fn new(p: &ConfigParams) -> Self {
        let mut c = Self {
            data: vec![0; CFG_SIZE],
            wmask: vec![0; CFG_SIZE],
            params: p.clone(),
        };
        c.put16(0x00, p.vendor, 0);
        c.put16(0x02, p.device, 0);
        c.put16(PCI_COMMAND, 0, COMMAND_WMASK);
        c.put16(0x06, PCI_STATUS_CAP_LIST, 0);
        c.put32(0x08, (p.class << 8) | u32::from(p.revision), 0);
        // Cache line size is read-write, latency timer 0, header type 0, no BIST.
        c.put8(0x0c, 0, 0xff);

        // BAR0: 64-bit, non-prefetchable memory; sizing by the writable bits.
        let bar0_mask = !(p.bar0_size.saturating_sub(1));
        c.put32(PCI_BAR0, 0b100, (bar0_mask as u32) & !0xf);
        c.put32(PCI_BAR0 + 4, 0, (bar0_mask >> 32) as u32);
        if p.msix {
            // BAR2: 32-bit memory.
            let mask = !(MSIX_BAR_SIZE.saturating_sub(1)) as u32;
            c.put32(PCI_BAR0 + 4 * usize::from(MSIX_BAR), 0, mask & !0xf);
        }
        c.put16(PCI_SUBSYSTEM, p.subsys_vendor, 0);
        c.put16(PCI_SUBSYSTEM + 2, p.subsys_id, 0);
        c.put8(PCI_CAP_PTR, CAP_PCIE as u8, 0);
        c.put8(PCI_INTERRUPT_LINE, 0, 0xff);

        // PCI Express capability, version 2, endpoint.
        let next = if p.msix || p.msi > 0 {
            CAP_MSIX as u8
        } else {
            0
        };
        c.put8(CAP_PCIE, PCI_CAP_ID_EXP, 0);
        c.put8(CAP_PCIE + 1, next, 0);
        c.put16(CAP_PCIE + 2, 0x0002, 0);
        // Device capabilities: 128-byte max payload, FLR capable.
        c.put32(CAP_PCIE + 4, PCI_EXP_DEVCAP_FLR, 0);
        // Device control: everything but the FLR bit is storable; MRRS 512 B by default.
        c.put16(CAP_PCIE + PCI_EXP_DEVCTL, 0x2000, 0x7fff);
        // Link capabilities: 2.5 GT/s, x1. Link status: 2.5 GT/s, x1.
        c.put32(CAP_PCIE + 0x0c, 0x0000_0011, 0);
        c.put16(CAP_PCIE + PCI_EXP_LNKCTL, 0, 0x0fff);
        c.put16(CAP_PCIE + 0x12, 0x0011, 0);
        c.put16(CAP_PCIE + PCI_EXP_DEVCTL2, 0, 0x07ff);
        // Link capabilities 2: supported speeds 2.5 GT/s. Link control 2: target 2.5 GT/s.
        c.put32(CAP_PCIE + 0x2c, 0x0000_0002, 0);
        c.put16(CAP_PCIE + PCI_EXP_LNKCTL2, 0x0001, 0x0fff);

        if p.msix {
            c.put8(CAP_MSIX, PCI_CAP_ID_MSIX, 0);
            c.put8(CAP_MSIX + 1, 0, 0);
            // Table size N-1; enable (15) and function mask (14) are writable.
            c.put16(CAP_MSIX + 2, (MSIX_VECTORS as u16) - 1, 0xc000);
            c.put32(CAP_MSIX + 4, MSIX_TABLE_OFFSET | u32::from(MSIX_BAR), 0);
            c.put32(CAP_MSIX + 8, MSIX_PBA_OFFSET | u32::from(MSIX_BAR), 0);
        }

        if p.msi > 0 && !p.msix {
            // Multiple Message Capable: log2 of the messages, in bits 3:1.
            let mmc = p.msi.trailing_zeros() as u16;
            c.put8(CAP_MSI, PCI_CAP_ID_MSI, 0);
            c.put8(CAP_MSI + 1, 0, 0);
            c.put16(CAP_MSI + 2, MSI_64BIT | (mmc << 1), MSI_CONTROL_WMASK);
            // Message Address (dword aligned), Upper Address, Message Data.
            c.put32(CAP_MSI + 4, 0, !3);
            c.put32(CAP_MSI + 8, 0, !0);
            c.put16(CAP_MSI + 0xc, 0, !0);
        }

        let mrbl_at = if p.cxl_dvsec {
            c.put_register_locator(EXT_DVSEC, EXT_MRBL_AFTER_DVSEC);
            EXT_MRBL_AFTER_DVSEC
        } else {
            EXT_DVSEC
        };
        c.put_mrbl(mrbl_at);
        c
    }

    /// The CXL Register Locator DVSEC with one entry: BAR0, CXL device registers, offset 0.
    fn put_register_locator(&mut self, at: usize, next: usize) {
        let len = CXL_REG_LOCATOR_FIRST_ENTRY + CXL_REG_LOCATOR_ENTRY_SIZE;
        let hdr = ExtCapHeader::default()
            .with_id(PCI_EXT_CAP_ID_DVSEC)
            .with_version(1)
            .with_next(next as u16);
        self.put32(at, hdr.0, 0);
        let h1 = DvsecHeader1::default()
            .with_vendor(CXL_VENDOR_ID)
            .with_revision(0)
            .with_length(len);
        self.put32(at + DvsecHeader1::OFFSET, h1.0, 0);
        let h2 = DvsecHeader2::default().with_id(CXL_DVSEC_REG_LOCATOR);
        self.put32(at + DvsecHeader2::OFFSET, h2.0, 0);
        let entry = at + usize::from(CXL_REG_LOCATOR_FIRST_ENTRY);
        let lo = RegLocatorLo::default()
            .with_bir(0)
            .with_block_id(block_id::DEVICE)
            .with_offset_hi16(0);
        self.put32(entry, lo.0, 0);
        self.put32(entry + 4, 0, 0);
    }

    /// The MRBL with one locator: BAR0, MCAP block, offset 0. Last in the list.
    fn put_mrbl(&mut self, at: usize) {
        let hdr = ExtCapHeader::default()
            .with_id(PCI_EXT_CAP_ID_MRBL)
            .with_version(1)
            .with_next(0);
        self.put32(at, hdr.0, 0);
        self.put32(
            at + MrblHeader::OFFSET,
            MrblHeader::default().with_length(0x10).0,
            0,
        );
        let loc = MrblLocator::default()
            .with_bir(0)
            .with_block_id(block_id::MRBL_MCAP)
            .with_offset_hi48(0);
        self.put32(at + MrblLocator::OFFSET, loc.0 as u32, 0);
        self.put32(at + MrblLocator::OFFSET + 4, (loc.0 >> 32) as u32, 0);
    }

    fn put8(&mut self, off: usize, v: u8, wmask: u8) {
        if let (Some(d), Some(m)) = (self.data.get_mut(off), self.wmask.get_mut(off)) {
            *d = v;
            *m = wmask;
        }
    }

    fn put16(&mut self, off: usize, v: u16, wmask: u16) {
        self.put_le(off, &v.to_le_bytes(), &wmask.to_le_bytes());
    }

    fn put32(&mut self, off: usize, v: u32, wmask: u32) {
        self.put_le(off, &v.to_le_bytes(), &wmask.to_le_bytes());
    }

    /// Stores the little-endian bytes of a value and of its write mask.
    fn put_le(&mut self, off: usize, v: &[u8], wmask: &[u8]) {
        for (i, (&b, &m)) in v.iter().zip(wmask).enumerate() {
            self.put8(off.saturating_add(i), b, m);
        }
    }

    /// Reads `out.len()` bytes at `off`; bytes beyond the space read as zero.
    pub fn read(&self, off: u64, out: &mut [u8]) {
        for (i, b) in out.iter_mut().enumerate() {
            *b = usize::try_from(off)
                .ok()
                .and_then(|o| o.checked_add(i))
                .and_then(|o| self.data.get(o))
                .copied()
                .unwrap_or(0);
        }
    }

    /// Reads a little-endian u16.
    pub fn read16(&self, off: usize) -> u16 {
        let mut b = [0u8; 2];
        self.read(off as u64, &mut b);
        u16::from_le_bytes(b)
    }

    /// Reads a little-endian u32.
    pub fn read32(&self, off: usize) -> u32 {
        let mut b = [0u8; 4];
        self.read(off as u64, &mut b);
        u32::from_le_bytes(b)
    }

    /// Writes `data` at `off`, bit by bit through the write mask. Returns what the write asked
    /// of the function.
    pub fn write(&mut self, off: u64, data: &[u8]) -> Vec<ConfigEvent> {
        let mut events = Vec::new();
        let Ok(start) = usize::try_from(off) else {
            return events;
        };
        let touches = |reg: usize, len: usize| {
            let end = start.saturating_add(data.len());
            start < reg.saturating_add(len) && reg < end
        };
        // The FLR bit is write-only: look at it before the mask drops it.
        let flr_byte = CAP_PCIE + PCI_EXP_DEVCTL + 1;
        if let Some(b) = flr_byte.checked_sub(start).and_then(|i| data.get(i)) {
            if (u16::from(*b) << 8) & PCI_EXP_DEVCTL_BCR_FLR != 0 {
                events.push(ConfigEvent::Flr);
            }
        }
        for (i, v) in data.iter().enumerate() {
            let o = start.saturating_add(i);
            if let (Some(d), Some(m)) = (self.data.get_mut(o), self.wmask.get(o)) {
                *d = (*d & !m) | (v & m);
            }
        }
        if touches(PCI_COMMAND, 2) {
            events.push(ConfigEvent::Command(self.read16(PCI_COMMAND)));
        }
        if self.params.msix && touches(CAP_MSIX + 2, 2) {
            events.push(ConfigEvent::MsixControl(self.read16(CAP_MSIX + 2)));
        }
        if self.params.msi > 0 && !self.params.msix && touches(CAP_MSI + 2, 2) {
            events.push(ConfigEvent::MsiControl(self.read16(CAP_MSI + 2)));
        }
        events
    }

    /// Whether memory space decoding is enabled.
    pub fn memory_enabled(&self) -> bool {
        self.read16(PCI_COMMAND) & 0x2 != 0
    }

    /// The address BAR `n` is programmed with (0 for an unimplemented BAR).
    pub fn bar_address(&self, n: u8) -> u64 {
        let off = PCI_BAR0 + 4 * usize::from(n);
        let lo = self.read32(off);
        if lo & 0b110 == 0b100 {
            (u64::from(self.read32(off + 4)) << 32) | u64::from(lo & !0xf)
        } else {
            u64::from(lo & !0xf)
        }
    }
}

/// The driver's discovery reads configuration space through this trait.
impl discover::ConfigSpace for ConfigSpace {
    fn read32(&self, off: u16) -> Option<u32> {
        (usize::from(off).saturating_add(4) <= CFG_SIZE)
            .then(|| ConfigSpace::read32(self, off.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use swcci_proto::discover::{register_blocks, Via};

    pub(crate) fn params(cxl: bool, msix: bool) -> ConfigParams {
        ConfigParams {
            vendor: 0x1b36,
            device: 0x5c01,
            class: 0x0c0b00,
            revision: 1,
            subsys_vendor: 0x1b36,
            subsys_id: 0x1100,
            bar0_size: 0x10000,
            msix,
            msi: 0,
            cxl_dvsec: cxl,
        }
    }

    #[test]
    fn header_fields() {
        let c = ConfigSpace::new(&params(true, true));
        assert_eq!(c.read32(0), 0x5c01_1b36);
        assert_eq!(c.read32(8), 0x0c0b_0001);
        assert_eq!(c.read16(6) & PCI_STATUS_CAP_LIST, PCI_STATUS_CAP_LIST);
        assert_eq!(c.read32(0x2c), 0x1100_1b36);
        assert_eq!(c.read32(PCI_CAP_PTR) & 0xff, 0x40);
        // No INTx pin.
        assert_eq!(c.read32(0x3c) >> 8 & 0xff, 0);
        let mut big = [0u8; 16];
        c.read(0, &mut big);
        assert_eq!(&big[..4], &[0x36, 0x1b, 0x01, 0x5c]);
        // Beyond the space reads zero, never panics.
        let mut tail = [0xaau8; 8];
        c.read(CFG_SIZE as u64 - 4, &mut tail);
        assert_eq!(&tail[4..], &[0; 4]);
        c.read(u64::MAX, &mut tail);
        assert_eq!(tail, [0; 8]);
    }

    #[test]
    fn bar_sizing() {
        let mut c = ConfigSpace::new(&params(true, true));
        assert_eq!(c.read32(0x10), 0b100, "64-bit memory BAR");
        c.write(0x10, &u32::MAX.to_le_bytes());
        c.write(0x14, &u32::MAX.to_le_bytes());
        assert_eq!(c.read32(0x10), 0xffff_0004, "64 KiB");
        assert_eq!(c.read32(0x14), 0xffff_ffff);
        c.write(0x18, &u32::MAX.to_le_bytes());
        assert_eq!(c.read32(0x18), 0xffff_f000, "4 KiB, 32-bit");
        for bar in [0x1cusize, 0x20, 0x24, 0x30] {
            c.write(bar as u64, &u32::MAX.to_le_bytes());
            assert_eq!(c.read32(bar), 0, "unimplemented BAR at {bar:#x}");
        }
        c.write(0x10, &0xfe01_2345u32.to_le_bytes());
        c.write(0x14, &0x1u32.to_le_bytes());
        assert_eq!(c.bar_address(0), 0x1_fe01_0000);
        c.write(0x18, &0xfd00_0000u32.to_le_bytes());
        assert_eq!(c.bar_address(2), 0xfd00_0000);

        let mut big = ConfigSpace::new(&ConfigParams {
            bar0_size: 1 << 21,
            msix: false,
            ..params(false, false)
        });
        big.write(0x10, &u32::MAX.to_le_bytes());
        assert_eq!(big.read32(0x10), 0xffe0_0004);
        big.write(0x18, &u32::MAX.to_le_bytes());
        assert_eq!(big.read32(0x18), 0, "no MSI-X BAR without MSI-X");
    }

    #[test]
    fn read_only_fields_and_command() {
        let mut c = ConfigSpace::new(&params(true, true));
        c.write(0, &[0xff; 8]);
        assert_eq!(c.read32(0), 0x5c01_1b36);
        assert_eq!(c.read32(8), 0x0c0b_0001);
        let ev = c.write(4, &0xffffu16.to_le_bytes());
        assert_eq!(c.read16(4), COMMAND_WMASK);
        assert_eq!(ev, [ConfigEvent::Command(COMMAND_WMASK)]);
        assert!(c.memory_enabled());
        c.write(4, &0x0006u32.to_le_bytes());
        assert_eq!(c.read16(4), 0x6);
        assert_eq!(c.read16(6) & PCI_STATUS_CAP_LIST, PCI_STATUS_CAP_LIST);
        // Extended capabilities are read-only.
        let before = c.read32(0x100);
        c.write(0x100, &[0; 4]);
        assert_eq!(c.read32(0x100), before);
        // Writes past the end are ignored.
        assert!(c.write(0xffe, &[1, 2, 3, 4]).is_empty());
        assert!(c.write(u64::MAX, &[1]).is_empty());
    }

    #[test]
    fn capability_lists() {
        let c = ConfigSpace::new(&params(true, true));
        assert_eq!(c.read32(CAP_PCIE) & 0xffff, 0x8010, "PCIe cap, next MSI-X");
        assert_eq!(c.read16(CAP_PCIE + 2) & 0xf, 2, "version 2");
        assert_eq!(
            c.read32(CAP_PCIE + 4) & PCI_EXP_DEVCAP_FLR,
            PCI_EXP_DEVCAP_FLR
        );
        assert_eq!(c.read32(CAP_MSIX) & 0xffff, 0x0011);
        assert_eq!(c.read16(CAP_MSIX + 2) & 0x7ff, 15, "16 vectors");
        assert_eq!(c.read32(CAP_MSIX + 4), 2);
        assert_eq!(c.read32(CAP_MSIX + 8), 0x802);
        let no = ConfigSpace::new(&params(false, false));
        assert_eq!(no.read32(CAP_PCIE) & 0xffff, 0x0010, "PCIe cap, last");
        assert_eq!(no.read32(CAP_MSIX), 0);
    }

    #[test]
    fn msi_capability() {
        let mut c = ConfigSpace::new(&ConfigParams {
            msi: 8,
            ..params(false, false)
        });
        assert_eq!(c.read32(CAP_PCIE) & 0xffff, 0x8010, "PCIe cap, next MSI");
        assert_eq!(c.read16(CAP_MSI) & 0xff, 0x05);
        // 64-bit, 8 messages capable (MMC 3), none enabled.
        assert_eq!(c.read16(CAP_MSI + 2), 0x0086);
        // Linux enables 4 messages: MME 2, enable.
        let ev = c.write((CAP_MSI + 2) as u64, &0xffa5u16.to_le_bytes());
        assert_eq!(ev, [ConfigEvent::MsiControl(0x00a7)]);
        c.write((CAP_MSI + 4) as u64, &0xfee0_0003u32.to_le_bytes());
        assert_eq!(c.read32(CAP_MSI + 4), 0xfee0_0000);
        c.write((CAP_MSI + 0xc) as u64, &0x4021u16.to_le_bytes());
        assert_eq!(c.read16(CAP_MSI + 0xc), 0x4021);
        // No MSI-X table BAR.
        c.write(0x18, &u32::MAX.to_le_bytes());
        assert_eq!(c.read32(0x18), 0);
        // Writes elsewhere say nothing about MSI.
        assert!(c.write(0x3c, &[1]).is_empty());
    }

    #[test]
    fn msix_control_and_flr() {
        let mut c = ConfigSpace::new(&params(true, true));
        let ev = c.write((CAP_MSIX + 2) as u64, &0xffffu16.to_le_bytes());
        assert_eq!(ev, [ConfigEvent::MsixControl(0xc00f)]);
        let ev = c.write((CAP_PCIE + 8) as u64, &0x8000u16.to_le_bytes());
        assert_eq!(ev, [ConfigEvent::Flr]);
        assert_eq!(c.read16(CAP_PCIE + 8), 0, "FLR bit reads zero");
        // A dword write of Device Control + Status.
        let ev = c.write((CAP_PCIE + 8) as u64, &0x0000_a010u32.to_le_bytes());
        assert_eq!(ev, [ConfigEvent::Flr]);
        assert_eq!(c.read16(CAP_PCIE + 8), 0x2010);
        let ev = c.write((CAP_PCIE + 9) as u64, &[0x20]);
        assert!(ev.is_empty());
    }

    #[test]
    fn discovery_finds_mrbl_then_locator() {
        let c = ConfigSpace::new(&params(true, true));
        assert_eq!(c.read32(0x100) & 0xffff, 0x23);
        let blocks = register_blocks(&c).unwrap();
        let v: Vec<_> = blocks.iter().copied().collect();
        assert_eq!(v.len(), 2);
        assert_eq!((v[0].bar, v[0].offset, v[0].via), (0, 0, Via::Mrbl));
        assert_eq!(
            (v[1].bar, v[1].offset, v[1].via),
            (0, 0, Via::RegisterLocator)
        );

        let m = ConfigSpace::new(&params(false, true));
        let v: Vec<_> = register_blocks(&m).unwrap().iter().copied().collect();
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].via, Via::Mrbl);
        assert_eq!(m.read32(0x100) & 0xffff, 0x36);
        assert_eq!(swcci_proto::discover::ConfigSpace::read32(&m, 0xffe), None);
        assert!(swcci_proto::discover::ConfigSpace::read32(&m, 0xffc).is_some());
    }
}
