// SPDX-License-Identifier: GPL-2.0

//! Access control and taint: CAP_SYS_RAWIO, lockdown, TAINT_USER.

use crate::env::{errno_str, expect_errno, lib_errno, Env, TAINT_USER};
use crate::Outcome;
use anyhow::{bail, ensure, Context, Result};
use std::process::Command;
use swcci::Device;

pub fn no_rawio(env: &mut Env) -> Result<Outcome> {
    env.ensure_loaded()?;
    let p = env.nodes()?.into_iter().next().context("no node")?;
    let out = Command::new("/proc/self/exe")
        .args(["--helper", "no-rawio"])
        .arg(&p)
        .output()
        .context("run the no-rawio helper")?;
    for l in String::from_utf8_lossy(&out.stdout).lines() {
        env.note(l.to_string());
    }
    ensure!(
        out.status.success(),
        "helper: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(Outcome::Pass)
}

fn read_only_commands(env: &mut Env) -> Result<()> {
    for sw in env.topo.switches.clone() {
        let dev = env.node_for_serial(sw.serial)?;
        dev.identify()?;
        dev.identify_switch()?;
        dev.port_states(&sw.dsps)?;
        dev.supported_logs()?;
        dev.cel()?;
        dev.bg_status()?;
        for t3 in &sw.type3 {
            let r = dev.tunnel(&[t3.port], 0x0001, &[])?;
            ensure!(r.rc().is_success(), "tunnel identify: {}", r.rc());
            let r = dev.tunnel(&[t3.port, 0], 0x0001, &[])?;
            ensure!(r.rc().is_success(), "two-level tunnel identify: {}", r.rc());
        }
    }
    Ok(())
}

pub fn taint_read_only(env: &mut Env) -> Result<Outcome> {
    env.ensure_loaded()?;
    let t0 = env.tainted()?;
    ensure!(
        t0 & TAINT_USER == 0,
        "TAINT_USER set before any raw command: {t0:#x}"
    );
    read_only_commands(env)?;
    let t1 = env.tainted()?;
    ensure!(
        t1 & TAINT_USER == 0,
        "read-only commands set TAINT_USER: {t0:#x} -> {t1:#x}"
    );
    ensure!(
        !env.kmsg().iter().any(|l| l.contains("tainting kernel")),
        "a taint notice was logged for read-only commands"
    );
    env.note(format!("tainted = {t1:#x} after read-only commands"));
    Ok(Outcome::Pass)
}

/// State-changing commands that fail a check before they reach a device do not taint: an
/// unbound node, sizes above the payload, an unreadable input, a quirk refusal.
pub fn taint_not_for_refused(env: &mut Env) -> Result<Outcome> {
    use swcci::proto::uapi::{CxlSendCommand, Wire, CXL_MEM_COMMAND_ID_RAW, CXL_MEM_SEND_COMMAND};
    env.ensure_loaded()?;
    ensure!(env.tainted()? & TAINT_USER == 0, "TAINT_USER already set");
    let sw = env.topo.switches.first().cloned().context("no switch")?;
    let dev = env.node_for_serial(sw.serial)?;
    let addr = env.addr_of(&dev)?;
    let payload = dev.payload_size()?;
    // Bind vPPB (5201h) changes the fabric: refused for its size.
    expect_errno(
        "Bind vPPB with input above the payload size",
        lib_errno(dev.raw(0x5201, &vec![0; payload + 1], 0)),
        libc::EINVAL,
    )?;
    // Its input at an unmapped address.
    let cmd = CxlSendCommand {
        id: CXL_MEM_COMMAND_ID_RAW,
        raw_opcode: 0x5201,
        input: swcci::proto::uapi::CxlPayload {
            size: 6,
            payload: 8,
            ..Default::default()
        },
        ..Default::default()
    };
    let mut b = [0u8; CxlSendCommand::SIZE];
    cmd.to_bytes(&mut b).context("encode")?;
    let r = dev.ioctl_raw(CXL_MEM_SEND_COMMAND, b.as_mut_ptr() as usize);
    ensure!(
        r == Err(libc::EFAULT),
        "unreadable input: {r:?}, expected EFAULT"
    );
    // Set Timestamp (0301h) on QEMU's switch CCI: refused by a quirk.
    expect_errno(
        "Set Timestamp on the quirky switch",
        lib_errno(dev.raw(0x0301, &[0; 8], 0)),
        libc::EOPNOTSUPP,
    )?;
    // A file whose device was unbound.
    env.unbind(&addr)?;
    let r = lib_errno(dev.raw(0x5201, &[0; 6], 0));
    let r2 = lib_errno(dev.mmb_command(0x5201, 0, &[0; 6], 0).map(|_| ()));
    env.bind(&addr)?;
    env.wait_bound()?;
    ensure!(
        r.as_ref().err() == Some(&libc::ENXIO) && r2 == Err(libc::ENXIO),
        "unbound node: {r:?} / {r2:?}, expected ENXIO"
    );
    let t = env.tainted()?;
    ensure!(
        t & TAINT_USER == 0,
        "refused state-changing commands set TAINT_USER: {t:#x}"
    );
    ensure!(
        !env.kmsg().iter().any(|l| l.contains("tainting kernel")),
        "a taint notice was logged for refused commands"
    );
    Ok(Outcome::Pass)
}

pub fn taint_effectful(env: &mut Env) -> Result<Outcome> {
    env.ensure_loaded()?;
    ensure!(env.tainted()? & TAINT_USER == 0, "TAINT_USER already set");
    let sw = env.topo.switches.first().cloned().context("no switch")?;
    let t3 = sw.type3.first().cloned().context("no type-3")?;
    let dev = env.node_for_serial(sw.serial)?;
    // Set Response Message Limit (0004h) on the type-3 behind the switch: changes its state.
    let r = dev.tunnel(&[t3.port], 0x0004, &[9])?;
    env.note(format!("tunnelled Set Response Message Limit: {}", r.rc()));
    let t = env.tainted()?;
    ensure!(
        t & TAINT_USER != 0,
        "TAINT_USER not set after a state-changing command: {t:#x}"
    );
    let lines = env.kmsg();
    let pid = std::process::id();
    let line = lines
        .iter()
        .find(|l| l.contains("tainting kernel"))
        .context("no taint notice in the kernel log")?;
    ensure!(
        line.contains(
            "raw command 5300h (Tunnel Management Command, tunnelled 0004h Set Response Message Limit)"
        )
            && line.contains(&format!("swcci-ktest[{pid}]")),
        "taint notice lacks the opcode or the process: {line}"
    );
    env.note(line.clone());
    // Once per device: a second command taints (idempotent) but logs nothing.
    dev.tunnel(&[t3.port], 0x0004, &[9])?;
    ensure!(
        !env.kmsg().iter().any(|l| l.contains("tainting kernel")),
        "taint notice logged twice"
    );
    Ok(Outcome::Pass)
}

pub fn taint_strict(env: &mut Env) -> Result<Outcome> {
    env.ensure_unloaded()?;
    env.load("strict_taint=1")?;
    env.wait_bound()?;
    ensure!(
        env.tainted()? & TAINT_USER == 0,
        "TAINT_USER set before any raw command"
    );
    let p = env.nodes()?.into_iter().next().context("no node")?;
    Device::open(&p)?.identify()?;
    ensure!(
        env.tainted()? & TAINT_USER != 0,
        "strict_taint=1: Identify did not taint"
    );
    ensure!(
        env.kmsg()
            .iter()
            .any(|l| l
                .contains("raw command 0001h (Identify): strict_taint=1; sent by swcci-ktest[")),
        "no notice"
    );
    Ok(Outcome::Pass)
}

pub fn lockdown(env: &mut Env) -> Result<Outcome> {
    let state = std::fs::read_to_string("/sys/kernel/security/lockdown").unwrap_or_default();
    ensure!(
        state.contains("[integrity]"),
        "not locked down: {:?} (boot with lockdown=integrity)",
        state.trim()
    );
    env.load("")?;
    env.wait_bound()?;
    let p = env.nodes()?.into_iter().next().context("no node")?;
    let dev = Device::open(&p)?;
    expect_errno(
        "Identify under lockdown",
        lib_errno(dev.raw(0x0001, &[], 64)),
        libc::EPERM,
    )?;
    expect_errno(
        "second Identify",
        lib_errno(dev.raw(0x0001, &[], 64)),
        libc::EPERM,
    )?;
    let warnings: Vec<String> = env
        .kmsg()
        .into_iter()
        .filter(|l| l.contains("the kernel is locked down"))
        .collect();
    ensure!(
        warnings.len() == 1,
        "{} lockdown warnings, expected 1: {warnings:?}",
        warnings.len()
    );
    env.note(warnings[0].clone());
    // Metadata stays readable.
    let info = dev.info()?;
    ensure!(info.serial != 0, "info: serial {:#x}", info.serial);
    ensure!(
        env.tainted()? & TAINT_USER == 0,
        "refused commands tainted the kernel"
    );
    drop(dev);
    if let Err(e) = env.rmmod() {
        bail!("rmmod under lockdown: {}", errno_str(e));
    }
    Ok(Outcome::Pass)
}
