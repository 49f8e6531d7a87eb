// SPDX-License-Identifier: GPL-2.0

//! Firmware update against a simulated device: the switch's own CCI (where the driver waits
//! for background operations, so a part returns its final return code) or a component behind
//! one or two tunnels (where a part returns "background command started" and completes after
//! a number of Background Operation Status polls). The device follows CXL r3.1 §8.2.9.3 as
//! QEMU's type-3 device and the project's emulator implement it: validation at once, the work
//! (storing a part, verifying an image, activating) when the background operation completes,
//! Busy (06h) for a Transfer FW while one runs, Request Abort Background Operation (0005h)
//! stopping a part.

use super::*;
use crate::proto::payload::bg::BgOpStatus;
use crate::proto::payload::tunnel::{self, TunnelRequest};
use crate::{Mailbox, RawResponse, TUNNEL_OVERHEAD};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

/// Where the device sits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    /// The switch CCI itself (the driver waits for background operations).
    Direct,
    /// Behind the tunnel path (ports / LD).
    Behind(Target),
}

/// A background operation in progress.
#[derive(Clone, Debug)]
struct Bg {
    opcode: u16,
    polls_left: u32,
    work: Work,
}

/// What a background operation does when it completes.
#[derive(Clone, Debug)]
enum Work {
    Part {
        action: TransferAction,
        slot: u8,
        offset: usize,
        data: Vec<u8>,
    },
    Activate(u8),
}

/// The device's firmware state and faults.
#[derive(Debug)]
struct Dev {
    slots: u8,
    active: u8,
    staged: u8,
    images: Vec<Option<Vec<u8>>>,
    open: Option<Vec<u8>>,
    /// Offset and length of the last part stored (a resend replaces it).
    last: Option<(usize, usize)>,
    bg: Option<Bg>,
    last_bg: (u16, ReturnCode),
    /// Polls of Background Operation Status a background operation takes (tunnelled).
    bg_polls: u32,
    /// A background operation never completes.
    never: bool,
    /// The next N Transfer FW commands (any action) get Busy; u32::MAX: all.
    busy: u32,
    /// The N-th Transfer FW part (0-based, Abort not counted) gets 09h.
    out_of_order_at: Option<usize>,
    /// End / Full fail verification.
    auth_fail: bool,
    /// Online activation fails with this code.
    activate_fail: Option<ReturnCode>,
    /// Direct target: the wait for the N-th part is interrupted (EINTR); the part runs on.
    eintr_at: Option<usize>,
    /// Get FW Info is unsupported.
    no_fw: bool,
    /// Set the flag when the N-th part arrives (0-based), which then runs long.
    cancel_at: Option<(usize, Arc<AtomicBool>)>,
    parts: usize,
}

impl Dev {
    fn new() -> Self {
        let mut builtin = fwp::revision_field("sim 1.0").to_vec();
        builtin.extend([0x5a; 112]);
        Self {
            slots: 3,
            active: 1,
            staged: 0,
            images: vec![Some(builtin), None, None],
            open: None,
            last: None,
            bg: None,
            last_bg: (0, ReturnCode::Success),
            bg_polls: 2,
            never: false,
            busy: 0,
            out_of_order_at: None,
            auth_fail: false,
            activate_fail: None,
            eintr_at: None,
            no_fw: false,
            cancel_at: None,
            parts: 0,
        }
    }

    fn info(&self) -> Vec<u8> {
        let mut revisions = [[0u8; fwp::REVISION_LEN]; 4];
        for (r, img) in revisions.iter_mut().zip(&self.images) {
            if let Some(i) = img {
                r.copy_from_slice(&i[..fwp::REVISION_LEN]);
            }
        }
        let info = FwInfo {
            slots_supported: self.slots,
            active_slot: self.active,
            staged_slot: self.staged,
            online_activation: true,
            revisions,
        };
        let mut b = vec![0u8; fwp::FW_INFO_LEN];
        info.encode(&mut b).unwrap();
        b
    }

    /// Validates a Transfer FW; `Ok` with the work for the background, or the return code.
    fn transfer(&mut self, input: &[u8]) -> std::result::Result<Option<Work>, ReturnCode> {
        let t = Transfer::decode(input).map_err(|_| ReturnCode::InvalidPayloadLength)?;
        if self.busy > 0 {
            self.busy = self.busy.saturating_sub(u32::from(self.busy != u32::MAX));
            return Err(ReturnCode::Busy);
        }
        if self.bg.is_some() {
            return Err(ReturnCode::Busy);
        }
        if t.action == TransferAction::Abort {
            self.open = None;
            self.last = None;
            return Ok(None);
        }
        let k = self.parts;
        self.parts += 1;
        if let Some((at, flag)) = &self.cancel_at {
            if *at == k {
                flag.store(true, Ordering::SeqCst);
                // The part runs long: the cancel finds it running.
                self.bg_polls = 1000;
            }
        }
        if self.out_of_order_at == Some(k) {
            return Err(ReturnCode::FwTransferOutOfOrder);
        }
        let offset = t.byte_offset() as usize;
        let len = t.data.len();
        match t.action {
            TransferAction::Full | TransferAction::Initiate if self.open.is_some() => {
                return Err(ReturnCode::FwTransferInProgress)
            }
            TransferAction::Initiate if offset != 0 || len % OFFSET_UNIT != 0 || len == 0 => {
                return Err(ReturnCode::InvalidInput)
            }
            TransferAction::Continue | TransferAction::End => {
                let Some(open) = &self.open else {
                    return Err(ReturnCode::FwTransferOutOfOrder);
                };
                let resend = self.last == Some((offset, len));
                if offset != open.len() && !resend {
                    return Err(ReturnCode::FwTransferOutOfOrder);
                }
                if t.action == TransferAction::Continue && len % OFFSET_UNIT != 0 {
                    return Err(ReturnCode::InvalidInput);
                }
            }
            _ => {}
        }
        if t.action.names_slot() && (t.slot == 0 || t.slot > self.slots || t.slot == self.active) {
            return Err(ReturnCode::InvalidSlot);
        }
        Ok(Some(Work::Part {
            action: t.action,
            slot: t.slot,
            offset,
            data: t.data.to_vec(),
        }))
    }

    fn activate(&mut self, input: &[u8]) -> std::result::Result<Option<Work>, ReturnCode> {
        let a = Activate::decode(input).map_err(|_| ReturnCode::InvalidInput)?;
        let s = usize::from(a.slot);
        if a.slot == 0 || a.slot > self.slots || self.images[s - 1].is_none() {
            return Err(ReturnCode::InvalidSlot);
        }
        if self.open.is_some() {
            return Err(ReturnCode::FwTransferInProgress);
        }
        match a.action {
            ActivateAction::OnReset => {
                self.staged = a.slot;
                Ok(None)
            }
            ActivateAction::Online if a.slot == self.active => Err(ReturnCode::InvalidSlot),
            ActivateAction::Online => Ok(Some(Work::Activate(a.slot))),
        }
    }

    /// Completes a background operation: its final return code.
    fn complete(&mut self, work: Work) -> ReturnCode {
        match work {
            Work::Part {
                action,
                slot,
                offset,
                data,
            } => {
                let image = match action {
                    TransferAction::Full => data,
                    _ => {
                        let open = self.open.get_or_insert_with(Vec::new);
                        open.truncate(offset);
                        open.extend_from_slice(&data);
                        self.last = Some((offset, data.len()));
                        if action != TransferAction::End {
                            return ReturnCode::Success;
                        }
                        self.last = None;
                        self.open.take().unwrap_or_default()
                    }
                };
                if self.auth_fail || image.len() < fwp::REVISION_LEN {
                    return ReturnCode::FwVerificationFailed;
                }
                self.images[usize::from(slot) - 1] = Some(image);
                if self.staged == slot {
                    self.staged = 0;
                }
                ReturnCode::Success
            }
            Work::Activate(slot) => match self.activate_fail {
                Some(rc) => rc,
                None => {
                    self.active = slot;
                    ReturnCode::Success
                }
            },
        }
    }
}

/// One command as the device received it: the innermost opcode and, for Transfer FW, the
/// action, slot, offset (units) and data length.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Seen {
    opcode: u16,
    part: Option<(TransferAction, u8, u32, usize)>,
}

struct Sim {
    path: PathBuf,
    payload: usize,
    place: Place,
    dev: Mutex<Dev>,
    seen: Mutex<Vec<Seen>>,
    bg_timeouts: Mutex<Vec<u32>>,
}

impl Sim {
    fn new(place: Place, payload: usize) -> Self {
        Self {
            path: PathBuf::from("/dev/cxl/switch0"),
            payload,
            place,
            dev: Mutex::new(Dev::new()),
            seen: Mutex::new(Vec::new()),
            bg_timeouts: Mutex::new(Vec::new()),
        }
    }

    fn with(self, f: impl FnOnce(&mut Dev)) -> Self {
        f(&mut self.dev.lock().unwrap());
        self
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn parts(&self) -> Vec<(TransferAction, u8, u32, usize)> {
        self.seen().iter().filter_map(|s| s.part).collect()
    }

    fn count(&self, opcode: u16) -> usize {
        self.seen().iter().filter(|s| s.opcode == opcode).count()
    }

    fn image(&self, slot: u8) -> Option<Vec<u8>> {
        self.dev.lock().unwrap().images[usize::from(slot) - 1].clone()
    }

    fn is_open(&self) -> bool {
        self.dev.lock().unwrap().open.is_some()
    }

    fn cci(&self) -> Cci<'_> {
        match self.place {
            Place::Direct => Cci::new(self, Target::Direct),
            Place::Behind(t) => Cci::new(self, t),
        }
    }

    /// The device's answer to `opcode`; `Err` for an OS error of the driver (EINTR).
    fn answer(&self, opcode: u16, input: &[u8]) -> Result<(ReturnCode, Vec<u8>)> {
        let part = (opcode == opcode::TRANSFER_FW)
            .then(|| Transfer::decode(input).ok())
            .flatten()
            .map(|t| (t.action, t.slot, t.offset, t.data.len()));
        self.seen.lock().unwrap().push(Seen { opcode, part });
        let direct = self.place == Place::Direct;
        let mut d = self.dev.lock().unwrap();
        let ok = ReturnCode::Success;
        let started = match opcode {
            opcode::GET_FW_INFO if d.no_fw => return Ok((ReturnCode::Unsupported, vec![])),
            opcode::GET_FW_INFO => return Ok((ok, d.info())),
            opcode::BG_OP_STATUS => {
                let never = d.never;
                let s = match &mut d.bg {
                    Some(bg) if bg.polls_left > 0 || never => {
                        bg.polls_left = bg.polls_left.saturating_sub(1);
                        BgOpStatus {
                            running: true,
                            percent: 50,
                            opcode: bg.opcode,
                            rc: ok,
                            vendor_status: 0,
                        }
                    }
                    Some(_) => {
                        let bg = d.bg.take().unwrap();
                        let rc = d.complete(bg.work);
                        d.last_bg = (bg.opcode, rc);
                        BgOpStatus {
                            running: false,
                            percent: 100,
                            opcode: bg.opcode,
                            rc,
                            vendor_status: 0,
                        }
                    }
                    None => BgOpStatus {
                        running: false,
                        percent: 100,
                        opcode: d.last_bg.0,
                        rc: d.last_bg.1,
                        vendor_status: 0,
                    },
                };
                let mut b = vec![0u8; 8];
                s.encode(&mut b).unwrap();
                return Ok((ok, b));
            }
            opcode::REQUEST_ABORT_BG => {
                if let Some(bg) = d.bg.take() {
                    d.last_bg = (bg.opcode, ReturnCode::Aborted);
                }
                return Ok((ok, vec![]));
            }
            opcode::TRANSFER_FW => d.transfer(input),
            opcode::ACTIVATE_FW => d.activate(input),
            _ => return Ok((ReturnCode::Unsupported, vec![])),
        };
        let work = match started {
            Err(rc) => return Ok((rc, vec![])),
            Ok(None) => return Ok((ok, vec![])),
            Ok(Some(w)) => w,
        };
        let part_index = d.parts.saturating_sub(1);
        if direct && d.eintr_at == Some(part_index) && opcode == opcode::TRANSFER_FW {
            d.eintr_at = None;
            d.bg = Some(Bg {
                opcode,
                polls_left: d.bg_polls,
                work,
            });
            return Err(Error::Os {
                op: format!("Transfer FW (0201h) on {}", self.path.display()),
                err: io::Error::from_raw_os_error(libc::EINTR),
            });
        }
        if direct && !d.never {
            // The driver waits for the background operation and returns its final code.
            let rc = d.complete(work);
            d.last_bg = (opcode, rc);
            return Ok((rc, vec![]));
        }
        if direct {
            d.bg = Some(Bg {
                opcode,
                polls_left: 0,
                work,
            });
            return Err(Error::Os {
                op: format!("{} on {}", command_name(opcode), self.path.display()),
                err: io::Error::from_raw_os_error(libc::ETIMEDOUT),
            });
        }
        d.bg = Some(Bg {
            opcode,
            polls_left: d.bg_polls,
            work,
        });
        Ok((ReturnCode::BackgroundStarted, vec![]))
    }

    /// Unwraps tunnel levels down to the device.
    fn route(&self, level: usize, opcode: u16, input: &[u8]) -> Result<(ReturnCode, Vec<u8>)> {
        let path = match self.place {
            Place::Direct => vec![],
            Place::Behind(t) => t.path(),
        };
        if level == path.len() {
            return self.answer(opcode, input);
        }
        if opcode != opcode::TUNNEL {
            return Ok((ReturnCode::Unsupported, vec![]));
        }
        let Ok(req) = TunnelRequest::decode(input) else {
            return Ok((ReturnCode::InvalidInput, vec![]));
        };
        if req.target != path[level] {
            return Ok((ReturnCode::InvalidInput, vec![]));
        }
        let (rc, out) = self.route(level + 1, req.header.opcode, req.payload)?;
        let mut msg = vec![0u8; TUNNEL_OVERHEAD + out.len()];
        let n = tunnel::encode_response(&mut msg, req.header.tag, req.header.opcode, rc, 0, &out)
            .unwrap();
        msg.truncate(n);
        Ok((ReturnCode::Success, msg))
    }
}

impl Mailbox for Sim {
    fn send(&self, opcode: u16, input: &[u8], out_size: usize) -> Result<RawResponse> {
        assert!(input.len() <= self.payload, "input above the payload");
        let (rc, mut out) = self.route(0, opcode, input)?;
        out.truncate(out_size);
        Ok(RawResponse { rc, out })
    }

    fn payload_size(&self) -> Result<usize> {
        Ok(self.payload)
    }

    fn path(&self) -> &Path {
        &self.path
    }

    fn set_bg_timeout(&self, timeout_ms: u32) -> Result<()> {
        self.bg_timeouts.lock().unwrap().push(timeout_ms);
        Ok(())
    }
}

/// An image of `len` bytes with revision `rev`.
fn image(rev: &str, len: usize) -> Vec<u8> {
    let mut img = fwp::revision_field(rev).to_vec();
    img.extend((0..len - fwp::REVISION_LEN).map(|i| (i * 7 + 3) as u8));
    img
}

fn quick() -> FwOptions {
    FwOptions {
        bg_timeout: Duration::from_secs(5),
        busy_timeout: Duration::from_millis(50),
        ..FwOptions::default()
    }
}

fn transfer(
    sim: &Sim,
    img: &[u8],
    slot: u8,
    opts: &FwOptions,
) -> (std::result::Result<TransferReport, FwError>, Vec<Progress>) {
    let mut seen = Vec::new();
    let cancel = AtomicBool::new(false);
    let r = sim
        .cci()
        .fw_transfer(img, slot, opts, &mut |p| seen.push(*p), &cancel);
    (r, seen)
}

use TransferAction::{Abort as A, Continue as C, End as E, Full as F, Initiate as I};

#[test]
fn plans_parts() {
    assert_eq!(plan(0, 896), vec![]);
    assert_eq!(plan(10, 0), vec![]);
    assert_eq!(
        plan(896, 896),
        vec![Part {
            action: F,
            offset: 0,
            len: 896
        }]
    );
    let p = plan(5000, 896);
    assert_eq!(p.len(), 6);
    assert_eq!(
        p.iter().map(|p| p.action).collect::<Vec<_>>(),
        [I, C, C, C, C, E]
    );
    assert_eq!(
        p.iter().map(|p| (p.offset, p.len)).collect::<Vec<_>>(),
        [
            (0, 896),
            (896, 896),
            (1792, 896),
            (2688, 896),
            (3584, 896),
            (4480, 520)
        ]
    );
    assert_eq!(plan(1792, 896).last().unwrap().len, 896);
    // Part sizes: the payload less the 128-byte header, in 128-byte units; a cap rounds down.
    assert_eq!(part_size(2048, None), 1920);
    assert_eq!(part_size(2048 - TUNNEL_OVERHEAD, None), 1792);
    assert_eq!(part_size(2048 - 2 * TUNNEL_OVERHEAD, None), 1792);
    assert_eq!(part_size(2048, Some(1000)), 896);
    assert_eq!(part_size(2048, Some(100)), 0);
    assert_eq!(part_size(255, None), 0);
}

#[test]
fn direct_transfer_in_parts_stores_exactly_the_image() {
    let sim = Sim::new(Place::Direct, 1024);
    let img = image("rev 2.0", 5000);
    let (r, progress) = transfer(&sim, &img, 2, &quick());
    let rep = r.unwrap();
    assert_eq!(sim.image(2).as_deref(), Some(&img[..]));
    assert_eq!(
        sim.parts(),
        [
            (I, 0, 0, 896),
            (C, 0, 7, 896),
            (C, 0, 14, 896),
            (C, 0, 21, 896),
            (C, 0, 28, 896),
            (E, 2, 35, 520)
        ]
    );
    assert_eq!((rep.parts, rep.part_size, rep.bytes), (6, 896, 5000));
    assert_eq!(rep.revision_before, "");
    assert_eq!(rep.revision, "rev 2.0");
    assert!(rep.changed());
    assert_eq!(rep.busy_retries, 0);
    // The driver waits: no polling; the file's background timeout was set (ms).
    assert_eq!(sim.count(opcode::BG_OP_STATUS), 0);
    assert_eq!(*sim.bg_timeouts.lock().unwrap(), [5000]);
    // Progress: prepare, a part at a time, verify before the last, confirm with all sent.
    let phases: Vec<Phase> = progress.iter().map(|p| p.phase).collect();
    assert_eq!(phases[0], Phase::Prepare);
    assert_eq!(phases[phases.len() - 2], Phase::Verify);
    assert_eq!(*phases.last().unwrap(), Phase::Confirm);
    assert!(progress.windows(2).all(|w| w[0].sent <= w[1].sent));
    let last = progress.last().unwrap();
    assert_eq!(
        (last.sent, last.total, last.part, last.parts),
        (5000, 5000, 6, 6)
    );
    // Get FW Info before and after, and nothing else but the parts.
    assert_eq!(sim.count(opcode::GET_FW_INFO), 2);
    assert_eq!(sim.seen().len(), 8);
}

#[test]
fn an_image_that_fits_goes_in_one_full() {
    let sim = Sim::new(Place::Direct, 2048);
    let img = image("tiny", 1920);
    let rep = transfer(&sim, &img, 3, &quick()).0.unwrap();
    assert_eq!(sim.parts(), [(F, 3, 0, 1920)]);
    assert_eq!(rep.parts, 1);
    assert_eq!(sim.image(3).as_deref(), Some(&img[..]));
}

#[test]
fn tunnelled_parts_are_smaller_and_polled_through_the_tunnel() {
    for (target, part) in [
        (Target::Port(1), 768usize),      // 1024 - 16 - 128 = 880 -> 6 units
        (Target::PortLd(1, 0), 768usize), // 1024 - 32 - 128 = 864 -> 6 units
    ] {
        let sim = Sim::new(Place::Behind(target), 1024);
        let img = image("behind", 2000);
        let rep = transfer(&sim, &img, 2, &quick()).0.unwrap();
        assert_eq!(rep.part_size, part, "{target}");
        assert_eq!(
            sim.parts(),
            [(I, 0, 0, 768), (C, 0, 6, 768), (E, 2, 12, 464)],
            "{target}"
        );
        assert_eq!(sim.image(2).as_deref(), Some(&img[..]), "{target}");
        // Each part ran in the background: two polls still running, one complete.
        assert_eq!(sim.count(opcode::BG_OP_STATUS), 9, "{target}");
        assert_eq!(rep.revision, "behind");
    }
}

#[test]
fn busy_is_retried_within_the_bound() {
    let sim = Sim::new(Place::Direct, 1024).with(|d| d.busy = 3);
    let img = image("busy", 3000);
    let rep = transfer(&sim, &img, 2, &quick()).0.unwrap();
    assert_eq!(rep.busy_retries, 3);
    assert_eq!(sim.image(2).as_deref(), Some(&img[..]));
    // The first part was sent four times.
    assert_eq!(sim.parts().iter().filter(|p| p.0 == I).count(), 4);
}

#[test]
fn busy_forever_fails_and_the_abort_is_not_confirmed() {
    let sim = Sim::new(Place::Direct, 1024).with(|d| d.busy = u32::MAX);
    let img = image("busy", 3000);
    let e = transfer(&sim, &img, 2, &quick()).0.unwrap_err();
    assert_eq!(e.rc(), Some(ReturnCode::Busy));
    let text = e.to_string();
    assert!(text.contains("still busy after"), "{text}");
    assert!(text.contains("stayed busy"), "{text}");
    // A refused first part opened nothing: no abort.
    assert!(matches!(e.abort, AbortOutcome::NotNeeded), "{text}");
    assert!(!sim.parts().iter().any(|p| p.0 == A));

    // Busy from the second part on: the abort is Busy too, and reported as failed.
    let sim = Sim::new(Place::Direct, 1024);
    let cancel = AtomicBool::new(false);
    let mut arm = |p: &Progress| {
        if p.part == 1 {
            sim.dev.lock().unwrap().busy = u32::MAX;
        }
    };
    let e = sim
        .cci()
        .fw_transfer(&img, 2, &quick(), &mut arm, &cancel)
        .unwrap_err();
    assert_eq!(e.rc(), Some(ReturnCode::Busy));
    assert!(matches!(&e.abort, AbortOutcome::Failed(a) if a.rc() == Some(ReturnCode::Busy)));
    assert!(!e.abort.is_clean());
    assert!(
        e.to_string().contains("may still hold the transfer open"),
        "{e}"
    );
    assert_eq!(e.sent, 896);
}

#[test]
fn out_of_order_aborts_and_leaves_the_slot() {
    let sim = Sim::new(Place::Direct, 1024).with(|d| d.out_of_order_at = Some(2));
    let img = image("ooo", 5000);
    let e = transfer(&sim, &img, 2, &quick()).0.unwrap_err();
    assert_eq!(e.rc(), Some(ReturnCode::FwTransferOutOfOrder));
    assert!(matches!(e.abort, AbortOutcome::Confirmed { info: Some(_) }));
    assert!(!sim.is_open());
    assert_eq!(sim.image(2), None);
    assert_eq!(e.sent, 1792);
    let text = e.to_string();
    assert_eq!(
        text,
        "Transfer FW (0201h) on /dev/cxl/switch0: device returned FW transfer out of order \
         (09h) (part 3 of 6, continue, bytes 1792..2688): the device did not expect a part at \
         this offset: it dropped the transfer (after an idle time, a reset or an abort by \
         another agent) or another agent sent parts; transfer aborted (Transfer FW Abort), the \
         device confirmed"
    );
    assert_eq!(sim.parts().last().unwrap().0, A);
}

#[test]
fn verification_failure_at_end_is_explained() {
    for place in [Place::Direct, Place::Behind(Target::Port(3))] {
        let sim = Sim::new(place, 1024).with(|d| d.auth_fail = true);
        let img = image("bad", 2000);
        let e = transfer(&sim, &img, 2, &quick()).0.unwrap_err();
        assert_eq!(e.rc(), Some(ReturnCode::FwVerificationFailed), "{place:?}");
        let text = e.to_string();
        assert!(
            text.contains("verification or authentication failed; the slot keeps"),
            "{text}"
        );
        assert!(text.contains("part 3 of 3, end"), "{text}");
        assert!(
            matches!(e.abort, AbortOutcome::Confirmed { .. }),
            "{place:?}"
        );
        assert_eq!(sim.image(2), None);
        if place != Place::Direct {
            assert!(text.contains("(in the background)"), "{text}");
            assert!(text.contains("via port 3"), "{text}");
        }
    }
}

#[test]
fn cancel_between_parts_aborts_and_the_device_confirms() {
    let sim = Sim::new(Place::Direct, 1024);
    let img = image("cancel", 5000);
    let cancel = AtomicBool::new(false);
    let mut phases = Vec::new();
    let mut obs = |p: &Progress| {
        phases.push(p.phase);
        if p.part == 2 {
            cancel.store(true, Ordering::SeqCst);
        }
    };
    let e = sim
        .cci()
        .fw_transfer(&img, 2, &quick(), &mut obs, &cancel)
        .unwrap_err();
    assert!(e.is_cancelled());
    assert_eq!((e.sent, e.total), (1792, 5000));
    assert!(matches!(e.abort, AbortOutcome::Confirmed { info: Some(_) }));
    assert_eq!(phases.last(), Some(&Phase::Abort));
    assert!(!sim.is_open());
    assert_eq!(sim.image(2), None);
    // Exactly: two parts, then the abort, then Get FW Info.
    let parts = sim.parts();
    assert_eq!(parts.len(), 3, "{parts:?}");
    assert_eq!(parts[2].0, A);
    assert_eq!(
        e.to_string(),
        "firmware transfer to slot 2 on /dev/cxl/switch0: interrupted after 1792 of 5000 \
         bytes; transfer aborted (Transfer FW Abort), the device confirmed"
    );
    // The device works afterwards: the same transfer completes.
    let rep = transfer(&sim, &img, 2, &quick()).0.unwrap();
    assert_eq!(rep.revision, "cancel");
}

#[test]
fn cancel_while_a_tunnelled_part_runs_stops_it_first() {
    let flag = Arc::new(AtomicBool::new(false));
    let f2 = Arc::clone(&flag);
    let sim = Sim::new(Place::Behind(Target::Port(1)), 1024).with(|d| {
        d.cancel_at = Some((1, f2));
    });
    let img = image("cancel", 5000);
    let e = sim
        .cci()
        .fw_transfer(&img, 2, &quick(), &mut |_| {}, &flag)
        .unwrap_err();
    assert!(e.is_cancelled());
    assert!(matches!(e.abort, AbortOutcome::Confirmed { .. }), "{e}");
    // The running part was stopped with 0005h before the Transfer FW Abort.
    let ops: Vec<u16> = sim.seen().iter().map(|s| s.opcode).collect();
    let abort_bg = ops
        .iter()
        .position(|&o| o == opcode::REQUEST_ABORT_BG)
        .unwrap();
    let last_transfer = ops.iter().rposition(|&o| o == opcode::TRANSFER_FW).unwrap();
    assert!(abort_bg < last_transfer, "{ops:x?}");
    assert_eq!(sim.parts().last().unwrap().0, A);
    assert!(!sim.is_open());
    assert_eq!(e.sent, 768);
}

#[test]
fn cancel_before_the_first_part_sends_nothing() {
    let sim = Sim::new(Place::Direct, 1024);
    let cancel = AtomicBool::new(true);
    let e = sim
        .cci()
        .fw_transfer(&image("x", 3000), 2, &quick(), &mut |_| {}, &cancel)
        .unwrap_err();
    assert!(e.is_cancelled());
    assert!(matches!(e.abort, AbortOutcome::NotNeeded));
    assert!(sim.seen().is_empty());
}

#[test]
fn a_driver_wait_ended_by_a_signal_is_polled_to_its_end() {
    let sim = Sim::new(Place::Direct, 1024).with(|d| d.eintr_at = Some(1));
    let img = image("eintr", 3000);
    let rep = transfer(&sim, &img, 2, &quick()).0.unwrap();
    assert_eq!(sim.image(2).as_deref(), Some(&img[..]));
    assert_eq!(rep.parts, 4);
    assert_eq!(sim.count(opcode::BG_OP_STATUS), 3);
}

#[test]
fn a_part_that_never_ends_times_out_and_is_stopped() {
    // Tunnelled: the library's own deadline.
    let sim = Sim::new(Place::Behind(Target::Port(1)), 1024).with(|d| d.never = true);
    let opts = FwOptions {
        bg_timeout: Duration::from_millis(30),
        ..quick()
    };
    let e = transfer(&sim, &image("slow", 3000), 2, &opts)
        .0
        .unwrap_err();
    assert_eq!(e.error().and_then(Error::errno), Some(libc::ETIMEDOUT));
    let text = e.to_string();
    assert!(
        text.contains("still running in the background at 50 % after 30 ms"),
        "{text}"
    );
    assert!(sim.count(opcode::REQUEST_ABORT_BG) >= 1);
    assert!(matches!(e.abort, AbortOutcome::Confirmed { .. }), "{text}");
    // Direct: the driver's ETIMEDOUT; the library makes sure the part ended before aborting.
    let sim = Sim::new(Place::Direct, 1024).with(|d| d.never = true);
    let e = transfer(&sim, &image("slow", 3000), 2, &opts)
        .0
        .unwrap_err();
    assert_eq!(e.error().and_then(Error::errno), Some(libc::ETIMEDOUT));
    assert_eq!(sim.count(opcode::REQUEST_ABORT_BG), 1);
    assert!(matches!(e.abort, AbortOutcome::Confirmed { .. }), "{e}");
}

#[test]
fn slots_are_checked_before_anything_is_sent() {
    let sim = Sim::new(Place::Direct, 1024);
    for (slot, words) in [
        (1u8, "slot 1 is the active slot"),
        (
            0,
            "slot 0 is not a slot of this device (it has slots 1 to 3)",
        ),
        (4, "slot 4 is not a slot of this device"),
    ] {
        let e = transfer(&sim, &image("x", 3000), slot, &quick())
            .0
            .unwrap_err();
        assert!(matches!(e.failure, FwFailure::Invalid(_)), "{e}");
        assert!(e.to_string().contains(words), "{e}");
        assert!(e.to_string().ends_with("nothing was sent"), "{e}");
    }
    assert!(sim.parts().is_empty());
    let e = transfer(&sim, &[], 2, &quick()).0.unwrap_err();
    assert!(e.to_string().contains("the image is empty"), "{e}");
    // A payload too small for one part.
    let sim = Sim::new(Place::Behind(Target::Port(0)), 256);
    let e = transfer(&sim, &image("x", 300), 2, &quick()).0.unwrap_err();
    assert!(e.to_string().contains("leaves no room"), "{e}");
}

#[test]
fn the_device_refusing_the_slot_is_explained() {
    // The device refuses the slot only at End (read-only, say): the transfer is aborted.
    let sim = Sim::new(Place::Direct, 1024).with(|d| d.slots = 4);
    sim.dev.lock().unwrap().images.push(None);
    let e = {
        let cancel = AtomicBool::new(false);
        let mut make_active = |p: &Progress| {
            if p.phase == Phase::Verify {
                sim.dev.lock().unwrap().active = 4;
            }
        };
        sim.cci()
            .fw_transfer(&image("ro", 2000), 4, &quick(), &mut make_active, &cancel)
            .unwrap_err()
    };
    assert_eq!(e.rc(), Some(ReturnCode::InvalidSlot));
    assert!(
        e.to_string().contains("the active one, or read-only"),
        "{e}"
    );
    assert!(matches!(e.abort, AbortOutcome::Confirmed { .. }));
}

#[test]
fn another_transfer_in_progress_is_left_alone() {
    let sim = Sim::new(Place::Direct, 1024).with(|d| d.open = Some(vec![0; 128]));
    let e = transfer(&sim, &image("x", 3000), 2, &quick())
        .0
        .unwrap_err();
    assert_eq!(e.rc(), Some(ReturnCode::FwTransferInProgress));
    assert!(matches!(e.abort, AbortOutcome::NotNeeded));
    assert!(sim.is_open(), "someone else's transfer stays open");
    assert!(e.to_string().contains("swcci fw abort drops it"), "{e}");
    // `fw_abort` drops it and confirms.
    let rep = sim.cci().fw_abort(&quick()).unwrap();
    assert!(!sim.is_open());
    assert_eq!(rep.info.active_slot, 1);
}

#[test]
fn the_revision_is_confirmed() {
    let sim = Sim::new(Place::Direct, 1024);
    let img = image("v3", 1000);
    let opts = FwOptions {
        expect_revision: Some("v3".into()),
        ..quick()
    };
    assert_eq!(transfer(&sim, &img, 2, &opts).0.unwrap().revision, "v3");
    // The same image again: confirmed, unchanged.
    let rep = transfer(&sim, &img, 2, &quick()).0.unwrap();
    assert!(!rep.changed());
    let opts = FwOptions {
        expect_revision: Some("v4".into()),
        ..quick()
    };
    let e = transfer(&sim, &img, 2, &opts).0.unwrap_err();
    assert!(matches!(e.failure, FwFailure::Unconfirmed(_)));
    assert!(
        e.to_string()
            .ends_with("not confirmed: slot 2 reports revision \"v3\", expected \"v4\""),
        "{e}"
    );
    // An image with an empty revision field: stored, but the slot shows no revision.
    let mut blank = image("", 1000);
    blank[..16].fill(0);
    let e = transfer(&sim, &blank, 3, &quick()).0.unwrap_err();
    assert!(e.to_string().contains("slot 3 reports no revision"), "{e}");
}

#[test]
fn activation_online_and_on_reset() {
    for place in [Place::Direct, Place::Behind(Target::Port(2))] {
        let sim = Sim::new(place, 1024);
        transfer(&sim, &image("new", 1000), 2, &quick()).0.unwrap();
        let r = sim
            .cci()
            .fw_activate(2, ActivateAction::OnReset, &quick())
            .unwrap();
        assert_eq!((r.info.active_slot, r.info.staged_slot), (1, 2));
        let r = sim
            .cci()
            .fw_activate(2, ActivateAction::Online, &quick())
            .unwrap();
        assert_eq!(r.info.active_slot, 2, "{place:?}");
        // Online activation of the active slot is refused before sending.
        let e = sim
            .cci()
            .fw_activate(2, ActivateAction::Online, &quick())
            .unwrap_err();
        assert!(matches!(e.failure, FwFailure::Invalid(_)), "{e}");
        // An empty slot: the device refuses, with the activation's meaning.
        let e = sim
            .cci()
            .fw_activate(3, ActivateAction::Online, &quick())
            .unwrap_err();
        assert_eq!(e.rc(), Some(ReturnCode::InvalidSlot));
        assert!(
            e.to_string().contains("refuses to activate this slot"),
            "{e}"
        );
    }
}

#[test]
fn activation_failures_are_explained() {
    for (rc, words) in [
        (
            ReturnCode::ActivationFailedRolledBack,
            "rolled back to the firmware it was running",
        ),
        (ReturnCode::ColdResetRequired, "needs a cold reset"),
    ] {
        for place in [Place::Direct, Place::Behind(Target::Port(2))] {
            let sim = Sim::new(place, 1024);
            transfer(&sim, &image("new", 1000), 2, &quick()).0.unwrap();
            sim.dev.lock().unwrap().activate_fail = Some(rc);
            let e = sim
                .cci()
                .fw_activate(2, ActivateAction::Online, &quick())
                .unwrap_err();
            assert_eq!(e.rc(), Some(rc));
            assert!(e.to_string().contains(words), "{e}");
            assert_eq!(sim.dev.lock().unwrap().active, 1);
        }
    }
}

#[test]
fn a_target_without_firmware_commands() {
    let sim = Sim::new(Place::Behind(Target::Port(0)), 2048).with(|d| d.no_fw = true);
    let e = sim.cci().fw_info().unwrap_err();
    assert_eq!(e.rc(), Some(ReturnCode::Unsupported));
    let e = transfer(&sim, &image("x", 1000), 2, &quick())
        .0
        .unwrap_err();
    assert!(e.to_string().starts_with(
        "Get FW Info (0200h) via port 0 on /dev/cxl/switch0: device returned unsupported (03h) \
         (reading the slots before the transfer): the target does not implement this command"
    ), "{e}");
    assert!(e.to_string().contains("through tunnels"), "{e}");
    assert_eq!(e.target, Target::Port(0));
    // The switch itself: no tunnel is involved, the device lacks the command set.
    let sim = Sim::new(Place::Direct, 2048).with(|d| d.no_fw = true);
    let e = sim.cci().fw_abort(&quick()).unwrap_err();
    assert_eq!(e.rc(), Some(ReturnCode::Unsupported));
    assert_eq!(e.target, Target::Direct);
    assert_eq!(
        e.to_string(),
        "Get FW Info (0200h) on /dev/cxl/switch0: device returned unsupported (03h) (reading the \
         slots after the abort): the device does not implement the Firmware Update command set \
         (QEMU's switch CCI does not)"
    );
    assert!(!e.to_string().contains("tunnel"), "{e}");
    let e = transfer(&sim, &image("x", 1000), 2, &quick())
        .0
        .unwrap_err();
    assert!(
        e.to_string()
            .ends_with(": the device does not implement the Firmware Update command set (QEMU's switch CCI does not)"),
        "{e}"
    );
}

#[test]
fn revision_text_of_odd_fields() {
    let mut info = FwInfo {
        slots_supported: 2,
        active_slot: 1,
        staged_slot: 0,
        online_activation: false,
        revisions: [[0; 16]; 4],
    };
    info.revisions[0][..3].copy_from_slice(b"a\xffb");
    assert_eq!(revision_text(&info, 1), "a?b");
    assert_eq!(revision_text(&info, 2), "");
    assert_eq!(revision_text(&info, 0), "");
    assert_eq!(revision_text(&info, 9), "");
}

#[test]
fn a_tunnel_that_does_not_route_is_not_a_firmware_refusal() {
    let sim = Sim::new(Place::Behind(Target::Port(0)), 2048);
    let cci = Cci::new(&sim, Target::Port(5));
    let cancel = AtomicBool::new(false);
    let e = cci
        .fw_transfer(&image("x", 1000), 2, &quick(), &mut |_| {}, &cancel)
        .unwrap_err();
    assert_eq!(e.rc(), Some(ReturnCode::InvalidInput));
    let text = e.to_string();
    assert!(
        text.starts_with("Tunnel Management Command (5300h) to port 5 on /dev/cxl/switch0"),
        "{text}"
    );
    assert!(text.contains("could not route the command"), "{text}");
    assert!(!text.contains("request's fields"), "{text}");
}
