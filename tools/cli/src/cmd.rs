// SPDX-License-Identifier: GPL-2.0

//! The commands: open the device, send the CCI commands, decode, build the document.

use crate::decode;
use crate::error::CliError;
use crate::hex;
use crate::output::{Doc, Field, Record};
use crate::{Cli, Command, PortAction, RawCommand, TunnelCommand, UnbindMode};
use std::cell::Cell;
use std::path::Path;
use swcci::{command_name, Device, RawResponse};
use swcci_proto::opcode;
use swcci_proto::payload::logs::CEL_UUID;
use swcci_proto::payload::switch::{self, IdentifySwitch, PortOp, UnbindOption, LD_NONE};
use swcci_proto::rc::ReturnCode;
use swcci_proto::wire::DecodeError;

type Result<T> = std::result::Result<T, CliError>;

/// What a command printed, and the errors to report after it.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Text for standard output.
    pub stdout: String,
    /// Errors for standard error; the first decides the exit status.
    pub errors: Vec<CliError>,
}

/// A document and the errors that come with it (a raw command's non-success return code).
struct Report {
    doc: Doc,
    errors: Vec<CliError>,
}

impl From<Doc> for Report {
    fn from(doc: Doc) -> Self {
        Self {
            doc,
            errors: Vec::new(),
        }
    }
}

/// Runs the command line.
pub fn run(cli: Cli) -> Result<Outcome> {
    let report = match cli.command {
        Command::Completions { shell } => return text(crate::doc::completions(shell)),
        Command::Man => return text(crate::doc::man_page()?),
        Command::List => list()?,
        Command::Identify(a) => Dev::open(&a.dev)?.identify()?.into(),
        Command::SwitchInfo(a) => Dev::open(&a.dev)?.switch_info()?.into(),
        Command::Ports(a) => Dev::open(&a.dev)?.ports(&a.ports)?.into(),
        Command::Vcs(a) => Dev::open(&a.dev)?.vcs(&a.vcs, a.start, a.limit)?.into(),
        Command::Cel(a) => Dev::open(&a.dev)?.cel()?.into(),
        Command::Logs(a) => Dev::open(&a.dev)?.logs()?.into(),
        Command::BgStatus(a) => Dev::open(&a.dev)?.bg_status()?.into(),
        Command::Abort(a) => Dev::open(&a.dev)?.abort()?.into(),
        Command::PortControl(a) => port_control(&a.dev, a.port, a.action, a.yes)?.into(),
        Command::Bind(a) => bind(&a.dev, [a.vcs, a.vppb, a.port], a.ld, a.yes)?.into(),
        Command::Unbind(a) => unbind(&a.dev, a.vcs, a.vppb, a.mode, a.yes)?.into(),
        Command::Tunnel(a) => tunnel(&a.dev, a.port, a.ld, &a.what)?,
        Command::Raw(a) => raw(&a.dev, &a.cmd)?,
    };
    Ok(Outcome {
        stdout: report.doc.render(cli.json),
        errors: report.errors,
    })
}

fn text(stdout: String) -> Result<Outcome> {
    Ok(Outcome {
        stdout,
        errors: Vec::new(),
    })
}

/// The error for a non-success return code of `what`.
fn refused(op: String, rc: ReturnCode) -> CliError {
    CliError::Lib(swcci::Error::Device { op, rc })
}

/// An open device node.
struct Dev {
    dev: Device,
    payload_size: Cell<Option<usize>>,
}

impl Dev {
    fn open(name: &str) -> Result<Self> {
        Ok(Self {
            dev: Device::open(name)?,
            payload_size: Cell::new(None),
        })
    }

    /// `what on /dev/cxl/switch0`.
    fn op(&self, what: &str) -> String {
        format!("{what} on {}", self.dev.path().display())
    }

    /// The mailbox payload size, from the driver.
    fn payload_size(&self) -> Result<usize> {
        if let Some(n) = self.payload_size.get() {
            return Ok(n);
        }
        let n = usize::try_from(self.dev.info()?.payload_size).unwrap_or(usize::MAX);
        self.payload_size.set(Some(n));
        Ok(n)
    }

    /// Sends `op` and returns the raw response, whatever the return code.
    fn raw(&self, op: u16, input: &[u8], out_size: Option<usize>) -> Result<RawResponse> {
        let out_size = match out_size {
            Some(n) => n,
            None => self.payload_size()?,
        };
        Ok(self.dev.raw(op, input, out_size)?)
    }

    /// Sends `op` and returns its output; any return code but success is an error.
    fn command(&self, op: u16, input: &[u8]) -> Result<Vec<u8>> {
        let r = self.raw(op, input, None)?;
        if !r.rc.is_success() {
            return Err(refused(self.op(&command_name(op)), r.rc));
        }
        Ok(r.out)
    }

    /// Sends a state-changing `op`; success and "background command started" are accepted.
    fn change(&self, op: u16, input: &[u8]) -> Result<ReturnCode> {
        let r = self.raw(op, input, None)?;
        if r.rc.errno().is_some() {
            return Err(refused(self.op(&command_name(op)), r.rc));
        }
        Ok(r.rc)
    }

    /// A decode result, with a malformed response reported against `op`.
    fn decoded<T>(&self, op: u16, r: std::result::Result<T, DecodeError>) -> Result<T> {
        r.map_err(|err| CliError::decode(self.op(&command_name(op)), err))
    }

    fn identify(&self) -> Result<Doc> {
        let out = self.command(opcode::IDENTIFY, &[])?;
        Ok(Doc::Record(
            self.decoded(opcode::IDENTIFY, decode::identify(&out))?,
        ))
    }

    fn switch_info(&self) -> Result<Doc> {
        let out = self.command(opcode::IDENTIFY_SWITCH, &[])?;
        Ok(Doc::Record(self.decoded(
            opcode::IDENTIFY_SWITCH,
            decode::identify_switch(&out),
        )?))
    }

    /// Identify Switch Device, decoded.
    fn identify_switch(&self) -> Result<IdentifySwitch> {
        let out = self.command(opcode::IDENTIFY_SWITCH, &[])?;
        self.decoded(opcode::IDENTIFY_SWITCH, IdentifySwitch::decode(&out))
    }

    fn ports(&self, ports: &[u8]) -> Result<Doc> {
        let ids: Vec<u8> = if ports.is_empty() {
            self.identify_switch()?.active_port_ids().collect()
        } else {
            ports.to_vec()
        };
        let rows = self
            .dev
            .port_states(&ids)?
            .iter()
            .map(decode::port_record)
            .collect();
        Ok(Doc::Table {
            rows,
            empty: "no active ports",
        })
    }

    fn vcs(&self, vcs: &[u8], start: u8, limit: Option<u8>) -> Result<Doc> {
        let ids: Vec<u8> = if vcs.is_empty() {
            self.identify_switch()?.active_vcs_ids().collect()
        } else {
            vcs.to_vec()
        };
        let empty = "no active VCSs";
        if ids.is_empty() {
            return Ok(Doc::Groups {
                groups: Vec::new(),
                child: "vppbs",
                empty,
            });
        }
        let limit = match limit {
            Some(l) => l,
            None => default_vppb_limit(self.payload_size()?, ids.len()),
        };
        let mut req = vec![0u8; ids.len().saturating_add(3)];
        let n = switch::vcs_info_request(&mut req, start, limit, &ids).map_err(|err| {
            swcci::Error::Encode {
                op: self.op(&command_name(opcode::GET_VCS_INFO)),
                err,
            }
        })?;
        let out = self.command(opcode::GET_VCS_INFO, req.get(..n).unwrap_or(&[]))?;
        let groups = self.decoded(opcode::GET_VCS_INFO, decode::vcs(&out, start, limit))?;
        Ok(Doc::Groups {
            groups,
            child: "vppbs",
            empty,
        })
    }

    fn logs(&self) -> Result<Doc> {
        let out = self.command(opcode::GET_SUPPORTED_LOGS, &[])?;
        let rows = self.decoded(opcode::GET_SUPPORTED_LOGS, decode::logs(&out))?;
        Ok(Doc::Table {
            rows,
            empty: "no logs",
        })
    }

    fn cel(&self) -> Result<Doc> {
        let out = self.command(opcode::GET_SUPPORTED_LOGS, &[])?;
        let size = self.decoded(opcode::GET_SUPPORTED_LOGS, decode::cel_size(&out))?;
        let Some(size) = size else {
            return Err(CliError::Device(format!(
                "{}: the device lists no Command Effects Log",
                self.op(&command_name(opcode::GET_SUPPORTED_LOGS))
            )));
        };
        let raw = self.dev.read_log(&CEL_UUID, size)?;
        Ok(Doc::Table {
            rows: decode::cel(&raw),
            empty: "the Command Effects Log is empty",
        })
    }

    fn bg_status(&self) -> Result<Doc> {
        let out = self.command(opcode::BG_OP_STATUS, &[])?;
        Ok(Doc::Record(
            self.decoded(opcode::BG_OP_STATUS, decode::bg_status(&out))?,
        ))
    }

    fn abort(&self) -> Result<Doc> {
        let rc = self.change(opcode::REQUEST_ABORT_BG, &[])?;
        Ok(Doc::Record(Record(vec![
            decode::opcode_field("opcode", "opcode_name", opcode::REQUEST_ABORT_BG),
            decode::rc_field(rc),
        ])))
    }
}

/// Most vPPBs per VCS such that `vcs_count` VCS blocks fit in the output payload.
fn default_vppb_limit(payload_size: usize, vcs_count: usize) -> u8 {
    let per_vcs = payload_size
        .saturating_sub(4)
        .checked_div(vcs_count)
        .unwrap_or(0);
    let vppbs = per_vcs.saturating_sub(4) / 4;
    u8::try_from(vppbs).unwrap_or(u8::MAX).max(1)
}

/// Every node that answers, plus an error for each switch node that exists but does not.
fn list() -> Result<Report> {
    let nodes = swcci::list()?;
    let rows = nodes
        .iter()
        .map(|n| decode::list_row(&n.path, &n.info))
        .collect();
    let mut errors = Vec::new();
    if let Ok(entries) = std::fs::read_dir(swcci::CXL_DEV_DIR) {
        let mut missing: Vec<_> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| is_switch_node(p) && !nodes.iter().any(|n| &n.path == p))
            .collect();
        missing.sort();
        for path in missing {
            if let Err(e) = Device::open(&path).and_then(|d| d.info()) {
                errors.push(e.into());
            }
        }
    }
    Ok(Report {
        doc: Doc::Table {
            rows,
            empty: "no CXL switch CCI nodes in /dev/cxl (is cxl_swcci loaded?)",
        },
        errors,
    })
}

fn is_switch_node(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("switch"))
}

/// A record of a state change that was done, ending with its return code.
fn changed(mut fields: Record, rc: ReturnCode) -> Doc {
    fields.push(decode::rc_field(rc));
    Doc::Record(fields)
}

fn port_control(dev: &str, port: u8, action: PortAction, yes: bool) -> Result<Doc> {
    let (op, name, what) = match action {
        PortAction::AssertPerst => (PortOp::AssertPerst, "assert-perst", "assert PERST# of"),
        PortAction::DeassertPerst => (
            PortOp::DeassertPerst,
            "deassert-perst",
            "deassert PERST# of",
        ),
        PortAction::Reset => (PortOp::ResetPpb, "reset", "reset the PPB of"),
    };
    if !yes {
        return Err(CliError::Refused(format!(
            "{what} physical port {port} on {dev} ({})",
            command_name(opcode::PHYS_PORT_CONTROL)
        )));
    }
    let d = Dev::open(dev)?;
    let rc = d.change(
        opcode::PHYS_PORT_CONTROL,
        &switch::port_control_request(port, op),
    )?;
    Ok(changed(
        Record(vec![
            Field::num("port", port),
            Field::new("action", name, name).with("action_code", op.raw()),
        ]),
        rc,
    ))
}

fn ld_field(ld: u16) -> Field {
    if ld == LD_NONE {
        Field::new("ld", "none", serde_json::Value::Null).with("ld_code", ld)
    } else {
        Field::num("ld", ld).with("ld_code", ld)
    }
}

fn bind(dev: &str, [vcs, vppb, port]: [u8; 3], ld: u16, yes: bool) -> Result<Doc> {
    if !yes {
        let target = if ld == LD_NONE {
            format!("physical port {port}")
        } else {
            format!("LD {ld} of physical port {port}")
        };
        return Err(CliError::Refused(format!(
            "bind vPPB {vppb} of VCS {vcs} to {target} on {dev} ({})",
            command_name(opcode::BIND_VPPB)
        )));
    }
    let d = Dev::open(dev)?;
    let rc = d.change(
        opcode::BIND_VPPB,
        &switch::bind_vppb_request(vcs, vppb, port, ld),
    )?;
    Ok(changed(
        Record(vec![
            Field::num("vcs", vcs),
            Field::num("vppb", vppb),
            Field::num("port", port),
            ld_field(ld),
        ]),
        rc,
    ))
}

fn unbind(dev: &str, vcs: u8, vppb: u8, mode: UnbindMode, yes: bool) -> Result<Doc> {
    let (option, name, how) = match mode {
        UnbindMode::WaitLinkDown => (
            UnbindOption::WaitLinkDown,
            "wait-link-down",
            "waiting for the link to go down",
        ),
        UnbindMode::Managed => (
            UnbindOption::ManagedHotRemove,
            "managed",
            "as a managed hot-remove",
        ),
        UnbindMode::Surprise => (
            UnbindOption::SurpriseHotRemove,
            "surprise",
            "as a surprise hot-remove",
        ),
    };
    if !yes {
        return Err(CliError::Refused(format!(
            "unbind vPPB {vppb} of VCS {vcs} on {dev} {how} ({})",
            command_name(opcode::UNBIND_VPPB)
        )));
    }
    let d = Dev::open(dev)?;
    let rc = d.change(
        opcode::UNBIND_VPPB,
        &switch::unbind_vppb_request(vcs, vppb, option),
    )?;
    Ok(changed(
        Record(vec![
            Field::num("vcs", vcs),
            Field::num("vppb", vppb),
            Field::new("mode", name, name),
        ]),
        rc,
    ))
}

/// The bytes of `--in`; a file that cannot be read is an OS error.
fn input_bytes(input: Option<&hex::Input>) -> Result<Vec<u8>> {
    match input {
        None => Ok(Vec::new()),
        Some(i) => hex::read_input(i).map_err(|err| {
            let name = match i {
                hex::Input::File(p) if p == "-" => "standard input".to_string(),
                hex::Input::File(p) => p.clone(),
                hex::Input::Bytes(_) => "input".to_string(),
            };
            CliError::Lib(swcci::Error::Os {
                op: format!("read --in {name}"),
                err,
            })
        }),
    }
}

/// A raw command's dump; the return code is an error unless it is success or "background
/// command started".
fn raw(dev: &str, cmd: &RawCommand) -> Result<Report> {
    let input = input_bytes(cmd.input.as_ref())?;
    let d = Dev::open(dev)?;
    let r = d.raw(cmd.opcode, &input, cmd.out_size)?;
    let mut errors = Vec::new();
    if r.rc.errno().is_some() {
        errors.push(refused(d.op(&command_name(cmd.opcode)), r.rc));
    }
    Ok(Report {
        doc: Doc::Dump {
            record: Record(vec![decode::rc_field(r.rc)]),
            bytes: r.out,
        },
        errors,
    })
}

/// `port 1` or `port 1 LD 0`.
fn tunnel_target(port: u8, ld: Option<u8>) -> String {
    match ld {
        Some(ld) => format!("port {port} LD {ld}"),
        None => format!("port {port}"),
    }
}

fn tunnel(dev: &str, port: u8, ld: Option<u8>, what: &TunnelCommand) -> Result<Report> {
    let (op, input, out_size) = match what {
        TunnelCommand::Identify => (opcode::IDENTIFY, Vec::new(), None),
        TunnelCommand::Raw(c) => (c.opcode, input_bytes(c.input.as_ref())?, c.out_size),
    };
    let d = Dev::open(dev)?;
    let path: Vec<u8> = std::iter::once(port).chain(ld).collect();
    let t = d.dev.tunnel(&path, op, &input)?;
    let target = tunnel_target(port, ld);
    let mut record = decode::tunnel_record(port, ld, &t);
    let mut errors = Vec::new();
    if !t.outer_rc.is_success() {
        let what = format!("{} to {target}", command_name(opcode::TUNNEL));
        errors.push(refused(d.op(&what), t.outer_rc));
    } else if t.rc().errno().is_some() {
        let inner = t.header.map_or(op, |h| h.opcode);
        let what = format!("{} via {target}", command_name(inner));
        errors.push(refused(d.op(&what), t.rc()));
    }
    match what {
        TunnelCommand::Identify => {
            if let Some(e) = errors.into_iter().next() {
                return Err(e);
            }
            let id = decode::identify(&t.payload).map_err(|err| {
                let what = format!("{} via {target}", command_name(op));
                CliError::decode(d.op(&what), err)
            })?;
            record.extend(id);
            Ok(Doc::Record(record).into())
        }
        TunnelCommand::Raw(_) => {
            let mut bytes = t.payload;
            bytes.truncate(out_size.unwrap_or(usize::MAX));
            Ok(Report {
                doc: Doc::Dump { record, bytes },
                errors,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vppb_limits() {
        // 2 KiB payload, one VCS: (2044 - 4) / 4 = 510, capped at 255.
        assert_eq!(default_vppb_limit(2048, 1), 255);
        // 256 bytes, 4 VCSs: 252 / 4 = 63 per VCS, (63 - 4) / 4 = 14 vPPBs.
        assert_eq!(default_vppb_limit(256, 4), 14);
        // Never 0 (the device then says what it can do).
        assert_eq!(default_vppb_limit(256, 200), 1);
        assert_eq!(default_vppb_limit(0, 0), 1);
    }

    #[test]
    fn names() {
        assert_eq!(command_name(0x5100), "Identify Switch Device (5100h)");
        assert_eq!(command_name(0xc0de), "command (c0deh)");
        assert_eq!(tunnel_target(1, None), "port 1");
        assert_eq!(tunnel_target(1, Some(0)), "port 1 LD 0");
        assert!(is_switch_node(Path::new("/dev/cxl/switch0")));
        assert!(!is_switch_node(Path::new("/dev/cxl/mem0")));
    }

    #[test]
    fn destructive_commands_refuse_without_yes() {
        // The device does not exist: refusing must come before opening it.
        let dev = "/nonexistent/swcci-node";
        let e = port_control(dev, 3, PortAction::Reset, false).unwrap_err();
        assert_eq!(e.exit_code(), crate::error::EXIT_USAGE);
        assert_eq!(
            e.to_string(),
            "would reset the PPB of physical port 3 on /nonexistent/swcci-node \
             (Physical Port Control (5102h)); add --yes to do it"
        );
        let e = bind(dev, [0, 1, 2], 5, false).unwrap_err();
        assert!(
            e.to_string()
                .contains("bind vPPB 1 of VCS 0 to LD 5 of physical port 2"),
            "{e}"
        );
        let e = bind(dev, [0, 1, 2], LD_NONE, false).unwrap_err();
        assert!(e.to_string().contains("to physical port 2 on"), "{e}");
        let e = unbind(dev, 0, 1, UnbindMode::Surprise, false).unwrap_err();
        assert!(e.to_string().contains("as a surprise hot-remove"), "{e}");
        // With --yes the device is opened (and does not exist).
        let e = port_control(dev, 3, PortAction::Reset, true).unwrap_err();
        assert_eq!(e.exit_code(), crate::error::EXIT_OS);
        assert!(e.to_string().contains("ENOENT"), "{e}");
    }

    #[test]
    fn input_files() {
        assert_eq!(input_bytes(None).unwrap(), Vec::<u8>::new());
        let i = hex::Input::Bytes(vec![1]);
        assert_eq!(input_bytes(Some(&i)).unwrap(), vec![1]);
        let missing = hex::Input::File("/nonexistent/in.bin".into());
        let e = input_bytes(Some(&missing)).unwrap_err();
        assert_eq!(e.exit_code(), crate::error::EXIT_OS);
        assert_eq!(
            e.to_string(),
            "read --in /nonexistent/in.bin: ENOENT (No such file or directory)"
        );
    }

    #[test]
    fn ld_fields() {
        assert_eq!(ld_field(LD_NONE).text, "none");
        assert_eq!(ld_field(LD_NONE).json, serde_json::Value::Null);
        assert_eq!(ld_field(2).text, "2");
    }
}
