// SPDX-License-Identifier: GPL-2.0

//! Allocation and user-copy failures injected into the driver (hardened kernel:
//! CONFIG_FAULT_INJECTION, FAILSLAB, FAIL_PAGE_ALLOC, FAULT_INJECTION_USERCOPY and the
//! stack-trace filter; Documentation/fault-injection/fault-injection.rst).
//!
//! The filter: `require-start`/`require-end` of every fault attribute are set to the module's
//! memory, so only allocations and user copies whose call stack passes through the module
//! count and fail (otherwise `fail-nth` would number every allocation of the bind path's VFS
//! and driver core too). `ignore-gfp-wait` is turned off: by default failslab and
//! fail_page_alloc never fail GFP_KERNEL requests, i.e. almost every allocation a driver
//! makes. Each injected failure is reported in the kernel log with its stack (`verbose` 2,
//! the default); swcci::kernel_log excuses exactly those reports.
//!
//! - probe: `fail-nth` N = 1, 2, ... on the task that writes the PCI address to the driver's
//!   `bind`, until a bind hits no failure point: every failure ends in a clean probe failure
//!   (unbound, no node, a log line of the driver naming the step) or a device that binds and
//!   works; the next bind works.
//! - ioctls: the same for every ioctl kind and node: a clean errno (ENOMEM, or EFAULT for a
//!   failed user copy) or a correct answer; the next call works; a message being received is
//!   not lost to ENOMEM.
//! - failslab with a task filter (`make-it-fail` on this task only) at 25 % under mixed
//!   ioctls and rebinds.

use crate::env::{errno_str, Env, DRIVER_DIR, MODULE_NAME};
use crate::tests::fuzz::{self, tagged, verify_tagged, Kind, Target};
use crate::Outcome;
use anyhow::{bail, ensure, Context, Result};
use std::fs;
use std::path::PathBuf;
use swcci::proto::opcode;
use swcci::proto::uapi::SwcciBgPolicy;
use swcci::{Device, MmptRecv};

const DEBUGFS: &str = "/sys/kernel/debug";
/// The fault attributes the driver can hit.
const ATTRS: &[&str] = &["failslab", "fail_page_alloc", "fail_usercopy"];
/// Stop looking for more failure points of one operation after this many.
const MAX_POINTS: u32 = 400;
/// Probe: every failure point up to here, then every [`PROBE_STRIDE`]th (an MMPT function's
/// MSI-X vectors each bring their sysfs and procfs entries: several hundred points) ...
const PROBE_DENSE: u32 = 100;
const PROBE_STRIDE: u32 = 8;
/// ... up to this one. Beyond it, an MMPT function's probe is still in the genirq core's
/// per-vector sysfs and procfs entries, where an injected failure is ignored at creation and
/// makes the kernel WARN when the vector is freed (fs/proc/generic.c, remove_proc_entry of
/// 'affinity_hint'): a kernel bug, not the driver's.
const PROBE_MAX: u32 = 300;

fn knob(attr: &str, name: &str, value: &str) -> Result<()> {
    let p = format!("{DEBUGFS}/{attr}/{name}");
    fs::write(&p, value).with_context(|| format!("write {value} to {p}"))
}

/// The module's memory `[start, end)` from /proc/modules (its text starts there).
fn module_range() -> Result<(u64, u64)> {
    let _ = fs::write("/proc/sys/kernel/kptr_restrict", "0");
    let text = fs::read_to_string("/proc/modules").context("read /proc/modules")?;
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{MODULE_NAME} ")))
        .context("cxl_swcci not loaded")?;
    let f: Vec<&str> = line.split_whitespace().collect();
    let size: u64 = f
        .get(1)
        .and_then(|s| s.parse().ok())
        .context("module size")?;
    let base = f
        .iter()
        .find_map(|s| s.strip_prefix("0x"))
        .and_then(|h| u64::from_str_radix(h, 16).ok())
        .filter(|b| *b != 0)
        .with_context(|| format!("module address in {line:?}"))?;
    Ok((base, base + size))
}

/// Counts and fails only what the module's code asks for; GFP_KERNEL requests included.
pub fn confine() -> Result<(u64, u64)> {
    let (start, end) = module_range()?;
    for a in ATTRS {
        knob(a, "stacktrace-depth", "32")?;
        knob(a, "require-start", &start.to_string())?;
        knob(a, "require-end", &end.to_string())?;
        knob(a, "probability", "0")?;
        knob(a, "task-filter", "N")?;
    }
    knob("failslab", "ignore-gfp-wait", "N")?;
    knob("fail_page_alloc", "ignore-gfp-wait", "N")?;
    knob("fail_page_alloc", "ignore-gfp-highmem", "N")?;
    knob("fail_page_alloc", "min-order", "0")?;
    Ok((start, end))
}

thread_local! {
    /// This thread's fail-nth, open once: arming is one write(2), nothing else in between.
    static FAIL_NTH: std::cell::RefCell<Option<fs::File>> = const { std::cell::RefCell::new(None) };
}

fn fail_nth<T>(f: impl FnOnce(&fs::File) -> std::io::Result<T>) -> Result<T> {
    FAIL_NTH.with(|c| {
        let mut c = c.borrow_mut();
        if c.is_none() {
            *c = Some(
                fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open("/proc/thread-self/fail-nth")
                    .context("open /proc/thread-self/fail-nth")?,
            );
        }
        let file = c.as_ref().context("fail-nth")?;
        f(file).context("fail-nth")
    })
}

/// Makes the `n`-th failure point of this thread fail.
pub fn arm(n: u32) -> Result<()> {
    use std::os::unix::fs::FileExt;
    fail_nth(|f| f.write_at(n.to_string().as_bytes(), 0).map(|_| ()))
}

/// Disarms; whether the armed failure was injected.
pub fn disarm() -> Result<bool> {
    use std::os::unix::fs::FileExt;
    let mut buf = [0u8; 16];
    let n = fail_nth(|f| f.read_at(&mut buf, 0))?;
    let left = String::from_utf8_lossy(&buf[..n]).trim().to_string();
    fail_nth(|f| f.write_at(b"0", 0).map(|_| ()))?;
    Ok(left == "0")
}

/// The node of `addr`.
fn node(addr: &str) -> Option<PathBuf> {
    for dir in ["/dev/cxl", "/dev/swcci"] {
        for e in fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if Device::open(&p)
                .and_then(|d| d.info())
                .is_ok_and(|i| swcci::info_str(&i.pci_addr) == addr)
            {
                return Some(p);
            }
        }
    }
    None
}

/// What a device should still do: answer Identify as before, or echo a message.
fn works(t: &Target) -> Result<()> {
    let p = node(&t.addr).with_context(|| format!("{}: no node", t.addr))?;
    let d = Device::open(&p)?;
    if t.kind != Kind::Mmpt {
        let id = d.command(opcode::IDENTIFY, &[], 64)?;
        ensure!(id == t.identify, "{}: Identify {id:02x?}", t.addr);
    }
    if t.mmpt() {
        drain(&d);
        let data = tagged(0xabcd, 2, 2500);
        let rc = d.mmpt_send(2, &data)?;
        ensure!(rc.raw() == 0, "{}: send: {rc:?}", t.addr);
        match d.mmpt_recv(1 << 20, 1000)? {
            MmptRecv::Message {
                msg_type: 2,
                data: back,
            } if back == data => {}
            other => bail!("{}: echo came back as {other:?}", t.addr),
        }
    }
    Ok(())
}

fn drain(d: &Device) {
    while let Ok(MmptRecv::Message { .. }) = d.mmpt_recv(1 << 20, 0) {}
}

fn bound(env: &Env, addr: &str) -> bool {
    env.driver_of(addr).as_deref() == Some(MODULE_NAME)
}

/// fail-nth during probe, for every device.
pub fn probe(env: &mut Env) -> Result<Outcome> {
    let targets = fuzz::targets(env)?;
    confine()?;
    let mut unnamed = Vec::new();
    for t in &targets {
        env.unbind(&t.addr)?;
        let (mut failed, mut survived, mut nodeless) = (0, 0, 0);
        let mut n = 1;
        loop {
            if n > PROBE_MAX {
                env.note(format!(
                    "{}: more than {PROBE_MAX} failure points in probe, sampled up to there \
                     ({failed} failed it, {survived} were survived, {nodeless} of them without a /dev node)",
                    t.addr
                ));
                env.bind(&t.addr)?;
                works(t)?;
                break;
            }
            env.kmsg();
            arm(n)?;
            let r = fs::write(format!("{DRIVER_DIR}/bind"), &t.addr);
            let injected = disarm()?;
            let lines = env.kmsg();
            let at = || format!("{}: failure point {n} of probe", t.addr);
            if !injected {
                ensure!(
                    r.is_ok() && bound(env, &t.addr),
                    "{}: bind without an injected failure: {r:?}",
                    t.addr
                );
                works(t).with_context(at)?;
                env.note(format!("{}: {} failure points in probe ({failed} of those tried failed it, {survived} were survived, {nodeless} of them without a /dev node)", t.addr, n - 1));
                break;
            }
            match r {
                Ok(()) => {
                    ensure!(
                        bound(env, &t.addr),
                        "{}: bind succeeded but the device is not bound",
                        at()
                    );
                    // devtmpfs creates the node after bind returns; it never does when the
                    // failure hit devtmpfs's own request (the driver core ignores that).
                    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
                    while node(&t.addr).is_none() && std::time::Instant::now() < deadline {
                        std::thread::sleep(std::time::Duration::from_millis(20));
                    }
                    match node(&t.addr) {
                        None => nodeless += 1,
                        // The whole check now and then; the node answering always.
                        Some(_) if survived % 8 == 0 => works(t).with_context(at)?,
                        Some(p) => {
                            Device::open(&p)?.info().with_context(at)?;
                        }
                    }
                    survived += 1;
                }
                Err(e) => {
                    ensure!(
                        !bound(env, &t.addr),
                        "{}: bind failed ({e}) but the device is bound",
                        at()
                    );
                    ensure!(
                        node(&t.addr).is_none(),
                        "{}: bind failed ({e}) but a node is left",
                        at()
                    );
                    let prefix = format!("{MODULE_NAME} {}: ", t.addr);
                    if !lines
                        .iter()
                        .any(|l| l.starts_with(&prefix) && !l.contains("probe with driver"))
                    {
                        // Collected, so that one run lists every such step.
                        unnamed.push(format!("{}: {e}", at()));
                    }
                    // The next attempt works.
                    env.bind(&t.addr)
                        .with_context(|| format!("{}: the bind after it", at()))?;
                    works(t).with_context(|| format!("{}: the bind after it", at()))?;
                    ensure!(
                        env.debugfs(&t.addr).join("stats").exists(),
                        "{}: the bind after it has no debugfs stats (left over from the failed probe?)",
                        at()
                    );
                    failed += 1;
                }
            }
            env.check_kernel_log().with_context(at)?;
            env.unbind(&t.addr)?;
            n += if n < PROBE_DENSE { 1 } else { PROBE_STRIDE };
        }
    }
    env.note(format!(
        "{} fault-injection reports in the kernel log so far",
        env.injected_failures()
    ));
    if !unnamed.is_empty() {
        bail!(
            "{} probe failure(s) without a message of the driver naming the failing step \
             (the kernel log has the stack of each injected failure): {}",
            unnamed.len(),
            unnamed.join("; ")
        );
    }
    Ok(Outcome::Pass)
}

/// The ioctls tried, per node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Info,
    Query,
    BgPolicy,
    Identify,
    MmbIdentify,
    Tunnel,
    Echo,
    MmptSend(usize),
    MmptRecv,
}

fn ops(t: &Target) -> Vec<Op> {
    let mut v = vec![Op::Info, Op::Query, Op::BgPolicy];
    if t.kind != Kind::Mmpt {
        v.extend([Op::Identify, Op::MmbIdentify]);
    }
    if t.kind == Kind::QemuSwitch && !t.type3.is_empty() {
        v.push(Op::Tunnel);
    }
    if t.kind == Kind::EmuSwitch {
        v.push(Op::Echo);
    }
    if t.mmpt() {
        v.extend([Op::MmptSend(3000), Op::MmptSend(24 << 10), Op::MmptRecv]);
    }
    v
}

/// What an operation ended in.
enum Res {
    Ok,
    Errno(i32),
}

/// Runs `op`; a wrong answer is an error, an errno is a result.
fn run(op: Op, d: &Device, t: &Target, seq: u32) -> Result<Res> {
    // Ok(None): right; Ok(Some(why)): a wrong answer; Err: the call failed.
    let r: std::result::Result<Option<String>, swcci::Error> = match op {
        Op::Info => d
            .info()
            .map(|i| (i != t.info).then(|| format!("info {i:?}"))),
        Op::Query => d
            .query()
            .map(|q| (q.len() != 1).then(|| format!("query {q:?}"))),
        Op::BgPolicy => {
            let want = SwcciBgPolicy {
                timeout_ms: 500,
                flags: 1,
            };
            d.bg_policy(want)
                .map(|p| (p != want).then(|| format!("policy {p:?}")))
        }
        Op::Identify => d.raw(opcode::IDENTIFY, &[], 64).map(|r| {
            (!r.rc.is_success() || r.out != t.identify).then(|| format!("Identify {r:?}"))
        }),
        Op::MmbIdentify => d
            .mmb_command(opcode::IDENTIFY, 0, &[], 64)
            .map(|r| (r.rc != 0 || r.out != t.identify).then(|| format!("MMB Identify {r:?}"))),
        Op::Tunnel => {
            let (port, serial) = t.type3[0];
            d.tunnel(&[port], opcode::IDENTIFY, &[]).map(|r| {
                let id = swcci::proto::payload::identify::Identify::decode(&r.payload);
                (!r.rc().is_success() || !id.is_ok_and(|i| i.serial == serial))
                    .then(|| format!("tunnelled Identify {r:?}"))
            })
        }
        Op::Echo => {
            let data: Vec<u8> = (0..1500u32).map(|i| (i ^ seq) as u8).collect();
            d.raw(0xc001, &data, t.payload).map(|r| {
                (!r.rc.is_success() || r.out != data)
                    .then(|| format!("echo: {} with {} bytes", r.rc, r.out.len()))
            })
        }
        Op::MmptSend(len) => {
            let data = tagged(seq, 3, len);
            match d.mmpt_send(3, &data) {
                Ok(rc) if rc.raw() == 0 => match d.mmpt_recv(1 << 20, 1000) {
                    Ok(MmptRecv::Message {
                        msg_type: 3,
                        data: back,
                    }) if back == data => Ok(None),
                    Ok(other) => Ok(Some(format!("echo of {len} bytes came back as {other:?}"))),
                    Err(r) => Err(r),
                },
                Ok(rc) => Ok(Some(format!("send of {len} bytes: device returned {rc:?}"))),
                Err(r) => Err(r),
            }
        }
        Op::MmptRecv => match d.mmpt_recv(1 << 20, 1000) {
            Ok(MmptRecv::Message { msg_type, data }) => Ok(verify_tagged(msg_type, &data).err()),
            Ok(other) => Ok(Some(format!("receive: {other:?}"))),
            Err(r) => Err(r),
        },
    };
    match r {
        Ok(None) => Ok(Res::Ok),
        Ok(Some(wrong)) => bail!("wrong answer: {wrong}"),
        Err(e) => match e.errno() {
            Some(n) => Ok(Res::Errno(n)),
            None => bail!("{e}"),
        },
    }
}

/// fail-nth before each ioctl kind of every node.
pub fn ioctls(env: &mut Env) -> Result<Outcome> {
    let targets = fuzz::targets(env)?;
    confine()?;
    let mut seq = 0u32;
    for t in &targets {
        let d = Device::open(node(&t.addr).context("node")?)?;
        drain(&d);
        let mut summary = Vec::new();
        for op in ops(t) {
            let mut n = 1;
            let mut lost = 0;
            loop {
                ensure!(
                    n <= MAX_POINTS,
                    "{}: {op:?} still has failure points after {MAX_POINTS}",
                    t.addr
                );
                seq += 1;
                if op == Op::MmptRecv {
                    drain(&d);
                    ensure!(
                        d.mmpt_send(4, &tagged(seq, 4, 2000))?.raw() == 0,
                        "queue a message"
                    );
                }
                arm(n)?;
                let r = run(op, &d, t, seq);
                let injected = disarm()?;
                let at = || format!("{} {op:?}, failure point {n}", t.addr);
                let r = r.with_context(at)?;
                if !injected {
                    ensure!(
                        matches!(r, Res::Ok),
                        "{}: failed without an injected failure: {}",
                        at(),
                        match r {
                            Res::Errno(e) => errno_str(e),
                            Res::Ok => String::new(),
                        }
                    );
                    summary.push(format!("{op:?} {}", n - 1));
                    break;
                }
                if let Res::Errno(e) = r {
                    ensure!(
                        e == libc::ENOMEM || e == libc::EFAULT,
                        "{}: {}, expected ENOMEM or EFAULT",
                        at(),
                        errno_str(e)
                    );
                    if op == Op::MmptRecv {
                        // The message waits still, unless a failed copy to user space lost it.
                        match d.mmpt_recv(1 << 20, 200) {
                            Ok(MmptRecv::Message { msg_type, data }) => {
                                verify_tagged(msg_type, &data)
                                    .map_err(|m| anyhow::anyhow!("{}: {m}", at()))?;
                            }
                            Err(x) if e == libc::EFAULT && x.errno() == Some(libc::ETIMEDOUT) => {
                                lost += 1
                            }
                            other => bail!(
                                "{}: after {}: the waiting message is gone: {other:?}",
                                at(),
                                errno_str(e)
                            ),
                        }
                    }
                }
                // The next attempt works.
                if op == Op::MmptRecv {
                    drain(&d);
                    d.mmpt_send(4, &tagged(seq, 4, 2000))?;
                }
                match run(op, &d, t, seq).with_context(|| format!("{}: the call after it", at()))? {
                    Res::Ok => {}
                    Res::Errno(x) => bail!("{}: the call after it: {}", at(), errno_str(x)),
                }
                if t.mmpt() {
                    drain(&d);
                }
                env.check_kernel_log().with_context(at)?;
                n += 1;
            }
            if lost > 0 {
                env.note(format!(
                    "{}: {lost} message(s) lost to a failed copy to user space (EFAULT)",
                    t.addr
                ));
            }
        }
        env.note(format!(
            "{}: failure points per ioctl: {}",
            t.addr,
            summary.join(", ")
        ));
    }
    Ok(Outcome::Pass)
}

/// Clears make-it-fail and failslab's probability when dropped.
struct Failslab;

impl Failslab {
    fn on(percent: u32) -> Result<Self> {
        knob("failslab", "task-filter", "Y")?;
        knob("failslab", "interval", "1")?;
        knob("failslab", "times", "-1")?;
        knob("failslab", "space", "0")?;
        knob("failslab", "verbose", "1")?;
        knob("failslab", "probability", &percent.to_string())?;
        fs::write("/proc/thread-self/make-it-fail", "1").context("make-it-fail")?;
        Ok(Self)
    }

    fn pause(on: bool) {
        let _ = fs::write("/proc/thread-self/make-it-fail", if on { "1" } else { "0" });
    }
}

impl Drop for Failslab {
    fn drop(&mut self) {
        Self::pause(false);
        let _ = knob("failslab", "probability", "0");
        let _ = knob("failslab", "task-filter", "N");
        let _ = knob("failslab", "verbose", "2");
    }
}

/// failslab at 25 % on this task only, under mixed ioctls on every node and rebinds.
pub fn failslab(env: &mut Env) -> Result<Outcome> {
    let targets = fuzz::targets(env)?;
    confine()?;
    let (mut ok, mut enomem, mut rebinds_failed) = (0, 0, 0);
    {
        let _on = Failslab::on(25)?;
        for round in 0..16u32 {
            for t in &targets {
                Failslab::pause(false);
                let p = node(&t.addr);
                Failslab::pause(true);
                let p = p.with_context(|| format!("{} has no node", t.addr))?;
                // Opening allocates in the driver too.
                let d = match Device::open(&p) {
                    Ok(d) => d,
                    Err(e) if e.errno() == Some(libc::ENOMEM) => {
                        enomem += 1;
                        continue;
                    }
                    Err(e) => bail!("open {}: {e}", p.display()),
                };
                for op in ops(t) {
                    if op == Op::MmptRecv {
                        continue;
                    }
                    if t.mmpt() {
                        Failslab::pause(false);
                        drain(&d);
                        Failslab::pause(true);
                    }
                    match run(op, &d, t, round)
                        .with_context(|| format!("{} {op:?} under failslab", t.addr))?
                    {
                        Res::Ok => ok += 1,
                        Res::Errno(libc::ENOMEM) => enomem += 1,
                        Res::Errno(e) => {
                            bail!("{} {op:?} under failslab: {}", t.addr, errno_str(e))
                        }
                    }
                    if t.mmpt() {
                        drain(&d);
                    }
                }
                if round % 8 == 7 {
                    env.unbind(&t.addr)?;
                    if fs::write(format!("{DRIVER_DIR}/bind"), &t.addr).is_err() {
                        rebinds_failed += 1;
                        ensure!(
                            !bound(env, &t.addr),
                            "{}: bind failed under failslab but bound",
                            t.addr
                        );
                        Failslab::pause(false);
                        env.bind(&t.addr)?;
                        Failslab::pause(true);
                    }
                }
            }
            env.check_kernel_log()
                .with_context(|| format!("failslab round {round}"))?;
        }
    }
    ensure!(
        enomem > 0,
        "failslab at 25 % failed nothing the driver asked for ({ok} calls)"
    );
    for t in &targets {
        works(t)?;
    }
    env.note(format!("failslab 25 %: {ok} correct answers, {enomem} ENOMEM, {rebinds_failed} binds failed cleanly"));
    Ok(Outcome::Pass)
}
