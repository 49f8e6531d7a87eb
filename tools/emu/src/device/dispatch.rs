// SPDX-License-Identifier: GPL-2.0

//! Command dispatch: a doorbell's command or a message's (MCTP) to its handler by opcode, the
//! completion (registers, doorbell, interrupts), the handlers of the commands the register
//! model answers itself, the Command Effects Log, and background operations.

use super::faults::{take, CmdFaults, Pending};
use super::{
    Device, Personality, OP_ACTIVATE_FW, OP_ECHO, OP_GET_FW_INFO, OP_QUIET_SLEEP, OP_SLEEP,
    OP_TRANSFER_FW, SWITCH_OPCODES,
};
use crate::common::take_flag;
use crate::fabric::FabricOutcome;
use crate::firmware::{Firmware, FwFault, FwOutcome};
use std::time::Duration;
use swcci_proto::mmpt::{MmptCode, RECEIVE_MESSAGE, SEND_MESSAGE, VENDOR_PCI_SIG};
use swcci_proto::opcode;
use swcci_proto::payload::bg::BgOpStatus;
use swcci_proto::payload::identify::{ComponentType, Identify, IDENTIFY_LEN};
use swcci_proto::payload::logs::{
    effect, encode_supported_logs, CelEntry, SupportedLog, CEL_ENTRY, CEL_UUID, GET_LOG_INPUT_LEN,
    SUPPORTED_LOGS_HEADER, SUPPORTED_LOG_ENTRY,
};
use swcci_proto::rc::ReturnCode;
use swcci_proto::regs::{MboxBgStatus, MboxStatus};

/// What a background operation is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum BgKind {
    /// The vendor sleep command: ends with the `bg-rc` setting.
    Sleep,
    /// A firmware command: the firmware model says how it ends.
    Firmware,
    /// Bind or Unbind vPPB: the fabric model says how it ends.
    Fabric,
}

/// The running background operation.
#[derive(Clone, Copy, Debug)]
pub(super) struct BgOp {
    pub(super) kind: BgKind,
    opcode: u16,
    start: Duration,
    duration: Duration,
    pub(super) cap: Option<u8>,
    no_irq: bool,
}

impl BgOp {
    pub(super) fn percent(&self, now: Duration) -> u8 {
        let pct = if self.duration.is_zero() {
            100
        } else {
            let elapsed = now.saturating_sub(self.start).as_micros();
            let total = self.duration.as_micros().max(1);
            u8::try_from(elapsed.saturating_mul(100) / total)
                .unwrap_or(100)
                .min(100)
        };
        match self.cap {
            Some(cap) => pct.min(cap),
            None => pct,
        }
    }
}

/// What a firmware command gets of the device.
struct FwEnv<'a> {
    now: Duration,
    bg_busy: bool,
    take: crate::firmware::TakeFault<'a>,
}

/// The result of executing one command.
#[derive(Clone, Debug, Default)]
struct Exec {
    rc: u16,
    out: Vec<u8>,
    /// Start a background operation of this kind and duration.
    bg: Option<(BgKind, Duration)>,
    /// An MMPT message arrived in the receive queue.
    arrived: bool,
}

impl Exec {
    fn rc(rc: ReturnCode) -> Self {
        Self {
            rc: rc.raw(),
            ..Self::default()
        }
    }

    fn out(out: Vec<u8>) -> Self {
        Self {
            out,
            ..Self::default()
        }
    }
}

/// An output payload of at most `max` bytes made by a proto encoder (which returns the length
/// it wrote); an encoder error (a bug) is Internal Error.
fn encoded(
    max: usize,
    encode: impl FnOnce(&mut [u8]) -> Result<usize, swcci_proto::wire::EncodeError>,
) -> Exec {
    let mut b = vec![0u8; max];
    match encode(&mut b) {
        Ok(n) => {
            b.truncate(n);
            Exec::out(b)
        }
        Err(_) => Exec::rc(ReturnCode::InternalError),
    }
}

impl Device {
    pub(super) fn submit(&mut self, now: Duration) {
        self.doorbell = true;
        self.stats.inc("doorbells");
        let caps = self.mbox_caps();
        if caps.attention() && self.ctrl.attention_not_needed() {
            self.stats.inc("no-attention");
            self.event("doorbell while the function is not at attention".into());
        }
        self.last_opcode = Some((self.cmd.opcode(), self.cmd.opcode_vendor()));
        if self.part_loss(now) {
            return;
        }
        let f = &mut self.faults;
        let faults = CmdFaults {
            stuck: take_flag(&mut f.doorbell_stuck),
            delay_ms: take(&mut f.delay),
            bad_length: take_flag(&mut f.bad_length),
            rc: take(&mut f.rc),
            no_irq: take_flag(&mut f.no_irq),
            after_reads: take(&mut f.after_reads),
        };
        if faults != CmdFaults::default() {
            self.stats.inc("faults-applied");
        }
        if self.dead_tunnel() {
            let ms = self.fabric.settings.dead_port_ms;
            self.stats.inc("dead-tunnels");
            self.event(if ms == 0 {
                "tunnel to the dead port: never completes".to_string()
            } else {
                format!("tunnel to the dead port: fails with 0004h in {ms} ms")
            });
            self.pending = Some(Pending {
                due: (ms > 0).then(|| now.saturating_add(Duration::from_millis(ms))),
                cmd: self.cmd,
                faults: CmdFaults {
                    rc: Some(ReturnCode::InternalError.raw()),
                    ..faults
                },
            });
            return;
        }
        let p = Pending {
            due: None,
            cmd: self.cmd,
            faults,
        };
        if faults.stuck {
            self.event(format!(
                "command {:04x}h: doorbell stuck (fault)",
                self.cmd.opcode()
            ));
            self.pending = Some(p);
            return;
        }
        let slow = self.knobs.slow_part_ms(self.cmd, &self.payload);
        if let Some(ms) = faults.delay_ms.or(slow) {
            let why = if faults.delay_ms.is_some() {
                "fault"
            } else {
                "mmpt-part-ms"
            };
            self.event(format!(
                "command {:04x}:{:04x}h: completion delayed by {ms} ms ({why})",
                self.cmd.opcode_vendor(),
                self.cmd.opcode()
            ));
            self.pending = Some(Pending {
                due: Some(now.saturating_add(Duration::from_millis(ms))),
                ..p
            });
            return;
        }
        self.complete(now, p);
    }

    /// Whether the command in the registers is a Tunnel Management Command to the dead port.
    fn dead_tunnel(&self) -> bool {
        let cmd = self.cmd;
        let len = cmd.payload_len() as usize;
        self.cfg.personality == Personality::Switch
            && cmd.opcode_vendor() == 0
            && cmd.opcode() == opcode::TUNNEL
            && len <= self.payload_size
            && self
                .payload
                .get(..len)
                .is_some_and(|b| self.fabric.is_dead_tunnel(b))
    }

    /// Runs a command and completes it: registers, doorbell, interrupts.
    pub(super) fn complete(&mut self, now: Duration, p: Pending) {
        let cmd = p.cmd;
        let (op, vendor) = (cmd.opcode(), cmd.opcode_vendor());
        let in_len = cmd.payload_len() as usize;
        let ex = if let Some(rc) = p.faults.rc {
            // The function fails the command without carrying it out.
            self.event(format!("command {op:04x}h: return code {rc:#06x} (fault)"));
            Exec {
                rc,
                ..Exec::default()
            }
        } else if in_len > self.payload_size {
            Exec::rc(ReturnCode::InvalidPayloadLength)
        } else {
            let input = self.payload.get(..in_len).unwrap_or(&[]).to_vec();
            self.execute(now, op, vendor, &input)
        };
        self.stats.inc("commands");
        let out_len = ex.out.len().min(self.payload_size);
        if let Some(dst) = self.payload.get_mut(..out_len) {
            dst.copy_from_slice(ex.out.get(..out_len).unwrap_or(&[]));
        }
        let reported = if p.faults.bad_length {
            let bad = self.payload_size.saturating_mul(2).min(0x1f_ffff) as u32;
            self.event(format!(
                "command {op:04x}h: output length {bad} reported for a {}-byte payload (fault)",
                self.payload_size
            ));
            bad
        } else {
            out_len as u32
        };
        self.cmd = cmd.with_payload_len(reported);
        self.status = MboxStatus::default().with_return_code(ex.rc);
        if let Some((kind, d)) = ex.bg {
            self.start_bg(now, kind, op, d, p.faults.no_irq);
        }
        self.doorbell = false;
        self.event(format!(
            "command {vendor:04x}:{op:04x}h in {in_len} B -> rc {:04x}h out {out_len} B",
            ex.rc
        ));
        if self.mbox_caps().doorbell_irq() && self.ctrl.doorbell_irq() {
            self.fire(self.mbox_vector(), p.faults.no_irq, "doorbell");
        }
        if ex.arrived {
            self.message_arrived(p.faults.no_irq);
        }
        match p.faults.after_reads {
            Some((0, how)) => self.lose(now, how, &format!("at the completion of {op:04x}h")),
            Some((n, how)) => self.loss_after = Some((n, how)),
            None => {}
        }
    }

    pub(super) fn message_arrived(&mut self, suppressed: bool) {
        if self.mmpt_ctrl.rx_irq() {
            self.fire(self.mmpt_vector(), suppressed, "MMPT receive");
        }
    }

    fn execute(&mut self, now: Duration, op: u16, vendor: u16, input: &[u8]) -> Exec {
        let ex = match (vendor, op) {
            (VENDOR_PCI_SIG, SEND_MESSAGE) => {
                let o = self.mmpt.send(input, self.payload_size);
                Exec {
                    rc: o.code.raw(),
                    out: o.out,
                    bg: None,
                    arrived: o.arrived,
                }
            }
            (VENDOR_PCI_SIG, RECEIVE_MESSAGE)
                if self
                    .mmpt
                    .rx_part_number(input)
                    .is_some_and(|k| self.knobs.take_rx_fail(k)) =>
            {
                self.stats.inc("faults-applied");
                self.event("Receive Message part failed with 0004h (rx-fail-at-part)".into());
                Exec {
                    rc: MmptCode::InternalError.raw(),
                    ..Exec::default()
                }
            }
            (VENDOR_PCI_SIG, RECEIVE_MESSAGE) => {
                let o = self.mmpt.receive(input, self.payload_size);
                Exec {
                    rc: o.code.raw(),
                    out: o.out,
                    bg: None,
                    arrived: false,
                }
            }
            (0, op) if self.cfg.personality == Personality::Switch => {
                self.execute_cxl(now, op, input)
            }
            _ => Exec {
                rc: MmptCode::Unsupported.raw(),
                ..Exec::default()
            },
        };
        let s = self.mmpt.stats;
        self.sync_mmpt_stats(s);
        if ex.rc == ReturnCode::Unsupported.raw() {
            self.stats.inc("unsupported");
        }
        ex
    }

    fn execute_cxl(&mut self, now: Duration, op: u16, input: &[u8]) -> Exec {
        let no_input = |f: &mut Self, run: fn(&mut Self) -> Exec| {
            if input.is_empty() {
                run(f)
            } else {
                Exec::rc(ReturnCode::InvalidPayloadLength)
            }
        };
        match op {
            opcode::IDENTIFY => no_input(self, Self::identify),
            opcode::BG_OP_STATUS => no_input(self, Self::bg_op_status),
            opcode::REQUEST_ABORT_BG => no_input(self, Self::request_abort),
            opcode::GET_SUPPORTED_LOGS => no_input(self, Self::supported_logs),
            opcode::GET_LOG => self.get_log(input),
            OP_GET_FW_INFO if !input.is_empty() => Exec::rc(ReturnCode::InvalidPayloadLength),
            OP_GET_FW_INFO => self.fw_exec(now, |fw, _| fw.info()),
            OP_TRANSFER_FW => self.fw_exec(now, |fw, env| {
                fw.transfer_cmd(env.now, input, env.bg_busy, env.take)
            }),
            OP_ACTIVATE_FW => {
                self.fw_exec(now, |fw, env| fw.activate_cmd(input, env.bg_busy, env.take))
            }
            opcode::IDENTIFY_SWITCH if !input.is_empty() => {
                Exec::rc(ReturnCode::InvalidPayloadLength)
            }
            opcode::IDENTIFY_SWITCH => {
                let o = self.fabric.identify_switch();
                self.fabric_exec(o)
            }
            opcode::GET_PHYS_PORT_STATE => {
                let o = self.fabric.port_state(input, self.payload_size);
                self.fabric_exec(o)
            }
            opcode::GET_VCS_INFO => {
                let o = self.fabric.vcs_info(input, self.payload_size);
                self.fabric_exec(o)
            }
            opcode::BIND_VPPB => {
                let o = self.fabric.bind(input, self.bg_op.is_some());
                self.fabric_exec(o)
            }
            opcode::UNBIND_VPPB => {
                let o = self.fabric.unbind(input, self.bg_op.is_some());
                self.fabric_exec(o)
            }
            opcode::TUNNEL => {
                self.stats.inc("tunnels");
                let o = self.fabric.tunnel(now, input, self.payload_size);
                self.fabric_exec(o)
            }
            OP_SLEEP | OP_QUIET_SLEEP => {
                let Ok(ms) = <[u8; 4]>::try_from(input) else {
                    return Exec::rc(ReturnCode::InvalidPayloadLength);
                };
                if self.bg_op.is_some() {
                    self.stats.inc("bg-busy");
                    return Exec::rc(ReturnCode::Busy);
                }
                let ms = u64::from(u32::from_le_bytes(ms));
                Exec {
                    rc: ReturnCode::BackgroundStarted.raw(),
                    bg: Some((BgKind::Sleep, Duration::from_millis(ms))),
                    ..Exec::default()
                }
            }
            OP_ECHO => Exec::out(input.to_vec()),
            opcode::GET_EVENT_RECORDS | opcode::CLEAR_EVENT_RECORDS => {
                let r = self.ev.exec(op, input, self.payload_size);
                self.sync_event_stats();
                match r {
                    Some((rc, out)) => Exec {
                        rc: rc.raw(),
                        out,
                        ..Exec::default()
                    },
                    None => Exec::rc(ReturnCode::InternalError),
                }
            }
            opcode::GET_EVENT_INTERRUPT_POLICY | opcode::SET_EVENT_INTERRUPT_POLICY => {
                match self.ev.policy_exec(op, input) {
                    Some((rc, out)) => Exec {
                        rc: rc.raw(),
                        out,
                        ..Exec::default()
                    },
                    None => Exec::rc(ReturnCode::InternalError),
                }
            }
            _ => Exec::rc(ReturnCode::Unsupported),
        }
    }

    /// Runs CXL command `op` with `input` received as a message (FM-API or CCI over MCTP,
    /// `mctp.rs`) on the same model as the mailbox: returns the return code and the output
    /// (at most the payload size). A background operation it starts runs as one started
    /// through the mailbox (Background Operation Status reports it), without interrupts.
    pub fn execute_message(&mut self, now: Duration, op: u16, input: &[u8]) -> (u16, Vec<u8>) {
        if self.cfg.personality != Personality::Switch || self.removed {
            return (ReturnCode::Unsupported.raw(), Vec::new());
        }
        let ex = if input.len() > self.payload_size {
            Exec::rc(ReturnCode::InvalidPayloadLength)
        } else {
            self.execute_cxl(now, op, input)
        };
        self.stats.inc("commands");
        self.stats.inc("mctp-messages");
        if ex.rc == ReturnCode::Unsupported.raw() {
            self.stats.inc("unsupported");
        }
        if let Some((kind, d)) = ex.bg {
            self.start_bg(now, kind, op, d, true);
        }
        let mut out = ex.out;
        out.truncate(self.payload_size);
        self.event(format!(
            "MCTP command {op:04x}h in {} B -> rc {:04x}h out {} B",
            input.len(),
            ex.rc,
            out.len()
        ));
        (ex.rc, out)
    }

    fn identify(&mut self) -> Exec {
        let id = Identify {
            vendor_id: self.cfg.vendor,
            device_id: self.cfg.device,
            subsys_vendor_id: self.cfg.vendor,
            subsys_id: self.cfg.device,
            serial: self.cfg.serial,
            max_msg_size_log2: self.cfg.payload_log2,
            component_type: ComponentType::Switch,
        };
        encoded(IDENTIFY_LEN, |b| id.encode(b))
    }

    fn bg_op_status(&mut self) -> Exec {
        let st = BgOpStatus {
            running: self.bg_op.is_some(),
            percent: self.bg.percent().min(100),
            opcode: self.bg.opcode(),
            rc: ReturnCode::from_raw(self.bg.return_code()),
            vendor_status: self.bg.vendor_status(),
        };
        encoded(8, |b| st.encode(b))
    }

    fn request_abort(&mut self) -> Exec {
        self.stats.inc("aborts");
        if !self.settings.abort_supported {
            return Exec::rc(ReturnCode::AbortNotSupported);
        }
        if let Some(op) = self.bg_op {
            match op.kind {
                BgKind::Firmware => self.fw.abort_running(),
                BgKind::Fabric => self.fabric.abort_running(),
                BgKind::Sleep => {}
            }
            self.drain_model_events();
            self.finish_bg(ReturnCode::Aborted.raw(), "aborted");
            self.stats.inc("bg-aborted");
        }
        Exec::default()
    }

    /// Runs a firmware command: `run` gets the firmware model and what it needs of the
    /// device (time, whether a background operation runs, the armed faults).
    fn fw_exec(
        &mut self,
        now: Duration,
        run: impl FnOnce(&mut Firmware, FwEnv<'_>) -> FwOutcome,
    ) -> Exec {
        let bg_busy = self.bg_op.is_some();
        let faults = &mut self.faults.fw;
        let mut applied = 0u64;
        let mut take = |f: FwFault| {
            let i = FwFault::ALL.iter().position(|x| *x == f).unwrap_or(0);
            let hit = faults.get_mut(i).is_some_and(take_flag);
            applied += u64::from(hit);
            hit
        };
        let outcome = run(
            &mut self.fw,
            FwEnv {
                now,
                bg_busy,
                take: &mut take,
            },
        );
        self.stats.add("faults-applied", applied);
        self.drain_model_events();
        match outcome {
            FwOutcome::Done(rc, out) => Exec {
                rc: rc.raw(),
                out,
                ..Exec::default()
            },
            FwOutcome::Background(d) => Exec {
                rc: ReturnCode::BackgroundStarted.raw(),
                bg: Some((BgKind::Firmware, d)),
                ..Exec::default()
            },
            FwOutcome::StopBackground => {
                self.finish_bg(ReturnCode::Aborted.raw(), "aborted by Transfer FW Abort");
                self.stats.inc("bg-aborted");
                Exec::default()
            }
        }
    }

    fn fabric_exec(&mut self, o: FabricOutcome) -> Exec {
        self.drain_model_events();
        match o {
            FabricOutcome::Done(rc, out) => Exec {
                rc: rc.raw(),
                out,
                ..Exec::default()
            },
            FabricOutcome::Background(d) => Exec {
                rc: ReturnCode::BackgroundStarted.raw(),
                bg: Some((BgKind::Fabric, d)),
                ..Exec::default()
            },
        }
    }

    /// The Command Effects Log.
    pub fn cel(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(SWITCH_OPCODES.len() * CEL_ENTRY);
        for op in SWITCH_OPCODES {
            let abort = if self.settings.abort_supported {
                effect::BACKGROUND_ABORT
            } else {
                0
            };
            let e = match op {
                OP_SLEEP => effect::BACKGROUND_OP | effect::CONFIG_CHANGE_IMMEDIATE | abort,
                OP_TRANSFER_FW => effect::BACKGROUND_OP | effect::CONFIG_CHANGE_COLD_RESET | abort,
                OP_ACTIVATE_FW => {
                    effect::BACKGROUND_OP
                        | effect::CONFIG_CHANGE_IMMEDIATE
                        | effect::CONFIG_CHANGE_COLD_RESET
                        | abort
                }
                opcode::BIND_VPPB | opcode::UNBIND_VPPB => {
                    effect::BACKGROUND_OP | effect::CONFIG_CHANGE_IMMEDIATE | abort
                }
                OP_ECHO => effect::CONFIG_CHANGE_IMMEDIATE,
                opcode::CLEAR_EVENT_RECORDS => effect::LOG_CHANGE_IMMEDIATE,
                opcode::SET_EVENT_INTERRUPT_POLICY => effect::POLICY_CHANGE_IMMEDIATE,
                _ => 0,
            };
            let e = self.knobs.cel_effect(op, e);
            b.extend_from_slice(
                &CelEntry {
                    opcode: op,
                    effect: e,
                }
                .encode(),
            );
        }
        debug_assert_eq!(b.len(), SWITCH_OPCODES.len() * CEL_ENTRY);
        b
    }

    fn supported_logs(&mut self) -> Exec {
        let cel = SupportedLog {
            uuid: CEL_UUID,
            size: u32::try_from(self.cel().len()).unwrap_or(u32::MAX),
        };
        encoded(SUPPORTED_LOGS_HEADER + SUPPORTED_LOG_ENTRY, |b| {
            encode_supported_logs(b, &[cel])
        })
    }

    fn get_log(&mut self, input: &[u8]) -> Exec {
        if input.len() != GET_LOG_INPUT_LEN {
            return Exec::rc(ReturnCode::InvalidPayloadLength);
        }
        let (uuid, rest) = input.split_at(16);
        if uuid != CEL_UUID.0 {
            return Exec::rc(ReturnCode::InvalidLog);
        }
        let word = |i: usize| {
            let mut w = [0u8; 4];
            if let Some(s) = rest.get(i..i + 4) {
                w.copy_from_slice(s);
            }
            u32::from_le_bytes(w) as usize
        };
        let (offset, mut length) = (word(0), word(4));
        let cel = self.cel();
        if length > self.payload_size || offset.saturating_add(length) > cel.len() {
            return Exec::rc(ReturnCode::InvalidInput);
        }
        if let Some(n) = take(&mut self.faults.short_log) {
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            self.stats.inc("short-logs");
            self.event(format!(
                "Get Log of the CEL: {} of {length} bytes returned (fault)",
                length.min(n)
            ));
            length = length.min(n);
        }
        Exec::out(cel.get(offset..offset + length).unwrap_or(&[]).to_vec())
    }

    // ---- background operations ----

    pub(super) fn start_bg(
        &mut self,
        now: Duration,
        kind: BgKind,
        op: u16,
        d: Duration,
        no_irq: bool,
    ) {
        let cap = take(&mut self.faults.bg_cap);
        self.bg_op = Some(BgOp {
            kind,
            opcode: op,
            start: now,
            duration: d,
            cap,
            no_irq,
        });
        self.bg = MboxBgStatus::default().with_opcode(op);
        self.stats.inc("bg-started");
        let capped = cap.map_or(String::new(), |c| format!(", stops at {c}% (fault)"));
        self.event(format!(
            "background {op:04x}h started for {} us{capped}",
            d.as_micros()
        ));
    }

    pub(super) fn finish_bg(&mut self, rc: u16, how: &str) {
        let Some(op) = self.bg_op.take() else { return };
        self.bg = MboxBgStatus::default()
            .with_opcode(op.opcode)
            .with_percent(100)
            .with_return_code(rc);
        self.stats.inc("bg-completed");
        self.event(format!("background {:04x}h {how}: rc {rc:04x}h", op.opcode));
        if self.mbox_caps().background_irq() && self.ctrl.background_irq() {
            self.fire(self.mbox_vector(), op.no_irq, "background completion");
        }
    }
}
