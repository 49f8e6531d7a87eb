// SPDX-License-Identifier: GPL-2.0

//! The fabric at a glance: every switch, its VCSs and vPPB bindings, its physical ports, the
//! component behind each port and the LDs of multi-logical devices.
//!
//! [`walk`] asks each switch, in parallel (one thread per switch), for:
//! Identify (0001h), Identify Switch Device (5100h), Get Physical Port State (5101h) of every
//! active port, Get Virtual CXL Switch Info (5200h) of every active VCS with all its vPPBs, and
//! for every downstream port with a device (bound to a vPPB or not; an unbound port reads
//! "disabled"): Identify (0001h) through a Tunnel Management
//! Command (5300h), and for a multi-logical device Get LD Info (5400h) and Get LD Allocations
//! (5401h), tunnelled too; for every device that identifies as a type-3 device Get DCD Info
//! (5600h), and for a Dynamic
//! Capacity Device its DC regions (5601h) and the extents each host holds (5603h) (see
//! [`crate::dcd::read_dcd`]).
//!
//! A slow or dead device does not stall the view. Each device (the switch itself, and each
//! component behind a port) gets [`WalkOptions::timeout`]: once its commands have taken that
//! long, nothing more is sent to it. A command that never completes costs at most the driver's
//! doorbell timeout (2 s, ETIMEDOUT), after which the walk gives up on that device and goes on
//! with the next one. What could not be read is left out, the items are marked
//! [`partial`](Switch::partial), and [`Fabric::errors`] says why, item by item. A command the
//! device answers with "unsupported" (5200h, 5400h, 5401h, 5600h) leaves its part empty
//! (`None`) without an error: the device does not offer it.

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::dcd::DcdState;
use crate::proto::payload::{
    identify::{ComponentType, Identify},
    ld::LdInfo,
    switch::{ConnectedType, IdentifySwitch, PortConfigState, PortInfo},
};
use crate::proto::rc::ReturnCode;
use crate::proto::uapi::{SwcciBgPolicy, SwcciInfo, SWCCI_BG_ABORT_ON_TIMEOUT};
use crate::{Cci, Device, Error, LdAllocs, Mailbox, Node, RawResponse, Result, Target, Vcs};

/// How the walk treats slow devices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalkOptions {
    /// Most time spent on one device: the switch's own commands, or one component behind a
    /// port with its LDs. The walk also sets each node's background timeout to it
    /// (`SWCCI_IOCTL_BG_POLICY`), so no background command waits longer.
    pub timeout: Duration,
}

impl Default for WalkOptions {
    /// 5 s per device.
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(5),
        }
    }
}

/// The whole view.
#[derive(Debug, Default)]
pub struct Fabric {
    /// The switches, in the order they were given.
    pub switches: Vec<Switch>,
    /// Everything that could not be read, with where and why.
    pub errors: Vec<ItemError>,
}

impl Fabric {
    /// Whether something could not be read.
    pub fn is_partial(&self) -> bool {
        !self.errors.is_empty()
    }

    /// Whether no switch could be read at all: every node failed before the walk, or every
    /// switch walked answered neither Identify (0001h) nor Identify Switch Device (5100h)
    /// (see [`Switch::is_read`]).
    pub fn nothing_read(&self) -> bool {
        !self.switches.iter().any(Switch::is_read)
    }

    /// Mailbox commands sent in all (a tunnelled command counts once).
    pub fn commands(&self) -> u64 {
        self.switches.iter().map(|s| u64::from(s.commands)).sum()
    }
}

/// Where an error happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Place {
    /// The switch's node.
    pub node: PathBuf,
    /// Where on it: the switch CCI itself, or a component behind a port.
    pub target: Target,
}

/// Something that could not be read.
#[derive(Debug)]
pub struct ItemError {
    /// Where.
    pub place: Place,
    /// Why (its text names the node, the target and the command).
    pub error: Error,
}

/// One switch.
#[derive(Debug)]
pub struct Switch {
    /// Its node.
    pub node: PathBuf,
    /// What the driver reports about the node (`SWCCI_IOCTL_INFO`: PCI address, payload
    /// size, interrupt mode), when the walk started from [`crate::list`].
    pub info: Option<SwcciInfo>,
    /// Identify (0001h) of the switch CCI.
    pub identify: Option<Identify>,
    /// Identify Switch Device (5100h).
    pub identify_switch: Option<IdentifySwitch>,
    /// Every active VCS with all its vPPBs (5200h); `None` when the switch does not implement
    /// Get Virtual CXL Switch Info (QEMU's switch CCI) or it could not be read.
    pub vcss: Option<Vec<Vcs>>,
    /// Every active physical port (5101h) and what is behind it.
    pub ports: Vec<Port>,
    /// Something about this switch or behind it could not be read.
    pub partial: bool,
    /// Mailbox commands sent to this switch's node.
    pub commands: u32,
    /// Time the walk of this switch took.
    pub elapsed: Duration,
}

impl Switch {
    /// Whether anything of the switch itself was read: Identify (0001h) or Identify Switch
    /// Device (5100h). A switch that answered neither (every command failed, for example with
    /// EPERM without CAP_SYS_RAWIO) is listed, marked partial, but was not read.
    pub fn is_read(&self) -> bool {
        self.identify.is_some() || self.identify_switch.is_some()
    }

    /// The switch at `node` before anything of it was read: nothing known, no commands sent.
    fn unread(node: &Path) -> Self {
        Self {
            node: node.to_path_buf(),
            info: None,
            identify: None,
            identify_switch: None,
            vcss: None,
            ports: Vec::new(),
            partial: false,
            commands: 0,
            elapsed: Duration::ZERO,
        }
    }
}

/// One physical port.
#[derive(Debug)]
pub struct Port {
    /// Get Physical Port State (5101h).
    pub info: PortInfo,
    /// The component behind it, for a downstream port with a connected device.
    pub device: Option<Component>,
}

/// A component behind a downstream port, asked through a tunnel.
#[derive(Debug, Default)]
pub struct Component {
    /// Identify (0001h).
    pub identify: Option<Identify>,
    /// Get LD Info (5400h), for a multi-logical device that implements it.
    pub ld_info: Option<LdInfo>,
    /// Get LD Allocations (5401h), for a multi-logical device that implements it.
    pub ld_allocations: Option<LdAllocs>,
    /// Its Dynamic Capacity (Get DCD Info 5600h, the DC regions of host 0, every host's
    /// extents), for a type-3 device that is a DCD.
    pub dcd: Option<DcdState>,
    /// Something about it could not be read.
    pub partial: bool,
}

/// A mailbox that counts commands and refuses to send once the current device's time is up.
struct Metered<'a> {
    inner: &'a dyn Mailbox,
    sent: Cell<u32>,
    deadline: Cell<Instant>,
    timeout: Duration,
}

impl<'a> Metered<'a> {
    fn new(inner: &'a dyn Mailbox, timeout: Duration) -> Self {
        Self {
            inner,
            sent: Cell::new(0),
            deadline: Cell::new(Instant::now() + timeout),
            timeout,
        }
    }

    /// Starts the time of the next device.
    fn next_device(&self) {
        self.deadline.set(Instant::now() + self.timeout);
    }
}

impl Mailbox for Metered<'_> {
    fn send(&self, opcode: u16, input: &[u8], out_size: usize) -> Result<RawResponse> {
        if Instant::now() >= self.deadline.get() {
            return Err(Error::Timeout {
                op: format!(
                    "{} on {}",
                    crate::command_name(opcode),
                    self.inner.path().display()
                ),
                ms: u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX),
            });
        }
        self.sent.set(self.sent.get().saturating_add(1));
        self.inner.send(opcode, input, out_size)
    }

    fn payload_size(&self) -> Result<usize> {
        self.inner.payload_size()
    }

    fn path(&self) -> &Path {
        self.inner.path()
    }
}

/// Errors of one switch's walk.
struct Errors<'a> {
    node: &'a Path,
    list: Vec<ItemError>,
}

impl Errors<'_> {
    fn push(&mut self, target: Target, error: Error) {
        self.list.push(ItemError {
            place: Place {
                node: self.node.to_path_buf(),
                target,
            },
            error,
        });
    }

    /// Records `error` and says whether nothing more should be sent to `target` ([`gave_up`]).
    fn push_gave_up(&mut self, target: Target, error: Error) -> bool {
        let stop = gave_up(&error);
        self.push(target, error);
        stop
    }

    /// The value of `r`, or `None` with its error recorded.
    fn take<T>(&mut self, target: Target, r: Result<T>) -> Option<T> {
        r.map_err(|e| self.push(target, e)).ok()
    }
}

/// Whether an error means the device (or the path to it) stopped working, so nothing more
/// should be sent to it: an OS error (ETIMEDOUT, ENXIO, EBUSY, EIO, ...) or the walk's own
/// timeout. A device's refusal (a return code) or a malformed answer is about one command.
fn gave_up(e: &Error) -> bool {
    matches!(e, Error::Os { .. } | Error::Timeout { .. })
}

/// Whether an error says the device does not implement the command (return code 03h, or
/// 15h for a command not supported on this CCI): information the device does not offer, not
/// a failure. (QEMU's switch CCI reports VCSs but does not implement Get Virtual CXL Switch
/// Info; its type-3 devices report themselves as MLDs but implement no MLD command.)
fn unsupported(e: &Error) -> bool {
    matches!(
        e.rc(),
        Some(ReturnCode::Unsupported | ReturnCode::UnsupportedMailbox)
    )
}

/// Walks the component behind `port`.
fn walk_component(mb: &Metered<'_>, port: &PortInfo, errors: &mut Errors<'_>) -> Component {
    mb.next_device();
    let target = Target::Port(port.port_id);
    let cci = Cci::new(mb, target);
    let before = errors.list.len();
    let mut c = Component::default();
    match cci.identify() {
        Ok(id) => c.identify = Some(id),
        Err(e) => {
            if errors.push_gave_up(target, e) {
                c.partial = true;
                return c;
            }
        }
    }
    if port.connected_type == ConnectedType::Type3Mld {
        match cci.ld_info() {
            Ok(i) => c.ld_info = Some(i),
            Err(e) if unsupported(&e) => {}
            Err(e) => {
                if errors.push_gave_up(target, e) {
                    c.partial = true;
                    return c;
                }
            }
        }
        match cci.ld_allocations() {
            Ok(a) => c.ld_allocations = Some(a),
            Err(e) if unsupported(&e) => {}
            Err(e) => {
                if errors.push_gave_up(target, e) {
                    c.partial = true;
                    return c;
                }
            }
        }
    }
    // A type-3 device may be a DCD; one whose identity could not be read (its tunnel failed)
    // is not asked more.
    let type3 = c
        .identify
        .is_some_and(|i| i.component_type == ComponentType::Type3);
    if type3
        && matches!(
            port.connected_type,
            ConnectedType::Type3Sld | ConnectedType::Type3Mld
        )
    {
        match crate::dcd::read_dcd(&cci) {
            Ok(d) => c.dcd = d,
            Err(e) => errors.push(target, e),
        }
    }
    c.partial = errors.list.len() > before;
    c
}

/// Walks one switch.
fn walk_switch(mb: &dyn Mailbox, opts: &WalkOptions) -> (Switch, Vec<ItemError>) {
    let started = Instant::now();
    let m = Metered::new(mb, opts.timeout);
    let mut errors = Errors {
        node: mb.path(),
        list: Vec::new(),
    };
    let mut sw = Switch::unread(mb.path());
    let cci = Cci::new(&m, Target::Direct);
    let direct = Target::Direct;
    let finish = |mut sw: Switch, errors: Errors<'_>| {
        sw.commands = m.sent.get();
        sw.elapsed = started.elapsed();
        sw.partial = !errors.list.is_empty();
        (sw, errors.list)
    };
    match cci.identify() {
        Ok(id) => sw.identify = Some(id),
        Err(e) if gave_up(&e) => {
            errors.push(direct, e);
            return finish(sw, errors);
        }
        Err(e) => errors.push(direct, e),
    }
    let ids = match cci.identify_switch() {
        Ok(s) => s,
        Err(e) => {
            errors.push(direct, e);
            return finish(sw, errors);
        }
    };
    sw.identify_switch = Some(ids);
    let ports: Vec<u8> = ids.active_port_ids().collect();
    let vcs: Vec<u8> = ids.active_vcs_ids().collect();
    if let Some(states) = errors.take(direct, cci.port_states(&ports)) {
        sw.ports = states
            .into_iter()
            .map(|info| Port { info, device: None })
            .collect();
    }
    if vcs.is_empty() {
        sw.vcss = Some(Vec::new());
    } else {
        match cci.vcs_all(&vcs) {
            Ok(v) => sw.vcss = Some(v),
            Err(e) if unsupported(&e) => {}
            Err(e) => errors.push(direct, e),
        }
    }
    for p in &mut sw.ports {
        // A downstream port with a device, bound to a vPPB or not (the fabric manager reaches
        // unbound devices too): not the upstream port, not an id the switch does not have.
        let has_device = !matches!(
            p.info.config_state,
            PortConfigState::Upstream | PortConfigState::InvalidPortId
        ) && p.info.connected_type != ConnectedType::None;
        if has_device {
            p.device = Some(walk_component(&m, &p.info, &mut errors));
        }
    }
    finish(sw, errors)
}

/// Walks the switches behind `mailboxes`, one thread each, and returns them in order.
pub fn walk_mailboxes(mailboxes: &[&(dyn Mailbox + Sync)], opts: &WalkOptions) -> Fabric {
    let results: Vec<(Switch, Vec<ItemError>)> = std::thread::scope(|s| {
        let handles: Vec<_> = mailboxes
            .iter()
            .map(|mb| s.spawn(move || walk_switch(*mb, opts)))
            .collect();
        handles
            .into_iter()
            .zip(mailboxes)
            .map(|(h, mb)| {
                h.join().unwrap_or_else(|_| {
                    // A walk that panicked (a bug): the switch is reported as unreadable.
                    let e = Error::Os {
                        op: format!("topology of {}", mb.path().display()),
                        err: std::io::Error::other("the walk of this switch panicked"),
                    };
                    let sw = Switch {
                        partial: true,
                        ..Switch::unread(mb.path())
                    };
                    let place = Place {
                        node: sw.node.clone(),
                        target: Target::Direct,
                    };
                    (sw, vec![ItemError { place, error: e }])
                })
            })
            .collect()
    });
    let mut fabric = Fabric::default();
    for (sw, errs) in results {
        fabric.switches.push(sw);
        fabric.errors.extend(errs);
    }
    fabric
}

/// Walks the switch CCI nodes among `nodes` (from [`crate::list`], or the nodes a user
/// named). Nodes that could not be asked, could not be opened, or are not switch CCIs (MMPT
/// functions) are reported in [`Fabric::errors`] or skipped (MMPT), not walked.
pub fn walk(nodes: Vec<Node>, opts: &WalkOptions) -> Fabric {
    let mut errors = Vec::new();
    let mut opened: Vec<(Device, SwcciInfo)> = Vec::new();
    for n in nodes {
        // Known MMPT functions are not switches; a node that could not be asked is reported.
        if n.info.is_ok() && !n.is_switch() {
            continue;
        }
        let place = Place {
            node: n.path.clone(),
            target: Target::Direct,
        };
        let opened_node = n.info.and_then(|info| {
            let dev = Device::open(&n.path)?;
            let ms = u32::try_from(opts.timeout.as_millis())
                .unwrap_or(u32::MAX)
                .max(1);
            dev.bg_policy(SwcciBgPolicy {
                timeout_ms: ms,
                flags: SWCCI_BG_ABORT_ON_TIMEOUT,
            })?;
            Ok((dev, info))
        });
        match opened_node {
            Ok(d) => opened.push(d),
            Err(error) => errors.push(ItemError { place, error }),
        }
    }
    let mbs: Vec<&(dyn Mailbox + Sync)> = opened
        .iter()
        .map(|(d, _)| d as &(dyn Mailbox + Sync))
        .collect();
    let mut fabric = walk_mailboxes(&mbs, opts);
    for (sw, (_, info)) in fabric.switches.iter_mut().zip(&opened) {
        sw.info = Some(*info);
    }
    errors.append(&mut fabric.errors);
    fabric.errors = errors;
    fabric
}

#[cfg(test)]
#[path = "fabric_tests.rs"]
mod tests;
