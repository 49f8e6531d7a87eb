// SPDX-License-Identifier: GPL-2.0

//! MMPT transfers that take long or go wrong (Documentation/mmpt.rst), against the emulated
//! MMPT function with interrupts:
//!
//! - scenario `emu`: a multi-part send to a slow function lets other callers in (the info
//!   ioctl, a raw command to the same function, its debugfs statistics) before it ends, a
//!   second sender waiting for it can be killed, and `timeout_ms` caps the whole transfer
//!   (ETIMEDOUT, the transfer aborted); a function announcing a message over the driver's
//!   1 MiB limit gets it discarded, so the next receive gets the next message; a receive that
//!   fails part-way leaves no receive transfer open;
//! - scenario `hardened` (fault injection): a send never fails after the function accepted its
//!   last part, and a receive into a buffer that faults keeps the message first in the queue,
//!   also when an allocation fails while the message is put back. Each attempt that can meet
//!   such an allocation runs on a freshly bound function, where the driver has kept no response
//!   or message yet.

use crate::child::{in_ioctl, num_field, wait_for, Child};
use crate::ctl::Ctl;
use crate::env::{errno_str, lib_errno, Env};
use crate::tests::emu::{devices, recover, EmuDev};
use crate::tests::faultinject;
use crate::Outcome;
use anyhow::{bail, ensure, Context, Result};
use std::time::{Duration, Instant};
use swcci::proto::mmpt::{self as mmpt_proto, MmptCode};
use swcci::proto::uapi::{SwcciMmptMsg, Wire, SWCCI_MMPT_RECV, SWCCI_MMPT_TIMEOUT_MAX_MS};
use swcci::{Device, MmptRecv};

/// Parts of the slow transfer, and how long the function takes for each (ms).
const SLOW_PARTS: usize = 20;
const PART_MS: u32 = 80;

fn mmpt_irq(env: &mut Env) -> Result<EmuDev> {
    devices(env)?
        .into_iter()
        .find(|d| d.spec.personality == "mmpt" && d.spec.msix)
        .context("no MMPT function with MSI-X")
}

/// Takes every waiting message (the driver's and the function's), so a test starts empty.
fn drain(dev: &Device) {
    while let Ok(MmptRecv::Message { .. } | MmptRecv::TooBig { .. }) = dev.mmpt_recv(1 << 20, 0) {}
}

/// A message of exactly `parts` Send Message parts on a function of `payload` bytes.
fn len_of_parts(payload: usize, parts: usize) -> usize {
    (parts - 1) * mmpt_proto::send_chunk(payload) + 1
}

/// Rebinds `d` and opens its new node: a freshly probed function, for which the driver has
/// allocated nothing for responses and requeued messages yet (so that an allocation it makes
/// for them the first time is a failure point; `fail-nth` fails one point only, and kvmalloc
/// falls back to vmalloc when its kmalloc fails).
fn rebound(env: &mut Env, d: &EmuDev) -> Result<Device> {
    env.unbind(&d.addr)?;
    env.bind(&d.addr)?;
    let fresh = devices(env)?
        .into_iter()
        .find(|x| x.addr == d.addr)
        .context("rebound")?;
    fresh.open()
}

/// Failure points tried past the last one that injected a failure: how many failure points
/// an ioctl meets varies a little from call to call (a failed kmalloc of kvmalloc is retried,
/// and then counts twice), so one call that met no failure does not prove there are no more.
const PAST_THE_LAST: u32 = 3;

/// Send Message parts the function accepted so far.
fn parts(ctl: &mut Ctl) -> Result<u64> {
    ctl.get("stat mmpt-parts")
}

pub fn slow_send_lets_others_in(env: &mut Env) -> Result<Outcome> {
    let d = mmpt_irq(env)?;
    let mut ctl = d.ctl()?;
    let dev = d.open()?;
    drain(&dev);
    let len = len_of_parts(dev.payload_size()?, SLOW_PARTS);
    ctl.cmd(&format!("set mmpt-part-ms {PART_MS}"))?;
    let r = (|| -> Result<Vec<String>> {
        let p0 = parts(&mut ctl)?;
        let node = d.path.display().to_string();
        // A cap far above the transfer's time, so the driver's default does not matter.
        let mut first = Child::spawn(&[
            "mmpt-send".into(),
            node.clone(),
            "1".into(),
            len.to_string(),
            "30000".into(),
        ])?;
        first.ready()?;
        wait_for("the transfer under way", Duration::from_secs(5), || {
            Ok(parts(&mut ctl)? > p0)
        })?;
        let mut seen = Vec::new();
        // Each must come back while the transfer still runs.
        let mut check = |what: &str, t: Instant, ctl: &mut Ctl| -> Result<()> {
            let took = t.elapsed();
            let done = parts(ctl)? - p0;
            ensure!(
                done < SLOW_PARTS as u64,
                "{what} came back after {took:?}, when the transfer had ended ({done} of \
                 {SLOW_PARTS} parts): it waited for the whole transfer"
            );
            seen.push(format!("{what} in {took:?} (part {done} of {SLOW_PARTS})"));
            Ok(())
        };
        let t = Instant::now();
        Device::open(&d.path)?.info()?;
        check("SWCCI_IOCTL_INFO", t, &mut ctl)?;
        // A command the function answers at once without changing anything: Identify
        // (0001h of opcode vendor 0000h), unsupported by a plain MMB.
        let t = Instant::now();
        let r = Device::open(&d.path)?.mmb_command(0x0001, 0, &[], 64)?;
        check("a raw command (Identify)", t, &mut ctl)?;
        ensure!(
            MmptCode::from_raw(r.rc) == MmptCode::Unsupported,
            "Identify on a plain MMB: {:#x}",
            r.rc
        );
        let t = Instant::now();
        let stats = std::fs::read_to_string(env.debugfs(&d.addr).join("stats"))?;
        ensure!(stats.contains("commands: "), "stats: {stats}");
        check("a read of debugfs stats", t, &mut ctl)?;
        // A second sender waits for the transfer, and dies at once when killed.
        let mut second = Child::spawn(&[
            "mmpt-send".into(),
            node,
            "2".into(),
            "100".into(),
            "0".into(),
        ])?;
        second.ready()?;
        let dir = second.proc_dir();
        wait_for(
            "the second sender in the ioctl",
            Duration::from_secs(5),
            || Ok(in_ioctl(&dir)),
        )?;
        second.signal(libc::SIGKILL)?;
        let t = Instant::now();
        second.wait(Duration::from_secs(30))?;
        check("the killed second sender", t, &mut ctl)?;
        let line = first.line(Duration::from_secs(30))?;
        first.wait(Duration::from_secs(5))?;
        ensure!(
            num_field(&line, "rc").ok() == Some(0),
            "the slow send: {line}"
        );
        seen.push(format!("the slow send: {line}"));
        Ok(seen)
    })();
    ctl.cmd("set mmpt-part-ms 0")?;
    // The echo of the slow message, and nothing of the killed one.
    std::thread::sleep(Duration::from_millis(50));
    drain(&d.open()?);
    let seen = r.with_context(|| d.label())?;
    for s in seen {
        env.note(format!("{}: {s}", d.label()));
    }
    Ok(Outcome::Pass)
}

pub fn send_timeout_caps_the_transfer(env: &mut Env) -> Result<Outcome> {
    let d = mmpt_irq(env)?;
    let mut ctl = d.ctl()?;
    let dev = d.open()?;
    drain(&dev);
    let len = len_of_parts(dev.payload_size()?, SLOW_PARTS);
    let data: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
    ctl.cmd("set mmpt-part-ms 50")?;
    let r = (|| -> Result<String> {
        let aborts0 = ctl.get("stat mmpt-aborts")?;
        let t = Instant::now();
        let r = lib_errno(dev.mmpt_send_timeout(1, &data, 300));
        let took = t.elapsed();
        let aborts = ctl.get("stat mmpt-aborts")? - aborts0;
        let state = ctl.cmd("get mmpt")?;
        match r {
            Err(e) if e == libc::ETIMEDOUT => {}
            other => bail!(
                "a {SLOW_PARTS}-part send of 1 s with timeout_ms 300: {other:?} after {took:?}, \
                 expected ETIMEDOUT"
            ),
        }
        ensure!(
            took < Duration::from_millis(900),
            "ETIMEDOUT only after {took:?} for a 300 ms cap"
        );
        ensure!(
            aborts == 1 && num_field(&state, "tx")? == 0,
            "after the timeout: {aborts} abort(s), {state}: expected the transfer aborted"
        );
        let big = lib_errno(dev.mmpt_send_timeout(1, &[1], SWCCI_MMPT_TIMEOUT_MAX_MS + 1));
        ensure!(
            big == Err(libc::EINVAL),
            "timeout_ms above SWCCI_MMPT_TIMEOUT_MAX_MS: {big:?}, expected EINVAL"
        );
        let ok = lib_errno(dev.mmpt_send_timeout(3, &[7; 40], 5000));
        ensure!(
            ok == Ok(MmptCode::Success),
            "a one-part send with timeout_ms 5000: {ok:?}"
        );
        Ok(format!(
            "ETIMEDOUT after {took:?}, transfer aborted ({state})"
        ))
    })();
    ctl.cmd("set mmpt-part-ms 0")?;
    std::thread::sleep(Duration::from_millis(20));
    drain(&dev);
    let note = r.with_context(|| d.label())?;
    env.note(format!("{}: {note}", d.label()));
    Ok(Outcome::Pass)
}

pub fn receive_oversized_message_discarded(env: &mut Env) -> Result<Outcome> {
    let d = mmpt_irq(env)?;
    let mut ctl = d.ctl()?;
    drain(&d.open()?);
    let big = mmpt_proto::MAX_MESSAGE + 1;
    ctl.cmd(&format!("queue-len 5 {big}"))?;
    ctl.cmd("queue 6 abcd")?;
    let dev = d.open()?;
    let first = dev.mmpt_recv(mmpt_proto::MAX_MESSAGE, 1000);
    let second = lib_errno(dev.mmpt_recv(mmpt_proto::MAX_MESSAGE, 1000));
    let third = lib_errno(dev.mmpt_recv(64, 0));
    let state = ctl.cmd("get mmpt")?;
    let stuck = second
        .as_ref()
        .is_ok_and(|m| matches!(m, MmptRecv::TooBig { .. }));
    if stuck {
        // The oversized message still blocks the queue: clear it for the next tests.
        recover(env, &d, &mut ctl)?;
    }
    ensure!(
        first?
            == MmptRecv::TooBig {
                msg_type: 5,
                len: big
            },
        "{}: the first receive: not EMSGSIZE with the announced length",
        d.label()
    );
    ensure!(
        second
            == Ok(MmptRecv::Message {
                msg_type: 6,
                data: vec![0xab, 0xcd]
            }),
        "{}: the receive after EMSGSIZE for a {big}-byte message: {second:?}, expected the next \
         message (the oversized one discarded; {state})",
        d.label()
    );
    ensure!(
        third == Err(libc::EAGAIN),
        "{}: then {third:?}, expected EAGAIN",
        d.label()
    );
    env.note(format!(
        "{}: EMSGSIZE ({big} bytes), then the next message, then EAGAIN ({state})",
        d.label()
    ));
    Ok(Outcome::Pass)
}

pub fn receive_failing_part_aborted(env: &mut Env) -> Result<Outcome> {
    let d = mmpt_irq(env)?;
    let mut ctl = d.ctl()?;
    let dev = d.open()?;
    drain(&dev);
    ctl.cmd("queue-len 7 5000")?;
    let aborts0 = ctl.get("stat mmpt-rx-aborts")?;
    ctl.cmd("rx-fail-at-part 2 once")?;
    let r = lib_errno(dev.mmpt_recv(8192, 1000));
    ctl.cmd("clear")?;
    let aborts = ctl.get("stat mmpt-rx-aborts")? - aborts0;
    let state = ctl.cmd("get mmpt")?;
    drain(&dev);
    ensure!(
        matches!(r, Err(e) if e == libc::EIO),
        "{}: a receive whose second part failed: {:?}, expected EIO",
        d.label(),
        r.map_err(errno_str)
    );
    ensure!(
        aborts == 1 && num_field(&state, "rx")? == 0,
        "{}: after the failed receive: {aborts} receive abort(s), {state}: expected the receive \
         transfer aborted",
        d.label()
    );
    env.note(format!(
        "{}: EIO, receive transfer aborted ({state})",
        d.label()
    ));
    Ok(Outcome::Pass)
}

// ---- with fault injection (hardened) ----

pub fn send_never_fails_after_acceptance(env: &mut Env) -> Result<Outcome> {
    let d = mmpt_irq(env)?;
    let mut ctl = d.ctl()?;
    let mut dev = d.open()?;
    drain(&dev);
    faultinject::confine()?;
    // Answers that fit come back inline with the last part: the driver keeps them after the
    // function accepted the message.
    ctl.cmd("set inline 1")?;
    let r = (|| -> Result<Vec<String>> {
        let mut summary = Vec::new();
        for len in [100usize, 3000] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let mut n = 1;
            let (mut before, mut success, mut last, mut misses) = (0, 0, 0, 0);
            loop {
                ensure!(n <= 200, "{len} bytes: still failure points after 200");
                if len == 100 {
                    // The first inline response after probe: the driver keeps it where it
                    // has kept none yet.
                    dev = rebound(env, &d)?;
                }
                let p0 = parts(&mut ctl)?;
                faultinject::arm(n)?;
                let r = lib_errno(dev.mmpt_send(3, &data));
                let injected = faultinject::disarm()?;
                let seen = parts(&mut ctl)? - p0;
                let at = format!("{len} bytes, failure point {n}");
                match r {
                    Ok(MmptCode::Success) => {
                        success += 1;
                        match dev.mmpt_recv(1 << 20, 1000) {
                            Ok(MmptRecv::Message { data: back, .. }) if back == data => {}
                            // The answer may be lost to the failure (never the send).
                            Ok(other) if injected => {
                                bail!("{at}: the answer came back as {other:?}")
                            }
                            Err(e) if injected && e.errno() == Some(libc::ETIMEDOUT) => {}
                            other => bail!("{at}: the answer: {other:?}"),
                        }
                    }
                    Ok(code) => bail!("{at}: the device answered {code}"),
                    Err(e) if e == libc::ENOMEM => {
                        ensure!(
                            seen == 0,
                            "{at}: the send failed with ENOMEM after the function accepted \
                             {seen} part(s) (a caller would send the message again)"
                        );
                        before += 1;
                    }
                    // A failed copy of the argument structure back (the message was sent).
                    Err(e) if e == libc::EFAULT => {}
                    Err(e) => bail!("{at}: {}", errno_str(e)),
                }
                drain(&dev);
                env.check_kernel_log().with_context(|| at.clone())?;
                if injected {
                    (last, misses) = (n, 0);
                } else {
                    ensure!(
                        r == Ok(MmptCode::Success),
                        "{at}: without an injected failure: {r:?}"
                    );
                    misses += 1;
                    if misses == PAST_THE_LAST {
                        summary.push(format!(
                            "{len} bytes: {last} failure points, {before} failed before the \
                             first part, {success} succeeded"
                        ));
                        break;
                    }
                }
                n += 1;
            }
        }
        Ok(summary)
    })();
    ctl.cmd("set inline 0")?;
    drain(&dev);
    for s in r.with_context(|| d.label())? {
        env.note(format!("{}: {s}", d.label()));
    }
    Ok(Outcome::Pass)
}

/// A page no access is allowed to, for a receive buffer that faults.
struct NoAccess(*mut libc::c_void);

impl NoAccess {
    fn new() -> Result<Self> {
        // SAFETY: an anonymous private mapping of one page; the pointer is only handed to the
        // kernel, never dereferenced here.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        ensure!(
            p != libc::MAP_FAILED,
            "mmap: {}",
            std::io::Error::last_os_error()
        );
        Ok(Self(p))
    }
}

impl Drop for NoAccess {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, unmapped once.
        unsafe { libc::munmap(self.0, 4096) };
    }
}

pub fn receive_fault_keeps_the_message(env: &mut Env) -> Result<Outcome> {
    let d = mmpt_irq(env)?;
    let mut ctl = d.ctl()?;
    faultinject::confine()?;
    let page = NoAccess::new()?;
    let x: Vec<u8> = (0..40u8).collect();
    let hex: String = x.iter().map(|b| format!("{b:02x}")).collect();
    let mut n = 0;
    let (mut efault, mut enomem, mut last, mut misses) = (0, 0, 0, 0);
    let mut seen = Vec::new();
    loop {
        ensure!(n <= 200, "still failure points after 200");
        // A message put back the first time after probe (the driver has kept none yet).
        let dev = rebound(env, &d)?;
        drain(&dev);
        ctl.cmd(&format!("queue 2 {hex}"))?;
        ctl.cmd("queue 3 0909")?;
        let q0 = ctl.get("queue")?;
        let m = SwcciMmptMsg {
            len: 4096,
            data: page.0 as u64,
            ..SwcciMmptMsg::default()
        };
        let mut b = [0u8; SwcciMmptMsg::SIZE];
        m.to_bytes(&mut b).context("encode")?;
        if n > 0 {
            faultinject::arm(n)?;
        }
        let r = dev.ioctl_raw(SWCCI_MMPT_RECV, b.as_mut_ptr() as usize);
        let injected = n > 0 && faultinject::disarm()?;
        let dequeued = ctl.get("queue")? < q0;
        let at = format!("failure point {n}");
        seen.push(format!(
            "{n}:{}{}",
            r.map_or_else(|e| swcci::errno_name(e).to_string(), |v| v.to_string()),
            if dequeued { "(dequeued)" } else { "" }
        ));
        match r {
            Err(e) if e == libc::EFAULT => efault += 1,
            Err(e) if e == libc::ENOMEM => {
                ensure!(
                    !dequeued,
                    "{at}: ENOMEM after the function dequeued the message (a faulting buffer \
                     must give EFAULT and keep the message)"
                );
                enomem += 1;
            }
            other => bail!("{at}: a receive into a faulting buffer: {other:?}"),
        }
        let next = dev.mmpt_recv(4096, 1000);
        let then = dev.mmpt_recv(4096, 1000);
        let want_x = MmptRecv::Message {
            msg_type: 2,
            data: x.clone(),
        };
        let got_x = matches!(&next, Ok(m) if *m == want_x);
        ensure!(
            got_x,
            "{at}: after {}, the next receive got {next:?}: the message is not first in the queue \
             any more",
            r.map_or_else(errno_str, |v| v.to_string())
        );
        ensure!(
            matches!(&then, Ok(MmptRecv::Message { msg_type: 3, .. })),
            "{at}: then {then:?}"
        );
        env.check_kernel_log().with_context(|| at.clone())?;
        drain(&dev);
        if injected {
            (last, misses) = (n, 0);
        } else if n > 0 {
            misses += 1;
            if misses == PAST_THE_LAST {
                break;
            }
        }
        n += 1;
    }
    env.note(format!(
        "{}: {} failure points: {efault} EFAULT, {enomem} ENOMEM (before the message left the \
         function); the message stayed first every time ({})",
        d.label(),
        last,
        seen.join(" ")
    ));
    Ok(Outcome::Pass)
}
