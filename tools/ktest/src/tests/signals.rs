// SPDX-License-Identifier: GPL-2.0

//! Waits that signals must not break (scenario `emu`; Documentation/abi.rst, "Background
//! commands"): a raw background command waited for in the kernel, and an MMPT receive, in a
//! process that is stopped and continued, traced, or takes a signal with a handler, must go on
//! waiting for the same operation (the call restarts; the device sees the command once and no
//! abort); a handler without `SA_RESTART` ends the wait with EINTR and leaves the operation
//! running, and the identical command on the same file picks the wait up again; only a fatal
//! signal requests an abort, and only with `SWCCI_BG_ABORT_ON_SIGNAL`. And unbind wakes every
//! receiver waiting in interrupt mode at once.
//!
//! The waiting process is a child (`swcci-ktest --helper bg-wait|mmpt-recv`, `helpers.rs`); each
//! test acts on it once the emulator shows the operation running and the child sleeps in the
//! ioctl (`child.rs`).

use crate::child::{in_ioctl, num_field, task_state, wait_for, Child};
use crate::ctl::Ctl;
use crate::env::{errno_str, Env};
use crate::tests::emu::{devices, EmuDev};
use crate::Outcome;
use anyhow::{bail, ensure, Context, Result};
use std::time::{Duration, Instant};
use swcci::proto::uapi::{SWCCI_BG_ABORT_ON_SIGNAL, SWCCI_BG_ABORT_ON_TIMEOUT};

/// The emulator's background sleep (input: u32 ms).
const SLEEP: u16 = 0xc000;
/// How long each background operation of these tests runs (ms).
const OP_MS: u32 = 500;

/// The emulator counters these tests compare: Request Abort commands, background operations
/// started, commands completed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Seen {
    aborts: u64,
    bg_started: u64,
    commands: u64,
}

impl Seen {
    fn read(ctl: &mut Ctl) -> Result<Self> {
        Ok(Self {
            aborts: ctl.get("stat aborts")?,
            bg_started: ctl.get("stat bg-started")?,
            commands: ctl.get("commands")?,
        })
    }

    fn since(self, before: Self) -> Self {
        Self {
            aborts: self.aborts - before.aborts,
            bg_started: self.bg_started - before.bg_started,
            commands: self.commands - before.commands,
        }
    }
}

/// Whether the emulator's background operation `opcode` is running.
fn bg_running(ctl: &mut Ctl, opcode: u16) -> Result<bool> {
    let bg = ctl.cmd("get bg")?;
    Ok(num_field(&bg, "running")? == 1 && num_field(&bg, "opcode")? == u64::from(opcode))
}

/// Starts `bg-wait` on `d` and returns once the operation runs and the child sleeps in the
/// ioctl waiting for it.
fn start_waiter(d: &EmuDev, ctl: &mut Ctl, flags: u32, handler: &str) -> Result<Child> {
    let mut c = Child::spawn(&[
        "bg-wait".into(),
        d.path.display().to_string(),
        format!("{SLEEP:#x}"),
        OP_MS.to_string(),
        flags.to_string(),
        "5000".into(),
        handler.into(),
    ])?;
    c.ready()?;
    let dir = c.proc_dir();
    wait_for(
        "the background operation running and its caller in the ioctl",
        Duration::from_secs(5),
        || Ok(bg_running(ctl, SLEEP)? && in_ioctl(&dir)),
    )
    .with_context(|| d.label())?;
    Ok(c)
}

/// Waits for the last operation to end on its own, so the next test starts idle.
fn settle(ctl: &mut Ctl) -> Result<()> {
    wait_for(
        "the background operation ending",
        Duration::from_secs(5),
        || Ok(!bg_running(ctl, SLEEP)?),
    )?;
    Ok(())
}

/// Checks a helper's result line: the operation's own completion (return code 0).
fn expect_completion(what: &str, line: &str) -> Result<()> {
    if line.contains("errno=") {
        let e = num_field(line, "errno")? as i32;
        bail!(
            "{what}: {} ({line}), expected the command's completion",
            errno_str(e)
        );
    }
    ensure!(num_field(line, "rc")? == 0, "{what}: {line}");
    Ok(())
}

/// Stops and continues the waiting process, or attaches and detaches with ptrace.
fn interrupt(c: &Child, ptrace: bool) -> Result<()> {
    let dir = c.proc_dir();
    if ptrace {
        let pid = c.pid();
        // SAFETY: ptrace(2) requests on our own child; no memory is passed.
        let r = unsafe { libc::ptrace(libc::PTRACE_ATTACH, pid, 0usize, 0usize) };
        ensure!(r == 0, "PTRACE_ATTACH: {}", std::io::Error::last_os_error());
        let mut status = 0;
        // SAFETY: waits for our own child's stop; `status` is a valid int.
        let w = unsafe { libc::waitpid(pid, &mut status, libc::__WALL) };
        ensure!(
            w == pid && libc::WIFSTOPPED(status),
            "waitpid after PTRACE_ATTACH: {w}, status {status:#x}"
        );
        // SAFETY: as above.
        let r = unsafe { libc::ptrace(libc::PTRACE_DETACH, pid, 0usize, 0usize) };
        ensure!(r == 0, "PTRACE_DETACH: {}", std::io::Error::last_os_error());
    } else {
        c.signal(libc::SIGSTOP)?;
        wait_for("the process stopped", Duration::from_secs(5), || {
            Ok(task_state(&dir) == Some('T'))
        })?;
        c.signal(libc::SIGCONT)?;
    }
    Ok(())
}

/// Runs every case, notes the ones that hold and fails naming every one that does not (so a
/// run shows all of them, not the first only).
fn all_cases(env: &mut Env, cases: Vec<(String, Result<String>)>) -> Result<Outcome> {
    let mut failed = Vec::new();
    for (what, r) in cases {
        match r {
            Ok(note) => env.note(format!("{what}: {note}")),
            Err(e) => failed.push(format!("{what}: {e:#}")),
        }
    }
    if !failed.is_empty() {
        bail!("{}", failed.join("\n"));
    }
    Ok(Outcome::Pass)
}

/// The emulated switches: the first with interrupts, the polled one.
fn switches(env: &mut Env) -> Result<Vec<EmuDev>> {
    let sw: Vec<EmuDev> = devices(env)?
        .into_iter()
        .filter(|d| d.spec.personality == "switch")
        .collect();
    ensure!(!sw.is_empty(), "no emulated switch");
    Ok(sw)
}

/// One stop/continue or ptrace case: the operation's own completion, the command once, no
/// abort.
fn stop_case(d: &EmuDev, ctl: &mut Ctl, ptrace: bool) -> Result<String> {
    let flags = SWCCI_BG_ABORT_ON_TIMEOUT | SWCCI_BG_ABORT_ON_SIGNAL;
    let before = Seen::read(ctl)?;
    let mut c = start_waiter(d, ctl, flags, "none")?;
    interrupt(&c, ptrace)?;
    let line = c.line(Duration::from_secs(10))?;
    c.wait(Duration::from_secs(5))?;
    settle(ctl)?;
    let seen = Seen::read(ctl)?.since(before);
    expect_completion("the waiting command", &line)?;
    ensure!(
        seen == Seen {
            aborts: 0,
            bg_started: 1,
            commands: 1
        },
        "the emulator saw {seen:?}, expected the command once and no abort ({line})"
    );
    Ok(line)
}

pub fn bg_wait_survives_stop_and_ptrace(env: &mut Env) -> Result<Outcome> {
    let mut cases = Vec::new();
    for (i, d) in switches(env)?.iter().enumerate() {
        let mut ctl = d.ctl()?;
        // Stop/continue in both completion modes, ptrace on the first.
        let ways: &[bool] = if i == 0 { &[false, true] } else { &[false] };
        for &ptrace in ways {
            let what = format!(
                "{}: {}",
                d.label(),
                if ptrace {
                    "ptrace attach and detach"
                } else {
                    "SIGSTOP and SIGCONT"
                }
            );
            let r = stop_case(d, &mut ctl, ptrace);
            settle(&mut ctl)?;
            cases.push((what, r));
        }
    }
    all_cases(env, cases)
}

/// A SIGUSR1 handler with SA_RESTART: restarted transparently, the device sees the command
/// once.
fn restart_case(d: &EmuDev, ctl: &mut Ctl) -> Result<String> {
    let flags = SWCCI_BG_ABORT_ON_TIMEOUT | SWCCI_BG_ABORT_ON_SIGNAL;
    let before = Seen::read(ctl)?;
    let mut c = start_waiter(d, ctl, flags, "restart")?;
    c.signal(libc::SIGUSR1)?;
    let line = c.line(Duration::from_secs(10))?;
    c.wait(Duration::from_secs(5))?;
    settle(ctl)?;
    let seen = Seen::read(ctl)?.since(before);
    expect_completion("the waiting command", &line)?;
    ensure!(
        seen == Seen {
            aborts: 0,
            bg_started: 1,
            commands: 1
        },
        "the emulator saw {seen:?}, expected the command once and no abort ({line})"
    );
    Ok(line)
}

/// A SIGUSR1 handler without SA_RESTART: EINTR, the operation runs on; the same command on
/// the same file waits for it again instead of sending it twice.
fn eintr_case(d: &EmuDev, ctl: &mut Ctl) -> Result<String> {
    let flags = SWCCI_BG_ABORT_ON_TIMEOUT | SWCCI_BG_ABORT_ON_SIGNAL;
    let before = Seen::read(ctl)?;
    let mut c = start_waiter(d, ctl, flags, "plain")?;
    c.signal(libc::SIGUSR1)?;
    let first = c.line(Duration::from_secs(10))?;
    let running = bg_running(ctl, SLEEP)?;
    let aborts = ctl.get("stat aborts")? - before.aborts;
    ensure!(
        num_field(&first, "errno").ok() == Some(libc::EINTR as u64),
        "{first}, expected EINTR"
    );
    ensure!(
        aborts == 0 && running,
        "after EINTR the operation was aborted ({aborts} abort(s)) or is not running \
         (running {running})"
    );
    let again = c.line(Duration::from_secs(10))?;
    c.wait(Duration::from_secs(5))?;
    settle(ctl)?;
    let seen = Seen::read(ctl)?.since(before);
    let again = again.strip_prefix("again ").unwrap_or(&again).to_string();
    expect_completion("the command sent again", &again)?;
    ensure!(
        seen == Seen {
            aborts: 0,
            bg_started: 1,
            commands: 1
        },
        "the emulator saw {seen:?} after EINTR and the command sent again ({again}), expected \
         the command once and no abort"
    );
    Ok(format!("{first}, again {again}"))
}

pub fn bg_wait_handled_signal(env: &mut Env) -> Result<Outcome> {
    let mut cases = Vec::new();
    for (i, d) in switches(env)?.iter().enumerate() {
        let mut ctl = d.ctl()?;
        let r = restart_case(d, &mut ctl);
        settle(&mut ctl)?;
        cases.push((format!("{}: SIGUSR1 with SA_RESTART", d.label()), r));
        if i == 0 {
            let r = eintr_case(d, &mut ctl);
            settle(&mut ctl)?;
            cases.push((format!("{}: SIGUSR1 without SA_RESTART", d.label()), r));
        }
    }
    all_cases(env, cases)
}

pub fn bg_fatal_signal_aborts_by_policy(env: &mut Env) -> Result<Outcome> {
    let d = switches(env)?.into_iter().next().context("no switch")?;
    let mut ctl = d.ctl()?;
    for (flags, aborted) in [
        (SWCCI_BG_ABORT_ON_TIMEOUT | SWCCI_BG_ABORT_ON_SIGNAL, true),
        (SWCCI_BG_ABORT_ON_TIMEOUT, false),
    ] {
        let what = format!(
            "{}: SIGKILL {} SWCCI_BG_ABORT_ON_SIGNAL",
            d.label(),
            if aborted { "with" } else { "without" }
        );
        let before = Seen::read(&mut ctl)?;
        let mut c = start_waiter(&d, &mut ctl, flags, "none")?;
        c.signal(libc::SIGKILL)?;
        let (_, took) = c
            .wait(Duration::from_secs(5))
            .with_context(|| what.clone())?;
        let running = bg_running(&mut ctl, SLEEP)?;
        let aborts = ctl.get("stat aborts")? - before.aborts;
        settle(&mut ctl)?;
        if aborted {
            let bg = ctl.cmd("get bg")?;
            ensure!(
                aborts == 1 && num_field(&bg, "rc")? == 0x12,
                "{what}: {aborts} abort(s), background status {bg}: expected the operation \
                 aborted"
            );
        } else {
            ensure!(
                aborts == 0 && running,
                "{what}: {aborts} abort(s), running {running}: expected it to run on"
            );
        }
        env.note(format!("{what}: reaped after {took:?}, {aborts} abort(s)"));
    }
    Ok(Outcome::Pass)
}

/// A receive stopped and continued gets the message sent after the continue.
fn receive_stop_case(d: &EmuDev) -> Result<String> {
    let mut ctl = d.ctl()?;
    let mut c = Child::spawn(&[
        "mmpt-recv".into(),
        d.path.display().to_string(),
        "64".into(),
        "10000".into(),
    ])?;
    c.ready()?;
    let dir = c.proc_dir();
    wait_for("the receiver in the ioctl", Duration::from_secs(5), || {
        Ok(in_ioctl(&dir))
    })?;
    interrupt(&c, false)?;
    // The message comes after the continue.
    wait_for(
        "the receiver back in the ioctl",
        Duration::from_secs(5),
        || Ok(task_state(&dir) != Some('T')),
    )?;
    ctl.cmd("queue 6 c0ffee")?;
    let line = c.line(Duration::from_secs(12))?;
    c.wait(Duration::from_secs(5))?;
    if line.contains("errno=") {
        let e = num_field(&line, "errno")? as i32;
        // Leave nothing queued for the next test.
        let _ = d.open()?.mmpt_recv(64, 0);
        bail!("{} ({line}), expected the message", errno_str(e));
    }
    ensure!(line.starts_with("type=6 data=c0ffee "), "{line}");
    Ok(line)
}

pub fn mmpt_receive_survives_stop(env: &mut Env) -> Result<Outcome> {
    let cases = devices(env)?
        .into_iter()
        .filter(|d| d.spec.personality == "mmpt")
        .map(|d| {
            (
                format!("{}: a receive stopped and continued", d.label()),
                receive_stop_case(&d),
            )
        })
        .collect();
    all_cases(env, cases)
}

/// Waiters per round, rounds.
const WAITERS: usize = 8;
const ROUNDS: usize = 20;
/// The most a waiter may take to return ENXIO after the unbind began. A missed wake-up costs
/// a waiter up to its next register re-check: 1 s once it has been woken a few times, which
/// the interrupts sent right before each unbind see to.
const WAKE_BOUND: Duration = Duration::from_millis(200);
/// The most the unbind itself may take. Loosely bounded: besides ending the waits it frees the
/// interrupts and waits for an RCU grace period (241 ms seen once on a host at load 18).
const UNBIND_BOUND: Duration = Duration::from_secs(1);

pub fn unbind_wakes_every_receiver(env: &mut Env) -> Result<Outcome> {
    let d = devices(env)?
        .into_iter()
        .find(|d| d.spec.personality == "mmpt" && d.spec.msix)
        .context("no MMPT function with MSI-X")?;
    let mut ctl = d.ctl()?;
    let vector = num_field(&ctl.cmd("get config")?, "mmpt-vector")?;
    let mut worst_unbind = Duration::ZERO;
    let mut worst_wake = Duration::ZERO;
    for round in 0..ROUNDS {
        let at = |what: &str| format!("{} round {round}: {what}", d.label());
        let dev = devices(env)?
            .into_iter()
            .find(|x| x.addr == d.addr)
            .context("rebound")?;
        let (tx, rx) = std::sync::mpsc::channel();
        let mut threads = Vec::new();
        for _ in 0..WAITERS {
            let path = dev.path.clone();
            let tx = tx.clone();
            threads.push(std::thread::spawn(
                move || -> Result<(std::result::Result<(), i32>, Instant)> {
                    let file = swcci::Device::open(&path)?;
                    // SAFETY: gettid has no preconditions.
                    let tid = unsafe { libc::gettid() };
                    tx.send(tid).ok();
                    let r = file.mmpt_recv(64, 60_000).map(|_| ());
                    let r = r.map_err(|e| e.errno().unwrap_or(0));
                    Ok((r, Instant::now()))
                },
            ));
        }
        let tids: Vec<i32> = (0..WAITERS)
            .map(|_| rx.recv_timeout(Duration::from_secs(10)))
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| anyhow::anyhow!("{}", at("a waiter did not start")))?;
        wait_for(
            &at("every waiter in the ioctl"),
            Duration::from_secs(10),
            || {
                Ok(tids
                    .iter()
                    .all(|t| in_ioctl(&format!("/proc/self/task/{t}"))))
            },
        )?;
        // Interrupts, 10 ms apart: they stretch every waiter's re-check interval to its 1 s
        // maximum, and keep the waiters running through their loop while unbind begins, so a
        // wake-up unbind sends may fall between a waiter's check and its sleep.
        ctl.cmd(&format!("spurious-irq 6 {vector}"))?;
        wait_for(&at("the interrupts sent"), Duration::from_secs(5), || {
            Ok(ctl.get("stat spurious-pending")? <= 1)
        })?;
        let t0 = Instant::now();
        env.unbind(&d.addr)?;
        let unbind = t0.elapsed();
        let mut wake = Duration::ZERO;
        for (i, t) in threads.into_iter().enumerate() {
            let (r, ended) = t
                .join()
                .map_err(|_| anyhow::anyhow!("{}", at("a waiter panicked")))??;
            ensure!(
                r == Err(libc::ENXIO),
                "{}",
                at(&format!("waiter {i}: {r:?}, expected ENXIO"))
            );
            wake = wake.max(ended.saturating_duration_since(t0));
        }
        env.bind(&d.addr)?;
        worst_unbind = worst_unbind.max(unbind);
        worst_wake = worst_wake.max(wake);
        ensure!(
            wake <= WAKE_BOUND && unbind <= UNBIND_BOUND,
            "{}",
            at(&format!(
                "the last waiter returned {wake:?} after the unbind began (bound {WAKE_BOUND:?}), \
                 the unbind took {unbind:?} (bound {UNBIND_BOUND:?})"
            ))
        );
    }
    devices(env)?;
    env.note(format!(
        "{}: {ROUNDS} unbinds with {WAITERS} receivers each: longest unbind {worst_unbind:?}, \
         last waiter back at most {worst_wake:?} after the unbind began",
        d.label()
    ));
    Ok(Outcome::Pass)
}
