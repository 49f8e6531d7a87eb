// SPDX-License-Identifier: GPL-2.0

//! The background tracker's rules, one interleaving of callers per test (issue 21, items 9, 13
//! and 14: a waiter sees its own operation's result or learns it is lost, at once, never another
//! operation's result and never a timeout for an operation that ended).

use super::*;

const TRANSFER_FW: u16 = 0x0201;
const SANITIZE: u16 = 0x4400;

fn at(opcode: u16, percent: u8, rc: u16) -> MboxBgStatus {
    MboxBgStatus::default()
        .with_opcode(opcode)
        .with_percent(percent)
        .with_return_code(rc)
}

fn completed(p: BgPoll) -> ReturnCode {
    match p {
        BgPoll::Ended(BgOutcome::Completed(r)) => r.rc,
        other => panic!("expected a completion, got {other:?}"),
    }
}

#[test]
fn waiter_collects_its_completion_once() {
    let mut t = BgTracker::new();
    let (a, old) = t.start(TRANSFER_FW);
    assert_eq!(old, None);
    assert_eq!(t.poll(a), BgPoll::Running);
    assert_eq!(t.observe(at(TRANSFER_FW, 50, 0)), None, "still running");
    assert_eq!(t.poll(a), BgPoll::Running);
    assert_eq!(t.observe(at(TRANSFER_FW, 100, 0)), Some(a));
    assert_eq!(t.current(), None);
    assert_eq!(completed(t.poll(a)), ReturnCode::Success);
    // Collected: a second look finds nothing to take.
    assert_eq!(t.poll(a), BgPoll::Ended(BgOutcome::Superseded));
}

/// Item 9: another caller saw the completion (it read the register before its own command)
/// just as the waiter's time ran out: the waiter's final look under the lock finds the
/// recorded completion, not a timeout.
#[test]
fn completion_seen_by_another_caller_is_the_waiters() {
    let mut t = BgTracker::new();
    let (a, _) = t.start(SANITIZE);
    // Caller B, before its foreground command: the register shows A done.
    assert_eq!(t.observe(at(SANITIZE, 100, 0x12)), Some(a));
    // B's foreground command runs; the register still shows A's completion, then the waiter's
    // deadline passes and it looks under the lock.
    assert_eq!(
        t.observe(at(SANITIZE, 100, 0x12)),
        None,
        "nothing tracked any more"
    );
    assert_eq!(completed(t.poll(a)), ReturnCode::Aborted);
}

/// Item 13: caller B's background command is accepted while A is tracked and its completion
/// not yet read: A ended (the device runs one at a time), its result is lost, and A learns so
/// at once; B's completion is never taken for A's, even with the same opcode.
#[test]
fn new_start_supersedes_the_tracked_operation() {
    let mut t = BgTracker::new();
    let (a, _) = t.start(TRANSFER_FW);
    let (b, old) = t.start(TRANSFER_FW);
    assert_eq!(old, Some(a));
    assert_eq!(t.poll(a), BgPoll::Ended(BgOutcome::Superseded));
    assert_eq!(t.poll(b), BgPoll::Running);
    assert_eq!(t.observe(at(TRANSFER_FW, 100, 0)), Some(b));
    assert_eq!(completed(t.poll(b)), ReturnCode::Success);
    assert_eq!(t.poll(a), BgPoll::Ended(BgOutcome::Superseded));
}

/// Item 14: A's operation is dropped by a function reset (the register no longer shows it),
/// then B runs a background command of the same opcode with another return code: A fails as
/// vanished, never with B's result.
#[test]
fn reset_drops_the_operation_and_a_later_one_is_not_taken_for_it() {
    let mut t = BgTracker::new();
    let (a, _) = t.start(SANITIZE);
    // After the reset the register reads zero (opcode 0000h): seen before B's command.
    assert_eq!(t.observe(at(0, 0, 0)), Some(a));
    let (b, old) = t.start(SANITIZE);
    assert_eq!(old, None, "A was no longer tracked");
    assert_eq!(t.observe(at(SANITIZE, 100, 0x14)), Some(b));
    assert_eq!(t.poll(a), BgPoll::Ended(BgOutcome::Vanished));
    assert_eq!(completed(t.poll(b)), ReturnCode::from_raw(0x14));
}

/// Item 14, the other order: B's command is accepted before anyone saw the reset. A is
/// superseded; B's completion of the same opcode is still never A's.
#[test]
fn reset_then_same_opcode_before_anyone_looked() {
    let mut t = BgTracker::new();
    let (a, _) = t.start(SANITIZE);
    let (b, old) = t.start(SANITIZE);
    assert_eq!(old, Some(a));
    assert_eq!(t.observe(at(SANITIZE, 100, 0)), Some(b));
    assert_eq!(t.poll(a), BgPoll::Ended(BgOutcome::Superseded));
}

#[test]
fn outcomes_nobody_collects_are_overwritten_in_turn() {
    let mut t = BgTracker::new();
    let mut ids = [BgId(0); ENDED_SLOTS + 1];
    for id in ids.iter_mut() {
        *id = t.start(TRANSFER_FW).0;
        t.observe(at(TRANSFER_FW, 100, 0));
    }
    // The oldest outcome made room for the newest.
    assert_eq!(t.poll(ids[0]), BgPoll::Ended(BgOutcome::Superseded));
    for id in &ids[1..] {
        assert_eq!(completed(t.poll(*id)), ReturnCode::Success);
    }
}

#[test]
fn dropped_operation_takes_no_later_register_value() {
    let mut t = BgTracker::new();
    let (a, _) = t.start(SANITIZE);
    t.drop_current();
    assert_eq!(t.observe(at(SANITIZE, 100, 0)), None);
    assert_eq!(t.poll(a), BgPoll::Ended(BgOutcome::Superseded));
    assert!(!t.is_current(a));
}

#[test]
fn ids_are_not_reused() {
    let mut t = BgTracker::new();
    let (a, _) = t.start(1);
    t.observe(at(1, 100, 0));
    let (b, _) = t.start(1);
    assert_ne!(a, b);
    assert!(b.raw() > a.raw());
}

/// A readiness check (poll(2)) sees an ended operation without taking its outcome from its
/// waiter.
#[test]
fn peek_does_not_collect() {
    let mut t = BgTracker::new();
    let (a, _) = t.start(SANITIZE);
    assert_eq!(t.peek(a), BgPoll::Running);
    t.observe(at(SANITIZE, 100, 0));
    assert!(matches!(t.peek(a), BgPoll::Ended(BgOutcome::Completed(_))));
    assert!(matches!(t.peek(a), BgPoll::Ended(BgOutcome::Completed(_))));
    assert_eq!(completed(t.poll(a)), ReturnCode::Success);
    assert_eq!(t.peek(a), BgPoll::Ended(BgOutcome::Superseded));
}
