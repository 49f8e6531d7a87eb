// SPDX-License-Identifier: GPL-2.0

//! The commands: open the device, run the library's typed commands on the target, build the
//! document from the typed results.

use crate::args::{PortAction, RawCommand, TopologyArgs, UnbindMode};
use crate::decode;
use crate::dev::open;
use crate::error::CliError;
use crate::hex;
use crate::output::{Doc, Field, Outcome, Record, Report};
use std::io::IsTerminal;
use swcci::mctp::AnyMailbox;
use swcci::{command_name, Cci, Target};
use swcci_proto::opcode;
use swcci_proto::payload::switch::{PortOp, UnbindOption, LD_NONE};
use swcci_proto::rc::ReturnCode;
use swcci_proto::regs::MBOX_PAYLOAD_MAX;

type Result<T> = std::result::Result<T, CliError>;

/// Identify (0001h): on a tunnelled target, the target's port and LD come first.
pub fn identify(cci: &Cci<'_>) -> Result<Doc> {
    let id = cci.identify()?;
    let mut rec = match cci.target() {
        Target::Direct => Record::default(),
        t => decode::target_record(t),
    };
    rec.extend(decode::identify_record(&id));
    Ok(Doc::Record(rec))
}

pub fn switch_info(dev: &Cci<'_>) -> Result<Doc> {
    let s = dev.identify_switch()?;
    Ok(Doc::Record(decode::identify_switch_record(&s)))
}

pub fn ports(dev: &Cci<'_>, ports: &[u8]) -> Result<Doc> {
    let ids: Vec<u8> = if ports.is_empty() {
        dev.identify_switch()?.active_port_ids().collect()
    } else {
        ports.to_vec()
    };
    let rows = dev
        .port_states(&ids)?
        .iter()
        .map(decode::port_record)
        .collect();
    Ok(Doc::Table {
        rows,
        empty: "no active ports",
    })
}

pub fn vcs(cci: &Cci<'_>, vcs: &[u8], start: u8, limit: Option<u8>) -> Result<Doc> {
    let ids: Vec<u8> = if vcs.is_empty() {
        cci.identify_switch()?.active_vcs_ids().collect()
    } else {
        vcs.to_vec()
    };
    let empty = "no active VCSs";
    let groups = if ids.is_empty() {
        Vec::new()
    } else {
        let limit = match limit {
            Some(l) => l,
            None => swcci::vppb_limit(cci.payload_size()?, ids.len()),
        };
        cci.vcs_info(start, limit, &ids)?
            .iter()
            .map(decode::vcs_group)
            .collect()
    };
    Ok(Doc::Groups {
        groups,
        child: "vppbs",
        empty,
    })
}

pub fn logs(cci: &Cci<'_>) -> Result<Doc> {
    let rows = cci
        .supported_logs()?
        .iter()
        .map(decode::log_record)
        .collect();
    Ok(Doc::Table {
        rows,
        empty: "no logs",
    })
}

/// The CEL's entries; a log the device ended early is printed with a warning.
pub fn cel(cci: &Cci<'_>) -> Result<Report> {
    let log = cci.cel_log()?;
    let mut warnings = Vec::new();
    if log.is_short() {
        warnings.push(format!(
            "{}: the device ended the Command Effects Log after {} of the {} bytes Get \
             Supported Logs (0400h) announced; showing the entries read",
            cci.op(command_name(opcode::GET_LOG)),
            log.read,
            log.announced
        ));
    }
    Ok(Report {
        doc: Some(Doc::Table {
            rows: log.entries.iter().map(decode::cel_record).collect(),
            empty: "the Command Effects Log is empty",
        }),
        warnings,
        errors: Vec::new(),
    })
}

pub fn bg_status(cci: &Cci<'_>) -> Result<Doc> {
    Ok(Doc::Record(decode::bg_status_record(&cci.bg_status()?)))
}

pub fn abort(cci: &Cci<'_>) -> Result<Doc> {
    let rc = cci.abort_bg()?;
    Ok(Doc::Record(Record(vec![
        decode::opcode_field("opcode", "opcode_name", opcode::REQUEST_ABORT_BG),
        decode::rc_field(rc),
    ])))
}

/// Every node that answers, plus an error for each node that exists but does not.
pub fn list() -> Result<Report> {
    let mut r = list_report(swcci::list()?);
    // MCTP endpoints the kernel routes to that answer FM-API (none without MCTP).
    let timeout = crate::dev::mctp_options()
        .map_or(swcci::mctp::DEFAULT_TIMEOUT, |o| o.timeout)
        .min(std::time::Duration::from_millis(500));
    let found = swcci::mctp::discover(timeout);
    if !found.is_empty() {
        if let Some(Doc::Table { rows, empty }) = &mut r.doc {
            rows.extend(found.iter().map(decode::mctp_list_row));
            *empty = "";
        }
    }
    Ok(r)
}

/// The table of `nodes` and an error for each that could not be asked. "No nodes" is said
/// only when there are none at all: nodes that exist but failed (EACCES for a non-root user)
/// leave the table empty and speak through their errors.
fn list_report(nodes: Vec<swcci::Node>) -> Report {
    let none = nodes.is_empty();
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    for n in nodes {
        match n.info {
            Ok(info) => rows.push(decode::list_row(&n.path, &info)),
            Err(e) => errors.push(e.into()),
        }
    }
    Report {
        doc: Some(Doc::Table {
            rows,
            empty: if none {
                "no cxl_swcci nodes in /dev/cxl or /dev/swcci (is cxl_swcci loaded?)"
            } else {
                ""
            },
        }),
        warnings: Vec::new(),
        errors,
    }
}

/// Whether stdout gets colours: a terminal, and NO_COLOR (no-color.org) unset or empty.
fn colour() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// The fabric walk, rendered. Each error is reported on standard error; the exit status is
/// that of the first error when no switch could be read ([`swcci::fabric::Fabric::nothing_read`]),
/// else 7 (partial) when anything could not be read.
pub fn topology(a: &TopologyArgs, json: bool) -> Outcome {
    let nodes = if a.devs.is_empty() {
        match swcci::list() {
            Ok(n) => n,
            Err(e) => {
                return Outcome {
                    errors: vec![e.into()],
                    ..Outcome::default()
                }
            }
        }
    } else {
        a.devs
            .iter()
            .filter(|d| !swcci::mctp::MctpAddr::is_mctp(d))
            .map(swcci::node)
            .collect()
    };
    let opts = swcci::fabric::WalkOptions {
        timeout: std::time::Duration::from_millis(a.timeout),
    };
    let mut fabric = swcci::fabric::walk(nodes, &opts);
    // MCTP endpoints named on the command line, after the driver's nodes.
    let mut endpoints = Vec::new();
    for d in a.devs.iter().filter(|d| swcci::mctp::MctpAddr::is_mctp(d)) {
        match open(d) {
            Ok(m) => endpoints.push(m),
            Err(e) => {
                return Outcome {
                    errors: vec![e],
                    ..Outcome::default()
                }
            }
        }
    }
    if !endpoints.is_empty() {
        let mbs: Vec<&(dyn swcci::Mailbox + Sync)> =
            endpoints.iter().map(|m| m.mailbox()).collect();
        let ms = u32::try_from(a.timeout).unwrap_or(u32::MAX);
        for m in &mbs {
            let _ = m.set_bg_timeout(ms);
        }
        let more = swcci::fabric::walk_mailboxes(&mbs, &opts);
        fabric.switches.extend(more.switches);
        fabric.errors.extend(more.errors);
    }
    let stdout = if json {
        format!("{:#}\n", crate::topology::to_json(&fabric))
    } else if a.dot {
        crate::topology::to_dot(&fabric)
    } else {
        crate::topology::to_tree(&fabric, &crate::topology::Palette::new(colour()))
    };
    Outcome {
        stdout,
        warnings: Vec::new(),
        errors: topology_errors(fabric),
    }
}

/// The walk's errors: each its own (OS error, refusal...) when no switch could be read, else
/// partial results.
fn topology_errors(fabric: swcci::fabric::Fabric) -> Vec<CliError> {
    let nothing_read = fabric.nothing_read();
    fabric
        .errors
        .into_iter()
        .map(|e| {
            if nothing_read {
                CliError::Lib(e.error)
            } else {
                CliError::Partial(e.error)
            }
        })
        .collect()
}

/// A record of a state change that was done, ending with its return code.
fn changed(mut fields: Record, rc: ReturnCode) -> Doc {
    fields.push(decode::rc_field(rc));
    Doc::Record(fields)
}

pub fn port_control(dev: &str, port: u8, action: PortAction, yes: bool) -> Result<Doc> {
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
    let rc = open(dev)?.on(Target::Direct).port_control(port, op)?;
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

pub fn bind(dev: &str, [vcs, vppb, port]: [u8; 3], ld: u16, yes: bool) -> Result<Doc> {
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
    let rc = open(dev)?
        .on(Target::Direct)
        .bind_vppb(vcs, vppb, port, ld)?;
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

pub fn unbind(dev: &str, vcs: u8, vppb: u8, mode: UnbindMode, yes: bool) -> Result<Doc> {
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
    let rc = open(dev)?
        .on(Target::Direct)
        .unbind_vppb(vcs, vppb, option)?;
    Ok(changed(
        Record(vec![
            Field::num("vcs", vcs),
            Field::num("vppb", vppb),
            Field::new("mode", name, name),
        ]),
        rc,
    ))
}

/// The bytes of `--in`, at most `max` of them (bytes): a file that cannot be read is an OS
/// error, more than `max` bytes a usage error ([`too_large`]). At most `max + 1` bytes are
/// read, so an endless file (`/dev/zero`) costs no more.
fn input_bytes(input: Option<&hex::Input>, max: usize, what: &str) -> Result<Vec<u8>> {
    let Some(i) = input else {
        return Ok(Vec::new());
    };
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    let bytes = hex::read_input(i, limit).map_err(|err| {
        CliError::Lib(swcci::Error::Os {
            op: format!("read --in {}", input_name(i)),
            err,
        })
    })?;
    if bytes.len() > max {
        return Err(too_large(i, max, what));
    }
    Ok(bytes)
}

/// `standard input`, the file's name, or `input` for hex bytes.
fn input_name(i: &hex::Input) -> String {
    match i {
        hex::Input::File(p) if p == "-" => "standard input".to_string(),
        hex::Input::File(p) => p.clone(),
        hex::Input::Bytes(_) => "input".to_string(),
    }
}

/// The usage error (exit status 2) of an `--in` larger than the `max`-byte payload of `what`,
/// naming both sizes (the input's when known without reading it all).
fn too_large(i: &hex::Input, max: usize, what: &str) -> CliError {
    let size = match hex::input_len(i) {
        Some(n) => format!("{n} B"),
        None => format!("more than {max} B"),
    };
    CliError::Exit {
        code: crate::error::EXIT_USAGE,
        message: format!(
            "--in {}: input of {size} exceeds the {max}-byte payload of {what}; nothing was sent",
            input_name(i)
        ),
    }
}

/// A raw command's return codes and dump, on any target. A return code other than success or
/// "background command started", at any level, is an error after the dump.
///
/// `--in` is read before the device is opened, up to the largest mailbox payload (1 MiB, CXL
/// r3.1 §8.2.8.4.3), then checked against the target's payload ([`Cci::payload_size`]).
/// `raw --async`: the command with the driver's asynchronous background mode; a background
/// operation is waited for in poll(2) (EPOLLIN), with its progress on a terminal, and its
/// outcome printed (SWCCI_IOCTL_BG_RESULT, Documentation/abi.rst). A command the device runs
/// in the foreground is printed as `raw` prints it.
pub fn raw_async(dev: &str, cmd: &RawCommand, json: bool) -> Result<Outcome> {
    use swcci::proto::uapi::*;
    let input = input_bytes(
        cmd.input.as_ref(),
        MBOX_PAYLOAD_MAX,
        "any mailbox (CXL r3.1 §8.2.8.4.3)",
    )?;
    let d = match open(dev)? {
        AnyMailbox::Device(d) => d,
        AnyMailbox::Mctp(_) => {
            return Err(CliError::Refused(format!(
                "--async waits with the driver's poll(2): {dev} is an MCTP endpoint, use raw without --async"
            )))
        }
    };
    let name = command_name(cmd.opcode);
    d.bg_policy(SwcciBgPolicy {
        timeout_ms: 0,
        flags: SWCCI_BG_ASYNC | SWCCI_BG_ABORT_ON_TIMEOUT,
    })?;
    let r = d.raw(
        cmd.opcode,
        &input,
        cmd.out_size.unwrap_or(d.payload_size()?),
    )?;
    if r.rc != ReturnCode::BackgroundStarted {
        let line = if json {
            serde_json::json!({"opcode": cmd.opcode, "state": "foreground", "retval": r.rc.raw(),
                   "retval_name": r.rc.to_string(), "output": crate::hex::to_hex(&r.out)})
            .to_string()
        } else {
            format!("{name}: {} (ran in the foreground)", r.rc)
        };
        return Ok(async_outcome(line, r.rc, &d, cmd.opcode));
    }
    let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    if !json {
        eprintln!("{name}: background operation started");
    }
    let res = loop {
        let ev = d.poll(libc::POLLIN, 1000)?;
        if ev & (libc::POLLHUP | libc::POLLERR) != 0 {
            return Err(CliError::Exit {
                code: crate::error::EXIT_OS,
                message: format!("{} was unbound or stopped answering", d.path().display()),
            });
        }
        let res = d.bg_result()?;
        if res.state != SWCCI_BG_STATE_RUNNING {
            break res;
        }
        if tty && !json {
            eprint!("\r{name}: {}%", res.percent);
        }
    };
    if tty && !json {
        eprintln!();
    }
    let state = match res.state {
        SWCCI_BG_STATE_DONE => "done",
        SWCCI_BG_STATE_LOST => "lost",
        SWCCI_BG_STATE_VANISHED => "vanished",
        _ => "none",
    };
    let rc = ReturnCode::from_raw(res.retval);
    let line = if json {
        serde_json::json!({"opcode": cmd.opcode, "state": state, "retval": res.retval,
               "retval_name": rc.to_string(), "vendor_status": res.vendor_status})
        .to_string()
    } else if res.state == SWCCI_BG_STATE_DONE {
        format!("{name}: background operation ended: {rc}")
    } else {
        format!("{name}: background operation {state}: its result is not known")
    };
    if res.state != SWCCI_BG_STATE_DONE {
        return Err(CliError::Exit {
            code: crate::error::EXIT_OS,
            message: line,
        });
    }
    Ok(async_outcome(line, rc, &d, cmd.opcode))
}

/// The outcome of `raw --async`: its line, and the device's refusal as an error.
fn async_outcome(line: String, rc: ReturnCode, d: &swcci::Device, opcode: u16) -> Outcome {
    let errors = if rc.is_success() || rc == ReturnCode::BackgroundStarted {
        Vec::new()
    } else {
        vec![CliError::Lib(swcci::Error::Device {
            op: format!("{} on {}", command_name(opcode), d.path().display()),
            rc,
        })]
    };
    Outcome {
        stdout: format!("{line}\n"),
        warnings: Vec::new(),
        errors,
    }
}

pub fn raw(dev: &str, target: Target, cmd: &RawCommand) -> Result<Report> {
    let input = input_bytes(
        cmd.input.as_ref(),
        MBOX_PAYLOAD_MAX,
        "any mailbox (CXL r3.1 §8.2.8.4.3)",
    )?;
    let d = open(dev)?;
    let cci = d.on(target);
    let payload = cci.payload_size()?;
    if let Some(i) = cmd.input.as_ref().filter(|_| input.len() > payload) {
        return Err(too_large(i, payload, &cci.op(command_name(cmd.opcode))));
    }
    let out_size = cmd.out_size.unwrap_or(payload);
    let r = cci.raw(cmd.opcode, &input, out_size)?;
    let errors = cci
        .refusal(cmd.opcode, &r)
        .map(CliError::Lib)
        .into_iter()
        .collect();
    Ok(Report {
        doc: Some(Doc::Dump {
            record: decode::response_record(target, &r),
            bytes: r.payload,
        }),
        warnings: Vec::new(),
        errors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(command_name(0x5100), "Identify Switch Device (5100h)");
        assert_eq!(command_name(0xc0de), "command (c0deh)");
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
        let what = "Identify (0001h) on /dev/cxl/switch0";
        assert_eq!(input_bytes(None, 8, what).unwrap(), Vec::<u8>::new());
        let i = hex::Input::Bytes(vec![1]);
        assert_eq!(input_bytes(Some(&i), 8, what).unwrap(), vec![1]);
        let missing = hex::Input::File("/nonexistent/in.bin".into());
        let e = input_bytes(Some(&missing), 8, what).unwrap_err();
        assert_eq!(e.exit_code(), crate::error::EXIT_OS);
        assert_eq!(
            e.to_string(),
            "read --in /nonexistent/in.bin: ENOENT (No such file or directory)"
        );
    }

    #[test]
    fn input_larger_than_the_payload() {
        let what = "Identify (0001h) on /dev/cxl/switch0";
        // Exactly the payload fits; one byte more does not.
        let i = hex::Input::Bytes(vec![7; 4]);
        assert_eq!(input_bytes(Some(&i), 4, what).unwrap().len(), 4);
        let e = input_bytes(Some(&i), 3, what).unwrap_err();
        assert_eq!(e.exit_code(), crate::error::EXIT_USAGE);
        assert_eq!(
            e.to_string(),
            "--in input: input of 4 B exceeds the 3-byte payload of Identify (0001h) on \
             /dev/cxl/switch0; nothing was sent"
        );
        // A regular file: its size.
        let path = std::env::temp_dir().join(format!("swcci-in-{}", std::process::id()));
        std::fs::write(&path, vec![0u8; 3000]).unwrap();
        let f = hex::Input::File(path.display().to_string());
        let e = input_bytes(Some(&f), 2048, what).unwrap_err();
        std::fs::remove_file(&path).unwrap();
        assert!(
            e.to_string()
                .contains("input of 3000 B exceeds the 2048-byte payload"),
            "{e}"
        );
        // An endless one: refused after payload + 1 bytes.
        let zero = hex::Input::File("/dev/zero".into());
        let e = input_bytes(Some(&zero), 2048, what).unwrap_err();
        assert_eq!(e.exit_code(), crate::error::EXIT_USAGE);
        assert_eq!(
            e.to_string(),
            "--in /dev/zero: input of more than 2048 B exceeds the 2048-byte payload of \
             Identify (0001h) on /dev/cxl/switch0; nothing was sent"
        );
        assert_eq!(
            too_large(&i, 3, what).to_string(),
            "--in input: input of 4 B exceeds the 3-byte payload of Identify (0001h) on \
             /dev/cxl/switch0; nothing was sent"
        );
    }

    fn unread_switch(node: &str, identify: bool) -> swcci::fabric::Switch {
        use swcci_proto::payload::identify::{ComponentType, Identify};
        swcci::fabric::Switch {
            node: node.into(),
            info: None,
            identify: identify.then_some(Identify {
                vendor_id: 0x19e5,
                device_id: 0xa128,
                subsys_vendor_id: 0,
                subsys_id: 0,
                serial: 1,
                max_msg_size_log2: 11,
                component_type: ComponentType::from_raw(0),
            }),
            identify_switch: None,
            vcss: None,
            ports: Vec::new(),
            partial: true,
            commands: 1,
            elapsed: std::time::Duration::ZERO,
        }
    }

    fn eperm(node: &str) -> swcci::fabric::ItemError {
        swcci::fabric::ItemError {
            place: swcci::fabric::Place {
                node: node.into(),
                target: Target::Direct,
            },
            error: swcci::Error::Os {
                op: format!("Identify (0001h) on {node}"),
                err: std::io::Error::from_raw_os_error(libc::EPERM),
            },
        }
    }

    #[test]
    fn topology_exit_status() {
        // A switch listed but answering nothing (EPERM): not read, the error's own status.
        let f = swcci::fabric::Fabric {
            switches: vec![unread_switch("/dev/cxl/switch0", false)],
            errors: vec![eperm("/dev/cxl/switch0")],
        };
        let e = topology_errors(f);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].exit_code(), crate::error::EXIT_OS);
        // Next to a switch that was read: partial.
        let f = swcci::fabric::Fabric {
            switches: vec![
                unread_switch("/dev/cxl/switch0", false),
                unread_switch("/dev/cxl/switch1", true),
            ],
            errors: vec![eperm("/dev/cxl/switch0")],
        };
        let e = topology_errors(f);
        assert_eq!(e[0].exit_code(), crate::error::EXIT_PARTIAL);
    }

    #[test]
    fn list_says_no_nodes_only_when_there_are_none() {
        let r = list_report(Vec::new());
        assert!(r.errors.is_empty());
        let doc = r.doc.unwrap();
        assert_eq!(
            doc.render(false),
            "no cxl_swcci nodes in /dev/cxl or /dev/swcci (is cxl_swcci loaded?)\n"
        );
        assert_eq!(doc.render(true), "[]\n");
        // A node that exists but cannot be opened: no table, no "no nodes", its error.
        let r = list_report(vec![swcci::Node {
            path: "/dev/cxl/switch0".into(),
            info: Err(swcci::Error::Os {
                op: "open /dev/cxl/switch0".into(),
                err: std::io::Error::from_raw_os_error(libc::EACCES),
            }),
        }]);
        let doc = r.doc.unwrap();
        assert_eq!(doc.render(false), "");
        assert_eq!(doc.render(true), "[]\n");
        assert_eq!(r.errors.len(), 1);
        assert_eq!(r.errors[0].exit_code(), crate::error::EXIT_OS);
        assert!(r.errors[0].to_string().contains("EACCES"));
    }

    #[test]
    fn ld_fields() {
        assert_eq!(ld_field(LD_NONE).text, "none");
        assert_eq!(ld_field(LD_NONE).json, serde_json::Value::Null);
        assert_eq!(ld_field(2).text, "2");
    }
}
