// SPDX-License-Identifier: GPL-2.0

//! The mailbox as a kernel object: one per bound function, shared (through `Arc`) by the driver
//! data, open files and the interrupt handler.
//!
//! - Commands are serialised by `state` (a mutex); a background operation is waited for without
//!   it, so that other callers are not blocked (uninterruptibly) for its duration.
//! - Waiting: interrupts when the device has them and vectors were allocated, else polling that
//!   spins a few microseconds, then sleeps with growing intervals. In interrupt mode the
//!   registers are still re-checked ([`IRQ_RECHECK_MS`] growing to [`IRQ_RECHECK_MAX_MS`]), so
//!   lost interrupts cost latency, not correctness; after [`MISSED_IRQ_LIMIT`] misses in a row
//!   the device falls back to polling.
//! - Unbind: `removing` stops every wait, then `gone` is set under the lock; the BAR mapping is
//!   revoked afterwards, so nothing can touch unmapped registers.

use crate::proto::{
    mailbox::{BgPolicy, Event, IoError, Mailbox, MboxError, Request, Response, Wait, WaitError},
    num::Dec,
    opcode,
    payload::{identify::Identify, logs},
    rc::ReturnCode,
};
use crate::{mmio::BarIo, Disp};
use kernel::{
    pci::{self, DevresBar},
    prelude::*,
    str::CStr,
    sync::{
        aref::ARef,
        atomic::{Atomic, Relaxed},
        new_condvar, new_mutex, new_spinlock_irq, CondVar, CondVarTimeoutResult, Mutex, MutexGuard,
        SpinLockIrq,
    },
    time::{
        delay::{fsleep, udelay},
        msecs_to_jiffies, Delta, Instant, Monotonic,
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

/// What kind of node a function gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A CXL switch mailbox CCI: `/dev/cxl/switchN`.
    SwitchCci,
    /// Any other function with a PCIe MMB (bound by dynamic id): `/dev/swcci/mmptN`.
    Mmpt,
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

/// Counters shown in debugfs.
pub(crate) struct Stats {
    pub(crate) commands: Atomic<u64>,
    /// Completed commands by return code: 00h..=20h, then one slot for unknown codes.
    pub(crate) by_rc: [Atomic<u64>; 34],
    pub(crate) timeouts: Atomic<u64>,
    pub(crate) busy: Atomic<u64>,
    pub(crate) io_errors: Atomic<u64>,
    pub(crate) bad_length: Atomic<u64>,
    pub(crate) bg_started: Atomic<u64>,
    pub(crate) bg_completed: Atomic<u64>,
    pub(crate) bg_timeouts: Atomic<u64>,
    pub(crate) bg_interrupted: Atomic<u64>,
    pub(crate) bg_aborts: Atomic<u64>,
    pub(crate) irqs: Atomic<u64>,
    pub(crate) spurious_irqs: Atomic<u64>,
    pub(crate) missed_irqs: Atomic<u64>,
    /// Register checks after a wait (the first check of every wait is not counted).
    pub(crate) polls: Atomic<u64>,
    /// Waits that spun for a microsecond.
    pub(crate) spins: Atomic<u64>,
    /// Waits that slept (fsleep).
    pub(crate) sleeps: Atomic<u64>,
    /// Waits that slept until an interrupt (or the re-check interval).
    pub(crate) irq_waits: Atomic<u64>,
    /// Commands that completed without any wait.
    pub(crate) immediate: Atomic<u64>,
    pub(crate) last_latency_ns: Atomic<u64>,
}

impl Stats {
    fn new() -> Self {
        Self {
            commands: Atomic::new(0),
            by_rc: [const { Atomic::new(0) }; 34],
            timeouts: Atomic::new(0),
            busy: Atomic::new(0),
            io_errors: Atomic::new(0),
            bad_length: Atomic::new(0),
            bg_started: Atomic::new(0),
            bg_completed: Atomic::new(0),
            bg_timeouts: Atomic::new(0),
            bg_interrupted: Atomic::new(0),
            bg_aborts: Atomic::new(0),
            irqs: Atomic::new(0),
            spurious_irqs: Atomic::new(0),
            missed_irqs: Atomic::new(0),
            polls: Atomic::new(0),
            spins: Atomic::new(0),
            sleeps: Atomic::new(0),
            irq_waits: Atomic::new(0),
            immediate: Atomic::new(0),
            last_latency_ns: Atomic::new(0),
        }
    }

    fn count_rc(&self, rc: ReturnCode) {
        let slot = usize::from(rc.raw()).min(33);
        if let Some(c) = self.by_rc.get(slot) {
            c.add(1, Relaxed);
        }
    }

    fn count_error(&self, e: &MboxError) {
        let counter = match e {
            MboxError::Timeout | MboxError::NotReady | MboxError::NoAttention => &self.timeouts,
            MboxError::Busy => &self.busy,
            MboxError::BadOutputLength { .. } => &self.bad_length,
            MboxError::Io(_) | MboxError::Interrupted => &self.io_errors,
            MboxError::Background {
                cause: WaitError::Timeout,
                ..
            } => &self.bg_timeouts,
            MboxError::Background {
                cause: WaitError::Interrupted,
                ..
            } => &self.bg_interrupted,
            MboxError::Background { .. } => &self.io_errors,
            MboxError::InputTooLarge { .. } | MboxError::BadPayloadSize(_) => return,
        };
        counter.add(1, Relaxed);
    }
}

/// A background operation started by a raw command and not yet seen to finish.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BgOp {
    pub(crate) id: u64,
    pub(crate) opcode: u16,
}

/// What identifies the device, read at probe.
#[derive(Default)]
pub(crate) struct DevInfo {
    pub(crate) ident: Option<Identify>,
    pub(crate) cel: KVec<u8>,
}

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
    pub(crate) mbox: Mailbox,
    /// The device was unbound: every command fails with ENXIO.
    pub(crate) gone: bool,
    /// The function stopped answering (registers read all ones): every command fails with
    /// ENXIO until the function is rebound.
    pub(crate) failed: bool,
    pub(crate) bg: Option<BgOp>,
    bg_next: u64,
    /// Completion of a background operation seen by another caller: (id, response).
    captured: Option<(u64, Response)>,
    pub(crate) info: DevInfo,
    /// Inline MMPT responses not yet received.
    pub(crate) inbox: KVec<InlineMsg>,
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
    /// Commands in progress, including background waits (for spurious interrupt accounting).
    busy: Atomic<u32>,
    /// A background operation is tracked (mirrors `State::bg`, readable in interrupt context).
    bg_tracked: Atomic<bool>,
    removing: Atomic<bool>,
    /// The taint notice was printed for this device.
    pub(crate) taint_logged: Atomic<bool>,
    /// The lockdown refusal was logged for this device.
    pub(crate) lockdown_logged: Atomic<bool>,
    pub(crate) stats: Stats,
}

/// How one caller waits.
struct Waiter<'a> {
    dev: &'a Swcci,
    interruptible: bool,
    start: Instant<Monotonic>,
    budget: Delta,
    rounds: u32,
    seen_seq: u64,
    /// Interrupt waits that ended without an interrupt.
    irq_timeouts: u32,
    /// Interrupt waits that ended with one.
    irq_woken: u32,
}

impl<'a> Waiter<'a> {
    fn new(dev: &'a Swcci, interruptible: bool) -> Self {
        Self {
            dev,
            interruptible,
            start: Instant::now(),
            budget: Delta::ZERO,
            rounds: 0,
            seen_seq: *dev.irq_seq.lock(),
            irq_timeouts: 0,
            irq_woken: 0,
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

    fn sleep_poll(&mut self, remaining: Delta) {
        if poll_pause(self.rounds, self.start.elapsed(), remaining) {
            self.dev.stats.sleeps.add(1, Relaxed);
        } else {
            self.dev.stats.spins.add(1, Relaxed);
        }
    }

    fn sleep_irq(&mut self, remaining: Delta, interruptible: bool) -> Result<(), WaitError> {
        // Re-check the registers after 100 ms, then after doubling intervals up to 1 s: a lost
        // interrupt costs latency, a long wait costs few wake-ups.
        let recheck = i64::from(IRQ_RECHECK_MS).saturating_mul(1i64 << self.rounds.min(5));
        let ms = remaining
            .as_millis_ceil()
            .clamp(1, recheck.min(i64::from(IRQ_RECHECK_MAX_MS))) as u32;
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
                    self.sleep_poll(remaining);
                    return Ok(());
                }
            }
        }
        if *seq != self.seen_seq {
            self.irq_woken += 1;
        }
        self.seen_seq = *seq;
        self.dev.stats.irq_waits.add(1, Relaxed);
        Ok(())
    }
}

impl Wait for Waiter<'_> {
    fn begin(&mut self, _event: Event, timeout_us: u64) {
        self.start = Instant::now();
        self.budget = Delta::from_micros(i64::try_from(timeout_us).unwrap_or(i64::MAX));
        self.rounds = 0;
    }

    fn wait(&mut self, event: Event) -> Result<(), WaitError> {
        if self.dev.removing.load(Relaxed) {
            return Err(WaitError::Gone);
        }
        let elapsed = self.start.elapsed();
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
            self.sleep_irq(remaining, interruptible)?;
        } else {
            self.sleep_poll(remaining);
        }
        self.rounds = self.rounds.saturating_add(1);
        self.dev.stats.polls.add(1, Relaxed);
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
        try_pin_init!(Self {
            pdev,
            bar,
            kind,
            quirks,
            node_name,
            mmpt,
            state <- new_mutex!(State {
                mbox,
                gone: false,
                failed: false,
                bg: None,
                bg_next: 0,
                captured: None,
                info: DevInfo::default(),
                inbox: KVec::new(),
            }),
            irq_seq <- new_spinlock_irq!(0),
            irq_cv <- new_condvar!(),
            irq_doorbell: Atomic::new(false),
            irq_background: Atomic::new(false),
            irq_mmpt: Atomic::new(false),
            missed_in_row: Atomic::new(0),
            busy: Atomic::new(0),
            bg_tracked: Atomic::new(false),
            removing: Atomic::new(false),
            taint_logged: Atomic::new(false),
            lockdown_logged: Atomic::new(false),
            stats: Stats::new(),
        }? Error)
    }

    fn io(&self) -> BarIo<'_> {
        BarIo(&self.bar)
    }

    /// Takes the mailbox lock of a function that is still bound and answering; else
    /// [`IoError::Gone`] (ENXIO).
    fn lock_live(&self) -> Result<MutexGuard<'_, State>, MboxError> {
        let st = self.state.lock();
        if st.gone || st.failed {
            return Err(MboxError::Io(IoError::Gone));
        }
        Ok(st)
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
            background && caps.background_irq() && st.mbox.flavor().cxl,
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
        self.stats.irqs.add(1, Relaxed);
        if self.busy.load(Relaxed) == 0 && !self.bg_tracked.load(Relaxed) {
            self.stats.spurious_irqs.add(1, Relaxed);
        }
        let mut seq = self.irq_seq.lock();
        *seq = seq.wrapping_add(1);
        drop(seq);
        self.irq_cv.notify_all();
    }

    /// Sets the tracked background operation.
    fn track_bg(&self, st: &mut State, op: Option<BgOp>) {
        st.bg = op;
        self.bg_tracked.store(op.is_some(), Relaxed);
    }

    /// Starts the removal: every wait ends, later commands fail with ENXIO.
    pub(crate) fn remove(&self) {
        self.removing.store(true, Relaxed);
        self.irq_cv.notify_all();
        let mut st = self.state.lock();
        st.gone = true;
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
        if let Ok(Some(r)) = st.mbox.bg_completion(&self.io(), op.opcode) {
            dev_dbg!(
                self.pdev,
                "background command {:04x}h finished: {}\n",
                op.opcode,
                Disp(&r.rc)
            );
            self.stats.bg_completed.add(1, Relaxed);
            self.stats.count_rc(r.rc);
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
            self.stats.missed_irqs.add(1, Relaxed);
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
        let t0 = Instant::<Monotonic>::now();
        let req = Request {
            opcode,
            opcode_vendor,
            input,
            bg: policy,
        };
        let io = self.io();
        let _busy = BusyGuard::new(&self.busy);
        let mut st = self.lock_live()?;
        self.refresh_bg(&mut st);
        self.stats.commands.add(1, Relaxed);
        let mut w = Waiter::new(self, false);
        let polls_before = self.stats.polls.load(Relaxed);
        let res = st.mbox.start(&io, &mut w, &req, out);
        self.note_irq_misses(&mut st, &w);
        if self.stats.polls.load(Relaxed) == polls_before {
            self.stats.immediate.add(1, Relaxed);
        }
        let r = res.inspect_err(|e| {
            self.stats.count_error(e);
            self.report(&mut st, opcode, e);
        })?;
        if !st.mbox.is_background(&r) {
            self.stats.count_rc(r.rc);
            self.stats
                .last_latency_ns
                .store(t0.elapsed().as_nanos().max(0) as u64, Relaxed);
            return Ok(r);
        }

        // A background operation started: it supersedes any tracked one.
        self.stats.bg_started.add(1, Relaxed);
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
        let mbox = st.mbox;
        drop(st);

        let mut w = Waiter::new(self, interruptible);
        let res = mbox.wait_background(&io, &mut w, opcode, policy.timeout_us, || {
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
        if let Err(e) = &res {
            if e.cause == WaitError::Gone {
                self.report(&mut st, opcode, &MboxError::Io(IoError::Gone));
            }
        }
        let ours = st.bg.is_some_and(|b| b.id == id);
        let res = match res {
            Ok(r) => {
                if ours {
                    self.track_bg(&mut st, None);
                    self.stats.bg_completed.add(1, Relaxed);
                    self.stats.count_rc(r.rc);
                }
                Ok(r)
            }
            Err(e) if st.gone || !ours => Err(MboxError::Background {
                opcode,
                cause: if st.gone { WaitError::Gone } else { e.cause },
                percent: e.percent,
                abort: crate::proto::mailbox::AbortOutcome::NotRequested,
            }),
            Err(e) => {
                let mut w = Waiter::new(self, false);
                let err = mbox.give_up(&io, &mut w, opcode, &policy, e);
                if let MboxError::Background { abort, .. } = err {
                    use crate::proto::mailbox::AbortOutcome;
                    if abort != AbortOutcome::NotRequested {
                        self.stats.bg_aborts.add(1, Relaxed);
                    }
                    if matches!(abort, AbortOutcome::Stopped(_)) {
                        self.track_bg(&mut st, None);
                    }
                }
                Err(err)
            }
        };
        self.stats
            .last_latency_ns
            .store(t0.elapsed().as_nanos().max(0) as u64, Relaxed);
        res.inspect_err(|e| self.stats.count_error(e))
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
            MboxError::Io(IoError::Gone) if !self.removing.load(Relaxed) && !st.failed => {
                st.failed = true;
                dev_err!(
                    self.pdev,
                    "device not responding (registers read all ones): failing commands until it is rebound\n"
                );
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

    /// Reads Identify and the Command Effects Log into the device info. Failures are reported
    /// and leave the fields empty: the device stays usable for raw commands.
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
        let mut st = self.state.lock();
        st.info = DevInfo { ident, cel };
    }

    fn read_cel(&self) -> Result<KVec<u8>> {
        let payload = self.state.lock().mbox.payload_size();
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
        let size = logs.find(&logs::CEL_UUID).ok_or(ENODATA)? as usize;
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
            let input = logs::get_log_input(&logs::CEL_UUID, cel.len() as u32, chunk as u32);
            let r = self
                .command(opcode::GET_LOG, &input, &mut out)
                .map_err(|e| mbox_errno(&e))?;
            if !r.rc.is_success() || r.out_len == 0 {
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
        }
        Ok(cel)
    }
}

/// The errno for an engine error.
pub(crate) fn mbox_errno(e: &MboxError) -> Error {
    crate::policy::errno(e.errno())
}
