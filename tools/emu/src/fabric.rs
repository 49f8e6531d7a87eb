// SPDX-License-Identifier: GPL-2.0

//! The switch personality's fabric: physical ports, virtual CXL switches (VCSs) with vPPBs,
//! and the devices behind the downstream ports, for the FM-API commands of CXL r3.1 §7.6.7:
//! Identify Switch Device (5100h), Get Physical Port State (5101h), Get Virtual CXL Switch Info
//! (5200h), Bind vPPB (5201h), Unbind vPPB (5202h), Tunnel Management Command (5300h), and,
//! through a tunnel to a multi-logical device, Get LD Info (5400h), Get LD Allocations (5401h)
//! and Set LD Allocations (5402h). Payload layouts are those of `swcci_proto::payload::{switch, tunnel, ld}`. Pure
//! logic; the register model in `device/` runs the background part of Bind and Unbind and
//! holds back tunnels to the dead port.
//!
//! The topology (fixed at start, see [`FabricConfig`]):
//! - Ports 0..N-1 (`--ports N`, default 4). Ports 0..V-1 are the upstream ports, one per VCS
//!   (`--vcs V`, default 1: VCS k's upstream port is port k); ports V..N-1 are downstream
//!   ports (DSPs).
//! - Each VCS has M vPPBs (`--vppbs M`, default 3). At start the vPPBs are bound to the DSPs in
//!   order (VCS 0 vPPB 0 to the first DSP, ...) as far as DSPs with a device go (an MLD's LD 0
//!   counts as the port's); the rest are unbound.
//! - Behind every DSP a type-3 single-logical device (SLD) answers tunnelled Identify
//!   (0001h): vendor 1B36h, device [`TYPE3_DEVICE_ID`], serial [`device_serial`] (distinct
//!   per port and per switch serial), component type 03h; and the Firmware Update command
//!   set with its own background operation: Get FW Info (0200h), Transfer FW (0201h),
//!   Activate FW (0202h), Background Operation Status (0002h), Request Abort Background
//!   Operation (0005h), on firmware of its own (`--fw-slots` slots, built-in revision
//!   `swcci-t3 1.0`; the rules are in `devfw.rs` and `firmware.rs`); other opcodes:
//!   Unsupported (03h). Except:
//!   - `--mld-port P --lds L`: a multi-logical device (device [`MLD_DEVICE_ID`], L LDs,
//!     1..=16, default 4, 1 GiB each in 256 MiB units) whose FM-owned LD answers Identify,
//!     Get LD Info, Get LD Allocations (at start range 1 = 4 units, range 2 = 0 for each LD:
//!     the whole memory allocated), Set LD Allocations (see below), the firmware commands
//!     above (built-in revision `swcci-mld 1.0`), and Tunnel Management
//!     Command to LD k (a tunnel inside the tunnel to port P, target = LD id), where LD k
//!     answers Identify with serial [`ld_serial`] and the firmware commands on the MLD's one
//!     firmware (`devfw.rs` says why and how).
//!   - `--dead-port P`: the device is there (link up) but never answers: a tunnel to P
//!     completes after `dead-port-ms` (control setting, default 1000) with return code
//!     Internal Error (04h) and no output, as a switch that gives up waiting does; with 0 the
//!     doorbell never clears (the driver times out; the control channel's `clear` or a reset
//!     ends the command).
//!   - `--empty-port P` (repeatable): no device, link down.
//!
//! Rules of the commands:
//! - Get Physical Port State: a port id of N or more, or more ports than fit the payload:
//!   Invalid Input (02h). Per port: an upstream port reads USP; a DSP bound (a vPPB bound to
//!   it or to one of its LDs) reads DSP, being bound / unbound reads bind / unbind in progress,
//!   otherwise disabled. Link: x8 at 32 GT/s, L0, 256B flit mode for a port with a device (x16
//!   for upstream ports); an empty port: width 0, speed 0, LTSSM detect, connected type none.
//!   Connected type: SLD 4, MLD 5 (supported LD count L), none 0.
//! - Get Virtual CXL Switch Info: a VCS id of V or more, or an output larger than the
//!   payload: Invalid Input. Each VCS lists its vPPBs from the start vPPB, at most the limit.
//! - Bind vPPB: VCS, vPPB or port out of range, an upstream port, a vPPB not unbound, a port
//!   without a device, an LD id for a single-logical device (anything but FFFFh) or no / an
//!   out-of-range LD id for the MLD, a port (or LD) already bound or being bound to another
//!   vPPB: Invalid Input. While a background operation runs: Busy (06h). Otherwise it
//!   completes in the background after `bind-ms` (default 20): 01h, then Background
//!   Operation Status; meanwhile the vPPB reads "in progress" and the port "bind in progress".
//! - Unbind vPPB: VCS or vPPB out of range, a vPPB not bound, an undefined option: Invalid
//!   Input; Busy as for Bind; completes in the background the same way.
//! - Request Abort Background Operation (0005h) stops a bind or unbind: the vPPB goes back to
//!   what it was. A function reset of the CCI does the same (bindings are switch state, they
//!   survive the reset of its mailbox).
//! - Set LD Allocations (an MLD's): an input shorter than its list: Invalid Payload Length
//!   (16h); no LD, or LDs the device does not have: Invalid Input (02h); allocations that,
//!   with the other LDs' as they are, exceed the memory: Resources Exhausted (1Dh), nothing
//!   changed (the rules of `swcci_proto::payload::ld::check_ld_allocations`). Otherwise the
//!   allocations are set and the output lists them as set.
//! - Tunnel Management Command: an input that does not parse, a target type other than 0, a
//!   message that is not a request, a port that is not a DSP or has no device: Invalid Input
//!   (outer return code). Otherwise the outer command succeeds and carries the device's
//!   response (inner return code). A tunnel to an LD of a device that is not the MLD, or to
//!   an LD id of L or more: the inner return code is Invalid Input.

use crate::common::Mode;
use crate::devfw::{DeviceFw, Via};
use crate::events::{fw_activation_record, EventLogs, EventSettings, Notice, FW_ACTIVATION_UUID};
use crate::firmware::{FwFault, FwSettings, MLD_REVISION, TYPE3_REVISION};
use serde_json::{json, Value};
use std::time::Duration;
use swcci_proto::opcode;
use swcci_proto::payload::identify::{ComponentType, Identify, IDENTIFY_LEN};
use swcci_proto::payload::ld::{
    check_ld_allocations, decode_ld_allocations_request, encode_ld_allocations,
    encode_set_ld_allocations, Granularity, LdAllocation, LdInfo, LdRule, SetLdAllocations,
    LD_ALLOCATIONS_HEADER, LD_ALLOCATION_ENTRY, LD_INFO_LEN, SET_LD_ALLOCATIONS_HEADER,
};
use swcci_proto::payload::switch::{
    decode_port_state_request, decode_unbind_vppb_request, decode_vcs_info_request,
    encode_port_states, encode_vcs_infos, BindVppb, BindingStatus, ConnectedMode, ConnectedType,
    IdentifySwitch, Ltssm, PortConfigState, PortInfo, VcsBlock, VcsState, VppbInfo,
    IDENTIFY_SWITCH_LEN, LD_NONE, PORT_INFO_LEN, PORT_STATE_HEADER,
};
use swcci_proto::payload::tunnel::{
    encode_response, Category, TunnelRequest, CCI_HEADER_LEN, TARGET_PORT_OR_LD, TUNNEL_HEADER_LEN,
};
use swcci_proto::rc::ReturnCode;

/// Get LD Info.
pub const OP_GET_LD_INFO: u16 = 0x5400;
/// Get LD Allocations.
pub const OP_GET_LD_ALLOCATIONS: u16 = 0x5401;
/// Set LD Allocations.
pub const OP_SET_LD_ALLOCATIONS: u16 = 0x5402;
/// PCI vendor id of the devices behind the ports.
pub const DEVICE_VENDOR: u16 = 0x1b36;
/// Device id of a type-3 single-logical device behind a port.
pub const TYPE3_DEVICE_ID: u16 = 0x5c03;
/// Device id of the multi-logical device.
pub const MLD_DEVICE_ID: u16 = 0x5c04;
/// Memory of each LD of the MLD, in 256 MiB units.
pub const LD_UNITS: u64 = 4;
/// Most ports, VCSs per switch, vPPBs per VCS.
pub const MAX_PORTS: u8 = 64;
/// Most LDs of the MLD.
pub const MAX_LDS: u8 = 16;
/// Mailbox payload size (log2) the devices behind ports report in Identify.
const DEVICE_PAYLOAD_LOG2: u8 = 11;

/// Serial number of the device behind `port` of the switch with serial `switch_serial`.
pub const fn device_serial(switch_serial: u64, port: u8) -> u64 {
    switch_serial.wrapping_add((port as u64 + 1) << 32)
}

/// Serial number LD `ld` of the MLD behind `port` reports.
pub const fn ld_serial(switch_serial: u64, port: u8, ld: u8) -> u64 {
    device_serial(switch_serial, port).wrapping_add((ld as u64 + 1) << 48)
}

/// The fabric, fixed at start-up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FabricConfig {
    /// Physical ports.
    pub ports: u8,
    /// VCSs (and upstream ports).
    pub vcs: u8,
    /// vPPBs per VCS.
    pub vppbs: u8,
    /// Port of the multi-logical device.
    pub mld_port: Option<u8>,
    /// Its LDs.
    pub lds: u8,
    /// Port whose device never answers.
    pub dead_port: Option<u8>,
    /// Ports without a device.
    pub empty_ports: Vec<u8>,
}

impl Default for FabricConfig {
    fn default() -> Self {
        Self {
            ports: 4,
            vcs: 1,
            vppbs: 3,
            mld_port: None,
            lds: 4,
            dead_port: None,
            empty_ports: Vec::new(),
        }
    }
}

impl FabricConfig {
    /// Checks the limits and that the special ports are distinct downstream ports.
    pub fn validate(&self) -> Result<(), String> {
        if !(2..=MAX_PORTS).contains(&self.ports) {
            return Err(format!("--ports: {} ports (2..={MAX_PORTS})", self.ports));
        }
        if self.vcs == 0 || self.vcs >= self.ports {
            return Err(format!(
                "--vcs: {} VCSs for {} ports (1..={}: one upstream port each, one downstream port at least)",
                self.vcs,
                self.ports,
                self.ports - 1
            ));
        }
        if !(1..=MAX_PORTS).contains(&self.vppbs) {
            return Err(format!("--vppbs: {} vPPBs (1..={MAX_PORTS})", self.vppbs));
        }
        if !(1..=MAX_LDS).contains(&self.lds) {
            return Err(format!("--lds: {} LDs (1..={MAX_LDS})", self.lds));
        }
        let mut seen = Vec::new();
        let special = self
            .mld_port
            .map(|p| ("--mld-port", p))
            .into_iter()
            .chain(self.dead_port.map(|p| ("--dead-port", p)))
            .chain(self.empty_ports.iter().map(|p| ("--empty-port", *p)));
        for (what, p) in special {
            if p < self.vcs || p >= self.ports {
                return Err(format!(
                    "{what}: port {p} is not a downstream port ({}..={})",
                    self.vcs,
                    self.ports - 1
                ));
            }
            if seen.contains(&p) {
                return Err(format!("{what}: port {p} is given twice"));
            }
            seen.push(p);
        }
        Ok(())
    }

    /// What is behind `port`.
    pub fn device(&self, port: u8) -> Dev {
        if port < self.vcs || port >= self.ports || self.empty_ports.contains(&port) {
            Dev::None
        } else if self.mld_port == Some(port) {
            Dev::Mld(self.lds)
        } else if self.dead_port == Some(port) {
            Dev::Dead
        } else {
            Dev::Sld
        }
    }
}

/// What is behind a port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dev {
    /// Nothing (or an upstream port).
    None,
    /// A type-3 single-logical device.
    Sld,
    /// The multi-logical device with this many LDs.
    Mld(u8),
    /// A device that never answers.
    Dead,
}

/// A vPPB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Vppb {
    Unbound,
    Bound { port: u8, ld: Option<u8> },
    Binding { port: u8, ld: Option<u8> },
    Unbinding { port: u8, ld: Option<u8> },
}

impl Vppb {
    fn target(self) -> Option<(u8, Option<u8>)> {
        match self {
            Self::Unbound => None,
            Self::Bound { port, ld }
            | Self::Binding { port, ld }
            | Self::Unbinding { port, ld } => Some((port, ld)),
        }
    }

    fn info(self) -> VppbInfo {
        let (status, port, ld) = match self {
            Self::Unbound => (BindingStatus::Unbound, 0, 0),
            Self::Bound { port, ld: None } => (BindingStatus::BoundPort, port, 0),
            Self::Bound { port, ld: Some(l) } => (BindingStatus::BoundLd, port, l),
            Self::Binding { port, ld } | Self::Unbinding { port, ld } => {
                (BindingStatus::InProgress, port, ld.unwrap_or(0))
            }
        };
        VppbInfo { status, port, ld }
    }
}

/// Timing settings of the control channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FabricSettings {
    /// Time a Bind or Unbind vPPB takes, ms.
    pub bind_ms: u64,
    /// Time after which a tunnel to the dead port fails with 04h, ms (0: never completes).
    pub dead_port_ms: u64,
}

impl Default for FabricSettings {
    fn default() -> Self {
        Self {
            bind_ms: 20,
            dead_port_ms: 1000,
        }
    }
}

/// How a command ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FabricOutcome {
    /// Completes now with this return code and output.
    Done(ReturnCode, Vec<u8>),
    /// Starts a background operation of this duration (return code 01h).
    Background(Duration),
}

impl FabricOutcome {
    fn rc(rc: ReturnCode) -> Self {
        Self::Done(rc, Vec::new())
    }
}

/// The fabric state.
#[derive(Clone, Debug)]
pub struct Fabric {
    cfg: FabricConfig,
    switch_serial: u64,
    vcss: Vec<Vec<Vppb>>,
    /// The vPPB a running bind or unbind works on.
    pending: Option<(usize, usize)>,
    /// Settings.
    pub settings: FabricSettings,
    /// The firmware of the device behind each port (indexed by port; `None`: no device, an
    /// upstream port, or the dead device).
    fw: Vec<Option<DeviceFw>>,
    /// The allocation of each LD of the multi-logical device (256 MiB units).
    ld_alloc: Vec<LdAllocation>,
    /// The event logs of the device behind each port that has firmware (`events.rs`), and
    /// how many firmware activations of it were logged.
    dev_events: Vec<Option<(EventLogs, u64)>>,
    /// Ports whose link is down (`link P down`), by port.
    link_down: Vec<bool>,
    /// Binding changes and link changes for the switch CCI's event log.
    notices: Vec<Notice>,
    events: Vec<String>,
}

/// Encodes into a buffer of `max` bytes with a proto encoder; an encoder error (a bug, or an
/// output larger than planned) is Internal Error.
fn encoded(
    max: usize,
    encode: impl FnOnce(&mut [u8]) -> Result<usize, swcci_proto::wire::EncodeError>,
) -> FabricOutcome {
    let mut b = vec![0u8; max];
    match encode(&mut b) {
        Ok(n) => {
            b.truncate(n);
            FabricOutcome::Done(ReturnCode::Success, b)
        }
        Err(_) => FabricOutcome::rc(ReturnCode::InternalError),
    }
}

/// The bitmask of ids 0..n.
fn mask(n: u8) -> [u8; 32] {
    let mut m = [0u8; 32];
    for i in 0..n {
        if let Some(b) = m.get_mut(usize::from(i / 8)) {
            *b |= 1 << (i % 8);
        }
    }
    m
}

fn identify(device: u16, serial: u64) -> Vec<u8> {
    let id = Identify {
        vendor_id: DEVICE_VENDOR,
        device_id: device,
        subsys_vendor_id: DEVICE_VENDOR,
        subsys_id: device,
        serial,
        max_msg_size_log2: DEVICE_PAYLOAD_LOG2,
        component_type: ComponentType::Type3,
    };
    let mut b = vec![0u8; IDENTIFY_LEN];
    match id.encode(&mut b) {
        Ok(n) => b.truncate(n),
        Err(_) => b.clear(),
    }
    b
}

impl Fabric {
    /// The fabric of `cfg` (validated) for the switch with serial `switch_serial`, with the
    /// initial bindings; each device behind a port has `fw_slots` firmware slots (2..=4).
    pub fn new(cfg: FabricConfig, switch_serial: u64, fw_slots: u8) -> Self {
        let mut vcss = vec![vec![Vppb::Unbound; usize::from(cfg.vppbs)]; usize::from(cfg.vcs)];
        let mut dsps = (cfg.vcs..cfg.ports).filter(|p| cfg.device(*p) != Dev::None);
        for v in vcss.iter_mut().flat_map(|vcs| vcs.iter_mut()) {
            let Some(port) = dsps.next() else { break };
            let ld = matches!(cfg.device(port), Dev::Mld(_)).then_some(0);
            *v = Vppb::Bound { port, ld };
        }
        let fw = (0..cfg.ports)
            .map(|p| match cfg.device(p) {
                Dev::Sld => Some(DeviceFw::new(fw_slots, TYPE3_REVISION)),
                Dev::Mld(_) => Some(DeviceFw::new(fw_slots, MLD_REVISION)),
                Dev::None | Dev::Dead => None,
            })
            .collect::<Vec<Option<DeviceFw>>>();
        let dev_events = fw
            .iter()
            .map(|f| f.as_ref().map(|_| (EventLogs::default(), 0)))
            .collect();
        let lds = match cfg.mld_port.map(|p| cfg.device(p)) {
            Some(Dev::Mld(n)) => n,
            _ => 0,
        };
        let ld_alloc = vec![
            LdAllocation {
                range1: LD_UNITS,
                range2: 0,
            };
            usize::from(lds)
        ];
        let link_down = vec![false; usize::from(cfg.ports)];
        Self {
            cfg,
            switch_serial,
            vcss,
            pending: None,
            settings: FabricSettings::default(),
            fw,
            ld_alloc,
            dev_events,
            link_down,
            notices: Vec::new(),
            events: Vec::new(),
        }
    }

    /// The firmware of the device behind `port`, if it has one (a type-3 device or the MLD).
    pub fn device_fw(&self, port: u8) -> Option<&DeviceFw> {
        self.fw.get(usize::from(port)).and_then(Option::as_ref)
    }

    /// The ports whose devices have firmware, ascending.
    pub fn fw_ports(&self) -> Vec<u8> {
        (0..self.cfg.ports)
            .filter(|p| self.device_fw(*p).is_some())
            .collect()
    }

    fn device_fw_mut(&mut self, port: u8) -> Option<&mut DeviceFw> {
        self.fw.get_mut(usize::from(port)).and_then(Option::as_mut)
    }

    /// Arms firmware fault `f` on the device behind `port`. Error: no device with firmware
    /// there.
    pub fn arm_fw(&mut self, port: u8, f: FwFault, mode: Mode) -> Result<(), String> {
        let d = self
            .device_fw_mut(port)
            .ok_or_else(|| format!("port {port}: no device with firmware"))?;
        d.arm(f, mode);
        Ok(())
    }

    /// Disarms the firmware faults of every device.
    pub fn clear_fw_faults(&mut self) {
        for d in self.fw.iter_mut().flatten() {
            d.clear_faults();
        }
    }

    /// Armed device faults as `name@portP=mode`, by port.
    pub fn fw_faults_text(&self) -> Vec<String> {
        let mut v = Vec::new();
        for p in self.fw_ports() {
            if let Some(d) = self.device_fw(p) {
                for (name, mode) in d.faults() {
                    v.push(format!("{name}@port{p}={}", mode.name()));
                }
            }
        }
        v
    }

    /// Gives every device's firmware the settings `s` (the switch's: they apply to all).
    pub fn set_fw_settings(&mut self, s: FwSettings) {
        for d in self.fw.iter_mut().flatten() {
            d.fw.settings = s;
        }
    }

    /// A cold reset of the device behind `port` (`devfw.rs`). Error: no device with firmware
    /// there.
    pub fn reset_device(&mut self, port: u8) -> Result<(), String> {
        let d = self
            .device_fw_mut(port)
            .ok_or_else(|| format!("port {port}: no device with firmware"))?;
        d.reset();
        self.drain_fw_events();
        Ok(())
    }

    /// Advances the devices' background operations and idle transfers.
    pub fn tick(&mut self, now: Duration) {
        for (e, _) in self.dev_events.iter_mut().flatten() {
            e.tick(now);
        }
        for d in self.fw.iter_mut().flatten() {
            d.tick(now);
        }
        self.drain_fw_events();
    }

    /// Logs the devices' firmware events, and a Firmware Activation record in the event log
    /// of each device whose firmware was activated since the last call.
    fn drain_fw_events(&mut self) {
        for (p, (d, ev)) in self.fw.iter_mut().zip(&mut self.dev_events).enumerate() {
            let Some(d) = d else { continue };
            for e in d.take_events() {
                self.events.push(format!("port {p} device: {e}"));
            }
            let Some((logs, seen)) = ev else { continue };
            let activations = d.fw.stats.activations;
            while *seen < activations {
                *seen = seen.saturating_add(1);
                let slot = d.fw.active();
                let rev = d.fw.slot(slot).map(|v| v.rev).unwrap_or_default();
                let data = fw_activation_record(slot, &rev);
                logs.add(
                    swcci_proto::payload::events::EventLog::Informational,
                    FW_ACTIVATION_UUID,
                    &data,
                );
                self.events.push(format!(
                    "port {p} device: firmware activation record logged (slot {slot})"
                ));
            }
        }
    }

    /// The event logs of the device behind `port`, if it has any.
    pub fn device_events(&self, port: u8) -> Option<&EventLogs> {
        self.dev_events
            .get(usize::from(port))
            .and_then(Option::as_ref)
            .map(|(e, _)| e)
    }

    /// Gives every device's event logs the settings `s`.
    pub fn set_event_settings(&mut self, s: EventSettings) {
        for (e, _) in self.dev_events.iter_mut().flatten() {
            e.set_settings(s);
        }
    }

    /// Takes the binding and link changes since the last call (for the switch CCI's log).
    pub fn take_notices(&mut self) -> Vec<Notice> {
        std::mem::take(&mut self.notices)
    }

    /// Whether the link of `port` is down: taken down with [`Self::set_link`], or no device.
    pub fn link_is_down(&self, port: u8) -> bool {
        self.link_down
            .get(usize::from(port))
            .copied()
            .unwrap_or(true)
            || (port >= self.cfg.vcs && self.cfg.device(port) == Dev::None)
    }

    /// Takes the link of downstream port `port` down or brings it up (a cable pulled and put
    /// back): Get Physical Port State shows it (LTSSM detect, no width or speed, no connected
    /// device), tunnels and binds to the port are refused while it is down, bindings stay. A
    /// change logs a Physical Switch Event Record (`events.rs`). Error: not a downstream port
    /// with a device.
    pub fn set_link(&mut self, port: u8, up: bool) -> Result<(), String> {
        if port < self.cfg.vcs || self.cfg.device(port) == Dev::None {
            return Err(format!("port {port}: not a downstream port with a device"));
        }
        let Some(down) = self.link_down.get_mut(usize::from(port)) else {
            return Err(format!("port {port}: no such port"));
        };
        if *down != up {
            return Ok(());
        }
        *down = !up;
        self.events.push(format!(
            "port {port}: link {}",
            if up { "up" } else { "down" }
        ));
        let info = self.port_info(port);
        self.notices.push(Notice::Link { port: info, up });
        Ok(())
    }

    /// A firmware or background command reaching the device behind `port` through `via`;
    /// `None` for other opcodes (or no firmware there).
    fn fw_exec(
        &mut self,
        now: Duration,
        port: u8,
        via: Via,
        op: u16,
        input: &[u8],
    ) -> Option<(ReturnCode, Vec<u8>)> {
        let r = self.device_fw_mut(port)?.exec(now, via, op, input);
        self.drain_fw_events();
        r
    }

    /// The configuration.
    pub fn config(&self) -> &FabricConfig {
        &self.cfg
    }

    /// Takes the notable events since the last call.
    pub fn take_events(&mut self) -> Vec<String> {
        std::mem::take(&mut self.events)
    }

    fn all_vppbs(&self) -> impl Iterator<Item = Vppb> + '_ {
        self.vcss.iter().flatten().copied()
    }

    /// Number of bound vPPBs.
    pub fn bound_vppbs(&self) -> usize {
        self.all_vppbs()
            .filter(|v| matches!(v, Vppb::Bound { .. }))
            .count()
    }

    /// Identify Switch Device (5100h).
    pub fn identify_switch(&self) -> FabricOutcome {
        let total = u16::from(self.cfg.vcs).saturating_mul(u16::from(self.cfg.vppbs));
        let id = IdentifySwitch {
            ingress_port: 0,
            num_physical_ports: self.cfg.ports,
            num_vcs: self.cfg.vcs,
            active_ports: mask(self.cfg.ports),
            active_vcs: mask(self.cfg.vcs),
            total_vppbs: total,
            bound_vppbs: u16::try_from(self.bound_vppbs()).unwrap_or(u16::MAX),
            hdm_decoders: 4,
        };
        encoded(IDENTIFY_SWITCH_LEN, |b| id.encode(b))
    }

    /// The configuration state of `port`.
    pub fn port_config_state(&self, port: u8) -> PortConfigState {
        if port >= self.cfg.ports {
            return PortConfigState::InvalidPortId;
        }
        if port < self.cfg.vcs {
            return PortConfigState::Upstream;
        }
        let mut state = PortConfigState::Disabled;
        for v in self.all_vppbs() {
            match v {
                Vppb::Binding { port: p, .. } if p == port => {
                    return PortConfigState::BindInProgress
                }
                Vppb::Unbinding { port: p, .. } if p == port => {
                    return PortConfigState::UnbindInProgress
                }
                Vppb::Bound { port: p, .. } if p == port => state = PortConfigState::Downstream,
                _ => {}
            }
        }
        state
    }

    /// The port information block of `port` (< number of ports).
    pub fn port_info(&self, port: u8) -> PortInfo {
        let upstream = port < self.cfg.vcs;
        let dev = self.cfg.device(port);
        let linked = upstream || !self.link_is_down(port);
        let (connected_type, lds) = match dev {
            _ if !linked => (ConnectedType::None, 0),
            Dev::None => (ConnectedType::None, 0),
            Dev::Sld | Dev::Dead => (ConnectedType::Type3Sld, 0),
            Dev::Mld(n) => (ConnectedType::Type3Mld, n),
        };
        let width = if upstream { 16 } else { 8 };
        PortInfo {
            port_id: port,
            config_state: self.port_config_state(port),
            connected_mode: if linked {
                ConnectedMode::Flit256
            } else {
                ConnectedMode::NotCxl
            },
            connected_type,
            // 68B flit and VH, 256B flit.
            supported_cxl_modes: 0b0110,
            max_link_width: width,
            negotiated_link_width: if linked { width } else { 0 },
            // 2.5 to 32 GT/s.
            supported_speeds: 0b1_1111,
            max_link_speed: 5,
            current_link_speed: if linked { 5 } else { 0 },
            ltssm: if linked { Ltssm::L0 } else { Ltssm::Detect },
            first_lane: 0,
            link_state: 0,
            supported_ld_count: lds,
        }
    }

    /// Get Physical Port State (5101h).
    pub fn port_state(&self, input: &[u8], payload_size: usize) -> FabricOutcome {
        let Ok(ids) = decode_port_state_request(input) else {
            return FabricOutcome::rc(ReturnCode::InvalidInput);
        };
        let size = PORT_STATE_HEADER.saturating_add(ids.len().saturating_mul(PORT_INFO_LEN));
        if ids.iter().any(|p| *p >= self.cfg.ports) || size > payload_size {
            return FabricOutcome::rc(ReturnCode::InvalidInput);
        }
        let infos: Vec<PortInfo> = ids.iter().map(|p| self.port_info(*p)).collect();
        encoded(size, |b| encode_port_states(b, &infos))
    }

    /// Get Virtual CXL Switch Info (5200h).
    pub fn vcs_info(&self, input: &[u8], payload_size: usize) -> FabricOutcome {
        let Ok((start, limit, ids)) = decode_vcs_info_request(input) else {
            return FabricOutcome::rc(ReturnCode::InvalidInput);
        };
        let mut lists = Vec::new();
        for &id in ids {
            let Some(vcs) = self.vcss.get(usize::from(id)) else {
                return FabricOutcome::rc(ReturnCode::InvalidInput);
            };
            let infos: Vec<VppbInfo> = vcs
                .iter()
                .skip(usize::from(start))
                .take(usize::from(limit))
                .map(|v| v.info())
                .collect();
            lists.push((id, infos));
        }
        let blocks: Vec<VcsBlock<'_>> = lists
            .iter()
            .map(|(id, infos)| VcsBlock {
                vcs_id: *id,
                state: VcsState::Enabled,
                usp_id: *id,
                num_vppbs: self.cfg.vppbs,
                vppbs: infos,
            })
            .collect();
        let size = 4 + lists.iter().map(|(_, v)| 4 + 4 * v.len()).sum::<usize>();
        if size > payload_size {
            return FabricOutcome::rc(ReturnCode::InvalidInput);
        }
        encoded(size, |b| encode_vcs_infos(b, &blocks))
    }

    fn vppb_mut(&mut self, vcs: u8, vppb: u8) -> Option<&mut Vppb> {
        self.vcss
            .get_mut(usize::from(vcs))?
            .get_mut(usize::from(vppb))
    }

    fn refuse(&mut self, what: &str, why: String) -> FabricOutcome {
        self.events.push(format!("{what} refused: {why}"));
        FabricOutcome::rc(ReturnCode::InvalidInput)
    }

    /// Bind vPPB (5201h). `bg_busy`: a background operation is running.
    pub fn bind(&mut self, input: &[u8], bg_busy: bool) -> FabricOutcome {
        const WHAT: &str = "Bind vPPB";
        let Ok(b) = BindVppb::decode(input) else {
            return FabricOutcome::rc(ReturnCode::InvalidPayloadLength);
        };
        if bg_busy {
            return FabricOutcome::rc(ReturnCode::Busy);
        }
        let Some(&v) = self
            .vcss
            .get(usize::from(b.vcs))
            .and_then(|vcs| vcs.get(usize::from(b.vppb)))
        else {
            return self.refuse(WHAT, format!("no vPPB {} in VCS {}", b.vppb, b.vcs));
        };
        if v != Vppb::Unbound {
            return self.refuse(
                WHAT,
                format!("VCS {} vPPB {} is not unbound", b.vcs, b.vppb),
            );
        }
        let ld = match (self.cfg.device(b.port), b.ld) {
            _ if b.port < self.cfg.vcs || b.port >= self.cfg.ports => {
                return self.refuse(WHAT, format!("port {} is not a downstream port", b.port));
            }
            (Dev::None, _) => {
                return self.refuse(WHAT, format!("no device behind port {}", b.port));
            }
            _ if self.link_is_down(b.port) => {
                return self.refuse(WHAT, format!("the link of port {} is down", b.port));
            }
            (Dev::Sld | Dev::Dead, LD_NONE) => None,
            (Dev::Mld(n), ld) if ld < u16::from(n) => u8::try_from(ld).ok(),
            (_, ld) => {
                return self.refuse(WHAT, format!("LD {ld:#06x} of port {}", b.port));
            }
        };
        let taken = self
            .all_vppbs()
            .filter_map(Vppb::target)
            .any(|(p, l)| p == b.port && (l.is_none() || ld.is_none() || l == ld));
        if taken {
            return self.refuse(
                WHAT,
                format!("port {} (LD {ld:?}) is bound already", b.port),
            );
        }
        if let Some(slot) = self.vppb_mut(b.vcs, b.vppb) {
            *slot = Vppb::Binding { port: b.port, ld };
        }
        self.pending = Some((usize::from(b.vcs), usize::from(b.vppb)));
        self.events.push(format!(
            "binding VCS {} vPPB {} to port {}{}",
            b.vcs,
            b.vppb,
            b.port,
            ld.map_or(String::new(), |l| format!(" LD {l}"))
        ));
        FabricOutcome::Background(Duration::from_millis(self.settings.bind_ms))
    }

    /// Unbind vPPB (5202h). `bg_busy`: a background operation is running.
    pub fn unbind(&mut self, input: &[u8], bg_busy: bool) -> FabricOutcome {
        const WHAT: &str = "Unbind vPPB";
        if input.len() < 3 {
            return FabricOutcome::rc(ReturnCode::InvalidPayloadLength);
        }
        let Ok((vcs, vppb, _option)) = decode_unbind_vppb_request(input) else {
            return self.refuse(WHAT, "undefined unbind option".into());
        };
        if bg_busy {
            return FabricOutcome::rc(ReturnCode::Busy);
        }
        let Some(v) = self.vppb_mut(vcs, vppb) else {
            return self.refuse(WHAT, format!("no vPPB {vppb} in VCS {vcs}"));
        };
        let Vppb::Bound { port, ld } = *v else {
            return self.refuse(WHAT, format!("VCS {vcs} vPPB {vppb} is not bound"));
        };
        *v = Vppb::Unbinding { port, ld };
        self.pending = Some((usize::from(vcs), usize::from(vppb)));
        self.events
            .push(format!("unbinding VCS {vcs} vPPB {vppb} from port {port}"));
        FabricOutcome::Background(Duration::from_millis(self.settings.bind_ms))
    }

    /// Whether a bind or unbind is running.
    pub fn running(&self) -> bool {
        self.pending.is_some()
    }

    /// The running bind or unbind ends: applies it.
    pub fn finish(&mut self) -> ReturnCode {
        self.settle(false)
    }

    /// The running bind or unbind is stopped (Request Abort, a reset): the vPPB goes back.
    pub fn abort_running(&mut self) {
        self.settle(true);
    }

    fn settle(&mut self, back: bool) -> ReturnCode {
        let Some((c, i)) = self.pending.take() else {
            return ReturnCode::InternalError;
        };
        let Some(v) = self.vcss.get_mut(c).and_then(|vcs| vcs.get_mut(i)) else {
            return ReturnCode::InternalError;
        };
        let (new, what) = match (*v, back) {
            (Vppb::Binding { port, ld }, false) => (Vppb::Bound { port, ld }, "bound"),
            (Vppb::Binding { .. }, true) => (Vppb::Unbound, "bind aborted"),
            (Vppb::Unbinding { .. }, false) => (Vppb::Unbound, "unbound"),
            (Vppb::Unbinding { port, ld }, true) => (Vppb::Bound { port, ld }, "unbind aborted"),
            (other, _) => (other, "unchanged"),
        };
        let changed = *v != new || !back;
        *v = new;
        self.events.push(format!("VCS {c} vPPB {i}: {what}"));
        if changed {
            self.notices.push(Notice::Binding {
                vcs: u8::try_from(c).unwrap_or(u8::MAX),
                vppb: u8::try_from(i).unwrap_or(u8::MAX),
                info: new.info(),
                failed: back,
            });
        }
        ReturnCode::Success
    }

    /// Whether `input` is a Tunnel Management Command to the dead port.
    pub fn is_dead_tunnel(&self, input: &[u8]) -> bool {
        self.cfg.dead_port.is_some()
            && TunnelRequest::decode(input)
                .is_ok_and(|t| Some(t.target) == self.cfg.dead_port && !self.link_is_down(t.target))
    }

    /// Tunnel Management Command (5300h) from the switch CCI, at time `now` (the devices'
    /// background operations run on it).
    pub fn tunnel(&mut self, now: Duration, input: &[u8], payload_size: usize) -> FabricOutcome {
        let t = match TunnelRequest::decode(input) {
            Ok(t)
                if t.target_type == TARGET_PORT_OR_LD && t.header.category == Category::Request =>
            {
                t
            }
            _ => {
                self.events
                    .push("Tunnel Management Command refused: malformed request".into());
                return FabricOutcome::rc(ReturnCode::InvalidInput);
            }
        };
        if t.target >= self.cfg.vcs
            && self.link_is_down(t.target)
            && self.cfg.device(t.target) != Dev::None
        {
            self.events.push(format!(
                "Tunnel Management Command refused: the link of port {} is down",
                t.target
            ));
            return FabricOutcome::rc(ReturnCode::InvalidInput);
        }
        let room = payload_size.saturating_sub(TUNNEL_HEADER_LEN + CCI_HEADER_LEN);
        let (rc, out) = match self.cfg.device(t.target) {
            Dev::None => {
                self.events.push(format!(
                    "Tunnel Management Command refused: no device behind port {}",
                    t.target
                ));
                return FabricOutcome::rc(ReturnCode::InvalidInput);
            }
            Dev::Sld => self.sld_exec(now, t.target, t.header.opcode, t.payload, room),
            Dev::Mld(n) => {
                self.mld_exec(now, t.target, n, t.header.opcode, t.payload, payload_size)
            }
            // Held back by the device before it gets here.
            Dev::Dead => return FabricOutcome::rc(ReturnCode::InternalError),
        };
        respond(&t, rc, &out, payload_size)
    }

    /// Get or Clear Event Records reaching the device behind `port` (its own logs; its output
    /// at most `room` bytes and the device's own payload); `None` for other opcodes.
    fn events_exec(
        &mut self,
        port: u8,
        op: u16,
        input: &[u8],
        room: usize,
    ) -> Option<(ReturnCode, Vec<u8>)> {
        let (logs, _) = self.dev_events.get_mut(usize::from(port))?.as_mut()?;
        let room = room.min(1 << DEVICE_PAYLOAD_LOG2);
        logs.exec(op, input, room)
    }

    fn sld_exec(
        &mut self,
        now: Duration,
        port: u8,
        op: u16,
        input: &[u8],
        room: usize,
    ) -> (ReturnCode, Vec<u8>) {
        if let Some(r) = self.fw_exec(now, port, Via::Device, op, input) {
            return r;
        }
        if let Some(r) = self.events_exec(port, op, input, room) {
            return r;
        }
        match op {
            opcode::IDENTIFY if input.is_empty() => (
                ReturnCode::Success,
                identify(TYPE3_DEVICE_ID, device_serial(self.switch_serial, port)),
            ),
            opcode::IDENTIFY => (ReturnCode::InvalidPayloadLength, Vec::new()),
            _ => (ReturnCode::Unsupported, Vec::new()),
        }
    }

    /// The MLD's FM-owned LD.
    fn mld_exec(
        &mut self,
        now: Duration,
        port: u8,
        lds: u8,
        op: u16,
        input: &[u8],
        payload_size: usize,
    ) -> (ReturnCode, Vec<u8>) {
        let done = |o: FabricOutcome| match o {
            FabricOutcome::Done(rc, out) => (rc, out),
            FabricOutcome::Background(_) => (ReturnCode::InternalError, Vec::new()),
        };
        if let Some(r) = self.fw_exec(now, port, Via::Device, op, input) {
            return r;
        }
        let room = payload_size.saturating_sub(TUNNEL_HEADER_LEN + CCI_HEADER_LEN);
        if let Some(r) = self.events_exec(port, op, input, room) {
            return r;
        }
        match op {
            opcode::IDENTIFY if input.is_empty() => (
                ReturnCode::Success,
                identify(MLD_DEVICE_ID, device_serial(self.switch_serial, port)),
            ),
            OP_GET_LD_INFO if input.is_empty() => {
                let info = LdInfo {
                    memory_size: u64::from(lds) * LD_UNITS * (256 << 20),
                    ld_count: u16::from(lds),
                    qos_telemetry: 0,
                };
                done(encoded(LD_INFO_LEN, |b| info.encode(b)))
            }
            opcode::IDENTIFY | OP_GET_LD_INFO => (ReturnCode::InvalidPayloadLength, Vec::new()),
            OP_GET_LD_ALLOCATIONS => {
                let Ok((start, limit)) = decode_ld_allocations_request(input) else {
                    return (ReturnCode::InvalidPayloadLength, Vec::new());
                };
                if start >= lds {
                    return (ReturnCode::InvalidInput, Vec::new());
                }
                let n = (lds - start).min(limit);
                let list: Vec<LdAllocation> = self
                    .ld_alloc
                    .iter()
                    .skip(usize::from(start))
                    .take(usize::from(n))
                    .copied()
                    .collect();
                let size = LD_ALLOCATIONS_HEADER + LD_ALLOCATION_ENTRY * list.len();
                done(encoded(size, |b| {
                    encode_ld_allocations(b, lds, Granularity::Mib256, start, &list)
                }))
            }
            OP_SET_LD_ALLOCATIONS => done(self.set_ld_allocations(lds, input)),
            opcode::TUNNEL => {
                let Ok(t) = TunnelRequest::decode(input) else {
                    return (ReturnCode::InvalidInput, Vec::new());
                };
                if t.target_type != TARGET_PORT_OR_LD
                    || t.header.category != Category::Request
                    || t.target >= lds
                {
                    return (ReturnCode::InvalidInput, Vec::new());
                }
                let ld = Via::Ld(t.target);
                let fw = self.fw_exec(now, port, ld, t.header.opcode, t.payload);
                let (rc, out) = match (fw, t.header.opcode) {
                    (Some(r), _) => r,
                    (None, opcode::IDENTIFY) if t.payload.is_empty() => (
                        ReturnCode::Success,
                        identify(MLD_DEVICE_ID, ld_serial(self.switch_serial, port, t.target)),
                    ),
                    (None, opcode::IDENTIFY) => (ReturnCode::InvalidPayloadLength, Vec::new()),
                    (None, _) => (ReturnCode::Unsupported, Vec::new()),
                };
                done(respond(&t, rc, &out, payload_size))
            }
            _ => (ReturnCode::Unsupported, Vec::new()),
        }
    }

    /// Set LD Allocations (5402h) of the multi-logical device with `lds` LDs.
    fn set_ld_allocations(&mut self, lds: u8, input: &[u8]) -> FabricOutcome {
        let Ok(req) = SetLdAllocations::decode(input) else {
            return FabricOutcome::rc(ReturnCode::InvalidPayloadLength);
        };
        let new: Vec<LdAllocation> = req.iter().map(|(_, a)| a).collect();
        let current: Vec<(u8, LdAllocation)> = (0u8..).zip(self.ld_alloc.iter().copied()).collect();
        let memory = u64::from(lds) * LD_UNITS * (256 << 20);
        match check_ld_allocations(
            memory,
            u16::from(lds),
            Granularity::Mib256,
            &current,
            req.start_ld,
            &new,
        ) {
            Ok(_) => {}
            Err(rule @ LdRule::ExceedsDevice { .. }) => {
                self.events
                    .push(format!("Set LD Allocations refused: {rule}"));
                return FabricOutcome::rc(ReturnCode::ResourcesExhausted);
            }
            Err(rule) => {
                self.events
                    .push(format!("Set LD Allocations refused: {rule}"));
                return FabricOutcome::rc(ReturnCode::InvalidInput);
            }
        }
        for (i, a) in new.iter().enumerate() {
            if let Some(slot) = self.ld_alloc.get_mut(usize::from(req.start_ld) + i) {
                *slot = *a;
            }
        }
        self.events.push(format!(
            "LD allocations set from LD {}: {:?}",
            req.start_ld,
            new.iter().map(|a| (a.range1, a.range2)).collect::<Vec<_>>()
        ));
        let size = SET_LD_ALLOCATIONS_HEADER + LD_ALLOCATION_ENTRY * new.len();
        encoded(size, |b| encode_set_ld_allocations(b, req.start_ld, &new))
    }

    /// The allocation of each LD of the multi-logical device (256 MiB units).
    pub fn ld_allocations(&self) -> &[LdAllocation] {
        &self.ld_alloc
    }

    /// The fabric as JSON: ports with their state and devices, VCSs with their vPPBs (see the
    /// README for the schema).
    pub fn describe(&self) -> Value {
        let s = self.switch_serial;
        let ports: Vec<Value> = (0..self.cfg.ports)
            .map(|p| {
                let role = if p < self.cfg.vcs { "usp" } else { "dsp" };
                let device = match self.cfg.device(p) {
                    Dev::None => Value::Null,
                    Dev::Sld => json!({
                        "kind": "type3",
                        "vendor": DEVICE_VENDOR,
                        "device": TYPE3_DEVICE_ID,
                        "serial": device_serial(s, p),
                        "firmware": self.device_fw(p).map(|d| d.fw.describe()),
                    }),
                    Dev::Dead => json!({
                        "kind": "dead",
                        "vendor": DEVICE_VENDOR,
                        "device": TYPE3_DEVICE_ID,
                        "serial": device_serial(s, p),
                    }),
                    Dev::Mld(n) => json!({
                        "kind": "mld",
                        "vendor": DEVICE_VENDOR,
                        "device": MLD_DEVICE_ID,
                        "serial": device_serial(s, p),
                        "memory_size": u64::from(n) * LD_UNITS * (256 << 20),
                        "firmware": self.device_fw(p).map(|d| d.fw.describe()),
                        "lds": (0..n).map(|l| {
                            let a = self.ld_alloc.get(usize::from(l)).copied();
                            json!({
                                "ld": l,
                                "serial": ld_serial(s, p, l),
                                "range1": a.map_or(0, |a| a.range1),
                                "range2": a.map_or(0, |a| a.range2),
                            })
                        }).collect::<Vec<_>>(),
                    }),
                };
                let mut v = json!({
                    "port": p,
                    "role": role,
                    "state": self.port_config_state(p).to_string(),
                    "link": if self.link_is_down(p) && p >= self.cfg.vcs { "down" } else { "up" },
                    "device": device,
                });
                if p < self.cfg.vcs {
                    v["vcs"] = json!(p);
                }
                v
            })
            .collect();
        let vcs: Vec<Value> = self
            .vcss
            .iter()
            .enumerate()
            .map(|(id, vppbs)| {
                json!({
                    "vcs": id,
                    "usp": id,
                    "vppbs": vppbs.iter().enumerate().map(|(i, v)| {
                        let info = v.info();
                        let (port, ld) = match v.target() {
                            Some((p, l)) => (json!(p), json!(l)),
                            None => (Value::Null, Value::Null),
                        };
                        json!({
                            "vppb": i,
                            "status": info.status.to_string(),
                            "port": port,
                            "ld": ld,
                        })
                    }).collect::<Vec<_>>(),
                })
            })
            .collect();
        json!({ "ports": ports, "vcs": vcs })
    }
}

/// The Tunnel Management Command output for request `t`: the inner response with `rc` and
/// `out`. An output larger than the payload: Internal Error (cannot happen with the small
/// responses of the emulated devices and a payload of 256 bytes or more).
fn respond(
    t: &TunnelRequest<'_>,
    rc: ReturnCode,
    out: &[u8],
    payload_size: usize,
) -> FabricOutcome {
    let size = TUNNEL_HEADER_LEN + CCI_HEADER_LEN + out.len();
    if size > payload_size {
        return FabricOutcome::rc(ReturnCode::InternalError);
    }
    encoded(size, |b| {
        encode_response(b, t.header.tag, t.header.opcode, rc, 0, out)
    })
}

#[cfg(test)]
#[path = "fabric_ld_tests.rs"]
mod ld_tests;
