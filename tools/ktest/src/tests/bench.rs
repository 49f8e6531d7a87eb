// SPDX-License-Identifier: GPL-2.0

//! Benchmarks (scenario `bench`, run by tools/bench.sh, not by the test suite): numbers are
//! printed as KTAP diagnostics and compared side by side within one run. They assert nothing
//! about speed; they fail only if a command fails.

use crate::env::Env;
use crate::Outcome;
use anyhow::{Context, Result};
use std::time::{Duration, Instant};
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

fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: writes one timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// The cost of waiting, interrupts against polling, side by side: the same emulated switch,
/// served once with MSI-X and once without.
pub fn emu_wait(env: &mut Env) -> Result<Outcome> {
    use super::emu;
    let devs: Vec<emu::EmuDev> = emu::devices(env)?
        .into_iter()
        .filter(|d| d.spec.personality == "switch")
        .collect();
    let mut frac = Vec::new();
    let mut lat = Vec::new();
    const DELAYED: usize = 20;
    for d in &devs {
        let dev = d.open()?;
        let mut ctl = d.ctl()?;
        // The same commands completing at once: the CPU of submitting and reading back (under
        // TCG every register access is a vfio-user round trip that counts as guest CPU time).
        let cpu0 = thread_cpu();
        for _ in 0..DELAYED {
            dev.raw(0x0001, &[], 64)?;
        }
        let base = thread_cpu() - cpu0;
        // Completion delayed by 100 ms on the device: how much CPU does the waiting task use?
        ctl.cmd("delay 100 always")?;
        let waits = |env: &Env| -> Result<[u64; 3]> {
            Ok([
                env.stat(&d.addr, "irq_waits")?,
                env.stat(&d.addr, "sleeps")?,
                env.stat(&d.addr, "spins")?,
            ])
        };
        let w0 = waits(env)?;
        let (cpu0, t0) = (thread_cpu(), Instant::now());
        for _ in 0..DELAYED {
            dev.raw(0x0001, &[], 64)?;
        }
        let (cpu, wall) = (thread_cpu() - cpu0, t0.elapsed());
        let w1 = waits(env)?;
        let per = |i: usize| (w1[i] - w0[i]) as f64 / DELAYED as f64;
        ctl.cmd("clear")?;
        let f = cpu.as_secs_f64() / wall.as_secs_f64();
        let waiting = cpu.saturating_sub(base).as_secs_f64() / wall.as_secs_f64();
        frac.push(waiting);
        env.note(format!(
            "{} ({}): {DELAYED} commands delayed 100 ms: wall {:.2} s, CPU {:.1} ms = {:.3} % of wall; \
             the same commands undelayed {:.1} ms; waiting alone {:.3} % of wall; \
             per command {:.1} interrupt waits, {:.1} sleeps, {:.1} spins",
            d.addr,
            d.mode(),
            wall.as_secs_f64(),
            cpu.as_secs_f64() * 1000.0,
            f * 100.0,
            base.as_secs_f64() * 1000.0,
            waiting * 100.0,
            per(0),
            per(1),
            per(2)
        ));

        let l = measure(2000, || {
            dev.raw(0x0001, &[], 64).map(|_| ()).map_err(Into::into)
        })?;
        env.note(format!(
            "{} ({}): Identify median {:.1} us, p99 {:.1} us over 2000",
            d.addr,
            d.mode(),
            l.median_us,
            l.p99_us
        ));
        lat.push(l);
    }
    if let ([fi, fp], [li, lp]) = (frac.as_slice(), lat.as_slice()) {
        env.note(format!(
            "ratios polling/interrupts: waiting CPU {:.1}x, Identify median latency {:.2}x",
            fp / fi.max(1e-9),
            lp.median_us / li.median_us
        ));
    }
    Ok(Outcome::Pass)
}
