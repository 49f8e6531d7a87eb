// SPDX-License-Identifier: GPL-2.0

//! Injected faults: the faults the control channel arms, their state, and the checks that
//! apply them (the loss of the function after reads or at a part of an MMPT transfer; the
//! others are taken where the command runs, `dispatch.rs`).

use super::Device;
use crate::common::Mode;
use crate::firmware::FwFault;
use std::fmt::Write as _;
use std::time::Duration;
use swcci_proto::mmpt::{Action, MsgHeader, HEADER_LEN, SEND_MESSAGE, VENDOR_PCI_SIG};
use swcci_proto::rc::ReturnCode;
use swcci_proto::regs::{MboxCmd, MboxStatus};

/// A fault the control channel can arm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The doorbell of the command never clears (until a reset or `clear`).
    DoorbellStuck,
    /// The command completes this many milliseconds after its doorbell.
    Delay(u64),
    /// The output length is reported above the payload size.
    BadLength,
    /// The command completes with this return code (and no output, no background operation).
    Rc(u16),
    /// The next background operation stops at 99 %.
    BgNever,
    /// The next background operation stops at this percentage.
    BgStuck(u8),
    /// Interrupts are advertised but not delivered.
    NoIrq,
    /// READY stays clear (after a reset the mailbox never becomes ready).
    ReadyNever,
    /// When the command completes, the function resets right after the guest's N-th BAR0
    /// read that follows the completion (0: at the completion).
    ResetAfterReads(u32),
    /// As [`Fault::ResetAfterReads`], but the function disappears (as `surprise-remove`).
    RemoveAfterReads(u32),
    /// At the K-th part (1-based) of the next multi-part MMPT Send Message transfer, the
    /// function resets when the part's doorbell is rung, instead of completing the part.
    ResetAtPart(u32),
    /// As [`Fault::ResetAtPart`], but the function disappears.
    RemoveAtPart(u32),
    /// Get Log (0401h) of the CEL returns at most this many bytes, with return code success.
    ShortLog(u32),
    /// Event interrupts (`events.rs`) are not sent; the records are logged.
    NoEventIrq,
    /// The K-th Receive Message command (1-based) of a multi-part MMPT read fails with
    /// Internal Error and changes nothing.
    RxFailAtPart(u32),
    /// A fault of the firmware commands.
    Fw(FwFault),
}

impl Fault {
    /// The fault in control protocol notation.
    pub fn describe(&self) -> String {
        match self {
            Self::DoorbellStuck => "doorbell-stuck".into(),
            Self::Delay(ms) => format!("delay {ms}"),
            Self::BadLength => "bad-length".into(),
            Self::Rc(rc) => format!("rc {rc:#06x}"),
            Self::BgNever => "bg-never".into(),
            Self::BgStuck(p) => format!("bg-stuck {p}"),
            Self::NoIrq => "no-irq".into(),
            Self::ReadyNever => "ready-never".into(),
            Self::ResetAfterReads(n) => format!("reset-after-reads {n}"),
            Self::RemoveAfterReads(n) => format!("remove-after-reads {n}"),
            Self::ResetAtPart(k) => format!("reset-at-part {k}"),
            Self::RemoveAtPart(k) => format!("remove-at-part {k}"),
            Self::ShortLog(n) => format!("short-log {n}"),
            Self::NoEventIrq => "no-event-irq".into(),
            Self::RxFailAtPart(k) => format!("rx-fail-at-part {k}"),
            Self::Fw(f) => f.name().into(),
        }
    }
}

/// How the function goes away in the middle of a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loss {
    /// A function reset, as `reset` does.
    Reset,
    /// A surprise removal, as `surprise-remove` does.
    Remove,
}

impl Loss {
    /// The control protocol name of the fault of this kind with `what` ("after-reads",
    /// "at-part").
    fn fault_name(self, what: &str) -> String {
        match self {
            Self::Reset => format!("reset-{what}"),
            Self::Remove => format!("remove-{what}"),
        }
    }
}

/// Armed faults.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Faults {
    pub(super) doorbell_stuck: Option<Mode>,
    pub(super) delay: Option<(u64, Mode)>,
    pub(super) bad_length: Option<Mode>,
    pub(super) rc: Option<(u16, Mode)>,
    pub(super) bg_cap: Option<(u8, Mode)>,
    pub(super) no_irq: Option<Mode>,
    pub(super) ready_never: Option<Mode>,
    /// Reset or removal after this many BAR0 reads following the completion.
    pub(super) after_reads: Option<((u32, Loss), Mode)>,
    /// Reset or removal at this part of a multi-part MMPT transfer.
    pub(super) at_part: Option<((u32, Loss), Mode)>,
    /// Get Log of the CEL returns at most this many bytes.
    pub(super) short_log: Option<(u32, Mode)>,
    /// Event interrupts are swallowed.
    pub(super) no_event_irq: Option<Mode>,
    /// Firmware faults, in the order of [`FwFault::ALL`].
    pub(super) fw: [Option<Mode>; 5],
}

/// Takes a fault for one use: a once fault disarms.
pub(super) fn take<T: Copy>(slot: &mut Option<(T, Mode)>) -> Option<T> {
    let (v, mode) = (*slot)?;
    if mode == Mode::Once {
        *slot = None;
    }
    Some(v)
}

/// Faults that apply to one command.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct CmdFaults {
    pub(super) stuck: bool,
    pub(super) delay_ms: Option<u64>,
    pub(super) bad_length: bool,
    pub(super) rc: Option<u16>,
    pub(super) no_irq: bool,
    pub(super) after_reads: Option<(u32, Loss)>,
}

/// A command waiting for its completion time (delay fault), or forever (stuck doorbell).
#[derive(Clone, Debug)]
pub(super) struct Pending {
    pub(super) due: Option<Duration>,
    pub(super) cmd: MboxCmd,
    pub(super) faults: CmdFaults,
}

/// A multi-part MMPT Send Message transfer watched by an `at-part` fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct PartWatch {
    /// Parts whose doorbell was rung so far, this one included.
    parts: u32,
}

impl Device {
    /// Counts a BAR0 read for an armed `after-reads` loss; the read that reaches the count is
    /// served before the function goes.
    pub(super) fn count_read(&mut self, now: Duration) {
        let Some((left, how)) = self.loss_after else {
            return;
        };
        if left <= 1 {
            self.loss_after = None;
            self.lose(now, how, "after the armed number of BAR0 reads");
        } else {
            self.loss_after = Some((left - 1, how));
        }
    }

    /// The function resets or disappears (a fault): `why` says when, for the log.
    pub(super) fn lose(&mut self, now: Duration, how: Loss, why: &str) {
        match how {
            Loss::Reset => {
                self.stats.inc("fault-resets");
                self.event(format!("function reset {why} (fault)"));
                self.reset(now);
            }
            Loss::Remove => {
                self.stats.inc("fault-removals");
                self.event(format!("function gone {why} (fault)"));
                self.surprise_remove();
            }
        }
    }

    /// Counts the parts of a multi-part MMPT Send Message transfer for an armed `at-part`
    /// fault; at the armed part the function resets or disappears instead of completing the
    /// part (returns true). Parts are counted by doorbell from the Initiate part (1); a resent
    /// part counts again; a transfer that ends (Finish, Full, Abort) before the armed part uses
    /// up a `once` fault.
    pub(super) fn part_loss(&mut self, now: Duration) -> bool {
        let Some(((target, how), mode)) = self.faults.at_part else {
            self.part_watch = None;
            return false;
        };
        let cmd = self.cmd;
        if cmd.opcode_vendor() != VENDOR_PCI_SIG || cmd.opcode() != SEND_MESSAGE {
            return false;
        }
        if (cmd.payload_len() as usize) < HEADER_LEN {
            return false;
        }
        let Some(h) = self
            .payload
            .get(..HEADER_LEN)
            .and_then(|b| MsgHeader::decode(b).ok())
        else {
            return false;
        };
        let parts = match (h.action, self.part_watch) {
            (Action::Initiate, _) => 1,
            (Action::Continue | Action::Finish, Some(w)) => w.parts.saturating_add(1),
            (Action::Continue | Action::Finish, None) => return false,
            (Action::Full | Action::Abort, w) => {
                if w.is_some() {
                    self.part_watch = None;
                    self.transfer_ended_early(target, how, mode);
                }
                return false;
            }
        };
        if parts >= target {
            self.part_watch = None;
            if mode == Mode::Once {
                self.faults.at_part = None;
            }
            self.stats.inc("faults-applied");
            if how == Loss::Remove {
                // The doorbell stays set: `clear` abandons the part like a stuck command.
                self.pending = Some(Pending {
                    due: None,
                    cmd,
                    faults: CmdFaults::default(),
                });
            }
            self.lose(now, how, &format!("at part {parts} of an MMPT transfer"));
            return true;
        }
        if h.action == Action::Finish {
            self.part_watch = None;
            self.transfer_ended_early(target, how, mode);
        } else {
            self.part_watch = Some(PartWatch { parts });
        }
        false
    }

    fn transfer_ended_early(&mut self, target: u32, how: Loss, mode: Mode) {
        if mode == Mode::Once {
            self.faults.at_part = None;
        }
        self.event(format!(
            "MMPT transfer ended before part {target}: {} {} not applied",
            how.fault_name("at-part"),
            mode.name()
        ));
    }

    /// Arms `fault` in `mode`.
    pub fn arm(&mut self, fault: Fault, mode: Mode) {
        let f = &mut self.faults;
        match fault {
            Fault::DoorbellStuck => f.doorbell_stuck = Some(mode),
            Fault::Delay(ms) => f.delay = Some((ms, mode)),
            Fault::BadLength => f.bad_length = Some(mode),
            Fault::Rc(rc) => f.rc = Some((rc, mode)),
            Fault::BgNever => f.bg_cap = Some((99, mode)),
            Fault::BgStuck(p) => f.bg_cap = Some((p.min(99), mode)),
            Fault::NoIrq => f.no_irq = Some(mode),
            Fault::ReadyNever => f.ready_never = Some(mode),
            Fault::ResetAfterReads(n) => f.after_reads = Some(((n, Loss::Reset), mode)),
            Fault::RemoveAfterReads(n) => f.after_reads = Some(((n, Loss::Remove), mode)),
            Fault::ResetAtPart(k) => f.at_part = Some(((k, Loss::Reset), mode)),
            Fault::RemoveAtPart(k) => f.at_part = Some(((k, Loss::Remove), mode)),
            Fault::ShortLog(n) => f.short_log = Some((n, mode)),
            Fault::NoEventIrq => f.no_event_irq = Some(mode),
            Fault::RxFailAtPart(k) => self.knobs.rx_fail_at_part = Some((k, mode)),
            Fault::Fw(ff) => {
                let i = FwFault::ALL.iter().position(|x| *x == ff).unwrap_or(0);
                if let Some(slot) = f.fw.get_mut(i) {
                    *slot = Some(mode);
                }
            }
        }
        self.event(format!("fault armed: {} {}", fault.describe(), mode.name()));
    }

    /// Arms firmware fault `f` in `mode` on the device behind `port` (switch). Error: no device
    /// with firmware there.
    pub fn arm_port_fw(&mut self, port: u8, f: FwFault, mode: Mode) -> Result<(), String> {
        self.fabric.arm_fw(port, f, mode)?;
        self.event(format!(
            "fault armed: {} port {port} {}",
            f.name(),
            mode.name()
        ));
        Ok(())
    }

    /// Disarms every fault and undoes a surprise removal. A command whose doorbell is stuck is
    /// abandoned: the doorbell clears with return code 04h (internal error), no interrupt.
    pub fn clear(&mut self, now: Duration) {
        self.faults = Faults::default();
        self.knobs.clear_faults();
        self.fabric.clear_fw_faults();
        self.removed = false;
        self.loss_after = None;
        self.part_watch = None;
        if let Some(p) = self.pending.take() {
            if p.due.is_none() {
                self.cmd = p.cmd.with_payload_len(0);
                self.status =
                    MboxStatus::default().with_return_code(ReturnCode::InternalError.raw());
                self.doorbell = false;
                self.event("stuck command abandoned: doorbell cleared, rc 0004h".into());
            } else {
                self.pending = Some(p);
            }
        }
        self.event("faults cleared".into());
        self.tick(now);
    }

    /// The armed faults, in control protocol notation.
    pub fn faults_text(&self) -> String {
        let f = &self.faults;
        let mut s = String::new();
        let mut add = |name: String, m: Option<Mode>| {
            if let Some(m) = m {
                let _ = write!(
                    s,
                    "{}{name}={}",
                    if s.is_empty() { "" } else { " " },
                    m.name()
                );
            }
        };
        add("doorbell-stuck".into(), f.doorbell_stuck);
        if let Some((ms, m)) = f.delay {
            add(format!("delay:{ms}"), Some(m));
        }
        add("bad-length".into(), f.bad_length);
        if let Some((rc, m)) = f.rc {
            add(format!("rc:{rc:#06x}"), Some(m));
        }
        if let Some((p, m)) = f.bg_cap {
            add(format!("bg-stuck:{p}"), Some(m));
        }
        add("no-irq".into(), f.no_irq);
        add("ready-never".into(), f.ready_never);
        if let Some(((n, how), m)) = f.after_reads {
            add(format!("{}:{n}", how.fault_name("after-reads")), Some(m));
        }
        if let Some(((k, how), m)) = f.at_part {
            add(format!("{}:{k}", how.fault_name("at-part")), Some(m));
        }
        if let Some((n, m)) = f.short_log {
            add(format!("short-log:{n}"), Some(m));
        }
        add("no-event-irq".into(), f.no_event_irq);
        if let Some((k, m)) = self.knobs.rx_fail_at_part {
            add(format!("rx-fail-at-part:{k}"), Some(m));
        }
        for (ff, m) in FwFault::ALL.iter().zip(f.fw) {
            add(ff.name().into(), m);
        }
        for d in self.fabric.fw_faults_text() {
            if !s.is_empty() {
                s.push(' ');
            }
            s.push_str(&d);
        }
        if self.removed {
            s.push_str(if s.is_empty() {
                "surprise-remove"
            } else {
                " surprise-remove"
            });
        }
        if s.is_empty() {
            s.push_str("none");
        }
        s
    }

    /// From now on BAR reads return all ones, writes are dropped, nothing completes and no
    /// interrupt is sent (until `clear`).
    pub fn surprise_remove(&mut self) {
        self.removed = true;
        self.event("surprise removal: BAR reads return all ones".into());
    }

    /// Whether the function acts removed.
    pub fn removed(&self) -> bool {
        self.removed
    }
}
