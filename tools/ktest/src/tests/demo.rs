// SPDX-License-Identifier: GPL-2.0

//! The README's main job: load the module against the emulated switch and show it working.

use crate::env::Env;
use crate::Outcome;
use anyhow::{anyhow, ensure, Result};
use std::process::Command;

pub fn load(env: &mut Env) -> Result<Outcome> {
    env.load("")?;
    env.wait_bound()?;
    let lines: Vec<String> = env
        .kmsg()
        .into_iter()
        .filter(|l| l.starts_with("cxl_swcci"))
        .collect();
    ensure!(!lines.is_empty(), "no probe line");
    for l in lines {
        env.note(format!("dmesg: {l}"));
    }
    Ok(Outcome::Pass)
}

pub fn commands(env: &mut Env) -> Result<Outcome> {
    let cli = "/swcci/bin/swcci";
    let node = env
        .nodes()?
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("no node"))?;
    let name = node
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let runs: Vec<Vec<String>> = vec![
        vec!["list".into()],
        vec!["identify".into(), name.clone()],
        vec!["switch-info".into(), name.clone()],
        vec!["ports".into(), name.clone()],
        vec!["topology".into()],
        vec![
            "tunnel".into(),
            name.clone(),
            "--port".into(),
            env.topo.switches[0].type3[0].port.to_string(),
            "identify".into(),
        ],
    ];
    for args in runs {
        env.note(format!("$ swcci {}", args.join(" ")));
        let out = Command::new(cli)
            .args(&args)
            .output()
            .map_err(|e| anyhow!("run {cli}: {e}"))?;
        for l in String::from_utf8_lossy(&out.stdout)
            .lines()
            .chain(String::from_utf8_lossy(&out.stderr).lines())
        {
            env.note(format!("  {l}"));
        }
        ensure!(
            out.status.success(),
            "swcci {}: {}",
            args.join(" "),
            out.status
        );
    }
    Ok(Outcome::Pass)
}
