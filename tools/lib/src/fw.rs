// SPDX-License-Identifier: GPL-2.0

//! Firmware update of a CCI (CXL r3.1 §8.2.9.3): the switch's own, or a component reached
//! through Tunnel Management Commands (5300h). Get FW Info (0200h), Transfer FW (0201h) in
//! parts, Activate FW (0202h), and Transfer FW's Abort action, for any [`Target`].
//!
//! How a transfer runs ([`Cci::fw_transfer`]):
//!
//! 1. Get FW Info: the slot must be one of the device's (1..=slots supported) and not the
//!    active one (the device refuses to overwrite it, CXL r3.1 §8.2.9.3.2, and would only say
//!    so at the last part). Nothing is sent otherwise.
//! 2. Parts as large as the target's payload allows: the mailbox payload less 16 bytes (a
//!    4-byte tunnel header and a 12-byte CCI message header) per tunnel level, less the
//!    128-byte Transfer FW header, rounded down to 128-byte units
//!    ([`proto::payload::firmware::max_part`](crate::proto::payload::firmware::max_part)).
//!    Offsets are in 128-byte units; every part but the last is full, the last may be short.
//!    An image that fits one part goes in one Full; otherwise Initiate, Continue..., End
//!    (which names the slot).
//! 3. Each part: Busy (06h) is retried with backoff (1 ms doubling to 100 ms) for at most
//!    [`FwOptions::busy_timeout`]. A part the device runs in the background is waited for:
//!    on a direct target by the driver (the open file's background policy, set from
//!    [`FwOptions::bg_timeout`] with an abort requested on timeout; `SWCCI_IOCTL_BG_POLICY`,
//!    Documentation/abi.rst), on a tunnelled target (where the switch's own command completes
//!    and the inner response says "background command started", 01h) by polling
//!    Background Operation Status (0002h) through the same tunnel, 200 µs doubling to 50 ms,
//!    for at most [`FwOptions::bg_timeout`]. A driver wait ended by a signal (EINTR; the
//!    operation runs on) is continued the same way.
//! 4. The cancel flag is read before every part, between Busy retries and between polls.
//!    On cancellation, or on a failure after the first part may have opened a transfer: if a
//!    part may still be running, Request Abort Background Operation (0005h) and a wait for it
//!    to end; then Transfer FW with the Abort action (Busy retried as above), and Get FW
//!    Info. The abort counts as confirmed when the device returns success to it
//!    ([`AbortOutcome`]). A first part the device refused (for example FW Transfer in
//!    Progress, 08h: another agent's transfer) opened nothing of ours: nothing is aborted.
//! 5. After the last part: Get FW Info, and the slot's revision. The library cannot know what
//!    revision an image carries (the format is the vendor's), so "confirmed" means: the slot
//!    reports the revision the caller expects ([`FwOptions::expect_revision`]), or, without an
//!    expectation, any non-empty revision (a slot that holds an image). The report says
//!    whether it changed; an image of the same revision as before is not an error.
//!
//! Every return code of the command set gets its own explanation ([`rc_meaning`]).

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::proto::opcode;
use crate::proto::payload::firmware::{self as fwp, Activate, Transfer, TransferAction};
pub use crate::proto::payload::firmware::{ActivateAction, FwInfo, OFFSET_UNIT};
use crate::proto::rc::ReturnCode;
use crate::proto::wire::DecodeError;
use crate::{command_name, Cci, Error, Result, Target};

/// First pause before retrying a command the device answered Busy (06h).
const BUSY_PAUSE_MIN: Duration = Duration::from_millis(1);
/// Longest pause between Busy retries.
const BUSY_PAUSE_MAX: Duration = Duration::from_millis(100);
/// First pause before polling Background Operation Status (0002h) again.
const POLL_PAUSE_MIN: Duration = Duration::from_micros(200);
/// Longest pause between polls.
const POLL_PAUSE_MAX: Duration = Duration::from_millis(50);
/// Output room for Transfer FW and Activate FW (they return none).
const NO_OUTPUT: usize = 64;
/// Largest image whose offsets fit Transfer FW's 32-bit offset in 128-byte units.
pub const MAX_IMAGE: u64 = (u32::MAX as u64 + 1) * OFFSET_UNIT as u64;

/// How a firmware command is run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FwOptions {
    /// How long one background part (or an online activation) may run: the open file's
    /// background timeout on a direct target (`SWCCI_IOCTL_BG_POLICY`, whole milliseconds,
    /// clamped to the driver's 1 ms..=600 s), the polling deadline on a tunnelled one.
    /// Default 60 s.
    pub bg_timeout: Duration,
    /// How long a command answered Busy (06h) is retried. Default 10 s.
    pub busy_timeout: Duration,
    /// Largest part, in bytes (rounded down to 128-byte units; at least 128). `None`: as
    /// large as the payload allows.
    pub max_part: Option<usize>,
    /// The revision the slot must report after the transfer (up to 16 ASCII bytes, as Get FW
    /// Info reports it). `None`: any non-empty revision confirms.
    pub expect_revision: Option<String>,
}

impl Default for FwOptions {
    fn default() -> Self {
        Self {
            bg_timeout: Duration::from_secs(60),
            busy_timeout: Duration::from_secs(10),
            max_part: None,
            expect_revision: None,
        }
    }
}

/// What a transfer is doing, for progress displays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Get FW Info before the transfer.
    Prepare,
    /// Sending parts (all but the last).
    Transfer,
    /// Sending the last part (End or Full): the device verifies and stores the image.
    Verify,
    /// Get FW Info after the transfer.
    Confirm,
    /// Aborting after a failure or cancellation.
    Abort,
}

impl Phase {
    /// Its name in progress output: `prepare`, `transfer`, `verify`, `confirm`, `abort`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Prepare => "prepare",
            Self::Transfer => "transfer",
            Self::Verify => "verify",
            Self::Confirm => "confirm",
            Self::Abort => "abort",
        }
    }
}

/// Progress of a transfer, given to the observer before every part and at each phase change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// What is being done.
    pub phase: Phase,
    /// Bytes of the image the device has accepted so far.
    pub sent: u64,
    /// Bytes of the image.
    pub total: u64,
    /// Parts accepted so far.
    pub part: usize,
    /// Parts in all (0 until the part size is known).
    pub parts: usize,
}

/// One part of a transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Part {
    /// Full, Initiate, Continue or End.
    pub action: TransferAction,
    /// Byte offset of the part in the image (a multiple of 128).
    pub offset: usize,
    /// Length in bytes.
    pub len: usize,
}

/// Splits an image of `len` bytes into parts of at most `part` bytes (a multiple of 128):
/// one Full if it fits, else Initiate, Continue..., End; every part but the last is `part`
/// bytes long. Empty for an empty image or a zero part size.
pub fn plan(len: usize, part: usize) -> Vec<Part> {
    if len == 0 || part == 0 {
        return Vec::new();
    }
    let n = len.div_ceil(part);
    (0..n)
        .map(|k| {
            let offset = k * part;
            let action = match k {
                _ if n == 1 => TransferAction::Full,
                0 => TransferAction::Initiate,
                _ if k + 1 == n => TransferAction::End,
                _ => TransferAction::Continue,
            };
            Part {
                action,
                offset,
                len: part.min(len - offset),
            }
        })
        .collect()
}

/// The part size for a target payload of `payload` bytes (tunnel headers already taken off,
/// see [`Cci::payload_size`]) and an optional cap: whole 128-byte units after the 128-byte
/// Transfer FW header. 0 when not even one unit fits.
pub fn part_size(payload: usize, cap: Option<usize>) -> usize {
    let max = fwp::max_part(payload, 0);
    match cap {
        Some(c) => max.min(c / OFFSET_UNIT * OFFSET_UNIT),
        None => max,
    }
}

/// What the device's return code to a firmware command sent to `target` means, in words
/// (CXL r3.1 §8.2.9.3 and Table 8-34); `None` for codes with nothing to add to their name.
/// For a Tunnel Management Command (5300h) that failed to route: what invalid input means
/// there. Unsupported (03h) reads differently for the switch itself (it lacks the command set)
/// and for a component reached through tunnels (it may not offer it through them).
pub fn rc_meaning(opcode: u16, rc: ReturnCode, target: Target) -> Option<&'static str> {
    if opcode == opcode::TUNNEL {
        return (rc == ReturnCode::InvalidInput).then_some(
            "the switch could not route the command: no component on that port (or LD), or \
             one that does not take tunnelled commands",
        );
    }
    let activate = opcode == opcode::ACTIVATE_FW;
    Some(match rc {
        ReturnCode::InvalidInput => {
            "the device refused the request's fields (action, offset or slot); some devices \
             answer this to a part when no transfer is open, for example after dropping one \
             that stalled"
        }
        ReturnCode::Unsupported if target == Target::Direct => {
            "the device does not implement the Firmware Update command set (QEMU's switch CCI \
             does not)"
        }
        ReturnCode::Unsupported => {
            "the target does not implement this command (a component behind a switch may not \
             offer the Firmware Update command set through tunnels)"
        }
        ReturnCode::InternalError => "the device failed internally",
        ReturnCode::RetryRequired => "the device asks for the command to be sent again later",
        ReturnCode::Busy => {
            "the device stayed busy with another background operation for the whole retry \
             bound"
        }
        ReturnCode::MediaDisabled => "the device's media is disabled; it refuses firmware commands",
        ReturnCode::FwTransferInProgress if activate => {
            "a firmware transfer is open on the device; activation waits until it ends or is \
             aborted (swcci fw abort)"
        }
        ReturnCode::FwTransferInProgress => {
            "another firmware transfer is open on the device (another agent's, or an earlier \
             one that was never ended or aborted); swcci fw abort drops it"
        }
        ReturnCode::FwTransferOutOfOrder => {
            "the device did not expect a part at this offset: it dropped the transfer (after an \
             idle time, a reset or an abort by another agent) or another agent sent parts"
        }
        ReturnCode::FwVerificationFailed => {
            "the device rejected the image: its verification or authentication failed; the \
             slot keeps what it held"
        }
        ReturnCode::InvalidSlot if activate => {
            "the device refuses to activate this slot: not one of its slots, empty, or already \
             active"
        }
        ReturnCode::InvalidSlot => {
            "the device refuses to store an image in this slot: not one of its slots, the \
             active one, or read-only"
        }
        ReturnCode::ActivationFailedRolledBack => {
            "activation failed; the device rolled back to the firmware it was running"
        }
        ReturnCode::ColdResetRequired => {
            "activation failed; the device needs a cold reset before it runs usable firmware"
        }
        ReturnCode::Aborted => {
            "the background operation was aborted (Request Abort Background Operation (0005h), \
             sent after a timeout or by another agent)"
        }
        ReturnCode::InvalidPayloadLength => {
            "the device refused the request's length (a part larger than it accepts)"
        }
        _ => return None,
    })
}

/// What became of the transfer after a failure or cancellation.
#[derive(Debug)]
pub enum AbortOutcome {
    /// Nothing of ours was open: the failure came before the first part, or the device
    /// refused the first part.
    NotNeeded,
    /// Transfer FW (Abort) returned success: the device holds no open transfer. `info` is
    /// Get FW Info after it (`None` if that failed).
    Confirmed {
        /// Get FW Info after the abort.
        info: Option<Box<FwInfo>>,
    },
    /// The abort failed: the device may still hold the transfer open (`swcci fw abort`).
    Failed(Box<Error>),
}

impl AbortOutcome {
    /// Whether the device is known to hold no transfer of ours: nothing was open, or the
    /// abort was confirmed.
    pub fn is_clean(&self) -> bool {
        !matches!(self, Self::Failed(_))
    }
}

/// Why a firmware command failed.
#[derive(Debug)]
pub enum FwFailure {
    /// Refused before anything was sent to change the device: an empty or too large image, a
    /// slot the device does not have or that is active, a payload too small for one part.
    Invalid(String),
    /// A command failed: a device return code, an OS error (the errno), a malformed response;
    /// `context` says which part or step.
    Command {
        /// The error.
        error: Box<Error>,
        /// Which part or step (`part 3 of 9, Continue, bytes 3584..5376`).
        context: String,
    },
    /// The cancel flag was set.
    Cancelled,
    /// The command completed but Get FW Info does not show its result: the slot's revision
    /// differs from the expected one (or is empty), or the slot is not active/staged after
    /// activation.
    Unconfirmed(String),
}

/// A failed firmware command: why, how far it got, and what became of the transfer.
#[derive(Debug)]
pub struct FwError {
    /// What was attempted (`firmware transfer to slot 2 via port 1 on /dev/cxl/switch0`).
    pub op: String,
    /// Where the commands went: the switch itself, or a component through tunnels.
    pub target: Target,
    /// Why it failed.
    pub failure: FwFailure,
    /// What became of an open transfer.
    pub abort: AbortOutcome,
    /// Bytes the device had accepted.
    pub sent: u64,
    /// Bytes of the image (0 for commands other than a transfer).
    pub total: u64,
}

impl FwFailure {
    /// A [`FwFailure::Command`]: `error`, met at the step `context` names.
    fn command(error: Error, context: impl Into<String>) -> Self {
        Self::Command {
            error: Box::new(error),
            context: context.into(),
        }
    }
}

impl FwError {
    /// The library error behind a [`FwFailure::Command`].
    pub fn error(&self) -> Option<&Error> {
        match &self.failure {
            FwFailure::Command { error, .. } => Some(error.as_ref()),
            _ => None,
        }
    }

    /// The device return code behind the failure, if a device refused.
    pub fn rc(&self) -> Option<ReturnCode> {
        self.error().and_then(Error::rc)
    }

    /// Whether it was cancelled.
    pub fn is_cancelled(&self) -> bool {
        matches!(self.failure, FwFailure::Cancelled)
    }

    /// A failed command of `op` at the step `context` names, with no transfer left open
    /// ([`AbortOutcome::NotNeeded`], no bytes counted as sent).
    fn command(op: &str, target: Target, error: Error, context: &str) -> Self {
        Self::new(op, target, FwFailure::command(error, context))
    }

    fn new(op: &str, target: Target, failure: FwFailure) -> Self {
        Self {
            op: op.to_string(),
            target,
            failure,
            abort: AbortOutcome::NotNeeded,
            sent: 0,
            total: 0,
        }
    }
}

/// A slot number of Get FW Info for messages: `none` for 0 (no slot).
fn slot_text(slot: u8) -> String {
    match slot {
        0 => "none".to_string(),
        s => s.to_string(),
    }
}

/// The opcode a library error's `op` names, for [`rc_meaning`].
fn fw_opcode_in(op: &str) -> Option<u16> {
    [
        opcode::ACTIVATE_FW,
        opcode::TRANSFER_FW,
        opcode::GET_FW_INFO,
        opcode::TUNNEL,
    ]
    .into_iter()
    .find(|&o| op.starts_with(&command_name(o)))
}

impl fmt::Display for FwError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.failure {
            FwFailure::Invalid(what) => write!(f, "{}: {what}; nothing was sent", self.op)?,
            FwFailure::Command { error, context } => {
                write!(f, "{error} ({context})")?;
                if let Error::Device { op, rc } = error.as_ref() {
                    if let Some(m) = fw_opcode_in(op).and_then(|o| rc_meaning(o, *rc, self.target))
                    {
                        write!(f, ": {m}")?;
                    }
                }
            }
            FwFailure::Cancelled => write!(
                f,
                "{}: interrupted after {} of {} bytes",
                self.op, self.sent, self.total
            )?,
            FwFailure::Unconfirmed(what) => write!(f, "{}: not confirmed: {what}", self.op)?,
        }
        match &self.abort {
            AbortOutcome::NotNeeded => Ok(()),
            AbortOutcome::Confirmed { .. } => {
                f.write_str("; transfer aborted (Transfer FW Abort), the device confirmed")
            }
            AbortOutcome::Failed(e) => write!(
                f,
                "; the abort failed ({e}): the device may still hold the transfer open \
                 (swcci fw abort)"
            ),
        }
    }
}

impl std::error::Error for FwError {}

/// A completed transfer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransferReport {
    /// Where it went.
    pub target: Target,
    /// The slot written.
    pub slot: u8,
    /// Bytes sent (the image's length).
    pub bytes: u64,
    /// Parts sent.
    pub parts: usize,
    /// Part size in bytes.
    pub part_size: usize,
    /// Commands retried after Busy (06h).
    pub busy_retries: u32,
    /// Time from the first part to the last one's completion.
    pub elapsed: Duration,
    /// The slot's revision before (empty: no image).
    pub revision_before: String,
    /// The slot's revision after, as Get FW Info reports it.
    pub revision: String,
    /// Get FW Info after the transfer.
    pub info: FwInfo,
}

impl TransferReport {
    /// Whether the slot's revision changed.
    pub fn changed(&self) -> bool {
        self.revision != self.revision_before
    }
}

/// A completed activation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActivateReport {
    /// The slot activated.
    pub slot: u8,
    /// Online, or at the next cold reset.
    pub action: ActivateAction,
    /// Commands retried after Busy (06h).
    pub busy_retries: u32,
    /// Get FW Info after it: the slot is active (online) or staged (on reset).
    pub info: FwInfo,
}

/// A confirmed abort.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AbortReport {
    /// Commands retried after Busy (06h).
    pub busy_retries: u32,
    /// Get FW Info after it.
    pub info: FwInfo,
}

/// The revision of `slot` in `info` as text (empty for an empty slot; bytes that are not
/// ASCII are shown as `?`).
pub fn revision_text(info: &FwInfo, slot: u8) -> String {
    if let Some(r) = info.revision(slot) {
        return r.to_string();
    }
    let Some(raw) = usize::from(slot)
        .checked_sub(1)
        .and_then(|i| info.revisions.get(i))
    else {
        return String::new();
    };
    raw.iter()
        .take_while(|&&b| b != 0)
        .map(|&b| if b.is_ascii() { char::from(b) } else { '?' })
        .collect()
}

/// Why a command stopped.
enum Stop {
    /// It failed; `running`: a background operation may still run on the device.
    Failed { error: Error, running: bool },
    /// The cancel flag was set; `running` as above.
    Cancelled { running: bool },
}

/// State shared by the commands of one operation.
struct Run<'a> {
    opts: &'a FwOptions,
    cancel: Option<&'a AtomicBool>,
    busy_retries: u32,
}

impl Run<'_> {
    fn cancelled(&self) -> bool {
        self.cancel.is_some_and(|c| c.load(Ordering::SeqCst))
    }
}

fn timeout_error(op: String) -> Error {
    Error::Os {
        op,
        err: io::Error::from_raw_os_error(libc::ETIMEDOUT),
    }
}

/// The driver's range for a background timeout, in ms.
fn bg_timeout_ms(d: Duration) -> u32 {
    let ms = u32::try_from(d.as_millis()).unwrap_or(u32::MAX);
    ms.clamp(
        crate::proto::uapi::SWCCI_BG_TIMEOUT_MIN_MS,
        crate::proto::uapi::SWCCI_BG_TIMEOUT_MAX_MS,
    )
}

impl Cci<'_> {
    /// Get FW Info (0200h), CXL r3.1 §8.2.9.3.1: slots, the active and staged slot, each
    /// slot's revision.
    ///
    /// Errors: as [`Cci::command`]; a malformed response names the field.
    pub fn fw_info(&self) -> Result<FwInfo> {
        let out = self.command(opcode::GET_FW_INFO, &[], self.payload_size()?)?;
        FwInfo::decode(&out).map_err(|err| Error::Decode {
            op: self.op(command_name(opcode::GET_FW_INFO)),
            err,
        })
    }

    /// Sends a firmware command and returns its final return code (success): Busy (06h)
    /// retried, a background operation waited for.
    fn fw_exec(
        &self,
        run: &mut Run<'_>,
        opcode: u16,
        input: &[u8],
        cancellable: bool,
    ) -> std::result::Result<ReturnCode, Stop> {
        let started = Instant::now();
        let mut pause = BUSY_PAUSE_MIN;
        loop {
            let r = match self.raw(opcode, input, NO_OUTPUT) {
                Ok(r) => r,
                // The driver stopped waiting for the background operation; it runs on.
                Err(e) if e.errno() == Some(libc::EINTR) => {
                    return self.fw_wait_bg(run, opcode, cancellable)
                }
                Err(error) => {
                    // A timed-out wait may leave the operation running (the driver asked
                    // the device to abort it); a refused ioctl did not start one.
                    let running = error.errno() == Some(libc::ETIMEDOUT);
                    return Err(Stop::Failed { error, running });
                }
            };
            match self.refusal(opcode, &r) {
                Some(e) if e.rc() == Some(ReturnCode::Busy) => {
                    if cancellable && run.cancelled() {
                        return Err(Stop::Cancelled { running: false });
                    }
                    let waited = started.elapsed();
                    if waited >= run.opts.busy_timeout {
                        let error = match e {
                            Error::Device { op, rc } => Error::Device {
                                op: format!(
                                    "{op} (still busy after {} ms, {} retries)",
                                    waited.as_millis(),
                                    run.busy_retries
                                ),
                                rc,
                            },
                            e => e,
                        };
                        return Err(Stop::Failed {
                            error,
                            running: false,
                        });
                    }
                    run.busy_retries = run.busy_retries.saturating_add(1);
                    std::thread::sleep(pause.min(run.opts.busy_timeout - waited));
                    pause = (pause * 2).min(BUSY_PAUSE_MAX);
                }
                Some(error) => {
                    return Err(Stop::Failed {
                        error,
                        running: false,
                    })
                }
                None if r.rc() == ReturnCode::BackgroundStarted => {
                    return self.fw_wait_bg(run, opcode, cancellable)
                }
                None => return Ok(r.rc()),
            }
        }
    }

    /// Waits for the background operation `opcode` by polling Background Operation Status
    /// (0002h) on this target; returns its final return code (success) or the failure.
    fn fw_wait_bg(
        &self,
        run: &Run<'_>,
        opcode: u16,
        cancellable: bool,
    ) -> std::result::Result<ReturnCode, Stop> {
        let deadline = Instant::now() + run.opts.bg_timeout;
        let mut pause = POLL_PAUSE_MIN;
        loop {
            if cancellable && run.cancelled() {
                return Err(Stop::Cancelled { running: true });
            }
            let s = self.bg_status().map_err(|error| Stop::Failed {
                error,
                running: true,
            })?;
            if !s.running {
                if s.opcode != opcode {
                    return Err(Stop::Failed {
                        error: Error::Decode {
                            op: self.op(format!(
                                "{} after {}",
                                command_name(opcode::BG_OP_STATUS),
                                command_name(opcode)
                            )),
                            err: DecodeError::Invalid {
                                field: "opcode",
                                value: u64::from(s.opcode),
                            },
                        },
                        running: false,
                    });
                }
                if s.rc.is_success() {
                    return Ok(s.rc);
                }
                return Err(Stop::Failed {
                    error: Error::Device {
                        op: self.op(format!("{} (in the background)", command_name(opcode))),
                        rc: s.rc,
                    },
                    running: false,
                });
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Stop::Failed {
                    error: timeout_error(self.op(format!(
                        "{}: still running in the background at {} % after {} ms",
                        command_name(opcode),
                        s.percent,
                        run.opts.bg_timeout.as_millis()
                    ))),
                    running: true,
                });
            }
            std::thread::sleep(pause.min(deadline - now));
            pause = (pause * 2).min(POLL_PAUSE_MAX);
        }
    }

    /// Ends whatever transfer is open: stops a part that may still run (Request Abort
    /// Background Operation (0005h), then waits for it), then Transfer FW (Abort).
    fn fw_abort_open(&self, run: &mut Run<'_>, running: bool) -> AbortOutcome {
        if running {
            // Devices without 0005h, or that let a part near its end finish, end it anyway:
            // the wait below sees it end (its own failure, Aborted 12h, is expected).
            let _ = self.abort_bg();
            let _ = self.fw_wait_bg(run, opcode::TRANSFER_FW, false);
        }
        match self.fw_abort_command(run) {
            Ok(()) => AbortOutcome::Confirmed {
                info: self.fw_info().ok().map(Box::new),
            },
            Err(e) => AbortOutcome::Failed(Box::new(e)),
        }
    }

    fn fw_abort_command(&self, run: &mut Run<'_>) -> Result<()> {
        let mut buf = [0u8; fwp::TRANSFER_HEADER_LEN];
        let t = Transfer {
            action: TransferAction::Abort,
            slot: 0,
            offset: 0,
            data: &[],
        };
        let n = t.encode(&mut buf).map_err(|err| Error::Encode {
            op: self.op(command_name(opcode::TRANSFER_FW)),
            err,
        })?;
        match self.fw_exec(
            run,
            opcode::TRANSFER_FW,
            buf.get(..n).unwrap_or(&buf),
            false,
        ) {
            Ok(_) => Ok(()),
            Err(Stop::Failed { error, .. }) => Err(error),
            // Sent as not cancellable, so this does not happen; it would mean cancelled.
            Err(Stop::Cancelled { .. }) => Err(Error::Os {
                op: self.op("Transfer FW (0201h) Abort"),
                err: io::Error::from_raw_os_error(libc::ECANCELED),
            }),
        }
    }

    /// Sets the file's background timeout for this operation.
    fn fw_prepare(&self, op: &str, opts: &FwOptions) -> std::result::Result<FwInfo, FwError> {
        let command = |error, context: &str| FwError::command(op, self.target(), error, context);
        self.mailbox()
            .set_bg_timeout(bg_timeout_ms(opts.bg_timeout))
            .map_err(|e| command(e, "setting the background timeout"))?;
        self.fw_info()
            .map_err(|e| command(e, "reading the slots before the transfer"))
    }

    /// Transfers `image` to firmware slot `slot` (1-based) with Transfer FW (0201h), CXL r3.1
    /// §8.2.9.3.2, as the module documentation describes: parts as large as the target's
    /// payload allows, Busy retried, background parts waited for, an abort on failure or
    /// cancellation, and Get FW Info afterwards to confirm the slot's revision.
    ///
    /// `observer` gets [`Progress`] before every part and at each phase change; `cancel` is
    /// read before every part, between Busy retries and while polling (a part the driver
    /// waits for is interrupted by a signal, EINTR, and then polled).
    ///
    /// Errors ([`FwError`]): [`FwFailure::Invalid`] before anything was sent (empty image,
    /// larger than [`MAX_IMAGE`], a slot outside 1..=slots or the active one, a payload too
    /// small for a 128-byte part); [`FwFailure::Command`] when a command failed (the device's
    /// return code with [`rc_meaning`], an errno such as ETIMEDOUT, a malformed response);
    /// [`FwFailure::Cancelled`]; [`FwFailure::Unconfirmed`] when the slot's revision is not the
    /// expected one. [`FwError::abort`] says what became of the open transfer.
    pub fn fw_transfer(
        &self,
        image: &[u8],
        slot: u8,
        opts: &FwOptions,
        observer: &mut dyn FnMut(&Progress),
        cancel: &AtomicBool,
    ) -> std::result::Result<TransferReport, FwError> {
        let op = self.op(format!("firmware transfer to slot {slot}"));
        let total = image.len() as u64;
        let mut run = Run {
            opts,
            cancel: Some(cancel),
            busy_retries: 0,
        };
        let fail = |failure, abort, sent| FwError {
            op: op.clone(),
            target: self.target(),
            failure,
            abort,
            sent,
            total,
        };
        let invalid = |what: String| fail(FwFailure::Invalid(what), AbortOutcome::NotNeeded, 0);
        let mut progress = Progress {
            phase: Phase::Prepare,
            sent: 0,
            total,
            part: 0,
            parts: 0,
        };
        observer(&progress);
        if image.is_empty() {
            return Err(invalid("the image is empty".into()));
        }
        if total > MAX_IMAGE {
            return Err(invalid(format!(
                "the image has {total} bytes; Transfer FW offsets reach {MAX_IMAGE} bytes"
            )));
        }
        let payload = self.payload_size().map_err(|error| {
            fail(
                FwFailure::command(error, "reading the payload size"),
                AbortOutcome::NotNeeded,
                0,
            )
        })?;
        let part = part_size(payload, opts.max_part);
        if part == 0 {
            return Err(invalid(format!(
                "a payload of {payload} bytes to this target leaves no room for a \
                 {OFFSET_UNIT}-byte part after the {}-byte Transfer FW header",
                fwp::TRANSFER_HEADER_LEN
            )));
        }
        if run.cancelled() {
            return Err(fail(FwFailure::Cancelled, AbortOutcome::NotNeeded, 0));
        }
        let before = self.fw_prepare(&op, opts).map_err(|mut e| {
            e.total = total;
            e
        })?;
        check_slot(&before, slot, true).map_err(invalid)?;
        let revision_before = revision_text(&before, slot);
        let parts = plan(image.len(), part);
        progress.parts = parts.len();
        let started = Instant::now();
        let mut buf = vec![0u8; fwp::TRANSFER_HEADER_LEN + part];
        for (k, p) in parts.iter().enumerate() {
            progress.phase = if k + 1 == parts.len() {
                Phase::Verify
            } else {
                Phase::Transfer
            };
            observer(&progress);
            if run.cancelled() {
                let abort = if k == 0 {
                    AbortOutcome::NotNeeded
                } else {
                    self.observe_abort(observer, &mut progress);
                    self.fw_abort_open(&mut run, false)
                };
                return Err(fail(FwFailure::Cancelled, abort, progress.sent));
            }
            let data = image.get(p.offset..p.offset + p.len).unwrap_or(&[]);
            let t = Transfer {
                action: p.action,
                slot: if p.action.names_slot() { slot } else { 0 },
                offset: u32::try_from(p.offset / OFFSET_UNIT).unwrap_or(u32::MAX),
                data,
            };
            let context = format!(
                "part {} of {}, {}, bytes {}..{}",
                k + 1,
                parts.len(),
                p.action,
                p.offset,
                p.offset + p.len
            );
            let n = match t.encode(&mut buf) {
                Ok(n) => n,
                Err(err) => {
                    let error = Error::Encode {
                        op: self.op(command_name(opcode::TRANSFER_FW)),
                        err,
                    };
                    let abort = if k == 0 {
                        AbortOutcome::NotNeeded
                    } else {
                        self.fw_abort_open(&mut run, false)
                    };
                    return Err(fail(
                        FwFailure::command(error, context),
                        abort,
                        progress.sent,
                    ));
                }
            };
            let input = buf.get(..n).unwrap_or(&buf);
            match self.fw_exec(&mut run, opcode::TRANSFER_FW, input, true) {
                Ok(_) => {
                    progress.sent += p.len as u64;
                    progress.part = k + 1;
                }
                Err(Stop::Cancelled { running }) => {
                    let abort = if k == 0 && !running {
                        AbortOutcome::NotNeeded
                    } else {
                        self.observe_abort(observer, &mut progress);
                        self.fw_abort_open(&mut run, running)
                    };
                    return Err(fail(FwFailure::Cancelled, abort, progress.sent));
                }
                Err(Stop::Failed { error, running }) => {
                    // A first part the device refused opened nothing (and an 08h refusal
                    // means the open transfer is someone else's).
                    let refused_first = k == 0 && !running && error.rc().is_some();
                    let abort = if refused_first {
                        AbortOutcome::NotNeeded
                    } else {
                        self.observe_abort(observer, &mut progress);
                        self.fw_abort_open(&mut run, running)
                    };
                    return Err(fail(
                        FwFailure::command(error, context),
                        abort,
                        progress.sent,
                    ));
                }
            }
        }
        let elapsed = started.elapsed();
        progress.phase = Phase::Confirm;
        observer(&progress);
        let info = self.fw_info().map_err(|error| {
            fail(
                FwFailure::command(error, "reading the slots after the transfer"),
                AbortOutcome::NotNeeded,
                total,
            )
        })?;
        let revision = revision_text(&info, slot);
        let unconfirmed = match &opts.expect_revision {
            Some(want) if *want != revision => Some(format!(
                "slot {slot} reports revision {revision:?}, expected {want:?}"
            )),
            None if revision.is_empty() => Some(format!(
                "slot {slot} reports no revision after the transfer"
            )),
            _ => None,
        };
        if let Some(what) = unconfirmed {
            return Err(fail(
                FwFailure::Unconfirmed(what),
                AbortOutcome::NotNeeded,
                total,
            ));
        }
        Ok(TransferReport {
            target: self.target(),
            slot,
            bytes: total,
            parts: parts.len(),
            part_size: part,
            busy_retries: run.busy_retries,
            elapsed,
            revision_before,
            revision,
            info,
        })
    }

    fn observe_abort(&self, observer: &mut dyn FnMut(&Progress), progress: &mut Progress) {
        progress.phase = Phase::Abort;
        observer(progress);
    }

    /// Activate FW (0202h), CXL r3.1 §8.2.9.3.3: makes `slot` active now (online) or at the
    /// next cold reset, waits for an online activation that runs in the background (as
    /// [`Cci::fw_transfer`] waits for a part), and confirms with Get FW Info that the slot is
    /// active (online) or staged (on reset).
    ///
    /// Errors: [`FwFailure::Invalid`] for a slot outside 1..=slots, or the active slot with
    /// `Online`; [`FwFailure::Command`] (for example Activation Failed, FW Rolled Back (0Ch)
    /// or Cold Reset Required (0Dh), with [`rc_meaning`]); [`FwFailure::Unconfirmed`].
    pub fn fw_activate(
        &self,
        slot: u8,
        action: ActivateAction,
        opts: &FwOptions,
    ) -> std::result::Result<ActivateReport, FwError> {
        let op = self.op(format!("activation of slot {slot} ({action})"));
        let before = self.fw_prepare(&op, opts)?;
        check_slot(&before, slot, action == ActivateAction::Online)
            .map_err(|what| FwError::new(&op, self.target(), FwFailure::Invalid(what)))?;
        let mut run = Run {
            opts,
            cancel: None,
            busy_retries: 0,
        };
        let input = Activate { action, slot }.encode();
        let command = |error, context: &str| FwError::command(&op, self.target(), error, context);
        match self.fw_exec(&mut run, opcode::ACTIVATE_FW, &input, false) {
            Ok(_) => {}
            Err(Stop::Failed { error, .. }) => return Err(command(error, "activation")),
            Err(Stop::Cancelled { .. }) => {
                return Err(FwError::new(&op, self.target(), FwFailure::Cancelled));
            }
        }
        let info = self
            .fw_info()
            .map_err(|e| command(e, "reading the slots after the activation"))?;
        let (done, what) = match action {
            ActivateAction::Online => (info.active_slot == slot, "active"),
            ActivateAction::OnReset => (info.staged_slot == slot, "staged for the next reset"),
        };
        if !done {
            return Err(FwError::new(
                &op,
                self.target(),
                FwFailure::Unconfirmed(format!(
                    "slot {slot} is not {what} (active slot {}, staged slot {})",
                    slot_text(info.active_slot),
                    slot_text(info.staged_slot)
                )),
            ));
        }
        Ok(ActivateReport {
            slot,
            action,
            busy_retries: run.busy_retries,
            info,
        })
    }

    /// Transfer FW (0201h) with the Abort action: drops the transfer open on the device,
    /// whoever started it (Busy retried), then Get FW Info. A device with nothing open
    /// returns success too.
    ///
    /// Errors: [`FwFailure::Command`].
    pub fn fw_abort(&self, opts: &FwOptions) -> std::result::Result<AbortReport, FwError> {
        let op = self.op("firmware transfer abort");
        let mut run = Run {
            opts,
            cancel: None,
            busy_retries: 0,
        };
        let command = |error, context: &str| FwError::command(&op, self.target(), error, context);
        self.mailbox()
            .set_bg_timeout(bg_timeout_ms(opts.bg_timeout))
            .map_err(|e| command(e, "setting the background timeout"))?;
        self.fw_abort_command(&mut run)
            .map_err(|e| command(e, "Transfer FW (Abort)"))?;
        let info = self
            .fw_info()
            .map_err(|e| command(e, "reading the slots after the abort"))?;
        Ok(AbortReport {
            busy_retries: run.busy_retries,
            info,
        })
    }
}

/// Checks that `slot` is one of the device's and, if `not_active`, not the active one.
fn check_slot(info: &FwInfo, slot: u8, not_active: bool) -> std::result::Result<(), String> {
    let n = info.slots_supported;
    if slot == 0 || slot > n.min(fwp::MAX_SLOTS) {
        return Err(format!(
            "slot {slot} is not a slot of this device (it has slots 1 to {n})"
        ));
    }
    if not_active && slot == info.active_slot {
        return Err(format!(
            "slot {slot} is the active slot, which the device does not overwrite or \
             reactivate; choose another of slots 1 to {n}"
        ));
    }
    Ok(())
}

#[cfg(test)]
#[path = "fw_tests.rs"]
mod tests;
