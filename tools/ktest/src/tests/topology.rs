// SPDX-License-Identifier: GPL-2.0

//! The swcci tool against the emulated switch (scenario `emu`): every subcommand, `swcci
//! topology` compared with the fabric the emulator describes (`swcci-emu --describe-json`,
//! which the runner writes into the topology description), bind and unbind changing the view
//! and returning it, and a device that never answers reported partial. Also the topology
//! benchmark (scenario `bench-topology`).

use crate::env::Env;
use crate::tests::cli::{field, fields, json, line_with, num, serial_text, swcci, text};
use crate::tests::emu::{devices, EmuDev};
use crate::Outcome;
use anyhow::{ensure, Context, Result};
use serde_json::Value;
use std::time::Instant;
use swcci::topology::{EmuDevice, EmuFabric, EmuVcs};

/// The emulated switch with a fabric (the runner gives the first one `--mld-port`,
/// `--dead-port`, ...), its node, and its fabric as the runner described it.
fn fabric_switch(env: &mut Env) -> Result<(EmuDev, String, EmuFabric)> {
    let d = devices(env)?
        .into_iter()
        .find(|d| d.spec.personality == "switch" && !d.spec.args.is_empty())
        .context("no emulated switch with a fabric in this scenario")?;
    let node = d.path.display().to_string();
    let f = d
        .spec
        .fabric
        .clone()
        .context("the runner described no fabric")?;
    Ok((d, node, f))
}

/// The fabric as the emulator sees it now (`get fabric`).
fn current(d: &EmuDev) -> Result<EmuFabric> {
    let line = d.ctl()?.cmd("get fabric")?;
    serde_json::from_str(&line).with_context(|| format!("get fabric: {line}"))
}

/// Get Physical Port State's name of a device kind.
fn type_name(dev: Option<&EmuDevice>) -> &'static str {
    match dev.map(|d| d.kind.as_str()) {
        None => "none",
        Some("mld") => "cxl-type-3-mld",
        Some(_) => "cxl-type-3-sld",
    }
}

/// Compares the `vcs` member of a topology (or `swcci vcs --json`) with the description.
fn check_vcs(got: &Value, want: &[EmuVcs]) -> Result<()> {
    let got = got.as_array().context("vcs: not an array")?;
    ensure!(
        got.len() == want.len(),
        "{} VCSs, expected {}",
        got.len(),
        want.len()
    );
    for (g, w) in got.iter().zip(want) {
        ensure!(num(&g["vcs"])? == u64::from(w.vcs), "VCS {g}");
        ensure!(
            num(&g["usp"])? == u64::from(w.usp),
            "VCS {}: usp {}",
            w.vcs,
            g["usp"]
        );
        let vppbs = g["vppbs"].as_array().context("vppbs")?;
        ensure!(
            vppbs.len() == w.vppbs.len(),
            "VCS {}: {} vPPBs",
            w.vcs,
            vppbs.len()
        );
        for (gv, wv) in vppbs.iter().zip(&w.vppbs) {
            let what = format!("VCS {} vPPB {}", w.vcs, wv.vppb);
            ensure!(num(&gv["vppb"])? == u64::from(wv.vppb), "{what}: {gv}");
            ensure!(
                gv["binding"] == wv.status.as_str(),
                "{what}: {gv}, expected {wv:?}"
            );
            if wv.status != "unbound" {
                ensure!(gv["port"] == Value::from(wv.port), "{what}: {gv}");
            }
            if wv.status == "bound-ld" {
                ensure!(gv["ld"] == Value::from(wv.ld), "{what}: {gv}");
            }
        }
    }
    Ok(())
}

/// Compares one switch of `swcci topology --json` with the emulator's description. The dead
/// device must be partial; everything else read.
fn check_switch(s: &Value, f: &EmuFabric, serial: u64) -> Result<()> {
    ensure!(
        s["identify"]["serial"] == serial,
        "switch {}",
        s["identify"]
    );
    check_vcs(&s["vcs"], &f.vcs)?;
    let ports = s["ports"].as_array().context("ports")?;
    ensure!(
        ports.len() == f.ports.len(),
        "{} ports, described {}",
        ports.len(),
        f.ports.len()
    );
    for (g, w) in ports.iter().zip(&f.ports) {
        let what = format!("port {}", w.port);
        ensure!(num(&g["port"])? == u64::from(w.port), "{what}: {g}");
        ensure!(
            g["state"] == w.state.as_str(),
            "{what}: state {}, described {}",
            g["state"],
            w.state
        );
        let usp = w.role == "usp";
        if !usp {
            ensure!(
                g["type"] == type_name(w.device.as_ref()),
                "{what}: type {}",
                g["type"]
            );
        }
        let d = &g["device"];
        match &w.device {
            None => ensure!(d.is_null(), "{what}: {d}"),
            Some(_) if usp => ensure!(d.is_null(), "{what}: {d}"),
            Some(dev) if dev.kind == "dead" => {
                ensure!(
                    d["partial"] == true && d["identify"].is_null(),
                    "{what}: {d}"
                );
            }
            Some(dev) => {
                ensure!(d["partial"] == false, "{what}: {d}");
                ensure!(d["identify"]["serial"] == dev.serial, "{what}: {d}");
                ensure!(d["identify"]["vendor_id"] == dev.vendor, "{what}: {d}");
                ensure!(d["identify"]["device_id"] == dev.device, "{what}: {d}");
                if dev.kind == "mld" {
                    ensure!(
                        num(&d["ld_info"]["ld_count"])? == dev.lds.len() as u64,
                        "{what}: {d}"
                    );
                    if let Some(m) = dev.memory_size {
                        ensure!(num(&d["ld_info"]["memory_size"])? == m, "{what}: {d}");
                    }
                    let lds = d["ld_allocations"]["lds"].as_array().context("lds")?;
                    ensure!(lds.len() == dev.lds.len(), "{what}: {} LDs", lds.len());
                    for (gl, wl) in lds.iter().zip(&dev.lds) {
                        ensure!(num(&gl["ld"])? == u64::from(wl.ld), "{what}: {gl}");
                        ensure!(num(&gl["range1"])? == wl.range1, "{what}: {gl}, {wl:?}");
                        ensure!(num(&gl["range2"])? == wl.range2, "{what}: {gl}, {wl:?}");
                    }
                } else {
                    ensure!(d["ld_info"].is_null(), "{what}: {d}");
                }
            }
        }
    }
    Ok(())
}

/// The port of the device of `kind`.
fn port_of(f: &EmuFabric, kind: &str) -> Result<u8> {
    f.ports
        .iter()
        .find(|p| p.device.as_ref().is_some_and(|d| d.kind == kind))
        .map(|p| p.port)
        .with_context(|| format!("no {kind} device in the fabric"))
}

pub fn commands(env: &mut Env) -> Result<Outcome> {
    let devs = devices(env)?;
    // list: every node of the driver, MMPT functions too.
    let rows = json(&["list"])?;
    let rows = rows.as_array().context("list")?;
    ensure!(
        rows.len() == devs.len(),
        "{} rows for {} devices",
        rows.len(),
        devs.len()
    );
    for d in &devs {
        let node = d.path.display().to_string();
        let row = rows
            .iter()
            .find(|r| r["node"] == node.as_str())
            .with_context(|| format!("no row for {node}"))?;
        let kind = if d.spec.personality == "switch" {
            "switch-cci"
        } else {
            "mmpt"
        };
        ensure!(row["kind"] == kind, "{node}: {row}");
        let mode = if d.spec.msix { "interrupt" } else { "poll" };
        ensure!(row["mode"] == mode, "{node}: {row}");
    }
    for d in devs.iter().filter(|d| d.spec.personality == "switch") {
        let node = d.path.display().to_string();
        let t = text(&["identify", &node])?;
        fields(
            "identify",
            &t,
            &[
                ("serial", serial_text(d.spec.serial)),
                ("vendor_id", "0x1b36".into()),
                ("component_type", "switch".into()),
            ],
        )?;
        let cel = json(&["cel", &node])?;
        let ops: Vec<u64> = cel
            .as_array()
            .context("cel")?
            .iter()
            .map(|e| num(&e["opcode"]))
            .collect::<Result<_>>()?;
        for op in [0x0001, 0x5100, 0x5101, 0x5200, 0x5201, 0x5202, 0x5300] {
            ensure!(ops.contains(&op), "{node}: CEL {ops:x?} lacks {op:04x}h");
        }
        let logs = text(&["logs", &node])?;
        line_with(
            &logs,
            &["Command Effects Log", &format!("{} bytes", ops.len() * 4)],
        )?;
        let bg = text(&["bg-status", &node])?;
        fields("bg-status", &bg, &[("running", "no".into())])?;
        // Abort with nothing running: accepted.
        let a = json(&["abort", &node])?;
        ensure!(a["rc"] == 0 && a["opcode"] == 5, "{a}");
        let raw = json(&["raw", &node, "--opcode", "0x0001", "--out-size", "16"])?;
        ensure!(raw["out"].as_str().map(str::len) == Some(32), "{raw}");
    }
    let (_, node, f) = fabric_switch(env)?;
    // switch-info and ports against the description.
    let si = text(&["switch-info", &node])?;
    let ids: Vec<String> = f.ports.iter().map(|p| p.port.to_string()).collect();
    fields("switch-info", &si, &[("active_ports", ids.join(","))])?;
    let ports = json(&["ports", &node])?;
    for w in &f.ports {
        let g = ports
            .as_array()
            .and_then(|a| a.iter().find(|r| r["port"] == w.port))
            .with_context(|| format!("no port {}", w.port))?;
        ensure!(g["state"] == w.state.as_str(), "port {}: {g}", w.port);
    }
    let vcs = json(&["vcs", &node])?;
    check_vcs(&vcs, &f.vcs)?;
    // Tunnelled: each device's Identify, and each LD of the MLD (a tunnel in a tunnel).
    for p in &f.ports {
        let Some(dev) = p
            .device
            .as_ref()
            .filter(|d| d.kind != "dead" && p.role != "usp")
        else {
            continue;
        };
        let port = p.port.to_string();
        let j = json(&["identify", &node, "--port", &port])?;
        ensure!(j["serial"] == dev.serial, "port {port}: {j}");
        for ld in &dev.lds {
            let l = ld.ld.to_string();
            let j = json(&["identify", &node, "--port", &port, "--ld", &l])?;
            ensure!(j["serial"] == ld.serial, "port {port} LD {l}: {j}");
            ensure!(j["ld"] == ld.ld, "{j}");
        }
    }
    let mld = port_of(&f, "mld")?.to_string();
    // A device that implements no logs refuses them: the refusal names the level.
    swcci(&["logs", &node, "--port", &mld])?.error(
        1,
        &[
            &format!("Get Supported Logs (0400h) via port {mld} on {node}"),
            "unsupported",
        ],
    )?;
    // Physical Port Control is not implemented by the emulated switch.
    swcci(&["port-control", &node, &mld, "reset", "--yes"])?
        .error(1, &["Physical Port Control (5102h)", "unsupported (03h)"])?;
    Ok(Outcome::Pass)
}

pub fn topology(env: &mut Env) -> Result<Outcome> {
    let (d, node, f) = fabric_switch(env)?;
    let dead = port_of(&f, "dead")?;
    let r = swcci(&["topology", &node, "--json"])?;
    let doc = r.json()?;
    // The dead device: its tunnel fails with internal error (04h) after dead-port-ms.
    r.error(
        7,
        &[
            &format!("Tunnel Management Command (5300h) to port {dead} on {node}"),
            "internal error (04h)",
        ],
    )?;
    ensure!(doc["partial"] == true, "{doc}");
    let errors = doc["errors"].as_array().context("errors")?;
    ensure!(errors.len() == 1, "errors: {}", doc["errors"]);
    ensure!(
        errors[0]["port"] == dead && errors[0]["rc"] == 4,
        "{}",
        errors[0]
    );
    let s = &doc["switches"][0];
    ensure!(s["partial"] == true, "{s}");
    check_switch(s, &f, d.spec.serial)?;
    // The emulator agrees with its own start-up description.
    let now = current(&d)?;
    check_switch(s, &now, d.spec.serial)?;
    // The tree shows the same.
    let r = swcci(&["topology", &node])?;
    let tree = r.stdout.clone();
    r.status(7)?;
    let mld = port_of(&f, "mld")?;
    line_with(&tree, &[&format!("port {mld} "), "cxl-type-3-mld"])?;
    line_with(&tree, &["device (identity not read) [partial]"])?;
    line_with(&tree, &["LD 3: range 1"])?;
    line_with(&tree, &["VCS 0 enabled"])?;
    // Every switch, QEMU's and both emulated ones.
    let all = swcci(&["topology", "--json"])?;
    let all_doc = all.json()?;
    all.status(7)?;
    let n = all_doc["switches"].as_array().map_or(0, Vec::len);
    let want = env
        .topo
        .emulated
        .iter()
        .filter(|e| e.personality == "switch")
        .count();
    ensure!(n == want, "{n} switches, {want} emulated");
    Ok(Outcome::Pass)
}

pub fn dead_device_partial(env: &mut Env) -> Result<Outcome> {
    let (d, node, f) = fabric_switch(env)?;
    let dead = port_of(&f, "dead")?;
    let mut ctl = d.ctl()?;
    // The dead device's tunnel never completes: the driver's doorbell timeout ends it.
    ctl.cmd("set dead-port-ms 0")?;
    let started = Instant::now();
    let r = swcci(&["topology", &node, "--json", "--timeout", "1000"]);
    let took = started.elapsed();
    ctl.cmd("clear")?;
    ctl.cmd("set dead-port-ms 1000")?;
    let r = r?;
    let doc = r.json()?;
    env.note(format!(
        "topology with a device that never answers: {} ms",
        took.as_millis()
    ));
    r.error(
        7,
        &[
            &format!("Identify (0001h) via port {dead} on {node}"),
            "ETIMEDOUT",
        ],
    )?;
    let e = &doc["errors"][0];
    ensure!(
        e["port"] == dead && e["timeout"] == true && e["errno_name"] == "ETIMEDOUT",
        "{e}"
    );
    let s = &doc["switches"][0];
    // Every other device was read (the dead port is the last one asked).
    check_switch(s, &f, d.spec.serial)?;
    // The switch answers again once the emulator gives up the command.
    let t = text(&["identify", &node])?;
    ensure!(field(&t, "serial")? == serial_text(d.spec.serial), "{t}");
    Ok(Outcome::Pass)
}

pub fn bind_unbind(env: &mut Env) -> Result<Outcome> {
    let (d, node, f) = fabric_switch(env)?;
    let vcs = f.vcs.first().context("no VCS")?;
    let free = vcs
        .vppbs
        .iter()
        .find(|v| v.status == "unbound")
        .context("no unbound vPPB")?
        .vppb;
    let mld_port = port_of(&f, "mld")?;
    let mld = f
        .ports
        .iter()
        .find(|p| p.port == mld_port)
        .and_then(|p| p.device.clone());
    let bound_lds: Vec<u8> = vcs
        .vppbs
        .iter()
        .filter(|v| v.port == Some(mld_port))
        .filter_map(|v| v.ld)
        .collect();
    let ld = mld
        .context("no MLD")?
        .lds
        .iter()
        .map(|l| l.ld)
        .find(|l| !bound_lds.contains(l))
        .context("every LD is bound")?;
    let (v, vp, p, l) = (
        vcs.vcs.to_string(),
        free.to_string(),
        mld_port.to_string(),
        ld.to_string(),
    );
    // (exit status 7 because of the dead device; the VCSs are what matters here)
    let before = swcci(&["topology", &node, "--json"])?.json()?;
    check_vcs(&before["switches"][0]["vcs"], &f.vcs)?;
    let bound = json(&[
        "bind", &node, "--vcs", &v, "--vppb", &vp, "--port", &p, "--ld", &l, "--yes",
    ])?;
    ensure!(bound["rc"] == 0, "bind: {bound}");
    let after = json(&["vcs", &node])?;
    let g = &after[0]["vppbs"][usize::from(free)];
    ensure!(
        g["binding"] == "bound-ld" && g["port"] == mld_port && g["ld"] == ld,
        "after bind: {g}"
    );
    let now = current(&d)?;
    check_vcs(&after, &now.vcs)?;
    let t = swcci(&["topology", &node])?;
    line_with(
        &t.stdout,
        &[&format!("vPPB {free} bound-ld → port {mld_port} LD {ld}")],
    )?;
    // Binding the same LD again: the device refuses it.
    swcci(&[
        "bind", &node, "--vcs", &v, "--vppb", &vp, "--port", &p, "--ld", &l, "--yes",
    ])?
    .error(1, &["Bind vPPB (5201h)", "invalid input"])?;
    let un = json(&["unbind", &node, "--vcs", &v, "--vppb", &vp, "--yes"])?;
    ensure!(un["rc"] == 0, "unbind: {un}");
    let back = json(&["vcs", &node])?;
    check_vcs(&back, &f.vcs)?;
    let doc = swcci(&["topology", &node, "--json"])?.json()?;
    check_switch(&doc["switches"][0], &f, d.spec.serial)?;
    Ok(Outcome::Pass)
}

/// `swcci topology` of 1, 2, 4 and 8 switches of 4 type-3 devices each: wall time (median of
/// 11 runs) and commands sent, in the notes (a benchmark, not a timed test).
pub fn bench(env: &mut Env) -> Result<Outcome> {
    env.ensure_loaded()?;
    let mut nodes = Vec::new();
    for sw in env.topo.switches.clone() {
        nodes.push(env.node_for_serial(sw.serial)?.path().display().to_string());
    }
    let per = env.topo.switches.first().map_or(0, |s| s.type3.len());
    let mut n = 1;
    while n <= nodes.len() {
        let mut args = vec!["topology", "--json"];
        args.extend(nodes[..n].iter().map(String::as_str));
        let mut times = Vec::new();
        let mut commands = 0;
        for _ in 0..11 {
            let t = Instant::now();
            let r = swcci(&args)?;
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            let doc = r.json()?;
            r.ok()?;
            ensure!(doc["partial"] == false, "{}", doc["errors"]);
            commands = num(&doc["commands"])?;
        }
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        let devices = n * per;
        env.note(format!(
            "topology of {n} switch(es) x {per} devices: {median:.1} ms (median of 11, min \
             {:.1}), {commands} commands, {:.2} ms per device",
            times[0],
            median / devices.max(1) as f64
        ));
        n *= 2;
    }
    // The library alone (no process start), every switch.
    let t = Instant::now();
    let fabric = swcci::fabric::walk(swcci::list()?, &swcci::fabric::WalkOptions::default());
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    ensure!(
        !fabric.is_partial(),
        "{:?}",
        fabric.errors.first().map(|e| e.error.to_string())
    );
    let slowest = fabric
        .switches
        .iter()
        .map(|s| s.elapsed)
        .max()
        .unwrap_or_default();
    env.note(format!(
        "library walk of {} switches: {ms:.1} ms, {} commands; slowest switch {:.1} ms \
         (switches are walked side by side)",
        fabric.switches.len(),
        fabric.commands(),
        slowest.as_secs_f64() * 1000.0
    ));
    Ok(Outcome::Pass)
}
