// SPDX-License-Identifier: GPL-2.0

//! A simulated mailbox device for the host tests of the engine (test builds only).
//!
//! The register map mimics QEMU's switch CCI: a CXL device register block at BAR offset 0 with
//! the mailbox at 0x88 and a Memory Device Status register at 0x8a8. Time is simulated: every
//! [`SimWaiter::wait`] advances the device by one tick (1 ms). Every access is logged so tests
//! can assert access widths. A function reset or a surprise removal can be armed to happen after
//! the N-th register read that follows the next completion ([`SimState::after_reads`]), as the
//! device emulator's `reset-after-reads` and `remove-after-reads` faults do.

extern crate std;

use crate::mailbox::{Event, IoError, RegIo, Wait, WaitError};
use crate::regs::{
    MboxBgStatus, MboxCaps, MboxCmd, MboxCtrl, MboxStatus, MemdevStatus, MBOX_PAYLOAD,
};
use std::boxed::Box;
use std::cell::RefCell;
use std::vec;
use std::vec::Vec;

/// Mailbox offset in the simulated BAR.
pub(crate) const MBOX: usize = 0x88;
/// Memory Device Status offset in the simulated BAR.
pub(crate) const MEMDEV: usize = 0x8a8;
/// Simulated BAR size.
pub(crate) const BAR: usize = 0x1000;

/// One register access.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    R32(usize),
    R64(usize),
    W32(usize, u32),
    W64(usize, u64),
    /// A block copy from the registers: offset, length.
    RBlock(usize, usize),
    /// A block copy to the registers: offset, bytes.
    WBlock(usize, Vec<u8>),
}

/// What happens to the function when an armed fault fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SimFault {
    /// A function reset: registers and payload back to their reset values.
    Reset,
    /// A surprise removal: reads return all ones from then on.
    Remove,
}

/// How the device answers one command.
#[derive(Clone, Debug, Default)]
pub(crate) struct Reply {
    pub(crate) rc: u16,
    pub(crate) vendor: u16,
    pub(crate) out: Vec<u8>,
    /// Report this output length instead of `out.len()`.
    pub(crate) len_override: Option<u32>,
    /// Start a background operation instead of completing (rc becomes 01h).
    pub(crate) background: Option<BgPlan>,
}

impl Reply {
    pub(crate) fn rc(rc: u16) -> Self {
        Self {
            rc,
            ..Self::default()
        }
    }

    pub(crate) fn out(out: &[u8]) -> Self {
        Self {
            out: out.to_vec(),
            ..Self::default()
        }
    }
}

/// A background operation's behaviour.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BgPlan {
    /// Ticks between progress steps.
    pub(crate) ticks_per_step: u32,
    /// Percent added per step.
    pub(crate) step: u8,
    /// Final return code.
    pub(crate) final_rc: u16,
    /// Progress stops here (never completes).
    pub(crate) stuck_at: Option<u8>,
    /// Whether Request Abort Background Operation stops it.
    pub(crate) abortable: bool,
}

impl BgPlan {
    pub(crate) const fn completes(ticks_per_step: u32, final_rc: u16) -> Self {
        Self {
            ticks_per_step,
            step: 10,
            final_rc,
            stuck_at: None,
            abortable: true,
        }
    }
}

struct BgRun {
    opcode: u16,
    percent: u8,
    ticks: u32,
    plan: BgPlan,
}

type Handler = Box<dyn FnMut(u16, u16, &[u8]) -> Reply>;

pub(crate) struct SimState {
    pub(crate) caps: MboxCaps,
    pub(crate) ctrl: MboxCtrl,
    pub(crate) cmd: MboxCmd,
    pub(crate) status: MboxStatus,
    pub(crate) bg: MboxBgStatus,
    pub(crate) memdev: MemdevStatus,
    pub(crate) payload: Vec<u8>,
    handler: Handler,
    /// Ticks between the doorbell and completion (0: completes inside the doorbell write).
    pub(crate) delay_ticks: u32,
    /// The doorbell never clears.
    pub(crate) stuck_doorbell: bool,
    /// Ticks until the ready bits come up (`None`: never).
    pub(crate) ready_in: Option<u32>,
    /// Ticks until the function comes to attention after being asked (`None`: never).
    pub(crate) attention_in: Option<u32>,
    attention_countdown: Option<u32>,
    pending: Option<(u32, Reply)>,
    bg_run: Option<BgRun>,
    pub(crate) log: Vec<Access>,
    /// From this tick on the function is gone: reads return all ones, writes are dropped.
    pub(crate) removed_after: Option<u64>,
    /// Commands the device executed: (opcode, opcode vendor, input).
    pub(crate) executed: Vec<(u16, u16, Vec<u8>)>,
    /// Doorbells rung while the function advertised attention but was not at attention (a
    /// host that skipped the MMB attention handshake, PCIe 6.3 §6.36).
    pub(crate) doorbells_without_attention: u32,
    pub(crate) ticks: u64,
    /// Armed: when the next command completes, `fault` happens after this many more register
    /// reads (0: at the completion). A block read counts one read per dword.
    pub(crate) after_reads: Option<(u32, SimFault)>,
    /// The countdown of an armed fault, running since the completion.
    countdown: Option<(u32, SimFault)>,
    /// The function was surprise-removed (reads return all ones).
    gone: bool,
    /// Register reads so far.
    pub(crate) reads: u64,
}

pub(crate) struct SimDevice(pub(crate) RefCell<SimState>);

impl SimDevice {
    /// A ready device with a payload of `2^log2` bytes answering with `handler`.
    pub(crate) fn new(log2: u8, handler: impl FnMut(u16, u16, &[u8]) -> Reply + 'static) -> Self {
        let size = 1usize << log2.min(20);
        Self(RefCell::new(SimState {
            caps: MboxCaps::default().with_payload_size_log2(log2),
            ctrl: MboxCtrl::default(),
            cmd: MboxCmd::default(),
            status: MboxStatus::default().with_ready(true),
            bg: MboxBgStatus::default(),
            memdev: MemdevStatus::default().with_mbox_ready(true),
            payload: vec![0; size],
            handler: Box::new(handler),
            delay_ticks: 0,
            stuck_doorbell: false,
            ready_in: Some(0),
            attention_in: Some(0),
            attention_countdown: None,
            pending: None,
            bg_run: None,
            log: Vec::new(),
            removed_after: None,
            executed: Vec::new(),
            doorbells_without_attention: 0,
            ticks: 0,
            after_reads: None,
            countdown: None,
            gone: false,
            reads: 0,
        }))
    }

    /// A 2 KiB device (QEMU's size) that answers every command with success and no output.
    pub(crate) fn ok() -> Self {
        Self::new(11, |_, _, _| Reply::default())
    }

    /// Makes the mailbox become ready only after `ticks` ticks (`None`: never).
    pub(crate) fn ready_after(self, ticks: Option<u32>) -> Self {
        self.with(|s| {
            s.ready_in = ticks;
            s.memdev = s.memdev.with_mbox_ready(false);
            s.status = s.status.with_ready(false);
        });
        self
    }

    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut SimState) -> R) -> R {
        f(&mut self.0.borrow_mut())
    }

    /// Advances simulated time by one tick.
    pub(crate) fn tick(&self) {
        let mut s = self.0.borrow_mut();
        s.ticks = s.ticks.saturating_add(1);
        if let Some(n) = s.ready_in {
            if n > 0 {
                s.ready_in = Some(n - 1);
            }
            if s.ready_in == Some(0) {
                s.memdev = s.memdev.with_mbox_ready(true);
                s.status = s.status.with_ready(true);
            }
        }
        if let Some(n) = s.attention_countdown {
            if n == 0 {
                s.status = s.status.with_at_attention(true);
                s.attention_countdown = None;
            } else {
                s.attention_countdown = Some(n - 1);
            }
        }
        if let Some((n, reply)) = s.pending.take() {
            if n <= 1 {
                s.complete(reply);
            } else {
                s.pending = Some((n - 1, reply));
            }
        }
        if let Some(mut run) = s.bg_run.take() {
            run.ticks += 1;
            if run.ticks >= run.plan.ticks_per_step {
                run.ticks = 0;
                let next = run.percent.saturating_add(run.plan.step).min(100);
                run.percent = match run.plan.stuck_at {
                    Some(stuck) if next >= stuck => stuck,
                    _ => next,
                };
            }
            s.bg = MboxBgStatus::default()
                .with_opcode(run.opcode)
                .with_percent(run.percent);
            if run.percent >= 100 {
                s.bg = s.bg.with_return_code(run.plan.final_rc);
                s.status = s.status.with_background(false);
            } else {
                s.bg_run = Some(run);
            }
        }
    }
}

impl SimState {
    fn removed(&self) -> bool {
        self.gone || self.removed_after.is_some_and(|t| self.ticks >= t)
    }

    fn fault(&mut self, fault: SimFault) {
        match fault {
            SimFault::Remove => self.gone = true,
            SimFault::Reset => {
                self.ctrl = MboxCtrl::default();
                self.cmd = MboxCmd::default();
                self.status = MboxStatus::default().with_ready(true);
                self.bg = MboxBgStatus::default();
                self.bg_run = None;
                self.pending = None;
                self.payload.iter_mut().for_each(|b| *b = 0);
            }
        }
    }

    /// Counts `n` register reads for an armed fault, firing it after the last one that is due.
    fn count_reads(&mut self, n: u32) {
        self.reads += u64::from(n);
        if let Some((left, fault)) = self.countdown {
            if n >= left {
                self.countdown = None;
                self.fault(fault);
            } else {
                self.countdown = Some((left - n, fault));
            }
        }
    }

    fn rel(off: usize) -> Option<usize> {
        off.checked_sub(MBOX)
    }

    fn complete(&mut self, reply: Reply) {
        let opcode = self.cmd.opcode();
        let mut rc = reply.rc;
        if let Some(plan) = reply.background {
            if self.bg_run.is_some() {
                rc = 0x06;
            } else {
                rc = 0x01;
                self.bg = MboxBgStatus::default().with_opcode(opcode);
                self.status = self.status.with_background(true);
                self.bg_run = Some(BgRun {
                    opcode,
                    percent: 0,
                    ticks: 0,
                    plan,
                });
            }
        }
        let len = reply.len_override.unwrap_or(reply.out.len() as u32);
        for (d, s) in self.payload.iter_mut().zip(reply.out.iter()) {
            *d = *s;
        }
        self.cmd = self.cmd.with_payload_len(len);
        self.status = self
            .status
            .with_return_code(rc)
            .with_vendor_status(reply.vendor);
        if !self.stuck_doorbell {
            self.ctrl = self.ctrl.with_doorbell(false);
        }
        if let Some((n, fault)) = self.after_reads.take() {
            if n == 0 {
                self.fault(fault);
            } else {
                self.countdown = Some((n, fault));
            }
        }
    }

    fn doorbell(&mut self) {
        let opcode = self.cmd.opcode();
        let vendor = self.cmd.opcode_vendor();
        let len = (self.cmd.payload_len() as usize).min(self.payload.len());
        let input = self.payload[..len].to_vec();
        self.executed.push((opcode, vendor, input.clone()));
        let reply = if opcode == crate::opcode::REQUEST_ABORT_BG {
            match self.bg_run.take() {
                Some(run) if run.plan.abortable => {
                    // Stops after the next tick with "aborted".
                    self.bg_run = Some(BgRun {
                        plan: BgPlan {
                            final_rc: 0x12,
                            step: 100,
                            ticks_per_step: 1,
                            stuck_at: None,
                            abortable: true,
                        },
                        ..run
                    });
                    Reply::default()
                }
                Some(run) => {
                    self.bg_run = Some(run);
                    Reply::rc(0x20)
                }
                None => Reply::default(),
            }
        } else {
            (self.handler)(opcode, vendor, &input)
        };
        if self.delay_ticks == 0 {
            self.complete(reply);
        } else {
            self.pending = Some((self.delay_ticks, reply));
        }
    }
}

impl SimState {
    /// The value a 32-bit read at `off` returns, without counting it.
    fn peek32(&self, off: usize) -> u32 {
        if self.removed() {
            return u32::MAX;
        }
        let payload = MBOX + MBOX_PAYLOAD;
        match SimState::rel(off) {
            Some(0x00) => self.caps.0,
            Some(0x04) => self.ctrl.0,
            _ if off >= payload && off < payload + self.payload.len() => {
                let i = off - payload;
                u32::from_le_bytes(self.payload[i..i + 4].try_into().unwrap())
            }
            _ => 0,
        }
    }
}

impl RegIo for SimDevice {
    fn read32(&self, off: usize) -> Result<u32, IoError> {
        let mut s = self.0.borrow_mut();
        s.log.push(Access::R32(off));
        assert_eq!(off % 4, 0, "unaligned 32-bit read at {off:#x}");
        if off.saturating_add(4) > BAR {
            return Err(IoError::Range);
        }
        let v = s.peek32(off);
        s.count_reads(1);
        Ok(v)
    }

    fn read64(&self, off: usize) -> Result<u64, IoError> {
        let mut s = self.0.borrow_mut();
        s.log.push(Access::R64(off));
        assert_eq!(off % 8, 0, "unaligned 64-bit read at {off:#x}");
        if off.saturating_add(8) > BAR {
            return Err(IoError::Range);
        }
        let v = if s.removed() {
            u64::MAX
        } else if off == MEMDEV {
            s.memdev.0
        } else {
            match SimState::rel(off) {
                Some(0x08) => s.cmd.0,
                Some(0x10) => s.status.0,
                Some(0x18) => s.bg.0,
                _ => 0,
            }
        };
        s.count_reads(1);
        Ok(v)
    }

    fn read_block(&self, off: usize, out: &mut [u8]) -> Result<(), IoError> {
        let mut s = self.0.borrow_mut();
        s.log.push(Access::RBlock(off, out.len()));
        assert_eq!(off % 4, 0, "unaligned block read at {off:#x}");
        if off.saturating_add(out.len().next_multiple_of(4)) > BAR {
            return Err(IoError::Range);
        }
        // Dword by dword, so that an armed fault can fire in the middle of the block.
        for (i, chunk) in out.chunks_mut(4).enumerate() {
            let word = s.peek32(off + 4 * i).to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
            s.count_reads(1);
        }
        Ok(())
    }

    fn write_block(&self, off: usize, data: &[u8]) -> Result<(), IoError> {
        let mut s = self.0.borrow_mut();
        s.log.push(Access::WBlock(off, data.to_vec()));
        assert_eq!(off % 4, 0, "unaligned block write at {off:#x}");
        if off.saturating_add(data.len().next_multiple_of(4)) > BAR {
            return Err(IoError::Range);
        }
        if s.removed() {
            return Ok(());
        }
        let payload = MBOX + MBOX_PAYLOAD;
        let end = payload + s.payload.len();
        let padded = data.len().next_multiple_of(4);
        assert!(
            off >= payload && off + padded <= end,
            "block write outside the payload"
        );
        let i = off - payload;
        s.payload[i..i + padded].fill(0);
        s.payload[i..i + data.len()].copy_from_slice(data);
        Ok(())
    }

    fn write32(&self, off: usize, val: u32) -> Result<(), IoError> {
        let mut s = self.0.borrow_mut();
        s.log.push(Access::W32(off, val));
        assert_eq!(off % 4, 0, "unaligned 32-bit write at {off:#x}");
        if off.saturating_add(4) > BAR {
            return Err(IoError::Range);
        }
        if s.removed() {
            return Ok(());
        }
        let payload = MBOX + MBOX_PAYLOAD;
        match SimState::rel(off) {
            Some(0x04) => {
                let new = MboxCtrl(val);
                let was_busy = s.ctrl.doorbell();
                // The doorbell bit is set-only for the host.
                s.ctrl = new.with_doorbell(was_busy || new.doorbell());
                if new.attention_not_needed() {
                    s.status = s.status.with_at_attention(false);
                    s.attention_countdown = None;
                } else if !s.status.at_attention() && s.attention_countdown.is_none() {
                    s.attention_countdown = s.attention_in;
                    if s.attention_in == Some(0) {
                        s.status = s.status.with_at_attention(true);
                        s.attention_countdown = None;
                    }
                }
                if new.doorbell() && !was_busy {
                    if s.caps.attention() && !s.status.at_attention() {
                        s.doorbells_without_attention += 1;
                    }
                    s.doorbell();
                }
            }
            _ if off >= payload && off < payload + s.payload.len() => {
                let i = off - payload;
                s.payload[i..i + 4].copy_from_slice(&val.to_le_bytes());
            }
            _ => {}
        }
        Ok(())
    }

    fn write64(&self, off: usize, val: u64) -> Result<(), IoError> {
        let mut s = self.0.borrow_mut();
        s.log.push(Access::W64(off, val));
        assert_eq!(off % 8, 0, "unaligned 64-bit write at {off:#x}");
        if off.saturating_add(8) > BAR {
            return Err(IoError::Range);
        }
        if SimState::rel(off) == Some(0x08) {
            s.cmd = MboxCmd(val);
        }
        Ok(())
    }
}

/// A waiter on simulated time: every wait is one 1 ms tick of the device.
pub(crate) struct SimWaiter<'a> {
    dev: &'a SimDevice,
    budget_us: u64,
    elapsed_us: u64,
    /// Waits for [`Event::Background`] end with `Interrupted` after this many waits.
    pub(crate) interrupt_bg_after: Option<u32>,
    /// Waits for [`Event::Background`] end with `Killed` after this many waits.
    pub(crate) kill_bg_after: Option<u32>,
    /// Every wait ends with `Gone` after this many waits.
    pub(crate) gone_after: Option<u32>,
    pub(crate) waits: u32,
    /// (event, budget) of every wait begun.
    pub(crate) begun: Vec<(Event, u64)>,
}

impl<'a> SimWaiter<'a> {
    pub(crate) fn new(dev: &'a SimDevice) -> Self {
        Self {
            dev,
            budget_us: 0,
            elapsed_us: 0,
            interrupt_bg_after: None,
            kill_bg_after: None,
            gone_after: None,
            waits: 0,
            begun: Vec::new(),
        }
    }
}

impl Wait for SimWaiter<'_> {
    fn begin(&mut self, event: Event, timeout_us: u64) {
        self.begun.push((event, timeout_us));
        self.budget_us = timeout_us;
        self.elapsed_us = 0;
    }

    fn wait(&mut self, event: Event) -> Result<(), WaitError> {
        self.waits += 1;
        if self.gone_after.is_some_and(|n| self.waits > n) {
            return Err(WaitError::Gone);
        }
        if event == Event::Background && self.interrupt_bg_after.is_some_and(|n| self.waits > n) {
            return Err(WaitError::Interrupted);
        }
        if event == Event::Background && self.kill_bg_after.is_some_and(|n| self.waits > n) {
            return Err(WaitError::Killed);
        }
        if self.elapsed_us >= self.budget_us {
            return Err(WaitError::Timeout);
        }
        self.elapsed_us += 1000;
        self.dev.tick();
        Ok(())
    }
}
