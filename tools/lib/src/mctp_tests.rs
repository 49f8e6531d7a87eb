// SPDX-License-Identifier: GPL-2.0

//! The MCTP transport against a simulated endpoint: retries only of read-only commands, late
//! and wrong-tag responses dropped, malformed ones reported, background operations polled,
//! aborted on timeout and left running on cancellation, pacing.

use super::*;
use crate::proto::payload::identify::ComponentType;
use crate::proto::payload::switch::{self, UnbindOption};
use crate::proto::payload::tunnel::{Category, CciHeader};
use crate::{Cci, Target};
use std::collections::VecDeque;

/// What the simulated endpoint does.
#[derive(Default)]
struct Sim {
    /// Responses to drop before answering again.
    drop: u32,
    /// Send a response with the previous tag before each answer.
    stale_first: bool,
    /// Answer the next request with a body that does not decode.
    garbage: u32,
    /// Polls of Background Operation Status that still report the operation running
    /// (`u32::MAX`: it never ends), and its final return code.
    bg: Option<(u16, u32, ReturnCode)>,
    /// Opcodes received, in order, and when.
    seen: Vec<(u16, Instant)>,
    queue: VecDeque<(u8, Vec<u8>)>,
}

#[derive(Clone, Default)]
struct Link(Arc<Mutex<Sim>>);

fn identify_payload() -> Vec<u8> {
    let id = Identify {
        vendor_id: 0x1b36,
        device_id: 0x5c01,
        subsys_vendor_id: 0x1b36,
        subsys_id: 0x5c01,
        serial: 0x1234,
        max_msg_size_log2: 11,
        component_type: ComponentType::Switch,
    };
    let mut b = [0u8; 18];
    let n = id.encode(&mut b).unwrap();
    b[..n].to_vec()
}

fn response(h: &CciHeader, tag: u8, rc: ReturnCode, payload: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; pm::CXL_MESSAGE_OVERHEAD + payload.len()];
    let r = CciHeader::response(h.opcode, tag, rc, 0, 0);
    let n = pm::encode(&mut b, &r, payload).unwrap();
    b.truncate(n);
    b
}

impl Transport for Link {
    fn send(&mut self, typ: u8, body: &[u8]) -> io::Result<()> {
        let mut s = self.0.lock().unwrap();
        let m = CxlMessage::decode(typ, body).unwrap();
        assert_eq!(m.header.category, Category::Request);
        let h = m.header;
        s.seen.push((h.opcode, Instant::now()));
        let (rc, out) = match h.opcode {
            opcode::IDENTIFY => (ReturnCode::Success, identify_payload()),
            opcode::BIND_VPPB | opcode::UNBIND_VPPB => {
                if s.bg.is_some() {
                    (ReturnCode::BackgroundStarted, Vec::new())
                } else {
                    (ReturnCode::Success, Vec::new())
                }
            }
            opcode::BG_OP_STATUS => {
                let (op, left, rc) = s.bg.unwrap();
                let running = left > 0;
                if running && left != u32::MAX {
                    s.bg = Some((op, left - 1, rc));
                }
                let st = BgOpStatus {
                    running,
                    percent: if running { 50 } else { 100 },
                    opcode: op,
                    rc: if running { ReturnCode::Success } else { rc },
                    vendor_status: 0,
                };
                let mut b = [0u8; 8];
                st.encode(&mut b).unwrap();
                (ReturnCode::Success, b.to_vec())
            }
            opcode::REQUEST_ABORT_BG => {
                if let Some((op, _, _)) = s.bg {
                    s.bg = Some((op, 0, ReturnCode::Aborted));
                }
                (ReturnCode::Success, Vec::new())
            }
            _ => (ReturnCode::Unsupported, Vec::new()),
        };
        if s.drop > 0 {
            s.drop -= 1;
            return Ok(());
        }
        if s.garbage > 0 {
            s.garbage -= 1;
            s.queue.push_back((typ, vec![1, h.tag, 0]));
            return Ok(());
        }
        if s.stale_first {
            let stale = response(&h, h.tag.wrapping_sub(1), ReturnCode::InvalidInput, &[]);
            s.queue.push_back((typ, stale));
        }
        let r = response(&h, h.tag, rc, &out);
        s.queue.push_back((typ, r));
        Ok(())
    }

    fn recv(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<Option<(u8, usize)>> {
        let next = self.0.lock().unwrap().queue.pop_front();
        match next {
            Some((t, b)) => {
                buf[..b.len()].copy_from_slice(&b);
                Ok(Some((t, b.len())))
            }
            None => {
                std::thread::sleep(timeout);
                Ok(None)
            }
        }
    }
}

fn endpoint(link: &Link, opts: MctpOptions) -> MctpEndpoint {
    let addr: MctpAddr = "mctp:9".parse().unwrap();
    MctpEndpoint::with_transport(addr, opts, Box::new(link.clone()))
}

fn quick() -> MctpOptions {
    MctpOptions {
        timeout: Duration::from_millis(20),
        retries: 2,
        min_gap: Duration::ZERO,
    }
}

#[test]
fn identify_and_payload_size() {
    let link = Link::default();
    let ep = endpoint(&link, quick());
    let cci = Cci::new(&ep, Target::Direct);
    assert_eq!(cci.identify().unwrap().serial, 0x1234);
    assert_eq!(ep.payload_size().unwrap(), 2048);
    assert_eq!(ep.path(), Path::new("mctp:1:9"));
    // The payload size is read once.
    assert_eq!(ep.payload_size().unwrap(), 2048);
    assert_eq!(link.0.lock().unwrap().seen.len(), 2);
}

#[test]
fn lost_responses_of_read_only_commands_are_asked_again() {
    let link = Link::default();
    link.0.lock().unwrap().drop = 2;
    let ep = endpoint(&link, quick());
    assert_eq!(
        Cci::new(&ep, Target::Direct).identify().unwrap().serial,
        0x1234
    );
    assert_eq!(ep.stats.retries.load(Ordering::Relaxed), 2);
    // One more lost than the retries allow: ETIMEDOUT naming the attempts.
    link.0.lock().unwrap().drop = 3;
    let e = Cci::new(&ep, Target::Direct).identify().unwrap_err();
    assert_eq!(e.errno(), Some(libc::ETIMEDOUT));
    assert!(
        e.to_string()
            .starts_with("Identify (0001h) on mctp:1:9: no response in 3 attempt(s) of 20 ms"),
        "{e}"
    );
}

#[test]
fn state_changing_commands_are_never_sent_twice() {
    let link = Link::default();
    let ep = endpoint(&link, quick());
    ep.payload_size().unwrap();
    link.0.lock().unwrap().seen.clear();
    link.0.lock().unwrap().drop = 1;
    let e = Cci::new(&ep, Target::Direct)
        .unbind_vppb(0, 1, UnbindOption::WaitLinkDown)
        .unwrap_err();
    assert_eq!(e.errno(), Some(libc::ETIMEDOUT));
    assert!(
        e.to_string()
            .contains("was not sent again: it may have taken effect"),
        "{e}"
    );
    let seen: Vec<u16> = link.0.lock().unwrap().seen.iter().map(|s| s.0).collect();
    assert_eq!(seen, vec![opcode::UNBIND_VPPB]);
    // A tunnel is judged by what it carries: a tunnelled Identify is retried.
    assert!(!effects::classify(opcode::TUNNEL, &tunnelled_identify(), None).effectful);
}

fn tunnelled_identify() -> Vec<u8> {
    let mut b = [0u8; 32];
    let n = crate::proto::payload::tunnel::encode_request(&mut b, 1, 0, 0, opcode::IDENTIFY, &[])
        .unwrap();
    b[..n].to_vec()
}

#[test]
fn stale_and_malformed_responses_are_never_the_answer() {
    let link = Link::default();
    link.0.lock().unwrap().stale_first = true;
    let ep = endpoint(&link, quick());
    // Payload size (an Identify), then the Identify: a stale response before each answer.
    assert_eq!(
        Cci::new(&ep, Target::Direct).identify().unwrap().serial,
        0x1234
    );
    assert_eq!(ep.stats.stale.load(Ordering::Relaxed), 2);
    assert_eq!(ep.stats.retries.load(Ordering::Relaxed), 0);
    // Garbage every time: a malformed-response error, not data.
    let link = Link::default();
    let ep = endpoint(&link, quick());
    ep.payload_size().unwrap();
    link.0.lock().unwrap().garbage = 3;
    let e = Cci::new(&ep, Target::Direct).identify().unwrap_err();
    assert!(e.is_malformed(), "{e}");
    assert_eq!(ep.stats.malformed.load(Ordering::Relaxed), 3);
    // Once: the retry gets the answer.
    link.0.lock().unwrap().garbage = 1;
    assert!(Cci::new(&ep, Target::Direct).identify().is_ok());
}

#[test]
fn background_operations_are_waited_for() {
    let link = Link::default();
    link.0.lock().unwrap().bg = Some((opcode::BIND_VPPB, 3, ReturnCode::Success));
    let ep = endpoint(&link, quick());
    let rc = Cci::new(&ep, Target::Direct)
        .bind_vppb(0, 1, 2, switch::LD_NONE)
        .unwrap();
    assert_eq!(rc, ReturnCode::Success);
    assert_eq!(ep.stats.bg_polls.load(Ordering::Relaxed), 4);
    // Its failure is the command's return code.
    link.0.lock().unwrap().bg = Some((opcode::BIND_VPPB, 1, ReturnCode::InvalidInput));
    let e = Cci::new(&ep, Target::Direct)
        .bind_vppb(0, 1, 2, switch::LD_NONE)
        .unwrap_err();
    assert_eq!(e.rc(), Some(ReturnCode::InvalidInput));
}

#[test]
fn a_background_operation_past_its_timeout_is_aborted() {
    let link = Link::default();
    link.0.lock().unwrap().bg = Some((opcode::BIND_VPPB, u32::MAX, ReturnCode::Success));
    let ep = endpoint(&link, quick());
    ep.set_bg_timeout(30).unwrap();
    let e = Cci::new(&ep, Target::Direct)
        .bind_vppb(0, 1, 2, switch::LD_NONE)
        .unwrap_err();
    assert_eq!(e.errno(), Some(libc::ETIMEDOUT));
    assert!(
        e.to_string()
            .contains("Request Abort Background Operation sent"),
        "{e}"
    );
    let seen: Vec<u16> = link.0.lock().unwrap().seen.iter().map(|s| s.0).collect();
    assert_eq!(seen.last(), Some(&opcode::REQUEST_ABORT_BG));
}

#[test]
fn cancellation_leaves_the_operation_running() {
    let link = Link::default();
    link.0.lock().unwrap().bg = Some((opcode::BIND_VPPB, u32::MAX, ReturnCode::Success));
    let ep = endpoint(&link, quick());
    let flag = Arc::new(AtomicBool::new(true));
    ep.set_cancel(flag);
    let e = Cci::new(&ep, Target::Direct)
        .bind_vppb(0, 1, 2, switch::LD_NONE)
        .unwrap_err();
    assert_eq!(e.errno(), Some(libc::EINTR));
    let seen: Vec<u16> = link.0.lock().unwrap().seen.iter().map(|s| s.0).collect();
    assert!(!seen.contains(&opcode::REQUEST_ABORT_BG));
}

#[test]
fn pacing_keeps_the_gap() {
    let link = Link::default();
    let opts = MctpOptions {
        min_gap: Duration::from_millis(30),
        ..quick()
    };
    let ep = endpoint(&link, opts);
    let cci = Cci::new(&ep, Target::Direct);
    for _ in 0..3 {
        cci.identify().unwrap();
    }
    let seen = link.0.lock().unwrap().seen.clone();
    for w in seen.windows(2) {
        assert!(w[1].1 - w[0].1 >= Duration::from_millis(30));
    }
}
