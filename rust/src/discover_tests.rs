// SPDX-License-Identifier: GPL-2.0

//! Discovery tests against synthetic configuration spaces and BARs.

extern crate std;

use super::*;
use core::cell::RefCell;
use std::vec;
use std::vec::Vec;

struct Cfg(RefCell<Vec<u32>>);

impl Cfg {
    fn new() -> Self {
        Self(RefCell::new(vec![0; 1024]))
    }
    fn set(&self, off: u16, v: u32) {
        self.0.borrow_mut()[usize::from(off) / 4] = v;
    }
}

impl ConfigSpace for Cfg {
    fn read32(&self, off: u16) -> Option<u32> {
        self.0.borrow().get(usize::from(off) / 4).copied()
    }
}

struct Bar(Vec<u8>);

impl Bar {
    fn new(len: usize) -> Self {
        Self(vec![0; len])
    }
    fn put32(&mut self, off: usize, v: u32) {
        self.0[off..off + 4].copy_from_slice(&v.to_le_bytes());
    }
    /// A capabilities array at `base` with (id, offset from base, len, vendor) entries.
    fn cap_array(&mut self, base: usize, kind: u8, caps: &[(u16, u32, u32, u16)]) {
        self.put32(base, 0x0001_0000 | (u32::from(kind) << 24));
        self.put32(base + 4, caps.len() as u32);
        for (i, (id, off, len, vendor)) in caps.iter().enumerate() {
            let h = base + 0x10 + i * 0x10;
            self.put32(h, u32::from(*id) | 0x0001_0000);
            self.put32(h + 4, *off);
            self.put32(h + 8, *len);
            self.put32(h + 12, u32::from(*vendor));
        }
    }
}

impl RegIo for Bar {
    fn read32(&self, off: usize) -> Result<u32, IoError> {
        let b = self.0.get(off..off + 4).ok_or(IoError::Range)?;
        Ok(u32::from_le_bytes(b.try_into().unwrap()))
    }
    fn read64(&self, off: usize) -> Result<u64, IoError> {
        let b = self.0.get(off..off + 8).ok_or(IoError::Range)?;
        Ok(u64::from_le_bytes(b.try_into().unwrap()))
    }
    fn write32(&self, _: usize, _: u32) -> Result<(), IoError> {
        unreachable!("discovery never writes")
    }
    fn write64(&self, _: usize, _: u64) -> Result<(), IoError> {
        unreachable!("discovery never writes")
    }
}

/// QEMU's switch CCI: Register Locator DVSEC at 0x100, one entry (BAR 0, device block at 0).
fn qemu_cfg() -> Cfg {
    let cfg = Cfg::new();
    cfg.set(0x100, 0x0023 | (1 << 16)); // DVSEC, version 1, last
    cfg.set(0x104, 0x1e98 | (0x14 << 20)); // vendor CXL, length 0x14 (one entry)
    cfg.set(0x108, 8);
    cfg.set(0x10c, 0x0000_0300); // BIR 0, block id 3, offset 0
    cfg.set(0x110, 0);
    cfg
}

fn qemu_bar() -> Bar {
    let mut bar = Bar::new(0x1000);
    bar.cap_array(
        0,
        0,
        &[(1, 0x80, 8, 0), (2, 0x88, 0x820, 0), (0x4000, 0x8a8, 8, 0)],
    );
    bar
}

#[test]
fn qemu_switch_cci_layout() {
    let blocks = register_blocks(&qemu_cfg()).unwrap();
    let list: Vec<_> = blocks.iter().copied().collect();
    assert_eq!(
        list,
        vec![RegBlock {
            bar: 0,
            offset: 0,
            via: Via::RegisterLocator
        }]
    );
    let found = scan_block(&qemu_bar(), 0x1000, &list[0], true).unwrap();
    assert_eq!(
        found,
        BlockContents {
            mailbox: Location {
                base: 0x88,
                len: 0x820,
                flavor: Flavor::CXL,
                memdev_status: Some(0x8a8),
            },
            mmpt: None,
            device_status: Some(0x80),
        }
    );
}

#[test]
fn mrbl_comes_first_and_finds_mmb_and_mmpt() {
    let cfg = qemu_cfg();
    // Chain: DVSEC at 0x100 -> MRBL at 0x140.
    cfg.set(0x100, 0x0023 | (1 << 16) | (0x140 << 20));
    cfg.set(0x140, 0x0036 | (1 << 16));
    cfg.set(0x144, 0x18); // two locators
    cfg.set(0x148, 0x0001_0000 | (0x01 << 8) | 2); // BAR 2, MCAP, offset 0x10000
    cfg.set(0x14c, 0);
    cfg.set(0x150, 0); // empty locator
    cfg.set(0x154, 0);
    let blocks: Vec<_> = register_blocks(&cfg).unwrap().iter().copied().collect();
    assert_eq!(
        blocks,
        vec![
            RegBlock {
                bar: 2,
                offset: 0x10000,
                via: Via::Mrbl
            },
            RegBlock {
                bar: 0,
                offset: 0,
                via: Via::RegisterLocator
            },
        ]
    );
    let mut bar = Bar::new(0x20000);
    bar.cap_array(0x10000, 0, &[(1, 0x100, 0x820, 1), (2, 0x1000, 0x10, 1)]);
    let found = scan_block(&bar, 0x20000, &blocks[0], false).unwrap();
    assert_eq!(found.mailbox.base, 0x10100);
    assert_eq!(found.mailbox.flavor, Flavor::MMB);
    assert_eq!(found.mmpt, Some(MmptRegs { base: 0x11000 }));
    // The same MMB on a CXL function carries the CXL extensions.
    let found = scan_block(&bar, 0x20000, &blocks[0], true).unwrap();
    assert_eq!(found.mailbox.flavor, Flavor::CXL_MMB);
    // ... and so does an MCAP of a CXL type, whatever the class code.
    bar.cap_array(0x10000, 2, &[(1, 0x100, 0x820, 1)]);
    assert_eq!(
        scan_block(&bar, 0x20000, &blocks[0], false)
            .unwrap()
            .mailbox
            .flavor,
        Flavor::CXL_MMB
    );
}

#[test]
fn mcap_ids_are_scoped_by_vendor() {
    let block = RegBlock {
        bar: 0,
        offset: 0,
        via: Via::Mrbl,
    };
    let mut bar = Bar::new(0x1000);
    // Id 1 of a vendor-defined capability is not an MMB.
    bar.cap_array(0, 0, &[(1, 0x100, 0x820, 0x8086)]);
    assert_eq!(
        scan_block(&bar, 0x1000, &block, false),
        Err(DiscoverError::NoMailbox)
    );
}

#[test]
fn no_register_blocks() {
    assert_eq!(
        register_blocks(&Cfg::new()),
        Err(DiscoverError::NoRegisterBlocks)
    );
    // A DVSEC of another vendor.
    let cfg = qemu_cfg();
    cfg.set(0x104, 0x8086 | (0x14 << 20));
    assert_eq!(register_blocks(&cfg), Err(DiscoverError::NoRegisterBlocks));
    // A Register Locator whose only entry is a component block.
    let cfg = qemu_cfg();
    cfg.set(0x10c, 0x0000_0100);
    assert_eq!(register_blocks(&cfg), Err(DiscoverError::NoRegisterBlocks));
}

#[test]
fn capability_list_loop_is_bounded() {
    let cfg = Cfg::new();
    cfg.set(0x100, 0x0001 | (0x100 << 20)); // points to itself
    assert_eq!(register_blocks(&cfg), Err(DiscoverError::BadCapabilityList));
    let cfg = Cfg::new();
    cfg.set(0x100, 0x0001 | (0x200 << 20));
    cfg.set(0x200, 0x0001 | (0x100 << 20)); // two-entry loop
    assert_eq!(register_blocks(&cfg), Err(DiscoverError::BadCapabilityList));
}

#[test]
fn next_pointer_below_0x100_ends_the_list() {
    let cfg = Cfg::new();
    cfg.set(0x100, 0x0001 | (0x0fc << 20));
    assert_eq!(register_blocks(&cfg), Err(DiscoverError::NoRegisterBlocks));
}

#[test]
fn failed_config_read() {
    struct Broken;
    impl ConfigSpace for Broken {
        fn read32(&self, _: u16) -> Option<u32> {
            None
        }
    }
    assert_eq!(
        register_blocks(&Broken),
        Err(DiscoverError::BadCapabilityList)
    );
}

#[test]
fn dvsec_longer_than_config_space() {
    let cfg = Cfg::new();
    cfg.set(0xff0, 0x0023);
    cfg.set(0x100, 0x0001 | (0xff0 << 20));
    cfg.set(0xff4, 0x1e98 | (0x40 << 20));
    cfg.set(0xff8, 8);
    assert!(matches!(
        register_blocks(&cfg),
        Err(DiscoverError::OutOfRange { .. })
    ));
}

#[test]
fn blocks_and_capabilities_outside_the_bar() {
    let cfg = qemu_cfg();
    cfg.set(0x110, 1); // offset 4 GiB
    let blocks: Vec<_> = register_blocks(&cfg).unwrap().iter().copied().collect();
    assert!(matches!(
        scan_block(&qemu_bar(), 0x1000, &blocks[0], true),
        Err(DiscoverError::OutOfRange {
            what: "capabilities array",
            ..
        })
    ));
    // A mailbox capability running past the BAR end is not trusted.
    let mut bar = Bar::new(0x1000);
    bar.cap_array(0, 0, &[(2, 0xf00, 0x820, 0)]);
    let block = RegBlock {
        bar: 0,
        offset: 0,
        via: Via::RegisterLocator,
    };
    assert_eq!(
        scan_block(&bar, 0x1000, &block, true),
        Err(DiscoverError::NoMailbox)
    );
    // A count larger than the BAR can hold: headers past the end are reported.
    let mut bar = Bar::new(0x40);
    bar.put32(0, 0x0001_0000);
    bar.put32(4, 0xffff);
    assert!(matches!(
        scan_block(&bar, 0x40, &block, true),
        Err(DiscoverError::OutOfRange {
            what: "capability header",
            ..
        })
    ));
}

#[test]
fn not_a_capabilities_array() {
    let mut bar = Bar::new(0x100);
    bar.put32(0, 0x1234);
    let block = RegBlock {
        bar: 0,
        offset: 0,
        via: Via::RegisterLocator,
    };
    assert_eq!(
        scan_block(&bar, 0x100, &block, true),
        Err(DiscoverError::BadCapArray { id: 0x1234 })
    );
}
