// SPDX-License-Identifier: GPL-2.0

//! The mailbox as a kernel object: one per bound function, shared (through `Arc`) by the driver
//! data, open files and the interrupt handler.
//!
//! - Lock rules in types: the proto [`Mailbox`] (not `Copy`; submitting takes `&mut`) lives in
//!   [`State`] behind the device mutex, so commands can only be sent through the guard. A
//!   background operation is waited for without the mutex through a [`BgWatcher`], which can
//!   only read the Background Command Status register.
//! - The device's [`Lifecycle`] (live, failed, removing, gone) is one atomic enum: waiters read
//!   it without the mutex; the transitions that must not race a command (to failed, to gone)
//!   are made with the mutex held.
//! - A command takes the mutex once: lifecycle, the tracked background operation, the command
//!   itself (taint right before it is written to the device) and the counters, which are plain
//!   integers under the mutex. Payload buffers belong to the caller.
//! - Waiting: interrupts when the device has them and vectors were allocated, else polling that
//!   spins a few microseconds, then sleeps with growing intervals. In interrupt mode the
//!   registers are still re-checked ([`IRQ_RECHECK_MS`] growing to [`IRQ_RECHECK_MAX_MS`]), so
//!   lost interrupts cost latency, not correctness; after [`MISSED_IRQ_LIMIT`] misses in a row
//!   the device falls back to polling. A command that completes at once takes no clock read,
//!   no spinlock and no atomic read-modify-write.
//! - Unbind: the lifecycle moves to removing (every wait ends), then to gone under the mutex;
//!   the BAR mapping is revoked afterwards, so nothing can touch unmapped registers.

use crate::{
    mmio::BarIo,
    proto::{
        mailbox::{
            AbortOutcome,
            BgPolicy,
            BgWatcher,
            Event,
            IoError,
            Mailbox,
            MboxError,
            Request,
            Response,
            Wait,
            WaitError, //
        },
        num::Dec,
        opcode,
        payload::{
            identify::Identify,
            logs, //
        },
        rc::ReturnCode,
    },
    Disp,
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
        new_condvar,
        new_mutex,
        new_spinlock_irq,
        CondVar,
        CondVarTimeoutResult,
        Mutex,
        MutexGuard,
        SetOnce,
        SpinLockIrq, //
    },
    time::{
        delay::{
            fsleep,
            udelay, //
        },
        msecs_to_jiffies,
        Delta,
        Instant,
        Monotonic, //
    },
};

mod mmpt;
pub(crate) use mmpt::Received;

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

/// Device quirks, by PCI id.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Quirks {
    /// Get/Set Timestamp (0300h/0301h) sent to the CCI itself crash the device model (QEMU's
    /// emulated switch CCI, 19e5:a123, casts the switch to a type-3 device): refuse them.
    pub(crate) no_timestamp: bool,
}

impl Quirks {
    pub(crate) fn for_device(vendor: u16, device: u16) -> Self {
        Self {
            no_timestamp: (vendor, device) == (0x19e5, 0xa123),
        }
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
                cause: WaitError::Interrupted,
                ..
            } => &mut self.bg_interrupted,
            MboxError::Background { .. } => &mut self.io_errors,
            MboxError::InputTooLarge { .. } | MboxError::BadPayloadSize(_) => return,
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
}

/// A background operation started by a raw command and not yet seen to finish.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BgOp {
    pub(crate) id: u64,
    pub(crate) opcode: u16,
}

/// What identifies the device, read once at probe and unchanged afterwards.
#[derive(Default)]
pub(crate) struct DevInfo {
    pub(crate) ident: Option<Identify>,
    /// The Command Effects Log, whole 4-byte entries.
    pub(crate) cel: KVec<u8>,
}

/// What a device that could not be identified reports.
static NO_INFO: DevInfo = DevInfo {
    ident: None,
    cel: KVec::new(),
};

/// An MMPT message the function returned inline with a Send Message, kept for the next
/// receive.
pub(crate) struct InlineMsg {
    pub(crate) msg_type: u8,
    pub(crate) data: KVVec<u8>,
}

/// Most inline responses kept for receivers.
pub(crate) const INBOX_MAX: usize = 16;

/// State protected by the mailbox lock.
pub(crate) struct State {
    /// The mailbox: commands are submitted through `&mut` of it only.
    pub(crate) mbox: Mailbox,
    pub(crate) bg: Option<BgOp>,
    bg_next: u64,
    /// Completion of a background operation seen by another caller: (id, response).
    captured: Option<(u64, Response)>,
    /// Inline MMPT responses not yet received.
    pub(crate) inbox: KVec<InlineMsg>,
    pub(crate) stats: Stats,
}

/// A bound mailbox function.
#[pin_data]
pub(crate) struct Swcci {
    pub(crate) pdev: ARef<pci::Device>,
    bar: DevresBar,
    pub(crate) kind: Kind,
    pub(crate) quirks: Quirks,
    /// Node name below /dev.
    pub(crate) node_name: &'static CStr,
    /// Offset of the MMPT registers in the BAR, if the function has them.
    pub(crate) mmpt: Option<usize>,
    /// Payload size in bytes (fixed at probe; a copy of the mailbox's, readable without the
    /// mutex).
    pub(crate) payload_size: usize,
    /// Protocol variant (fixed at probe).
    pub(crate) flavor: crate::proto::mailbox::Flavor,
    /// Reads the Background Command Status register without the mutex.
    watcher: BgWatcher,
    pub(crate) life: Lifecycle,
    /// Identify and the CEL, set once at probe.
    info: SetOnce<DevInfo>,
    #[pin]
    pub(crate) state: Mutex<State>,
    /// Interrupt sequence number, bumped by the handler.
    #[pin]
    irq_seq: SpinLockIrq<u64>,
    #[pin]
    irq_cv: CondVar,
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
    /// The taint notice was printed for this device.
    pub(crate) taint_logged: Atomic<bool>,
    /// The lockdown refusal was logged for this device.
    pub(crate) lockdown_logged: Atomic<bool>,
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
struct Waiter<'a> {
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
    fn new(dev: &'a Swcci, interruptible: bool) -> Self {
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
                        return Err(WaitError::Interrupted);
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

    fn wait(&mut self, event: Event) -> Result<(), WaitError> {
        if !self.dev.life.bound() {
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
            return Err(WaitError::Interrupted);
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
    ) -> impl PinInit<Self, Error> {
        let quirks = Quirks::for_device(pdev.vendor_id().as_raw(), pdev.device_id());
        let pdev: ARef<pci::Device> = pdev.into();
        let payload_size = mbox.payload_size();
        let flavor = mbox.flavor();
        let watcher = mbox.bg_watcher();
        try_pin_init!(Self {
            pdev,
            bar,
            kind,
            quirks,
            node_name,
            mmpt,
            payload_size,
            flavor,
            watcher,
            life: Lifecycle::new(),
            info: SetOnce::new(),
            state <- new_mutex!(State {
                mbox,
                bg: None,
                bg_next: 0,
                captured: None,
                inbox: KVec::new(),
                stats: Stats::new(),
            }),
            irq_seq <- new_spinlock_irq!(0),
            irq_cv <- new_condvar!(),
            irq_doorbell: Atomic::new(false),
            irq_background: Atomic::new(false),
            irq_mmpt: Atomic::new(false),
            missed_in_row: Atomic::new(0),
            busy: Atomic::new(0),
            bg_tracked: Atomic::new(false),
            taint_logged: Atomic::new(false),
            lockdown_logged: Atomic::new(false),
            irq_stats: IrqStats {
                irqs: Atomic::new(0),
                spurious_irqs: Atomic::new(0),
            },
        }? Error)
    }

    fn io(&self) -> BarIo<'_> {
        BarIo(&self.bar)
    }

    /// Identify and the CEL read at probe (empty if they could not be read).
    pub(crate) fn info(&self) -> &DevInfo {
        self.info.as_ref().unwrap_or(&NO_INFO)
    }

    /// Takes the mailbox lock of a function that is still bound and answering; else
    /// [`IoError::Gone`] (ENXIO).
    fn lock_live(&self) -> Result<MutexGuard<'_, State>, MboxError> {
        let st = self.state.lock();
        if self.life.get() != Life::Live {
            return Err(MboxError::Io(IoError::Gone));
        }
        Ok(st)
    }

    /// Whether any interrupt is in use (then waiters track the interrupt sequence).
    fn any_irq(&self) -> bool {
        self.irq_doorbell.load(Relaxed)
            || self.irq_background.load(Relaxed)
            || self.irq_mmpt.load(Relaxed)
    }

    /// Switches completion signalling to interrupts (or back to polling) and programs the
    /// mailbox interrupt enables accordingly.
    pub(crate) fn set_irq_mode(&self, doorbell: bool, background: bool) -> Result<(), IoError> {
        let mut st = self.state.lock();
        self.set_irq_mode_locked(&mut st, doorbell, background)
    }

    /// [`Self::set_irq_mode`] for callers that hold the mailbox lock.
    fn set_irq_mode_locked(
        &self,
        st: &mut State,
        doorbell: bool,
        background: bool,
    ) -> Result<(), IoError> {
        st.mbox.set_interrupts(&self.io(), doorbell, background)?;
        let caps = st.mbox.caps();
        self.irq_doorbell
            .store(doorbell && caps.doorbell_irq(), Relaxed);
        self.irq_background.store(
            background && caps.background_irq() && self.flavor.cxl,
            Relaxed,
        );
        Ok(())
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
        let mut seq = self.irq_seq.lock();
        *seq = seq.wrapping_add(1);
        drop(seq);
        self.irq_cv.notify_all();
    }

    /// Marks the device busy for spurious-interrupt accounting, when an interrupt is in use.
    fn busy_guard(&self) -> Option<BusyGuard<'_>> {
        self.any_irq().then(|| BusyGuard::new(&self.busy))
    }

    /// Sets the tracked background operation.
    fn track_bg(&self, st: &mut State, op: Option<BgOp>) {
        st.bg = op;
        self.bg_tracked.store(op.is_some(), Relaxed);
    }

    /// Removes the device: every wait ends, later commands fail with ENXIO. Returns once no
    /// command is in flight.
    pub(crate) fn remove(&self) {
        self.life.start_removal();
        self.irq_cv.notify_all();
        let mut st = self.state.lock();
        self.life.finish_removal(&mut st);
        if let Some(op) = st.bg {
            self.track_bg(&mut st, None);
            dev_info!(
                self.pdev,
                "background command {:04x}h still running at unbind\n",
                op.opcode
            );
        }
    }

    /// Records the completion of the tracked background operation if the register shows it,
    /// before anything could start another one.
    fn refresh_bg(&self, st: &mut State) {
        let Some(op) = st.bg else { return };
        if let Ok(Some(r)) = self.watcher.completion(&self.io(), op.opcode) {
            dev_dbg!(
                self.pdev,
                "background command {:04x}h finished: {}\n",
                op.opcode,
                Disp(&r.rc)
            );
            st.stats.bg_completed += 1;
            st.stats.count_rc(r.rc);
            st.captured = Some((op.id, r));
            self.track_bg(st, None);
        }
    }

    /// Counts a completion found without its interrupt; after [`MISSED_IRQ_LIMIT`] in a row,
    /// switches the device to polling. Called with the mailbox lock held (`st`).
    fn note_irq_misses(&self, st: &mut State, w: &Waiter<'_>) {
        if !self.irq_mode() {
            return;
        }
        if w.irq_woken > 0 {
            self.missed_in_row.store(0, Relaxed);
        } else if w.irq_timeouts > 0 {
            st.stats.missed_irqs += 1;
            let n = self.missed_in_row.load(Relaxed).saturating_add(1);
            self.missed_in_row.store(n, Relaxed);
            if n >= MISSED_IRQ_LIMIT {
                dev_warn!(
                    self.pdev,
                    "{n} completions without their interrupt: falling back to polling\n"
                );
                if self.set_irq_mode_locked(st, false, false).is_err() {
                    self.irq_doorbell.store(false, Relaxed);
                    self.irq_background.store(false, Relaxed);
                }
            }
        }
    }

    /// Runs one command. `interruptible` lets a signal end the wait for a background
    /// operation (the operation keeps running unless `policy` says to abort it).
    pub(crate) fn execute(
        &self,
        opcode: u16,
        opcode_vendor: u16,
        input: &[u8],
        out: &mut [u8],
        policy: BgPolicy,
        interruptible: bool,
    ) -> Result<Response, MboxError> {
        self.execute_with(
            opcode,
            opcode_vendor,
            input,
            out,
            policy,
            interruptible,
            || (),
        )
    }

    /// [`Self::execute`], calling `before_send` once the command passed every check (the
    /// device is live, its doorbell free) and right before it is written to the device. Raw
    /// commands taint there, so that a command that never reaches a device does not.
    /// `before_send` runs with the BAR mapping held (RCU read lock): it must not sleep.
    ///
    /// One acquisition of the device mutex covers the lifecycle check, the tracked background
    /// operation, the command and the counters; a background operation is then waited for
    /// without the mutex.
    #[expect(clippy::too_many_arguments)]
    pub(crate) fn execute_with(
        &self,
        opcode: u16,
        opcode_vendor: u16,
        input: &[u8],
        out: &mut [u8],
        policy: BgPolicy,
        interruptible: bool,
        before_send: impl FnOnce(),
    ) -> Result<Response, MboxError> {
        let req = Request {
            opcode,
            opcode_vendor,
            input,
            bg: policy,
        };
        let io = self.io();
        let _busy = self.busy_guard();
        let mut st = self.lock_live()?;
        self.refresh_bg(&mut st);
        st.stats.commands += 1;
        let mut w = Waiter::new(self, false);
        let res = st.mbox.start_with(&io, &mut w, &req, out, before_send);
        self.note_irq_misses(&mut st, &w);
        self.account_waits(&mut st, &w);
        let r = res.inspect_err(|e| {
            st.stats.count_error(e);
            self.report(&mut st, opcode, e);
        })?;
        if !st.mbox.is_background(&r) {
            st.stats.count_rc(r.rc);
            return Ok(r);
        }

        // A background operation started: it supersedes any tracked one.
        st.stats.bg_started += 1;
        if let Some(old) = st.bg {
            dev_dbg!(
                self.pdev,
                "background command {:04x}h superseded\n",
                old.opcode
            );
        }
        st.bg_next = st.bg_next.wrapping_add(1);
        let id = st.bg_next;
        self.track_bg(&mut st, Some(BgOp { id, opcode }));
        drop(st);

        let mut w = Waiter::new(self, interruptible);
        let res = self
            .watcher
            .wait(&io, &mut w, opcode, policy.timeout_us, || {
                let mut st = self.state.lock();
                match st.captured {
                    Some((cid, r)) if cid == id => {
                        st.captured = None;
                        Some(r)
                    }
                    _ => None,
                }
            });

        let mut st = self.state.lock();
        self.account_more_waits(&mut st, &w);
        if let Err(e) = &res {
            if e.cause == WaitError::Gone {
                self.report(&mut st, opcode, &MboxError::Io(IoError::Gone));
            }
        }
        let ours = st.bg.is_some_and(|b| b.id == id);
        let gone = !self.life.bound();
        let res = match res {
            Ok(r) => {
                if ours {
                    self.track_bg(&mut st, None);
                    st.stats.bg_completed += 1;
                    st.stats.count_rc(r.rc);
                }
                Ok(r)
            }
            Err(e) if gone || !ours => Err(MboxError::Background {
                opcode,
                cause: if gone { WaitError::Gone } else { e.cause },
                percent: e.percent,
                abort: AbortOutcome::NotRequested,
            }),
            Err(e) => {
                let mut w = Waiter::new(self, false);
                let err = st.mbox.give_up(&io, &mut w, opcode, &policy, e);
                self.account_more_waits(&mut st, &w);
                if let MboxError::Background { abort, .. } = err {
                    if abort != AbortOutcome::NotRequested {
                        st.stats.bg_aborts += 1;
                    }
                    if matches!(abort, AbortOutcome::Stopped(_)) {
                        self.track_bg(&mut st, None);
                    }
                }
                Err(err)
            }
        };
        res.inspect_err(|e| st.stats.count_error(e))
    }

    /// Adds what the waiter `w` of a command's foreground part did to the counters: a command
    /// that never waited is `immediate`.
    fn account_waits(&self, st: &mut State, w: &Waiter<'_>) {
        if w.first.is_none() {
            st.stats.immediate += 1;
            return;
        }
        self.account_more_waits(st, w);
    }

    /// Adds what a further waiter `w` (background, abort) did to the counters.
    fn account_more_waits(&self, st: &mut State, w: &Waiter<'_>) {
        if w.first.is_some() {
            st.stats.add_waits(&w.counts);
            st.stats.last_latency_ns = w.waited_ns();
        }
    }

    /// Logs a device fault the caller cannot be left to notice alone, and marks a function that
    /// stopped answering as failed.
    fn report(&self, st: &mut State, opcode: u16, e: &MboxError) {
        match e {
            MboxError::Timeout => dev_err!(
                self.pdev,
                "command {opcode:04x}h: no completion within {} ms; the mailbox state is unknown\n",
                Disp(&Dec(crate::proto::mailbox::Timeouts::DEFAULT.doorbell_us / 1000))
            ),
            MboxError::BadOutputLength { claimed, max } => dev_err!(
                self.pdev,
                "command {opcode:04x}h: device reports {claimed} output bytes, more than its {max}-byte payload: output dropped\n"
            ),
            MboxError::Changed => dev_err!(
                self.pdev,
                "command {opcode:04x}h: the device's registers changed under the command (function reset?): output dropped\n"
            ),
            MboxError::Io(IoError::Gone) => {
                if self.life.fail(st) {
                    dev_err!(
                        self.pdev,
                        "device not responding (registers read all ones): failing commands until it is rebound\n"
                    );
                }
            }
            _ => {}
        }
    }

    /// A command the driver itself issues (probe): uninterruptible, default background policy.
    pub(crate) fn command(
        &self,
        opcode: u16,
        input: &[u8],
        out: &mut [u8],
    ) -> Result<Response, MboxError> {
        self.execute(opcode, 0, input, out, BgPolicy::DEFAULT, false)
    }

    /// Reads Identify and the Command Effects Log into the device info, once, at probe.
    /// Failures are reported and leave the fields empty: the device stays usable for raw
    /// commands.
    pub(crate) fn read_identity(&self) {
        let mut buf = [0u8; 64];
        let ident = match self.command(opcode::IDENTIFY, &[], &mut buf) {
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
        self.info.populate(DevInfo { ident, cel });
    }

    /// Reads the CEL with Get Supported Logs, then Get Log in payload-sized pieces. A device
    /// that ends the log early (a successful Get Log with fewer bytes than asked, or none)
    /// gets its CEL kept as far as it was read, in whole entries, and one kernel message
    /// (as Linux does: drivers/cxl/core/mbox.c, commit 623c075).
    fn read_cel(&self) -> Result<KVec<u8>> {
        let payload = self.payload_size;
        let mut out = KVec::from_elem(0u8, payload, GFP_KERNEL)?;
        let r = self
            .command(opcode::GET_SUPPORTED_LOGS, &[], &mut out)
            .map_err(|e| mbox_errno(&e))?;
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
            let r = self
                .command(opcode::GET_LOG, &input, &mut out)
                .map_err(|e| mbox_errno(&e))?;
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

/// The errno for an engine error.
pub(crate) fn mbox_errno(e: &MboxError) -> Error {
    crate::policy::errno(e.errno())
}
