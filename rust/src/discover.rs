// SPDX-License-Identifier: GPL-2.0

//! Finding the mailbox: pure functions over "read a config dword" and register reads.
//!
//! Two steps, because the BAR has to be mapped in between:
//! 1. [`register_blocks`] walks the PCIe extended capabilities and returns the candidate register
//!    blocks, PCIe MRBL -> MCAP blocks first, then CXL Register Locator device register blocks
//!    (the order CXL r3.2 asks for).
//! 2. [`scan_block`] reads the capabilities array of one block (in a mapped BAR) and returns the
//!    mailbox and, if present, the MMPT registers.
//!
//! Every loop is bounded and every offset is checked against the configuration space or the BAR
//! length before it is used.

use crate::mailbox::{Flavor, IoError, Location, RegIo};
use crate::regs::{
    cxl_cap, mcap, CapArrayHeader, CapHeader, DvsecHeader1, DvsecHeader2, ExtCapHeader, McapVendor,
    MrblHeader, MrblLocator, RegLocatorLo, CAP_ARRAY_FIRST, CAP_HEADER_LENGTH, CAP_HEADER_OFFSET,
    CAP_HEADER_SIZE, CXL_DVSEC_REG_LOCATOR, CXL_REG_LOCATOR_ENTRY_SIZE,
    CXL_REG_LOCATOR_FIRST_ENTRY, CXL_VENDOR_ID, MBOX_PAYLOAD, MMPT_REGS_SIZE,
    PCI_CFG_SPACE_EXP_SIZE, PCI_EXT_CAP_ID_DVSEC, PCI_EXT_CAP_ID_MRBL, PCI_EXT_CAP_START,
};
use core::fmt;

/// Reads PCI configuration space.
pub trait ConfigSpace {
    /// Reads the dword at `off` (a multiple of 4), or `None` if the read fails.
    fn read32(&self, off: u16) -> Option<u32>;
}

/// Most extended capabilities a 4 KiB configuration space can hold (one per dword).
const MAX_EXT_CAPS: usize = (PCI_CFG_SPACE_EXP_SIZE as usize - PCI_EXT_CAP_START as usize) / 4;
/// Most register blocks [`register_blocks`] returns.
pub const MAX_BLOCKS: usize = 8;
/// Most capability headers scanned in one capabilities array.
const MAX_CAPS: usize = 64;

/// Register block identifiers of the CXL Register Locator (CXL r3.1 Table 8-22).
pub mod block_id {
    /// Empty entry.
    pub const EMPTY: u8 = 0;
    /// Component registers.
    pub const COMPONENT: u8 = 1;
    /// BAR virtualization ACL registers.
    pub const VIRTUAL: u8 = 2;
    /// CXL device registers: the capabilities array holding the mailbox.
    pub const DEVICE: u8 = 3;
    /// CPMU registers.
    pub const PMU: u8 = 4;
    /// MRBL block id of an MCAP block.
    pub const MRBL_MCAP: u8 = 1;
}

/// How a register block was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// PCIe MRBL -> MCAP.
    Mrbl,
    /// CXL Register Locator DVSEC, CXL device registers block.
    RegisterLocator,
}

/// A register block in a BAR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegBlock {
    /// BAR number.
    pub bar: u8,
    /// Offset of the block in the BAR.
    pub offset: u64,
    /// How it was found.
    pub via: Via,
}

/// Candidate register blocks, in the order to try them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegBlocks {
    blocks: [Option<RegBlock>; MAX_BLOCKS],
}

impl RegBlocks {
    const fn new() -> Self {
        Self {
            blocks: [None; MAX_BLOCKS],
        }
    }

    fn push(&mut self, b: RegBlock) {
        if let Some(slot) = self.blocks.iter_mut().find(|s| s.is_none()) {
            *slot = Some(b);
        }
    }

    /// The blocks, in order.
    pub fn iter(&self) -> impl Iterator<Item = &RegBlock> + '_ {
        self.blocks.iter().flatten()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.blocks.iter().all(Option::is_none)
    }
}

/// Why discovery failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiscoverError {
    /// Neither an MRBL nor a CXL Register Locator with a usable block.
    NoRegisterBlocks,
    /// The extended capability list is malformed (a loop, or a read failed).
    BadCapabilityList,
    /// A structure points outside the configuration space or the BAR.
    OutOfRange {
        /// What was being read.
        what: &'static str,
        /// Its offset.
        offset: u64,
        /// The limit it exceeds.
        limit: u64,
    },
    /// The capabilities array header is not one.
    BadCapArray {
        /// Its id field.
        id: u16,
    },
    /// No mailbox in the block.
    NoMailbox,
    /// A register read failed.
    Io(IoError),
}

impl From<IoError> for DiscoverError {
    fn from(e: IoError) -> Self {
        Self::Io(e)
    }
}

impl fmt::Display for DiscoverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoRegisterBlocks => f.write_str(
                "no MMIO register block (no PCIe MRBL and no CXL Register Locator DVSEC)",
            ),
            Self::BadCapabilityList => f.write_str("malformed extended capability list"),
            Self::OutOfRange {
                what,
                offset,
                limit,
            } => {
                write!(f, "{what} at {offset:#x} lies beyond {limit:#x}")
            }
            Self::BadCapArray { id } => write!(f, "capabilities array has id {id:#x}, not 0"),
            Self::NoMailbox => f.write_str("no mailbox capability in the register block"),
            Self::Io(IoError::Gone) => f.write_str("device gone during discovery"),
            Self::Io(IoError::Range) => f.write_str("register read outside the BAR"),
        }
    }
}

/// Walks the extended capability list and calls `visit(position, header)` for each entry until
/// it returns `Some`.
pub fn walk_ext_caps<C: ConfigSpace, T>(
    cfg: &C,
    mut visit: impl FnMut(u16, ExtCapHeader) -> Option<T>,
) -> Result<Option<T>, DiscoverError> {
    let mut pos = PCI_EXT_CAP_START;
    for _ in 0..MAX_EXT_CAPS {
        let raw = cfg.read32(pos).ok_or(DiscoverError::BadCapabilityList)?;
        if raw == 0 || raw == u32::MAX {
            return Ok(None);
        }
        let hdr = ExtCapHeader(raw);
        if let Some(found) = visit(pos, hdr) {
            return Ok(Some(found));
        }
        // The next pointer is dword aligned; its low two bits are reserved.
        let next = hdr.next() & !3;
        if next < PCI_EXT_CAP_START {
            return Ok(None);
        }
        pos = next;
    }
    // More entries than the space can hold: the list loops.
    Err(DiscoverError::BadCapabilityList)
}

/// Finds the DVSEC with `vendor` and `id`.
pub fn find_dvsec<C: ConfigSpace>(
    cfg: &C,
    vendor: u16,
    id: u16,
) -> Result<Option<u16>, DiscoverError> {
    walk_ext_caps(cfg, |pos, hdr| {
        if hdr.id() != PCI_EXT_CAP_ID_DVSEC {
            return None;
        }
        let h1 = DvsecHeader1(cfg.read32(pos.saturating_add(4))?);
        let h2 = DvsecHeader2(cfg.read32(pos.saturating_add(8))?);
        (h1.vendor() == vendor && h2.id() == id).then_some(pos)
    })
}

fn check_cfg(what: &'static str, start: u16, len: u16) -> Result<(), DiscoverError> {
    let end = u32::from(start).saturating_add(u32::from(len));
    if end > u32::from(PCI_CFG_SPACE_EXP_SIZE) {
        return Err(DiscoverError::OutOfRange {
            what,
            offset: u64::from(start),
            limit: u64::from(PCI_CFG_SPACE_EXP_SIZE),
        });
    }
    Ok(())
}

/// The CXL Register Locator's CXL device register blocks (block id 3).
fn register_locator_blocks<C: ConfigSpace>(
    cfg: &C,
    out: &mut RegBlocks,
) -> Result<(), DiscoverError> {
    let Some(pos) = find_dvsec(cfg, CXL_VENDOR_ID, CXL_DVSEC_REG_LOCATOR)? else {
        return Ok(());
    };
    let len = DvsecHeader1(
        cfg.read32(pos.saturating_add(4))
            .ok_or(DiscoverError::BadCapabilityList)?,
    )
    .length();
    check_cfg("Register Locator DVSEC", pos, len)?;
    let entries = len.saturating_sub(CXL_REG_LOCATOR_FIRST_ENTRY) / CXL_REG_LOCATOR_ENTRY_SIZE;
    for i in 0..entries {
        let at = pos
            .saturating_add(CXL_REG_LOCATOR_FIRST_ENTRY)
            .saturating_add(i.saturating_mul(CXL_REG_LOCATOR_ENTRY_SIZE));
        let lo = RegLocatorLo(cfg.read32(at).ok_or(DiscoverError::BadCapabilityList)?);
        let hi = cfg
            .read32(at.saturating_add(4))
            .ok_or(DiscoverError::BadCapabilityList)?;
        if lo.block_id() != block_id::DEVICE || lo.bir() > 5 {
            continue;
        }
        let offset = (u64::from(hi) << 32) | (u64::from(lo.offset_hi16()) << 16);
        out.push(RegBlock {
            bar: lo.bir(),
            offset,
            via: Via::RegisterLocator,
        });
    }
    Ok(())
}

/// The MRBL's MCAP blocks.
fn mrbl_blocks<C: ConfigSpace>(cfg: &C, out: &mut RegBlocks) -> Result<(), DiscoverError> {
    let Some(pos) = walk_ext_caps(cfg, |pos, hdr| {
        (hdr.id() == PCI_EXT_CAP_ID_MRBL).then_some(pos)
    })?
    else {
        return Ok(());
    };
    let len = MrblHeader(
        cfg.read32(pos.saturating_add(4))
            .ok_or(DiscoverError::BadCapabilityList)?,
    )
    .length();
    check_cfg("MRBL", pos, len)?;
    let locators = len.saturating_sub(8) / 8;
    for i in 0..locators {
        let at = pos.saturating_add(8).saturating_add(i.saturating_mul(8));
        let lo = cfg.read32(at).ok_or(DiscoverError::BadCapabilityList)?;
        let hi = cfg
            .read32(at.saturating_add(4))
            .ok_or(DiscoverError::BadCapabilityList)?;
        let loc = MrblLocator((u64::from(hi) << 32) | u64::from(lo));
        if loc.block_id() != block_id::MRBL_MCAP || loc.bir() > 5 {
            continue;
        }
        out.push(RegBlock {
            bar: loc.bir(),
            offset: loc.offset_hi48() << 16,
            via: Via::Mrbl,
        });
    }
    Ok(())
}

/// Candidate register blocks: MRBL MCAP blocks first, then CXL device register blocks.
pub fn register_blocks<C: ConfigSpace>(cfg: &C) -> Result<RegBlocks, DiscoverError> {
    let mut blocks = RegBlocks::new();
    mrbl_blocks(cfg, &mut blocks)?;
    register_locator_blocks(cfg, &mut blocks)?;
    if blocks.is_empty() {
        return Err(DiscoverError::NoRegisterBlocks);
    }
    Ok(blocks)
}

/// Location of MMPT registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmptRegs {
    /// Offset of the MMPT capability registers in the BAR.
    pub base: usize,
}

/// What a register block holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockContents {
    /// The mailbox.
    pub mailbox: Location,
    /// MMPT registers next to an MMB.
    pub mmpt: Option<MmptRegs>,
    /// Offset of a CXL Device Status capability (id 0001h) in the BAR, whose first register is
    /// Event Status (CXL r3.1 §8.2.8.3.1), if the block has one.
    pub device_status: Option<usize>,
}

/// One capability header of a capabilities array.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capability {
    /// Capability id.
    pub id: u16,
    /// Version.
    pub version: u8,
    /// Vendor (MCAP only; CXL arrays report [`CXL_VENDOR_ID`]).
    pub vendor: u16,
    /// Offset of the capability registers in the BAR.
    pub offset: usize,
    /// Length of the capability registers.
    pub len: usize,
}

/// Reads the capabilities array of `block` in a BAR of `bar_len` bytes and calls `visit` for
/// every capability whose registers lie inside the BAR.
pub fn capabilities<I: RegIo>(
    io: &I,
    bar_len: u64,
    block: &RegBlock,
    mut visit: impl FnMut(Capability),
) -> Result<CapArrayHeader, DiscoverError> {
    let base = block.offset;
    let out_of_bar = |what, offset: u64| DiscoverError::OutOfRange {
        what,
        offset,
        limit: bar_len,
    };
    if base.saturating_add(CAP_ARRAY_FIRST as u64) > bar_len {
        return Err(out_of_bar("capabilities array", base));
    }
    let base = usize::try_from(base).map_err(|_| out_of_bar("capabilities array", base))?;
    // A 64-bit register read as two dwords: discovery never needs 64-bit accesses.
    let lo = io.read32(base)?;
    let hi = io.read32(base.saturating_add(4))?;
    let array = CapArrayHeader((u64::from(hi) << 32) | u64::from(lo));
    if array.id() != 0 {
        return Err(DiscoverError::BadCapArray { id: array.id() });
    }
    let count = usize::from(array.count()).min(MAX_CAPS);
    for i in 0..count {
        let hdr = base
            .saturating_add(CAP_ARRAY_FIRST)
            .saturating_add(i.saturating_mul(CAP_HEADER_SIZE));
        if (hdr as u64).saturating_add(CAP_HEADER_SIZE as u64) > bar_len {
            return Err(out_of_bar("capability header", hdr as u64));
        }
        let h = CapHeader(io.read32(hdr)?);
        let offset = io.read32(hdr.saturating_add(CAP_HEADER_OFFSET))? as usize;
        let len = io.read32(hdr.saturating_add(CAP_HEADER_LENGTH))? as usize;
        let vendor = match block.via {
            Via::Mrbl => McapVendor(io.read32(hdr.saturating_add(McapVendor::OFFSET))?).vendor(),
            Via::RegisterLocator => CXL_VENDOR_ID,
        };
        let start = base.saturating_add(offset);
        if (start as u64).saturating_add(len as u64) > bar_len || len == 0 {
            // Skip it, do not trust it: the caller reports a missing mailbox if it mattered.
            continue;
        }
        visit(Capability {
            id: h.id(),
            version: h.version(),
            vendor,
            offset: start,
            len,
        });
    }
    Ok(array)
}

/// Finds the mailbox (and MMPT registers) in `block`. `cxl_function` says whether the function
/// is a CXL one (class code or MCAP type), which decides whether the CXL mailbox extensions
/// (background commands) apply to an MMB.
pub fn scan_block<I: RegIo>(
    io: &I,
    bar_len: u64,
    block: &RegBlock,
    cxl_function: bool,
) -> Result<BlockContents, DiscoverError> {
    let mut mmb = None;
    let mut cxl_mbox = None;
    let mut memdev = None;
    let mut mmpt = None;
    let mut device_status = None;
    let array = capabilities(io, bar_len, block, |cap| {
        let pci_sig = block.via == Via::Mrbl && cap.vendor == mcap::VENDOR_PCI_SIG;
        let cxl = cap.vendor == CXL_VENDOR_ID || cap.vendor == 0;
        match cap.id {
            mcap::MMB if pci_sig && cap.len >= MBOX_PAYLOAD => mmb = mmb.or(Some(cap)),
            mcap::MMPT if pci_sig && cap.len >= MMPT_REGS_SIZE => mmpt = mmpt.or(Some(cap)),
            cxl_cap::PRIMARY_MAILBOX if cxl && cap.len >= MBOX_PAYLOAD => {
                cxl_mbox = cxl_mbox.or(Some(cap))
            }
            cxl_cap::MEMDEV_STATUS if cxl && cap.len >= 8 => memdev = memdev.or(Some(cap)),
            cxl_cap::DEVICE_STATUS if cxl && cap.len >= 4 => {
                device_status = device_status.or(Some(cap.offset))
            }
            _ => {}
        }
    })?;
    let cxl_function = cxl_function || (block.via == Via::Mrbl && array.kind() != 0);
    let mailbox = match (mmb, cxl_mbox) {
        (Some(m), _) => Location {
            base: m.offset,
            len: m.len,
            flavor: if cxl_function {
                Flavor::CXL_MMB
            } else {
                Flavor::MMB
            },
            memdev_status: None,
        },
        (None, Some(m)) => Location {
            base: m.offset,
            len: m.len,
            flavor: Flavor::CXL,
            memdev_status: memdev.map(|c| c.offset),
        },
        (None, None) => return Err(DiscoverError::NoMailbox),
    };
    Ok(BlockContents {
        mailbox,
        mmpt: match (mmb, mmpt) {
            (Some(_), Some(c)) => Some(MmptRegs { base: c.offset }),
            _ => None,
        },
        device_status,
    })
}

#[cfg(test)]
#[path = "discover_tests.rs"]
mod tests;
