// SPDX-License-Identifier: GPL-2.0

//! Commands to a CCI: the switch's own, or one reached through Tunnel Management Commands.
//!
//! A [`Target`] says where a command goes; [`Cci`] is a target on a [`Mailbox`] (a device node,
//! or a simulated device in tests) and holds every typed command. Every command that can be
//! tunnelled (Identify, logs, the CEL, background status, raw commands, firmware) goes through
//! [`Cci::raw`], which wraps the request in one Tunnel Management Command (5300h) per level and
//! unwraps the response, so a command is written once for every target.

use std::fmt;
use std::path::Path;

use crate::proto::opcode;
use crate::proto::payload::{
    bg::BgOpStatus,
    identify::Identify,
    ld::{self, Granularity, LdAllocation, LdAllocations, LdInfo},
    logs::{self, CelEntry, SupportedLog, SupportedLogs, Uuid},
    switch::{
        self, BindingStatus, IdentifySwitch, PortInfo, PortOp, PortStates, UnbindOption, VcsInfo,
        VcsInfos, VcsState,
    },
    tunnel::{self, CciHeader, TunnelResponse},
};
use crate::proto::rc::ReturnCode;
use crate::proto::wire::{DecodeError, EncodeError};
use crate::{command_name, Error, RawResponse, Result};

/// Bytes one tunnel level adds to a request or a response: the tunnel header (4) and the CCI
/// message header (12) (CXL r3.1 §7.6.7.3.1, Figure 7-19).
pub const TUNNEL_OVERHEAD: usize = tunnel::TUNNEL_HEADER_LEN + tunnel::CCI_HEADER_LEN;

/// Where a command goes.
///
/// The second level of [`Target::PortLd`] is the "port or LD id" of the Tunnel Management
/// Command that the component on the port receives: an LD of a multi-logical device, or a port
/// of a switch behind the port (CXL r3.1 §7.6.7.3.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    /// The CCI of the node itself (the switch mailbox CCI).
    #[default]
    Direct,
    /// The component on downstream port `.0`: one Tunnel Management Command (5300h).
    Port(u8),
    /// LD (or port) `.1` of the component on port `.0`: a tunnel inside a tunnel.
    PortLd(u8, u8),
}

impl Target {
    /// The target for a tunnel path: `[]` is direct, `[port]`, `[port, ld]`. `None` for longer
    /// paths.
    pub fn from_path(path: &[u8]) -> Option<Self> {
        match *path {
            [] => Some(Self::Direct),
            [p] => Some(Self::Port(p)),
            [p, l] => Some(Self::PortLd(p, l)),
            _ => None,
        }
    }

    /// The target of the `--port P [--ld L]` command-line arguments: no port is direct; an LD
    /// needs a port (`None` otherwise).
    pub fn from_args(port: Option<u8>, ld: Option<u8>) -> Option<Self> {
        match (port, ld) {
            (None, None) => Some(Self::Direct),
            (Some(p), None) => Some(Self::Port(p)),
            (Some(p), Some(l)) => Some(Self::PortLd(p, l)),
            (None, Some(_)) => None,
        }
    }

    /// The tunnel path: the port or LD id of each level, outermost first.
    pub fn path(&self) -> Vec<u8> {
        match *self {
            Self::Direct => Vec::new(),
            Self::Port(p) => vec![p],
            Self::PortLd(p, l) => vec![p, l],
        }
    }

    /// Number of tunnel levels (0 for a direct target).
    pub fn depth(&self) -> usize {
        match self {
            Self::Direct => 0,
            Self::Port(_) => 1,
            Self::PortLd(..) => 2,
        }
    }

    /// The downstream port, for a tunnelled target.
    pub fn port(&self) -> Option<u8> {
        match *self {
            Self::Direct => None,
            Self::Port(p) | Self::PortLd(p, _) => Some(p),
        }
    }

    /// The second level (LD), for a two-level target.
    pub fn ld(&self) -> Option<u8> {
        match *self {
            Self::PortLd(_, l) => Some(l),
            _ => None,
        }
    }
}

impl fmt::Display for Target {
    /// `switch CCI`, `port 1`, `port 1 LD 0`: how messages name a target.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Direct => f.write_str("switch CCI"),
            Self::Port(p) => write!(f, "port {p}"),
            Self::PortLd(p, l) => write!(f, "port {p} LD {l}"),
        }
    }
}

/// What carries mailbox commands: a device node ([`crate::Device`]), or a simulated device in
/// tests.
pub trait Mailbox {
    /// Sends one command and returns the device's return code and at most `out_size` output
    /// bytes, whatever the return code. Errors are OS errors (the errno of the ioctl).
    fn send(&self, opcode: u16, input: &[u8], out_size: usize) -> Result<RawResponse>;

    /// The mailbox payload size in bytes: the most one command carries in or out.
    fn payload_size(&self) -> Result<usize>;

    /// The node's path, for messages.
    fn path(&self) -> &Path;

    /// Sets how long the driver waits for a command that runs in the background, in ms
    /// (1..=600000), with an abort requested when the wait times out: the open file's
    /// `SWCCI_IOCTL_BG_POLICY` (Documentation/abi.rst). A mailbox that completes commands
    /// itself (a simulated device) has no such wait, and nothing to set.
    fn set_bg_timeout(&self, _timeout_ms: u32) -> Result<()> {
        Ok(())
    }
}

/// A command's outcome on a target, whatever its return code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// Return code of the mailbox command: the command itself on a direct target, the
    /// outermost Tunnel Management Command (5300h) on a tunnelled one.
    pub outer_rc: ReturnCode,
    /// Header of the innermost CCI response that came back through the tunnels: the target's,
    /// or that of the level whose tunnel failed. `None` for a direct target, or when the
    /// outermost tunnel failed.
    pub header: Option<CciHeader>,
    /// Output of the command that answered (the innermost response's payload).
    pub payload: Vec<u8>,
}

impl Response {
    /// The return code of the innermost response that came back (the outer one if the
    /// outermost tunnel failed).
    pub fn rc(&self) -> ReturnCode {
        self.header.map_or(self.outer_rc, |h| h.rc)
    }
}

/// A Command Effects Log as read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CelLog {
    /// The entries read (a trailing partial entry is dropped).
    pub entries: Vec<CelEntry>,
    /// Size in bytes Get Supported Logs (0400h) announced.
    pub announced: u32,
    /// Bytes Get Log (0401h) returned: less than `announced` when the device ended the log
    /// early.
    pub read: usize,
}

impl CelLog {
    /// Whether the device ended the log before the announced size.
    pub fn is_short(&self) -> bool {
        self.read < self.announced as usize
    }
}

/// One vPPB of a VCS, from Get Virtual CXL Switch Info (5200h).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vppb {
    /// vPPB index within its VCS.
    pub id: u8,
    /// Binding status.
    pub status: BindingStatus,
    /// The physical port it is bound to (meaningful when bound).
    pub port: u8,
    /// The LD it is bound to (meaningful when bound to an LD).
    pub ld: u8,
}

impl Vppb {
    /// The physical port it is bound to, if bound (or being bound).
    pub fn bound_port(&self) -> Option<u8> {
        match self.status {
            BindingStatus::Unbound => None,
            _ => Some(self.port),
        }
    }

    /// The LD it is bound to, if bound to an LD.
    pub fn bound_ld(&self) -> Option<u8> {
        match self.status {
            BindingStatus::BoundLd => Some(self.ld),
            _ => None,
        }
    }
}

/// One VCS, from Get Virtual CXL Switch Info (5200h).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vcs {
    /// VCS id.
    pub id: u8,
    /// State.
    pub state: VcsState,
    /// Upstream port id.
    pub usp: u8,
    /// Number of vPPBs the VCS has.
    pub num_vppbs: u8,
    /// The vPPBs listed (all of them from [`Cci::vcs_all`]).
    pub vppbs: Vec<Vppb>,
}

impl From<&VcsInfo<'_>> for Vcs {
    /// One VCS block of a decoded Get Virtual CXL Switch Info (5200h) output, with the vPPBs it
    /// lists (CXL r3.1 Table 7-26).
    fn from(v: &VcsInfo<'_>) -> Self {
        Self {
            id: v.vcs_id,
            state: v.state,
            usp: v.usp_id,
            num_vppbs: v.num_vppbs,
            vppbs: v
                .vppbs()
                .map(|(id, b)| Vppb {
                    id,
                    status: b.status,
                    port: b.port,
                    ld: b.ld,
                })
                .collect(),
        }
    }
}

/// The LD allocations of a multi-logical device, from Get LD Allocations (5401h).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LdAllocs {
    /// Number of LDs the device has enabled.
    pub number_of_lds: u8,
    /// Unit of the allocations.
    pub granularity: Granularity,
    /// Every LD's allocation, by LD id.
    pub lds: Vec<(u8, LdAllocation)>,
}

/// Bytes of a Get Virtual CXL Switch Info response header and of each VCS block's header and
/// vPPB entry (CXL r3.1 Tables 7-25, 7-26).
const VCS_RESPONSE_HEADER: usize = 4;
const VCS_BLOCK_HEADER: usize = 4;
const VPPB_ENTRY: usize = 4;

/// Most vPPBs per VCS such that `vcs_count` VCS blocks fit in an output of `payload_size`
/// bytes (at least 1: the device then says what it can do).
pub fn vppb_limit(payload_size: usize, vcs_count: usize) -> u8 {
    let per_vcs = payload_size
        .saturating_sub(VCS_RESPONSE_HEADER)
        .checked_div(vcs_count)
        .unwrap_or(0);
    let vppbs = per_vcs.saturating_sub(VCS_BLOCK_HEADER) / VPPB_ENTRY;
    u8::try_from(vppbs).unwrap_or(u8::MAX).max(1)
}

/// A target on a mailbox: every typed command.
///
/// Errors of every command: [`Error::Os`] (the ioctl's errno: ETIMEDOUT for a command that
/// never completed, ENXIO for a device that is gone, ...), [`Error::Device`] (a return code
/// other than success, naming the tunnel or command that returned it), [`Error::Decode`] (a
/// response that does not decode, naming the field), [`Error::Encode`] (an input that does
/// not fit the target's payload).
#[derive(Clone, Copy)]
pub struct Cci<'a> {
    mb: &'a dyn Mailbox,
    target: Target,
}

impl fmt::Debug for Cci<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cci")
            .field("path", &self.mb.path())
            .field("target", &self.target)
            .finish()
    }
}

impl<'a> Cci<'a> {
    /// `target` on `mb`.
    pub fn new(mb: &'a dyn Mailbox, target: Target) -> Self {
        Self { mb, target }
    }

    /// The target.
    pub fn target(&self) -> Target {
        self.target
    }

    /// The mailbox.
    pub fn mailbox(&self) -> &'a dyn Mailbox {
        self.mb
    }

    /// How errors name an attempt: `Identify (0001h) on /dev/cxl/switch0` for a direct target,
    /// `Identify (0001h) via port 1 on /dev/cxl/switch0` for a tunnelled one.
    pub fn op(&self, what: impl fmt::Display) -> String {
        match self.target {
            Target::Direct => format!("{what} on {}", self.mb.path().display()),
            t => format!("{what} via {t} on {}", self.mb.path().display()),
        }
    }

    pub(crate) fn op_code(&self, opcode: u16) -> String {
        self.op(command_name(opcode))
    }

    /// The largest payload one command to this target carries in or out, in bytes: the
    /// mailbox payload size less [`TUNNEL_OVERHEAD`] per tunnel level.
    pub fn payload_size(&self) -> Result<usize> {
        let overhead = TUNNEL_OVERHEAD.saturating_mul(self.target.depth());
        Ok(self.mb.payload_size()?.saturating_sub(overhead))
    }

    /// Sends `opcode` with `input` to the target, keeping at most `out_size` bytes of its
    /// output, and returns what came back whatever the return codes.
    ///
    /// Errors: an OS error of the ioctl; an encode error if the input does not fit the target's
    /// payload ([`Self::payload_size`]); a decode error if a tunnel response is malformed.
    pub fn raw(&self, opcode: u16, input: &[u8], out_size: usize) -> Result<Response> {
        let path = self.target.path();
        if path.is_empty() {
            let r = self.mb.send(opcode, input, out_size)?;
            return Ok(Response {
                outer_rc: r.rc,
                header: None,
                payload: r.out,
            });
        }
        let payload_size = self.mb.payload_size()?;
        let encode = |err| Error::Encode {
            op: self.op_code(opcode),
            err,
        };
        // Built from the inside out: the innermost level carries `opcode`.
        let mut msg = input.to_vec();
        let mut inner = opcode;
        for (depth, &id) in path.iter().enumerate().rev() {
            let mut buf = vec![0u8; TUNNEL_OVERHEAD.saturating_add(msg.len())];
            let tag = u8::try_from(depth).unwrap_or(u8::MAX);
            let n =
                tunnel::encode_request(&mut buf, id, tunnel::TARGET_PORT_OR_LD, tag, inner, &msg)
                    .map_err(encode)?;
            buf.truncate(n);
            msg = buf;
            inner = opcode::TUNNEL;
        }
        if msg.len() > payload_size {
            return Err(encode(EncodeError::Invalid {
                what: "input: larger than the mailbox payload with the tunnel headers",
            }));
        }
        // An OS error (the driver's ETIMEDOUT for a tunnel that never completes, ENXIO, ...)
        // names the command and the target, not the Tunnel Management Command that carried it.
        let r = self
            .mb
            .send(opcode::TUNNEL, &msg, payload_size)
            .map_err(|e| match e {
                Error::Os { err, .. } => Error::Os {
                    op: self.op_code(opcode),
                    err,
                },
                e => e,
            })?;
        if !r.rc.is_success() {
            return Ok(Response {
                outer_rc: r.rc,
                header: None,
                payload: Vec::new(),
            });
        }
        let mut body = r.out;
        for level in 1..=path.len() {
            let t = TunnelResponse::decode(&body).map_err(|err| Error::Decode {
                op: self.op_code(opcode),
                err,
            })?;
            let (header, mut payload) = (t.header, t.payload.to_vec());
            if level == path.len() || !header.rc.is_success() {
                payload.truncate(out_size);
                return Ok(Response {
                    outer_rc: r.rc,
                    header: Some(header),
                    payload,
                });
            }
            body = payload;
        }
        // `path` is not empty, so the loop returned.
        Err(Error::Encode {
            op: self.op_code(opcode),
            err: EncodeError::Invalid {
                what: "tunnel path",
            },
        })
    }

    /// The error for a response in which a level failed: the outermost tunnel (named as the
    /// Tunnel Management Command to the target), or the command or an inner tunnel (named by
    /// the opcode of the innermost response that came back).
    pub(crate) fn error_for(&self, opcode: u16, r: &Response) -> Error {
        if !r.outer_rc.is_success() && self.target != Target::Direct {
            return Error::Device {
                op: format!(
                    "{} to {} on {}",
                    command_name(opcode::TUNNEL),
                    self.target,
                    self.mb.path().display()
                ),
                rc: r.outer_rc,
            };
        }
        let inner = r.header.map_or(opcode, |h| h.opcode);
        Error::Device {
            op: self.op_code(inner),
            rc: r.rc(),
        }
    }

    /// The error for `r`, the response to `opcode`, if a level refused it: the outermost tunnel
    /// failed, or the innermost return code is neither success nor "background command
    /// started". `None` when it was accepted.
    pub fn refusal(&self, opcode: u16, r: &Response) -> Option<Error> {
        let tunnel_failed = !r.outer_rc.is_success() && self.target != Target::Direct;
        (tunnel_failed || r.rc().errno().is_some()).then(|| self.error_for(opcode, r))
    }

    /// Sends `opcode` and returns at most `out_size` bytes of its output; any return code but
    /// success, at any level, is an error ([`Error::Device`] naming the level that failed).
    pub fn command(&self, opcode: u16, input: &[u8], out_size: usize) -> Result<Vec<u8>> {
        let r = self.raw(opcode, input, out_size)?;
        if !r.outer_rc.is_success() || !r.rc().is_success() {
            return Err(self.error_for(opcode, &r));
        }
        Ok(r.payload)
    }

    /// [`Self::command`] with room for as much output as the target's payload holds.
    pub(crate) fn call(&self, opcode: u16, input: &[u8]) -> Result<Vec<u8>> {
        self.command(opcode, input, self.payload_size()?)
    }

    /// Sends a state-changing `opcode`; success and "background command started" are accepted
    /// (the driver waits for a background operation; its final return code is returned).
    pub(crate) fn change(&self, opcode: u16, input: &[u8]) -> Result<ReturnCode> {
        let r = self.raw(opcode, input, self.payload_size()?)?;
        match self.refusal(opcode, &r) {
            Some(e) => Err(e),
            None => Ok(r.rc()),
        }
    }

    pub(crate) fn decoded<T>(
        &self,
        opcode: u16,
        r: std::result::Result<T, DecodeError>,
    ) -> Result<T> {
        r.map_err(|err| Error::Decode {
            op: self.op_code(opcode),
            err,
        })
    }

    pub(crate) fn encoded<T>(
        &self,
        opcode: u16,
        r: std::result::Result<T, EncodeError>,
    ) -> Result<T> {
        r.map_err(|err| Error::Encode {
            op: self.op_code(opcode),
            err,
        })
    }

    /// Identify (0001h), CXL r3.1 §8.2.9.1.1.
    pub fn identify(&self) -> Result<Identify> {
        let out = self.call(opcode::IDENTIFY, &[])?;
        self.decoded(opcode::IDENTIFY, Identify::decode(&out))
    }

    /// Background Operation Status (0002h), CXL r3.1 §8.2.9.1.2.
    pub fn bg_status(&self) -> Result<BgOpStatus> {
        let out = self.call(opcode::BG_OP_STATUS, &[])?;
        self.decoded(opcode::BG_OP_STATUS, BgOpStatus::decode(&out))
    }

    /// Request Abort Background Operation (0005h); returns the device's return code (success,
    /// or "background command started").
    pub fn abort_bg(&self) -> Result<ReturnCode> {
        self.change(opcode::REQUEST_ABORT_BG, &[])
    }

    /// Get Supported Logs (0400h), CXL r3.1 §8.2.9.5.1.
    pub fn supported_logs(&self) -> Result<Vec<SupportedLog>> {
        let out = self.call(opcode::GET_SUPPORTED_LOGS, &[])?;
        let logs = self.decoded(opcode::GET_SUPPORTED_LOGS, SupportedLogs::decode(&out))?;
        Ok(logs.iter().collect())
    }

    /// Reads log `uuid` of `size` bytes with Get Log (0401h), in pieces as large as the
    /// target's payload.
    ///
    /// A device that ends the log early (Get Log succeeds with fewer bytes than asked, or
    /// none) gives what was read so far: the result is then shorter than `size`, as Linux's
    /// `cxl_xfer_log` (drivers/cxl/core/mbox.c) treats it.
    pub fn read_log(&self, uuid: &Uuid, size: u32) -> Result<Vec<u8>> {
        let chunk = u32::try_from(self.payload_size()?)
            .unwrap_or(u32::MAX)
            .max(1);
        let mut data = Vec::new();
        let mut offset = 0u32;
        while offset < size {
            let n = (size - offset).min(chunk);
            let input = logs::get_log_input(uuid, offset, n);
            let r = self.raw(opcode::GET_LOG, &input, n as usize)?;
            if !r.outer_rc.is_success() || !r.rc().is_success() {
                let mut e = self.error_for(opcode::GET_LOG, &r);
                if let Error::Device { op, .. } = &mut e {
                    op.push_str(&format!(" (log {uuid} at offset {offset})"));
                }
                return Err(e);
            }
            let got = r.payload.len();
            data.extend_from_slice(&r.payload);
            if got < n as usize {
                break;
            }
            offset = offset.saturating_add(n);
        }
        Ok(data)
    }

    /// The Command Effects Log: Get Supported Logs (0400h) for its size, then Get Log (0401h).
    ///
    /// Errors: [`Error::Missing`] (a malformed response) when Get Supported Logs lists no CEL:
    /// Linux requires one of every mailbox (`cxl_enumerate_cmds`, drivers/cxl/core/mbox.c).
    /// A log the device ends early is not an error: see [`CelLog::is_short`].
    pub fn cel_log(&self) -> Result<CelLog> {
        let announced = self
            .supported_logs()?
            .iter()
            .find(|l| l.uuid == logs::CEL_UUID)
            .map(|l| l.size)
            .ok_or_else(|| Error::Missing {
                op: self.op_code(opcode::GET_SUPPORTED_LOGS),
                what: "no Command Effects Log listed",
            })?;
        let raw = self.read_log(&logs::CEL_UUID, announced)?;
        Ok(CelLog {
            entries: logs::Cel::new(&raw).iter().collect(),
            announced,
            read: raw.len(),
        })
    }

    /// The entries of the Command Effects Log (see [`Self::cel_log`]).
    pub fn cel(&self) -> Result<Vec<CelEntry>> {
        Ok(self.cel_log()?.entries)
    }

    /// Identify Switch Device (5100h), CXL r3.1 §7.6.7.1.1.
    pub fn identify_switch(&self) -> Result<IdentifySwitch> {
        let out = self.call(opcode::IDENTIFY_SWITCH, &[])?;
        self.decoded(opcode::IDENTIFY_SWITCH, IdentifySwitch::decode(&out))
    }

    /// Get Physical Port State (5101h), CXL r3.1 §7.6.7.1.2, for `ports`, in as many commands
    /// as the payload needs (a response is 4 + 16 bytes per port; a request names at most 255
    /// ports).
    pub fn port_states(&self, ports: &[u8]) -> Result<Vec<PortInfo>> {
        let room = self
            .payload_size()?
            .saturating_sub(switch::PORT_STATE_HEADER);
        let per = (room / switch::PORT_INFO_LEN).clamp(1, usize::from(u8::MAX));
        let mut all = Vec::with_capacity(ports.len());
        for chunk in ports.chunks(per) {
            let mut req = vec![0u8; chunk.len().saturating_add(1)];
            let n = self.encoded(
                opcode::GET_PHYS_PORT_STATE,
                switch::port_state_request(&mut req, chunk),
            )?;
            req.truncate(n);
            let out = self.call(opcode::GET_PHYS_PORT_STATE, &req)?;
            let states = self.decoded(opcode::GET_PHYS_PORT_STATE, PortStates::decode(&out))?;
            all.extend(states.iter());
        }
        Ok(all)
    }

    /// Get Virtual CXL Switch Info (5200h), CXL r3.1 §7.6.7.2.1: VCSs `vcs` with their vPPBs
    /// from `start`, at most `limit` per VCS.
    pub fn vcs_info(&self, start: u8, limit: u8, vcs: &[u8]) -> Result<Vec<Vcs>> {
        let mut req = vec![0u8; vcs.len().saturating_add(3)];
        let n = self.encoded(
            opcode::GET_VCS_INFO,
            switch::vcs_info_request(&mut req, start, limit, vcs),
        )?;
        req.truncate(n);
        let out = self.call(opcode::GET_VCS_INFO, &req)?;
        let infos = self.decoded(opcode::GET_VCS_INFO, VcsInfos::decode(&out, start, limit))?;
        Ok(infos.iter().map(|v| Vcs::from(&v)).collect())
    }

    /// Every vPPB of VCSs `vcs`: Get Virtual CXL Switch Info (5200h) as often as the payload
    /// size needs.
    pub fn vcs_all(&self, vcs: &[u8]) -> Result<Vec<Vcs>> {
        let limit = vppb_limit(self.payload_size()?, vcs.len());
        let mut all = self.vcs_info(0, limit, vcs)?;
        loop {
            let next: Vec<(usize, u8)> = all
                .iter()
                .enumerate()
                .filter_map(|(i, v)| {
                    let have = u8::try_from(v.vppbs.len()).unwrap_or(u8::MAX);
                    (have < v.num_vppbs && !v.vppbs.is_empty()).then_some((i, have))
                })
                .collect();
            let Some(&(_, start)) = next.first() else {
                return Ok(all);
            };
            let ids: Vec<u8> = next
                .iter()
                .filter(|(_, s)| *s == start)
                .filter_map(|(i, _)| all.get(*i).map(|v| v.id))
                .collect();
            let more = self.vcs_info(start, vppb_limit(self.payload_size()?, ids.len()), &ids)?;
            let mut progressed = false;
            for m in more {
                if let Some(v) = all.iter_mut().find(|v| v.id == m.id) {
                    progressed |= !m.vppbs.is_empty();
                    v.vppbs.extend(m.vppbs);
                }
            }
            if !progressed {
                return Ok(all);
            }
        }
    }

    /// Get LD Info (5400h), CXL r3.1 §7.6.7.4.1, of a multi-logical device (usually on a
    /// tunnelled target: the MLD behind a port).
    pub fn ld_info(&self) -> Result<LdInfo> {
        let out = self.call(opcode::GET_LD_INFO, &[])?;
        self.decoded(opcode::GET_LD_INFO, LdInfo::decode(&out))
    }

    /// Get LD Allocations (5401h), CXL r3.1 §7.6.7.4.2: every enabled LD's allocation, in as
    /// many commands as the payload needs (4 bytes + 16 per LD).
    pub fn ld_allocations(&self) -> Result<LdAllocs> {
        let per = (self
            .payload_size()?
            .saturating_sub(ld::LD_ALLOCATIONS_HEADER)
            / ld::LD_ALLOCATION_ENTRY)
            .clamp(1, usize::from(u8::MAX));
        let limit = u8::try_from(per).unwrap_or(u8::MAX);
        let mut all = LdAllocs {
            number_of_lds: 0,
            granularity: Granularity::Mib256,
            lds: Vec::new(),
        };
        let mut start = 0u8;
        loop {
            let req = ld::ld_allocations_request(start, limit);
            let out = self.call(opcode::GET_LD_ALLOCATIONS, &req)?;
            let a = self.decoded(opcode::GET_LD_ALLOCATIONS, LdAllocations::decode(&out))?;
            all.number_of_lds = a.number_of_lds;
            all.granularity = a.granularity;
            let before = all.lds.len();
            all.lds.extend(a.iter());
            let listed = all.lds.len() - before;
            let next = usize::from(start).saturating_add(listed);
            if listed == 0 || next >= usize::from(a.number_of_lds) {
                return Ok(all);
            }
            start = u8::try_from(next).unwrap_or(u8::MAX);
        }
    }

    /// Physical Port Control (5102h), CXL r3.1 §7.6.7.1.3: `op` on physical port `port`.
    pub fn port_control(&self, port: u8, op: PortOp) -> Result<ReturnCode> {
        self.change(
            opcode::PHYS_PORT_CONTROL,
            &switch::port_control_request(port, op),
        )
    }

    /// Bind vPPB (5201h), CXL r3.1 §7.6.7.2.2: vPPB `vppb` of VCS `vcs` to port `port`, or to
    /// LD `ld` of the MLD on it ([`switch::LD_NONE`]: the port itself). The driver waits for
    /// the background operation; its final return code is returned.
    pub fn bind_vppb(&self, vcs: u8, vppb: u8, port: u8, ld: u16) -> Result<ReturnCode> {
        self.change(
            opcode::BIND_VPPB,
            &switch::bind_vppb_request(vcs, vppb, port, ld),
        )
    }

    /// Unbind vPPB (5202h), CXL r3.1 §7.6.7.2.3. The driver waits for the background
    /// operation; its final return code is returned.
    pub fn unbind_vppb(&self, vcs: u8, vppb: u8, option: UnbindOption) -> Result<ReturnCode> {
        self.change(
            opcode::UNBIND_VPPB,
            &switch::unbind_vppb_request(vcs, vppb, option),
        )
    }
}

#[cfg(test)]
#[path = "cci_tests.rs"]
mod tests;
