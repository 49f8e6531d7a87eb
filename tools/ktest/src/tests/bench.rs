// SPDX-License-Identifier: GPL-2.0

//! Benchmarks (scenario `bench`, run by tools/bench.sh, not by the test suite): numbers are
//! printed as KTAP diagnostics and compared side by side within one run. They assert nothing
//! about speed; they fail only if a command fails.

use crate::env::Env;
use crate::Outcome;
use anyhow::{Context, Result};
use std::time::Instant;
use swcci::Device;

/// Identify commands per measurement.
const N: usize = 10_000;

struct Dist {
    median_us: f64,
    p99_us: f64,
    min_us: f64,
    max_us: f64,
    mean_us: f64,
}

fn dist(mut ns: Vec<u64>) -> Dist {
    ns.sort_unstable();
    let at = |q: f64| ns[((ns.len() as f64 - 1.0) * q).round() as usize] as f64 / 1000.0;
    Dist {
        median_us: at(0.5),
        p99_us: at(0.99),
        min_us: at(0.0),
        max_us: at(1.0),
        mean_us: ns.iter().sum::<u64>() as f64 / ns.len() as f64 / 1000.0,
    }
}

fn measure(n: usize, mut f: impl FnMut() -> Result<()>) -> Result<Dist> {
    let mut ns = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        f()?;
        ns.push(t.elapsed().as_nanos() as u64);
    }
    Ok(dist(ns))
}

fn counters(env: &Env, addr: &str) -> Result<[u64; 6]> {
    Ok([
        env.stat(addr, "commands")?,
        env.stat(addr, "immediate")?,
        env.stat(addr, "polls")?,
        env.stat(addr, "spins")?,
        env.stat(addr, "sleeps")?,
        env.stat(addr, "irq_waits")?,
    ])
}

pub fn identify_latency(env: &mut Env) -> Result<Outcome> {
    env.ensure_loaded()?;
    let sw = env.topo.switches.first().cloned().context("no switch")?;
    let dev = env.node_for_serial(sw.serial)?;
    let addr = env.addr_of(&dev)?;
    let t3 = sw.type3.first().context("no type-3")?.port;
    // Warm up caches and the device.
    for _ in 0..100 {
        dev.identify()?;
    }
    let before = counters(env, &addr)?;
    let identify = measure(N, || {
        dev.raw(0x0001, &[], 64).map(|_| ()).map_err(Into::into)
    })?;
    let after = counters(env, &addr)?;
    let switch_info = measure(N / 10, || {
        dev.identify_switch().map(|_| ()).map_err(Into::into)
    })?;
    let tunnel = measure(N / 10, || {
        dev.tunnel(&[t3], 0x0001, &[])
            .map(|_| ())
            .map_err(Into::into)
    })?;

    let per = |i: usize| (after[i] - before[i]) as f64 / (after[0] - before[0]).max(1) as f64;
    env.note(format!(
        "Identify (0001h) via ioctl, {N} commands, polling mode:"
    ));
    env.note(format!(
        "  median {:.1} us  p99 {:.1} us  mean {:.1} us  min {:.1} us  max {:.1} us",
        identify.median_us, identify.p99_us, identify.mean_us, identify.min_us, identify.max_us
    ));
    env.note(format!(
        "  per command: {:.3} completed before any wait, {:.3} polls, {:.3} spins, {:.3} sleeps, {:.3} irq waits",
        per(1),
        per(2),
        per(3),
        per(4),
        per(5)
    ));
    env.note(format!(
        "  debugfs deltas: commands {} immediate {} polls {} spins {} sleeps {} irq_waits {}",
        after[0] - before[0],
        after[1] - before[1],
        after[2] - before[2],
        after[3] - before[3],
        after[4] - before[4],
        after[5] - before[5]
    ));
    for (name, d) in [
        ("Identify Switch Device (5100h)", &switch_info),
        ("tunnelled Identify (5300h)", &tunnel),
    ] {
        env.note(format!(
            "{name}, {} commands: median {:.1} us  p99 {:.1} us  ratio to Identify {:.2}x",
            N / 10,
            d.median_us,
            d.p99_us,
            d.median_us / identify.median_us
        ));
    }
    Ok(Outcome::Pass)
}

pub fn concurrent_throughput(env: &mut Env) -> Result<Outcome> {
    env.ensure_loaded()?;
    let sw = env.topo.switches.first().cloned().context("no switch")?;
    let path = env.node_for_serial(sw.serial)?.path().to_path_buf();
    let mut rates = Vec::new();
    for threads in [1usize, 2, 4, 8] {
        let per = 2000 / threads;
        let t = Instant::now();
        let hs: Vec<_> = (0..threads)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || -> Result<()> {
                    let dev = Device::open(&path)?;
                    for _ in 0..per {
                        dev.raw(0x0001, &[], 64)?;
                    }
                    Ok(())
                })
            })
            .collect();
        for h in hs {
            h.join().map_err(|_| anyhow::anyhow!("thread panicked"))??;
        }
        let rate = (per * threads) as f64 / t.elapsed().as_secs_f64();
        rates.push(rate);
        env.note(format!(
            "{threads} thread(s): {:.0} Identify/s ({:.2}x of one thread)",
            rate,
            rate / rates[0]
        ));
    }
    Ok(Outcome::Pass)
}
