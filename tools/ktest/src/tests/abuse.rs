// SPDX-License-Identifier: GPL-2.0

//! The hardened scenario's abuse tests: the kernel is the one asked for, taint follows only
//! commands that reached a device, unbind/rebind and PCI remove/rescan under four threads of
//! load on every kind of device, and after all of it a kmemleak scan that finds nothing of
//! the module.

use crate::env::{errno_str, Env, MODULE_NAME, TAINT_USER};
use crate::tests::emu;
use crate::tests::fuzz::{self, Kind, Target};
use crate::Outcome;
use anyhow::{bail, ensure, Context, Result};
use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use swcci::proto::opcode;
use swcci::proto::payload::tunnel;
use swcci::proto::uapi::{self, CxlPayload, CxlSendCommand, SwcciMmbCommand, SwcciMmptMsg, Wire};
use swcci::{Device, MmptRecv};

/// kmemleak's debugfs file.
const KMEMLEAK: &str = "/sys/kernel/debug/kmemleak";
/// An address no process has mapped.
const BAD_PTR: u64 = 0x10;
/// Rebind and rescan cycles per device.
const CYCLES: usize = 20;
/// Threads of load per device.
const LOAD_THREADS: usize = 4;

/// The whole kernel log since boot.
fn boot_log() -> Result<String> {
    let mut f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/kmsg")
        .context("open /dev/kmsg")?;
    let mut out = String::new();
    let mut buf = vec![0u8; 8192];
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let rec = String::from_utf8_lossy(&buf[..n]);
                out.push_str(rec.split_once(';').map_or(&*rec, |(_, t)| t));
            }
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
            Err(_) => break,
        }
    }
    Ok(out)
}

/// The kernel is the hardened one: KASAN, kmemleak and fault injection are there and work.
/// Clears what kmemleak found during boot (not ours), and leaves the fault-injection knobs the
/// other tests use at their defaults.
pub fn hardened_kernel(env: &mut Env) -> Result<Outcome> {
    let log = boot_log()?;
    ensure!(
        log.contains("KernelAddressSanitizer initialized"),
        "no KASAN in this kernel (x86_64's debug kernel has it, arm64's hardened one: \
         tools/setup/kernel.sh)"
    );
    for p in [
        KMEMLEAK,
        "/sys/kernel/debug/failslab",
        "/sys/kernel/debug/fail_page_alloc",
        "/sys/kernel/debug/fail_usercopy",
        "/proc/thread-self/fail-nth",
        "/proc/thread-self/make-it-fail",
    ] {
        ensure!(
            Path::new(p).exists(),
            "{p} missing: not the hardened kernel"
        );
    }
    fs::write(KMEMLEAK, "clear").context("kmemleak clear")?;
    // fail-nth works, confined to the module: the first failure point of an Identify through
    // the driver fails it, cleanly, with a report in the log.
    let targets = fuzz::targets(env)?;
    let t = targets.first().context("no device")?;
    let dev = Device::open(&t.path)?;
    crate::tests::faultinject::confine()?;
    env.kmsg();
    crate::tests::faultinject::arm(1)?;
    let r = dev.raw(opcode::IDENTIFY, &[], 64);
    let injected = crate::tests::faultinject::disarm()?;
    let errno = r.as_ref().err().and_then(|e| e.errno());
    ensure!(
        injected && matches!(errno, Some(libc::ENOMEM) | Some(libc::EFAULT)),
        "fail-nth 1 on Identify: injected {injected}, result {r:?}"
    );
    ensure!(
        env.kmsg()
            .iter()
            .any(|l| l.contains(swcci::kernel_log::FAULT_INJECTION)),
        "no fault-injection report in the kernel log"
    );
    env.check_kernel_log()?;
    env.note(format!(
        "KASAN, kmemleak, fault injection present; the first failure point of Identify gave {}",
        errno.map(errno_str).unwrap_or_default()
    ));
    Ok(Outcome::Pass)
}

/// Builds a `CXL_MEM_SEND_COMMAND` structure.
fn send_cmd(opcode: u16, input: &[u8], in_ptr: u64, out: &mut [u8]) -> CxlSendCommand {
    CxlSendCommand {
        id: uapi::CXL_MEM_COMMAND_ID_RAW,
        flags: 0,
        raw_opcode: opcode,
        raw_rsvd: 0,
        retval: 0,
        input: CxlPayload {
            size: input.len() as u32,
            rsvd: 0,
            payload: in_ptr,
        },
        output: CxlPayload {
            size: out.len() as u32,
            rsvd: 0,
            payload: out.as_mut_ptr() as u64,
        },
    }
}

/// A command that changes state on `t`: Set Timestamp to a type-3 device through a tunnel
/// (QEMU's switch), the emulator's echo command (its CEL says it changes configuration), or
/// an MMPT message (MMPT function).
fn state_changing(t: &Target) -> Option<(u16, Vec<u8>)> {
    match t.kind {
        Kind::QemuSwitch => {
            let (port, _) = *t.type3.first()?;
            let mut buf = vec![0u8; 64];
            let n = tunnel::encode_request(
                &mut buf,
                port,
                tunnel::TARGET_PORT_OR_LD,
                0,
                opcode::SET_TIMESTAMP,
                &[1; 8],
            )
            .ok()?;
            buf.truncate(n);
            Some((opcode::TUNNEL, buf))
        }
        Kind::EmuSwitch => Some((0xc001, vec![7; 32])),
        Kind::Mmpt => None,
    }
}

/// Every way to send `t` a state-changing request, each with a defect the driver must refuse
/// it for before the device, or valid (`defect` = None). Yields (what, ioctl, argument
/// bytes, expected errno). Buffers the arguments point to live in `keep`.
fn requests(
    t: &Target,
    defect: Option<&str>,
    keep: &mut Vec<Vec<u8>>,
) -> Vec<(String, u32, Vec<u8>, i32)> {
    let mut out = Vec::new();
    let mut push =
        |what: String, cmd: u32, arg: Vec<u8>, errno: i32| out.push((what, cmd, arg, errno));
    if let Some((op, input)) = state_changing(t) {
        let mut obuf = vec![0u8; t.payload];
        let in_ptr = input.as_ptr() as u64;
        let base = send_cmd(op, &input, in_ptr, &mut obuf);
        keep.push(obuf);
        keep.push(input.clone());
        let variants: Vec<(&str, CxlSendCommand, i32)> = match defect {
            None => vec![("valid", base, 0)],
            Some(_) => vec![
                (
                    "in.payload unmapped",
                    CxlSendCommand {
                        input: CxlPayload {
                            payload: BAD_PTR,
                            ..base.input
                        },
                        ..base
                    },
                    libc::EFAULT,
                ),
                (
                    "in.rsvd",
                    CxlSendCommand {
                        input: CxlPayload {
                            rsvd: 1,
                            ..base.input
                        },
                        ..base
                    },
                    libc::EINVAL,
                ),
                (
                    "in.size above the payload",
                    CxlSendCommand {
                        input: CxlPayload {
                            size: t.payload as u32 + 1,
                            ..base.input
                        },
                        ..base
                    },
                    libc::EINVAL,
                ),
                (
                    "flags bit 7",
                    CxlSendCommand {
                        flags: 0x80,
                        ..base
                    },
                    libc::EINVAL,
                ),
            ],
        };
        for (what, c, errno) in variants {
            let mut b = vec![0u8; CxlSendCommand::SIZE];
            let _ = c.to_bytes(&mut b);
            push(
                format!("CXL_MEM_SEND_COMMAND {op:04x}h ({what})"),
                uapi::CXL_MEM_SEND_COMMAND,
                b,
                errno,
            );
            let m = SwcciMmbCommand {
                opcode: c.raw_opcode,
                opcode_vendor: 0,
                retval: 0,
                vendor_status: 0,
                rsvd: 0,
                input: c.input,
                output: c.output,
            };
            if c.flags == 0 {
                let mut b = vec![0u8; SwcciMmbCommand::SIZE];
                let _ = m.to_bytes(&mut b);
                push(
                    format!("SWCCI_MMB_SEND_COMMAND {op:04x}h ({what})"),
                    uapi::SWCCI_MMB_SEND_COMMAND,
                    b,
                    errno,
                );
            }
        }
    }
    if t.mmpt() {
        let data = vec![0x42u8; 100];
        let base = SwcciMmptMsg {
            msg_type: 1,
            len: data.len() as u32,
            data: data.as_ptr() as u64,
            ..SwcciMmptMsg::default()
        };
        keep.push(data);
        let variants: Vec<(&str, SwcciMmptMsg, i32)> = match defect {
            None => vec![("valid", base, 0)],
            Some(_) => vec![
                (
                    "data unmapped",
                    SwcciMmptMsg {
                        data: BAD_PTR,
                        ..base
                    },
                    libc::EFAULT,
                ),
                (
                    "rsvd0",
                    SwcciMmptMsg {
                        rsvd0: [0, 1, 0],
                        ..base
                    },
                    libc::EINVAL,
                ),
                (
                    "len 1 MiB + 1",
                    SwcciMmptMsg {
                        len: (1 << 20) + 1,
                        ..base
                    },
                    libc::EMSGSIZE,
                ),
            ],
        };
        for (what, m, errno) in variants {
            let mut b = vec![0u8; SwcciMmptMsg::SIZE];
            let _ = m.to_bytes(&mut b);
            push(
                format!("SWCCI_MMPT_SEND ({what})"),
                uapi::SWCCI_MMPT_SEND,
                b,
                errno,
            );
        }
        // A raw MMB Send Message (PCI-SIG) that aborts: state-changing by the driver's rules.
        if t.mmb() {
            let hdr = [1u8, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
            let mut obuf = vec![0u8; 64];
            let m = SwcciMmbCommand {
                opcode: swcci::proto::mmpt::SEND_MESSAGE,
                opcode_vendor: swcci::proto::mmpt::VENDOR_PCI_SIG,
                input: CxlPayload {
                    size: 16,
                    rsvd: 0,
                    payload: if defect.is_some() {
                        BAD_PTR
                    } else {
                        hdr.as_ptr() as u64
                    },
                },
                output: CxlPayload {
                    size: 64,
                    rsvd: 0,
                    payload: obuf.as_mut_ptr() as u64,
                },
                ..SwcciMmbCommand::default()
            };
            keep.push(hdr.to_vec());
            keep.push(obuf);
            let mut b = vec![0u8; SwcciMmbCommand::SIZE];
            let _ = m.to_bytes(&mut b);
            push(
                format!(
                    "SWCCI_MMB_SEND_COMMAND PCI-SIG 0100h ({})",
                    if defect.is_some() {
                        "in.payload unmapped"
                    } else {
                        "valid"
                    }
                ),
                uapi::SWCCI_MMB_SEND_COMMAND,
                b,
                if defect.is_some() { libc::EFAULT } else { 0 },
            );
        }
    }
    out
}

fn taint_clear(env: &Env, after: &str) -> Result<()> {
    let t = env.tainted()?;
    ensure!(
        t & TAINT_USER == 0,
        "TAINT_USER set after {after} (tainted = {t:#x})"
    );
    Ok(())
}

/// Taint follows only commands that reached a device: state-changing requests refused for a
/// bad argument, without CAP_SYS_RAWIO, or sent through a file whose device was unbound
/// (ENXIO) leave 'U' clear and the device's counter unchanged; the same request on a live
/// device sets it (so the check can fail).
pub fn taint_only_for_sent_commands(env: &mut Env) -> Result<Outcome> {
    let targets = fuzz::targets(env)?;
    taint_clear(env, "boot (run this test first in a fresh boot)")?;
    let mut keep = Vec::new();
    let mut refused = 0;
    // 1. Refused for their arguments.
    for t in &targets {
        let dev = Device::open(&t.path)?;
        for (what, cmd, mut arg, errno) in requests(t, Some("bad"), &mut keep) {
            let before = env.stat(&t.addr, "commands")?;
            let r = dev.ioctl_raw(cmd, arg.as_mut_ptr() as usize);
            ensure!(
                r == Err(errno),
                "{}: {what}: {r:?}, expected {}",
                t.path.display(),
                errno_str(errno)
            );
            ensure!(
                env.stat(&t.addr, "commands")? == before,
                "{}: {what}: refused but reached the device",
                t.path.display()
            );
            taint_clear(
                env,
                &format!(
                    "{what} on {} was refused with {}",
                    t.path.display(),
                    errno_str(errno)
                ),
            )?;
            refused += 1;
        }
    }
    // 2. Without CAP_SYS_RAWIO (dropped in a thread of its own: capabilities are per thread).
    for t in &targets {
        let reqs = requests(t, None, &mut keep);
        let path = t.path.clone();
        let before = env.stat(&t.addr, "commands")?;
        let results = std::thread::scope(|s| {
            s.spawn(|| -> Result<Vec<(String, std::result::Result<i32, i32>)>> {
                let dev = Device::open(&path)?;
                crate::helpers::drop_rawio().context("capset")?;
                Ok(reqs
                    .into_iter()
                    .map(|(what, cmd, mut arg, _)| {
                        (what, dev.ioctl_raw(cmd, arg.as_mut_ptr() as usize))
                    })
                    .collect())
            })
            .join()
            .map_err(|_| anyhow::anyhow!("thread panicked"))?
        })?;
        for (what, r) in results {
            ensure!(
                r == Err(libc::EPERM),
                "{}: {what} without CAP_SYS_RAWIO: {r:?}",
                t.path.display()
            );
            refused += 1;
        }
        ensure!(
            env.stat(&t.addr, "commands")? == before,
            "{}: refused for lack of CAP_SYS_RAWIO but reached the device",
            t.path.display()
        );
        taint_clear(
            env,
            &format!("commands on {} refused with EPERM", t.path.display()),
        )?;
    }
    // 3. Through files whose device was unbound.
    for t in &targets {
        let dev = Device::open(&t.path)?;
        env.unbind(&t.addr)?;
        let reqs = requests(t, None, &mut keep);
        let res: Result<()> = reqs.into_iter().try_for_each(|(what, cmd, mut arg, _)| {
            let r = dev.ioctl_raw(cmd, arg.as_mut_ptr() as usize);
            ensure!(
                r == Err(libc::ENXIO),
                "{}: {what} after unbind: {r:?}, expected ENXIO",
                t.path.display()
            );
            taint_clear(
                env,
                &format!(
                    "{what} on {} after unbind (ENXIO: it never reached a device)",
                    t.path.display()
                ),
            )
        });
        env.bind(&t.addr)?;
        res?;
        refused += 1;
    }
    fuzz::load_all(env)?;
    // 4. The same on a live device taints: the check above could have failed.
    let targets = fuzz::targets(env)?;
    let t = targets
        .iter()
        .find(|t| state_changing(t).is_some())
        .context("no device takes a state-changing command")?;
    let (op, input) = state_changing(t).context("state-changing command")?;
    let r = Device::open(&t.path)?.raw(op, &input, t.payload)?;
    let tainted = env.tainted()?;
    ensure!(
        tainted & TAINT_USER != 0,
        "{op:04x}h on {} ({}) did not taint",
        t.path.display(),
        r.rc
    );
    env.note(format!(
        "{refused} refused state-changing requests left U clear; {op:04x}h on {} set it",
        t.path.display()
    ));
    Ok(Outcome::Pass)
}

/// The node of PCI function `addr`, if it has one now.
fn node_of(addr: &str) -> Option<PathBuf> {
    for dir in ["/dev/cxl", "/dev/swcci"] {
        for e in fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if let Ok(d) = Device::open(&p) {
                if d.info().is_ok_and(|i| swcci::info_str(&i.pci_addr) == addr) {
                    return Some(p);
                }
            }
        }
    }
    None
}

/// What the load threads saw.
#[derive(Default)]
struct Load {
    stop: AtomicBool,
    ok: AtomicU64,
    enxio: AtomicU64,
    errors: Mutex<Vec<String>>,
}

/// One thread of load on `t`: correct answers, or ENXIO (then it finds the node again).
fn load_thread(t: &Target, th: u32, load: &Load) {
    let mut dev: Option<Device> = None;
    let mut seq = th << 24;
    let fail = |m: String| {
        if let Ok(mut e) = load.errors.lock() {
            if e.len() < 8 {
                e.push(m);
            }
        }
    };
    while !load.stop.load(Ordering::Relaxed) {
        let Some(d) = dev.as_ref() else {
            dev = node_of(&t.addr).and_then(|p| Device::open(p).ok());
            if dev.is_none() {
                std::thread::sleep(Duration::from_millis(20));
            }
            continue;
        };
        seq = seq.wrapping_add(1);
        let r: std::result::Result<(), swcci::Error> = match t.kind {
            Kind::QemuSwitch | Kind::EmuSwitch
                if !seq.is_multiple_of(3) || t.kind == Kind::QemuSwitch =>
            {
                d.raw(opcode::IDENTIFY, &[], 64).map(|r| {
                    if !r.rc.is_success() || r.out != t.identify {
                        fail(format!(
                            "thread {th}: Identify {} {:02x?}, expected {:02x?}",
                            r.rc, r.out, t.identify
                        ));
                    }
                })
            }
            Kind::QemuSwitch | Kind::EmuSwitch => {
                let data: Vec<u8> = (0..700).map(|i| (i as u32 ^ seq) as u8).collect();
                d.raw(0xc001, &data, t.payload).map(|r| {
                    if !r.rc.is_success() || r.out != data {
                        fail(format!(
                            "thread {th}: echo came back as {} with {} bytes differing",
                            r.rc,
                            r.out.iter().zip(&data).filter(|(a, b)| a != b).count()
                        ));
                    }
                })
            }
            Kind::Mmpt => {
                let data = crate::tests::fuzz::tagged(seq, 1, 1500);
                match d.mmpt_send(1, &data) {
                    Ok(_) => match d.mmpt_recv(1 << 20, 200) {
                        Ok(MmptRecv::Message { msg_type, data }) => {
                            if let Err(m) = crate::tests::fuzz::verify_tagged(msg_type, &data) {
                                fail(format!("thread {th}: {m}"));
                            }
                            Ok(())
                        }
                        Ok(other) => {
                            fail(format!("thread {th}: receive: {other:?}"));
                            Ok(())
                        }
                        // Another thread took the answer, or the queue is shared: fine.
                        Err(e)
                            if matches!(e.errno(), Some(libc::ETIMEDOUT) | Some(libc::EAGAIN)) =>
                        {
                            Ok(())
                        }
                        Err(e) => Err(e),
                    },
                    Err(e) => Err(e),
                }
            }
        };
        match r {
            Ok(()) => {
                load.ok.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) if e.errno() == Some(libc::ENXIO) => {
                load.enxio.fetch_add(1, Ordering::Relaxed);
                dev = None;
            }
            Err(e) => {
                fail(format!("thread {th}: {e}"));
                dev = None;
            }
        }
    }
}

/// How a cycle takes a device away and brings it back.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Cycle {
    Rebind,
    RemoveRescan,
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        ensure!(Instant::now() < deadline, "{what}: not after 20 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// Takes every device away and back [`CYCLES`] times under [`LOAD_THREADS`] threads of
/// load each; a file opened before each cycle gets ENXIO; every answer is right; the device
/// works after every cycle.
fn cycles(env: &mut Env, how: Cycle) -> Result<Outcome> {
    let targets = fuzz::targets(env)?;
    let mut summary = BTreeMap::new();
    for t in &targets {
        let load = Load::default();
        let res = std::thread::scope(|s| -> Result<()> {
            for th in 0..LOAD_THREADS as u32 {
                let load = &load;
                s.spawn(move || load_thread(t, th, load));
            }
            let r = (|| -> Result<()> {
                for c in 0..CYCLES {
                    let node = node_of(&t.addr)
                        .with_context(|| format!("cycle {c}: {} has no node", t.addr))?;
                    let held = Device::open(&node)?;
                    // The bridge above the function: rescanning its bus alone is quicker
                    // than rescanning every bus.
                    let bridge = fs::canonicalize(format!("/sys/bus/pci/devices/{}", t.addr))?
                        .parent()
                        .map(Path::to_path_buf)
                        .context("no parent bridge")?;
                    match how {
                        Cycle::Rebind => env.unbind(&t.addr),
                        Cycle::RemoveRescan => {
                            env.sysfs_write(&format!("/sys/bus/pci/devices/{}/remove", t.addr), "1")
                        }
                    }
                    .with_context(|| format!("cycle {c}"))?;
                    wait_for(&format!("cycle {c}: {} gone", node.display()), || {
                        node_of(&t.addr).is_none()
                    })?;
                    let r = held.info();
                    ensure!(
                        r.as_ref().err().and_then(|e| e.errno()) == Some(libc::ENXIO),
                        "cycle {c}: a file opened before: {r:?}, expected ENXIO"
                    );
                    drop(held);
                    match how {
                        Cycle::Rebind => env.bind(&t.addr),
                        Cycle::RemoveRescan => {
                            let rescan = bridge.join("rescan");
                            let bus = if rescan.exists() {
                                rescan
                            } else {
                                PathBuf::from("/sys/bus/pci/rescan")
                            };
                            env.sysfs_write(&bus.display().to_string(), "1")?;
                            // A rescanned MMB function is a new device without the
                            // driver_override of the old one: set it again, as the udev rule
                            // of Documentation/mmpt.rst does on a BMC.
                            if t.kind == Kind::Mmpt {
                                emu::bind_mmb_functions(env)?;
                            }
                            Ok(())
                        }
                    }
                    .with_context(|| format!("cycle {c}"))?;
                    wait_for(&format!("cycle {c}: {} bound again", t.addr), || {
                        env.driver_of(&t.addr).as_deref() == Some(MODULE_NAME)
                            && node_of(&t.addr).is_some()
                    })?;
                    let p = node_of(&t.addr).context("node")?;
                    let d = Device::open(&p)?;
                    ensure!(
                        d.info()?.serial == t.info.serial,
                        "cycle {c}: another device"
                    );
                    if t.kind != Kind::Mmpt {
                        let id = d.command(opcode::IDENTIFY, &[], 64)?;
                        ensure!(id == t.identify, "cycle {c}: Identify {id:02x?}");
                    }
                    env.check_kernel_log()
                        .with_context(|| format!("cycle {c}"))?;
                }
                // The load goes on after the last cycle.
                let n = load.ok.load(Ordering::Relaxed);
                wait_for("load after the last cycle", || {
                    load.ok.load(Ordering::Relaxed) >= n + 2 * LOAD_THREADS as u64
                })?;
                Ok(())
            })();
            load.stop.store(true, Ordering::Relaxed);
            r
        });
        let errors = load.errors.lock().map(|e| e.clone()).unwrap_or_default();
        res.with_context(|| format!("{} ({})", t.path.display(), t.addr))?;
        if !errors.is_empty() {
            bail!("{}: {}", t.addr, errors.join("; "));
        }
        summary.insert(
            t.addr.clone(),
            (
                load.ok.load(Ordering::Relaxed),
                load.enxio.load(Ordering::Relaxed),
            ),
        );
    }
    if how == Cycle::RemoveRescan {
        // The nodes may have been renumbered; the module still binds everything.
        fuzz::load_all(env)?;
    }
    for (addr, (ok, enxio)) in summary {
        env.note(format!("{addr}: {CYCLES} cycles, {ok} correct answers, {enxio} ENXIO under {LOAD_THREADS} threads"));
    }
    Ok(Outcome::Pass)
}

/// Unbind and rebind under load.
pub fn rebind_under_load(env: &mut Env) -> Result<Outcome> {
    cycles(env, Cycle::Rebind)
}

/// PCI remove and rescan under load.
pub fn remove_rescan_under_load(env: &mut Env) -> Result<Outcome> {
    cycles(env, Cycle::RemoveRescan)
}

/// One object kmemleak reports.
struct Leak {
    text: String,
    ours: bool,
}

/// Splits a kmemleak report into objects; an object is the module's when a frame of its
/// allocation names `[cxl_swcci]` or is an address no symbol covers (module text, once the
/// module is unloaded: this guest loads no other module).
fn leaks(report: &str) -> Vec<Leak> {
    let mut out: Vec<Leak> = Vec::new();
    for line in report.lines() {
        if line.starts_with("unreferenced object") {
            out.push(Leak {
                text: String::new(),
                ours: false,
            });
        }
        let Some(l) = out.last_mut() else { continue };
        l.text.push_str(line);
        l.text.push('\n');
        let frame = line.trim();
        let bare = frame
            .strip_prefix("0x")
            .is_some_and(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit()));
        let bracketed = frame.starts_with("[<")
            && frame
                .split("] ")
                .nth(1)
                .is_some_and(|s| s.trim().starts_with("0x"));
        if frame.contains("[cxl_swcci]") || bare || bracketed {
            l.ours = true;
        }
    }
    out
}

/// After everything, with the module unloaded: two kmemleak scans find nothing that the
/// module allocated (objects of the kernel's own are listed, not judged).
pub fn no_leaks_after_unload(env: &mut Env) -> Result<Outcome> {
    ensure!(Path::new(KMEMLEAK).exists(), "no kmemleak in this kernel");
    env.ensure_unloaded()?;
    let modules = fs::read_to_string("/proc/modules").unwrap_or_default();
    ensure!(
        modules.trim().is_empty(),
        "modules still loaded: {modules} (attribution assumes none)"
    );
    for _ in 0..2 {
        std::thread::sleep(Duration::from_millis(1500));
        fs::write(KMEMLEAK, "scan").context("kmemleak scan")?;
    }
    let report = fs::read_to_string(KMEMLEAK).context("read kmemleak")?;
    let all = leaks(&report);
    let ours: Vec<&Leak> = all.iter().filter(|l| l.ours).collect();
    for l in all.iter().filter(|l| !l.ours).take(3) {
        env.note(format!(
            "kernel's own: {}",
            l.text.lines().take(2).collect::<Vec<_>>().join(" ")
        ));
    }
    if !ours.is_empty() {
        for l in ours.iter().take(3) {
            for line in l.text.lines().take(24) {
                env.note(line.to_string());
            }
        }
        bail!(
            "kmemleak: {} unreferenced object(s) allocated by cxl_swcci",
            ours.len()
        );
    }
    env.note(format!(
        "kmemleak: nothing of cxl_swcci ({} object(s) of the kernel's own)",
        all.len()
    ));
    fuzz::load_all(env)?;
    Ok(Outcome::Pass)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kmemleak_attribution() {
        let report = "unreferenced object 0xffff888004f1c000 (size 64):
  comm \"swcci-ktest\", pid 85, jiffies 4294900000
  hex dump (first 32 bytes):
    00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00  ................
  backtrace (crc 1a2b3c4d):
    kmemleak_alloc+0x4a/0x80
    __kmalloc_noprof+0x1f2/0x4a0
    0xffffffffc0201234
    pci_device_probe+0xb9/0x1d0
unreferenced object 0xffff888004f1d000 (size 32):
  comm \"swapper/0\", pid 1, jiffies 4294890000
  backtrace (crc 0):
    kmemleak_alloc+0x4a/0x80
    kobject_set_name_vargs+0x2c/0xa0
unreferenced object 0xffff888004f1e000 (size 16):
  comm \"swcci-ktest\", pid 85, jiffies 4294900000
  backtrace (crc 0):
    [<ffffffff81234567>] kmalloc_trace+0x1/0x2
    [<ffffffffc0001234>] swcci_probe+0x42/0x90 [cxl_swcci]
";
        let l = leaks(report);
        assert_eq!(l.len(), 3);
        assert!(l[0].ours && !l[1].ours && l[2].ours);
        assert!(leaks("").is_empty());
    }
}
