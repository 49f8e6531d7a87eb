// SPDX-License-Identifier: GPL-2.0

//! The firmware of a device behind one of the switch's ports, reached through Tunnel
//! Management Commands (5300h): Get FW Info (0200h), Transfer FW (0201h), Activate FW (0202h),
//! and the device's own background operation, Background Operation Status (0002h) and Request
//! Abort Background Operation (0005h), CXL r3.1 §8.2.9.1 and §8.2.9.3. The slots, the rules and
//! the timing are those of the switch's own firmware: one [`Firmware`] model per device
//! (`firmware.rs`); this file adds what the switch's register model does for its own
//! firmware, for a device that is only reached through tunnels. Pure logic: no I/O, no clock
//! (every entry point takes `now`).
//!
//! Rules (on top of those of `firmware.rs`):
//! - A command that runs in the background (a Transfer FW part, an online Activate FW) makes
//!   the tunnelled response say Background Command Started (01h); the switch's own Tunnel
//!   Management Command completes at once. The device's Background Operation Status (0002h),
//!   tunnelled, then reports it running with its percentage (elapsed time over its duration,
//!   at most 99), and once it ended: not running, 100 %, the opcode and its final return code.
//!   Before any background operation: not running, opcode 0, 0 %, return code 0. A device runs
//!   one background operation at a time: another Transfer FW or Activate FW meanwhile gets
//!   Busy (06h).
//! - Request Abort Background Operation (0005h), tunnelled: stops the running part or
//!   activation (it ends with Aborted, 12h; a part is not stored), as on the switch; success
//!   also when nothing runs. Devices always support it (the switch's `abort-supported`
//!   setting is the switch's own).
//! - Transfer FW with the Abort action stops a running part (Aborted, 12h) and drops the open
//!   transfer, from whichever of the device's CCIs it comes.
//! - The multi-logical device (MLD) has one firmware: firmware is a property of the device,
//!   not of an LD (CXL r3.1 §8.2.9.3 describes slots and activation per device; its LDs run the
//!   device's firmware). The MLD's FM-owned LD (one tunnel, to the port) and each of its LDs
//!   (a tunnel to the LD inside the tunnel to the port) answer the Firmware Update commands on
//!   that one firmware, and report the device's one background operation. An open transfer
//!   belongs to the CCI that opened it: a part (Initiate, Continue, End, Full) through another
//!   of the device's CCIs gets FW Transfer in Progress (08h), so two agents cannot interleave
//!   their parts; the Abort action works from any of them. Which of an MLD's CCIs take the
//!   Firmware Update commands was not settled from the specification's text (it was not at
//!   hand): answering them on the LDs, and the ownership rule, are the emulator's choices; a
//!   real MLD may keep the commands to its FM-owned LD and answer Unsupported (03h) on its
//!   LDs.
//! - A device's cold reset (`reset-port P` on the control channel; the switch's own function
//!   reset does not reset the devices behind it) makes its staged slot active, drops an open
//!   transfer and a running operation, and clears its Background Operation Status.
//! - Faults (`fw-busy port P` and the other firmware faults with `port P`, control channel)
//!   are armed per device and taken as on the switch.

use crate::common::{take_flag, Mode};
use crate::firmware::{Firmware, FwFault, FwOutcome};
use std::fmt;
use std::time::Duration;
use swcci_proto::opcode;
use swcci_proto::payload::bg::BgOpStatus;
use swcci_proto::payload::firmware::TransferAction;
use swcci_proto::rc::ReturnCode;

/// Which of a device's CCIs a tunnelled command reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// The device's own CCI: a type-3 single-logical device's, or the MLD's FM-owned LD (one
    /// tunnel, to the port).
    Device,
    /// LD k of the MLD (a tunnel to the LD inside the tunnel to the port).
    Ld(u8),
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Device => f.write_str("the device's CCI"),
            Self::Ld(k) => write!(f, "LD {k}"),
        }
    }
}

/// The running background operation.
#[derive(Clone, Copy, Debug)]
struct Bg {
    opcode: u16,
    start: Duration,
    duration: Duration,
}

/// The firmware of one device behind a port, with its background operation and faults.
#[derive(Clone, Debug)]
pub struct DeviceFw {
    /// The slots, the open transfer, settings and counters.
    pub fw: Firmware,
    running: Option<Bg>,
    /// Opcode and final return code of the last background operation that ended.
    last: (u16, ReturnCode),
    /// The CCI that opened the transfer (or runs the part) now open.
    owner: Option<Via>,
    /// Armed faults, in the order of [`FwFault::ALL`].
    faults: [Option<Mode>; 5],
    events: Vec<String>,
}

/// What [`DeviceFw::state`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceFwState {
    /// A background operation runs.
    pub running: bool,
    /// Opcode of the running or last background operation (0: none yet).
    pub opcode: u16,
    /// Final return code of the last one (0 while one runs or before any).
    pub rc: u16,
}

impl DeviceFw {
    /// `slots` firmware slots (2..=4), slot 1 active with the built-in image of `revision`.
    pub fn new(slots: u8, revision: &str) -> Self {
        Self {
            fw: Firmware::with_revision(slots, revision),
            running: None,
            last: (0, ReturnCode::Success),
            owner: None,
            faults: [None; 5],
            events: Vec::new(),
        }
    }

    /// Takes the notable events since the last call (the firmware model's too).
    pub fn take_events(&mut self) -> Vec<String> {
        let mut e = std::mem::take(&mut self.events);
        e.extend(self.fw.take_events());
        e
    }

    /// Where the background operation stands.
    pub fn state(&self) -> DeviceFwState {
        match self.running {
            Some(bg) => DeviceFwState {
                running: true,
                opcode: bg.opcode,
                rc: 0,
            },
            None => DeviceFwState {
                running: false,
                opcode: self.last.0,
                rc: self.last.1.raw(),
            },
        }
    }

    /// Arms firmware fault `f` in `mode` on this device.
    pub fn arm(&mut self, f: FwFault, mode: Mode) {
        let i = FwFault::ALL.iter().position(|x| *x == f).unwrap_or(0);
        if let Some(slot) = self.faults.get_mut(i) {
            *slot = Some(mode);
        }
    }

    /// Disarms every fault of this device.
    pub fn clear_faults(&mut self) {
        self.faults = [None; 5];
    }

    /// The armed faults as `(name, mode)`, in the order of [`FwFault::ALL`].
    pub fn faults(&self) -> Vec<(&'static str, Mode)> {
        FwFault::ALL
            .iter()
            .zip(self.faults)
            .filter_map(|(f, m)| Some((f.name(), m?)))
            .collect()
    }

    /// Advances time: ends a background operation whose time has come, drops an idle transfer.
    pub fn tick(&mut self, now: Duration) {
        if let Some(bg) = self.running {
            if now >= bg.start.saturating_add(bg.duration) {
                self.running = None;
                let rc = self.fw.finish(now);
                self.last = (bg.opcode, rc);
                self.events.push(format!(
                    "background {:04x}h completed: rc {:04x}h",
                    bg.opcode,
                    rc.raw()
                ));
            }
        }
        self.fw.tick(now);
    }

    /// A cold reset of the device: the staged slot becomes active, an open transfer and a
    /// running operation are dropped, Background Operation Status starts over.
    pub fn reset(&mut self) {
        self.running = None;
        self.last = (0, ReturnCode::Success);
        self.owner = None;
        self.fw.reset();
        self.events.push("cold reset".into());
    }

    /// The CCI that owns the open transfer or running part, if any.
    fn owner(&mut self) -> Option<Via> {
        if self.fw.transfer().is_none() && !self.fw.running_part() {
            self.owner = None;
        }
        self.owner
    }

    /// Runs `op` with `input` reached through `via`: the return code and output of the
    /// device's response, or `None` for an opcode that is not one of the firmware and
    /// background commands (the caller answers those).
    pub fn exec(
        &mut self,
        now: Duration,
        via: Via,
        op: u16,
        input: &[u8],
    ) -> Option<(ReturnCode, Vec<u8>)> {
        self.tick(now);
        let no_input = |ok: bool| (!ok).then_some((ReturnCode::InvalidPayloadLength, Vec::new()));
        Some(match op {
            opcode::BG_OP_STATUS => {
                if let Some(r) = no_input(input.is_empty()) {
                    return Some(r);
                }
                self.bg_status(now)
            }
            opcode::REQUEST_ABORT_BG => {
                if let Some(r) = no_input(input.is_empty()) {
                    return Some(r);
                }
                self.request_abort(via)
            }
            opcode::GET_FW_INFO => {
                if let Some(r) = no_input(input.is_empty()) {
                    return Some(r);
                }
                self.outcome(now, op, self.fw.info())
            }
            opcode::TRANSFER_FW => self.transfer(now, via, input),
            opcode::ACTIVATE_FW => {
                let bg_busy = self.running.is_some();
                let faults = &mut self.faults;
                let mut take = |f: FwFault| take_fault(faults, f);
                let o = self.fw.activate_cmd(input, bg_busy, &mut take);
                self.outcome(now, op, o)
            }
            _ => return None,
        })
    }

    fn transfer(&mut self, now: Duration, via: Via, input: &[u8]) -> (ReturnCode, Vec<u8>) {
        let abort = input.first() == Some(&TransferAction::Abort.raw());
        if !abort {
            if let Some(owner) = self.owner().filter(|o| *o != via) {
                self.events.push(format!(
                    "Transfer FW through {via} refused: the transfer open belongs to {owner} \
                     (rc 0008h)"
                ));
                return (ReturnCode::FwTransferInProgress, Vec::new());
            }
        }
        let bg_busy = self.running.is_some();
        let faults = &mut self.faults;
        let mut take = |f: FwFault| take_fault(faults, f);
        let o = self.fw.transfer_cmd(now, input, bg_busy, &mut take);
        let r = self.outcome(now, opcode::TRANSFER_FW, o);
        if !abort
            && self.owner.is_none()
            && (self.fw.transfer().is_some() || self.fw.running_part())
        {
            self.owner = Some(via);
        }
        r
    }

    /// What a firmware command's outcome makes of the response and the background operation.
    fn outcome(&mut self, now: Duration, op: u16, o: FwOutcome) -> (ReturnCode, Vec<u8>) {
        match o {
            FwOutcome::Done(rc, out) => (rc, out),
            FwOutcome::Background(d) => {
                self.running = Some(Bg {
                    opcode: op,
                    start: now,
                    duration: d,
                });
                self.events.push(format!(
                    "background {op:04x}h started for {} us",
                    d.as_micros()
                ));
                (ReturnCode::BackgroundStarted, Vec::new())
            }
            FwOutcome::StopBackground => {
                self.stop("Transfer FW Abort");
                (ReturnCode::Success, Vec::new())
            }
        }
    }

    /// The running background operation ends with Aborted (12h); the model has already
    /// dropped it.
    fn stop(&mut self, by: &str) {
        if let Some(bg) = self.running.take() {
            self.last = (bg.opcode, ReturnCode::Aborted);
            self.events.push(format!(
                "background {:04x}h aborted by {by}: rc {:04x}h",
                bg.opcode,
                ReturnCode::Aborted.raw()
            ));
        }
    }

    fn request_abort(&mut self, via: Via) -> (ReturnCode, Vec<u8>) {
        if self.running.is_some() {
            self.fw.abort_running();
            self.stop(&format!("Request Abort Background Operation through {via}"));
        }
        (ReturnCode::Success, Vec::new())
    }

    fn bg_status(&mut self, now: Duration) -> (ReturnCode, Vec<u8>) {
        let st = match self.running {
            Some(bg) => {
                let elapsed = now.saturating_sub(bg.start).as_micros();
                let total = bg.duration.as_micros().max(1);
                let pct = u8::try_from(elapsed.saturating_mul(100) / total).unwrap_or(99);
                BgOpStatus {
                    running: true,
                    percent: pct.min(99),
                    opcode: bg.opcode,
                    rc: ReturnCode::Success,
                    vendor_status: 0,
                }
            }
            None => BgOpStatus {
                running: false,
                percent: if self.last.0 == 0 { 0 } else { 100 },
                opcode: self.last.0,
                rc: self.last.1,
                vendor_status: 0,
            },
        };
        let mut out = vec![0u8; 8];
        match st.encode(&mut out) {
            Ok(n) => {
                out.truncate(n);
                (ReturnCode::Success, out)
            }
            Err(_) => (ReturnCode::InternalError, Vec::new()),
        }
    }
}

/// Takes an armed fault of `faults` (indexed as [`FwFault::ALL`]) for one use.
fn take_fault(faults: &mut [Option<Mode>; 5], f: FwFault) -> bool {
    let i = FwFault::ALL.iter().position(|x| *x == f).unwrap_or(0);
    faults.get_mut(i).is_some_and(take_flag)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firmware::TYPE3_REVISION;
    use swcci_proto::payload::firmware::{
        revision_field, Activate, ActivateAction, FwInfo, Transfer, OFFSET_UNIT,
        TRANSFER_HEADER_LEN,
    };

    const MS: Duration = Duration::from_millis(1);

    fn part(action: TransferAction, slot: u8, offset: usize, data: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; TRANSFER_HEADER_LEN + data.len()];
        let n = Transfer {
            action,
            slot,
            offset: u32::try_from(offset / OFFSET_UNIT).unwrap(),
            data,
        }
        .encode(&mut b)
        .unwrap();
        b.truncate(n);
        b
    }

    fn image(rev: &str, len: usize) -> Vec<u8> {
        let mut img = revision_field(rev).to_vec();
        img.extend((16..len).map(|i| (i * 7) as u8));
        img
    }

    fn status(d: &mut DeviceFw, now: Duration, via: Via) -> BgOpStatus {
        let (rc, out) = d.exec(now, via, opcode::BG_OP_STATUS, &[]).unwrap();
        assert_eq!(rc, ReturnCode::Success);
        BgOpStatus::decode(&out).unwrap()
    }

    /// Sends `input` as Transfer FW and waits for its background part: the final return code.
    fn run(d: &mut DeviceFw, now: &mut Duration, via: Via, input: &[u8]) -> ReturnCode {
        let (rc, _) = d.exec(*now, via, opcode::TRANSFER_FW, input).unwrap();
        if rc != ReturnCode::BackgroundStarted {
            return rc;
        }
        loop {
            *now += MS;
            let s = status(d, *now, via);
            if !s.running {
                assert_eq!(s.opcode, opcode::TRANSFER_FW);
                assert_eq!(s.percent, 100);
                return s.rc;
            }
        }
    }

    #[test]
    fn parts_run_in_the_background_and_status_reports_them() {
        let mut d = DeviceFw::new(3, TYPE3_REVISION);
        let mut now = Duration::ZERO;
        let s = status(&mut d, now, Via::Device);
        assert_eq!((s.running, s.opcode, s.percent), (false, 0, 0));
        let (rc, out) = d.exec(now, Via::Device, opcode::GET_FW_INFO, &[]).unwrap();
        assert_eq!(rc, ReturnCode::Success);
        let info = FwInfo::decode(&out).unwrap();
        assert_eq!(info.revision(1), Some(TYPE3_REVISION));
        let img = image("dev 2.0", 3 * 1024 + 5);
        // Initiate: 01h, running with a percentage, then success.
        let first = part(TransferAction::Initiate, 0, 0, &img[..1024]);
        let (rc, _) = d
            .exec(now, Via::Device, opcode::TRANSFER_FW, &first)
            .unwrap();
        assert_eq!(rc, ReturnCode::BackgroundStarted);
        // 500 us + 100 us per KiB: 600 us.
        let s = status(&mut d, now + Duration::from_micros(300), Via::Device);
        assert_eq!(
            (s.running, s.percent, s.opcode),
            (true, 50, opcode::TRANSFER_FW)
        );
        // Another part meanwhile: Busy.
        let next = part(TransferAction::Continue, 0, 1024, &img[1024..2048]);
        assert_eq!(
            d.exec(now, Via::Device, opcode::TRANSFER_FW, &next)
                .unwrap()
                .0,
            ReturnCode::Busy
        );
        now += MS;
        let s = status(&mut d, now, Via::Device);
        assert_eq!(
            (s.running, s.percent, s.rc),
            (false, 100, ReturnCode::Success)
        );
        assert_eq!(
            run(&mut d, &mut now, Via::Device, &next),
            ReturnCode::Success
        );
        let end = part(TransferAction::End, 2, 2048, &img[2048..]);
        assert_eq!(
            run(&mut d, &mut now, Via::Device, &end),
            ReturnCode::Success
        );
        let v = d.fw.slot(2).unwrap();
        assert_eq!((v.len, v.rev.as_str()), (img.len(), "dev 2.0"));
        assert!(d.fw.transfer().is_none());
        // Online activation in the background.
        let a = Activate {
            action: ActivateAction::Online,
            slot: 2,
        }
        .encode();
        let (rc, _) = d.exec(now, Via::Device, opcode::ACTIVATE_FW, &a).unwrap();
        assert_eq!(rc, ReturnCode::BackgroundStarted);
        now += 20 * MS;
        let s = status(&mut d, now, Via::Device);
        assert_eq!(
            (s.running, s.opcode, s.rc),
            (false, opcode::ACTIVATE_FW, ReturnCode::Success)
        );
        assert_eq!(d.fw.active(), 2);
        // Inputs where none is taken; opcodes that are not firmware ones.
        for op in [
            opcode::BG_OP_STATUS,
            opcode::REQUEST_ABORT_BG,
            opcode::GET_FW_INFO,
        ] {
            assert_eq!(
                d.exec(now, Via::Device, op, &[0]).unwrap().0,
                ReturnCode::InvalidPayloadLength
            );
        }
        assert!(d.exec(now, Via::Device, opcode::IDENTIFY, &[]).is_none());
    }

    #[test]
    fn request_abort_and_the_abort_action_stop_a_part() {
        let mut d = DeviceFw::new(3, TYPE3_REVISION);
        let mut now = Duration::ZERO;
        let img = image("dev 3.0", 4096);
        let first = part(TransferAction::Initiate, 0, 0, &img[..1024]);
        assert_eq!(
            run(&mut d, &mut now, Via::Device, &first),
            ReturnCode::Success
        );
        // Request Abort: the part ends with Aborted and is not stored; the transfer stays open.
        let next = part(TransferAction::Continue, 0, 1024, &img[1024..2048]);
        let (rc, _) = d
            .exec(now, Via::Device, opcode::TRANSFER_FW, &next)
            .unwrap();
        assert_eq!(rc, ReturnCode::BackgroundStarted);
        let (rc, _) = d
            .exec(now, Via::Device, opcode::REQUEST_ABORT_BG, &[])
            .unwrap();
        assert_eq!(rc, ReturnCode::Success);
        let s = status(&mut d, now, Via::Device);
        assert_eq!((s.running, s.rc), (false, ReturnCode::Aborted));
        assert_eq!(d.fw.transfer(), Some((1024, 1)));
        // Resent, it is stored.
        assert_eq!(
            run(&mut d, &mut now, Via::Device, &next),
            ReturnCode::Success
        );
        // The Abort action stops a running part and drops the transfer.
        let more = part(TransferAction::Continue, 0, 2048, &img[2048..3072]);
        let (rc, _) = d
            .exec(now, Via::Device, opcode::TRANSFER_FW, &more)
            .unwrap();
        assert_eq!(rc, ReturnCode::BackgroundStarted);
        let abort = part(TransferAction::Abort, 0, 0, &[]);
        assert_eq!(
            d.exec(now, Via::Device, opcode::TRANSFER_FW, &abort)
                .unwrap()
                .0,
            ReturnCode::Success
        );
        let s = status(&mut d, now, Via::Device);
        assert_eq!((s.running, s.rc), (false, ReturnCode::Aborted));
        assert!(d.fw.transfer().is_none());
        assert_eq!(d.fw.stats.aborts, 2);
        // Nothing runs: Request Abort succeeds and changes nothing.
        assert_eq!(
            d.exec(now, Via::Device, opcode::REQUEST_ABORT_BG, &[])
                .unwrap()
                .0,
            ReturnCode::Success
        );
        assert!(!status(&mut d, now, Via::Device).running);
    }

    #[test]
    fn faults_are_taken_per_device() {
        let mut d = DeviceFw::new(3, TYPE3_REVISION);
        let mut now = Duration::ZERO;
        let img = image("dev 4.0", 512);
        let full = part(TransferAction::Full, 2, 0, &img);
        d.arm(FwFault::Busy, Mode::Once);
        assert_eq!(d.faults(), [("fw-busy", Mode::Once)]);
        assert_eq!(run(&mut d, &mut now, Via::Device, &full), ReturnCode::Busy);
        assert!(d.faults().is_empty());
        d.arm(FwFault::AuthFail, Mode::Always);
        assert_eq!(
            run(&mut d, &mut now, Via::Device, &full),
            ReturnCode::FwVerificationFailed
        );
        assert_eq!(d.faults(), [("fw-auth-fail", Mode::Always)]);
        d.clear_faults();
        assert_eq!(
            run(&mut d, &mut now, Via::Device, &full),
            ReturnCode::Success
        );
        assert_eq!(d.fw.slot(2).unwrap().rev, "dev 4.0");
    }

    #[test]
    fn an_open_transfer_belongs_to_the_cci_that_opened_it() {
        let mut d = DeviceFw::new(3, "swcci-mld 1.0");
        let mut now = Duration::ZERO;
        let img = image("mld 2.0", 2048 + 64);
        let first = part(TransferAction::Initiate, 0, 0, &img[..1024]);
        assert_eq!(
            run(&mut d, &mut now, Via::Ld(1), &first),
            ReturnCode::Success
        );
        let next = part(TransferAction::Continue, 0, 1024, &img[1024..2048]);
        for other in [Via::Device, Via::Ld(0)] {
            assert_eq!(
                run(&mut d, &mut now, other, &next),
                ReturnCode::FwTransferInProgress,
                "{other}"
            );
        }
        assert_eq!(
            run(&mut d, &mut now, Via::Ld(1), &next),
            ReturnCode::Success
        );
        // The background operation is the device's: every CCI reports it.
        assert_eq!(status(&mut d, now, Via::Device).opcode, opcode::TRANSFER_FW);
        // The Abort action works from another CCI; then anyone may open a transfer.
        let abort = part(TransferAction::Abort, 0, 0, &[]);
        assert_eq!(
            run(&mut d, &mut now, Via::Device, &abort),
            ReturnCode::Success
        );
        assert!(d.fw.transfer().is_none());
        assert_eq!(
            run(&mut d, &mut now, Via::Ld(0), &first),
            ReturnCode::Success
        );
        let end = part(TransferAction::End, 3, 1024, &img[1024..]);
        assert_eq!(run(&mut d, &mut now, Via::Ld(0), &end), ReturnCode::Success);
        assert_eq!(d.fw.slot(3).unwrap().len, img.len());
        // Closed: the next transfer may come through any CCI.
        let full = part(TransferAction::Full, 2, 0, &img[..512]);
        assert_eq!(
            run(&mut d, &mut now, Via::Device, &full),
            ReturnCode::Success
        );
    }

    #[test]
    fn cold_reset_activates_the_staged_slot() {
        let mut d = DeviceFw::new(2, TYPE3_REVISION);
        let mut now = Duration::ZERO;
        let img = image("dev 5.0", 256);
        let full = part(TransferAction::Full, 2, 0, &img);
        assert_eq!(
            run(&mut d, &mut now, Via::Device, &full),
            ReturnCode::Success
        );
        let a = Activate {
            action: ActivateAction::OnReset,
            slot: 2,
        }
        .encode();
        assert_eq!(
            d.exec(now, Via::Device, opcode::ACTIVATE_FW, &a).unwrap().0,
            ReturnCode::Success
        );
        assert_eq!((d.fw.active(), d.fw.staged()), (1, 2));
        d.reset();
        assert_eq!((d.fw.active(), d.fw.staged()), (2, 0));
        let s = status(&mut d, now, Via::Device);
        assert_eq!((s.running, s.opcode), (false, 0));
        assert!(d.take_events().iter().any(|e| e == "cold reset"));
    }
}
