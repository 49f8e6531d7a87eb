// SPDX-License-Identifier: GPL-2.0

//! poll(2) and epoll on the nodes (issue 25, Documentation/abi.rst): the asynchronous
//! background mode (EPOLLIN when the file's operation ended, `SWCCI_IOCTL_BG_RESULT`), MMPT
//! messages (EPOLLIN), unbind (EPOLLHUP | EPOLLERR), many files waking on one device. Every
//! wait is bounded; nothing here measures time.

use super::emu::{devices, sleep_input, switches, EmuDev, SLEEP};
use crate::env::Env;
use crate::Outcome;
use anyhow::{anyhow, bail, ensure, Context, Result};
use std::time::Duration;
use swcci::proto::rc::ReturnCode;
use swcci::proto::uapi::{
    SwcciBgPolicy, SWCCI_BG_ABORT_ON_TIMEOUT, SWCCI_BG_ASYNC, SWCCI_BG_STATE_DONE,
    SWCCI_BG_STATE_NONE, SWCCI_BG_STATE_RUNNING, SWCCI_INFO_MMPT,
};
use swcci::{Device, MmptRecv};

const IN: i16 = libc::POLLIN;
const PRI: i16 = libc::POLLPRI;

/// The file's policy: asynchronous background commands.
fn set_async(dev: &Device) -> Result<()> {
    dev.bg_policy(SwcciBgPolicy {
        timeout_ms: 10_000,
        flags: SWCCI_BG_ASYNC | SWCCI_BG_ABORT_ON_TIMEOUT,
    })?;
    Ok(())
}

/// Waits (poll, up to 10 s) until the file's asynchronous operation ended, then collects it.
fn collect(dev: &Device, what: &str) -> Result<swcci::proto::uapi::SwcciBgResult> {
    let ev = dev.poll(IN, 10_000)?;
    ensure!(
        ev & IN != 0,
        "{what}: no EPOLLIN within 10 s (revents {ev:#x})"
    );
    let r = dev.bg_result()?;
    ensure!(r.state == SWCCI_BG_STATE_DONE, "{what}: {r:?}");
    ensure!(
        dev.bg_result()?.state == SWCCI_BG_STATE_NONE,
        "{what}: the result was not collected"
    );
    Ok(r)
}

/// An asynchronous background command returns at once; poll reports EPOLLIN when it ended
/// (interrupt or, for the polled switch, the poll timer), and its result is collected once. A
/// second background command on the same file while it holds one is sent as usual and
/// waited for: the device answers Busy while the first runs.
pub fn async_background(env: &mut Env) -> Result<Outcome> {
    for d in switches(env)? {
        let dev = d.open()?;
        set_async(&dev)?;
        ensure!(
            dev.bg_result()?.state == SWCCI_BG_STATE_NONE,
            "{}: a new file holds an operation",
            d.addr
        );
        let r = dev.raw(SLEEP, &sleep_input(400), 0)?;
        ensure!(
            r.rc == ReturnCode::BackgroundStarted,
            "{}: asynchronous command returned {}",
            d.addr,
            r.rc
        );
        let running = dev.bg_result()?;
        ensure!(
            running.state == SWCCI_BG_STATE_RUNNING && running.opcode == SLEEP,
            "{}: right after the start: {running:?}",
            d.addr
        );
        ensure!(
            dev.poll(IN, 0)? & IN == 0,
            "{}: EPOLLIN while the operation runs",
            d.addr
        );
        // A second background command while the file holds one: sent and waited for.
        let busy = dev.raw(SLEEP, &sleep_input(50), 0)?;
        ensure!(
            busy.rc == ReturnCode::Busy,
            "{}: a second background command while one runs: {}",
            d.addr,
            busy.rc
        );
        let done = collect(&dev, &d.addr)?;
        ensure!(
            done.retval == 0 && done.opcode == SLEEP,
            "{}: {done:?}",
            d.addr
        );
        // Another one, after the first was collected.
        let r = dev.raw(SLEEP, &sleep_input(100), 0)?;
        ensure!(
            r.rc == ReturnCode::BackgroundStarted,
            "{}: {}",
            d.addr,
            r.rc
        );
        collect(&dev, &d.addr)?;
        env.note(format!(
            "{}: asynchronous operations reported by poll",
            d.label()
        ));
    }
    Ok(Outcome::Pass)
}

/// The MMPT nodes of the emulator (switch CCIs with MMPT registers included).
fn mmpt_devices(env: &mut Env) -> Result<Vec<(EmuDev, Device)>> {
    let mut out = Vec::new();
    for d in devices(env)? {
        let dev = d.open()?;
        if dev.info()?.flags & SWCCI_INFO_MMPT != 0 {
            out.push((d, dev));
        }
    }
    ensure!(!out.is_empty(), "no emulated function with MMPT registers");
    Ok(out)
}

/// Receives every queued message, so that a test starts with none.
fn drain(dev: &Device) -> Result<()> {
    for _ in 0..64 {
        match dev.mmpt_recv(1 << 20, 0) {
            Ok(_) => {}
            Err(e) if e.errno() == Some(libc::EAGAIN) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
    bail!("more than 64 messages queued")
}

/// EPOLLIN when an MMPT message is queued, not before; gone once it is received. Eight files
/// polling one function (poll(2) and epoll) all wake for one message.
pub fn mmpt_message(env: &mut Env) -> Result<Outcome> {
    for (d, dev) in mmpt_devices(env)? {
        let mut ctl = d.ctl()?;
        drain(&dev)?;
        ensure!(
            dev.poll(IN, 0)? & IN == 0,
            "{}: EPOLLIN with no message",
            d.addr
        );
        let (tx, rx) = std::sync::mpsc::channel();
        let mut threads = Vec::new();
        for i in 0..8 {
            let path = d.path.clone();
            let tx = tx.clone();
            threads.push(std::thread::spawn(move || -> Result<()> {
                let dev = Device::open(&path)?;
                let ev = if i % 2 == 0 {
                    dev.poll(IN, 10_000)?
                } else {
                    epoll_in(&dev, 10_000)?
                };
                tx.send(ev).map_err(|_| anyhow!("send"))?;
                Ok(())
            }));
        }
        ctl.cmd("queue 4 c0ffee")?;
        for _ in 0..8 {
            let ev = rx
                .recv_timeout(Duration::from_secs(15))
                .with_context(|| format!("{}: a poller did not return", d.addr))?;
            ensure!(ev & IN != 0, "{}: a poller got {ev:#x}", d.addr);
        }
        for t in threads {
            t.join().map_err(|_| anyhow!("poller panicked"))??;
        }
        match dev.mmpt_recv(64, 0)? {
            MmptRecv::Message { msg_type: 4, data } if data == [0xc0, 0xff, 0xee] => {}
            other => bail!("{}: {other:?}", d.addr),
        }
        ensure!(
            dev.poll(IN, 0)? & IN == 0,
            "{}: EPOLLIN after the message was received",
            d.addr
        );
        env.note(format!("{}: 8 pollers woken by one message", d.label()));
    }
    Ok(Outcome::Pass)
}

/// epoll on the node for EPOLLIN, up to `timeout_ms`: the events reported.
fn epoll_in(dev: &Device, timeout_ms: i32) -> Result<i16> {
    // SAFETY: plain system calls on descriptors this function owns or borrows.
    unsafe {
        let ep = libc::epoll_create1(libc::EPOLL_CLOEXEC);
        ensure!(
            ep >= 0,
            "epoll_create1: {}",
            std::io::Error::last_os_error()
        );
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: 0,
        };
        let r = libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, dev.raw_fd(), &mut ev);
        if r < 0 {
            let e = std::io::Error::last_os_error();
            libc::close(ep);
            bail!("epoll_ctl: {e}");
        }
        let mut out = [libc::epoll_event { events: 0, u64: 0 }];
        let n = loop {
            let n = libc::epoll_wait(ep, out.as_mut_ptr(), 1, timeout_ms);
            if n >= 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                break n;
            }
        };
        libc::close(ep);
        ensure!(n >= 0, "epoll_wait: {}", std::io::Error::last_os_error());
        Ok(if n == 0 { 0 } else { out[0].events as i16 })
    }
}

/// A process sleeping in poll on a node is woken with EPOLLHUP | EPOLLERR when the device is
/// unbound, and the device binds again.
pub fn hup_at_unbind(env: &mut Env) -> Result<Outcome> {
    let devs = switches(env)?;
    let d = devs.first().context("no emulated switch")?;
    let path = d.path.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || -> Result<()> {
        let dev = Device::open(&path)?;
        tx.send(0i16).map_err(|_| anyhow!("send"))?;
        let ev = dev.poll(IN | PRI, 30_000)?;
        tx.send(ev).map_err(|_| anyhow!("send"))?;
        Ok(())
    });
    rx.recv_timeout(Duration::from_secs(10))
        .context("poller did not start")?;
    env.unbind(&d.addr)?;
    let ev = rx
        .recv_timeout(Duration::from_secs(10))
        .with_context(|| format!("{}: the poller was not woken by unbind", d.addr))?;
    waiter.join().map_err(|_| anyhow!("poller panicked"))??;
    env.bind(&d.addr)?;
    ensure!(
        ev & libc::POLLHUP != 0 && ev & libc::POLLERR != 0,
        "{}: poll after unbind returned {ev:#x}",
        d.addr
    );
    switches(env)?;
    env.note(format!(
        "{}: unbind woke the poller with {ev:#x}",
        d.label()
    ));
    Ok(Outcome::Pass)
}
