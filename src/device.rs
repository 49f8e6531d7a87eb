// SPDX-License-Identifier: GPL-2.0

//! The mailbox as a kernel object: one per bound function, shared (through `Arc`) by the driver
//! data, open files and the interrupt handler.
//!
//! - One command path: [`Swcci::run`] takes a [`Command`], which only the access policy
//!   (`policy.rs`) makes, and runs it: the foreground part under the device mutex
//!   ([`Locked::foreground`], which MMPT transfers use for each part too), then the wait for a
//!   background operation without it.
//! - Lock rules in types: the fields the device mutex protects are [`State`]; everything that
//!   needs the mutex is a method of [`Locked`], the device with its mutex held (as Rust binder
//!   keeps lock-requiring helpers on `ProcessInner`). The proto [`Mailbox`] (not `Copy`;
//!   submitting takes `&mut`) lives in the state, so commands can only be sent through the
//!   guard.
//! - Background operations: the [`BgTracker`] in the state records what every caller saw of
//!   the device's one background slot, so a waiter gets its own operation's result, or learns
//!   at once that it was lost (another caller's background command was accepted first:
//!   ENODATA; a function reset: EIO), never another operation's result and never a timeout for
//!   an operation that ended. A waiter interrupted by a signal that does not kill it returns
//!   ERESTARTSYS and resumes the same wait when the system call is restarted ([`Resume`]); only
//!   a fatal signal may abort the operation (the caller's policy).
//! - The device's [`Lifecycle`] (live, failed, removing, gone) is one atomic enum: waiters read
//!   it without the mutex; the transitions that must not race a command (to failed, to gone)
//!   are made with the mutex held.
//! - Waiting: interrupts when the device has them and vectors were allocated, else polling that
//!   spins a few microseconds, then sleeps with growing intervals. In interrupt mode the
//!   registers are still re-checked ([`IRQ_RECHECK_MS`] growing to [`IRQ_RECHECK_MAX_MS`]), so
//!   lost interrupts cost latency, not correctness; after [`MISSED_IRQ_LIMIT`] misses in a row
//!   the device falls back to polling. A command that completes at once takes no clock read,
//!   no spinlock and no atomic read-modify-write.
//! - Unbind: the lifecycle moves to removing and every waiter is woken the way the interrupt
//!   handler wakes them, then it moves to gone under the mutex; the BAR mapping is revoked
//!   afterwards, so nothing can touch unmapped registers.

use crate::{
    mmio::BarIo,
    policy::{
        self,
        Command,
        DevInfo,
        Target, //
    },
    proto::{
        bgtrack::{
            BgId,
            BgOutcome,
            BgPoll,
            BgTracker, //
        },
        mailbox::{
            AbortOutcome,
            BgWaitError,
            Event,
            IoError,
            Mailbox,
            Mapping,
            MboxError,
            RegIo,
            Response,
            Wait,
            WaitError, //
        },
        num::Dec,
        opcode,
        payload::{
            events::{
                EventLog,
                InterruptMode,
                InterruptPolicy,
                InterruptSetting,
                INTERRUPT_POLICY_DC_LEN, //
            },
            identify::Identify,
            logs, //
        },
        rc::ReturnCode,
        regs::MboxBgStatus,
    },
    sys, Disp,
};
use kernel::{
    pci::{
        self,
        DevresBar, //
    },
    prelude::*,
    str::CStr,
    sync::{
        aref::ARef,
        atomic::{
            Atomic,
            AtomicType,
            Relaxed, //
        },
        new_mutex,
        new_spinlock,
        new_spinlock_irq,
        poll::PollCondVar,
        Arc,
        ArcBorrow,
        CondVarTimeoutResult,
        Mutex,
        MutexGuard,
        SpinLock,
        SpinLockIrq, //
    },
    time::{
        delay::{
            fsleep,
            udelay, //
        },
        hrtimer::{
            ArcHrTimerHandle,
            HrTimer,
            HrTimerCallback,
            HrTimerCallbackContext,
            HrTimerPointer,
            HrTimerRestart,
            RelativeSoftMode, //
        },
        msecs_to_jiffies,
        Delta,
        Instant,
        Monotonic, //
    },
};

mod mmpt;
pub(crate) use mmpt::{
    Received,
    TransferLock, //
};

/// In interrupt mode, re-check the registers first after this long (ms), then after doubling
/// intervals up to [`IRQ_RECHECK_MAX_MS`]. Each re-check is a wake-up and a register read: at
/// 20 ms they cost a task waiting 100 ms about 1 % of a CPU more under QEMU (`tools/bench.sh`);
/// a lost interrupt costs at most this much latency, for [`MISSED_IRQ_LIMIT`] commands.
pub(crate) const IRQ_RECHECK_MS: u32 = 100;
/// Longest interval between register re-checks in interrupt mode (ms).
pub(crate) const IRQ_RECHECK_MAX_MS: u32 = 1000;
/// Consecutive completions found without their interrupt before falling back to polling.
pub(crate) const MISSED_IRQ_LIMIT: u32 = 3;
/// Polls that spin (1 µs each) before the first sleep.
const SPIN_POLLS: u32 = 4;
/// First sleep of a poll, in µs (fsleep sleeps rather than spins from 10 µs up).
const MIN_SLEEP_US: i64 = 10;
/// Longest single sleep of a poll, in µs. Sleeps are also at most an eighth of the time
/// already waited, so this only coarsens waits longer than 160 ms.
const MAX_SLEEP_US: i64 = 20_000;
/// Largest CEL kept (16384 entries).
const CEL_MAX: usize = 64 * 1024;
/// Size of one CEL entry (CXL r3.1 §8.2.9.5.2.1).
const CEL_ENTRY: usize = 4;

/// What kind of node a function gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A CXL switch mailbox CCI: `/dev/cxl/switchN`.
    SwitchCci,
    /// Any other function with a PCIe MMB, with or without MMPT registers (bound by
    /// `driver_override`): `/dev/swcci/mmptN`.
    Mmb,
}

/// Where a device is in its life. One atomic value: waiters read it without the mutex.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub(crate) enum Life {
    /// Bound and answering.
    Live = 0,
    /// Bound, but its registers read all ones (surprise removal, a dead link): every command
    /// fails with ENXIO until it is rebound.
    Failed = 1,
    /// Unbind has begun: every wait ends.
    Removing = 2,
    /// Unbound: nothing reaches the hardware any more.
    Gone = 3,
}

// SAFETY: `Life` is a fieldless `repr(i32)` enum: same size and alignment as `i32`, and every
// value of it transmutes to an `i32` and back to itself (the round trip `AtomicType` requires).
unsafe impl AtomicType for Life {
    type Repr = i32;
}

/// The lifecycle of a device.
pub(crate) struct Lifecycle(Atomic<Life>);

impl Lifecycle {
    fn new() -> Self {
        Self(Atomic::new(Life::Live))
    }

    /// The current state.
    pub(crate) fn get(&self) -> Life {
        self.0.load(Relaxed)
    }

    /// Whether the device is still bound (live or failed).
    pub(crate) fn bound(&self) -> bool {
        matches!(self.get(), Life::Live | Life::Failed)
    }

    /// Live to failed, under the mutex (`_st`); returns whether this call made the change.
    fn fail(&self, _st: &mut State) -> bool {
        self.0.cmpxchg(Life::Live, Life::Failed, Relaxed).is_ok()
    }

    /// Removal begins: every wait ends with [`WaitError::Gone`].
    fn start_removal(&self) {
        self.0.store(Life::Removing, Relaxed);
    }

    /// Removal ends, under the mutex (`_st`): no command is in flight and none can start.
    fn finish_removal(&self, _st: &mut State) {
        self.0.store(Life::Gone, Relaxed);
    }
}

/// Return code slots counted: 00h..=20h, then one for unknown codes.
pub(crate) const RC_SLOTS: usize = 34;

/// Counters shown in debugfs, kept under the mutex (plain integers: no atomics on the command
/// path). Interrupt counters, which the handler updates, are [`IrqStats`].
#[derive(Clone)]
pub(crate) struct Stats {
    pub(crate) commands: u64,
    /// Completed commands by return code: 00h..=20h, then one slot for unknown codes.
    pub(crate) by_rc: [u64; RC_SLOTS],
    pub(crate) timeouts: u64,
    pub(crate) busy: u64,
    pub(crate) io_errors: u64,
    pub(crate) bad_length: u64,
    pub(crate) bg_started: u64,
    pub(crate) bg_completed: u64,
    pub(crate) bg_timeouts: u64,
    pub(crate) bg_interrupted: u64,
    pub(crate) bg_aborts: u64,
    /// Background operations whose result another caller's background command overwrote
    /// before it was read (their callers got ENODATA).
    pub(crate) bg_superseded: u64,
    /// Background operations that vanished from the register (function reset; EIO).
    pub(crate) bg_vanished: u64,
    pub(crate) missed_irqs: u64,
    /// Register checks after a wait (the first check of every wait is not counted).
    pub(crate) polls: u64,
    /// Waits that spun for a microsecond.
    pub(crate) spins: u64,
    /// Waits that slept (fsleep).
    pub(crate) sleeps: u64,
    /// Waits that slept until an interrupt (or the re-check interval).
    pub(crate) irq_waits: u64,
    /// Commands that completed without any wait.
    pub(crate) immediate: u64,
    /// How long the last command that had to wait waited, in ns.
    pub(crate) last_latency_ns: u64,
}

impl Stats {
    const fn new() -> Self {
        Self {
            commands: 0,
            by_rc: [0; RC_SLOTS],
            timeouts: 0,
            busy: 0,
            io_errors: 0,
            bad_length: 0,
            bg_started: 0,
            bg_completed: 0,
            bg_timeouts: 0,
            bg_interrupted: 0,
            bg_aborts: 0,
            bg_superseded: 0,
            bg_vanished: 0,
            missed_irqs: 0,
            polls: 0,
            spins: 0,
            sleeps: 0,
            irq_waits: 0,
            immediate: 0,
            last_latency_ns: 0,
        }
    }

    fn count_rc(&mut self, rc: ReturnCode) {
        let slot = usize::from(rc.raw()).min(RC_SLOTS - 1);
        if let Some(c) = self.by_rc.get_mut(slot) {
            *c += 1;
        }
    }

    fn count_error(&mut self, e: &MboxError) {
        let counter = match e {
            MboxError::Timeout | MboxError::NotReady | MboxError::NoAttention => &mut self.timeouts,
            MboxError::Busy => &mut self.busy,
            MboxError::BadOutputLength { .. } => &mut self.bad_length,
            MboxError::Io(_) | MboxError::Interrupted | MboxError::Changed => &mut self.io_errors,
            MboxError::Background {
                cause: WaitError::Timeout,
                ..
            } => &mut self.bg_timeouts,
            MboxError::Background {
                cause: WaitError::Interrupted | WaitError::Killed,
                ..
            } => &mut self.bg_interrupted,
            MboxError::Background { .. } => &mut self.io_errors,
            // Counted when the tracker recorded them (bg_superseded, bg_vanished).
            MboxError::BackgroundLost { .. }
            | MboxError::InputTooLarge { .. }
            | MboxError::BadPayloadSize(_) => return,
        };
        *counter += 1;
    }

    /// Adds what one waiter did.
    fn add_waits(&mut self, w: &WaitCounts) {
        self.polls += w.polls;
        self.spins += w.spins;
        self.sleeps += w.sleeps;
        self.irq_waits += w.irq_waits;
    }
}

/// Counters the interrupt handler updates.
pub(crate) struct IrqStats {
    pub(crate) irqs: Atomic<u64>,
    pub(crate) spurious_irqs: Atomic<u64>,
    /// Interrupts on a vector an event log uses.
    pub(crate) event_irqs: Atomic<u64>,
}

/// An MMPT message the function returned inline with a Send Message, kept for the next
/// receive.
pub(crate) struct InlineMsg {
    pub(crate) msg_type: u8,
    pub(crate) data: KVVec<u8>,
}

/// Most inline responses kept for receivers.
pub(crate) const INBOX_MAX: usize = 16;

/// The fields the device mutex protects.
///
/// # Invariants
///
/// - `inbox` holds at most [`INBOX_MAX`] messages and has room for one more, allocated at
///   creation: queueing and putting back a message never allocate (so never fail with ENOMEM
///   after the device took or gave the message).
pub(crate) struct State {
    /// The mailbox: commands are submitted through `&mut` of it only.
    pub(crate) mbox: Mailbox,
    /// The background operations callers started and wait for.
    pub(crate) bg: BgTracker,
    /// Inline MMPT responses not yet received.
    pub(crate) inbox: KVec<InlineMsg>,
    pub(crate) stats: Stats,
}

/// A rate limit for the kernel messages a faulty device can provoke in a loop (resets,
/// removals, lost background results): at most [`RateLimit::BURST`] per
/// [`RateLimit::WINDOW_MS`], then one line saying how many were suppressed (as the kernel's
/// `dev_*_ratelimited`, which 7.3's Rust does not wrap).
#[pin_data]
pub(crate) struct RateLimit {
    #[pin]
    window: SpinLock<RateWindow>,
}

/// One window of a [`RateLimit`].
struct RateWindow {
    start: Option<Instant<Monotonic>>,
    printed: u32,
    suppressed: u32,
}

impl RateLimit {
    /// Messages let through per window.
    pub(crate) const BURST: u32 = 10;
    /// Length of a window, in ms.
    pub(crate) const WINDOW_MS: i64 = 5000;

    fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            window <- new_spinlock!(RateWindow {
                start: None,
                printed: 0,
                suppressed: 0,
            }),
        })
    }

    /// Whether a message may be printed now; `suppressed` is called first (it may print) with
    /// the count of messages suppressed in the window that just ended, if any.
    pub(crate) fn allow(&self, suppressed: impl FnOnce(u32)) -> bool {
        let mut w = self.window.lock();
        let over = w
            .start
            .is_none_or(|s| s.elapsed() >= Delta::from_millis(Self::WINDOW_MS));
        if over {
            let n = w.suppressed;
            *w = RateWindow {
                start: Some(Instant::now()),
                printed: 0,
                suppressed: 0,
            };
            if n > 0 {
                suppressed(n);
            }
        }
        if w.printed < Self::BURST {
            w.printed += 1;
            return true;
        }
        w.suppressed = w.suppressed.saturating_add(1);
        false
    }
}

/// A caller's background wait that a signal ended without killing it: the system call returns
/// ERESTARTSYS, and when the same caller (an open file) asks the same command again (the
/// restarted call, or the same call reissued after EINTR), the wait resumes for the same
/// operation instead of sending the command again. Any other command forgets it (the operation
/// keeps running on its own).
///
/// # Invariants
///
/// `any` is true while `pending` holds a wait (set after it is stored, cleared after it is
/// taken), so the command path reads one atomic when there is none.
#[pin_data]
pub(crate) struct Resume {
    #[pin]
    pending: SpinLock<Option<(BgId, u16, u64)>>,
    any: Atomic<bool>,
}

impl Resume {
    /// Nothing to resume.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            pending <- new_spinlock!(None),
            any: Atomic::new(false),
        })
    }

    /// Takes the interrupted wait `cmd` resumes (the same fingerprint), if any: its operation
    /// and opcode. Any interrupted wait is forgotten.
    fn take(&self, cmd: &Command<'_>) -> Option<(BgId, u16)> {
        let pending = self.pending.lock().take();
        self.any.store(false, Relaxed);
        let (id, opcode, fp) = pending?;
        (opcode == cmd.opcode() && fp == cmd.fingerprint()).then_some((id, opcode))
    }

    fn set(&self, cmd: &Command<'_>, id: BgId) {
        *self.pending.lock() = Some((id, cmd.opcode(), cmd.fingerprint()));
        self.any.store(true, Relaxed);
    }

    /// Whether no wait is pending (the common case: one atomic read, no fingerprint).
    fn is_empty(&self) -> bool {
        !self.any.load(Relaxed)
    }
}

/// The asynchronous background operation of one open file (`SWCCI_BG_ASYNC`,
/// Documentation/abi.rst): at most one per file, from the command that started it until
/// `SWCCI_IOCTL_BG_RESULT` collects its outcome.
#[pin_data]
pub(crate) struct AsyncSlot {
    #[pin]
    state: SpinLock<AsyncOp>,
}

/// The state of an [`AsyncSlot`].
#[derive(Clone, Copy, PartialEq, Eq)]
enum AsyncOp {
    /// None: a command may start one.
    Free,
    /// A command that may start one is being sent (by another thread of the file).
    Reserved,
    /// This operation: its id and opcode.
    Op(BgId, u16),
}

impl AsyncSlot {
    /// Empty.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            state <- new_spinlock!(AsyncOp::Free),
        })
    }

    /// Reserves the slot for a command about to be sent; false if it holds an operation (or
    /// another thread's command reserved it).
    fn reserve(&self) -> bool {
        let mut s = self.state.lock();
        if *s != AsyncOp::Free {
            return false;
        }
        *s = AsyncOp::Reserved;
        true
    }

    /// Ends a reservation: the command started operation `op`, or none.
    fn settle(&self, op: Option<(BgId, u16)>) {
        *self.state.lock() = op.map_or(AsyncOp::Free, |(id, opcode)| AsyncOp::Op(id, opcode));
    }

    /// The operation held, if any.
    fn op(&self) -> Option<(BgId, u16)> {
        match *self.state.lock() {
            AsyncOp::Op(id, opcode) => Some((id, opcode)),
            _ => None,
        }
    }
}

/// What one file that polls keeps: the event sequence it saw last, and that it counts among
/// the device's pollers (the poll timer runs while there are any).
pub(crate) struct Poller {
    seen_events: Atomic<u64>,
    counted: Atomic<bool>,
}

impl Poller {
    /// A new file's: no events seen yet beyond those signalled before it was opened.
    pub(crate) fn new(dev: &Swcci) -> Self {
        Self {
            seen_events: Atomic::new(dev.event_seq.load(Relaxed)),
            counted: Atomic::new(false),
        }
    }

    /// The file reads event records (Get Event Records 0100h): what was signalled until now is
    /// seen.
    pub(crate) fn looked_at_events(&self, dev: &Swcci) {
        self.seen_events.store(dev.event_seq.load(Relaxed), Relaxed);
    }

    /// The file is closed: it no longer counts as a poller of `dev`.
    pub(crate) fn release(&self, dev: &Swcci) {
        if self.counted.xchg(false, Relaxed) {
            dev.pollers.fetch_sub(1, Relaxed);
        }
    }
}

/// poll(2) event bits (include/uapi/linux/eventpoll.h; the same on every architecture).
pub(crate) mod pollbits {
    /// EPOLLIN.
    pub(crate) const IN: u32 = 0x0001;
    /// EPOLLPRI.
    pub(crate) const PRI: u32 = 0x0002;
    /// EPOLLERR.
    pub(crate) const ERR: u32 = 0x0008;
    /// EPOLLHUP.
    pub(crate) const HUP: u32 = 0x0010;
    /// EPOLLRDNORM.
    pub(crate) const RDNORM: u32 = 0x0040;
}

/// Interval of the poll timer when the function has interrupts, in ms: a safety net for
/// interrupts that were lost.
pub(crate) const POLL_RECHECK_IRQ_MS: i64 = 1000;
/// Interval of the poll timer when the function has no interrupts, in ms: how late a poller
/// learns of a message, an operation's end or an event at most.
pub(crate) const POLL_RECHECK_MS: i64 = 250;

kernel::impl_has_hr_timer! {
    impl HasHrTimer<Self> for Swcci {
        mode: RelativeSoftMode<Monotonic>,
        field: self.poll_timer
    }
}

impl HrTimerCallback for Swcci {
    type Pointer<'a> = Arc<Swcci>;

    /// Runs in softirq context: reads the registers (no mutex) and wakes the pollers when one
    /// of them changed; keeps running while the device is bound and a file that polls is open.
    fn run(this: ArcBorrow<'_, Self>, mut ctx: HrTimerCallbackContext<'_, Self>) -> HrTimerRestart {
        let dev = &*this;
        if !dev.life.bound() || dev.pollers.load(Relaxed) == 0 {
            dev.poll_timer_on.store(false, Relaxed);
            return HrTimerRestart::NoRestart;
        }
        if dev.poll_registers_changed() {
            dev.wake_waiters();
        }
        ctx.forward_now(Delta::from_millis(dev.poll_interval_ms()));
        HrTimerRestart::Restart
    }
}

/// A bound mailbox function.
///
/// # Invariants
///
/// - `bg_tracked` mirrors whether `state.bg` tracks an operation (written under the mutex).
/// - `payload_size`, `flavor`, `kind`, `mmpt` never change after creation.
#[pin_data]
pub(crate) struct Swcci {
    pub(crate) pdev: ARef<pci::Device>,
    /// What the access policy reads of this function (quirks, identity and CEL, flags of the
    /// messages it logs once).
    pub(crate) target: Target,
    bar: DevresBar,
    pub(crate) kind: Kind,
    /// Node name below /dev.
    pub(crate) node_name: &'static CStr,
    /// Offset of the MMPT registers in the BAR, if the function has them.
    pub(crate) mmpt: Option<usize>,
    /// Offset of the Event Status register (CXL Device Status capability) in the BAR, if the
    /// function has one.
    device_status: Option<usize>,
    /// Offset of the Background Command Status register in the BAR.
    bg_status_offset: usize,
    /// Payload size in bytes (fixed at probe; a copy of the mailbox's, readable without the
    /// mutex).
    pub(crate) payload_size: usize,
    /// Protocol variant (fixed at probe).
    pub(crate) flavor: crate::proto::mailbox::Flavor,
    pub(crate) life: Lifecycle,
    #[pin]
    pub(crate) state: Mutex<State>,
    /// Serialises multi-part MMPT sends, and receives: parts of two messages never interleave,
    /// while other commands run between the parts (`device/mmpt.rs`).
    #[pin]
    pub(crate) mmpt_tx: TransferLock,
    #[pin]
    pub(crate) mmpt_rx: TransferLock,
    /// Interrupt sequence number, bumped by the handler and by [`Swcci::wake_waiters`].
    #[pin]
    irq_seq: SpinLockIrq<u64>,
    /// What waiters sleep on, and what poll(2) registers with: every wake-up (an interrupt,
    /// an operation that ended, unbind, the poll timer) wakes both.
    #[pin]
    irq_cv: PollCondVar,
    /// Re-checks the registers for pollers ([`Poller`]), while a file that polls is open.
    #[pin]
    poll_timer: HrTimer<Swcci>,
    /// The running poll timer (its handle holds a reference to the device: dropped at unbind).
    #[pin]
    poll_timer_handle: SpinLock<Option<ArcHrTimerHandle<Swcci>>>,
    /// The poll timer is queued or running.
    poll_timer_on: Atomic<bool>,
    /// Open files that have polled (the poll timer runs while there are any).
    pollers: Atomic<u32>,
    /// The registers the poll timer saw last: the Background Command Status, the MMPT
    /// Receive Message Notification and the Event Status (0 when the function has none).
    seen_bg: Atomic<u64>,
    seen_rx: Atomic<u64>,
    seen_events: Atomic<u32>,
    /// Bumped when the function signals events (an event interrupt, or the Event Status
    /// register gaining a log): a file that polls sees EPOLLPRI until it reads records.
    pub(crate) event_seq: Atomic<u64>,
    /// Doorbell completion is signalled by interrupt.
    irq_doorbell: Atomic<bool>,
    /// Background completion is signalled by interrupt.
    irq_background: Atomic<bool>,
    /// MMPT message arrival is signalled by interrupt.
    irq_mmpt: Atomic<bool>,
    missed_in_row: Atomic<u32>,
    /// Commands in progress, including background waits (for spurious interrupt accounting;
    /// counted only while an interrupt is in use).
    busy: Atomic<u32>,
    /// A background operation is tracked (mirrors `State::bg`, readable in interrupt context).
    bg_tracked: Atomic<bool>,
    /// Messages a faulty device can provoke in a loop.
    #[pin]
    pub(crate) noisy: RateLimit,
    pub(crate) irq_stats: IrqStats,
}

/// What one waiter did, added to the counters under the mutex.
#[derive(Default)]
struct WaitCounts {
    polls: u64,
    spins: u64,
    sleeps: u64,
    irq_waits: u64,
}

/// How one caller waits.
pub(crate) struct Waiter<'a> {
    dev: &'a Swcci,
    interruptible: bool,
    /// When the current wait began; `None` until the first wait (a command that completes at
    /// once reads no clock).
    start: Option<Instant<Monotonic>>,
    /// When the first wait of this waiter began.
    first: Option<Instant<Monotonic>>,
    budget: Delta,
    rounds: u32,
    seen_seq: u64,
    /// Interrupt waits that ended without an interrupt.
    irq_timeouts: u32,
    /// Interrupt waits that ended with one.
    irq_woken: u32,
    counts: WaitCounts,
}

impl<'a> Waiter<'a> {
    pub(crate) fn new(dev: &'a Swcci, interruptible: bool) -> Self {
        // The interrupt sequence number is taken before the command is sent, so that an
        // interrupt that comes before the first wait is not missed; polling needs none.
        let seen_seq = if dev.any_irq() {
            *dev.irq_seq.lock()
        } else {
            0
        };
        Self {
            dev,
            interruptible,
            start: None,
            first: None,
            budget: Delta::ZERO,
            rounds: 0,
            seen_seq,
            irq_timeouts: 0,
            irq_woken: 0,
            counts: WaitCounts::default(),
        }
    }

    fn irq_for(&self, event: Event) -> bool {
        match event {
            Event::Doorbell => self.dev.irq_doorbell.load(Relaxed),
            Event::Background | Event::AbortGrace => self.dev.irq_background.load(Relaxed),
            Event::Message => self.dev.irq_mmpt.load(Relaxed),
            Event::Ready | Event::Attention => false,
        }
    }

    fn sleep_poll(&mut self, elapsed: Delta, remaining: Delta) {
        if poll_pause(self.rounds, elapsed, remaining) {
            self.counts.sleeps += 1;
        } else {
            self.counts.spins += 1;
        }
    }

    /// Sleeps until the next interrupt or wake-up, or at most the re-check interval (and
    /// `remaining`).
    ///
    /// # Errors
    ///
    /// [`WaitError::Killed`] or [`WaitError::Interrupted`] ([`signal_cause`]) when a signal
    /// comes and the wait is `interruptible`; else a signal turns the sleep into a poll pause.
    fn sleep_irq(
        &mut self,
        elapsed: Delta,
        remaining: Delta,
        interruptible: bool,
    ) -> Result<(), WaitError> {
        // Re-check the registers after 100 ms, then after doubling intervals up to 1 s: a lost
        // interrupt costs latency, a long wait costs few wake-ups.
        let recheck = i64::from(IRQ_RECHECK_MS).saturating_mul(1i64 << self.rounds.min(5));
        let ms = remaining
            .as_millis_ceil()
            .clamp(1, recheck.min(i64::from(IRQ_RECHECK_MAX_MS)));
        // At most IRQ_RECHECK_MAX_MS after the clamp: fits.
        let ms = u32::try_from(ms).unwrap_or(IRQ_RECHECK_MAX_MS);
        let mut seq = self.dev.irq_seq.lock();
        if *seq == self.seen_seq {
            match self
                .dev
                .irq_cv
                .wait_interruptible_timeout(&mut seq, msecs_to_jiffies(ms))
            {
                CondVarTimeoutResult::Timeout => self.irq_timeouts += 1,
                CondVarTimeoutResult::Woken { .. } => {}
                CondVarTimeoutResult::Signal { .. } => {
                    drop(seq);
                    if interruptible {
                        return Err(signal_cause());
                    }
                    // Not ours to be interrupted: keep waiting without busy-looping.
                    self.sleep_poll(elapsed, remaining);
                    return Ok(());
                }
            }
        }
        if *seq != self.seen_seq {
            self.irq_woken += 1;
        }
        self.seen_seq = *seq;
        self.counts.irq_waits += 1;
        Ok(())
    }

    /// How long this waiter has waited since its first wait, in ns (0 if it never waited).
    fn waited_ns(&self) -> u64 {
        self.first
            .map(|t| u64::try_from(t.elapsed().as_nanos()).unwrap_or(0))
            .unwrap_or(0)
    }
}

impl Wait for Waiter<'_> {
    fn begin(&mut self, _event: Event, timeout_us: u64) {
        let now = Instant::now();
        self.start = Some(now);
        self.first.get_or_insert(now);
        self.budget = Delta::from_micros(i64::try_from(timeout_us).unwrap_or(i64::MAX));
        self.rounds = 0;
    }

    /// One pause of the wait for `event`.
    ///
    /// # Errors
    ///
    /// [`WaitError::Gone`] once the device is unbound or failed (its registers read all ones:
    /// nothing it shows can end the wait); [`WaitError::Timeout`] when the budget
    /// given to `begin` is spent; [`WaitError::Killed`] or [`WaitError::Interrupted`] on a
    /// signal, only for an interruptible waiter's background or message wait.
    fn wait(&mut self, event: Event) -> Result<(), WaitError> {
        if self.dev.life.get() != Life::Live {
            return Err(WaitError::Gone);
        }
        let elapsed = self.start.map(|t| t.elapsed()).unwrap_or(Delta::ZERO);
        if elapsed >= self.budget {
            return Err(WaitError::Timeout);
        }
        let remaining = self.budget - elapsed;
        // Only a background wait a caller asked for may end on a signal; a command in flight
        // is always waited for, or the mailbox would be left in an unknown state.
        let interruptible =
            self.interruptible && matches!(event, Event::Background | Event::Message);
        if interruptible && kernel::current!().signal_pending() {
            return Err(signal_cause());
        }
        if self.irq_for(event) {
            self.sleep_irq(elapsed, remaining, interruptible)?;
        } else {
            self.sleep_poll(elapsed, remaining);
        }
        self.rounds = self.rounds.saturating_add(1);
        self.counts.polls += 1;
        Ok(())
    }
}

/// Why a signal ends an interruptible wait: [`WaitError::Killed`] for a fatal one (the caller
/// is being killed), else [`WaitError::Interrupted`] (a handled signal, a stop, a ptrace
/// attach, the freezer), after which the system call restarts and the wait resumes.
fn signal_cause() -> WaitError {
    if sys::fatal_signal_pending() {
        WaitError::Killed
    } else {
        WaitError::Interrupted
    }
}

/// One pause of a poll loop, the `rounds`-th, `elapsed` into the wait: spin 1 µs for the first
/// [`SPIN_POLLS`] rounds, then sleep 10 µs doubling each round, and once the wait has gone on
/// for a while, an eighth of the time already waited (so polling adds at most 12.5 % to a
/// command's latency while the number of wake-ups grows only logarithmically); never more than
/// [`MAX_SLEEP_US`] and never past `remaining`. Returns whether it slept.
fn poll_pause(rounds: u32, elapsed: Delta, remaining: Delta) -> bool {
    if rounds < SPIN_POLLS {
        udelay(Delta::from_micros(1));
        return false;
    }
    let exp = (rounds - SPIN_POLLS).min(16);
    let us = MIN_SLEEP_US
        .saturating_mul(1i64 << exp)
        .min(elapsed.as_micros_ceil() / 8)
        .min(remaining.as_micros_ceil())
        .clamp(MIN_SLEEP_US, MAX_SLEEP_US);
    fsleep(Delta::from_micros(us));
    true
}

/// Polling waiter for probe, before the device object exists.
pub(crate) struct ProbeWaiter {
    start: Instant<Monotonic>,
    budget: Delta,
    rounds: u32,
}

impl ProbeWaiter {
    pub(crate) fn new() -> Self {
        Self {
            start: Instant::now(),
            budget: Delta::ZERO,
            rounds: 0,
        }
    }
}

impl Wait for ProbeWaiter {
    fn begin(&mut self, _event: Event, timeout_us: u64) {
        self.start = Instant::now();
        self.budget = Delta::from_micros(i64::try_from(timeout_us).unwrap_or(i64::MAX));
        self.rounds = 0;
    }

    /// One pause of the wait.
    ///
    /// # Errors
    ///
    /// [`WaitError::Timeout`] when the budget given to `begin` is spent.
    fn wait(&mut self, _event: Event) -> Result<(), WaitError> {
        let elapsed = self.start.elapsed();
        if elapsed >= self.budget {
            return Err(WaitError::Timeout);
        }
        poll_pause(self.rounds, elapsed, self.budget - elapsed);
        self.rounds = self.rounds.saturating_add(1);
        Ok(())
    }
}

/// Marks the device busy for interrupt accounting while alive.
struct BusyGuard<'a>(&'a Atomic<u32>);

impl<'a> BusyGuard<'a> {
    fn new(b: &'a Atomic<u32>) -> Self {
        b.add(1, Relaxed);
        Self(b)
    }
}

impl Drop for BusyGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

impl Swcci {
    /// A new device around an initialised mailbox.
    pub(crate) fn new(
        pdev: &pci::Device,
        bar: DevresBar,
        kind: Kind,
        mbox: Mailbox,
        node_name: &'static CStr,
        mmpt: Option<usize>,
        device_status: Option<usize>,
    ) -> impl PinInit<Self, Error> {
        let pdev: ARef<pci::Device> = pdev.into();
        let target = Target::new(pdev.clone(), mbox.flavor().mmb, mmpt.is_some());
        let payload_size = mbox.payload_size();
        let flavor = mbox.flavor();
        let bg_status_offset = MboxBgStatus::at(mbox.base());
        try_pin_init!(Self {
            pdev,
            target,
            bar,
            kind,
            node_name,
            mmpt,
            device_status,
            bg_status_offset,
            payload_size,
            flavor,
            life: Lifecycle::new(),
            // INVARIANT: the inbox has room for INBOX_MAX + 1 messages from the start.
            state <- new_mutex!(State {
                mbox,
                bg: BgTracker::new(),
                inbox: KVec::with_capacity(INBOX_MAX + 1, GFP_KERNEL)?,
                stats: Stats::new(),
            }),
            mmpt_tx <- TransferLock::new(),
            mmpt_rx <- TransferLock::new(),
            irq_seq <- new_spinlock_irq!(0),
            irq_cv <- kernel::new_poll_condvar!(),
            poll_timer <- HrTimer::new(),
            poll_timer_handle <- new_spinlock!(None),
            poll_timer_on: Atomic::new(false),
            pollers: Atomic::new(0),
            seen_bg: Atomic::new(0),
            seen_rx: Atomic::new(0),
            seen_events: Atomic::new(0),
            event_seq: Atomic::new(0),
            irq_doorbell: Atomic::new(false),
            irq_background: Atomic::new(false),
            irq_mmpt: Atomic::new(false),
            missed_in_row: Atomic::new(0),
            busy: Atomic::new(0),
            bg_tracked: Atomic::new(false),
            noisy <- RateLimit::new(),
            irq_stats: IrqStats {
                irqs: Atomic::new(0),
                spurious_irqs: Atomic::new(0),
                event_irqs: Atomic::new(0),
            },
        }? Error)
    }

    fn io(&self) -> BarIo<'_> {
        BarIo(&self.bar)
    }

    /// Identify and the CEL read at probe (empty if they could not be read).
    pub(crate) fn info(&self) -> &DevInfo {
        self.target.info()
    }

    /// Takes the device mutex.
    pub(crate) fn lock(&self) -> Locked<'_> {
        Locked {
            dev: self,
            st: self.state.lock(),
        }
    }

    /// Takes the device mutex of a function that is still bound and answering.
    ///
    /// # Errors
    ///
    /// [`IoError::Gone`] (ENXIO) when the device is unbound or failed.
    pub(crate) fn lock_live(&self) -> Result<Locked<'_>, MboxError> {
        let l = self.lock();
        if self.life.get() != Life::Live {
            return Err(MboxError::Io(IoError::Gone));
        }
        Ok(l)
    }

    /// Whether any interrupt is in use (then waiters track the interrupt sequence).
    fn any_irq(&self) -> bool {
        self.irq_doorbell.load(Relaxed)
            || self.irq_background.load(Relaxed)
            || self.irq_mmpt.load(Relaxed)
    }

    /// Switches completion signalling to interrupts (or back to polling) and programs the
    /// mailbox interrupt enables accordingly.
    ///
    /// # Errors
    ///
    /// As [`Locked::set_irq_mode`].
    pub(crate) fn set_irq_mode(&self, doorbell: bool, background: bool) -> Result<(), IoError> {
        self.lock().set_irq_mode(doorbell, background)
    }

    /// Whether doorbell completion is signalled by interrupt.
    pub(crate) fn irq_mode(&self) -> bool {
        self.irq_doorbell.load(Relaxed)
    }

    /// Whether background completion is signalled by interrupt.
    pub(crate) fn bg_irq_mode(&self) -> bool {
        self.irq_background.load(Relaxed)
    }

    /// The interrupt handler's work: count, and wake the waiters.
    pub(crate) fn handle_irq(&self) {
        self.irq_stats.irqs.add(1, Relaxed);
        if self.busy.load(Relaxed) == 0 && !self.bg_tracked.load(Relaxed) {
            self.irq_stats.spurious_irqs.add(1, Relaxed);
        }
        self.wake_waiters();
    }

    /// Wakes every waiter as an interrupt does: the sequence number moves under its lock, so a
    /// waiter that checked it and is about to sleep cannot miss the wake-up.
    pub(crate) fn wake_waiters(&self) {
        let mut seq = self.irq_seq.lock();
        *seq = seq.wrapping_add(1);
        drop(seq);
        self.irq_cv.notify_all();
    }

    /// The offset of the Event Status register in the BAR, if the function has one.
    pub(crate) fn event_status_offset(&self) -> Option<usize> {
        self.device_status
    }

    /// Open files that have polled.
    pub(crate) fn poller_count(&self) -> u32 {
        self.pollers.load(Relaxed)
    }

    /// What poll(2) registers with: every wake-up of the device's waiters wakes pollers too.
    pub(crate) fn poll_cv(&self) -> &PollCondVar {
        &self.irq_cv
    }

    /// Marks the device busy for spurious-interrupt accounting, when an interrupt is in use.
    fn busy_guard(&self) -> Option<BusyGuard<'_>> {
        self.any_irq().then(|| BusyGuard::new(&self.busy))
    }

    /// Removes the device: every wait ends, later commands fail with ENXIO. Returns once no
    /// command is in flight.
    pub(crate) fn remove(&self) {
        self.life.start_removal();
        self.wake_waiters();
        self.mmpt_tx.wake();
        self.mmpt_rx.wake();
        let mut l = self.lock();
        self.life.finish_removal(&mut l.st);
        if let Some((_, opcode)) = l.st.bg.current() {
            l.st.bg.drop_current();
            l.mirror_bg();
            dev_info!(
                self.pdev,
                "background command {opcode:04x}h still running at unbind\n"
            );
        }
        drop(l);
        // The poll timer stops (its handle's drop cancels it and waits for a callback in
        // progress) and lets go of the device; pollers see EPOLLHUP.
        let handle = self.poll_timer_handle.lock().take();
        drop(handle);
        self.wake_waiters();
    }

    /// Runs command `cmd`, with at most `out.len()` bytes of output to `out`: the foreground
    /// part under the device mutex, then, if the device started a background operation, the
    /// wait for it without the mutex, as the command's policy says. `resume` is the caller's
    /// record of an interrupted wait (open files have one; the driver's own commands not).
    ///
    /// # Errors
    ///
    /// ENXIO when the device is unbound or failed before the command; the foreground part's
    /// ([`Locked::foreground`]: ENXIO, EBUSY, ETIMEDOUT, EIO, EINVAL). For a background
    /// operation, as [`Self::wait_bg`]: [`MboxError::Background`] (with the abort outcome)
    /// with ETIMEDOUT when it did not end within the policy's timeout, ERESTARTSYS when a
    /// signal interrupted the wait (the caller restarts, see [`Resume`]), EINTR when the caller
    /// is being killed, ENXIO at unbind; [`MboxError::BackgroundLost`] with ENODATA when
    /// another caller's background command was accepted before its result was read, EIO when
    /// it vanished from the register (a function reset).
    pub(crate) fn run(
        &self,
        cmd: &Command<'_>,
        out: &mut [u8],
        resume: Option<&Resume>,
    ) -> Result<Response, MboxError> {
        let _busy = self.busy_guard();
        if let Some(r) = resume.filter(|r| !r.is_empty()) {
            if let Some((id, opcode)) = r.take(cmd) {
                dev_dbg!(
                    self.pdev,
                    "resuming the wait for background command {opcode:04x}h\n"
                );
                return self.wait_bg(cmd, id, resume);
            }
        }
        let mut l = self.lock_live()?;
        let r = l.foreground(cmd, out)?;
        if !l.st.mbox.is_background(&r) {
            return Ok(r);
        }
        let id = l.start_bg(cmd.opcode());
        drop(l);
        self.wait_bg(cmd, id, resume)
    }

    /// Waits for background operation `id` of command `cmd`, without the device mutex between
    /// looks; ends with its own outcome, or as `cmd`'s policy says when the wait ends first.
    ///
    /// # Errors
    ///
    /// [`Locked::finish_bg`]'s: ETIMEDOUT, ERESTARTSYS (recorded in `resume`, to resume the
    /// wait), EINTR, ENXIO ([`MboxError::Background`]); ENODATA, EIO
    /// ([`MboxError::BackgroundLost`]).
    fn wait_bg(
        &self,
        cmd: &Command<'_>,
        id: BgId,
        resume: Option<&Resume>,
    ) -> Result<Response, MboxError> {
        let opcode = cmd.opcode();
        let policy = cmd.bg();
        let mut w = Waiter::new(self, cmd.interruptible());
        // One look before any wait: the operation may be over already.
        let first = self.lock().look_bg(id);
        let cause = match first {
            Some(o) => return self.lock().finish_bg(opcode, Ok(o), &w),
            None => {
                w.begin(Event::Background, policy.timeout_us);
                loop {
                    if let Err(cause) = w.wait(Event::Background) {
                        break cause;
                    }
                    // The look's guard is dropped before the outcome is finished.
                    let seen = self.lock().look_bg(id);
                    if let Some(o) = seen {
                        return self.lock().finish_bg(opcode, Ok(o), &w);
                    }
                }
            }
        };
        let mut l = self.lock();
        // The operation may have ended while the wait ended (another caller saw it, or the
        // register shows it): its outcome, not the wait's end, is the answer.
        if cause != WaitError::Gone {
            if let Some(o) = l.look_bg(id) {
                return l.finish_bg(opcode, Ok(o), &w);
            }
        }
        let percent = l.percent_of(opcode);
        let err = BgWaitError { cause, percent };
        if cause == WaitError::Interrupted {
            if let Some(r) = resume {
                r.set(cmd, id);
            }
        }
        l.finish_bg(opcode, Err((err, cmd)), &w)
    }

    /// How often the poll timer re-checks the registers, in ms.
    fn poll_interval_ms(&self) -> i64 {
        if self.any_irq() {
            POLL_RECHECK_IRQ_MS
        } else {
            POLL_RECHECK_MS
        }
    }

    /// Whether a register a poller watches changed since the poll timer last looked: the
    /// Background Command Status while an operation is tracked, the MMPT Receive Message
    /// Notification, the Event Status (a log that gained records bumps the event sequence).
    /// Atomic context: reads only.
    fn poll_registers_changed(&self) -> bool {
        let io = self.io();
        let mut changed = false;
        if self.bg_tracked.load(Relaxed) {
            if let Ok(v) = io.with(|r| r.read64(self.bg_status_offset)).and_then(|v| v) {
                changed |= self.seen_bg.xchg(v, Relaxed) != v;
            }
        }
        if let Some(base) = self.mmpt {
            if let Ok(n) = crate::proto::mmpt::rx_notify(&io, base) {
                changed |= self.seen_rx.xchg(n.0, Relaxed) != n.0;
            }
        }
        if let Some(off) = self.device_status {
            if let Ok(v) = io.with(|r| r.read32(off)).and_then(|v| v) {
                let old = self.seen_events.xchg(v, Relaxed);
                if v & !old != 0 {
                    self.event_seq.add(1, Relaxed);
                    changed = true;
                }
            }
        }
        changed
    }

    /// Counts `p`'s file among the pollers and starts the poll timer if it is not running.
    fn keep_polling(self: &Arc<Self>, p: &Poller) {
        if !p.counted.xchg(true, Relaxed) {
            self.pollers.add(1, Relaxed);
        }
        if !self.life.bound() || self.poll_timer_on.xchg(true, Relaxed) {
            return;
        }
        // The timer compares with what it saw last: start from the registers as they are now
        // (while nobody polled they may have changed back and forth).
        self.seen_bg.store(0, Relaxed);
        if let Some(off) = self.device_status {
            let now = self
                .io()
                .with(|r| r.read32(off))
                .and_then(|v| v)
                .unwrap_or(0);
            self.seen_events.store(now, Relaxed);
        }
        // The previous handle, if any, belongs to a timer that stopped: dropping it cancels
        // nothing (or waits for its last callback) and lets go of its reference.
        let old = self.poll_timer_handle.lock().take();
        drop(old);
        let handle = self
            .clone()
            .start(Delta::from_millis(self.poll_interval_ms()));
        *self.poll_timer_handle.lock() = Some(handle);
    }

    /// The poll(2) mask of a file of this device: EPOLLIN|EPOLLRDNORM when an MMPT message is
    /// queued, or when `async_op`, the file's asynchronous background operation, ended;
    /// EPOLLPRI when events were signalled since the file last read records; EPOLLHUP|EPOLLERR
    /// once the device is unbound or stopped answering. Keeps the poll timer running for the
    /// file (`p`).
    pub(crate) fn poll_mask(self: &Arc<Self>, p: &Poller, async_op: Option<&AsyncSlot>) -> u32 {
        use pollbits::*;
        if self.life.get() != Life::Live {
            return HUP | ERR;
        }
        self.keep_polling(p);
        // What the timer would find now, found now.
        if self.poll_registers_changed() {
            self.wake_waiters();
        }
        let mut mask = 0;
        if self.event_seq.load(Relaxed) != p.seen_events.load(Relaxed) {
            mask |= PRI;
        }
        let mut l = self.lock();
        if self.mmpt.is_some() && (!l.st.inbox.is_empty() || l.rx_ready()) {
            mask |= IN | RDNORM;
        }
        if let Some((id, _)) = async_op.and_then(AsyncSlot::op) {
            if l.peek_bg(id).is_some() {
                mask |= IN | RDNORM;
            }
        }
        mask
    }

    /// Runs `cmd` for a file whose policy asks for asynchronous background operations
    /// (`SWCCI_BG_ASYNC`): when the device runs it in the background and the file holds no
    /// operation yet (`slot`), returns at once with the foreground response (return code 01h)
    /// and keeps the operation in the slot; otherwise as [`Self::run`].
    ///
    /// # Errors
    ///
    /// As [`Self::run`].
    pub(crate) fn run_async(
        &self,
        cmd: &Command<'_>,
        out: &mut [u8],
        resume: &Resume,
        slot: &AsyncSlot,
    ) -> Result<Response, MboxError> {
        if !slot.reserve() {
            return self.run(cmd, out, Some(resume));
        }
        let _busy = self.busy_guard();
        let res = (|| {
            let mut l = self.lock_live()?;
            let r = l.foreground(cmd, out)?;
            if !l.st.mbox.is_background(&r) {
                return Ok((r, None));
            }
            let id = l.start_bg(cmd.opcode());
            Ok((r, Some((id, cmd.opcode()))))
        })();
        match res {
            Ok((r, op)) => {
                slot.settle(op);
                Ok(r)
            }
            Err(e) => {
                slot.settle(None);
                Err(e)
            }
        }
    }

    /// The outcome of the asynchronous operation in `slot` (`SWCCI_IOCTL_BG_RESULT`), without
    /// collecting it: [`Self::bg_collect`] does, once the caller has it.
    pub(crate) fn bg_result(&self, slot: &AsyncSlot) -> crate::proto::uapi::SwcciBgResult {
        use crate::proto::uapi::*;
        let mut res = SwcciBgResult::default();
        let Some((id, opcode)) = slot.op() else {
            return res;
        };
        res.opcode = opcode;
        let mut l = self.lock();
        match l.peek_bg(id) {
            None => {
                res.state = SWCCI_BG_STATE_RUNNING;
                res.percent = l.percent_of(opcode);
            }
            Some(BgOutcome::Completed(r)) => {
                res.state = SWCCI_BG_STATE_DONE;
                res.retval = r.rc.raw();
                res.vendor_status = r.vendor_status;
            }
            Some(BgOutcome::Superseded) => res.state = SWCCI_BG_STATE_LOST,
            Some(BgOutcome::Vanished) => res.state = SWCCI_BG_STATE_VANISHED,
        }
        res
    }

    /// Collects the ended asynchronous operation in `slot` once the caller received its
    /// outcome `given` ([`Self::bg_result`]) and empties the slot; nothing when `given` said it
    /// was running (it may have ended since: the next call reports that).
    pub(crate) fn bg_collect(&self, slot: &AsyncSlot, given: &crate::proto::uapi::SwcciBgResult) {
        use crate::proto::uapi::{SWCCI_BG_STATE_NONE, SWCCI_BG_STATE_RUNNING};
        if given.state == SWCCI_BG_STATE_NONE || given.state == SWCCI_BG_STATE_RUNNING {
            return;
        }
        let Some((id, _)) = slot.op() else {
            return;
        };
        let _ = self.lock().look_bg(id);
        slot.settle(None);
    }

    /// Asks the function to signal its event logs by MSI/MSI-X (Set Event Interrupt Policy
    /// 0103h, for the informational, warning, failure and fatal logs; the Dynamic Capacity
    /// log's setting is left as it is), at probe, unless they already are; as
    /// drivers/cxl/pci.c does for memory devices. Returns whether the function takes event interrupts (it has
    /// the event commands and accepted the mode). The driver's own configuration: no taint.
    pub(crate) fn setup_event_interrupts(&self) -> bool {
        let Some(policy) = self.event_policy() else {
            return false;
        };
        let msi = InterruptSetting::new(InterruptMode::MsiMsix, 0);
        // The four logs by severity, as drivers/cxl/pci.c sets them; the dynamic capacity
        // log's setting stays as it is.
        let mut want = policy;
        for log in EventLog::SEVERITIES {
            if policy.setting(log).is_some() {
                want = want.with(log, msi);
            }
        }
        let all_msi = EventLog::SEVERITIES
            .iter()
            .filter_map(|&l| policy.setting(l))
            .all(|s| s.mode() == InterruptMode::MsiMsix);
        if !all_msi {
            let mut input = [0u8; INTERRUPT_POLICY_DC_LEN];
            let Ok(n) = want.encode(&mut input) else {
                return false;
            };
            let cmd = policy::internal(
                opcode::SET_EVENT_INTERRUPT_POLICY,
                input.get(..n).unwrap_or(&[]),
            );
            match self.run(&cmd, &mut [], None) {
                Ok(r) if r.rc.is_success() => {}
                Ok(r) => {
                    dev_dbg!(self.pdev, "Set Event Interrupt Policy: {}\n", Disp(&r.rc));
                    return false;
                }
                Err(e) => {
                    dev_dbg!(self.pdev, "Set Event Interrupt Policy: {}\n", Disp(&e));
                    return false;
                }
            }
        }
        self.event_msgnums().iter().any(Option::is_some)
    }

    /// The function's Event Interrupt Policy (Get Event Interrupt Policy 0102h), if it has the
    /// command.
    fn event_policy(&self) -> Option<InterruptPolicy> {
        let mut out = [0u8; INTERRUPT_POLICY_DC_LEN];
        let cmd = policy::internal(opcode::GET_EVENT_INTERRUPT_POLICY, &[]);
        match self.run(&cmd, &mut out, None) {
            Ok(r) if r.rc.is_success() => {
                InterruptPolicy::decode(out.get(..r.out_len).unwrap_or(&[])).ok()
            }
            _ => None,
        }
    }

    /// The MSI/MSI-X message number of each event log that interrupts in that mode, as the
    /// function reports them now (they follow the MSI vectors enabled).
    pub(crate) fn event_msgnums(&self) -> [Option<u8>; 5] {
        let mut nums = [None; 5];
        if let Some(p) = self.event_policy() {
            for (slot, log) in nums.iter_mut().zip(EventLog::ALL) {
                *slot = p
                    .setting(log)
                    .filter(|s| s.mode() == InterruptMode::MsiMsix)
                    .map(InterruptSetting::msgnum);
            }
        }
        nums
    }

    /// An interrupt came on a vector an event log uses: when the Event Status register shows
    /// records (or the function has none to read), pollers see EPOLLPRI. Interrupt context.
    pub(crate) fn note_event_irq(&self) {
        self.irq_stats.event_irqs.add(1, Relaxed);
        let status = self.device_status.map(|off| {
            self.io()
                .with(|r| r.read32(off))
                .and_then(|v| v)
                .unwrap_or(0)
        });
        if status.is_none_or(|v| v != 0 && v != u32::MAX) {
            self.event_seq.add(1, Relaxed);
        }
        if let Some(v) = status {
            self.seen_events.store(v, Relaxed);
        }
    }

    /// Reads Identify and the Command Effects Log into the device info, once, at probe.
    /// Failures are reported and leave the fields empty: the device stays usable for raw
    /// commands.
    pub(crate) fn read_identity(&self) {
        let mut buf = [0u8; 64];
        let ident = match self.run(&policy::internal(opcode::IDENTIFY, &[]), &mut buf, None) {
            Ok(r) if r.rc.is_success() => {
                match Identify::decode(buf.get(..r.out_len).unwrap_or(&[])) {
                    Ok(id) => Some(id),
                    Err(e) => {
                        dev_warn!(self.pdev, "Identify: {}\n", Disp(&e));
                        None
                    }
                }
            }
            Ok(r) => {
                dev_warn!(self.pdev, "Identify failed: {}\n", Disp(&r.rc));
                None
            }
            Err(e) => {
                dev_warn!(self.pdev, "Identify: {}\n", Disp(&e));
                None
            }
        };
        let cel = self.read_cel().unwrap_or_else(|e| {
            dev_warn!(self.pdev, "no Command Effects Log: {e:?}\n");
            KVec::new()
        });
        self.target.set_info(DevInfo { ident, cel });
    }

    /// Reads the CEL with Get Supported Logs, then Get Log in payload-sized pieces. A device
    /// that ends the log early (a successful Get Log with fewer bytes than asked, or none)
    /// gets its CEL kept as far as it was read, in whole entries, and one kernel message
    /// (as Linux does: drivers/cxl/core/mbox.c, commit 623c075).
    ///
    /// # Errors
    ///
    /// ENOMEM; the command's errno; ENODATA when the device lists no CEL or refuses Get
    /// Supported Logs; EPROTO for a malformed list; E2BIG for a CEL above 64 KiB; EIO when Get
    /// Log fails.
    fn read_cel(&self) -> Result<KVec<u8>> {
        let payload = self.payload_size;
        let mut out = KVec::from_elem(0u8, payload, GFP_KERNEL)?;
        let r = self.run(
            &policy::internal(opcode::GET_SUPPORTED_LOGS, &[]),
            &mut out,
            None,
        )?;
        if !r.rc.is_success() {
            dev_dbg!(self.pdev, "Get Supported Logs: {}\n", Disp(&r.rc));
            return Err(ENODATA);
        }
        let logs =
            logs::SupportedLogs::decode(out.get(..r.out_len).unwrap_or(&[])).map_err(|e| {
                dev_warn!(self.pdev, "Get Supported Logs: {}\n", Disp(&e));
                EPROTO
            })?;
        let announced = logs.find(&logs::CEL_UUID).ok_or(ENODATA)?;
        let size = usize::try_from(announced).unwrap_or(usize::MAX);
        if size > CEL_MAX {
            dev_warn!(
                self.pdev,
                "CEL of {size} bytes is larger than {CEL_MAX}: ignored\n"
            );
            return Err(E2BIG);
        }
        let mut cel = KVec::with_capacity(size, GFP_KERNEL)?;
        while cel.len() < size {
            let chunk = (size - cel.len()).min(payload);
            // Both at most CEL_MAX (64 KiB): they fit in u32.
            let offset = u32::try_from(cel.len()).map_err(|_| E2BIG)?;
            let length = u32::try_from(chunk).map_err(|_| E2BIG)?;
            let input = logs::get_log_input(&logs::CEL_UUID, offset, length);
            let r = self.run(&policy::internal(opcode::GET_LOG, &input), &mut out, None)?;
            if !r.rc.is_success() {
                dev_warn!(
                    self.pdev,
                    "Get Log (CEL) at {}: {}\n",
                    cel.len(),
                    Disp(&r.rc)
                );
                return Err(EIO);
            }
            let n = r.out_len.min(chunk);
            cel.extend_from_slice(out.get(..n).unwrap_or(&[]), GFP_KERNEL)?;
            if n < chunk {
                // Whole entries only.
                cel.truncate(cel.len() - cel.len() % CEL_ENTRY);
                dev_warn!(
                    self.pdev,
                    "Get Log (0401h) ended the CEL after {} of {size} bytes: using {} commands\n",
                    cel.len(),
                    cel.len() / CEL_ENTRY
                );
                break;
            }
        }
        Ok(cel)
    }
}

/// The device with its mutex held: everything that needs the mutex is a method of this type.
///
/// # Invariants
///
/// `st` is the guard of `dev.state`: the `&mut State` it gives proves that `dev`'s mutex is
/// held (what [`Lifecycle`]'s transitions under the mutex take).
pub(crate) struct Locked<'a> {
    pub(crate) dev: &'a Swcci,
    pub(crate) st: MutexGuard<'a, State>,
}

impl Locked<'_> {
    /// Keeps `bg_tracked` equal to whether the tracker tracks an operation (type invariant of
    /// [`Swcci`]).
    fn mirror_bg(&self) {
        self.dev
            .bg_tracked
            .store(self.st.bg.current().is_some(), Relaxed);
    }

    /// Reads the mailbox Capabilities register again (its interrupt message number, after the
    /// vectors are allocated).
    ///
    /// # Errors
    ///
    /// ENXIO when the function is gone (the register reads all ones, or the BAR is unmapped);
    /// EIO for a register outside the BAR (a driver bug).
    pub(crate) fn reread_caps(&mut self) -> Result<crate::proto::regs::MboxCaps> {
        let io = self.dev.io();
        Ok(self.st.mbox.reread_caps(&io)?)
    }

    /// Programs the mailbox interrupt enables and the waiters' mode.
    ///
    /// # Errors
    ///
    /// [`IoError::Gone`] once the BAR is unmapped (unbind); [`IoError::Range`] for a register
    /// outside the BAR (a driver bug). The waiters' mode is left as it was.
    pub(crate) fn set_irq_mode(&mut self, doorbell: bool, background: bool) -> Result<(), IoError> {
        let dev = self.dev;
        self.st
            .mbox
            .set_interrupts(&dev.io(), doorbell, background)?;
        let caps = self.st.mbox.caps();
        dev.irq_doorbell
            .store(doorbell && caps.doorbell_irq(), Relaxed);
        dev.irq_background.store(
            background && caps.background_irq() && dev.flavor.cxl,
            Relaxed,
        );
        Ok(())
    }

    /// Runs the foreground part of `cmd`: the engine's submission (the taint, and a look at the
    /// Background Command Status register when an operation is tracked, right before the
    /// doorbell), the doorbell wait and the readout; counters and fault reports.
    ///
    /// # Errors
    ///
    /// The engine's ([`MboxError`]), counted and reported ([`Self::report`]): ENXIO when the
    /// function stopped answering (a register reads all ones: the device is marked failed) or
    /// is unbound; EBUSY when the doorbell is already set; ETIMEDOUT when the doorbell does
    /// not clear in time, or an MMB function does not come to attention; EIO when the
    /// registers changed under the command, the device reports an output length above the
    /// payload size, or a register is outside the BAR; EINVAL for an input above the payload
    /// size (nothing is sent).
    pub(crate) fn foreground(
        &mut self,
        cmd: &Command<'_>,
        out: &mut [u8],
    ) -> Result<Response, MboxError> {
        let dev = self.dev;
        let io = dev.io();
        let mut req = cmd.request();
        req.watch_bg = self.st.bg.current().is_some();
        self.st.stats.commands += 1;
        if req.watch_bg && self.marked_background(&req) && self.still_running(cmd)? {
            // The device's own answer to a background command while one runs.
            self.st.stats.count_rc(ReturnCode::Busy);
            return Ok(Response {
                rc: ReturnCode::Busy,
                vendor_status: 0,
                out_len: 0,
                device_len: 0,
                background: None,
            });
        }
        let mut w = Waiter::new(dev, false);
        let mut ended = None;
        let st = &mut *self.st;
        let res = st.mbox.start_with(&io, &mut w, &req, out, |bg| {
            if let Some(bg) = bg {
                ended = st.bg.observe(bg).map(|_| bg);
            }
            cmd.apply_taint(&dev.target);
        });
        if let Some(bg) = ended {
            self.count_ended(bg, cmd.opcode());
        }
        self.note_irq_misses(&w);
        self.account_waits(&w);
        res.inspect(|r| {
            if !self.st.mbox.is_background(r) {
                self.st.stats.count_rc(r.rc);
            }
        })
        .inspect_err(|e| {
            self.st.stats.count_error(e);
            self.report(cmd.opcode(), e);
        })
    }

    /// Whether the device's CEL marks CXL command `req` as a background operation (effect
    /// bit 6, CXL r3.2 §8.2.10.5.2.1).
    fn marked_background(&self, req: &crate::proto::mailbox::Request<'_>) -> bool {
        req.opcode_vendor == 0
            && logs::Cel::new(&self.dev.info().cel)
                .find(req.opcode)
                .is_some_and(|e| e.effect & logs::effect::BACKGROUND_OP != 0)
    }

    /// Before a command the CEL marks as a background operation, while an operation is
    /// tracked: reads the Background Command Status register and tells whether the tracked
    /// operation still runs. Then the driver answers Busy (06h) for the device, as the device
    /// itself would (one background operation at a time, CXL r3.2 §8.2.8.4.6): ringing the
    /// doorbell instead would race the operation's end, since the device could accept the new
    /// command just after the operation ended, and that result, never read, would be lost to
    /// its waiter (ENODATA). An operation the register shows ended is recorded (its waiter
    /// woken) and the command goes on.
    ///
    /// # Errors
    ///
    /// [`MboxError::Io`] when the register cannot be read.
    fn still_running(&mut self, cmd: &Command<'_>) -> Result<bool, MboxError> {
        self.observe_register(cmd.opcode())?;
        Ok(self.st.bg.current().is_some())
    }

    /// Reads the Background Command Status register and records what it shows about the
    /// tracked operation ([`BgTracker::observe`]); an operation it shows ended is counted and
    /// its waiter woken. `now` is the opcode of the command being sent (0 for none), for the
    /// message.
    ///
    /// # Errors
    ///
    /// The register's read error ([`IoError::Gone`] for a function that is gone or no longer
    /// answers).
    fn observe_register(&mut self, now: u16) -> Result<(), IoError> {
        let bg = self.st.mbox.bg_status(&self.dev.io())?;
        if self.st.bg.observe(bg).is_some() {
            self.count_ended(bg, now);
        }
        Ok(())
    }

    /// Counts an operation the register `bg` showed ended (completed at 100 %, or vanished) and
    /// wakes its waiter. `now` is the opcode of the command being sent, for the message.
    fn count_ended(&mut self, bg: MboxBgStatus, now: u16) {
        self.mirror_bg();
        if bg.percent() >= 100 {
            self.st.stats.bg_completed += 1;
            self.st
                .stats
                .count_rc(ReturnCode::from_raw(bg.return_code()));
        } else {
            self.st.stats.bg_vanished += 1;
            if self.dev.noisy.allow(|n| {
                dev_warn!(
                    self.dev.pdev,
                    "{n} messages about lost background operations suppressed\n"
                )
            }) {
                dev_warn!(
                    self.dev.pdev,
                    "a background operation vanished from the register (it shows {:04x}h at {}%) before command {now:04x}h: function reset?\n",
                    bg.opcode(),
                    bg.percent()
                );
            }
        }
        self.dev.wake_waiters();
    }

    /// Records that the device accepted background command `opcode`: a tracked operation it
    /// replaces ended with its result unread (its waiter is woken to learn so).
    fn start_bg(&mut self, opcode: u16) -> BgId {
        self.st.stats.bg_started += 1;
        let (id, old) = self.st.bg.start(opcode);
        self.mirror_bg();
        if old.is_some() {
            self.st.stats.bg_superseded += 1;
            dev_dbg!(
                self.dev.pdev,
                "background command {opcode:04x}h accepted while another was tracked: its result is lost\n"
            );
            self.dev.wake_waiters();
        }
        id
    }

    /// Looks for the outcome of operation `id`: reads the Background Command Status register
    /// (recording what it shows about the tracked operation, whoever's it is), then asks the
    /// tracker. `None` while it runs. A register that cannot be read (the function is gone)
    /// ends the operation as vanished.
    fn look_bg(&mut self, id: BgId) -> Option<BgOutcome> {
        // Unbind forgets the tracked operation: the waiter's next wait ends with "gone".
        if !self.dev.life.bound() {
            return None;
        }
        if self.st.bg.is_current(id) {
            if let Err(e) = self.observe_register(0) {
                // A function that stopped answering: failed, and its waiters learn so (ENXIO)
                // instead of waiting out their timeouts.
                if e == IoError::Gone {
                    let opcode = self.st.bg.current().map_or(0, |(_, op)| op);
                    self.report(opcode, &MboxError::Io(e));
                    self.dev.wake_waiters();
                }
                return None;
            }
        }
        match self.st.bg.poll(id) {
            BgPoll::Running => None,
            BgPoll::Ended(o) => Some(o),
        }
    }

    /// Whether the function announces a received message (the Receive Message Notification
    /// register).
    fn rx_ready(&self) -> bool {
        self.dev.mmpt.is_some_and(|base| {
            crate::proto::mmpt::rx_notify(&self.dev.io(), base).is_ok_and(|n| n.ready())
        })
    }

    /// Like [`Self::look_bg`], without collecting an ended operation's outcome: whether
    /// operation `id` ended (for a readiness check).
    fn peek_bg(&mut self, id: BgId) -> Option<BgOutcome> {
        if self.st.bg.is_current(id) {
            // An unreadable register changes nothing here: a wait notices it (`look_bg`).
            let _ = self.observe_register(0);
        }
        match self.st.bg.peek(id) {
            BgPoll::Running => None,
            BgPoll::Ended(o) => Some(o),
        }
    }

    /// The progress the register shows for `opcode` (0 if it shows another).
    fn percent_of(&self, opcode: u16) -> u8 {
        match self.st.mbox.bg_status(&self.dev.io()) {
            Ok(bg) if bg.opcode() == opcode => bg.percent().min(100),
            _ => 0,
        }
    }

    /// Ends a background wait of `opcode` (waiter `w`): with the operation's outcome, or, for
    /// a wait that ended first, as the command's policy says (an abort for a timeout or a
    /// kill if asked; the driver's abort taints).
    ///
    /// # Errors
    ///
    /// [`MboxError::BackgroundLost`] for an operation superseded (ENODATA) or vanished (EIO);
    /// for a wait that ended first, [`MboxError::Background`] with [`WaitError::Gone`] (ENXIO)
    /// once the device is unbound, else with the wait's cause (ETIMEDOUT, ERESTARTSYS, EINTR)
    /// and the abort outcome ([`Self::give_up`]).
    fn finish_bg(
        &mut self,
        opcode: u16,
        end: Result<BgOutcome, (BgWaitError, &Command<'_>)>,
        w: &Waiter<'_>,
    ) -> Result<Response, MboxError> {
        self.account_more_waits(w);
        let res = match end {
            Ok(BgOutcome::Completed(r)) => return Ok(r),
            Ok(BgOutcome::Superseded) => Err(MboxError::BackgroundLost {
                opcode,
                superseded: true,
            }),
            Ok(BgOutcome::Vanished) => Err(MboxError::BackgroundLost {
                opcode,
                superseded: false,
            }),
            Err((e, cmd)) => {
                if e.cause == WaitError::Gone || !self.dev.life.bound() {
                    Err(MboxError::Background {
                        opcode,
                        cause: WaitError::Gone,
                        percent: e.percent,
                        abort: AbortOutcome::NotRequested,
                    })
                } else {
                    Err(self.give_up(cmd, e))
                }
            }
        };
        res.inspect_err(|e| {
            self.st.stats.count_error(e);
            self.report(opcode, e);
        })
    }

    /// A background wait of `cmd` ended before the operation did: requests an abort if the
    /// policy says so (the driver's abort taints: it changes state).
    fn give_up(&mut self, cmd: &Command<'_>, e: BgWaitError) -> MboxError {
        let dev = self.dev;
        let io = dev.io();
        let mut w = Waiter::new(dev, false);
        let taint = cmd.abort_taint();
        let st = &mut *self.st;
        let err = st
            .mbox
            .give_up(&io, &mut w, cmd.opcode(), &cmd.bg(), e, || {
                taint.apply(&dev.target)
            });
        self.account_more_waits(&w);
        if let MboxError::Background { abort, .. } = err {
            if abort != AbortOutcome::NotRequested {
                self.st.stats.bg_aborts += 1;
            }
            if matches!(abort, AbortOutcome::Stopped(_)) {
                self.st.bg.drop_current();
                self.mirror_bg();
            }
        }
        err
    }

    /// Counts a completion found without its interrupt; after [`MISSED_IRQ_LIMIT`] in a row,
    /// switches the device to polling.
    fn note_irq_misses(&mut self, w: &Waiter<'_>) {
        let dev = self.dev;
        if !dev.irq_mode() {
            return;
        }
        if w.irq_woken > 0 {
            dev.missed_in_row.store(0, Relaxed);
        } else if w.irq_timeouts > 0 {
            self.st.stats.missed_irqs += 1;
            let n = dev.missed_in_row.load(Relaxed).saturating_add(1);
            dev.missed_in_row.store(n, Relaxed);
            if n >= MISSED_IRQ_LIMIT {
                dev_warn!(
                    dev.pdev,
                    "{n} completions without their interrupt: falling back to polling\n"
                );
                if self.set_irq_mode(false, false).is_err() {
                    dev.irq_doorbell.store(false, Relaxed);
                    dev.irq_background.store(false, Relaxed);
                }
            }
        }
    }

    /// Adds what the waiter `w` of a command's foreground part did to the counters: a command
    /// that never waited is `immediate`.
    fn account_waits(&mut self, w: &Waiter<'_>) {
        if w.first.is_none() {
            self.st.stats.immediate += 1;
            return;
        }
        self.account_more_waits(w);
    }

    /// Adds what a further waiter `w` (background, abort) did to the counters.
    pub(crate) fn account_more_waits(&mut self, w: &Waiter<'_>) {
        if w.first.is_some() {
            self.st.stats.add_waits(&w.counts);
            self.st.stats.last_latency_ns = w.waited_ns();
        }
    }

    /// Logs a device fault the caller cannot be left to notice alone (rate limited: a faulty
    /// device can provoke them in a loop), and marks a function that stopped answering as
    /// failed. Each fault is logged once, here.
    pub(crate) fn report(&mut self, opcode: u16, e: &MboxError) {
        let dev = self.dev;
        if let MboxError::Io(IoError::Gone) = e {
            if dev.life.fail(&mut self.st) {
                dev_err!(
                    dev.pdev,
                    "device not responding (registers read all ones): failing commands until it is rebound\n"
                );
            }
            return;
        }
        let loud = matches!(
            e,
            MboxError::Timeout
                | MboxError::BadOutputLength { .. }
                | MboxError::Changed
                | MboxError::BackgroundLost { .. }
                | MboxError::Background {
                    cause: WaitError::Timeout,
                    ..
                }
        );
        if !loud
            || !dev
                .noisy
                .allow(|n| dev_warn!(dev.pdev, "{n} messages about device faults suppressed\n"))
        {
            return;
        }
        match e {
            MboxError::Timeout => dev_err!(
                dev.pdev,
                "command {opcode:04x}h: no completion within {} ms; the mailbox state is unknown\n",
                Disp(&Dec(crate::proto::mailbox::Timeouts::DEFAULT.doorbell_us / 1000))
            ),
            MboxError::BadOutputLength { claimed, max } => dev_err!(
                dev.pdev,
                "command {opcode:04x}h: device reports {claimed} output bytes, more than its {max}-byte payload: output dropped\n"
            ),
            MboxError::Changed => dev_err!(
                dev.pdev,
                "command {opcode:04x}h: the device's registers changed under the command (function reset?): output dropped\n"
            ),
            e => dev_info!(dev.pdev, "raw command {opcode:04x}h: {}\n", Disp(e)),
        }
    }
}
