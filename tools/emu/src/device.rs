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

use crate::common::{take_flag, Mode, Personality, MBOX_VECTOR, MMPT_VECTOR};
use crate::events::{EventLogs, EventSettings, Notice};
use crate::fabric::{Fabric, FabricConfig, FabricOutcome};
use crate::firmware::{Firmware, FwFault, FwOutcome};
use crate::irq::{IrqSink, MSIX_VECTORS};
use crate::knobs::{Knobs, MSI_MAX};
use crate::mmpt::{Message, Mmpt};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;
use swcci_proto::mmpt::{
    Action, MmptCode, MsgHeader, HEADER_LEN, RECEIVE_MESSAGE, SEND_MESSAGE, VENDOR_PCI_SIG,
};
use swcci_proto::opcode;
use swcci_proto::payload::bg::BgOpStatus;
use swcci_proto::payload::identify::{ComponentType, Identify, IDENTIFY_LEN};
use swcci_proto::payload::logs::{
    effect, encode_supported_logs, CelEntry, SupportedLog, CEL_ENTRY, CEL_UUID, GET_LOG_INPUT_LEN,
    SUPPORTED_LOGS_HEADER, SUPPORTED_LOG_ENTRY,
};
use swcci_proto::rc::ReturnCode;
use swcci_proto::regs::{
    cxl_cap, mcap, CapArrayHeader, CapHeader, MboxBgStatus, MboxCaps, MboxCmd, MboxCtrl,
    MboxStatus, MemdevStatus, MmptCaps, MmptCtrl, MmptRxNotify, CAP_ARRAY_FIRST, CAP_HEADER_LENGTH,
    CAP_HEADER_OFFSET, CAP_HEADER_SIZE, MBOX_PAYLOAD, MBOX_PAYLOAD_MAX, MBOX_PAYLOAD_MIN,
    MMPT_REGS_SIZE,
};

/// Offset of the CXL Device Status registers in BAR0.
pub const DEVICE_STATUS_REGS: usize = 0x100;
/// Offset of the CXL Memory Device Status register in BAR0.
pub const MEMDEV_STATUS_REGS: usize = 0x200;
/// Offset of the MMPT registers in BAR0.
pub const MMPT_REGS: usize = 0x800;
/// Offset of the mailbox registers in BAR0.
pub const MBOX_REGS: usize = 0x1000;

// Capability headers are served as two qwords (id, version and offset; then length and
// vendor): the fields must sit where that packing puts them.
const _: () = assert!(CAP_HEADER_OFFSET == 4 && CAP_HEADER_LENGTH == 8);
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
struct Faults {
    doorbell_stuck: Option<Mode>,
    delay: Option<(u64, Mode)>,
    bad_length: Option<Mode>,
    rc: Option<(u16, Mode)>,
    bg_cap: Option<(u8, Mode)>,
    no_irq: Option<Mode>,
    ready_never: Option<Mode>,
    /// Reset or removal after this many BAR0 reads following the completion.
    after_reads: Option<((u32, Loss), Mode)>,
    /// Reset or removal at this part of a multi-part MMPT transfer.
    at_part: Option<((u32, Loss), Mode)>,
    /// Get Log of the CEL returns at most this many bytes.
    short_log: Option<(u32, Mode)>,
    /// Event interrupts are swallowed.
    no_event_irq: Option<Mode>,
    /// Firmware faults, in the order of [`FwFault::ALL`].
    fw: [Option<Mode>; 5],
}

/// Takes a fault for one use: a once fault disarms.
fn take<T: Copy>(slot: &mut Option<(T, Mode)>) -> Option<T> {
    let (v, mode) = (*slot)?;
    if mode == Mode::Once {
        *slot = None;
    }
    Some(v)
}

/// Faults that apply to one command.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct CmdFaults {
    stuck: bool,
    delay_ms: Option<u64>,
    bad_length: bool,
    rc: Option<u16>,
    no_irq: bool,
    after_reads: Option<(u32, Loss)>,
}

/// A command waiting for its completion time (delay fault), or forever (stuck doorbell).
#[derive(Clone, Debug)]
struct Pending {
    due: Option<Duration>,
    cmd: MboxCmd,
    faults: CmdFaults,
}

/// What a background operation is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BgKind {
    /// The vendor sleep command: ends with the `bg-rc` setting.
    Sleep,
    /// A firmware command: the firmware model says how it ends.
    Firmware,
    /// Bind or Unbind vPPB: the fabric model says how it ends.
    Fabric,
}

/// The running background operation.
#[derive(Clone, Copy, Debug)]
struct BgOp {
    kind: BgKind,
    opcode: u16,
    start: Duration,
    duration: Duration,
    cap: Option<u8>,
    no_irq: bool,
}

impl BgOp {
    fn percent(&self, now: Duration) -> u8 {
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

/// A multi-part MMPT Send Message transfer watched by an `at-part` fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PartWatch {
    /// Parts whose doorbell was rung so far, this one included.
    parts: u32,
}

/// What a firmware command gets of the device.
struct FwEnv<'a> {
    now: Duration,
    bg_busy: bool,
    take: crate::firmware::TakeFault<'a>,
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

/// Names of the counters `get stat NAME` reports.
pub const STAT_NAMES: &[&str] = &[
    "commands",
    "doorbells",
    "doorbell-busy",
    "doorbell-not-ready",
    "no-attention",
    "doorbell-asleep",
    "cmd-write32",
    "bad-access",
    "irqs",
    "irqs-delivered",
    "irqs-dropped",
    "irqs-suppressed",
    "spurious-irqs",
    "bg-started",
    "bg-completed",
    "bg-aborted",
    "bg-busy",
    "aborts",
    "unsupported",
    "faults-applied",
    "resets",
    "fault-resets",
    "fault-removals",
    "short-logs",
    "mmpt-parts",
    "mmpt-messages",
    "mmpt-queued",
    "mmpt-inline",
    "mmpt-received",
    "mmpt-aborts",
    "mmpt-rx-aborts",
    "mmpt-refused",
    "fw-parts",
    "fw-images",
    "fw-refused",
    "fw-aborts",
    "fw-idle-drops",
    "fw-verify-failed",
    "fw-activations",
    "tunnels",
    "dead-tunnels",
    "events-logged",
    "events-dropped",
    "events-cleared",
    "event-irqs",
    "mctp-messages",
];

/// Counters, by the names of [`STAT_NAMES`].
#[derive(Clone, Debug, Default)]
struct Stats {
    values: Vec<u64>,
}

impl Stats {
    fn new() -> Self {
        Self {
            values: vec![0; STAT_NAMES.len()],
        }
    }

    fn add(&mut self, name: &str, n: u64) {
        if let Some(i) = STAT_NAMES.iter().position(|s| *s == name) {
            if let Some(v) = self.values.get_mut(i) {
                *v = v.saturating_add(n);
            }
        }
    }

    fn inc(&mut self, name: &str) {
        self.add(name, 1);
    }

    fn get(&self, name: &str) -> Option<u64> {
        let i = STAT_NAMES.iter().position(|s| *s == name)?;
        self.values.get(i).copied()
    }
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

/// One capability header of the capabilities array.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CapEntry {
    /// Vendor id (dword 3).
    pub vendor: u16,
    /// Capability id.
    pub id: u16,
    /// Version.
    pub version: u8,
    /// Offset from the start of BAR0.
    pub offset: u32,
    /// Length of the registers.
    pub len: u32,
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

fn dword(v: u64, off: usize) -> u32 {
    if off & 4 == 0 {
        v as u32
    } else {
        (v >> 32) as u32
    }
}

fn qword(lo: u32, hi: u32) -> u64 {
    u64::from(lo) | (u64::from(hi) << 32)
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

    /// The Mailbox Capabilities register as the function shows it now: the interrupt message
    /// number and the attention mechanism follow the knobs (`knobs.rs`).
    pub fn mbox_caps(&self) -> MboxCaps {
        self.cfg
            .mbox_caps()
            .with_irq_msgnum(self.mbox_vector() as u8)
            .with_attention(self.knobs.attention)
    }

    /// The MMPT Capabilities register as the function shows it now.
    pub fn mmpt_caps(&self) -> MmptCaps {
        self.cfg
            .mmpt_caps()
            .with_rx_vector(self.mmpt_vector() as u8)
    }

    /// The vector of the mailbox interrupts (doorbell, background completion).
    pub fn mbox_vector(&self) -> u16 {
        self.knobs.mbox_vector(self.cfg.msi)
    }

    /// The vector of the MMPT receive interrupt.
    pub fn mmpt_vector(&self) -> u16 {
        self.knobs.mmpt_vector(self.cfg.msi)
    }

    /// The host wrote the MSI Message Control register (`control`): the interrupt message
    /// numbers follow Multiple Message Enable (`knobs.rs`).
    pub fn set_msi_control(&mut self, control: u16) {
        if self.cfg.msi == 0 {
            return;
        }
        let before = self.knobs.msi_enabled;
        self.knobs.set_msi_control(control, self.cfg.msi);
        if self.knobs.msi_enabled != before {
            self.event(format!(
                "MSI: {} message(s) enabled; mailbox vector {}, MMPT vector {}",
                self.knobs.msi_enabled,
                self.mbox_vector(),
                self.mmpt_vector()
            ));
        }
    }

    /// Whether the function is at attention now (MMB attention mechanism advertised and
    /// "attention not needed" clear).
    pub fn at_attention(&self) -> bool {
        self.mbox_caps().attention() && !self.ctrl.attention_not_needed()
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

    // ---- register access ----

    fn bad_access(&mut self, what: &str, bar: u32, off: u64, len: usize) {
        self.stats.inc("bad-access");
        self.event(format!(
            "invalid {len}-byte {what} of BAR{bar} at {off:#x} ignored (only aligned 4- and 8-byte accesses)"
        ));
    }

    /// Reads `data.len()` bytes at `off` of BAR `bar`.
    pub fn bar_read(&mut self, now: Duration, bar: u32, off: u64, data: &mut [u8]) {
        if self.removed {
            data.iter_mut().for_each(|b| *b = 0xff);
            return;
        }
        self.tick(now);
        data.iter_mut().for_each(|b| *b = 0);
        match bar {
            0 => {
                let len = data.len();
                let Some(o) = self.bar0_offset(off, len) else {
                    self.bad_access("read", bar, off, len);
                    self.count_read(now);
                    return;
                };
                let v = self.reg64(now, o & !7);
                let bytes = if len == 8 {
                    v.to_le_bytes().to_vec()
                } else {
                    dword(v, o).to_le_bytes().to_vec()
                };
                data.copy_from_slice(&bytes);
                self.count_read(now);
            }
            2 if self.cfg.msix => {
                // The MSI-X table (QEMU emulates it; stored for completeness); the PBA reads
                // zero: QEMU keeps pending bits of masked vectors itself.
                for (i, b) in data.iter_mut().enumerate() {
                    let o = usize::try_from(off).unwrap_or(usize::MAX).saturating_add(i);
                    *b = self.msix_table.get(o).copied().unwrap_or(0);
                }
            }
            _ => {}
        }
    }

    /// Counts a BAR0 read for an armed `after-reads` loss; the read that reaches the count is
    /// served before the function goes.
    fn count_read(&mut self, now: Duration) {
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
    fn lose(&mut self, now: Duration, how: Loss, why: &str) {
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

    /// `off` as an index into BAR 0 for an access of `len` bytes, if the registers take such
    /// an access there: 4 or 8 bytes, naturally aligned, inside the BAR.
    fn bar0_offset(&self, off: u64, len: usize) -> Option<usize> {
        usize::try_from(off).ok().filter(|o| {
            (len == 4 || len == 8)
                && o % len == 0
                && o.saturating_add(len) as u64 <= self.cfg.bar0_size()
        })
    }

    /// Writes `data` at `off` of BAR `bar`.
    pub fn bar_write(&mut self, now: Duration, bar: u32, off: u64, data: &[u8]) {
        if self.removed {
            return;
        }
        self.tick(now);
        match bar {
            0 => {
                let len = data.len();
                let Some(o) = self.bar0_offset(off, len) else {
                    self.bad_access("write", bar, off, len);
                    return;
                };
                let mut b = [0u8; 8];
                if let Some(dst) = b.get_mut(..len) {
                    dst.copy_from_slice(data);
                }
                let v = u64::from_le_bytes(b);
                if len == 8 {
                    self.write64(now, o, v);
                } else {
                    self.write32(now, o, v as u32);
                }
            }
            2 if self.cfg.msix => {
                for (i, v) in data.iter().enumerate() {
                    let o = usize::try_from(off).unwrap_or(usize::MAX).saturating_add(i);
                    if let Some(b) = self.msix_table.get_mut(o) {
                        *b = *v;
                    }
                }
            }
            _ => {}
        }
        self.tick(now);
    }

    /// The capability headers of the capabilities array.
    pub fn caps(&self) -> Vec<CapEntry> {
        let mbox_len = (MBOX_PAYLOAD.saturating_add(self.payload_size)) as u32;
        let mmb = CapEntry {
            vendor: mcap::VENDOR_PCI_SIG,
            id: mcap::MMB,
            version: 1,
            offset: MBOX_REGS as u32,
            len: mbox_len,
        };
        let mmpt = CapEntry {
            vendor: mcap::VENDOR_PCI_SIG,
            id: mcap::MMPT,
            version: 1,
            offset: MMPT_REGS as u32,
            len: MMPT_REGS_SIZE as u32,
        };
        let mut caps = match self.cfg.personality {
            Personality::Switch => vec![
                CapEntry {
                    vendor: 0,
                    id: cxl_cap::DEVICE_STATUS,
                    version: 1,
                    offset: DEVICE_STATUS_REGS as u32,
                    len: 0x10,
                },
                CapEntry {
                    vendor: 0,
                    id: cxl_cap::PRIMARY_MAILBOX,
                    version: 1,
                    offset: MBOX_REGS as u32,
                    len: mbox_len,
                },
                CapEntry {
                    vendor: 0,
                    id: cxl_cap::MEMDEV_STATUS,
                    version: 1,
                    offset: MEMDEV_STATUS_REGS as u32,
                    len: 8,
                },
                mmb,
            ],
            Personality::Mmpt => vec![mmb],
        };
        // The MMPT registers, unless the knob hides them.
        if self.knobs.mmpt {
            caps.push(mmpt);
        }
        caps
    }

    fn ctrl_value(&self) -> MboxCtrl {
        self.ctrl
            .with_doorbell(!self.ready_latched || self.doorbell)
    }

    fn status_value(&self, now: Duration) -> MboxStatus {
        let caps = self.mbox_caps();
        self.status
            .with_background(self.bg_op.is_some())
            .with_ready(self.ready(now))
            .with_at_attention(caps.attention() && !self.ctrl.attention_not_needed())
    }

    fn rx_notify(&self) -> MmptRxNotify {
        match self.mmpt.head() {
            Some((ty, len)) => MmptRxNotify::default()
                .with_ready(true)
                .with_msg_type(ty)
                .with_msg_len(u32::try_from(len).unwrap_or(u32::MAX)),
            None => MmptRxNotify::default(),
        }
    }

    /// The 64-bit value at 8-aligned offset `o` of the capabilities array (below the first
    /// capability's registers).
    fn cap_array_reg(&self, o: usize) -> u64 {
        let caps = self.caps();
        let first = CAP_ARRAY_FIRST;
        let caps_end = first.saturating_add(caps.len().saturating_mul(CAP_HEADER_SIZE));
        if o == 0 {
            let kind = match self.cfg.personality {
                Personality::Switch => 2,
                Personality::Mmpt => 0,
            };
            return CapArrayHeader::default()
                .with_id(0)
                .with_version(1)
                .with_kind(kind)
                .with_count(caps.len() as u16)
                .0;
        }
        if (first..caps_end).contains(&o) {
            let i = (o - first) / CAP_HEADER_SIZE;
            let Some(c) = caps.get(i) else { return 0 };
            let at = (o - first) % CAP_HEADER_SIZE;
            let h = CapHeader::default().with_id(c.id).with_version(c.version).0;
            return if at == 0 {
                qword(h, c.offset)
            } else {
                qword(c.len, u32::from(c.vendor))
            };
        }
        0
    }

    /// The 64-bit value at 8-aligned offset `o` of BAR0.
    fn reg64(&self, now: Duration, o: usize) -> u64 {
        if o < DEVICE_STATUS_REGS {
            return self.cap_array_reg(o);
        }
        let switch = self.cfg.personality == Personality::Switch;
        if switch && o == DEVICE_STATUS_REGS {
            return u64::from(self.ev.status().0);
        }
        if switch && o == MEMDEV_STATUS_REGS {
            return MemdevStatus::default().with_mbox_ready(self.ready(now)).0;
        }
        if o == MMPT_REGS {
            return qword(self.mmpt_caps().0, self.mmpt_ctrl.0);
        }
        if o == MMPT_REGS + MmptRxNotify::OFFSET {
            return self.rx_notify().0;
        }
        let Some(m) = o.checked_sub(MBOX_REGS) else {
            return 0;
        };
        match m {
            0 => qword(self.mbox_caps().0, self.ctrl_value().0),
            MboxCmd::OFFSET => self.cmd.0,
            MboxStatus::OFFSET => self.status_value(now).0,
            MboxBgStatus::OFFSET if switch => self.bg.0,
            _ => {
                let Some(p) = m.checked_sub(MBOX_PAYLOAD) else {
                    return 0;
                };
                let mut b = [0u8; 8];
                if let Some(src) = self.payload.get(p..p.saturating_add(8)) {
                    b.copy_from_slice(src);
                }
                u64::from_le_bytes(b)
            }
        }
    }

    fn write64(&mut self, now: Duration, o: usize, v: u64) {
        if o == MBOX_REGS + MboxCmd::OFFSET {
            self.cmd = MboxCmd(v);
            return;
        }
        if let Some(p) = o
            .checked_sub(MBOX_REGS + MBOX_PAYLOAD)
            .filter(|p| *p < self.payload_size)
        {
            if let Some(dst) = self.payload.get_mut(p..p.saturating_add(8)) {
                dst.copy_from_slice(&v.to_le_bytes());
            }
            return;
        }
        self.write32(now, o, v as u32);
        self.write32(now, o.saturating_add(4), (v >> 32) as u32);
    }

    fn write32(&mut self, now: Duration, o: usize, v: u32) {
        if o == MMPT_REGS + MmptCtrl::OFFSET {
            self.mmpt_ctrl = MmptCtrl(v & 1);
            return;
        }
        let Some(m) = o.checked_sub(MBOX_REGS) else {
            return;
        };
        match m {
            MboxCtrl::OFFSET => self.write_ctrl(now, MboxCtrl(v)),
            8 | 12 => {
                self.stats.inc("cmd-write32");
                self.event(format!(
                    "32-bit write of {v:#010x} to the Command register at {o:#x} ignored (64-bit only)"
                ));
            }
            _ => {
                if let Some(p) = m
                    .checked_sub(MBOX_PAYLOAD)
                    .filter(|p| *p < self.payload_size)
                {
                    if let Some(dst) = self.payload.get_mut(p..p.saturating_add(4)) {
                        dst.copy_from_slice(&v.to_le_bytes());
                    }
                }
            }
        }
    }

    fn write_ctrl(&mut self, now: Duration, v: MboxCtrl) {
        // Asleep: the write found "attention not needed" set, so no handshake came first.
        let asleep = self.mbox_caps().attention() && self.ctrl.attention_not_needed();
        self.ctrl = MboxCtrl(v.0 & 0xe);
        if !v.doorbell() {
            return;
        }
        if !self.ready_latched {
            self.stats.inc("doorbell-not-ready");
            self.event("doorbell before the mailbox is ready: ignored".into());
            return;
        }
        if self.doorbell {
            self.stats.inc("doorbell-busy");
            self.event("doorbell while a command is in progress: ignored".into());
            return;
        }
        if asleep {
            self.stats.inc("doorbell-asleep");
            self.event(
                "doorbell rung without the attention handshake (attention not needed was set)"
                    .into(),
            );
        }
        self.submit(now);
    }

    // ---- commands ----

    fn submit(&mut self, now: Duration) {
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

    /// Counts the parts of a multi-part MMPT Send Message transfer for an armed `at-part`
    /// fault; at the armed part the function resets or disappears instead of completing the
    /// part (returns true). Parts are counted by doorbell from the Initiate part (1); a resent
    /// part counts again; a transfer that ends (Finish, Full, Abort) before the armed part uses
    /// up a `once` fault.
    fn part_loss(&mut self, now: Duration) -> bool {
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
    fn complete(&mut self, now: Duration, p: Pending) {
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

    fn message_arrived(&mut self, suppressed: bool) {
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

    fn sync_mmpt_stats(&mut self, s: crate::mmpt::MmptStats) {
        for (name, v) in [
            ("mmpt-parts", s.parts),
            ("mmpt-messages", s.messages),
            ("mmpt-queued", s.queued),
            ("mmpt-inline", s.inline),
            ("mmpt-received", s.received),
            ("mmpt-aborts", s.aborts),
            ("mmpt-rx-aborts", s.rx_aborts),
            ("mmpt-refused", s.refused),
        ] {
            if let Some(i) = STAT_NAMES.iter().position(|n| *n == name) {
                if let Some(slot) = self.stats.values.get_mut(i) {
                    *slot = v;
                }
            }
        }
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
        let s = self.fw.stats;
        for (name, v) in [
            ("fw-parts", s.parts),
            ("fw-images", s.images),
            ("fw-refused", s.refused),
            ("fw-aborts", s.aborts),
            ("fw-idle-drops", s.idle_drops),
            ("fw-verify-failed", s.verify_failed),
            ("fw-activations", s.activations),
        ] {
            if let Some(i) = STAT_NAMES.iter().position(|n| *n == name) {
                if let Some(slot) = self.stats.values.get_mut(i) {
                    *slot = v;
                }
            }
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

    fn start_bg(&mut self, now: Duration, kind: BgKind, op: u16, d: Duration, no_irq: bool) {
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

    fn finish_bg(&mut self, rc: u16, how: &str) {
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

    fn sync_event_stats(&mut self) {
        let s = self.ev.stats;
        for (name, v) in [
            ("events-logged", s.logged),
            ("events-dropped", s.dropped),
            ("events-cleared", s.cleared),
        ] {
            if let Some(i) = STAT_NAMES.iter().position(|n| *n == name) {
                if let Some(slot) = self.stats.values.get_mut(i) {
                    *slot = v;
                }
            }
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

    /// Counter `name`, see [`STAT_NAMES`].
    pub fn stat(&self, name: &str) -> Option<u64> {
        self.stats.get(name)
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
#[path = "device_tests.rs"]
mod tests;
