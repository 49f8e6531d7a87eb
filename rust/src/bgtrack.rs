// SPDX-License-Identifier: GPL-2.0

//! Which background operation a mailbox runs, and what became of the ones its callers still
//! wait for.
//!
//! A CXL mailbox runs at most one background operation at a time (CXL r3.1 §8.2.8.4.6): a
//! command that starts one returns Background Command Started (01h) and the Background Command
//! Status register then shows its opcode, its progress and, at 100 %, its final return code,
//! until the next background operation starts. Several callers share one mailbox; each one
//! that started an operation waits for it without the mailbox lock (the wait may be long), so
//! the register can move on before the waiter reads it. [`BgTracker`] records, under the
//! caller's mailbox lock, what anyone saw:
//!
//! - [`BgTracker::start`] when the device accepts a background command. If another operation
//!   was still tracked, the device's acceptance proves it ended (it runs one at a time), and its
//!   result can no longer be read: that operation is [`BgOutcome::Superseded`].
//! - [`BgTracker::observe`] whenever the register is read under the lock (before every command,
//!   and by a waiter that sees a change): 100 % for the tracked opcode records its
//!   [`BgOutcome::Completed`]; another opcode (a function reset, or an agent the driver does not
//!   see) records [`BgOutcome::Vanished`].
//! - [`BgTracker::poll`] by a waiter, for its own operation only: a waiter never takes a result
//!   recorded for another operation, whatever opcode it had.
//!
//! The record of ended operations is a small ring ([`ENDED_SLOTS`]): an outcome that nobody
//! collects (its waiter gave up) is eventually overwritten; a waiter whose outcome was
//! overwritten gets [`BgOutcome::Superseded`].

use crate::mailbox::{BgCompletion, Response};
use crate::rc::ReturnCode;
use crate::regs::MboxBgStatus;

/// How many ended operations are remembered for their waiters.
pub const ENDED_SLOTS: usize = 8;

/// One background operation, as numbered by its [`BgTracker`] (never reused while the tracker
/// lives: a 64-bit count).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BgId(u64);

impl BgId {
    /// The number, for messages.
    pub const fn raw(self) -> u64 {
        self.0
    }
}

/// What became of a background operation that ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BgOutcome {
    /// It finished: the register showed it at 100 %, with its final return code.
    Completed(Response),
    /// It finished, but the device accepted another background command before its result was
    /// read: the result is lost (the driver answers ENODATA, Documentation/abi.rst).
    Superseded,
    /// The register stopped showing it before it reached 100 % (the function was reset, or an
    /// agent the driver does not see started another operation): it is gone, result unknown
    /// (EIO).
    Vanished,
}

/// What a waiter learns about its operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BgPoll {
    /// Still tracked as running.
    Running,
    /// Ended: the outcome, collected (a second poll of the same id finds nothing and answers
    /// [`BgOutcome::Superseded`]).
    Ended(BgOutcome),
}

/// The completion shown by a register value at 100 % for `opcode`.
fn completion(bg: MboxBgStatus, opcode: u16) -> Response {
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

/// The background operations of one mailbox, as its callers know them.
///
/// # Invariants
///
/// - At most one operation is current (the device runs one at a time).
/// - An id is in at most one place: current, or one slot of `ended`.
/// - Ids grow strictly: `next` is above every id handed out.
#[derive(Debug)]
pub struct BgTracker {
    next: u64,
    current: Option<(BgId, u16)>,
    ended: [Option<(BgId, BgOutcome)>; ENDED_SLOTS],
    /// The slot the next ended operation goes to.
    ring: usize,
}

impl Default for BgTracker {
    fn default() -> Self {
        Self::new()
    }
}

impl BgTracker {
    /// Nothing tracked.
    pub const fn new() -> Self {
        Self {
            next: 1,
            current: None,
            ended: [None; ENDED_SLOTS],
            ring: 0,
        }
    }

    /// The operation tracked as running: its id and opcode.
    pub const fn current(&self) -> Option<(BgId, u16)> {
        self.current
    }

    fn end(&mut self, id: BgId, outcome: BgOutcome) {
        if let Some(slot) = self.ended.get_mut(self.ring) {
            *slot = Some((id, outcome));
        }
        self.ring = self.ring.wrapping_add(1) % ENDED_SLOTS;
    }

    /// The device accepted background command `opcode`: it is now the current operation. A
    /// current one it replaces ended without its result being read ([`BgOutcome::Superseded`]).
    /// Returns the new operation's id and, if one was superseded, that one's id.
    pub fn start(&mut self, opcode: u16) -> (BgId, Option<BgId>) {
        let id = BgId(self.next);
        self.next = self.next.wrapping_add(1);
        let old = self.current.replace((id, opcode)).map(|(old, _)| {
            self.end(old, BgOutcome::Superseded);
            old
        });
        (id, old)
    }

    /// Records what the Background Command Status register `bg` shows about the current
    /// operation: its completion at 100 %, or that it vanished when the register names another
    /// opcode. Returns the id of an operation this ended.
    pub fn observe(&mut self, bg: MboxBgStatus) -> Option<BgId> {
        let (id, opcode) = self.current?;
        let outcome = if bg.opcode() != opcode {
            BgOutcome::Vanished
        } else if bg.percent() >= 100 {
            BgOutcome::Completed(completion(bg, opcode))
        } else {
            return None;
        };
        self.current = None;
        self.end(id, outcome);
        Some(id)
    }

    /// What became of operation `id`; an ended one's outcome is collected. An id neither
    /// current nor remembered (overwritten in the ring, or collected already) answers
    /// [`BgOutcome::Superseded`]: its result cannot be known.
    pub fn poll(&mut self, id: BgId) -> BgPoll {
        if self.current.is_some_and(|(cur, _)| cur == id) {
            return BgPoll::Running;
        }
        for slot in self.ended.iter_mut() {
            if let Some((sid, outcome)) = *slot {
                if sid == id {
                    *slot = None;
                    return BgPoll::Ended(outcome);
                }
            }
        }
        BgPoll::Ended(BgOutcome::Superseded)
    }

    /// What [`Self::poll`] would answer for `id`, without collecting an ended operation's
    /// outcome (for a readiness check, poll(2)).
    pub fn peek(&self, id: BgId) -> BgPoll {
        if self.current.is_some_and(|(cur, _)| cur == id) {
            return BgPoll::Running;
        }
        let outcome = self
            .ended
            .iter()
            .flatten()
            .find(|(sid, _)| *sid == id)
            .map_or(BgOutcome::Superseded, |(_, o)| *o);
        BgPoll::Ended(outcome)
    }

    /// Stops tracking the current operation without an outcome (it was aborted and seen to
    /// stop, or the device is going away): a later register value cannot be taken for it.
    pub fn drop_current(&mut self) {
        self.current = None;
    }

    /// Whether the operation `id` is the current one.
    pub fn is_current(&self, id: BgId) -> bool {
        self.current.is_some_and(|(cur, _)| cur == id)
    }
}

#[cfg(test)]
#[path = "bgtrack_tests.rs"]
mod tests;
