// SPDX-License-Identifier: GPL-2.0

//! The `swcci` tool on the real driver: every subcommand against QEMU's switches (scenario
//! `main`) and the emulated devices (scenario `emu`), its text output checked for the decoded
//! values and its `--json` output compared with the topology the runner built. Commands that
//! change the fabric run against the emulated switch only (QEMU's switch CCI implements no
//! bind, and its Physical Port Control asserts PERST# for real).

use crate::env::Env;
use crate::tests::driver::QEMU_SWITCH_OPCODES;
use crate::Outcome;
use anyhow::{ensure, Context, Result};
use serde_json::Value;
use std::collections::BTreeSet;
use std::process::Command;
use swcci::topology::{Switch, Topology};

/// Where the runner puts the tool.
const CLI: &str = "/swcci/bin/swcci";

/// One run of the tool.
pub struct Run {
    /// The command line, for messages.
    pub line: String,
    /// Exit status (-1: killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Runs `swcci ARGS`.
pub fn swcci(args: &[&str]) -> Result<Run> {
    let out = Command::new(CLI)
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .with_context(|| format!("run {CLI}"))?;
    Ok(Run {
        line: format!("swcci {}", args.join(" ")),
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

impl Run {
    /// Fails unless the exit status is `code`.
    pub fn status(self, code: i32) -> Result<Self> {
        ensure!(
            self.code == code,
            "{}: exit status {}, expected {code}; stderr: {}",
            self.line,
            self.code,
            self.stderr.trim()
        );
        Ok(self)
    }

    /// The standard output of a run that succeeded with nothing on stderr.
    pub fn ok(self) -> Result<String> {
        let r = self.status(0)?;
        ensure!(
            r.stderr.is_empty(),
            "{}: stderr: {}",
            r.line,
            r.stderr.trim()
        );
        Ok(r.stdout)
    }

    /// The standard error of a failed run: one line, `swcci: ...`, containing every word.
    pub fn error(self, code: i32, words: &[&str]) -> Result<String> {
        let r = self.status(code)?;
        let e = r.stderr.trim_end();
        ensure!(
            e.starts_with("swcci: ") && !e.contains('\n'),
            "{}: {e:?}",
            r.line
        );
        for w in words {
            ensure!(e.contains(w), "{}: `{w}` not in {e:?}", r.line);
        }
        Ok(e.to_string())
    }

    /// Standard output parsed as JSON.
    pub fn json(&self) -> Result<Value> {
        serde_json::from_str(&self.stdout)
            .with_context(|| format!("{}: not JSON: {}", self.line, self.stdout))
    }
}

/// `swcci ARGS --json`, exit status 0, parsed.
pub fn json(args: &[&str]) -> Result<Value> {
    let mut a = args.to_vec();
    a.push("--json");
    let r = swcci(&a)?;
    let v = r.json()?;
    r.ok()?;
    Ok(v)
}

/// `swcci ARGS`, exit status 0: the text output.
pub fn text(args: &[&str]) -> Result<String> {
    swcci(args)?.ok()
}

/// Asserts `text` contains every needle.
pub fn contains(what: &str, text: &str, needles: &[String]) -> Result<()> {
    for n in needles {
        ensure!(text.contains(n.as_str()), "{what}: `{n}` not in\n{text}");
    }
    Ok(())
}

/// The value of `key` in `key : value` output.
pub fn field<'a>(text: &'a str, key: &str) -> Result<&'a str> {
    text.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(" : ")?;
            (k.trim_end() == key).then_some(v)
        })
        .with_context(|| format!("no `{key}` in\n{text}"))
}

/// Asserts `key : value` lines.
pub fn fields(what: &str, text: &str, want: &[(&str, String)]) -> Result<()> {
    for (k, v) in want {
        let got = field(text, k)?;
        ensure!(got == v, "{what}: {k} is `{got}`, expected `{v}`");
    }
    Ok(())
}

/// The line of a table or tree that contains every needle.
pub fn line_with<'a>(text: &'a str, needles: &[&str]) -> Result<&'a str> {
    text.lines()
        .find(|l| needles.iter().all(|n| l.contains(n)))
        .with_context(|| format!("no line with {needles:?} in\n{text}"))
}

/// `0x0000000000001234`, as the tool prints serials.
pub fn serial_text(serial: u64) -> String {
    format!("{serial:#018x}")
}

/// A JSON number as u64.
pub fn num(v: &Value) -> Result<u64> {
    v.as_u64().with_context(|| format!("not a number: {v}"))
}

/// The node of each switch of the topology, by serial.
fn nodes(env: &mut Env) -> Result<Vec<(Switch, String)>> {
    env.ensure_loaded()?;
    let mut out = Vec::new();
    for sw in env.topo.switches.clone() {
        let dev = env.node_for_serial(sw.serial)?;
        out.push((sw, dev.path().display().to_string()));
    }
    Ok(out)
}

pub fn list(env: &mut Env) -> Result<Outcome> {
    let nodes = nodes(env)?;
    let rows = json(&["list"])?;
    let rows = rows.as_array().context("list: not an array")?;
    ensure!(
        rows.len() == nodes.len(),
        "{} rows for {} switches",
        rows.len(),
        nodes.len()
    );
    let text = text(&["list"])?;
    for (sw, node) in &nodes {
        let row = rows
            .iter()
            .find(|r| r["node"] == node.as_str())
            .with_context(|| format!("no row for {node}"))?;
        ensure!(num(&row["serial"])? == sw.serial, "{node}: {row}");
        ensure!(row["kind"] == "switch-cci", "{node}: {row}");
        ensure!(row["vid_did"] == "19e5:a128", "{node}: {row}");
        ensure!(num(&row["payload_size"])? == 2048, "{node}: {row}");
        ensure!(row["mode"] == "poll", "QEMU's CCI has no interrupts: {row}");
        let line = text
            .lines()
            .find(|l| l.starts_with(node.as_str()))
            .with_context(|| format!("no line for {node} in\n{text}"))?;
        contains(
            "list",
            line,
            &[
                serial_text(sw.serial),
                "switch-cci".into(),
                "2048 bytes".into(),
            ],
        )?;
    }
    Ok(Outcome::Pass)
}

pub fn identify(env: &mut Env) -> Result<Outcome> {
    for (sw, node) in nodes(env)? {
        let j = json(&["identify", &node])?;
        ensure!(num(&j["serial"])? == sw.serial, "{node}: {j}");
        ensure!(j["component_type"] == "switch", "{node}: {j}");
        ensure!(num(&j["max_msg_size"])? == 2048, "{node}: {j}");
        let t = text(&["identify", &node])?;
        fields(
            "identify",
            &t,
            &[
                ("serial", serial_text(sw.serial)),
                ("vendor_id", "0x19e5".into()),
                ("device_id", "0xa128".into()),
                ("max_msg_size", "2048 bytes".into()),
                ("component_type", "switch".into()),
            ],
        )?;
        for t3 in &sw.type3 {
            let port = t3.port.to_string();
            // The same through every spelling of the target.
            for args in [
                vec!["identify", &node, "--port", &port],
                vec!["tunnel", &node, "--port", &port, "identify"],
                vec!["identify", &node, "--port", &port, "--ld", "0"],
            ] {
                let j = json(&args)?;
                ensure!(num(&j["serial"])? == t3.serial, "{args:?}: {j}");
                ensure!(j["component_type"] == "type-3 device", "{args:?}: {j}");
                ensure!(num(&j["port"])? == u64::from(t3.port), "{args:?}: {j}");
                ensure!(j["vendor_id"] == 0x8086, "{args:?}: {j}");
            }
            let t = text(&["identify", &node, "--port", &port])?;
            fields(
                "identify --port",
                &t,
                &[
                    ("port", port.clone()),
                    ("ld", "-".into()),
                    ("serial", serial_text(t3.serial)),
                    ("vendor_id", "0x8086".into()),
                    ("component_type", "type-3 device".into()),
                ],
            )?;
        }
    }
    Ok(Outcome::Pass)
}

pub fn switch_info_and_ports(env: &mut Env) -> Result<Outcome> {
    for (sw, node) in nodes(env)? {
        let mut want: Vec<u8> = sw.dsps.clone();
        want.push(sw.usp_port);
        want.sort_unstable();
        let j = json(&["switch-info", &node])?;
        let active: Vec<u64> = j["active_ports"]
            .as_array()
            .context("active_ports")?
            .iter()
            .map(num)
            .collect::<Result<_>>()?;
        ensure!(
            active == want.iter().map(|&p| u64::from(p)).collect::<Vec<_>>(),
            "{node}: active ports {active:?}, expected {want:?}"
        );
        ensure!(num(&j["physical_ports"])? == want.len() as u64, "{j}");
        let t = text(&["switch-info", &node])?;
        let ports_text: Vec<String> = want.iter().map(u8::to_string).collect();
        fields(
            "switch-info",
            &t,
            &[
                ("active_ports", ports_text.join(",")),
                ("physical_ports", want.len().to_string()),
            ],
        )?;

        let rows = json(&["ports", &node])?;
        let rows = rows.as_array().context("ports: not an array")?;
        ensure!(rows.len() == want.len(), "{} port rows", rows.len());
        let table = text(&["ports", &node])?;
        for p in &want {
            let row = rows
                .iter()
                .find(|r| r["port"] == *p)
                .with_context(|| format!("no row for port {p}"))?;
            let (state, kind) = if *p == sw.usp_port {
                ("USP", None)
            } else if sw.type3.iter().any(|t| t.port == *p) {
                ("DSP", Some("cxl-type-3-mld"))
            } else {
                ("DSP", Some("none"))
            };
            ensure!(row["state"] == state, "port {p}: {row}");
            if let Some(k) = kind {
                ensure!(row["type"] == k, "port {p}: {row}");
            }
            let line = table
                .lines()
                .find(|l| l.split_whitespace().next() == Some(p.to_string().as_str()))
                .with_context(|| format!("no line for port {p} in\n{table}"))?;
            ensure!(line.contains(state), "port {p}: {line}");
            if let Some(k) = kind {
                ensure!(line.contains(k), "port {p}: {line}");
            }
        }
        // Named ports, in one command.
        let two = json(&["ports", &node, &sw.usp_port.to_string(), "1"])?;
        ensure!(two.as_array().map(Vec::len) == Some(2), "{two}");
    }
    Ok(Outcome::Pass)
}

pub fn logs_cel_bg_status(env: &mut Env) -> Result<Outcome> {
    for (sw, node) in nodes(env)? {
        let logs = json(&["logs", &node])?;
        let cel = logs
            .as_array()
            .and_then(|l| l.iter().find(|e| e["name"] == "Command Effects Log"))
            .with_context(|| format!("{node}: no CEL in {logs}"))?;
        ensure!(
            num(&cel["size"])? == QEMU_SWITCH_OPCODES.len() as u64 * 4,
            "{cel}"
        );
        let entries = json(&["cel", &node])?;
        let ops: Vec<u64> = entries
            .as_array()
            .context("cel")?
            .iter()
            .map(|e| num(&e["opcode"]))
            .collect::<Result<_>>()?;
        let want: Vec<u64> = QEMU_SWITCH_OPCODES.iter().map(|&o| u64::from(o)).collect();
        ensure!(ops == want, "{node}: CEL {ops:x?}");
        let t = text(&["cel", &node])?;
        line_with(&t, &["5100h", "Identify Switch Device"])?;
        line_with(&t, &["5300h", "Tunnel Management Command"])?;
        // The type-3 device's own CCI, through the tunnel.
        let t3 = sw.type3.first().context("no type-3")?;
        let port = t3.port.to_string();
        let t3cel = json(&["cel", &node, "--port", &port])?;
        let t3ops: BTreeSet<u64> = t3cel
            .as_array()
            .context("cel --port")?
            .iter()
            .map(|e| num(&e["opcode"]))
            .collect::<Result<_>>()?;
        ensure!(
            t3ops.contains(&0x0001) && t3ops.contains(&0x0401),
            "type-3 CEL {t3ops:x?}"
        );
        json(&["logs", &node, "--port", &port])?;
        let bg = json(&["bg-status", &node])?;
        ensure!(bg["running"] == false, "{bg}");
        let t = text(&["bg-status", &node])?;
        fields("bg-status", &t, &[("running", "no".into())])?;
        // The CCI a tunnel reaches on QEMU's type-3 (its FM-owned LD) has no Background
        // Operation Status: the refusal names the command and the port.
        swcci(&["bg-status", &node, "--port", &port])?.error(
            1,
            &[
                &format!("Background Operation Status (0002h) via port {port} on {node}"),
                "unsupported (03h)",
            ],
        )?;
    }
    Ok(Outcome::Pass)
}

pub fn raw_and_tunnel(env: &mut Env) -> Result<Outcome> {
    let (sw, node) = nodes(env)?.into_iter().next().context("no switch")?;
    // Identify as raw bytes: the serial is at bytes 8..16.
    let j = json(&["raw", &node, "--opcode", "0x0001"])?;
    ensure!(j["rc"] == 0 && j["rc_name"] == "success", "{j}");
    let out = j["out"].as_str().context("out")?;
    ensure!(out.len() == 36, "18 bytes of Identify: {out}");
    ensure!(
        out[16..32] == hex_le(sw.serial),
        "serial in {out}, expected {}",
        hex_le(sw.serial)
    );
    let t = text(&["raw", &node, "--opcode", "0001h", "--out-size", "4"])?;
    fields(
        "raw",
        &t,
        &[("rc", "success (00h)".into()), ("out", "4 bytes".into())],
    )?;
    line_with(&t, &["00000000  e5 19 28 a1"])?;
    let t3 = sw.type3.first().context("no type-3")?;
    let port = t3.port.to_string();
    for args in [
        vec!["raw", &node, "--port", &port, "--opcode", "0x0001"],
        vec![
            "tunnel", &node, "--port", &port, "raw", "--opcode", "0x0001",
        ],
    ] {
        let j = json(&args)?;
        ensure!(j["outer_rc"] == 0 && j["rc"] == 0, "{args:?}: {j}");
        ensure!(j["inner_opcode"] == 1, "{args:?}: {j}");
        let out = j["out"].as_str().context("out")?;
        ensure!(out[16..32] == hex_le(t3.serial), "{args:?}: {out}");
    }
    // An empty port: the tunnel fails (invalid input), the dump still comes, exit status 1.
    let empty = sw
        .dsps
        .iter()
        .find(|p| !sw.type3.iter().any(|t| t.port == **p))
        .context("no empty port")?
        .to_string();
    let r = swcci(&[
        "tunnel", &node, "--port", &empty, "raw", "--opcode", "1", "--json",
    ])?;
    let j = r.json()?;
    ensure!(
        j["outer_rc"] == 2 && j["outer_rc_name"] == "invalid input",
        "{j}"
    );
    r.error(
        1,
        &[
            &format!("Tunnel Management Command (5300h) to port {empty} on {node}"),
            "invalid input",
        ],
    )?;
    swcci(&["identify", &node, "--port", &empty])?.error(
        1,
        &["Tunnel Management Command (5300h)", "invalid input (02h)"],
    )?;
    // A command the switch does not implement: the dump of nothing and exit status 1.
    swcci(&["raw", &node, "--opcode", "0x5200", "--in", "00 01 01 00"])?
        .error(1, &["Get Virtual CXL Switch Info (5200h)", "unsupported"])?;
    Ok(Outcome::Pass)
}

/// Bytes of `v` in little-endian order as hex.
fn hex_le(v: u64) -> String {
    v.to_le_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

pub fn refusals(env: &mut Env) -> Result<Outcome> {
    let (_, node) = nodes(env)?.into_iter().next().context("no switch")?;
    // QEMU's switch reports a VCS but does not implement Get Virtual CXL Switch Info.
    swcci(&["vcs", &node])?.error(
        1,
        &[
            "Get Virtual CXL Switch Info (5200h) on",
            "unsupported (03h)",
        ],
    )?;
    // Nothing is sent without --yes (QEMU's CCI is not touched).
    swcci(&["port-control", &node, "1", "reset"])?.error(2, &["--yes", "port 1"])?;
    swcci(&["bind", &node, "--vcs", "0", "--vppb", "1", "--port", "1"])?
        .error(2, &["--yes", "Bind vPPB (5201h)"])?;
    swcci(&["unbind", &node, "--vcs", "0", "--vppb", "1"])?
        .error(2, &["--yes", "Unbind vPPB (5202h)"])?;
    swcci(&["identify", "/dev/cxl/switch99"])?.error(3, &["ENOENT", "/dev/cxl/switch99"])?;
    Ok(Outcome::Pass)
}

/// Compares `swcci topology --json` with the QEMU switches of `topo`.
pub fn check_qemu_topology(topo: &Topology, doc: &Value) -> Result<()> {
    ensure!(doc["partial"] == false, "partial: {}", doc["errors"]);
    let switches = doc["switches"].as_array().context("switches")?;
    for sw in &topo.switches {
        let s = switches
            .iter()
            .find(|s| s["identify"]["serial"] == sw.serial)
            .with_context(|| format!("no switch with serial {:#x}", sw.serial))?;
        ensure!(s["partial"] == false, "{:#x}: partial", sw.serial);
        ensure!(s["vcs"].is_null(), "QEMU implements no 5200h: {}", s["vcs"]);
        let ports = s["ports"].as_array().context("ports")?;
        let got: BTreeSet<u64> = ports
            .iter()
            .map(|p| num(&p["port"]))
            .collect::<Result<_>>()?;
        let mut want: BTreeSet<u64> = sw.dsps.iter().map(|&p| u64::from(p)).collect();
        want.insert(u64::from(sw.usp_port));
        ensure!(
            got == want,
            "{:#x}: ports {got:?}, expected {want:?}",
            sw.serial
        );
        for p in ports {
            let id = num(&p["port"])?;
            let t3 = sw.type3.iter().find(|t| u64::from(t.port) == id);
            match t3 {
                Some(t3) => {
                    let d = &p["device"];
                    ensure!(d["partial"] == false, "port {id}: {d}");
                    ensure!(d["identify"]["serial"] == t3.serial, "port {id}: {d}");
                    ensure!(
                        d["identify"]["component_type"] == "type-3 device",
                        "port {id}: {d}"
                    );
                }
                None => ensure!(p["device"].is_null(), "port {id}: {}", p["device"]),
            }
        }
    }
    let n = switches.len();
    ensure!(n == topo.switches.len(), "{n} switches");
    Ok(())
}

pub fn topology(env: &mut Env) -> Result<Outcome> {
    let nodes = nodes(env)?;
    let doc = json(&["topology"])?;
    check_qemu_topology(&env.topo, &doc)?;
    env.note(format!(
        "{} switches, {} commands",
        env.topo.switches.len(),
        doc["commands"]
    ));
    // One switch named: only it.
    let (sw, node) = nodes.first().context("no switch")?;
    let one = json(&["topology", node])?;
    ensure!(
        one["switches"].as_array().map(Vec::len) == Some(1),
        "{}",
        one["switches"]
    );
    let tree = text(&["topology"])?;
    let mut needles = vec![format!("{node}"), serial_text(sw.serial)];
    for t3 in &sw.type3 {
        needles.push(format!("port {} DSP", t3.port));
        needles.push(format!(
            "8086:0d93 serial {} (type-3 device)",
            serial_text(t3.serial)
        ));
    }
    needles.push(format!("port {} USP", sw.usp_port));
    contains("topology", &tree, &needles)?;
    ensure!(
        !tree.contains("[partial]") && !tree.contains('\x1b'),
        "{tree}"
    );
    let dot = text(&["topology", "--dot"])?;
    ensure!(
        dot.starts_with("digraph fabric {") && dot.trim_end().ends_with('}'),
        "{dot}"
    );
    for t3 in &sw.type3 {
        ensure!(dot.contains(&serial_text(t3.serial)), "{dot}");
    }
    Ok(Outcome::Pass)
}
