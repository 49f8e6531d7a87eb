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
        line.contains("raw command 5300h (tunnelled 0004h)")
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
            .any(|l| l.contains("raw command 0001h: strict_taint=1; sent by swcci-ktest[")),
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
