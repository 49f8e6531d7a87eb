// SPDX-License-Identifier: GPL-2.0

//! Engine tests against the simulated device: every path of the protocol.

extern crate std;

use super::*;
use crate::sim::{Access, BgPlan, Reply, SimDevice, SimFault, SimWaiter, MBOX, MEMDEV};
use std::vec;
use std::vec::Vec;

const CXL: Location = Location {
    base: MBOX,
    len: 0x820,
    flavor: Flavor::CXL,
    memdev_status: Some(MEMDEV),
};

fn init(dev: &SimDevice) -> Mailbox {
    let mut w = SimWaiter::new(dev);
    Mailbox::init(dev, &mut w, CXL, Timeouts::DEFAULT).expect("init")
}

fn run(
    dev: &SimDevice,
    mbox: &mut Mailbox,
    req: &Request<'_>,
    out: &mut [u8],
) -> Result<Response, MboxError> {
    let mut w = SimWaiter::new(dev);
    mbox.execute(dev, &mut w, req, out)
}

fn bg_req(opcode: u16, timeout_ms: u64, abort_on_timeout: bool) -> Request<'static> {
    Request {
        bg: BgPolicy {
            timeout_us: timeout_ms * 1000,
            abort_on_timeout,
            abort_on_interrupt: false,
        },
        ..Request::new(opcode, &[])
    }
}

#[test]
fn success_with_output() {
    let dev = SimDevice::new(11, |op, _, input| {
        assert_eq!(op, 0x0001);
        assert!(input.is_empty());
        Reply::out(&[1, 2, 3, 4, 5, 6, 7])
    });
    let mut mbox = init(&dev);
    assert_eq!(mbox.payload_size(), 2048);
    let mut out = [0u8; 64];
    let r = run(&dev, &mut mbox, &Request::new(0x0001, &[]), &mut out).unwrap();
    assert_eq!(r.rc, ReturnCode::Success);
    assert_eq!((r.out_len, r.device_len), (7, 7));
    assert_eq!(&out[..8], &[1, 2, 3, 4, 5, 6, 7, 0]);
    assert_eq!(r.background, None);
}

#[test]
fn input_reaches_the_device_and_command_is_one_64bit_store() {
    let dev = SimDevice::ok();
    let mut mbox = init(&dev);
    dev.with(|s| s.log.clear());
    let input = [9u8, 8, 7, 6, 5];
    run(&dev, &mut mbox, &Request::new(0x5101, &input), &mut []).unwrap();
    dev.with(|s| {
        assert_eq!(s.executed.last().unwrap().2, input.to_vec());
        // The payload as one block, one 64-bit command store, then the doorbell; the device
        // saw the last partial dword zero-padded.
        let writes: Vec<Access> = s
            .log
            .iter()
            .filter(|a| matches!(a, Access::W32(..) | Access::W64(..) | Access::WBlock(..)))
            .cloned()
            .collect();
        assert_eq!(
            writes,
            vec![
                Access::WBlock(MBOX + 0x20, input.to_vec()),
                Access::W64(MBOX + 0x08, (5 << 16) | 0x5101),
                Access::W32(MBOX + 0x04, 1),
            ]
        );
        assert_eq!(&s.payload[..8], &[9, 8, 7, 6, 5, 0, 0, 0]);
    });
}

#[test]
fn every_return_code_is_reported() {
    for raw in (0u16..=0x20).chain([0x21, 0x1234, 0xffff]) {
        if raw == 0x01 {
            continue; // background started: covered below
        }
        let dev = SimDevice::new(8, move |_, _, _| Reply {
            rc: raw,
            vendor: 0xabcd,
            ..Reply::default()
        });
        let mut mbox = init(&dev);
        let r = run(&dev, &mut mbox, &Request::new(0x0400, &[]), &mut [0; 8]).unwrap();
        assert_eq!(r.rc, ReturnCode::from_raw(raw));
        assert_eq!(r.rc.raw(), raw);
        assert_eq!(r.vendor_status, 0xabcd);
    }
}

#[test]
fn busy_doorbell_at_submit() {
    let dev = SimDevice::ok();
    let mut mbox = init(&dev);
    dev.with(|s| s.ctrl = s.ctrl.with_doorbell(true));
    let before = dev.with(|s| s.executed.len());
    assert_eq!(
        run(&dev, &mut mbox, &Request::new(1, &[1, 2]), &mut []),
        Err(MboxError::Busy)
    );
    assert_eq!(dev.with(|s| s.executed.len()), before);
    // Nothing was written.
    assert!(dev.with(|s| s
        .log
        .iter()
        .all(|a| !matches!(a, Access::W32(..) | Access::W64(..)))));
}

#[test]
fn doorbell_never_clears() {
    let dev = SimDevice::ok();
    let mut mbox = init(&dev);
    dev.with(|s| s.stuck_doorbell = true);
    let mut w = SimWaiter::new(&dev);
    let e = mbox.execute(&dev, &mut w, &Request::new(1, &[]), &mut []);
    assert_eq!(e, Err(MboxError::Timeout));
    assert_eq!(e.unwrap_err().errno(), Errno::TimedOut);
    assert_eq!(w.begun, vec![(Event::Doorbell, 2_000_000)]);
    // The wait lasted the whole budget: 2000 ticks of 1 ms.
    assert_eq!(dev.with(|s| s.ticks), 2000);
    // The next command finds the mailbox busy.
    assert_eq!(
        run(&dev, &mut mbox, &Request::new(1, &[]), &mut []),
        Err(MboxError::Busy)
    );
}

#[test]
fn delayed_completion_is_waited_for() {
    let dev = SimDevice::new(11, |_, _, _| Reply::out(&[0xaa; 4]));
    let mut mbox = init(&dev);
    dev.with(|s| s.delay_ticks = 100);
    let mut out = [0u8; 4];
    let r = run(&dev, &mut mbox, &Request::new(1, &[]), &mut out).unwrap();
    assert_eq!(r.out_len, 4);
    assert_eq!(out, [0xaa; 4]);
    assert_eq!(dev.with(|s| s.ticks), 100);
}

#[test]
fn output_length_above_payload_size_is_rejected() {
    let dev = SimDevice::new(8, |_, _, _| Reply {
        len_override: Some(257),
        ..Reply::default()
    });
    let mut mbox = init(&dev);
    dev.with(|s| s.log.clear());
    let mut out = [0u8; 4096];
    let e = run(&dev, &mut mbox, &Request::new(1, &[]), &mut out).unwrap_err();
    assert_eq!(
        e,
        MboxError::BadOutputLength {
            claimed: 257,
            max: 256
        }
    );
    assert_eq!(e.errno(), Errno::Io);
    // No payload register was read.
    assert!(dev.with(|s| s.log.iter().all(|a| *a != Access::R32(MBOX + 0x20))));
}

#[test]
fn output_larger_than_callers_buffer_is_truncated() {
    let dev = SimDevice::new(11, |_, _, _| Reply::out(&[7u8; 100]));
    let mut mbox = init(&dev);
    let mut out = [0u8; 10];
    let r = run(&dev, &mut mbox, &Request::new(1, &[]), &mut out).unwrap();
    assert_eq!((r.out_len, r.device_len), (10, 100));
    assert_eq!(out, [7u8; 10]);
    // A caller that wants no output gets none.
    let r = run(&dev, &mut mbox, &Request::new(1, &[]), &mut []).unwrap();
    assert_eq!((r.out_len, r.device_len), (0, 100));
}

#[test]
fn input_larger_than_payload_never_touches_the_device() {
    let dev = SimDevice::new(8, |_, _, _| Reply::default());
    let mut mbox = init(&dev);
    dev.with(|s| s.log.clear());
    let input = [0u8; 257];
    let e = run(&dev, &mut mbox, &Request::new(1, &input), &mut []).unwrap_err();
    assert_eq!(e, MboxError::InputTooLarge { len: 257, max: 256 });
    assert_eq!(e.errno(), Errno::Inval);
    assert!(dev.with(|s| s.log.is_empty()));
    // Exactly one payload fits.
    run(&dev, &mut mbox, &Request::new(1, &input[..256]), &mut []).unwrap();
}

#[test]
fn background_success() {
    let dev = SimDevice::new(11, |_, _, _| Reply {
        background: Some(BgPlan::completes(5, 0x00)),
        ..Reply::default()
    });
    let mut mbox = init(&dev);
    let mut w = SimWaiter::new(&dev);
    let r = mbox
        .execute(&dev, &mut w, &bg_req(0x5201, 1000, true), &mut [])
        .unwrap();
    assert_eq!(r.rc, ReturnCode::Success);
    assert_eq!(
        r.background,
        Some(BgCompletion {
            opcode: 0x5201,
            vendor_status: 0
        })
    );
    // 10 steps of 10 % at 5 ticks each.
    assert_eq!(dev.with(|s| s.ticks), 50);
    assert_eq!(w.begun, vec![(Event::Background, 1_000_000)]);
}

#[test]
fn background_failure_code() {
    let dev = SimDevice::new(11, |_, _, _| Reply {
        background: Some(BgPlan::completes(1, 0x04)),
        ..Reply::default()
    });
    let mut mbox = init(&dev);
    let r = run(&dev, &mut mbox, &bg_req(0x5202, 1000, true), &mut []).unwrap();
    assert_eq!(r.rc, ReturnCode::InternalError);
    assert!(r.background.is_some());
}

#[test]
fn background_never_completes_and_abort_is_accepted() {
    let dev = SimDevice::new(11, |op, _, _| match op {
        0x5201 => Reply {
            background: Some(BgPlan {
                stuck_at: Some(40),
                ..BgPlan::completes(1, 0)
            }),
            ..Reply::default()
        },
        _ => Reply::default(),
    });
    let mut mbox = init(&dev);
    let e = run(&dev, &mut mbox, &bg_req(0x5201, 100, true), &mut []).unwrap_err();
    assert_eq!(
        e,
        MboxError::Background {
            opcode: 0x5201,
            cause: WaitError::Timeout,
            percent: 40,
            abort: AbortOutcome::Stopped(ReturnCode::Aborted),
        }
    );
    assert_eq!(e.errno(), Errno::TimedOut);
    let ops: Vec<u16> = dev.with(|s| s.executed.iter().map(|e| e.0).collect());
    assert_eq!(ops, vec![0x5201, 0x0005]);
    // The mailbox is usable afterwards.
    assert_eq!(
        run(&dev, &mut mbox, &Request::new(1, &[]), &mut [])
            .unwrap()
            .rc,
        ReturnCode::Success
    );
}

#[test]
fn background_abort_unsupported() {
    let dev = SimDevice::new(11, |_, _, _| Reply {
        background: Some(BgPlan {
            stuck_at: Some(10),
            abortable: false,
            ..BgPlan::completes(1, 0)
        }),
        ..Reply::default()
    });
    let mut mbox = init(&dev);
    let e = run(&dev, &mut mbox, &bg_req(0x5201, 10, true), &mut []).unwrap_err();
    assert!(matches!(
        e,
        MboxError::Background {
            cause: WaitError::Timeout,
            abort: AbortOutcome::Unsupported,
            ..
        }
    ));
    // Still running: a second background command is refused by the device with busy.
    let r = run(&dev, &mut mbox, &bg_req(0x5202, 10, false), &mut []).unwrap();
    assert_eq!(r.rc, ReturnCode::Busy);
}

#[test]
fn background_timeout_without_abort_policy_leaves_it_running() {
    let dev = SimDevice::new(11, |_, _, _| Reply {
        background: Some(BgPlan::completes(100, 0)),
        ..Reply::default()
    });
    let mut mbox = init(&dev);
    let e = run(&dev, &mut mbox, &bg_req(0x5201, 5, false), &mut []).unwrap_err();
    assert!(matches!(
        e,
        MboxError::Background {
            abort: AbortOutcome::NotRequested,
            ..
        }
    ));
    assert_eq!(dev.with(|s| s.executed.len()), 1);
    assert!(dev.with(|s| s.status.background()));
}

#[test]
fn background_interrupted_keeps_tracking_and_next_command_is_correct() {
    let dev = SimDevice::new(11, |op, _, _| match op {
        0x5201 => Reply {
            background: Some(BgPlan::completes(10, 0)),
            ..Reply::default()
        },
        _ => Reply::out(&[0x42]),
    });
    let mut mbox = init(&dev);
    let mut w = SimWaiter::new(&dev);
    w.interrupt_bg_after = Some(3);
    let e = mbox
        .execute(&dev, &mut w, &bg_req(0x5201, 1000, true), &mut [])
        .unwrap_err();
    // A signal that does not kill: the call is restarted (issue 21, item 2).
    assert_eq!(e.errno(), Errno::RestartSys);
    assert!(matches!(
        e,
        MboxError::Background {
            cause: WaitError::Interrupted,
            abort: AbortOutcome::NotRequested,
            ..
        }
    ));
    // A foreground command still runs and returns its own output.
    let mut out = [0u8; 1];
    let r = run(&dev, &mut mbox, &Request::new(1, &[]), &mut out).unwrap();
    assert_eq!((r.rc, out), (ReturnCode::Success, [0x42]));
    // The operation finishes on its own; its status is readable.
    for _ in 0..200 {
        dev.tick();
    }
    let bg = mbox.bg_status(&dev).unwrap();
    assert_eq!(
        (bg.opcode(), bg.percent(), bg.return_code()),
        (0x5201, 100, 0)
    );
}

/// Issue 21, item 2: with the abort-on-signal policy, only a fatal signal aborts the
/// operation; a stop, a ptrace attach or a handled signal leaves it running (the call restarts
/// and waits for it again).
#[test]
fn background_abort_on_signal_aborts_only_when_killed() {
    let dev = SimDevice::new(11, |_, _, _| Reply {
        background: Some(BgPlan::completes(10, 0)),
        ..Reply::default()
    });
    let mut mbox = init(&dev);
    let mut req = bg_req(0x5201, 1000, false);
    req.bg.abort_on_interrupt = true;
    let mut w = SimWaiter::new(&dev);
    w.interrupt_bg_after = Some(2);
    let e = mbox.execute(&dev, &mut w, &req, &mut []).unwrap_err();
    assert!(matches!(
        e,
        MboxError::Background {
            cause: WaitError::Interrupted,
            abort: AbortOutcome::NotRequested,
            ..
        }
    ));
    assert_eq!(e.errno(), Errno::RestartSys);
    assert!(!dev.with(|s| s
        .executed
        .iter()
        .any(|e| e.0 == crate::opcode::REQUEST_ABORT_BG)));
    // Let that one finish, then one that is killed.
    for _ in 0..200 {
        dev.tick();
    }
    let mut w = SimWaiter::new(&dev);
    w.kill_bg_after = Some(2);
    let e = mbox.execute(&dev, &mut w, &req, &mut []).unwrap_err();
    assert!(matches!(
        e,
        MboxError::Background {
            cause: WaitError::Killed,
            abort: AbortOutcome::Stopped(ReturnCode::Aborted),
            ..
        }
    ));
    assert_eq!(e.errno(), Errno::Intr);
}

/// Issue 21, item 4: the driver's own Request Abort Background Operation does the MMB
/// attention handshake like every command, and lets the function rest afterwards.
#[test]
fn abort_does_the_attention_handshake() {
    let dev = SimDevice::new(11, |_, _, _| Reply {
        background: Some(BgPlan::completes(10, 0)),
        ..Reply::default()
    });
    dev.with(|s| {
        s.caps = s.caps.with_attention(true);
        s.attention_in = Some(2);
    });
    let loc = Location {
        flavor: Flavor::CXL_MMB,
        ..CXL
    };
    let mut w = SimWaiter::new(&dev);
    let mut mbox = Mailbox::init(&dev, &mut w, loc, Timeouts::DEFAULT).unwrap();
    mbox.set_interrupts(&dev, false, false).unwrap();
    let mut w = SimWaiter::new(&dev);
    let e = mbox
        .execute(&dev, &mut w, &bg_req(0x5201, 3, true), &mut [])
        .unwrap_err();
    assert!(matches!(
        e,
        MboxError::Background {
            cause: WaitError::Timeout,
            abort: AbortOutcome::Stopped(_),
            ..
        }
    ));
    dev.with(|s| {
        assert_eq!(
            s.executed.last().unwrap().0,
            crate::opcode::REQUEST_ABORT_BG
        );
        assert_eq!(
            s.doorbells_without_attention, 0,
            "abort rung without attention"
        );
        assert!(s.ctrl.attention_not_needed(), "left awake after the abort");
    });
}

/// A command that asks to watch the Background Command Status register gets it right before
/// the doorbell (issue 21, item 13: a tracked operation's completion is seen before a new one
/// can replace it).
#[test]
fn watch_bg_hands_the_register_to_before_send() {
    let dev = SimDevice::new(11, |op, _, _| match op {
        0x5201 => Reply {
            background: Some(BgPlan::completes(1, 0x16)),
            ..Reply::default()
        },
        _ => Reply::default(),
    });
    let mut mbox = init(&dev);
    let mut w = SimWaiter::new(&dev);
    let r = mbox
        .start(&dev, &mut w, &bg_req(0x5201, 1000, false), &mut [])
        .unwrap();
    assert!(mbox.is_background(&r));
    for _ in 0..50 {
        dev.tick();
    }
    let mut seen = None;
    let req = Request {
        watch_bg: true,
        ..Request::new(1, &[])
    };
    mbox.start_with(&dev, &mut w, &req, &mut [], |bg| seen = bg)
        .unwrap();
    let bg = seen.expect("register read");
    assert_eq!(
        (bg.opcode(), bg.percent(), bg.return_code()),
        (0x5201, 100, 0x16)
    );
    // Not asked: not read.
    let mut seen = Some(bg);
    mbox.start_with(&dev, &mut w, &Request::new(1, &[]), &mut [], |bg| seen = bg)
        .unwrap();
    assert_eq!(seen, None);
}

#[test]
fn ready_never_set() {
    let dev = SimDevice::ok().ready_after(None);
    let mut w = SimWaiter::new(&dev);
    let e = Mailbox::init(&dev, &mut w, CXL, Timeouts::DEFAULT).unwrap_err();
    assert_eq!(e, MboxError::NotReady);
    assert_eq!(w.begun, vec![(Event::Ready, 2_000_000)]);
}

#[test]
fn ready_after_a_while_and_ready_time_from_caps() {
    let dev = SimDevice::ok().ready_after(Some(30));
    dev.with(|s| s.caps = s.caps.with_ready_time(5));
    let mut w = SimWaiter::new(&dev);
    Mailbox::init(&dev, &mut w, CXL, Timeouts::DEFAULT).unwrap();
    assert_eq!(w.begun, vec![(Event::Ready, 5_000_000)]);
    assert_eq!(dev.with(|s| s.ticks), 30);
}

#[test]
fn init_waits_for_a_doorbell_left_set() {
    let dev = SimDevice::ok();
    dev.with(|s| {
        s.ctrl = s.ctrl.with_doorbell(true);
        s.stuck_doorbell = true;
    });
    let mut w = SimWaiter::new(&dev);
    assert_eq!(
        Mailbox::init(&dev, &mut w, CXL, Timeouts::DEFAULT).unwrap_err(),
        MboxError::Timeout
    );
}

#[test]
fn invalid_payload_sizes_are_refused() {
    for log2 in [0u8, 7, 21, 31] {
        let dev = SimDevice::new(8, |_, _, _| Reply::default());
        dev.with(|s| s.caps = s.caps.with_payload_size_log2(log2));
        let mut w = SimWaiter::new(&dev);
        assert_eq!(
            Mailbox::init(&dev, &mut w, CXL, Timeouts::DEFAULT).unwrap_err(),
            MboxError::BadPayloadSize(log2)
        );
    }
    // A capability too short for its own payload.
    let dev = SimDevice::ok();
    let mut w = SimWaiter::new(&dev);
    let short = Location { len: 0x100, ..CXL };
    assert_eq!(
        Mailbox::init(&dev, &mut w, short, Timeouts::DEFAULT).unwrap_err(),
        MboxError::BadPayloadSize(11)
    );
}

#[test]
fn device_gone_mid_wait() {
    let dev = SimDevice::ok();
    let mut mbox = init(&dev);
    dev.with(|s| s.delay_ticks = 50);
    let mut w = SimWaiter::new(&dev);
    w.gone_after = Some(3);
    let e = mbox
        .execute(&dev, &mut w, &Request::new(1, &[]), &mut [])
        .unwrap_err();
    assert_eq!(e, MboxError::Io(IoError::Gone));
    assert_eq!(e.errno(), Errno::Nxio);
}

#[test]
fn mmb_ready_attention_and_opcode_vendor() {
    let dev = SimDevice::ok().ready_after(Some(3));
    dev.with(|s| {
        s.caps = s.caps.with_attention(true);
        s.attention_in = Some(4);
    });
    let loc = Location {
        base: MBOX,
        len: 0,
        flavor: Flavor::MMB,
        memdev_status: None,
    };
    let mut w = SimWaiter::new(&dev);
    let mut mbox = Mailbox::init(&dev, &mut w, loc, Timeouts::DEFAULT).unwrap();
    mbox.set_interrupts(&dev, false, false).unwrap();
    // Idle: attention is not needed.
    assert!(dev.with(|s| s.ctrl.attention_not_needed()));
    let mut w = SimWaiter::new(&dev);
    let req = Request {
        opcode_vendor: 1,
        ..Request::new(0x0100, &[1, 2, 3])
    };
    mbox.execute(&dev, &mut w, &req, &mut []).unwrap();
    assert_eq!(w.begun[0], (Event::Attention, 50_000));
    dev.with(|s| {
        assert_eq!(s.executed.last().unwrap().1, 1);
        // Back to rest after the command.
        assert!(s.ctrl.attention_not_needed());
    });
    // Attention never comes.
    dev.with(|s| s.attention_in = None);
    let e = run(&dev, &mut mbox, &req, &mut []).unwrap_err();
    assert_eq!(e, MboxError::NoAttention);
}

#[test]
fn opcode_vendor_is_not_sent_to_a_plain_cxl_mailbox() {
    let dev = SimDevice::ok();
    let mut mbox = init(&dev);
    let req = Request {
        opcode_vendor: 1,
        ..Request::new(0x0001, &[])
    };
    run(&dev, &mut mbox, &req, &mut []).unwrap();
    assert_eq!(dev.with(|s| s.executed.last().unwrap().1), 0);
}

#[test]
fn interrupt_enables_follow_the_capabilities() {
    let dev = SimDevice::ok();
    let mut mbox = init(&dev);
    mbox.set_interrupts(&dev, true, true).unwrap();
    // The simulated caps advertise no interrupts: nothing is enabled.
    assert_eq!(dev.with(|s| s.ctrl.0), 0);
    dev.with(|s| s.caps = s.caps.with_doorbell_irq(true).with_background_irq(true));
    let mut mbox = init(&dev);
    mbox.set_interrupts(&dev, true, true).unwrap();
    assert_eq!(dev.with(|s| s.ctrl.0), 0b110);
    // The doorbell write keeps the enables.
    run(&dev, &mut mbox, &Request::new(1, &[]), &mut []).unwrap();
    assert!(dev.with(|s| s.log.contains(&Access::W32(MBOX + 4, 0b111))));
}

#[test]
fn start_returns_at_background_start_and_wait_sees_captured_completion() {
    let dev = SimDevice::new(11, |_, _, _| Reply {
        background: Some(BgPlan::completes(1000, 0)),
        ..Reply::default()
    });
    let mut mbox = init(&dev);
    let mut w = SimWaiter::new(&dev);
    let r = mbox
        .start(&dev, &mut w, &bg_req(0x5201, 1, true), &mut [])
        .unwrap();
    assert_eq!(r.rc, ReturnCode::BackgroundStarted);
    assert!(mbox.is_background(&r));
    assert_eq!(mbox.bg_completion(&dev, 0x5201).unwrap(), None);
    // Another agent recorded the completion before the register moved on.
    let mut rounds = 0;
    let captured = Response {
        rc: ReturnCode::Aborted,
        vendor_status: 0,
        out_len: 0,
        device_len: 0,
        background: Some(BgCompletion {
            opcode: 0x5201,
            vendor_status: 0,
        }),
    };
    let got = mbox
        .wait_background(&dev, &mut w, 0x5201, 1_000_000, || {
            rounds += 1;
            (rounds == 3).then_some(captured)
        })
        .unwrap();
    assert_eq!(got, captured);
    // Without help the wait ends at its budget with the progress seen.
    let e = mbox
        .wait_background(&dev, &mut w, 0x5201, 5_000, || None)
        .unwrap_err();
    assert_eq!(
        e,
        BgWaitError {
            cause: WaitError::Timeout,
            percent: 0
        }
    );
}

#[test]
fn a_function_that_reads_all_ones_is_gone() {
    let dev = SimDevice::ok();
    let mut mbox = init(&dev);
    dev.with(|s| {
        s.removed_after = Some(0);
        s.log.clear();
    });
    let e = run(&dev, &mut mbox, &Request::new(1, &[1, 2, 3]), &mut []).unwrap_err();
    assert_eq!(e, MboxError::Io(IoError::Gone));
    assert_eq!(e.errno(), Errno::Nxio);
    // Nothing was written to a function that is not there.
    assert!(dev.with(|s| !s
        .log
        .iter()
        .any(|a| matches!(a, Access::W32(..) | Access::W64(..)))));
}

#[test]
fn removal_during_a_command_ends_the_wait_at_once() {
    let dev = SimDevice::ok();
    let mut mbox = init(&dev);
    dev.with(|s| {
        s.delay_ticks = 1000;
        s.removed_after = Some(s.ticks + 5);
    });
    let e = run(&dev, &mut mbox, &Request::new(1, &[]), &mut []).unwrap_err();
    assert_eq!(e, MboxError::Io(IoError::Gone));
    // Noticed at the first check after the removal, not after the 2 s timeout.
    assert!(dev.with(|s| s.ticks) < 10);
}

/// A device whose Get Log (0401h) answers 600 bytes of a pattern.
fn log_device() -> (SimDevice, Vec<u8>) {
    let data: Vec<u8> = (0..600u32).map(|i| (i * 7 + 3) as u8).collect();
    let answer = data.clone();
    let dev = SimDevice::new(11, move |op, _, _| {
        if op == 0x0401 {
            Reply::out(&answer)
        } else {
            Reply::default()
        }
    });
    (dev, data)
}

#[test]
fn reset_or_removal_after_any_read_never_gives_wrong_data() {
    // Reads after the completion of a clean Get Log: the completion check, status, command,
    // 150 payload dwords, the command again, control.
    let (dev, data) = log_device();
    let mut mbox = init(&dev);
    let mut out = vec![0u8; 2048];
    let before = dev.with(|s| s.reads);
    let r = run(&dev, &mut mbox, &Request::new(0x0401, &[0; 24]), &mut out).unwrap();
    assert_eq!(&out[..r.out_len], &data[..]);
    // One read (the doorbell check) happens before the command is written.
    let after_completion = dev.with(|s| s.reads) - before - 1;
    assert_eq!(after_completion, 155);

    for fault in [SimFault::Reset, SimFault::Remove] {
        for n in 0..=after_completion as u32 + 2 {
            let (dev, data) = log_device();
            let mut mbox = init(&dev);
            dev.with(|s| s.after_reads = Some((n, fault)));
            let mut out = vec![0u8; 2048];
            let res = run(&dev, &mut mbox, &Request::new(0x0401, &[0; 24]), &mut out);
            match res {
                Ok(r) => {
                    assert_eq!(&out[..r.out_len], &data[..], "{fault:?} after {n} reads");
                    // Success only once every check read was done before the fault.
                    assert!(n >= 154, "{fault:?} after {n} reads: success");
                }
                Err(e) => {
                    let want = match fault {
                        SimFault::Reset => MboxError::Changed,
                        SimFault::Remove => MboxError::Io(IoError::Gone),
                    };
                    assert_eq!(e, want, "{fault:?} after {n} reads");
                    assert_eq!(
                        e.errno(),
                        match fault {
                            SimFault::Reset => Errno::Io,
                            SimFault::Remove => Errno::Nxio,
                        }
                    );
                }
            }
            if n < 154 {
                assert!(res.is_err(), "{fault:?} after {n} reads");
            }
        }
    }
}

#[test]
fn reset_during_a_delayed_command_is_noticed() {
    // The device resets right at the completion of a command that needed a wait.
    let (dev, _) = log_device();
    let mut mbox = init(&dev);
    dev.with(|s| {
        s.delay_ticks = 3;
        s.after_reads = Some((0, SimFault::Reset));
    });
    let mut out = vec![0u8; 2048];
    let e = run(&dev, &mut mbox, &Request::new(0x0401, &[0; 24]), &mut out).unwrap_err();
    assert_eq!(e, MboxError::Changed);
    // The device works again afterwards.
    let r = run(&dev, &mut mbox, &Request::new(0x0401, &[0; 24]), &mut out).unwrap();
    assert_eq!(r.out_len, 600);
}

#[test]
fn registers_reading_all_ones_after_completion_are_gone_not_data() {
    // Removed between the doorbell check and the status read: an all-ones status is not a
    // return code, an all-ones length is not a bad length.
    let (dev, _) = log_device();
    let mut mbox = init(&dev);
    dev.with(|s| s.after_reads = Some((1, SimFault::Remove)));
    let e = run(
        &dev,
        &mut mbox,
        &Request::new(0x0401, &[0; 24]),
        &mut [0; 64],
    )
    .unwrap_err();
    assert_eq!(e, MboxError::Io(IoError::Gone));
}

#[test]
fn before_send_runs_only_for_commands_that_reach_the_device() {
    let call = |dev: &SimDevice, mbox: &mut Mailbox, input: &[u8]| {
        let mut called = 0;
        let mut w = SimWaiter::new(dev);
        let res = mbox.start_with(dev, &mut w, &Request::new(0x0201, input), &mut [], |_| {
            called += 1
        });
        (res, called)
    };
    let dev = SimDevice::ok();
    let mut mbox = init(&dev);
    let (res, called) = call(&dev, &mut mbox, &[1, 2, 3]);
    assert!(res.is_ok());
    assert_eq!(called, 1);
    assert_eq!(dev.with(|s| s.executed.len()), 1);
    // Too large: refused before the device.
    let (res, called) = call(&dev, &mut mbox, &[0; 4096]);
    assert!(matches!(res, Err(MboxError::InputTooLarge { .. })));
    assert_eq!(called, 0);
    // Busy doorbell.
    dev.with(|s| s.ctrl = s.ctrl.with_doorbell(true));
    let (res, called) = call(&dev, &mut mbox, &[]);
    assert_eq!(res.unwrap_err(), MboxError::Busy);
    assert_eq!(called, 0);
    dev.with(|s| s.ctrl = s.ctrl.with_doorbell(false));
    // Gone.
    dev.with(|s| s.removed_after = Some(0));
    let (res, called) = call(&dev, &mut mbox, &[]);
    assert_eq!(res.unwrap_err(), MboxError::Io(IoError::Gone));
    assert_eq!(called, 0);
    assert_eq!(dev.with(|s| s.executed.len()), 1);
}

#[test]
fn output_copied_as_one_block_of_the_reported_length() {
    let (dev, data) = log_device();
    let mut mbox = init(&dev);
    dev.with(|s| s.log.clear());
    let mut out = vec![0u8; 100];
    let r = run(&dev, &mut mbox, &Request::new(0x0401, &[0; 24]), &mut out).unwrap();
    assert_eq!((r.out_len, r.device_len), (100, 600));
    assert_eq!(&out[..], &data[..100]);
    dev.with(|s| {
        let blocks: Vec<&Access> = s
            .log
            .iter()
            .filter(|a| matches!(a, Access::RBlock(..)))
            .collect();
        assert_eq!(blocks, vec![&Access::RBlock(MBOX + 0x20, 100)]);
    });
}

#[test]
fn background_watcher_sees_removal_as_gone() {
    let dev = SimDevice::new(11, |_, _, _| Reply {
        background: Some(BgPlan::completes(5, 0)),
        ..Reply::default()
    });
    let mut mbox = init(&dev);
    let mut w = SimWaiter::new(&dev);
    let r = mbox
        .start(&dev, &mut w, &bg_req(0x4400, 1000, false), &mut [])
        .unwrap();
    assert!(mbox.is_background(&r));
    let watcher = mbox.bg_watcher();
    dev.with(|s| s.removed_after = Some(0));
    let e = watcher
        .wait(&dev, &mut w, 0x4400, 1_000_000, || None)
        .unwrap_err();
    assert_eq!(e.cause, WaitError::Gone);
    assert_eq!(watcher.status(&dev), Err(IoError::Gone));
}
