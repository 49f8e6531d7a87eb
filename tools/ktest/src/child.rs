// SPDX-License-Identifier: GPL-2.0

//! Child processes of the tests (the test binary in a helper mode, `helpers.rs`) and the
//! kernel's view of a task: its state and the system call it is blocked in, so that a test
//! acts on a process (stops, traces, signals, kills it) only once it waits where the test
//! means it to, never after a fixed sleep.

use anyhow::{anyhow, bail, Context, Result};
use std::io::{BufRead, BufReader};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// A helper process whose output lines the test reads. Killed when dropped.
pub struct Child {
    child: std::process::Child,
    lines: Receiver<String>,
    what: String,
}

impl Child {
    /// Starts `swcci-ktest --helper ARGS...`.
    pub fn spawn(args: &[String]) -> Result<Self> {
        let what = format!("helper {}", args.join(" "));
        let mut child = Command::new("/proc/self/exe")
            .arg("--helper")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("start {what}"))?;
        let out = child.stdout.take().context("no stdout")?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out)
                .lines()
                .map_while(std::result::Result::ok)
            {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Ok(Self { child, lines, what })
    }

    /// Its pid.
    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).unwrap_or(-1)
    }

    /// Its next output line, waiting at most `within`.
    pub fn line(&mut self, within: Duration) -> Result<String> {
        match self.lines.recv_timeout(within) {
            Ok(l) => Ok(l),
            Err(RecvTimeoutError::Timeout) => bail!("{}: no output within {within:?}", self.what),
            Err(RecvTimeoutError::Disconnected) => {
                let mut err = String::new();
                if let Some(mut e) = self.child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
                bail!("{}: ended without output: {}", self.what, err.trim())
            }
        }
    }

    /// Waits for its `ready` line.
    pub fn ready(&mut self) -> Result<()> {
        let l = self.line(Duration::from_secs(10))?;
        if l != "ready" {
            bail!("{}: {l:?} instead of ready", self.what);
        }
        Ok(())
    }

    /// Sends `sig`.
    pub fn signal(&self, sig: i32) -> Result<()> {
        // SAFETY: kill(2) on our own child's pid.
        if unsafe { libc::kill(self.pid(), sig) } != 0 {
            bail!(
                "kill {} {sig}: {}",
                self.pid(),
                std::io::Error::last_os_error()
            );
        }
        Ok(())
    }

    /// Waits at most `within` for it to exit; returns its status and how long the wait took.
    pub fn wait(&mut self, within: Duration) -> Result<(ExitStatus, Duration)> {
        let t = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait()? {
                return Ok((st, t.elapsed()));
            }
            if t.elapsed() > within {
                bail!("{}: still running after {within:?}", self.what);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Its `/proc` directory.
    pub fn proc_dir(&self) -> String {
        format!("/proc/{}", self.pid())
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The state letter of the task whose `/proc` directory is `dir` (R, S, D, T, t, Z, ...).
pub fn task_state(dir: &str) -> Option<char> {
    let stat = std::fs::read_to_string(format!("{dir}/stat")).ok()?;
    // "pid (comm) S ...": the name may hold anything, the state follows its last ')'.
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// Whether the task of `dir` sleeps in ioctl(2): `syscall` names ioctl and the state is S or D.
pub fn in_ioctl(dir: &str) -> bool {
    let nr = std::fs::read_to_string(format!("{dir}/syscall")).unwrap_or_default();
    let in_call = nr
        .split_whitespace()
        .next()
        .and_then(|n| n.parse::<libc::c_long>().ok())
        == Some(libc::SYS_ioctl);
    in_call && matches!(task_state(dir), Some('S' | 'D'))
}

/// Polls `cond` every 2 ms until it holds; fails naming `what` after `within`. Returns how long
/// it took.
pub fn wait_for(
    what: &str,
    within: Duration,
    mut cond: impl FnMut() -> Result<bool>,
) -> Result<Duration> {
    let t = Instant::now();
    loop {
        if cond()? {
            return Ok(t.elapsed());
        }
        if t.elapsed() > within {
            return Err(anyhow!("{what}: not within {within:?}"));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A `key=value` field of a helper's or the emulator's reply line.
pub fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|t| t.strip_prefix(key)?.strip_prefix('='))
}

/// A numeric `key=value` field (decimal or `0x` hexadecimal).
pub fn num_field(line: &str, key: &str) -> Result<u64> {
    let v = field(line, key).with_context(|| format!("no {key}= in {line:?}"))?;
    match v.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16),
        None => v.parse(),
    }
    .with_context(|| format!("{key}= in {line:?}"))
}
