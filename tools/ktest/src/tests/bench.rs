// SPDX-License-Identifier: GPL-2.0

//! Benchmarks (scenarios `bench` and `bench-emu`, run by tools/bench.sh, never by the test
//! suite). They assert nothing about speed: a benchmark fails only if a command fails or the two
//! paths disagree about the device's answer.
//!
//! Every figure is printed as a record the host's `swcci-bench-report` reads, a KTAP diagnostic
//! line `# bench NAME key=value ...`:
//! - a latency distribution: `n`, `min`, `median`, `p99`, `max`, `mean` in microseconds, net of
//!   the timer's own cost (record `timer`, the median of empty samples, subtracted from every
//!   sample), and for data-moving commands `bytes` (output bytes per command);
//! - other records carry their own keys (rates in commands/s, fractions as ratios).
//!
//! Measuring discipline: every path is warmed up before it is sampled; paths compared with each
//! other run interleaved in blocks within one boot, so a slow phase of the host hits all of them.

use crate::env::Env;
use crate::usermbox::UserMailbox;
use crate::Outcome;
use anyhow::{anyhow, bail, ensure, Context, Result};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};
use swcci::proto::mailbox::Request;
use swcci::proto::opcode;
use swcci::proto::payload::logs::{get_log_input, CEL_UUID};
use swcci::proto::uapi::{
    CxlPayload, CxlSendCommand, Wire, CXL_IOC_TYPE, CXL_MEM_COMMAND_ID_RAW, CXL_MEM_SEND_COMMAND,
};
use swcci::Device;

/// Rounds of the command path benchmark: each round measures the ioctl path with the driver
/// bound, then the userspace engine with it unbound, then rebinds.
const ROUNDS: usize = 10;
/// Identify commands (and syscall-floor calls) per path and round: 10,000 per path in all.
const IDENTIFY_PER_ROUND: usize = 1000;
/// Get Log commands per path and round.
const GET_LOG_PER_ROUND: usize = 200;
/// Block size of the interleaving of the Identify-sized paths.
const BLOCK: usize = 100;
/// Block size of the interleaving of Get Log.
const GET_LOG_BLOCK: usize = 20;
/// Commands each path runs before sampling starts, per round.
const WARM_UP: usize = 50;
/// Output buffer of Identify (0001h), bytes: more than the 18-byte answer.
const IDENTIFY_OUT: usize = 64;
/// Client counts of the concurrency benchmark.
const CLIENTS: [usize; 4] = [1, 2, 4, 8];
/// Passes over [`CLIENTS`], up and down in turn, so that every count sees every phase of the
/// host's load alike.
const CLIENT_PASSES: usize = 12;
/// Duration of one client-count step: 3 s per count in all.
const CLIENT_STEP: Duration = Duration::from_millis(250);

/// A latency distribution, microseconds.
#[derive(Clone, Copy, Debug)]
struct Dist {
    n: usize,
    min: f64,
    median: f64,
    p99: f64,
    max: f64,
    mean: f64,
}

/// Samples in nanoseconds, net of the timer's cost.
#[derive(Default)]
struct Samples(Vec<u64>);

impl Samples {
    fn dist(&self) -> Result<Dist> {
        ensure!(!self.0.is_empty(), "no samples");
        let mut ns = self.0.clone();
        ns.sort_unstable();
        let at = |q: f64| ns[((ns.len() as f64 - 1.0) * q).round() as usize] as f64 / 1000.0;
        Ok(Dist {
            n: ns.len(),
            min: at(0.0),
            median: at(0.5),
            p99: at(0.99),
            max: at(1.0),
            mean: ns.iter().sum::<u64>() as f64 / ns.len() as f64 / 1000.0,
        })
    }

    fn median_us(&self) -> Result<f64> {
        Ok(self.dist()?.median)
    }
}

/// The median cost of one sample around nothing (two clock reads), nanoseconds.
fn timer_cost() -> u64 {
    let mut ns: Vec<u64> = (0..10_001)
        .map(|_| {
            let t = Instant::now();
            t.elapsed().as_nanos() as u64
        })
        .collect();
    ns.sort_unstable();
    ns[ns.len() / 2]
}

/// Runs `f` `n` times, adding each call's time (minus `timer` ns) to `s`.
fn sample(s: &mut Samples, n: usize, timer: u64, mut f: impl FnMut() -> Result<()>) -> Result<()> {
    for _ in 0..n {
        let t = Instant::now();
        f()?;
        s.0.push((t.elapsed().as_nanos() as u64).saturating_sub(timer));
    }
    Ok(())
}

/// Prints a record for the host's report.
pub(crate) fn record(env: &mut Env, name: &str, fields: &[(&str, String)]) {
    let kv: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
    env.note(format!("bench {name} {}", kv.join(" ")));
}

fn record_dist(env: &mut Env, name: &str, d: &Dist, extra: &[(&str, String)]) {
    let mut f = vec![
        ("n", d.n.to_string()),
        ("min", format!("{:.2}", d.min)),
        ("median", format!("{:.2}", d.median)),
        ("p99", format!("{:.2}", d.p99)),
        ("max", format!("{:.2}", d.max)),
        ("mean", format!("{:.2}", d.mean)),
    ];
    f.extend(extra.iter().cloned());
    record(env, name, &f);
}

/// One `CXL_MEM_SEND_COMMAND`, encoded once, sent many times: the ioctl path without the
/// library's per-call allocations, so that both paths do the same userspace work.
struct Send {
    template: [u8; CxlSendCommand::SIZE],
    arg: [u8; CxlSendCommand::SIZE],
    /// Kept alive: the template points into them.
    _input: Vec<u8>,
    out: Vec<u8>,
}

impl Send {
    fn new(id: u32, opcode: u16, input: Vec<u8>, out_size: usize) -> Result<Self> {
        let mut out = vec![0u8; out_size];
        let cmd = CxlSendCommand {
            id,
            flags: 0,
            raw_opcode: opcode,
            raw_rsvd: 0,
            retval: 0,
            input: CxlPayload {
                size: u32::try_from(input.len())?,
                rsvd: 0,
                payload: input.as_ptr() as u64,
            },
            output: CxlPayload {
                size: u32::try_from(out_size)?,
                rsvd: 0,
                payload: out.as_mut_ptr() as u64,
            },
        };
        let mut template = [0u8; CxlSendCommand::SIZE];
        cmd.to_bytes(&mut template)
            .context("encode CXL_MEM_SEND_COMMAND")?;
        Ok(Self {
            template,
            arg: template,
            _input: input,
            out,
        })
    }

    /// A raw command.
    fn raw(opcode: u16, input: Vec<u8>, out_size: usize) -> Result<Self> {
        Self::new(CXL_MEM_COMMAND_ID_RAW, opcode, input, out_size)
    }

    /// A SEND the driver refuses right after copying the argument: id 0 is not
    /// `CXL_MEM_COMMAND_ID_RAW` (ENOTTY).
    fn floor() -> Result<Self> {
        Self::new(0, opcode::IDENTIFY, Vec::new(), IDENTIFY_OUT)
    }

    /// Sends it; the errno on failure.
    fn send(&mut self, dev: &Device) -> std::result::Result<(), i32> {
        self.arg = self.template;
        dev.ioctl_raw(CXL_MEM_SEND_COMMAND, self.arg.as_mut_ptr() as usize)
            .map(|_| ())
    }

    /// Sends it and checks the device returned success; the output length.
    fn run(&mut self, dev: &Device) -> Result<usize> {
        self.send(dev)
            .map_err(|e| anyhow!("{}: {}", dev.path().display(), crate::env::errno_str(e)))?;
        let done = CxlSendCommand::from_bytes(&self.arg).context("decode the answer")?;
        ensure!(
            done.retval == 0,
            "command {:04x}h returned {:#x}",
            done.raw_opcode,
            done.retval
        );
        Ok(done.output.size as usize)
    }

    /// The output of the last command.
    fn output(&self) -> Result<&[u8]> {
        let done = CxlSendCommand::from_bytes(&self.arg).context("decode the answer")?;
        Ok(&self.out[..done.output.size as usize])
    }
}

/// An ioctl number the driver does not know, `_IO(0xce, 0x99)`: ENOTTY with no argument copy
/// and no lock (src/chardev.rs, `ioctl`).
const UNKNOWN_IOCTL: u32 = (CXL_IOC_TYPE << 8) | 0x99;

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

/// Checks that the userspace engine got the driver's answer `want`.
fn same_answer(
    what: &str,
    r: &swcci::proto::mailbox::Response,
    out: &[u8],
    want: &[u8],
) -> Result<()> {
    ensure!(r.rc.is_success(), "userspace {what} returned {}", r.rc);
    ensure!(
        &out[..r.out_len] == want,
        "{what}: the userspace engine got {} bytes, the driver {}, and they differ",
        r.out_len,
        want.len()
    );
    Ok(())
}

fn clocksource() -> String {
    std::fs::read_to_string("/sys/devices/system/clocksource/clocksource0/current_clocksource")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// The command path against the physical limit: the syscall floor, Identify (0001h) and a
/// full-payload Get Log (0401h) of the CEL through the ioctl, and the same two commands through
/// the same protocol engine driven from userspace over an mmap of the BAR while the driver is
/// unbound.
pub fn command_path(env: &mut Env) -> Result<Outcome> {
    env.ensure_loaded()?;
    let sw = env.topo.switches.first().cloned().context("no switch")?;
    let (addr, payload) = {
        let dev = env.node_for_serial(sw.serial)?;
        (env.addr_of(&dev)?, dev.payload_size()?)
    };
    let timer = timer_cost();
    record(
        env,
        "setup",
        &[
            ("timer_ns", timer.to_string()),
            ("clocksource", clocksource()),
            ("payload", payload.to_string()),
            ("rounds", ROUNDS.to_string()),
            ("addr", addr.clone()),
        ],
    );
    let log_input = get_log_input(&CEL_UUID, 0, u32::try_from(payload)?).to_vec();

    let (mut floor, mut bare, mut id_ioctl, mut id_mmap, mut log_ioctl, mut log_mmap) = (
        Samples::default(),
        Samples::default(),
        Samples::default(),
        Samples::default(),
        Samples::default(),
        Samples::default(),
    );
    let mut p1_rounds = Vec::new();
    let mut p4_rounds = Vec::new();
    let (mut log_bytes_ioctl, mut log_bytes_mmap) = (0usize, 0usize);
    let mut driver = [0u64; 6];
    let mut user_spins = 0u64;
    let mut user_cmds = 0u64;

    for round in 0..ROUNDS {
        // The driver's path.
        env.ensure_loaded()?;
        let dev = env.node_for_serial(sw.serial)?;
        let mut fl = Send::floor()?;
        let mut id = Send::raw(opcode::IDENTIFY, Vec::new(), IDENTIFY_OUT)?;
        let mut gl = Send::raw(opcode::GET_LOG, log_input.clone(), payload)?;
        for _ in 0..WARM_UP {
            crate::env::expect_errno("SEND with id 0", fl.send(&dev), libc::ENOTTY)?;
            crate::env::expect_errno(
                "unknown ioctl",
                dev.ioctl_raw(UNKNOWN_IOCTL, 0),
                libc::ENOTTY,
            )?;
            id.run(&dev)?;
        }
        for _ in 0..WARM_UP / 5 {
            gl.run(&dev)?;
        }
        let id_ref = id.output()?.to_vec();
        let log_ref = gl.output()?.to_vec();
        log_bytes_ioctl = log_ref.len();
        let c0 = counters(env, &addr)?;
        let (f0, i0, l0) = (floor.0.len(), id_ioctl.0.len(), log_ioctl.0.len());
        for _ in 0..IDENTIFY_PER_ROUND / BLOCK {
            sample(&mut floor, BLOCK, timer, || match fl.send(&dev) {
                Err(libc::ENOTTY) => Ok(()),
                r => bail!("SEND with id 0: {r:?}, expected ENOTTY"),
            })?;
            sample(&mut bare, BLOCK, timer, || {
                match dev.ioctl_raw(UNKNOWN_IOCTL, 0) {
                    Err(libc::ENOTTY) => Ok(()),
                    r => bail!("unknown ioctl: {r:?}, expected ENOTTY"),
                }
            })?;
            sample(&mut id_ioctl, BLOCK, timer, || id.run(&dev).map(|_| ()))?;
        }
        for _ in 0..GET_LOG_PER_ROUND / GET_LOG_BLOCK {
            sample(&mut log_ioctl, GET_LOG_BLOCK, timer, || {
                let n = gl.run(&dev)?;
                ensure!(
                    n == log_bytes_ioctl,
                    "Get Log returned {n} bytes, then {log_bytes_ioctl}"
                );
                Ok(())
            })?;
        }
        let c1 = counters(env, &addr)?;
        for (d, (a, b)) in driver.iter_mut().zip(c1.iter().zip(c0.iter())) {
            *d += a - b;
        }
        ensure!(
            id.output()? == id_ref.as_slice(),
            "Identify answered differently"
        );
        ensure!(
            gl.output()? == log_ref.as_slice(),
            "Get Log answered differently"
        );
        drop(dev);

        // The userspace engine, the driver unbound.
        env.unbind(&addr)?;
        let mut um = UserMailbox::open(&addr)
            .with_context(|| format!("round {round}: the userspace engine on {addr}"))?;
        ensure!(
            um.payload_size() == payload,
            "the userspace engine sees a {}-byte payload, the driver {payload}",
            um.payload_size()
        );
        let identify = Request::new(opcode::IDENTIFY, &[]);
        let get_log = Request::new(opcode::GET_LOG, &log_input);
        let mut id_out = vec![0u8; IDENTIFY_OUT];
        let mut log_out = vec![0u8; payload];
        for _ in 0..WARM_UP {
            um.execute(&identify, &mut id_out)?;
        }
        for _ in 0..WARM_UP / 5 {
            um.execute(&get_log, &mut log_out)?;
        }
        let spins0 = um.wait.spins;
        let (m0, g0) = (id_mmap.0.len(), log_mmap.0.len());
        for _ in 0..IDENTIFY_PER_ROUND / BLOCK {
            sample(&mut id_mmap, BLOCK, timer, || {
                let r = um.execute(&identify, &mut id_out)?;
                ensure!(r.rc.is_success(), "userspace Identify returned {}", r.rc);
                Ok(())
            })?;
        }
        let r = um.execute(&identify, &mut id_out)?;
        same_answer("Identify", &r, &id_out, &id_ref)?;
        for _ in 0..GET_LOG_PER_ROUND / GET_LOG_BLOCK {
            sample(&mut log_mmap, GET_LOG_BLOCK, timer, || {
                let r = um.execute(&get_log, &mut log_out)?;
                ensure!(r.rc.is_success(), "userspace Get Log returned {}", r.rc);
                log_bytes_mmap = r.out_len;
                Ok(())
            })?;
        }
        let r = um.execute(&get_log, &mut log_out)?;
        same_answer("Get Log", &r, &log_out, &log_ref)?;
        user_spins += um.wait.spins - spins0;
        user_cmds += (IDENTIFY_PER_ROUND + GET_LOG_PER_ROUND) as u64;
        drop(um);
        env.bind(&addr)?;
        env.wait_bound()?;

        // This round's ratios.
        let med = |s: &Samples, from: usize| Samples(s.0[from..].to_vec()).median_us();
        let (fr, ir, mr) = (med(&floor, f0)?, med(&id_ioctl, i0)?, med(&id_mmap, m0)?);
        p1_rounds.push(ir / (mr + fr));
        let (gi, gm) = (med(&log_ioctl, l0)?, med(&log_mmap, g0)?);
        p4_rounds.push((log_bytes_ioctl as f64 / gi) / (log_bytes_mmap as f64 / gm));
    }

    let df = floor.dist()?;
    record_dist(env, "floor", &df, &[]);
    let db = bare.dist()?;
    record_dist(env, "unknown_ioctl", &db, &[]);
    let di = id_ioctl.dist()?;
    let dm = id_mmap.dist()?;
    record_dist(env, "identify.ioctl", &di, &[]);
    record_dist(env, "identify.mmap", &dm, &[]);
    let bytes = |n: usize| ("bytes", n.to_string());
    let gi = log_ioctl.dist()?;
    let gm = log_mmap.dist()?;
    record_dist(env, "getlog.ioctl", &gi, &[bytes(log_bytes_ioctl)]);
    record_dist(env, "getlog.mmap", &gm, &[bytes(log_bytes_mmap)]);
    let range = |v: &[f64]| {
        let lo = v.iter().cloned().fold(f64::INFINITY, f64::min);
        let hi = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        [("min", format!("{lo:.3}")), ("max", format!("{hi:.3}"))]
    };
    record(env, "rounds.p1", &range(&p1_rounds));
    record(env, "rounds.p4", &range(&p4_rounds));
    let per = |i: usize| format!("{:.3}", driver[i] as f64 / driver[0].max(1) as f64);
    record(
        env,
        "driver.waits",
        &[
            ("commands", driver[0].to_string()),
            ("immediate", per(1)),
            ("polls", per(2)),
            ("spins", per(3)),
            ("sleeps", per(4)),
            ("irq_waits", per(5)),
        ],
    );
    record(
        env,
        "mmap.waits",
        &[
            ("commands", user_cmds.to_string()),
            (
                "spins",
                format!("{:.3}", user_spins as f64 / user_cmds.max(1) as f64),
            ),
        ],
    );
    env.note(format!(
        "Identify median: ioctl {:.1} us, mmap {:.1} us + floor {:.1} us: ratio {:.2}",
        di.median,
        dm.median,
        df.median,
        di.median / (dm.median + df.median)
    ));
    env.note(format!(
        "Get Log median: ioctl {:.1} us for {log_bytes_ioctl} B, mmap {:.1} us for {log_bytes_mmap} B",
        gi.median, gm.median
    ));
    Ok(Outcome::Pass)
}

/// Identify Switch Device (5100h) and a tunnelled Identify (5300h) through the library, next to
/// Identify.
pub fn switch_commands(env: &mut Env) -> Result<Outcome> {
    env.ensure_loaded()?;
    let sw = env.topo.switches.first().cloned().context("no switch")?;
    let dev = env.node_for_serial(sw.serial)?;
    let t3 = sw.type3.first().context("no type-3")?.port;
    let timer = timer_cost();
    for _ in 0..WARM_UP {
        dev.identify_switch()?;
        dev.tunnel(&[t3], opcode::IDENTIFY, &[])?;
    }
    let (mut si, mut tu) = (Samples::default(), Samples::default());
    for _ in 0..10 {
        sample(&mut si, BLOCK, timer, || {
            dev.identify_switch().map(|_| ()).map_err(Into::into)
        })?;
        sample(&mut tu, BLOCK, timer, || {
            let r = dev.tunnel(&[t3], opcode::IDENTIFY, &[])?;
            ensure!(
                r.rc().is_success(),
                "tunnelled Identify returned {}",
                r.rc()
            );
            Ok(())
        })?;
    }
    let (si, tu) = (si.dist()?, tu.dist()?);
    record_dist(env, "switch_info.ioctl", &si, &[]);
    record_dist(env, "tunnel.ioctl", &tu, &[]);
    Ok(Outcome::Pass)
}

/// 1, 2, 4 and 8 clients (threads, each with its own open file) sending Identify to one switch
/// as fast as they can, in short steps, passing up and down the counts: the aggregate
/// commands/s of a count is the median over its steps (a step the host slowed does not
/// decide it); each client's share is its commands summed over the steps.
pub fn concurrent_clients(env: &mut Env) -> Result<Outcome> {
    env.ensure_loaded()?;
    let sw = env.topo.switches.first().cloned().context("no switch")?;
    let path = env.node_for_serial(sw.serial)?.path().to_path_buf();
    let max = *CLIENTS.iter().max().unwrap_or(&1);
    // Per client count: commands of each client (summed over the steps), each step's rate.
    let mut per: Vec<(Vec<u64>, Vec<f64>)> = vec![(Vec::new(), Vec::new()); max + 1];
    let order = (0..CLIENT_PASSES).flat_map(|pass| {
        let mut o = CLIENTS;
        if pass % 2 == 1 {
            o.reverse();
        }
        o
    });
    for n in order {
        let stop = Arc::new(AtomicBool::new(false));
        let start = Arc::new(Barrier::new(n + 1));
        let hs: Vec<_> = (0..n)
            .map(|_| {
                let (path, stop, start) = (path.clone(), stop.clone(), start.clone());
                std::thread::spawn(move || -> Result<u64> {
                    let dev = Device::open(&path)?;
                    let mut id = Send::raw(opcode::IDENTIFY, Vec::new(), IDENTIFY_OUT)?;
                    for _ in 0..WARM_UP {
                        id.run(&dev)?;
                    }
                    start.wait();
                    let mut count = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        id.run(&dev)?;
                        count += 1;
                    }
                    Ok(count)
                })
            })
            .collect();
        start.wait();
        let t = Instant::now();
        std::thread::sleep(CLIENT_STEP);
        stop.store(true, Ordering::Relaxed);
        let mut counts = Vec::new();
        for h in hs {
            counts.push(h.join().map_err(|_| anyhow!("client thread panicked"))??);
        }
        let secs = t.elapsed().as_secs_f64();
        let (sums, rates) = &mut per[n];
        rates.push(counts.iter().sum::<u64>() as f64 / secs);
        if sums.is_empty() {
            *sums = counts;
        } else {
            for (s, c) in sums.iter_mut().zip(counts) {
                *s += c;
            }
        }
    }
    let mut one = None;
    for n in CLIENTS {
        let (sums, rates) = &mut per[n];
        rates.sort_by(f64::total_cmp);
        let rate = rates[rates.len() / 2];
        let (slowest, fastest) = (rates[0], rates[rates.len() - 1]);
        let lo = *sums.iter().min().unwrap_or(&0);
        let hi = *sums.iter().max().unwrap_or(&0);
        ensure!(lo > 0, "a client of {n} completed no command");
        let one_rate = *one.get_or_insert(rate);
        record(
            env,
            &format!("clients.{n}"),
            &[
                ("rate", format!("{rate:.0}")),
                ("per_client_min", lo.to_string()),
                ("per_client_max", hi.to_string()),
                ("maxmin", format!("{:.3}", hi as f64 / lo as f64)),
                ("steps", rates.len().to_string()),
                ("step_min", format!("{slowest:.0}")),
                ("step_max", format!("{fastest:.0}")),
            ],
        );
        env.note(format!(
            "{n} client(s): {rate:.0} Identify/s ({:.2}x of one), per client {lo}..{hi}",
            rate / one_rate
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
    let timer = timer_cost();
    for d in &devs {
        let dev = d.open()?;
        let mut ctl = d.ctl()?;
        for _ in 0..DELAYED {
            dev.raw(0x0001, &[], 64)?;
        }
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
        record(
            env,
            &format!("emu.{}.wait", d.mode()),
            &[
                ("cpu", format!("{f:.5}")),
                ("waiting", format!("{waiting:.5}")),
                ("wall_s", format!("{:.3}", wall.as_secs_f64())),
                ("irq_waits", format!("{:.2}", per(0))),
                ("sleeps", format!("{:.2}", per(1))),
                ("spins", format!("{:.2}", per(2))),
            ],
        );

        let mut s = Samples::default();
        sample(&mut s, 2000, timer, || {
            dev.raw(0x0001, &[], 64).map(|_| ()).map_err(Into::into)
        })?;
        let l = s.dist()?;
        env.note(format!(
            "{} ({}): Identify median {:.1} us, p99 {:.1} us over 2000",
            d.addr,
            d.mode(),
            l.median,
            l.p99
        ));
        record_dist(env, &format!("emu.{}.identify", d.mode()), &l, &[]);
        lat.push(l);
    }
    if let ([fi, fp], [li, lp]) = (frac.as_slice(), lat.as_slice()) {
        env.note(format!(
            "ratios polling/interrupts: waiting CPU {:.1}x, Identify median latency {:.2}x",
            fp / fi.max(1e-9),
            lp.median / li.median
        ));
    }
    Ok(Outcome::Pass)
}
