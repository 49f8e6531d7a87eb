// SPDX-License-Identifier: GPL-2.0

//! The driver core against QEMU's switch CCIs: binding, probe, identity, the CEL, debugfs.

use crate::env::{Env, MODULE_NAME};
use crate::Outcome;
use anyhow::{bail, ensure, Context, Result};
use std::collections::BTreeSet;
use swcci::proto::payload::identify::ComponentType;
use swcci::proto::payload::switch::{ConnectedType, PortConfigState};
use swcci::proto::rc::ReturnCode;
use swcci::proto::uapi::SWCCI_INFO_IDENTIFIED;

/// The opcodes QEMU 11.1's switch CCI implements (its CEL).
pub const QEMU_SWITCH_OPCODES: &[u16] = &[
    0x0001, 0x0002, 0x0005, 0x0300, 0x0301, 0x0400, 0x0401, 0x5100, 0x5101, 0x5102, 0x5300,
];

pub fn load_binds(env: &mut Env) -> Result<Outcome> {
    env.ensure_unloaded()?;
    // Leaks from before the module was loaded are not ours.
    let _ = std::fs::write("/sys/kernel/debug/kmemleak", "clear");
    env.load("")?;
    env.wait_bound()?;
    let ccis = env.switch_ccis()?;
    ensure!(
        ccis.len() == env.topo.switches.len(),
        "{} switch CCIs (class 0c0b00) in the guest, topology has {}",
        ccis.len(),
        env.topo.switches.len()
    );
    for d in &ccis {
        let drv = env.driver_of(&d.addr);
        ensure!(
            drv.as_deref() == Some(MODULE_NAME),
            "{} bound to {drv:?}",
            d.addr
        );
        env.note(format!(
            "{} {:04x}:{:04x} bound",
            d.addr, d.vendor, d.device
        ));
    }
    let nodes = env.nodes()?;
    let names: Vec<String> = nodes.iter().map(|p| p.display().to_string()).collect();
    let want: Vec<String> = (0..ccis.len())
        .map(|i| format!("/dev/cxl/switch{i}"))
        .collect();
    ensure!(names == want, "nodes {names:?}, expected {want:?}");
    for p in &nodes {
        env.check_node_mode(p)?;
    }
    Ok(Outcome::Pass)
}

pub fn probe_lines(env: &mut Env) -> Result<Outcome> {
    env.ensure_loaded()?;
    env.kmsg();
    for d in env.switch_ccis()? {
        let prefix = format!("cxl_swcci {}: cxl/switch", d.addr);
        let line = env
            .history
            .iter()
            .rev()
            .find(|l| l.starts_with(&prefix))
            .with_context(|| format!("no probe line for {}", d.addr))?
            .clone();
        ensure!(
            line.contains("19e5:a128 serial 0x"),
            "probe line lacks identity: {line}"
        );
        ensure!(
            line.contains("payload 2048 B") && line.contains("polling"),
            "probe line: {line}"
        );
        ensure!(line.contains("CEL 11 commands"), "probe line: {line}");
        env.note(line);
    }
    Ok(Outcome::Pass)
}

pub fn identify(env: &mut Env) -> Result<Outcome> {
    env.ensure_loaded()?;
    for sw in env.topo.switches.clone() {
        let dev = env.node_for_serial(sw.serial)?;
        let id = dev.identify()?;
        ensure!(
            (id.vendor_id, id.device_id) == (0x19e5, 0xa128),
            "{}: Identify reports {:04x}:{:04x}, QEMU's upstream port is 19e5:a128",
            dev.path().display(),
            id.vendor_id,
            id.device_id
        );
        ensure!(
            id.serial == sw.serial,
            "serial {:#x}, expected {:#x}",
            id.serial,
            sw.serial
        );
        ensure!(
            id.component_type == ComponentType::Switch,
            "component type {}",
            id.component_type
        );
        ensure!(
            id.max_msg_size_log2 == 11,
            "max message size 2^{}",
            id.max_msg_size_log2
        );
        let info = dev.info()?;
        ensure!(
            info.flags & SWCCI_INFO_IDENTIFIED != 0,
            "info says not identified"
        );
        env.note(format!("{}: serial {:#x}", dev.path().display(), id.serial));
    }
    Ok(Outcome::Pass)
}

pub fn identify_switch(env: &mut Env) -> Result<Outcome> {
    env.ensure_loaded()?;
    for sw in env.topo.switches.clone() {
        let dev = env.node_for_serial(sw.serial)?;
        let s = dev.identify_switch()?;
        let mut want: BTreeSet<u8> = sw.dsps.iter().copied().collect();
        want.insert(sw.usp_port);
        let got: BTreeSet<u8> = s.active_port_ids().collect();
        ensure!(got == want, "active ports {got:?}, expected {want:?}");
        ensure!(
            usize::from(s.num_physical_ports) == sw.dsps.len() + 1,
            "{} physical ports, expected {}",
            s.num_physical_ports,
            sw.dsps.len() + 1
        );
        ensure!(s.num_vcs == 1, "{} VCSs", s.num_vcs);
        ensure!(s.active_vcs_ids().collect::<Vec<_>>() == [0], "active VCSs");
        ensure!(
            usize::from(s.total_vppbs) == sw.dsps.len() + 1,
            "{} vPPBs, expected {}",
            s.total_vppbs,
            sw.dsps.len() + 1
        );
        env.note(format!(
            "{}: {} ports {:?}, {} vPPBs",
            dev.path().display(),
            s.num_physical_ports,
            got,
            s.total_vppbs
        ));
    }
    Ok(Outcome::Pass)
}

pub fn port_state(env: &mut Env) -> Result<Outcome> {
    env.ensure_loaded()?;
    for sw in env.topo.switches.clone() {
        let dev = env.node_for_serial(sw.serial)?;
        let mut ports = sw.dsps.clone();
        ports.push(sw.usp_port);
        let states = dev.port_states(&ports)?;
        ensure!(
            states.len() == ports.len(),
            "{} port blocks for {} ports",
            states.len(),
            ports.len()
        );
        for p in &states {
            let has_t3 = sw.type3.iter().any(|t| t.port == p.port_id);
            if p.port_id == sw.usp_port {
                ensure!(
                    p.config_state == PortConfigState::Upstream,
                    "port {}: {}",
                    p.port_id,
                    p.config_state
                );
            } else {
                ensure!(
                    p.config_state == PortConfigState::Downstream,
                    "port {}: {}",
                    p.port_id,
                    p.config_state
                );
                let want = if has_t3 {
                    ConnectedType::Type3Mld
                } else {
                    ConnectedType::None
                };
                ensure!(
                    p.connected_type == want,
                    "port {}: connected {}, expected {want}",
                    p.port_id,
                    p.connected_type
                );
            }
        }
        // An unknown port id is refused as invalid input.
        let r = dev.raw(0x5101, &[1, 200], 64)?;
        ensure!(r.rc == ReturnCode::InvalidInput, "port 200: {}", r.rc);
    }
    Ok(Outcome::Pass)
}

fn debugfs_cel(env: &Env, addr: &str) -> Result<Vec<(u16, u16)>> {
    let p = env.debugfs(addr).join("cel");
    let text = std::fs::read_to_string(&p).with_context(|| format!("read {}", p.display()))?;
    text.lines()
        .map(|l| {
            let mut f = l.split_whitespace();
            let op = u16::from_str_radix(f.next().unwrap_or(""), 16)?;
            let eff = u16::from_str_radix(f.next().unwrap_or(""), 16)?;
            Ok((op, eff))
        })
        .collect::<std::result::Result<_, std::num::ParseIntError>>()
        .with_context(|| format!("parse {}", p.display()))
}

pub fn cel_at_probe(env: &mut Env) -> Result<Outcome> {
    env.ensure_loaded()?;
    for d in env.switch_ccis()? {
        let cel = debugfs_cel(env, &d.addr)?;
        let ops: Vec<u16> = cel.iter().map(|e| e.0).collect();
        ensure!(ops == QEMU_SWITCH_OPCODES, "{}: CEL {ops:04x?}", d.addr);
    }
    for p in env.nodes()? {
        let dev = swcci::Device::open(&p)?;
        let n = dev.info()?.cel_entries;
        ensure!(
            n as usize == QEMU_SWITCH_OPCODES.len(),
            "{}: {n} CEL entries",
            p.display()
        );
    }
    Ok(Outcome::Pass)
}

pub(crate) fn cel_of(env: &Env, addr: &str) -> Result<Vec<(u16, u16)>> {
    debugfs_cel(env, addr)
}

pub fn debugfs_counts(env: &mut Env) -> Result<Outcome> {
    env.ensure_loaded()?;
    let p = env.nodes()?.into_iter().next().context("no node")?;
    let dev = swcci::Device::open(&p)?;
    let addr = env.addr_of(&dev)?;
    let before = env.stat(&addr, "commands")?;
    let ok_before = env.stat(&addr, "rc_00").unwrap_or(0);
    for _ in 0..5 {
        dev.identify()?;
    }
    let after = env.stat(&addr, "commands")?;
    let ok_after = env.stat(&addr, "rc_00")?;
    ensure!(
        after == before + 5,
        "commands {before} -> {after}, expected +5"
    );
    ensure!(ok_after == ok_before + 5, "rc_00 {ok_before} -> {ok_after}");
    let mode = std::fs::read_to_string(env.debugfs(&addr).join("stats"))?;
    if !mode.contains("mode: poll") {
        bail!("QEMU's switch CCI has no interrupts, debugfs says:\n{mode}");
    }
    Ok(Outcome::Pass)
}
