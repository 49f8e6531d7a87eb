// SPDX-License-Identifier: GPL-2.0

//! The register model of the function: BAR0 (capabilities array, mailbox, MMPT registers),
//! BAR2 (MSI-X table and PBA storage), the two personalities, command execution, background
//! operations and armed faults. Pure logic: no I/O, no threads, no clock. Every entry point
//! takes the current time (`now`, time since the emulator started) and interrupts go to an
//! [`IrqSink`]; notable events are collected as text for the caller to log.
//!
//! BAR0 map:
//! | offset | what |
//! |---|---|
//! | 0x0000 | capabilities array: CXL device capabilities array and PCIe MCAP array in one |
//! | 0x0100 | CXL Device Status registers (switch; read as zero) |
//! | 0x0200 | CXL Memory Device Status (switch; bit 4 mailbox ready) |
//! | 0x0800 | MMPT registers (Capabilities, Control, Receive Message Notification) |
//! | 0x1000 | the mailbox: CXL primary mailbox and PCIe MMB (one register set) |
//!
//! Capabilities array (type 2 "FM mailbox CCI" for switch, 0 for mmpt), headers of 16 bytes
//! with the vendor id in dword 3:
//! - switch: device status (0000h:0001h), primary mailbox (0000h:0002h), memory device status
//!   (0000h:4000h), MMB (0001h:0001h, same registers as the primary mailbox), MMPT
//!   (0001h:0002h).
//! - mmpt: MMB (0001h:0001h), MMPT (0001h:0002h).
//!
//! Interrupts: the mailbox doorbell and background completion interrupts use MSI-X vector
//! [`MBOX_VECTOR`] (Capabilities bits 10:7), the MMPT receive interrupt vector [`MMPT_VECTOR`]
//! (MMPT Capabilities bits 4:1).
//!
//! Register access rules: only 4- and 8-byte naturally aligned accesses are valid; others are
//! counted (`bad-access`) and ignored (reads return zero). The Command register takes a command
//! only through one 64-bit write; 32-bit writes to it are counted (`cmd-write32`) and ignored.
//! A 64-bit write elsewhere acts as two 32-bit writes.
//!
//! The parts: `regs.rs` (the registers), `dispatch.rs` (commands by opcode, the CEL,
//! background operations), `faults.rs` (armed faults), `stats.rs` (the counters); the state of
//! the function, time, interrupts and event records are here.

mod dispatch;
mod faults;
mod regs;
mod stats;

pub use faults::Fault;
pub use stats::STAT_NAMES;

use dispatch::{BgKind, BgOp};
use faults::{Faults, Loss, PartWatch, Pending};
use stats::Stats;

use crate::common::{take_flag, Mode, Personality, MBOX_VECTOR, MMPT_VECTOR};
use crate::events::{EventLogs, EventSettings, Notice};
use crate::fabric::{Fabric, FabricConfig};
use crate::firmware::Firmware;
use crate::irq::{IrqSink, MSIX_VECTORS};
use crate::knobs::{Knobs, MSI_MAX};
use crate::mmpt::{Message, Mmpt};
use std::sync::Arc;
use std::time::Duration;
use swcci_proto::opcode;
use swcci_proto::regs::{
    MboxBgStatus, MboxCaps, MboxCmd, MboxCtrl, MboxStatus, MmptCaps, MmptCtrl, MBOX_PAYLOAD,
    MBOX_PAYLOAD_MAX, MBOX_PAYLOAD_MIN,
};

/// Offset of the CXL Device Status registers in BAR0.
pub const DEVICE_STATUS_REGS: usize = 0x100;
/// Offset of the CXL Memory Device Status register in BAR0.
pub const MEMDEV_STATUS_REGS: usize = 0x200;
/// Offset of the MMPT registers in BAR0.
pub const MMPT_REGS: usize = 0x800;
/// Offset of the mailbox registers in BAR0.
pub const MBOX_REGS: usize = 0x1000;
/// Smallest BAR0.
pub const BAR0_MIN: u64 = 0x10000;
/// Vendor-specific background command: sleep for a u32 of milliseconds.
pub const OP_SLEEP: u16 = 0xc000;
/// Vendor-specific command: returns its input.
pub const OP_ECHO: u16 = 0xc001;
/// A background sleep like [`OP_SLEEP`] outside the vendor command sets, with an opcode no
/// specification defines, listed in the CEL without effects: a command the taint rule leaves
/// alone that runs in the background.
pub const OP_QUIET_SLEEP: u16 = 0x3f00;
/// Get FW Info.
pub const OP_GET_FW_INFO: u16 = 0x0200;
/// Transfer FW.
pub const OP_TRANSFER_FW: u16 = 0x0201;
/// Activate FW.
pub const OP_ACTIVATE_FW: u16 = 0x0202;
/// CXL opcodes the switch personality implements, in CEL order.
pub const SWITCH_OPCODES: [u16; 21] = [
    opcode::IDENTIFY,
    opcode::BG_OP_STATUS,
    opcode::REQUEST_ABORT_BG,
    opcode::GET_EVENT_RECORDS,
    opcode::CLEAR_EVENT_RECORDS,
    opcode::GET_EVENT_INTERRUPT_POLICY,
    opcode::SET_EVENT_INTERRUPT_POLICY,
    OP_GET_FW_INFO,
    OP_TRANSFER_FW,
    OP_ACTIVATE_FW,
    opcode::GET_SUPPORTED_LOGS,
    opcode::GET_LOG,
    opcode::IDENTIFY_SWITCH,
    opcode::GET_PHYS_PORT_STATE,
    opcode::GET_VCS_INFO,
    opcode::BIND_VPPB,
    opcode::UNBIND_VPPB,
    opcode::TUNNEL,
    OP_SLEEP,
    OP_ECHO,
    OP_QUIET_SLEEP,
];
/// Most events kept for the caller to log.
const EVENTS_MAX: usize = 4096;

/// What the function is, fixed at start-up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceConfig {
    /// Personality.
    pub personality: Personality,
    /// PCI vendor id (also reported by Identify).
    pub vendor: u16,
    /// PCI device id (also reported by Identify).
    pub device: u16,
    /// Serial number reported by Identify.
    pub serial: u64,
    /// Payload size, log2 of bytes.
    pub payload_log2: u8,
    /// MSI-X present.
    pub msix: bool,
    /// MSI capability with this many messages (Multiple Message Capable; a power of two up to
    /// 32), instead of MSI-X; 0: none.
    pub msi: u8,
    /// Doorbell interrupt advertised.
    pub doorbell_irq: bool,
    /// Background completion interrupt advertised (switch only).
    pub bg_irq: bool,
    /// Time from reset to READY.
    pub ready_ms: u64,
    /// Firmware slots (switch only), 2..=4.
    pub fw_slots: u8,
    /// Ports, VCSs and devices (switch only).
    pub fabric: FabricConfig,
}

impl DeviceConfig {
    /// The defaults of `personality`.
    pub fn new(personality: Personality) -> Self {
        let (device, serial) = match personality {
            Personality::Switch => (0x5c01, 0x5c01_0000_0000_0001),
            Personality::Mmpt => (0x5c02, 0x5c02_0000_0000_0001),
        };
        Self {
            personality,
            vendor: 0x1b36,
            device,
            serial,
            payload_log2: 11,
            msix: true,
            msi: 0,
            doorbell_irq: true,
            bg_irq: true,
            ready_ms: 0,
            fw_slots: crate::firmware::DEFAULT_SLOTS,
            fabric: FabricConfig::default(),
        }
    }

    /// Checks the values that have limits.
    pub fn validate(&self) -> Result<(), String> {
        self.fabric.validate()?;
        if self.msi > 0 && (self.msi > MSI_MAX || !self.msi.is_power_of_two()) {
            return Err(format!(
                "--msi: {} messages (a power of two, 1..=32)",
                self.msi
            ));
        }
        if self.msi > 0 && self.msix {
            return Err("--msi: an MSI function has no MSI-X (add --no-msix)".into());
        }
        if !crate::firmware::SLOTS.contains(&self.fw_slots) {
            return Err(format!(
                "--fw-slots: {} firmware slots (2..=4)",
                self.fw_slots
            ));
        }
        let size = 1usize
            .checked_shl(u32::from(self.payload_log2))
            .unwrap_or(0);
        if !(MBOX_PAYLOAD_MIN..=MBOX_PAYLOAD_MAX).contains(&size) {
            return Err(format!(
                "--payload-log2: payload size 2^{} is outside 2^8..2^20 bytes",
                self.payload_log2
            ));
        }
        Ok(())
    }

    /// Payload size in bytes.
    pub fn payload_size(&self) -> usize {
        1usize
            .checked_shl(u32::from(self.payload_log2))
            .unwrap_or(MBOX_PAYLOAD_MIN)
            .clamp(MBOX_PAYLOAD_MIN, MBOX_PAYLOAD_MAX)
    }

    /// Size of BAR0: the registers rounded up to a power of two, at least 64 KiB.
    pub fn bar0_size(&self) -> u64 {
        let end = MBOX_REGS
            .saturating_add(MBOX_PAYLOAD)
            .saturating_add(self.payload_size()) as u64;
        end.next_power_of_two().max(BAR0_MIN)
    }

    /// Class code with programming interface.
    pub fn class(&self) -> u32 {
        match self.personality {
            Personality::Switch => swcci_proto::regs::PCI_CLASS_CXL_SWITCH_CCI,
            Personality::Mmpt => 0xff_0000,
        }
    }

    /// The configuration space parameters.
    pub fn config_params(&self) -> crate::config::ConfigParams {
        crate::config::ConfigParams {
            vendor: self.vendor,
            device: self.device,
            class: self.class(),
            revision: 1,
            subsys_vendor: self.vendor,
            subsys_id: self.device,
            bar0_size: self.bar0_size(),
            msix: self.msix,
            msi: self.msi,
            cxl_dvsec: self.personality == Personality::Switch,
        }
    }

    /// The Mailbox Capabilities register at start (the function's own: [`Device::mbox_caps`]).
    pub fn mbox_caps(&self) -> MboxCaps {
        let switch = self.personality == Personality::Switch;
        MboxCaps::default()
            .with_payload_size_log2(self.payload_log2)
            .with_doorbell_irq(self.doorbell_irq)
            .with_background_irq(switch && self.bg_irq)
            .with_irq_msgnum(MBOX_VECTOR as u8)
            .with_ready_time(self.ready_time_s())
            .with_attention(!switch)
    }

    /// The ready time the Capabilities register advertises: 0 (the default of 2 s) when the
    /// mailbox is ready at once, else the ready time rounded up to whole seconds.
    pub fn ready_time_s(&self) -> u8 {
        if self.ready_ms == 0 {
            0
        } else {
            u8::try_from(self.ready_ms.div_ceil(1000)).unwrap_or(u8::MAX)
        }
    }

    /// The MMPT Capabilities register at start (the function's own: [`Device::mmpt_caps`]).
    pub fn mmpt_caps(&self) -> MmptCaps {
        MmptCaps::default()
            .with_rx_irq(true)
            .with_rx_vector(MMPT_VECTOR as u8)
    }
}

/// Spacing of the interrupts of one `spurious-irq` request.
pub const SPURIOUS_SPACING: Duration = Duration::from_millis(10);

/// Spurious interrupts still to send.
#[derive(Clone, Copy, Debug)]
struct Spurious {
    left: u32,
    vector: u16,
    next: Duration,
}

/// Settings the control channel can change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Request Abort Background Operation is supported.
    pub abort_supported: bool,
    /// Final return code of the sleep background command.
    pub bg_rc: u16,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            abort_supported: true,
            bg_rc: 0,
        }
    }
}

/// The function.
pub struct Device {
    cfg: DeviceConfig,
    irqs: Arc<dyn IrqSink>,
    payload_size: usize,
    ready_at: Duration,
    /// The ready time passed once since the last reset: the doorbell left its reset value.
    ready_latched: bool,
    doorbell: bool,
    ctrl: MboxCtrl,
    cmd: MboxCmd,
    status: MboxStatus,
    bg: MboxBgStatus,
    payload: Vec<u8>,
    pending: Option<Pending>,
    bg_op: Option<BgOp>,
    mmpt_ctrl: MmptCtrl,
    /// The MMPT state (responder and inline settings are public to the control channel).
    pub mmpt: Mmpt,
    /// The firmware slots and transfer (switch).
    pub fw: Firmware,
    /// Ports, VCSs and devices (switch).
    pub fabric: Fabric,
    msix_table: Vec<u8>,
    /// Settings of the control channel.
    pub settings: Settings,
    /// Run-time variants of the registers and timing (`knobs.rs`).
    pub knobs: Knobs,
    faults: Faults,
    removed: bool,
    /// BAR0 reads left before the armed loss of a completed command (`after-reads` faults).
    loss_after: Option<(u32, Loss)>,
    /// The multi-part transfer an `at-part` fault counts the parts of.
    part_watch: Option<PartWatch>,
    spurious: Option<Spurious>,
    /// The switch CCI's event logs (`events.rs`).
    pub ev: EventLogs,
    /// Firmware activations of the switch logged as event records.
    fw_activations_logged: u64,
    stats: Stats,
    last_opcode: Option<(u16, u16)>,
    events: Vec<String>,
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Device")
            .field("cfg", &self.cfg)
            .field("doorbell", &self.doorbell)
            .finish_non_exhaustive()
    }
}

impl Device {
    /// A function in its reset state at time `now`.
    pub fn new(cfg: DeviceConfig, irqs: Arc<dyn IrqSink>, now: Duration) -> Self {
        let payload_size = cfg.payload_size();
        let mut d = Self {
            irqs,
            payload_size,
            ready_at: now,
            ready_latched: false,
            doorbell: false,
            ctrl: MboxCtrl::default(),
            cmd: MboxCmd::default(),
            status: MboxStatus::default(),
            bg: MboxBgStatus::default(),
            payload: vec![0; payload_size],
            pending: None,
            bg_op: None,
            mmpt_ctrl: MmptCtrl::default(),
            mmpt: Mmpt::new(),
            fw: Firmware::new(cfg.fw_slots),
            fabric: Fabric::new(cfg.fabric.clone(), cfg.serial, cfg.fw_slots),
            msix_table: vec![0; MSIX_VECTORS * 16],
            settings: Settings::default(),
            knobs: Knobs::new(cfg.personality),
            faults: Faults::default(),
            removed: false,
            loss_after: None,
            part_watch: None,
            spurious: None,
            ev: EventLogs::default(),
            fw_activations_logged: 0,
            stats: Stats::new(),
            last_opcode: None,
            events: Vec::new(),
            cfg,
        };
        d.reset_state(now);
        d
    }

    /// The configuration it was built with.
    pub fn config(&self) -> &DeviceConfig {
        &self.cfg
    }

    /// Payload size in bytes.
    pub fn payload_size(&self) -> usize {
        self.payload_size
    }

    /// What the function is and holds, as JSON (the schema is in the README): identity,
    /// payload size, and for the switch its firmware slots, ports, devices and VCSs as they
    /// stand now.
    pub fn describe(&self) -> serde_json::Value {
        let c = &self.cfg;
        let mut v = serde_json::json!({
            "personality": c.personality.name(),
            "vendor": c.vendor,
            "device": c.device,
            "serial": c.serial,
            "payload_size": self.payload_size,
        });
        if c.personality == Personality::Switch {
            let fabric = self.fabric.describe();
            v["firmware"] = self.fw.describe();
            v["ports"] = fabric["ports"].clone();
            v["vcs"] = fabric["vcs"].clone();
        }
        v
    }

    fn event(&mut self, msg: String) {
        if self.events.len() < EVENTS_MAX {
            self.events.push(msg);
        }
    }

    /// Takes the notable events since the last call, oldest first.
    pub fn take_events(&mut self) -> Vec<String> {
        std::mem::take(&mut self.events)
    }

    fn reset_state(&mut self, now: Duration) {
        self.ready_at = now.saturating_add(Duration::from_millis(self.cfg.ready_ms));
        self.ready_latched = false;
        self.doorbell = false;
        self.ctrl = MboxCtrl::default();
        self.cmd = MboxCmd::default();
        self.status = MboxStatus::default();
        self.bg = MboxBgStatus::default();
        self.payload.iter_mut().for_each(|b| *b = 0);
        self.pending = None;
        self.bg_op = None;
        self.mmpt_ctrl = MmptCtrl::default();
        self.mmpt.reset();
        self.loss_after = None;
        self.part_watch = None;
    }

    /// Function reset (FLR, VFIO_USER_DEVICE_RESET or the control channel): the mailbox starts
    /// over and becomes ready after the ready time. Armed faults and settings stay.
    pub fn reset(&mut self, now: Duration) {
        self.reset_state(now);
        self.ev.reset_policy();
        self.fw.reset();
        if self.fabric.running() {
            self.fabric.abort_running();
        }
        self.drain_model_events();
        self.stats.inc("resets");
        let note = if self.faults.ready_never.is_some() {
            " (ready-never armed: READY stays clear)"
        } else {
            ""
        };
        self.event(format!("function reset{note}"));
        self.tick(now);
    }

    /// Whether READY is set.
    pub fn ready(&self, now: Duration) -> bool {
        self.faults.ready_never.is_none() && now >= self.ready_at
    }

    /// Advances time-driven state: readiness, delayed completions, background progress.
    pub fn tick(&mut self, now: Duration) {
        self.ev.tick(now);
        if self.removed {
            return;
        }
        if !self.ready_latched && self.ready(now) {
            self.ready_latched = true;
            self.doorbell = false;
            self.event("mailbox ready".into());
        }
        if self
            .pending
            .as_ref()
            .is_some_and(|p| p.due.is_some_and(|due| due <= now))
        {
            if let Some(p) = self.pending.take() {
                self.complete(now, p);
            }
        }
        self.spurious_tick(now);
        if let Some(op) = self.bg_op {
            let pct = op.percent(now);
            self.bg = self.bg.with_percent(pct);
            if pct >= 100 && op.cap.is_none() {
                let rc = match op.kind {
                    BgKind::Sleep => self.settings.bg_rc,
                    BgKind::Firmware => self.fw.finish(now).raw(),
                    BgKind::Fabric => self.fabric.finish().raw(),
                };
                self.finish_bg(rc, "completed");
            }
        }
        self.fw.tick(now);
        self.fabric.tick(now);
        self.drain_model_events();
    }

    // ---- interrupts ----

    fn fire(&mut self, vector: u16, suppressed: bool, why: &str) {
        // `no-irq always` silences the function's interrupts, not the ones the control
        // channel asks for explicitly.
        let silenced = self.faults.no_irq == Some(Mode::Always) && why != "spurious";
        if self.removed || suppressed || silenced {
            self.stats.inc("irqs-suppressed");
            let cause = if self.removed {
                "surprise removal"
            } else {
                "fault"
            };
            self.event(format!(
                "interrupt {why} (vector {vector}) suppressed by {cause}"
            ));
            return;
        }
        self.stats.inc("irqs");
        if self.irqs.fire(vector) {
            self.stats.inc("irqs-delivered");
        } else {
            self.stats.inc("irqs-dropped");
            self.event(format!(
                "interrupt {why} (vector {vector}) dropped: no eventfd"
            ));
        }
    }

    /// Fires `count` interrupts on `vector` without a command: the first now, the others
    /// [`SPURIOUS_SPACING`] apart (back-to-back eventfd signals would reach the guest as one
    /// interrupt). A new request replaces one still in progress.
    pub fn spurious_irqs(&mut self, now: Duration, count: u32, vector: u16) {
        self.spurious = None;
        if count == 0 {
            return;
        }
        self.event(format!("{count} spurious interrupt(s) on vector {vector}"));
        self.spurious = Some(Spurious {
            left: count,
            vector,
            next: now,
        });
        self.tick(now);
    }

    fn spurious_tick(&mut self, now: Duration) {
        while let Some(s) = self.spurious {
            if s.next > now {
                break;
            }
            self.stats.inc("spurious-irqs");
            self.fire(s.vector, false, "spurious");
            let left = s.left.saturating_sub(1);
            self.spurious = (left > 0).then(|| Spurious {
                left,
                vector: s.vector,
                next: now.saturating_add(SPURIOUS_SPACING),
            });
        }
    }

    /// Spurious interrupts still to send.
    pub fn spurious_pending(&self) -> u32 {
        self.spurious.map_or(0, |s| s.left)
    }

    /// Logs the firmware and fabric models' events and copies their counters; logs the event
    /// records of what they did (`events.rs`).
    fn drain_model_events(&mut self) {
        for e in self.fw.take_events() {
            self.event(e);
        }
        for e in self.fabric.take_events() {
            self.event(e);
        }
        self.log_model_records();
        self.sync_fw_stats();
    }

    // ---- event records (events.rs) ----

    /// Logs a record of type `uuid` with `data` in the switch CCI's `log` and signals the
    /// event interrupt when the policy asks for one (unless the `no-event-irq` fault swallows
    /// it).
    fn log_record(
        &mut self,
        log: swcci_proto::payload::events::EventLog,
        uuid: swcci_proto::payload::logs::Uuid,
        data: &[u8; swcci_proto::payload::events::EVENT_DATA_LEN],
        what: &str,
    ) {
        let before = self.ev.stats.dropped;
        let irq = self.ev.add(log, uuid, data);
        if self.ev.stats.dropped != before {
            self.event(format!(
                "{log} event log full: {what} record dropped (overflow)"
            ));
        } else {
            self.event(format!("{what} record logged in the {log} event log"));
        }
        self.sync_event_stats();
        if let Some(v) = irq {
            self.stats.inc("event-irqs");
            let swallowed = take_flag(&mut self.faults.no_event_irq);
            self.fire(v, swallowed, "event");
        }
    }

    /// Logs the records of the fabric's binding and link changes and of the switch's firmware
    /// activations since the last call.
    fn log_model_records(&mut self) {
        use crate::events::{
            binding_record, fw_activation_record, link_record, FW_ACTIVATION_UUID,
        };
        use swcci_proto::payload::events::{
            EventLog, PHYSICAL_SWITCH_EVENT_UUID, VIRTUAL_SWITCH_EVENT_UUID,
        };
        for n in self.fabric.take_notices() {
            match n {
                Notice::Binding {
                    vcs,
                    vppb,
                    info,
                    failed,
                } => {
                    let (log, data) = binding_record(vcs, vppb, info, failed);
                    self.log_record(log, VIRTUAL_SWITCH_EVENT_UUID, &data, "Virtual CXL Switch");
                }
                Notice::Link { port, up } => {
                    if let Some((log, data)) = link_record(port, up) {
                        self.log_record(log, PHYSICAL_SWITCH_EVENT_UUID, &data, "Physical Switch");
                    }
                }
            }
        }
        while self.fw_activations_logged < self.fw.stats.activations {
            self.fw_activations_logged = self.fw_activations_logged.saturating_add(1);
            let slot = self.fw.active();
            let rev = self.fw.slot(slot).map(|v| v.rev).unwrap_or_default();
            let data = fw_activation_record(slot, &rev);
            self.log_record(
                EventLog::Informational,
                FW_ACTIVATION_UUID,
                &data,
                "Firmware Activation",
            );
        }
    }

    /// Takes the link of `port` down or brings it up (control channel `link`); logs a Physical
    /// Switch Event Record. Error: not a downstream port with a device.
    pub fn set_link(&mut self, now: Duration, port: u8, up: bool) -> Result<(), String> {
        self.tick(now);
        self.fabric.set_link(port, up)?;
        self.drain_model_events();
        Ok(())
    }

    /// `count` error messages of `kind` from the MLD (control channel `mld-error`): MLD Port
    /// Event Records. Error: no MLD.
    pub fn mld_error(
        &mut self,
        now: Duration,
        kind: swcci_proto::payload::events::MldEventType,
        count: u32,
    ) -> Result<(), String> {
        let port = self
            .fabric
            .config()
            .mld_port
            .ok_or("no multi-logical device (--mld-port)")?;
        self.tick(now);
        for _ in 0..count {
            let (log, data) = crate::events::mld_error_record(port, kind);
            self.log_record(
                log,
                swcci_proto::payload::events::MLD_PORT_EVENT_UUID,
                &data,
                &format!("MLD Port ({kind})"),
            );
        }
        Ok(())
    }

    /// The event settings.
    pub fn event_settings(&self) -> EventSettings {
        self.ev.settings
    }

    /// Gives the switch CCI's event logs and every device's the settings `s`.
    pub fn set_event_settings(&mut self, s: EventSettings) {
        self.ev.set_settings(s);
        self.fabric.set_event_settings(s);
    }

    // ---- control channel ----

    /// Gives the switch's firmware and every device's behind its ports the settings `s`.
    pub fn set_fw_settings(&mut self, s: crate::firmware::FwSettings) {
        self.fw.settings = s;
        self.fabric.set_fw_settings(s);
    }

    /// A cold reset of the device behind `port` (its staged firmware slot becomes active; see
    /// `devfw.rs`). Error: no device with firmware there.
    pub fn reset_port(&mut self, now: Duration, port: u8) -> Result<(), String> {
        self.tick(now);
        self.fabric.reset_device(port)?;
        self.drain_model_events();
        Ok(())
    }

    /// Queues a received MMPT message as if the function had produced it.
    pub fn inject_message(&mut self, msg_type: u8, data: Vec<u8>) -> Result<usize, String> {
        let len = data.len();
        self.mmpt
            .inject(Message { msg_type, data })
            .map_err(|_| format!("receive queue full ({} messages)", crate::mmpt::QUEUE_MAX))?;
        let s = self.mmpt.stats;
        self.sync_mmpt_stats(s);
        self.event(format!("message of type {msg_type:#04x}, {len} B queued"));
        self.message_arrived(false);
        Ok(self.mmpt.queue_len())
    }

    /// Queues a received MMPT message of `len` bytes of a pattern (byte i is i mod 251) as if
    /// the function had produced it: messages longer than any host takes.
    pub fn inject_pattern(&mut self, msg_type: u8, len: usize) -> Result<usize, String> {
        let data = (0..len).map(|i| (i % 251) as u8).collect();
        self.inject_message(msg_type, data)
    }

    /// The MMPT transfers: `tx=0|1 rx=0|1 queue=N head=LEN` (a Send transfer open, a read of
    /// the head message begun, messages waiting, the head message's length or 0).
    pub fn mmpt_state(&self) -> String {
        format!(
            "tx={} rx={} queue={} head={}",
            u8::from(self.mmpt.transfer_open()),
            u8::from(self.mmpt.read_open()),
            self.mmpt.queue_len(),
            self.mmpt.head().map_or(0, |(_, n)| n)
        )
    }

    /// Opcode and opcode vendor of the last command submitted.
    pub fn last_opcode(&self) -> Option<(u16, u16)> {
        self.last_opcode
    }

    /// Progress of the running or last background operation: (running, opcode, percent, rc).
    pub fn bg_state(&self) -> (bool, u16, u8, u16) {
        (
            self.bg_op.is_some(),
            self.bg.opcode(),
            self.bg.percent(),
            self.bg.return_code(),
        )
    }
}

#[cfg(test)]
mod tests;
