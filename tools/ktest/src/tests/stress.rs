// SPDX-License-Identifier: GPL-2.0

//! Concurrency, unbind and unload with files open, repeated rebinding, leaks.

use crate::env::{errno_str, expect_errno, lib_errno, Env};
use crate::Outcome;
use anyhow::{anyhow, bail, ensure, Context, Result};
use std::path::Path;
use std::thread;
use swcci::Device;

pub fn concurrent(env: &mut Env) -> Result<Outcome> {
    env.ensure_loaded()?;
    let sw = env.topo.switches.first().cloned().context("no switch")?;
    let path = env.node_for_serial(sw.serial)?.path().to_path_buf();
    let handles: Vec<_> = (0..8u32)
        .map(|t| {
            let path = path.clone();
            let sw = sw.clone();
            thread::spawn(move || -> Result<u32> {
                // Half the threads share one file, half open their own.
                let dev = Device::open(&path)?;
                for i in 0..1000u32 {
                    match (t + i) % 3 {
                        0 => {
                            let id = dev.identify()?;
                            ensure!(
                                id.serial == sw.serial,
                                "thread {t} #{i}: serial {:#x}",
                                id.serial
                            );
                        }
                        1 => {
                            let s = dev.identify_switch()?;
                            ensure!(
                                usize::from(s.num_physical_ports) == sw.dsps.len() + 1,
                                "thread {t} #{i}: {} ports",
                                s.num_physical_ports
                            );
                        }
                        _ => {
                            let p = dev.port_states(&sw.dsps)?;
                            ensure!(
                                p.len() == sw.dsps.len(),
                                "thread {t} #{i}: {} ports",
                                p.len()
                            );
                        }
                    }
                }
                Ok(1000)
            })
        })
        .collect();
    let mut total = 0;
    for h in handles {
        total += h.join().map_err(|_| anyhow!("a thread panicked"))??;
    }
    ensure!(total == 8000, "{total} commands");
    env.note("8 threads x 1000 commands: all answers correct");
    Ok(Outcome::Pass)
}

fn wait_node(path: &Path, present: bool) -> Result<()> {
    for _ in 0..500 {
        if path.exists() == present {
            return Ok(());
        }
        thread::sleep(std::time::Duration::from_millis(10));
    }
    bail!(
        "{} {} after 5 s",
        path.display(),
        if present { "missing" } else { "still there" }
    )
}

pub fn unbind_open_file(env: &mut Env) -> Result<Outcome> {
    env.ensure_loaded()?;
    let node = env.nodes()?.into_iter().next().context("no node")?;
    let old = Device::open(&node)?;
    let addr = env.addr_of(&old)?;
    let serial = old.info()?.serial;
    env.unbind(&addr)?;
    wait_node(&node, false)?;
    expect_errno(
        "raw command after unbind",
        lib_errno(old.raw(0x0001, &[], 64)),
        libc::ENXIO,
    )?;
    expect_errno("info after unbind", lib_errno(old.info()), libc::ENXIO)?;
    env.bind(&addr)?;
    env.wait_bound()?;
    let fresh = env.node_for_serial(serial)?;
    ensure!(fresh.identify()?.serial == serial, "fresh node");
    expect_errno(
        "old file after rebind",
        lib_errno(old.raw(0x0001, &[], 64)),
        libc::ENXIO,
    )?;
    env.note(format!(
        "{}: ENXIO on the old file, {} works",
        addr,
        fresh.path().display()
    ));
    Ok(Outcome::Pass)
}

pub fn rebind_20(env: &mut Env) -> Result<Outcome> {
    env.ensure_loaded()?;
    let ccis = env.switch_ccis()?;
    for i in 0..20 {
        for d in &ccis {
            env.unbind(&d.addr).with_context(|| format!("round {i}"))?;
        }
        ensure!(
            env.nodes()?.is_empty(),
            "round {i}: nodes left after unbind: {:?}",
            env.nodes()?
        );
        for d in &ccis {
            env.bind(&d.addr).with_context(|| format!("round {i}"))?;
        }
        env.wait_bound().with_context(|| format!("round {i}"))?;
        for sw in env.topo.switches.clone() {
            let id = env.node_for_serial(sw.serial)?.identify()?;
            ensure!(id.serial == sw.serial, "round {i}: serial {:#x}", id.serial);
        }
        env.check_kernel_log()
            .with_context(|| format!("round {i}"))?;
    }
    env.note(format!(
        "{} devices unbound and rebound 20 times",
        ccis.len()
    ));
    Ok(Outcome::Pass)
}

pub fn rmmod_open_file(env: &mut Env) -> Result<Outcome> {
    env.ensure_loaded()?;
    let node = env.nodes()?.into_iter().next().context("no node")?;
    let dev = Device::open(&node)?;
    match env.rmmod() {
        // delete_module(2) reports a module in use as EWOULDBLOCK (== EAGAIN).
        Err(e) if e == libc::EWOULDBLOCK => {
            env.note(format!("rmmod with an open file: {}", errno_str(e)))
        }
        Err(e) => bail!(
            "rmmod with an open file: {}, expected EWOULDBLOCK",
            errno_str(e)
        ),
        Ok(()) => bail!("rmmod succeeded with a file open"),
    }
    ensure!(env.module_loaded(), "module gone");
    dev.identify()?;
    drop(dev);
    env.rmmod()
        .map_err(|e| anyhow!("rmmod after close: {}", errno_str(e)))?;
    ensure!(
        !Path::new("/dev/cxl").exists() || env.nodes()?.is_empty(),
        "nodes left after rmmod"
    );
    env.ensure_loaded()?;
    Ok(Outcome::Pass)
}

pub fn reload(env: &mut Env) -> Result<Outcome> {
    for round in 0..3 {
        env.ensure_unloaded()?;
        ensure!(
            !Path::new(crate::env::DEBUGFS_DIR).exists(),
            "round {round}: debugfs left after rmmod"
        );
        env.ensure_loaded()?;
        for sw in env.topo.switches.clone() {
            env.node_for_serial(sw.serial)?.identify()?;
        }
    }
    Ok(Outcome::Pass)
}

pub fn kmemleak(env: &mut Env) -> Result<Outcome> {
    let k = "/sys/kernel/debug/kmemleak";
    if !Path::new(k).exists() {
        return Ok(Outcome::Skip("kernel without CONFIG_DEBUG_KMEMLEAK".into()));
    }
    env.ensure_unloaded()?;
    // Objects freed by RCU or kfree_rcu need a grace period or two; kmemleak also only reports
    // objects that stayed unreferenced across two scans.
    for _ in 0..2 {
        thread::sleep(std::time::Duration::from_millis(1500));
        std::fs::write(k, "scan").context("kmemleak scan")?;
    }
    let report = std::fs::read_to_string(k).context("read kmemleak")?;
    if !report.trim().is_empty() {
        for l in report.lines().take(40) {
            env.note(l.to_string());
        }
        bail!("kmemleak reports unreferenced objects after the module was unloaded");
    }
    env.ensure_loaded()?;
    Ok(Outcome::Pass)
}
