// SPDX-License-Identifier: GPL-2.0

//! The register model of the function (the BAR0 map and the access rules are at the top of
//! `mod.rs`): the capabilities array, BAR reads and writes, the Mailbox Capabilities, Control
//! and Status registers, the doorbell, and the MMPT registers.

use super::{Device, Personality, DEVICE_STATUS_REGS, MBOX_REGS, MEMDEV_STATUS_REGS, MMPT_REGS};
use std::time::Duration;
use swcci_proto::regs::{
    cxl_cap, mcap, CapArrayHeader, CapHeader, MboxBgStatus, MboxCaps, MboxCmd, MboxCtrl,
    MboxStatus, MemdevStatus, MmptCaps, MmptCtrl, MmptRxNotify, CAP_ARRAY_FIRST, CAP_HEADER_LENGTH,
    CAP_HEADER_OFFSET, CAP_HEADER_SIZE, MBOX_PAYLOAD, MMPT_REGS_SIZE,
};

// Capability headers are served as two qwords (id, version and offset; then length and
// vendor): the fields must sit where that packing puts them.
const _: () = assert!(CAP_HEADER_OFFSET == 4 && CAP_HEADER_LENGTH == 8);

/// One capability header of the capabilities array.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CapEntry {
    /// Vendor id (dword 3).
    pub vendor: u16,
    /// Capability id.
    pub id: u16,
    /// Version.
    pub version: u8,
    /// Offset from the start of BAR0.
    pub offset: u32,
    /// Length of the registers.
    pub len: u32,
}

fn dword(v: u64, off: usize) -> u32 {
    if off & 4 == 0 {
        v as u32
    } else {
        (v >> 32) as u32
    }
}

fn qword(lo: u32, hi: u32) -> u64 {
    u64::from(lo) | (u64::from(hi) << 32)
}

impl Device {
    /// The Mailbox Capabilities register as the function shows it now: the interrupt message
    /// number and the attention mechanism follow the knobs (`knobs.rs`).
    pub fn mbox_caps(&self) -> MboxCaps {
        self.cfg
            .mbox_caps()
            .with_irq_msgnum(self.mbox_vector() as u8)
            .with_attention(self.knobs.attention)
    }

    /// The MMPT Capabilities register as the function shows it now.
    pub fn mmpt_caps(&self) -> MmptCaps {
        self.cfg
            .mmpt_caps()
            .with_rx_vector(self.mmpt_vector() as u8)
    }

    /// The vector of the mailbox interrupts (doorbell, background completion).
    pub fn mbox_vector(&self) -> u16 {
        self.knobs.mbox_vector(self.cfg.msi)
    }

    /// The vector of the MMPT receive interrupt.
    pub fn mmpt_vector(&self) -> u16 {
        self.knobs.mmpt_vector(self.cfg.msi)
    }

    /// The host wrote the MSI Message Control register (`control`): the interrupt message
    /// numbers follow Multiple Message Enable (`knobs.rs`).
    pub fn set_msi_control(&mut self, control: u16) {
        if self.cfg.msi == 0 {
            return;
        }
        let before = self.knobs.msi_enabled;
        self.knobs.set_msi_control(control, self.cfg.msi);
        if self.knobs.msi_enabled != before {
            self.event(format!(
                "MSI: {} message(s) enabled; mailbox vector {}, MMPT vector {}",
                self.knobs.msi_enabled,
                self.mbox_vector(),
                self.mmpt_vector()
            ));
        }
    }

    /// Whether the function is at attention now (MMB attention mechanism advertised and
    /// "attention not needed" clear).
    pub fn at_attention(&self) -> bool {
        self.mbox_caps().attention() && !self.ctrl.attention_not_needed()
    }

    fn bad_access(&mut self, what: &str, bar: u32, off: u64, len: usize) {
        self.stats.inc("bad-access");
        self.event(format!(
            "invalid {len}-byte {what} of BAR{bar} at {off:#x} ignored (only aligned 4- and 8-byte accesses)"
        ));
    }

    /// Reads `data.len()` bytes at `off` of BAR `bar`.
    pub fn bar_read(&mut self, now: Duration, bar: u32, off: u64, data: &mut [u8]) {
        if self.removed {
            data.iter_mut().for_each(|b| *b = 0xff);
            return;
        }
        self.tick(now);
        data.iter_mut().for_each(|b| *b = 0);
        match bar {
            0 => {
                let len = data.len();
                let Some(o) = self.bar0_offset(off, len) else {
                    self.bad_access("read", bar, off, len);
                    self.count_read(now);
                    return;
                };
                let v = self.reg64(now, o & !7);
                let bytes = if len == 8 {
                    v.to_le_bytes().to_vec()
                } else {
                    dword(v, o).to_le_bytes().to_vec()
                };
                data.copy_from_slice(&bytes);
                self.count_read(now);
            }
            2 if self.cfg.msix => {
                // The MSI-X table (QEMU emulates it; stored for completeness); the PBA reads
                // zero: QEMU keeps pending bits of masked vectors itself.
                for (i, b) in data.iter_mut().enumerate() {
                    let o = usize::try_from(off).unwrap_or(usize::MAX).saturating_add(i);
                    *b = self.msix_table.get(o).copied().unwrap_or(0);
                }
            }
            _ => {}
        }
    }

    /// `off` as an index into BAR 0 for an access of `len` bytes, if the registers take such
    /// an access there: 4 or 8 bytes, naturally aligned, inside the BAR.
    fn bar0_offset(&self, off: u64, len: usize) -> Option<usize> {
        usize::try_from(off).ok().filter(|o| {
            (len == 4 || len == 8)
                && o % len == 0
                && o.saturating_add(len) as u64 <= self.cfg.bar0_size()
        })
    }

    /// Writes `data` at `off` of BAR `bar`.
    pub fn bar_write(&mut self, now: Duration, bar: u32, off: u64, data: &[u8]) {
        if self.removed {
            return;
        }
        self.tick(now);
        match bar {
            0 => {
                let len = data.len();
                let Some(o) = self.bar0_offset(off, len) else {
                    self.bad_access("write", bar, off, len);
                    return;
                };
                let mut b = [0u8; 8];
                if let Some(dst) = b.get_mut(..len) {
                    dst.copy_from_slice(data);
                }
                let v = u64::from_le_bytes(b);
                if len == 8 {
                    self.write64(now, o, v);
                } else {
                    self.write32(now, o, v as u32);
                }
            }
            2 if self.cfg.msix => {
                for (i, v) in data.iter().enumerate() {
                    let o = usize::try_from(off).unwrap_or(usize::MAX).saturating_add(i);
                    if let Some(b) = self.msix_table.get_mut(o) {
                        *b = *v;
                    }
                }
            }
            _ => {}
        }
        self.tick(now);
    }

    /// The capability headers of the capabilities array.
    pub fn caps(&self) -> Vec<CapEntry> {
        let mbox_len = (MBOX_PAYLOAD.saturating_add(self.payload_size)) as u32;
        let mmb = CapEntry {
            vendor: mcap::VENDOR_PCI_SIG,
            id: mcap::MMB,
            version: 1,
            offset: MBOX_REGS as u32,
            len: mbox_len,
        };
        let mmpt = CapEntry {
            vendor: mcap::VENDOR_PCI_SIG,
            id: mcap::MMPT,
            version: 1,
            offset: MMPT_REGS as u32,
            len: MMPT_REGS_SIZE as u32,
        };
        let mut caps = match self.cfg.personality {
            Personality::Switch => vec![
                CapEntry {
                    vendor: 0,
                    id: cxl_cap::DEVICE_STATUS,
                    version: 1,
                    offset: DEVICE_STATUS_REGS as u32,
                    len: 0x10,
                },
                CapEntry {
                    vendor: 0,
                    id: cxl_cap::PRIMARY_MAILBOX,
                    version: 1,
                    offset: MBOX_REGS as u32,
                    len: mbox_len,
                },
                CapEntry {
                    vendor: 0,
                    id: cxl_cap::MEMDEV_STATUS,
                    version: 1,
                    offset: MEMDEV_STATUS_REGS as u32,
                    len: 8,
                },
                mmb,
            ],
            Personality::Mmpt => vec![mmb],
        };
        // The MMPT registers, unless the knob hides them.
        if self.knobs.mmpt {
            caps.push(mmpt);
        }
        caps
    }

    fn ctrl_value(&self) -> MboxCtrl {
        self.ctrl
            .with_doorbell(!self.ready_latched || self.doorbell)
    }

    fn status_value(&self, now: Duration) -> MboxStatus {
        let caps = self.mbox_caps();
        self.status
            .with_background(self.bg_op.is_some())
            .with_ready(self.ready(now))
            .with_at_attention(caps.attention() && !self.ctrl.attention_not_needed())
    }

    fn rx_notify(&self) -> MmptRxNotify {
        match self.mmpt.head() {
            Some((ty, len)) => MmptRxNotify::default()
                .with_ready(true)
                .with_msg_type(ty)
                .with_msg_len(u32::try_from(len).unwrap_or(u32::MAX)),
            None => MmptRxNotify::default(),
        }
    }

    /// The 64-bit value at 8-aligned offset `o` of the capabilities array (below the first
    /// capability's registers).
    fn cap_array_reg(&self, o: usize) -> u64 {
        let caps = self.caps();
        let first = CAP_ARRAY_FIRST;
        let caps_end = first.saturating_add(caps.len().saturating_mul(CAP_HEADER_SIZE));
        if o == 0 {
            let kind = match self.cfg.personality {
                Personality::Switch => 2,
                Personality::Mmpt => 0,
            };
            return CapArrayHeader::default()
                .with_id(0)
                .with_version(1)
                .with_kind(kind)
                .with_count(caps.len() as u16)
                .0;
        }
        if (first..caps_end).contains(&o) {
            let i = (o - first) / CAP_HEADER_SIZE;
            let Some(c) = caps.get(i) else { return 0 };
            let at = (o - first) % CAP_HEADER_SIZE;
            let h = CapHeader::default().with_id(c.id).with_version(c.version).0;
            return if at == 0 {
                qword(h, c.offset)
            } else {
                qword(c.len, u32::from(c.vendor))
            };
        }
        0
    }

    /// The 64-bit value at 8-aligned offset `o` of BAR0.
    fn reg64(&self, now: Duration, o: usize) -> u64 {
        if o < DEVICE_STATUS_REGS {
            return self.cap_array_reg(o);
        }
        let switch = self.cfg.personality == Personality::Switch;
        if switch && o == DEVICE_STATUS_REGS {
            return u64::from(self.ev.status().0);
        }
        if switch && o == MEMDEV_STATUS_REGS {
            return MemdevStatus::default().with_mbox_ready(self.ready(now)).0;
        }
        if o == MMPT_REGS {
            return qword(self.mmpt_caps().0, self.mmpt_ctrl.0);
        }
        if o == MMPT_REGS + MmptRxNotify::OFFSET {
            return self.rx_notify().0;
        }
        let Some(m) = o.checked_sub(MBOX_REGS) else {
            return 0;
        };
        match m {
            0 => qword(self.mbox_caps().0, self.ctrl_value().0),
            MboxCmd::OFFSET => self.cmd.0,
            MboxStatus::OFFSET => self.status_value(now).0,
            MboxBgStatus::OFFSET if switch => self.bg.0,
            _ => {
                let Some(p) = m.checked_sub(MBOX_PAYLOAD) else {
                    return 0;
                };
                let mut b = [0u8; 8];
                if let Some(src) = self.payload.get(p..p.saturating_add(8)) {
                    b.copy_from_slice(src);
                }
                u64::from_le_bytes(b)
            }
        }
    }

    fn write64(&mut self, now: Duration, o: usize, v: u64) {
        if o == MBOX_REGS + MboxCmd::OFFSET {
            self.cmd = MboxCmd(v);
            return;
        }
        if let Some(p) = o
            .checked_sub(MBOX_REGS + MBOX_PAYLOAD)
            .filter(|p| *p < self.payload_size)
        {
            if let Some(dst) = self.payload.get_mut(p..p.saturating_add(8)) {
                dst.copy_from_slice(&v.to_le_bytes());
            }
            return;
        }
        self.write32(now, o, v as u32);
        self.write32(now, o.saturating_add(4), (v >> 32) as u32);
    }

    fn write32(&mut self, now: Duration, o: usize, v: u32) {
        if o == MMPT_REGS + MmptCtrl::OFFSET {
            self.mmpt_ctrl = MmptCtrl(v & 1);
            return;
        }
        let Some(m) = o.checked_sub(MBOX_REGS) else {
            return;
        };
        match m {
            MboxCtrl::OFFSET => self.write_ctrl(now, MboxCtrl(v)),
            8 | 12 => {
                self.stats.inc("cmd-write32");
                self.event(format!(
                    "32-bit write of {v:#010x} to the Command register at {o:#x} ignored (64-bit only)"
                ));
            }
            _ => {
                if let Some(p) = m
                    .checked_sub(MBOX_PAYLOAD)
                    .filter(|p| *p < self.payload_size)
                {
                    if let Some(dst) = self.payload.get_mut(p..p.saturating_add(4)) {
                        dst.copy_from_slice(&v.to_le_bytes());
                    }
                }
            }
        }
    }

    fn write_ctrl(&mut self, now: Duration, v: MboxCtrl) {
        // Asleep: the write found "attention not needed" set, so no handshake came first.
        let asleep = self.mbox_caps().attention() && self.ctrl.attention_not_needed();
        self.ctrl = MboxCtrl(v.0 & 0xe);
        if !v.doorbell() {
            return;
        }
        if !self.ready_latched {
            self.stats.inc("doorbell-not-ready");
            self.event("doorbell before the mailbox is ready: ignored".into());
            return;
        }
        if self.doorbell {
            self.stats.inc("doorbell-busy");
            self.event("doorbell while a command is in progress: ignored".into());
            return;
        }
        if asleep {
            self.stats.inc("doorbell-asleep");
            self.event(
                "doorbell rung without the attention handshake (attention not needed was set)"
                    .into(),
            );
        }
        self.submit(now);
    }
}
