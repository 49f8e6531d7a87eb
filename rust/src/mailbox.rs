// SPDX-License-Identifier: GPL-2.0

//! The mailbox engine: one command at a time through a CXL mailbox or a PCIe MMB.
//!
//! The engine is generic over small traits the caller implements:
//! - [`RegIo`]: 32- and 64-bit register reads and writes at byte offsets of the BAR that holds
//!   the mailbox, and block copies of the payload. The engine never issues 8- or 16-bit
//!   accesses itself and always writes the Command register with one 64-bit store.
//! - [`Mapping`]: the BAR mapping, which may be revoked (unbind). The engine enters it once per
//!   phase that does not sleep (submission; each completion check; readout) and never holds it
//!   across a [`Wait::wait`]. Every [`RegIo`] is a [`Mapping`] that is always there.
//! - [`Wait`]: how time passes while the engine waits for the device (spin, sleep, interrupt),
//!   and when a wait gives up (deadline, signal, device removal).
//!
//! Lock rules in types: the engine holds no lock, callers serialise commands. Everything that
//! submits a command or changes the mailbox's settings takes `&mut` [`Mailbox`], which is
//! neither `Copy` nor `Clone` (the kernel keeps it inside its device mutex, so `&mut` is only
//! reachable through the guard). What may run without the lock, waiting for a background
//! operation by reading its status register, is a [`BgWatcher`], a small `Copy` value taken
//! from the mailbox.
//!
//! Protocol (CXL r3.1 §8.2.8.4, PCIe 6.3 §6.36):
//! 1. Refuse input longer than the payload registers before touching the device.
//! 2. MMB with the attention mechanism: ask for attention and wait for it.
//! 3. Doorbell set: the mailbox is busy, refuse.
//! 4. Write the payload, then the Command register (one 64-bit store), then the doorbell.
//! 5. Wait for the doorbell to clear (default 2 s).
//! 6. Read the return code. For 01h (background started) wait for the Background Command Status
//!    to reach 100 % and report its return code; when that wait ends early, optionally send
//!    0005h (Request Abort Background Operation) and report what became of the operation.
//! 7. Read the output length from the Command register. A length above the payload size is a
//!    device error, never trusted; otherwise copy at most the caller's buffer.
//! 8. Check that the device is still the one that ran the command: the Command register reads
//!    the same again (opcode and length), Control is not all ones and its doorbell is still
//!    clear. A register that reads all ones means the function is gone
//!    ([`IoError::Gone`], ENXIO); any other change means it was reset or taken over during the
//!    command ([`MboxError::Changed`], EIO). So a command that races a reset or a removal never
//!    ends in success with wrong data.

use crate::opcode;
use crate::rc::{Errno, ReturnCode};
use crate::regs::{
    MboxBgStatus, MboxCaps, MboxCmd, MboxCtrl, MboxStatus, MemdevStatus, MBOX_PAYLOAD,
    MBOX_PAYLOAD_MAX_LOG2, MBOX_PAYLOAD_MIN_LOG2,
};
use core::fmt;

/// A failed register access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoError {
    /// The device is gone (unbound, removed or its mapping revoked).
    Gone,
    /// The offset is outside the mapped register space.
    Range,
}

/// Register access to the BAR that holds the mailbox. Offsets are bytes from the BAR start.
pub trait RegIo {
    /// Reads a 32-bit register.
    fn read32(&self, off: usize) -> Result<u32, IoError>;
    /// Reads a 64-bit register.
    fn read64(&self, off: usize) -> Result<u64, IoError>;
    /// Writes a 32-bit register.
    fn write32(&self, off: usize, val: u32) -> Result<(), IoError>;
    /// Writes a 64-bit register with a single 64-bit store.
    fn write64(&self, off: usize, val: u64) -> Result<(), IoError>;

    /// Copies `data` to the registers at `off` (4-byte aligned) with 32- or 64-bit stores; a
    /// last partial dword is completed with zero bytes. The default stores one dword at a time;
    /// implementations copy the block at once (the kernel with `memcpy_toio`).
    fn write_block(&self, off: usize, data: &[u8]) -> Result<(), IoError> {
        write_dwords(self, off, data)
    }

    /// Fills `out` from the registers at `off` (4-byte aligned) with 32- or 64-bit loads (a
    /// last partial dword is read whole). The default loads one dword at a time.
    fn read_block(&self, off: usize, out: &mut [u8]) -> Result<(), IoError> {
        read_dwords(self, off, out)
    }
}

/// Writes `data` at `off` with 32-bit stores; the last partial dword is zero-padded.
pub fn write_dwords<R: RegIo + ?Sized>(r: &R, off: usize, data: &[u8]) -> Result<(), IoError> {
    let mut pos = off;
    for chunk in data.chunks(4) {
        let mut word = [0u8; 4];
        for (d, s) in word.iter_mut().zip(chunk) {
            *d = *s;
        }
        r.write32(pos, u32::from_le_bytes(word))?;
        pos = pos.saturating_add(4);
    }
    Ok(())
}

/// Fills `out` from `off` with 32-bit loads.
pub fn read_dwords<R: RegIo + ?Sized>(r: &R, off: usize, out: &mut [u8]) -> Result<(), IoError> {
    let mut pos = off;
    for chunk in out.chunks_mut(4) {
        let word = r.read32(pos)?.to_le_bytes();
        for (d, s) in chunk.iter_mut().zip(word.iter()) {
            *d = *s;
        }
        pos = pos.saturating_add(4);
    }
    Ok(())
}

/// The mapping of the BAR that holds the mailbox, which may be revoked (the kernel revokes it
/// at unbind).
pub trait Mapping {
    /// Register access while the mapping is held.
    type Regs<'a>: RegIo;

    /// Runs `f` with the mapping held, or fails with [`IoError::Gone`] once it is revoked. `f`
    /// must not sleep: the kernel holds the RCU read lock meanwhile.
    fn with<R>(&self, f: impl FnOnce(&Self::Regs<'_>) -> R) -> Result<R, IoError>;
}

/// Plain register access is a mapping that never goes away.
impl<T: RegIo> Mapping for T {
    type Regs<'a> = T;

    fn with<R>(&self, f: impl FnOnce(&T) -> R) -> Result<R, IoError> {
        Ok(f(self))
    }
}

/// What the engine is waiting for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// The mailbox to become ready (once, at initialisation).
    Ready,
    /// The function to be at attention (MMB attention mechanism).
    Attention,
    /// The doorbell to clear: the device finished the command.
    Doorbell,
    /// A background operation to reach 100 %.
    Background,
    /// A background operation to stop after an abort request. Never interruptible.
    AbortGrace,
    /// An MMPT message to arrive (waited for by callers, not by the engine).
    Message,
}

/// Why a wait ended without the condition being met.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitError {
    /// The time budget of the wait is spent.
    Timeout,
    /// A signal that does not kill the caller (a handled signal, a stop, a ptrace attach, the
    /// freezer): the wait is resumed after it ([`Errno::RestartSys`]). Only waits a caller asked
    /// to be interruptible ([`Event::Background`], [`Event::Message`]) end so.
    Interrupted,
    /// A fatal signal: the caller is being killed ([`Errno::Intr`]). Only interruptible waits
    /// end so.
    Killed,
    /// The device is going away.
    Gone,
}

/// How the engine lets time pass.
pub trait Wait {
    /// Starts a wait for `event` with a budget of `timeout_us` microseconds.
    fn begin(&mut self, event: Event, timeout_us: u64);
    /// Lets time pass before the engine checks the condition again, or ends the wait.
    fn wait(&mut self, event: Event) -> Result<(), WaitError>;
}

/// Time budgets of the engine's waits, in microseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// Doorbell completion of every command (Linux uses 2 s).
    pub doorbell_us: u64,
    /// Mailbox readiness at initialisation when the capability gives no ready time.
    pub ready_us: u64,
    /// MMB attention (PCIe: 50 ms).
    pub attention_us: u64,
    /// How long a background operation may take to stop after an accepted abort request.
    pub abort_grace_us: u64,
}

impl Timeouts {
    /// The defaults: 2 s doorbell, 2 s ready, 50 ms attention, 2 s abort grace.
    pub const DEFAULT: Self = Self {
        doorbell_us: 2_000_000,
        ready_us: 2_000_000,
        attention_us: 50_000,
        abort_grace_us: 2_000_000,
    };
}

impl Default for Timeouts {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// What to do with a background operation (return code 01h).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BgPolicy {
    /// How long to wait for completion, in microseconds.
    pub timeout_us: u64,
    /// Send Request Abort Background Operation (0005h) when the wait times out.
    pub abort_on_timeout: bool,
    /// Send Request Abort Background Operation (0005h) when the caller is killed (a fatal
    /// signal, [`WaitError::Killed`]). Other signals never abort: the wait resumes after them.
    pub abort_on_interrupt: bool,
}

impl BgPolicy {
    /// 60 s, abort on timeout, keep running when interrupted.
    pub const DEFAULT: Self = Self {
        timeout_us: 60_000_000,
        abort_on_timeout: true,
        abort_on_interrupt: false,
    };
}

impl Default for BgPolicy {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// One mailbox command.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// Opcode: command set << 8 | command.
    pub opcode: u16,
    /// MMB opcode vendor id (0000h for CXL commands, 0001h for PCI-SIG commands).
    pub opcode_vendor: u16,
    /// Input payload.
    pub input: &'a [u8],
    /// Background operation handling.
    pub bg: BgPolicy,
    /// Read the Background Command Status register right before the doorbell and hand it to
    /// `before_send` ([`Mailbox::start_with`]): a caller that tracks a background operation
    /// learns whether it ended before this command could start another one.
    pub watch_bg: bool,
}

impl<'a> Request<'a> {
    /// A CXL command with the default background policy.
    pub const fn new(opcode: u16, input: &'a [u8]) -> Self {
        Self {
            opcode,
            opcode_vendor: 0,
            input,
            bg: BgPolicy::DEFAULT,
            watch_bg: false,
        }
    }
}

/// A completed background operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BgCompletion {
    /// Opcode of the operation.
    pub opcode: u16,
    /// Vendor extended status reported with the final return code.
    pub vendor_status: u16,
}

/// A command the device completed (whatever its return code).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Response {
    /// The return code (for a background command, the final one).
    pub rc: ReturnCode,
    /// Vendor extended status.
    pub vendor_status: u16,
    /// Bytes copied into the caller's output buffer.
    pub out_len: usize,
    /// Output length the device reported (at most the payload size).
    pub device_len: usize,
    /// Set when the command ran in the background.
    pub background: Option<BgCompletion>,
}

/// What became of a background operation whose wait ended early.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AbortOutcome {
    /// No abort was requested: the operation is still running.
    NotRequested,
    /// The device stopped the operation; its final return code (usually 12h aborted).
    Stopped(ReturnCode),
    /// The device accepted the abort request but the operation did not stop within the grace
    /// period: it is still running.
    StillRunning,
    /// The device does not support aborting it (20h): it is still running.
    Unsupported,
    /// The abort request failed with this return code: the operation is still running.
    Refused(ReturnCode),
    /// The abort request itself could not be completed.
    Failed,
}

/// Why a background wait ended without the operation finishing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BgWaitError {
    /// Why the wait ended.
    pub cause: WaitError,
    /// Last progress seen.
    pub percent: u8,
}

/// Why the engine gave up on a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MboxError {
    /// The input is longer than the payload registers; the device was not touched.
    InputTooLarge {
        /// Input length.
        len: usize,
        /// Payload size.
        max: usize,
    },
    /// The doorbell was already set: another agent or an earlier timed-out command owns it.
    Busy,
    /// The doorbell did not clear in time; the command's fate is unknown.
    Timeout,
    /// The wait was interrupted while the device held the doorbell; its fate is unknown.
    Interrupted,
    /// The mailbox never became ready.
    NotReady,
    /// The function never came to attention.
    NoAttention,
    /// A register access failed.
    Io(IoError),
    /// The device's registers changed under the command (a function reset, or another agent
    /// took the mailbox): its output cannot be trusted.
    Changed,
    /// The device reported an output length above the payload size.
    BadOutputLength {
        /// Reported length.
        claimed: usize,
        /// Payload size.
        max: usize,
    },
    /// The capability register gives an invalid payload size (log2 value).
    BadPayloadSize(u8),
    /// A background operation ended, but its result cannot be known
    /// ([`crate::bgtrack::BgOutcome`]): another caller's background command was accepted
    /// before it was read (`superseded`, ENODATA), or the operation vanished from the
    /// Background Command Status register before it completed (a function reset, EIO).
    BackgroundLost {
        /// Its opcode.
        opcode: u16,
        /// Superseded (true) or vanished (false).
        superseded: bool,
    },
    /// A background operation did not complete while we waited.
    Background {
        /// Its opcode.
        opcode: u16,
        /// Why the wait ended.
        cause: WaitError,
        /// Last progress seen.
        percent: u8,
        /// What happened after.
        abort: AbortOutcome,
    },
}

impl MboxError {
    /// The errno a caller gets for this error.
    pub const fn errno(&self) -> Errno {
        match self {
            Self::InputTooLarge { .. } => Errno::Inval,
            Self::Busy => Errno::Busy,
            Self::Timeout => Errno::TimedOut,
            Self::Interrupted => Errno::Intr,
            Self::NotReady | Self::NoAttention => Errno::TimedOut,
            Self::Io(IoError::Gone) => Errno::Nxio,
            Self::Io(IoError::Range) => Errno::Io,
            Self::BadOutputLength { .. } | Self::BadPayloadSize(_) | Self::Changed => Errno::Io,
            Self::BackgroundLost { superseded, .. } => {
                if *superseded {
                    Errno::NoData
                } else {
                    Errno::Io
                }
            }
            Self::Background { cause, .. } => match cause {
                WaitError::Timeout => Errno::TimedOut,
                WaitError::Interrupted => Errno::RestartSys,
                WaitError::Killed => Errno::Intr,
                WaitError::Gone => Errno::Nxio,
            },
        }
    }
}

impl From<IoError> for MboxError {
    fn from(e: IoError) -> Self {
        Self::Io(e)
    }
}

impl fmt::Display for MboxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InputTooLarge { len, max } => {
                write!(f, "input of {len} bytes exceeds the {max}-byte payload")
            }
            Self::Busy => f.write_str("mailbox busy (doorbell already set)"),
            Self::Timeout => f.write_str("timed out waiting for the doorbell to clear"),
            Self::Interrupted => f.write_str("interrupted while the command was in flight"),
            Self::NotReady => f.write_str("mailbox never became ready"),
            Self::NoAttention => f.write_str("function never came to attention"),
            Self::Io(IoError::Gone) => f.write_str("device gone"),
            Self::Io(IoError::Range) => f.write_str("register access outside the BAR"),
            Self::Changed => f.write_str(
                "device state changed under the command (reset or another agent): output dropped",
            ),
            Self::BadOutputLength { claimed, max } => write!(
                f,
                "device claims {claimed} output bytes, more than the {max}-byte payload"
            ),
            Self::BadPayloadSize(n) => write!(f, "invalid payload size 2^{n}"),
            Self::BackgroundLost {
                opcode,
                superseded: true,
            } => write!(
                f,
                "background command {opcode:04x}h ended, but another background command was accepted before its result could be read"
            ),
            Self::BackgroundLost {
                opcode,
                superseded: false,
            } => write!(
                f,
                "background command {opcode:04x}h vanished before it completed (function reset?)"
            ),
            Self::Background {
                opcode,
                cause,
                percent,
                abort,
            } => {
                let why = match cause {
                    WaitError::Timeout => "timed out",
                    WaitError::Interrupted => "interrupted",
                    WaitError::Killed => "killed",
                    WaitError::Gone => "device gone",
                };
                write!(f, "background command {opcode:04x}h {why} at {percent}%")?;
                match abort {
                    AbortOutcome::NotRequested => f.write_str(", still running"),
                    AbortOutcome::Stopped(rc) => write!(f, ", aborted: {rc}"),
                    AbortOutcome::StillRunning => f.write_str(", abort accepted but still running"),
                    AbortOutcome::Unsupported => {
                        f.write_str(", abort not supported, still running")
                    }
                    AbortOutcome::Refused(rc) => write!(f, ", abort refused: {rc}"),
                    AbortOutcome::Failed => f.write_str(", abort request failed"),
                }
            }
        }
    }
}

/// Protocol variant of a mailbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flavor {
    /// CXL extensions: background commands and the background status register.
    pub cxl: bool,
    /// Found as a PCIe MMB: READY bit, attention mechanism, opcode vendor ids.
    pub mmb: bool,
}

impl Flavor {
    /// A CXL mailbox found through the CXL Register Locator.
    pub const CXL: Self = Self {
        cxl: true,
        mmb: false,
    };
    /// A PCIe MMB of a CXL function: both sets of rules.
    pub const CXL_MMB: Self = Self {
        cxl: true,
        mmb: true,
    };
    /// A plain PCIe MMB.
    pub const MMB: Self = Self {
        cxl: false,
        mmb: true,
    };
}

/// Where the mailbox is and what it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Location {
    /// Offset of the mailbox registers in the BAR.
    pub base: usize,
    /// Length of the mailbox register area (capability length), 0 if unknown.
    pub len: usize,
    /// Protocol variant.
    pub flavor: Flavor,
    /// Offset of a CXL Memory Device Status register whose "mailbox ready" bit to wait for.
    pub memdev_status: Option<usize>,
}

/// An initialised mailbox: the state that may only change under the caller's lock.
///
/// Deliberately neither `Copy` nor `Clone`: submitting a command or changing the interrupt
/// enables takes `&mut self`, so a caller that keeps the mailbox behind a lock can only do so
/// through the lock's guard. [`Mailbox::bg_watcher`] gives the read-only part that may be used
/// without it.
#[derive(Debug)]
pub struct Mailbox {
    base: usize,
    payload_size: usize,
    caps: MboxCaps,
    flavor: Flavor,
    ctrl: MboxCtrl,
    timeouts: Timeouts,
}

/// Watches a background operation without the mailbox lock: reads the Background Command
/// Status register only, never submits a command.
#[derive(Clone, Copy, Debug)]
pub struct BgWatcher {
    base: usize,
}

/// The completion of background operation `opcode` shown by `bg`.
fn bg_response(bg: MboxBgStatus, opcode: u16) -> Response {
    Response {
        rc: ReturnCode::from_raw(bg.return_code()),
        vendor_status: bg.vendor_status(),
        out_len: 0,
        device_len: 0,
        background: Some(BgCompletion {
            opcode,
            vendor_status: bg.vendor_status(),
        }),
    }
}

impl BgWatcher {
    /// Reads the Background Command Status register. All ones: the function is gone.
    pub fn status<M: Mapping>(&self, io: &M) -> Result<MboxBgStatus, IoError> {
        let v = io.with(|r| r.read64(MboxBgStatus::at(self.base)))??;
        if v == u64::MAX {
            return Err(IoError::Gone);
        }
        Ok(MboxBgStatus(v))
    }

    /// Whether `bg` shows operation `opcode` finished.
    const fn done(bg: MboxBgStatus, opcode: u16) -> bool {
        bg.opcode() == opcode && bg.percent() >= 100
    }

    /// The completion of background operation `opcode`, if the register shows it finished.
    pub fn completion<M: Mapping>(&self, io: &M, opcode: u16) -> Result<Option<Response>, IoError> {
        let bg = self.status(io)?;
        Ok(Self::done(bg, opcode).then(|| bg_response(bg, opcode)))
    }

    /// Waits up to `timeout_us` for background operation `opcode` to finish. Only the status
    /// register is read: no command is submitted, so callers need not hold their mailbox lock.
    /// `captured` is asked on every round for a completion seen elsewhere (a caller that starts
    /// the next background operation records the previous one's result first, because the
    /// register then moves on).
    pub fn wait<M: Mapping, W: Wait>(
        &self,
        io: &M,
        w: &mut W,
        opcode: u16,
        timeout_us: u64,
        mut captured: impl FnMut() -> Option<Response>,
    ) -> Result<Response, BgWaitError> {
        let io_err = |e: IoError| BgWaitError {
            cause: match e {
                IoError::Gone => WaitError::Gone,
                IoError::Range => WaitError::Timeout,
            },
            percent: 0,
        };
        let mut percent = 0;
        let mut check = |percent: &mut u8| -> Result<Option<Response>, BgWaitError> {
            if let Some(r) = captured() {
                return Ok(Some(r));
            }
            let bg = self.status(io).map_err(io_err)?;
            if bg.opcode() == opcode {
                *percent = bg.percent().min(100);
            }
            Ok(Self::done(bg, opcode).then(|| bg_response(bg, opcode)))
        };
        if let Some(r) = check(&mut percent)? {
            return Ok(r);
        }
        w.begin(Event::Background, timeout_us);
        loop {
            match w.wait(Event::Background) {
                Ok(()) => {
                    if let Some(r) = check(&mut percent)? {
                        return Ok(r);
                    }
                }
                Err(cause) => {
                    if cause != WaitError::Gone {
                        if let Some(r) = check(&mut percent)? {
                            return Ok(r);
                        }
                    }
                    return Err(BgWaitError { cause, percent });
                }
            }
        }
    }
}

/// Whether a register read all ones: the function no longer answers.
const fn all_ones64(v: u64) -> bool {
    v == u64::MAX
}

impl Mailbox {
    /// Initialises the mailbox at `loc`: checks the payload size, waits for readiness and for a
    /// doorbell left set by an earlier owner (e.g. across kexec) to clear.
    pub fn init<M: Mapping, W: Wait>(
        io: &M,
        w: &mut W,
        loc: Location,
        timeouts: Timeouts,
    ) -> Result<Self, MboxError> {
        let caps = MboxCaps(io.with(|r| r.read32(MboxCaps::at(loc.base)))??);
        let log2 = caps.payload_size_log2();
        if !(MBOX_PAYLOAD_MIN_LOG2..=MBOX_PAYLOAD_MAX_LOG2).contains(&log2) {
            return Err(MboxError::BadPayloadSize(log2));
        }
        let payload_size = 1usize << log2;
        if loc.len != 0 && MBOX_PAYLOAD.saturating_add(payload_size) > loc.len {
            // The capability is shorter than its own payload registers.
            return Err(MboxError::BadPayloadSize(log2));
        }

        let mbox = Self {
            base: loc.base,
            payload_size,
            caps,
            flavor: loc.flavor,
            ctrl: MboxCtrl::default(),
            timeouts,
        };

        let ready_us = match caps.ready_time() {
            0 => timeouts.ready_us,
            s => u64::from(s).saturating_mul(1_000_000),
        };
        let not_ready = |e| match e {
            MboxError::Timeout => MboxError::NotReady,
            e => e,
        };
        if loc.flavor.mmb {
            mbox.wait_for(io, w, Event::Ready, ready_us, |r| {
                Ok(MboxStatus(r.read64(MboxStatus::at(loc.base))?).ready())
            })
            .map_err(not_ready)?;
        } else if let Some(ms) = loc.memdev_status {
            mbox.wait_for(io, w, Event::Ready, ready_us, |r| {
                Ok(MemdevStatus(r.read64(ms)?).mbox_ready())
            })
            .map_err(not_ready)?;
        }

        mbox.wait_doorbell(io, w)?;
        Ok(mbox)
    }

    /// Payload size in bytes.
    pub const fn payload_size(&self) -> usize {
        self.payload_size
    }

    /// The Capabilities register as read at initialisation.
    pub const fn caps(&self) -> MboxCaps {
        self.caps
    }

    /// Reads the Capabilities register again and keeps it: its interrupt message number
    /// follows the MSI vectors enabled (CXL r3.1 §8.2.8.4.3), so a driver reads it after
    /// allocating them. All ones: the function is gone.
    pub fn reread_caps<M: Mapping>(&mut self, io: &M) -> Result<MboxCaps, IoError> {
        let v = io.with(|r| r.read32(MboxCaps::at(self.base)))??;
        if v == u32::MAX {
            return Err(IoError::Gone);
        }
        self.caps = MboxCaps(v);
        Ok(self.caps)
    }

    /// Protocol variant.
    pub const fn flavor(&self) -> Flavor {
        self.flavor
    }

    /// Offset of the mailbox registers in the BAR.
    pub const fn base(&self) -> usize {
        self.base
    }

    /// The read-only watcher of background operations, for use without the mailbox lock.
    pub const fn bg_watcher(&self) -> BgWatcher {
        BgWatcher { base: self.base }
    }

    /// Enables or disables the doorbell and background completion interrupts. Bits the
    /// capability register does not advertise stay clear.
    pub fn set_interrupts<M: Mapping>(
        &mut self,
        io: &M,
        doorbell: bool,
        background: bool,
    ) -> Result<(), IoError> {
        self.ctrl = MboxCtrl::default()
            .with_doorbell_irq(doorbell && self.caps.doorbell_irq())
            .with_background_irq(background && self.caps.background_irq() && self.flavor.cxl)
            .with_attention_not_needed(self.caps.attention() && self.flavor.mmb);
        io.with(|r| r.write32(MboxCtrl::at(self.base), self.ctrl.0))?
    }

    /// Reads the Background Command Status register (see [`BgWatcher::status`]).
    pub fn bg_status<M: Mapping>(&self, io: &M) -> Result<MboxBgStatus, IoError> {
        self.bg_watcher().status(io)
    }

    /// Whether the doorbell is set right now. A Control register that reads all ones (its
    /// reserved bits included) means the function no longer answers (surprise removal, a
    /// dead link): that is [`IoError::Gone`], not a busy mailbox.
    pub fn doorbell_busy<M: Mapping>(&self, io: &M) -> Result<bool, IoError> {
        io.with(|r| self.doorbell_set(r))?
    }

    /// [`Self::doorbell_busy`] inside the mapping.
    fn doorbell_set<R: RegIo>(&self, r: &R) -> Result<bool, IoError> {
        let raw = r.read32(MboxCtrl::at(self.base))?;
        if raw == u32::MAX {
            return Err(IoError::Gone);
        }
        Ok(MboxCtrl(raw).doorbell())
    }

    /// Waits until `cond` holds, for at most `timeout_us`. Each check enters the mapping on
    /// its own; nothing is held while the waiter sleeps.
    fn wait_for<M: Mapping, W: Wait>(
        &self,
        io: &M,
        w: &mut W,
        event: Event,
        timeout_us: u64,
        cond: impl Fn(&M::Regs<'_>) -> Result<bool, IoError>,
    ) -> Result<(), MboxError> {
        let check = || -> Result<bool, IoError> { io.with(|r| cond(r))? };
        if check()? {
            return Ok(());
        }
        w.begin(event, timeout_us);
        loop {
            match w.wait(event) {
                Ok(()) => {
                    if check()? {
                        return Ok(());
                    }
                }
                Err(e) => {
                    // The condition may have come true while the waiter decided to give up.
                    if e != WaitError::Gone && check()? {
                        return Ok(());
                    }
                    return Err(match e {
                        WaitError::Timeout => MboxError::Timeout,
                        WaitError::Interrupted | WaitError::Killed => MboxError::Interrupted,
                        WaitError::Gone => MboxError::Io(IoError::Gone),
                    });
                }
            }
        }
    }

    fn wait_doorbell<M: Mapping, W: Wait>(&self, io: &M, w: &mut W) -> Result<(), MboxError> {
        self.wait_for(io, w, Event::Doorbell, self.timeouts.doorbell_us, |r| {
            Ok(!self.doorbell_set(r)?)
        })
    }

    fn attention_begin<M: Mapping, W: Wait>(&self, io: &M, w: &mut W) -> Result<(), MboxError> {
        io.with(|r| {
            r.write32(
                MboxCtrl::at(self.base),
                self.ctrl.with_attention_not_needed(false).0,
            )
        })??;
        let status = MboxStatus::at(self.base);
        self.wait_for(io, w, Event::Attention, self.timeouts.attention_us, |r| {
            Ok(MboxStatus(r.read64(status)?).at_attention())
        })
        .map_err(|e| match e {
            MboxError::Timeout => MboxError::NoAttention,
            e => e,
        })
    }

    /// Runs one command and returns the device's answer, waiting for a background operation
    /// to finish as `req.bg` says. `out` receives at most `out.len()` bytes of output.
    ///
    /// This is [`Self::start`], then [`BgWatcher::wait`] and, when that wait ends early,
    /// [`Self::give_up`]. Callers that must not hold their mailbox lock during a long
    /// background wait use the three steps themselves.
    pub fn execute<M: Mapping, W: Wait>(
        &mut self,
        io: &M,
        w: &mut W,
        req: &Request<'_>,
        out: &mut [u8],
    ) -> Result<Response, MboxError> {
        let r = self.start(io, w, req, out)?;
        if !self.is_background(&r) {
            return Ok(r);
        }
        let res = self
            .bg_watcher()
            .wait(io, w, req.opcode, req.bg.timeout_us, || None);
        res.map_err(|e| self.give_up(io, w, req.opcode, &req.bg, e, || ()))
    }

    /// Whether `r` reports a background operation that is still running.
    pub fn is_background(&self, r: &Response) -> bool {
        self.flavor.cxl && r.rc == ReturnCode::BackgroundStarted && r.background.is_none()
    }

    /// Whether `policy` asks for Request Abort Background Operation when a background wait
    /// ends with `cause`: on a timeout with `abort_on_timeout`, when the caller is killed with
    /// `abort_on_interrupt`; never after another signal (the wait resumes) or for a device
    /// that is gone.
    pub const fn abort_wanted(policy: &BgPolicy, cause: WaitError) -> bool {
        match cause {
            WaitError::Timeout => policy.abort_on_timeout,
            WaitError::Killed => policy.abort_on_interrupt,
            WaitError::Interrupted | WaitError::Gone => false,
        }
    }

    /// Applies `policy` to a background wait that ended early: requests an abort if the policy
    /// says so ([`Self::abort_wanted`]), and returns the error to report. `before_send` is
    /// called right before the abort request reaches the device (the kernel taints there: an
    /// abort changes state).
    pub fn give_up<M: Mapping, W: Wait>(
        &mut self,
        io: &M,
        w: &mut W,
        opcode: u16,
        policy: &BgPolicy,
        e: BgWaitError,
        before_send: impl FnOnce(),
    ) -> MboxError {
        let abort = if Self::abort_wanted(policy, e.cause) {
            self.abort_background(io, w, opcode, before_send)
        } else {
            AbortOutcome::NotRequested
        };
        MboxError::Background {
            opcode,
            cause: e.cause,
            percent: e.percent,
            abort,
        }
    }

    /// Runs the foreground part of one command: submission, doorbell, return code and output.
    /// A command that starts a background operation returns with [`ReturnCode::BackgroundStarted`]
    /// (see [`Self::is_background`]); the caller then waits with [`BgWatcher::wait`].
    pub fn start<M: Mapping, W: Wait>(
        &mut self,
        io: &M,
        w: &mut W,
        req: &Request<'_>,
        out: &mut [u8],
    ) -> Result<Response, MboxError> {
        self.start_with(io, w, req, out, |_| ())
    }

    /// [`Self::start`], calling `before_send` once the command has passed every check (input
    /// size, attention, a free doorbell) and is in the registers, right before the doorbell
    /// hands it to the device: the kernel taints there, so that a command that never reaches
    /// the device does not taint. With [`Request::watch_bg`] it gets the Background Command
    /// Status register read at that moment (else `None`). `before_send` runs inside the
    /// mapping (see [`Mapping::with`]) and must not sleep.
    pub fn start_with<M: Mapping, W: Wait>(
        &mut self,
        io: &M,
        w: &mut W,
        req: &Request<'_>,
        out: &mut [u8],
        before_send: impl FnOnce(Option<MboxBgStatus>),
    ) -> Result<Response, MboxError> {
        if req.input.len() > self.payload_size {
            return Err(MboxError::InputTooLarge {
                len: req.input.len(),
                max: self.payload_size,
            });
        }
        let attention = self.flavor.mmb && self.caps.attention();
        if attention {
            self.attention_begin(io, w)?;
        }
        let res = self.run(io, w, req, out, before_send);
        if attention {
            // Let the function rest again; a failure here does not change the command's result.
            let _ = io.with(|r| r.write32(MboxCtrl::at(self.base), self.ctrl.0));
        }
        res
    }

    /// The Command register value of a command.
    fn command(&self, opcode: u16, opcode_vendor: u16, input: &[u8]) -> MboxCmd {
        let len = u32::try_from(input.len()).unwrap_or(u32::MAX);
        MboxCmd::default()
            .with_opcode(opcode)
            .with_payload_len(len)
            .with_opcode_vendor(if self.flavor.mmb { opcode_vendor } else { 0 })
    }

    /// Within one entry of the mapping: checks the doorbell is free, writes the payload and the
    /// Command register `cmd` (one 64-bit store), reads the Background Command Status register
    /// if `watch_bg`, calls `before_send` with it, rings the doorbell, and checks once whether
    /// the device already completed (true if so).
    fn send_in<R: RegIo>(
        &self,
        r: &R,
        cmd: MboxCmd,
        input: &[u8],
        watch_bg: bool,
        before_send: impl FnOnce(Option<MboxBgStatus>),
    ) -> Result<bool, MboxError> {
        if self.doorbell_set(r)? {
            return Err(MboxError::Busy);
        }
        r.write_block(MBOX_PAYLOAD.saturating_add(self.base), input)?;
        r.write64(MboxCmd::at(self.base), cmd.0)?;
        let bg = if watch_bg && self.flavor.cxl {
            let v = r.read64(MboxBgStatus::at(self.base))?;
            if all_ones64(v) {
                return Err(MboxError::Io(IoError::Gone));
            }
            Some(MboxBgStatus(v))
        } else {
            None
        };
        before_send(bg);
        // During a command the function must stay at attention: "not needed" stays clear.
        r.write32(
            MboxCtrl::at(self.base),
            self.ctrl
                .with_attention_not_needed(false)
                .with_doorbell(true)
                .0,
        )?;
        Ok(!self.doorbell_set(r)?)
    }

    /// Submits a command and reads its result. A device that completes at once (the common
    /// case) is read out in the same entry of the mapping as the submission, so the command
    /// takes the mapping once; otherwise the readout is a second entry after the wait.
    fn run<M: Mapping, W: Wait>(
        &self,
        io: &M,
        w: &mut W,
        req: &Request<'_>,
        out: &mut [u8],
        before_send: impl FnOnce(Option<MboxBgStatus>),
    ) -> Result<Response, MboxError> {
        let cmd = self.command(req.opcode, req.opcode_vendor, req.input);
        let at_once = io.with(|r| -> Result<Option<Response>, MboxError> {
            if !self.send_in(r, cmd, req.input, req.watch_bg, before_send)? {
                return Ok(None);
            }
            self.readout(r, cmd, out).map(Some)
        })??;
        if let Some(resp) = at_once {
            return Ok(resp);
        }
        self.wait_doorbell(io, w)?;
        io.with(|r| self.readout(r, cmd, out))?
    }

    /// Reads the result of the command `sent` in one entry of the mapping: status, length,
    /// payload, then the checks that the device is still the one that ran it (module
    /// documentation, step 8).
    fn readout<R: RegIo>(
        &self,
        r: &R,
        sent: MboxCmd,
        out: &mut [u8],
    ) -> Result<Response, MboxError> {
        let status_raw = r.read64(MboxStatus::at(self.base))?;
        if all_ones64(status_raw) {
            return Err(MboxError::Io(IoError::Gone));
        }
        let status = MboxStatus(status_raw);
        let cmd_raw = r.read64(MboxCmd::at(self.base))?;
        if all_ones64(cmd_raw) {
            return Err(MboxError::Io(IoError::Gone));
        }
        let cmd = MboxCmd(cmd_raw);
        if cmd.opcode() != sent.opcode() || cmd.opcode_vendor() != sent.opcode_vendor() {
            return Err(MboxError::Changed);
        }
        let rc = ReturnCode::from_raw(status.return_code());
        let background = rc == ReturnCode::BackgroundStarted && self.flavor.cxl;
        let device_len = if background {
            0
        } else {
            cmd.payload_len() as usize
        };
        if device_len > self.payload_size {
            return Err(MboxError::BadOutputLength {
                claimed: device_len,
                max: self.payload_size,
            });
        }
        let n = device_len.min(out.len());
        let (dst, _) = out.split_at_mut(n);
        r.read_block(MBOX_PAYLOAD.saturating_add(self.base), dst)?;
        // Still the same device, in the same command?
        let again = r.read64(MboxCmd::at(self.base))?;
        let ctrl = r.read32(MboxCtrl::at(self.base))?;
        if all_ones64(again) || ctrl == u32::MAX {
            return Err(MboxError::Io(IoError::Gone));
        }
        if again != cmd_raw || MboxCtrl(ctrl).doorbell() {
            return Err(MboxError::Changed);
        }
        Ok(Response {
            rc,
            vendor_status: status.vendor_status(),
            out_len: n,
            device_len,
            background: None,
        })
    }

    /// The completion of background operation `opcode`, if the Background Command Status
    /// register shows it finished (see [`BgWatcher::completion`]).
    pub fn bg_completion<M: Mapping>(
        &self,
        io: &M,
        opcode: u16,
    ) -> Result<Option<Response>, IoError> {
        self.bg_watcher().completion(io, opcode)
    }

    /// Sends Request Abort Background Operation like every command (the MMB attention
    /// handshake included, and the function let rest afterwards), calling `before_send` right
    /// before it reaches the device, and waits (uninterruptibly, for the grace period) for
    /// `opcode` to stop. Submits a command: callers hold their mailbox lock.
    pub fn abort_background<M: Mapping, W: Wait>(
        &mut self,
        io: &M,
        w: &mut W,
        opcode: u16,
        before_send: impl FnOnce(),
    ) -> AbortOutcome {
        let req = Request::new(opcode::REQUEST_ABORT_BG, &[]);
        let Ok(r) = self.start_with(io, w, &req, &mut [], |_| before_send()) else {
            return AbortOutcome::Failed;
        };
        match r.rc {
            ReturnCode::Success => {}
            ReturnCode::AbortNotSupported => return AbortOutcome::Unsupported,
            rc => return AbortOutcome::Refused(rc),
        }
        let watcher = self.bg_watcher();
        let res = self.wait_for(
            io,
            w,
            Event::AbortGrace,
            self.timeouts.abort_grace_us,
            |r| {
                let v = r.read64(MboxBgStatus::at(self.base))?;
                if all_ones64(v) {
                    return Err(IoError::Gone);
                }
                Ok(BgWatcher::done(MboxBgStatus(v), opcode))
            },
        );
        match res.ok().and_then(|()| watcher.status(io).ok()) {
            Some(bg) => AbortOutcome::Stopped(ReturnCode::from_raw(bg.return_code())),
            None => AbortOutcome::StillRunning,
        }
    }

    /// Waits up to `timeout_us` for background operation `opcode` to finish (see
    /// [`BgWatcher::wait`]).
    pub fn wait_background<M: Mapping, W: Wait>(
        &self,
        io: &M,
        w: &mut W,
        opcode: u16,
        timeout_us: u64,
        captured: impl FnMut() -> Option<Response>,
    ) -> Result<Response, BgWaitError> {
        self.bg_watcher().wait(io, w, opcode, timeout_us, captured)
    }
}

#[cfg(test)]
#[path = "mailbox_tests.rs"]
mod tests;
