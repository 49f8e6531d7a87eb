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
use swcci::proto::payload::logs::{get_log_input, SupportedLogs, CEL_UUID};
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

/// A build of the module the benchmarks load: the one under test, or the base build
/// `tools/bench.sh --base REV` puts beside it (the same module at another commit), measured
/// side by side in the same boot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Build {
    /// The module file in the guest.
    path: &'static str,
    /// Prefix of its records: none for the module under test, `base.` for the base.
    prefix: &'static str,
}

/// The module under test.
const UNDER_TEST: Build = Build {
    path: crate::env::MODULE,
    prefix: "",
};

/// Where the runner puts the base build (swcci-runner --base-module).
pub const BASE_MODULE: &str = "/swcci/cxl_swcci-base.ko";

const BASE: Build = Build {
    path: BASE_MODULE,
    prefix: "base.",
};

/// The builds of this boot: the module under test, and the base build if there is one.
fn builds() -> Vec<Build> {
    let mut v = vec![UNDER_TEST];
    if std::path::Path::new(BASE_MODULE).exists() {
        v.push(BASE);
    }
    v
}

/// The builds in the order of round `round`: alternating, so that neither always runs first.
fn in_order(all: &[Build], round: usize) -> Vec<Build> {
    let mut v = all.to_vec();
    if round % 2 == 1 {
        v.reverse();
    }
    v
}

/// Makes `b` the loaded module with every switch CCI bound to it. With one build (no base),
/// only loads it if needed and binds what an earlier phase unbound.
fn use_build(env: &mut Env, b: Build, all: &[Build]) -> Result<()> {
    if all.len() == 1 {
        return env.ensure_loaded();
    }
    env.ensure_unloaded()?;
    env.insmod_file(b.path, "")
        .map_err(|e| anyhow!("insmod {}: {}", b.path, crate::env::errno_str(e)))?;
    env.wait_bound()
}

/// What one build's ioctl path gave over all rounds.
#[derive(Default)]
struct IoctlPath {
    floor: Samples,
    bare: Samples,
    id: Samples,
    log: Samples,
    /// Driver counters summed over the rounds ([`counters`]).
    waits: [u64; 6],
    /// This round's medians: syscall floor, Identify, Get Log (us).
    round: [f64; 3],
    p1_rounds: Vec<f64>,
    p4_rounds: Vec<f64>,
}

/// The command path against the physical limit: the syscall floor, Identify (0001h) and a
/// full-payload Get Log (0401h) of the CEL through the ioctl; the same two commands through the
/// same protocol engine driven from userspace over an mmap of the BAR while no driver is bound;
/// and a plain block read (`memcpy`) of the same payload bytes from that mapping. With a base
/// build, both builds' ioctl paths run in every round, in alternating order.
pub fn command_path(env: &mut Env) -> Result<Outcome> {
    let all = builds();
    use_build(env, UNDER_TEST, &all)?;
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
            ("builds", all.len().to_string()),
        ],
    );
    let log_input = get_log_input(&CEL_UUID, 0, u32::try_from(payload)?).to_vec();

    let mut paths: Vec<IoctlPath> = all.iter().map(|_| IoctlPath::default()).collect();
    let (mut id_mmap, mut log_mmap, mut block) =
        (Samples::default(), Samples::default(), Samples::default());
    let mut base_rounds = Vec::new();
    let (mut log_bytes_ioctl, mut log_bytes_mmap) = (0usize, 0usize);
    // The answers of the first build measured: every path must give the same bytes.
    let mut refs: Option<(Vec<u8>, Vec<u8>)> = None;
    let mut user_spins = 0u64;
    let mut user_cmds = 0u64;

    for round in 0..ROUNDS {
        // The driver's path, each build in turn.
        let mut id_medians = [0.0f64; 2];
        for b in in_order(&all, round) {
            let i = all.iter().position(|x| *x == b).unwrap_or(0);
            use_build(env, b, &all)?;
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
            let (id_ref, log_ref) = refs
                .get_or_insert_with(|| {
                    (
                        id.output().map(<[u8]>::to_vec).unwrap_or_default(),
                        gl.output().map(<[u8]>::to_vec).unwrap_or_default(),
                    )
                })
                .clone();
            ensure!(
                id.output()? == id_ref.as_slice() && gl.output()? == log_ref.as_slice(),
                "{}: the two builds got different answers",
                b.path
            );
            log_bytes_ioctl = log_ref.len();
            let p = &mut paths[i];
            let c0 = counters(env, &addr)?;
            let (f0, i0, l0) = (p.floor.0.len(), p.id.0.len(), p.log.0.len());
            for _ in 0..IDENTIFY_PER_ROUND / BLOCK {
                sample(&mut p.floor, BLOCK, timer, || match fl.send(&dev) {
                    Err(libc::ENOTTY) => Ok(()),
                    r => bail!("SEND with id 0: {r:?}, expected ENOTTY"),
                })?;
                sample(&mut p.bare, BLOCK, timer, || {
                    match dev.ioctl_raw(UNKNOWN_IOCTL, 0) {
                        Err(libc::ENOTTY) => Ok(()),
                        r => bail!("unknown ioctl: {r:?}, expected ENOTTY"),
                    }
                })?;
                sample(&mut p.id, BLOCK, timer, || id.run(&dev).map(|_| ()))?;
            }
            for _ in 0..GET_LOG_PER_ROUND / GET_LOG_BLOCK {
                sample(&mut p.log, GET_LOG_BLOCK, timer, || {
                    let n = gl.run(&dev)?;
                    ensure!(
                        n == log_bytes_ioctl,
                        "Get Log returned {n} bytes, then {log_bytes_ioctl}"
                    );
                    Ok(())
                })?;
            }
            let c1 = counters(env, &addr)?;
            for (d, (a, b)) in p.waits.iter_mut().zip(c1.iter().zip(c0.iter())) {
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
            p.round = [
                Samples(p.floor.0[f0..].to_vec()).median_us()?,
                Samples(p.id.0[i0..].to_vec()).median_us()?,
                Samples(p.log.0[l0..].to_vec()).median_us()?,
            ];
            id_medians[i] = p.round[1];
        }
        if all.len() > 1 {
            base_rounds.push(id_medians[0] / id_medians[1]);
        }
        let (id_ref, log_ref) = refs.clone().context("no answers recorded")?;

        // The userspace engine and the block read, no driver bound.
        if all.len() == 1 {
            env.unbind(&addr)?;
        } else {
            env.ensure_unloaded()?;
        }
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
        let mut block_out = vec![0u8; log_bytes_ioctl];
        for _ in 0..WARM_UP {
            um.execute(&identify, &mut id_out)?;
        }
        for _ in 0..WARM_UP / 5 {
            um.execute(&get_log, &mut log_out)?;
            um.block_read(&mut block_out)?;
        }
        let spins0 = um.wait.spins;
        let (m0, k0) = (id_mmap.0.len(), block.0.len());
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
            sample(&mut block, GET_LOG_BLOCK, timer, || {
                um.block_read(&mut block_out)
            })?;
        }
        let r = um.execute(&get_log, &mut log_out)?;
        same_answer("Get Log", &r, &log_out, &log_ref)?;
        // The payload registers still hold that answer: the block read sees the same bytes.
        um.block_read(&mut block_out)?;
        ensure!(
            block_out == log_ref,
            "the block read of the payload registers differs from Get Log's answer"
        );
        user_spins += um.wait.spins - spins0;
        user_cmds += (IDENTIFY_PER_ROUND + GET_LOG_PER_ROUND) as u64;
        drop(um);
        if all.len() == 1 {
            env.bind(&addr)?;
            env.wait_bound()?;
        }

        // This round's ratios, per build: P1, and P4 (Get Log bytes/s over the block read's).
        let med = |s: &Samples, from: usize| Samples(s.0[from..].to_vec()).median_us();
        let (mr, bk) = (med(&id_mmap, m0)?, med(&block, k0)?);
        for p in &mut paths {
            let [fr, ir, gi] = p.round;
            p.p1_rounds.push(ir / (mr + fr));
            p.p4_rounds.push(bk / gi);
        }
    }
    if all.len() > 1 {
        use_build(env, UNDER_TEST, &all)?;
    }

    let dm = id_mmap.dist()?;
    record_dist(env, "identify.mmap", &dm, &[]);
    let bytes = |n: usize| ("bytes", n.to_string());
    let gm = log_mmap.dist()?;
    record_dist(env, "getlog.mmap", &gm, &[bytes(log_bytes_mmap)]);
    let bk = block.dist()?;
    record_dist(env, "getlog.block", &bk, &[bytes(log_bytes_ioctl)]);
    let range = |v: &[f64]| {
        let lo = v.iter().cloned().fold(f64::INFINITY, f64::min);
        let hi = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        [("min", format!("{lo:.3}")), ("max", format!("{hi:.3}"))]
    };
    for (b, p) in all.iter().zip(&paths) {
        let name = |n: &str| format!("{}{n}", b.prefix);
        let df = p.floor.dist()?;
        record_dist(env, &name("floor"), &df, &[]);
        record_dist(env, &name("unknown_ioctl"), &p.bare.dist()?, &[]);
        let di = p.id.dist()?;
        record_dist(env, &name("identify.ioctl"), &di, &[]);
        let gi = p.log.dist()?;
        record_dist(env, &name("getlog.ioctl"), &gi, &[bytes(log_bytes_ioctl)]);
        record(env, &name("rounds.p1"), &range(&p.p1_rounds));
        record(env, &name("rounds.p4"), &range(&p.p4_rounds));
        let w = &p.waits;
        let per = |i: usize| format!("{:.3}", w[i] as f64 / w[0].max(1) as f64);
        record(
            env,
            &name("driver.waits"),
            &[
                ("commands", w[0].to_string()),
                ("immediate", per(1)),
                ("polls", per(2)),
                ("spins", per(3)),
                ("sleeps", per(4)),
                ("irq_waits", per(5)),
            ],
        );
        env.note(format!(
            "{}Identify median: ioctl {:.1} us, mmap {:.1} us + floor {:.1} us: ratio {:.2}",
            b.prefix,
            di.median,
            dm.median,
            df.median,
            di.median / (dm.median + df.median)
        ));
        env.note(format!(
            "{}Get Log median: ioctl {:.1} us for {log_bytes_ioctl} B, mmap {:.1} us for \
             {log_bytes_mmap} B, block read {:.1} us",
            b.prefix, gi.median, gm.median, bk.median
        ));
    }
    if !base_rounds.is_empty() {
        record(env, "rounds.base", &range(&base_rounds));
    }
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
/// decide it); each client's share is its commands summed over the steps. With a base build,
/// each pass runs on both builds, in alternating order.
pub fn concurrent_clients(env: &mut Env) -> Result<Outcome> {
    let all = builds();
    use_build(env, UNDER_TEST, &all)?;
    let sw = env.topo.switches.first().cloned().context("no switch")?;
    let max = *CLIENTS.iter().max().unwrap_or(&1);
    // Per build and client count: commands of each client (summed over the steps), each
    // step's rate, the context switches of the clients (voluntary, involuntary).
    type Steps = Vec<(Vec<u64>, Vec<f64>, [u64; 2])>;
    let mut per: Vec<Steps> = all
        .iter()
        .map(|_| vec![(Vec::new(), Vec::new(), [0, 0]); max + 1])
        .collect();
    for pass in 0..CLIENT_PASSES {
        let mut counts_order = CLIENTS;
        if pass % 2 == 1 {
            counts_order.reverse();
        }
        for b in in_order(&all, pass / 2) {
            let i = all.iter().position(|x| *x == b).unwrap_or(0);
            use_build(env, b, &all)?;
            let path = env.node_for_serial(sw.serial)?.path().to_path_buf();
            for n in counts_order {
                let (counts, secs, sw) = clients_step(&path, n)?;
                let (sums, rates, switches) = &mut per[i][n];
                switches[0] += sw[0];
                switches[1] += sw[1];
                rates.push(counts.iter().sum::<u64>() as f64 / secs);
                if sums.is_empty() {
                    *sums = counts;
                } else {
                    for (s, c) in sums.iter_mut().zip(counts) {
                        *s += c;
                    }
                }
            }
        }
    }
    if all.len() > 1 {
        use_build(env, UNDER_TEST, &all)?;
    }
    for (b, steps) in all.iter().zip(per.iter_mut()) {
        let mut one = None;
        for n in CLIENTS {
            let (sums, rates, switches) = &mut steps[n];
            rates.sort_by(f64::total_cmp);
            let total = sums.iter().sum::<u64>().max(1) as f64;
            let rate = rates[rates.len() / 2];
            let (slowest, fastest) = (rates[0], rates[rates.len() - 1]);
            let lo = *sums.iter().min().unwrap_or(&0);
            let hi = *sums.iter().max().unwrap_or(&0);
            ensure!(lo > 0, "a client of {n} completed no command");
            let one_rate = *one.get_or_insert(rate);
            record(
                env,
                &format!("{}clients.{n}", b.prefix),
                &[
                    ("rate", format!("{rate:.0}")),
                    ("per_client_min", lo.to_string()),
                    ("per_client_max", hi.to_string()),
                    ("maxmin", format!("{:.3}", hi as f64 / lo as f64)),
                    ("steps", rates.len().to_string()),
                    ("step_min", format!("{slowest:.0}")),
                    ("step_max", format!("{fastest:.0}")),
                    ("vcsw_per_cmd", format!("{:.3}", switches[0] as f64 / total)),
                    (
                        "ivcsw_per_cmd",
                        format!("{:.3}", switches[1] as f64 / total),
                    ),
                ],
            );
            env.note(format!(
                "{}{n} client(s): {rate:.0} Identify/s ({:.2}x of one), per client {lo}..{hi}; \
                 context switches per command {:.3} voluntary, {:.3} involuntary",
                b.prefix,
                rate / one_rate,
                switches[0] as f64 / total,
                switches[1] as f64 / total
            ));
        }
    }
    Ok(Outcome::Pass)
}

/// The calling thread's voluntary and involuntary context switches so far (getrusage
/// RUSAGE_THREAD): a client that sleeps on the device mutex switches voluntarily.
fn thread_switches() -> [u64; 2] {
    // SAFETY: an all-zero rusage is a valid value of the plain C structure.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: writes one rusage.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
    [ru.ru_nvcsw as u64, ru.ru_nivcsw as u64]
}

/// One step of [`concurrent_clients`]: `n` threads, each with its own open file of `path`,
/// send Identify as fast as they can for [`CLIENT_STEP`]; each one's commands, the step's
/// length in seconds, and the clients' voluntary and involuntary context switches.
fn clients_step(path: &std::path::Path, n: usize) -> Result<(Vec<u64>, f64, [u64; 2])> {
    let stop = Arc::new(AtomicBool::new(false));
    let start = Arc::new(Barrier::new(n + 1));
    let hs: Vec<_> = (0..n)
        .map(|_| {
            let (path, stop, start) = (path.to_path_buf(), stop.clone(), start.clone());
            std::thread::spawn(move || -> Result<(u64, [u64; 2])> {
                let dev = Device::open(&path)?;
                let mut id = Send::raw(opcode::IDENTIFY, Vec::new(), IDENTIFY_OUT)?;
                for _ in 0..WARM_UP {
                    id.run(&dev)?;
                }
                start.wait();
                let sw0 = thread_switches();
                let mut count = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    id.run(&dev)?;
                    count += 1;
                }
                let sw1 = thread_switches();
                Ok((count, [sw1[0] - sw0[0], sw1[1] - sw0[1]]))
            })
        })
        .collect();
    start.wait();
    let t = Instant::now();
    std::thread::sleep(CLIENT_STEP);
    stop.store(true, Ordering::Relaxed);
    let mut counts = Vec::new();
    let mut switches = [0u64; 2];
    for h in hs {
        let (c, sw) = h.join().map_err(|_| anyhow!("client thread panicked"))??;
        counts.push(c);
        switches[0] += sw[0];
        switches[1] += sw[1];
    }
    Ok((counts, t.elapsed().as_secs_f64(), switches))
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

/// Rounds of [`emu_wait`]: each measures every build (alternating order) on both devices.
const EMU_ROUNDS: usize = 2;

/// What [`emu_wait`] adds up for one build and device over the rounds.
#[derive(Default)]
struct EmuWait {
    /// CPU of the delayed commands, of the same commands undelayed, wall time of the delayed.
    cpu: Duration,
    base: Duration,
    wall: Duration,
    /// Interrupt waits, sleeps, spins of the delayed commands.
    waits: [u64; 3],
    commands: u64,
    identify: Samples,
}

/// The cost of waiting, interrupts against polling, side by side: the same emulated switch,
/// served once with MSI-X and once without. With a base build, every round measures both
/// builds, in alternating order.
pub fn emu_wait(env: &mut Env) -> Result<Outcome> {
    use super::emu;
    const DELAYED: usize = 20;
    let all = builds();
    let timer = timer_cost();
    let modes = ["interrupts", "polling"];
    let mut acc: Vec<Vec<EmuWait>> = all
        .iter()
        .map(|_| modes.iter().map(|_| EmuWait::default()).collect())
        .collect();
    for round in 0..EMU_ROUNDS {
        for b in in_order(&all, round) {
            let bi = all.iter().position(|x| *x == b).unwrap_or(0);
            if all.len() > 1 {
                env.ensure_unloaded()?;
                env.insmod_file(b.path, "")
                    .map_err(|e| anyhow!("insmod {}: {}", b.path, crate::env::errno_str(e)))?;
            }
            let devs: Vec<emu::EmuDev> = emu::devices(env)?
                .into_iter()
                .filter(|d| d.spec.personality == "switch")
                .collect();
            for d in &devs {
                let mi = modes.iter().position(|m| *m == d.mode()).unwrap_or(0);
                let a = &mut acc[bi][mi];
                let dev = d.open()?;
                let mut ctl = d.ctl()?;
                for _ in 0..DELAYED {
                    dev.raw(0x0001, &[], 64)?;
                }
                // The same commands completing at once: the CPU of submitting and reading back
                // (under TCG every register access is a vfio-user round trip that counts as
                // guest CPU time).
                let cpu0 = thread_cpu();
                for _ in 0..DELAYED {
                    dev.raw(0x0001, &[], 64)?;
                }
                a.base += thread_cpu() - cpu0;
                // Completion delayed by 100 ms on the device: how much CPU does the waiting
                // task use?
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
                a.cpu += thread_cpu() - cpu0;
                a.wall += t0.elapsed();
                let w1 = waits(env)?;
                for (x, (n, o)) in a.waits.iter_mut().zip(w1.iter().zip(w0.iter())) {
                    *x += n - o;
                }
                a.commands += DELAYED as u64;
                ctl.cmd("clear")?;
                sample(&mut a.identify, 1000, timer, || {
                    dev.raw(0x0001, &[], 64).map(|_| ()).map_err(Into::into)
                })?;
            }
        }
    }
    if all.len() > 1 {
        env.ensure_unloaded()?;
        emu::devices(env)?;
    }
    for (b, per_mode) in all.iter().zip(&acc) {
        let mut frac = Vec::new();
        let mut lat = Vec::new();
        for (mode, a) in modes.iter().zip(per_mode) {
            if a.commands == 0 {
                continue;
            }
            let wall = a.wall.as_secs_f64();
            let f = a.cpu.as_secs_f64() / wall;
            let waiting = a.cpu.saturating_sub(a.base).as_secs_f64() / wall;
            let per = |i: usize| a.waits[i] as f64 / a.commands as f64;
            frac.push(waiting);
            env.note(format!(
                "{}{mode}: {} commands delayed 100 ms: wall {wall:.2} s, CPU {:.1} ms = {:.3} % \
                 of wall; the same commands undelayed {:.1} ms; waiting alone {:.3} % of wall; \
                 per command {:.1} interrupt waits, {:.1} sleeps, {:.1} spins",
                b.prefix,
                a.commands,
                a.cpu.as_secs_f64() * 1000.0,
                f * 100.0,
                a.base.as_secs_f64() * 1000.0,
                waiting * 100.0,
                per(0),
                per(1),
                per(2)
            ));
            record(
                env,
                &format!("{}emu.{mode}.wait", b.prefix),
                &[
                    ("cpu", format!("{f:.5}")),
                    ("waiting", format!("{waiting:.5}")),
                    ("wall_s", format!("{wall:.3}")),
                    ("irq_waits", format!("{:.2}", per(0))),
                    ("sleeps", format!("{:.2}", per(1))),
                    ("spins", format!("{:.2}", per(2))),
                ],
            );
            let l = a.identify.dist()?;
            env.note(format!(
                "{}{mode}: Identify median {:.1} us, p99 {:.1} us over {}",
                b.prefix, l.median, l.p99, l.n
            ));
            record_dist(env, &format!("{}emu.{mode}.identify", b.prefix), &l, &[]);
            lat.push(l);
        }
        if let ([fi, fp], [li, lp]) = (frac.as_slice(), lat.as_slice()) {
            env.note(format!(
                "{}ratios polling/interrupts: waiting CPU {:.1}x, Identify median latency {:.2}x",
                b.prefix,
                fp / fi.max(1e-9),
                lp.median / li.median
            ));
        }
    }
    Ok(Outcome::Pass)
}

/// Rounds of [`cxl_pci_path`], and commands per path and round (in blocks of [`BLOCK`]).
const CXL_PCI_ROUNDS: usize = 11;
const CXL_PCI_PER_ROUND: usize = 1000;
/// Output buffer of Get Supported Logs (0400h) in [`cxl_pci_path`], bytes.
const SUPPORTED_LOGS_OUT: usize = 256;

/// The module against Linux's own CXL driver doing the same job in the same boot: a raw Get
/// Supported Logs (0400h), which QEMU's switch CCI and its type-3 primary mailbox answer with
/// the same handler, through this driver's node of the switch CCI and through cxl_pci's
/// `/dev/cxl/memN` (`CXL_MEM_SEND_COMMAND` with `CXL_MEM_COMMAND_ID_RAW`, which needs
/// CONFIG_CXL_MEM_RAW_COMMANDS; cxl_pci warns once, "raw command path used"), interleaved in
/// blocks, alternating which goes first in each round. Skipped on a kernel without cxl_pci.
pub fn cxl_pci_path(env: &mut Env) -> Result<Outcome> {
    let mut mems: Vec<_> = match std::fs::read_dir("/dev/cxl") {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("mem"))
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    mems.sort();
    let Some(mem) = mems.first().cloned() else {
        return Ok(Outcome::Skip(
            "no cxl_pci memory device (/dev/cxl/memN): this kernel has no CONFIG_CXL_PCI \
             (the bench kernels have it)"
                .into(),
        ));
    };
    env.ensure_loaded()?;
    let sw = env.topo.switches.first().cloned().context("no switch")?;
    let dev = env.node_for_serial(sw.serial)?;
    let memdev = Device::open(&mem)?;
    let timer = timer_cost();
    let mut ours = Send::raw(opcode::GET_SUPPORTED_LOGS, Vec::new(), SUPPORTED_LOGS_OUT)?;
    let mut theirs = Send::raw(opcode::GET_SUPPORTED_LOGS, Vec::new(), SUPPORTED_LOGS_OUT)?;
    let check = |what: &str, s: &Send| -> Result<()> {
        let logs = SupportedLogs::decode(s.output()?)
            .map_err(|e| anyhow!("{what}: Get Supported Logs answer: {e}"))?;
        ensure!(
            logs.find(&CEL_UUID).is_some(),
            "{what}: Get Supported Logs lists no CEL"
        );
        Ok(())
    };
    let run_mem = |s: &mut Send| -> Result<()> {
        s.run(&memdev)
            .map(|_| ())
            .with_context(|| format!("cxl_pci raw command through {}", mem.display()))
    };
    for _ in 0..WARM_UP {
        ours.run(&dev)?;
        run_mem(&mut theirs)?;
    }
    check(&dev.path().display().to_string(), &ours)?;
    check(&mem.display().to_string(), &theirs)?;
    let (mut a, mut c) = (Samples::default(), Samples::default());
    let mut rounds = Vec::new();
    for round in 0..CXL_PCI_ROUNDS {
        let (a0, c0) = (a.0.len(), c.0.len());
        for _ in 0..CXL_PCI_PER_ROUND / BLOCK {
            for first in [round % 2 == 0, round % 2 == 1] {
                if first {
                    sample(&mut a, BLOCK, timer, || ours.run(&dev).map(|_| ()))?;
                } else {
                    sample(&mut c, BLOCK, timer, || run_mem(&mut theirs))?;
                }
            }
        }
        let med = |s: &Samples, from: usize| Samples(s.0[from..].to_vec()).median_us();
        rounds.push(med(&a, a0)? / med(&c, c0)?);
    }
    check(&dev.path().display().to_string(), &ours)?;
    check(&mem.display().to_string(), &theirs)?;
    let (da, dc) = (a.dist()?, c.dist()?);
    let bytes = ours.output()?.len();
    record_dist(env, "cxlpci.swcci", &da, &[("bytes", bytes.to_string())]);
    record_dist(
        env,
        "cxlpci.cxl_pci",
        &dc,
        &[("bytes", theirs.output()?.len().to_string())],
    );
    let lo = rounds.iter().cloned().fold(f64::INFINITY, f64::min);
    let hi = rounds.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    record(
        env,
        "rounds.cxlpci",
        &[("min", format!("{lo:.3}")), ("max", format!("{hi:.3}"))],
    );
    env.note(format!(
        "Get Supported Logs (0400h) median: swcci {:.1} us ({}), cxl_pci {:.1} us ({}): ratio {:.2}",
        da.median,
        dev.path().display(),
        dc.median,
        mem.display(),
        da.median / dc.median
    ));
    Ok(Outcome::Pass)
}
