// SPDX-License-Identifier: GPL-2.0

//! The ABI from C, exactly as libcxlmi and cxl-fmapi-tests use it (tools/testing/c/).

use crate::env::Env;
use crate::Outcome;
use anyhow::{ensure, Context, Result};
use std::path::Path;
use std::process::Command;

fn run_c(env: &mut Env, bin: &str) -> Result<Outcome> {
    env.ensure_loaded()?;
    let sw = env.topo.switches.first().cloned().context("no switch")?;
    let dev = env.node_for_serial(sw.serial)?;
    let node = dev
        .path()
        .file_name()
        .context("node name")?
        .to_string_lossy()
        .into_owned();
    drop(dev);
    let t3 = sw.type3.first().context("no type-3")?;
    let empty = sw
        .dsps
        .iter()
        .find(|p| !sw.type3.iter().any(|t| t.port == **p))
        .context("no empty port")?;
    let out = Command::new(bin)
        .args([
            &node,
            &format!("{:#x}", sw.serial),
            &t3.port.to_string(),
            &format!("{:#x}", t3.serial),
            &empty.to_string(),
        ])
        .output()
        .with_context(|| format!("run {bin}"))?;
    for l in String::from_utf8_lossy(&out.stdout)
        .lines()
        .chain(String::from_utf8_lossy(&out.stderr).lines())
    {
        env.note(l.to_string());
    }
    ensure!(out.status.success(), "{bin} failed: {}", out.status);
    Ok(Outcome::Pass)
}

pub fn c_abi(env: &mut Env) -> Result<Outcome> {
    run_c(env, "/swcci/bin/swcci-abi-test")
}

pub fn c_abi_32(env: &mut Env) -> Result<Outcome> {
    let bin = "/swcci/bin/swcci-abi-test32";
    if !Path::new(bin).exists() {
        // A 32-bit kernel has no compat layer: c_abi_libcxlmi_sequence is already 32-bit there.
        let why = if env.topo.arch == "arm" {
            "32-bit kernel: no compat layer to test (c_abi_libcxlmi_sequence runs 32-bit code)"
                .to_string()
        } else {
            format!("no 32-bit userspace for {} in this suite", env.topo.arch)
        };
        return Ok(Outcome::Skip(why));
    }

    run_c(env, bin)
}
