// SPDX-License-Identifier: GPL-2.0

//! The command path's lifetime, interrupt, background, reset and taint rules, each as the
//! driver must keep it (scenarios `main`, `hardened` and `emu`):
//!
//! - an open debugfs file pins the module (rmmod: EWOULDBLOCK; after the close it unloads);
//! - unbind leaves the function disabled and not bus-mastering;
//! - an MSI function gets one vector, an MSI-X function only the vectors its registers name
//!   (its interrupt message numbers are read after the allocation: CXL r3.1 §8.2.8.4.3);
//! - Request Abort Background Operation (0005h) does the MMB attention handshake;
//! - two callers looping background commands lose none (no ETIMEDOUT: a result another
//!   caller's command overwrote is ENODATA at once), and a firmware update completes beside
//!   another process's long background commands without aborting them;
//! - a background operation a function reset dropped fails its waiter (EIO), never reports
//!   another operation's result;
//! - an MMPT transfer cut off by a function that stopped answering does not block sends after
//!   a rebind;
//! - a background timeout is one kernel log line; reset warnings are rate limited;
//! - taint: Receive Message (PCI-SIG 0101h) is read-only only on a function with MMPT, a CEL
//!   entry with reserved effect bits taints, and the driver's own abort taints.

use crate::child::{num_field, wait_for, Child};
use crate::ctl::Ctl;
use crate::env::{errno_str, lib_errno, Env, DEBUGFS_DIR, TAINT_USER};
use crate::tests::emu::{devices, find_log, pattern, recover, settle, EmuDev};
use crate::tests::fw;
use crate::Outcome;
use anyhow::{anyhow, bail, ensure, Context, Result};
use std::fs;
use std::io::{Read, Seek};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use swcci::proto::mmpt::MmptCode;
use swcci::proto::payload::firmware::{Transfer, TransferAction, TRANSFER_HEADER_LEN};
use swcci::proto::rc::ReturnCode;
use swcci::proto::uapi::{SwcciBgPolicy, SWCCI_BG_ABORT_ON_TIMEOUT, SWCCI_INFO_IRQ};
use swcci::topology::Emulated;
use swcci::{Device, MmptRecv};

/// The emulator's background sleep (input: u32 ms), vendor-specific (C000h).
const SLEEP: u16 = 0xc000;
/// The emulator's background sleep with an opcode no specification defines, listed in its
/// CEL without effects (3F00h).
const QUIET_SLEEP: u16 = 0x3f00;
/// Transfer FW (0201h).
const TRANSFER_FW: u16 = 0x0201;

fn ms(n: u32) -> [u8; 4] {
    n.to_le_bytes()
}

/// The emulated switches: with interrupts first, then polled.
fn switches(env: &mut Env) -> Result<Vec<EmuDev>> {
    let mut v: Vec<EmuDev> = devices(env)?
        .into_iter()
        .filter(|d| d.spec.personality == "switch")
        .collect();
    v.sort_by_key(|d| !d.spec.msix);
    ensure!(!v.is_empty(), "no emulated switch");
    Ok(v)
}

fn switch_irq(env: &mut Env) -> Result<EmuDev> {
    switches(env)?
        .into_iter()
        .find(|d| d.spec.msix)
        .context("no emulated switch with MSI-X")
}

fn switch_polled(env: &mut Env) -> Result<EmuDev> {
    switches(env)?
        .into_iter()
        .find(|d| !d.spec.msix)
        .context("no polled emulated switch")
}

fn mmpt(env: &mut Env, msix: bool) -> Result<EmuDev> {
    devices(env)?
        .into_iter()
        .find(|d| d.spec.personality == "mmpt" && d.spec.msix == msix)
        .with_context(|| format!("no MMPT function (MSI-X {msix})"))
}

fn policy(dev: &Device, timeout_ms: u32, flags: u32) -> Result<()> {
    dev.bg_policy(SwcciBgPolicy { timeout_ms, flags })?;
    Ok(())
}

// ---- the module's lifetime (main, hardened) ----

/// The PCI address of any bound function of the scenario (QEMU's switches, or the emulated
/// functions where there are any).
fn any_bound(env: &mut Env) -> Result<String> {
    if env.topo.emulated.is_empty() {
        env.ensure_loaded()?;
    } else {
        devices(env)?;
    }
    let n = swcci::list()?
        .into_iter()
        .find_map(|n| n.info.ok())
        .context("no bound function")?;
    Ok(swcci::info_str(&n.pci_addr))
}

/// Loads the module again and binds what the scenario's other tests expect.
fn reload(env: &mut Env) -> Result<()> {
    if env.topo.emulated.is_empty() {
        env.ensure_loaded()
    } else {
        devices(env).map(|_| ())
    }
}

pub fn rmmod_with_debugfs_file_open(env: &mut Env) -> Result<Outcome> {
    let addr = any_bound(env)?;
    let path = Path::new(DEBUGFS_DIR).join(&addr).join("stats");
    let mut f = fs::File::open(&path).with_context(|| format!("open {}", path.display()))?;
    let mut text = String::new();
    f.read_to_string(&mut text)?;
    ensure!(text.contains("commands: "), "{}: {text}", path.display());
    match env.rmmod() {
        // delete_module(2) reports a module in use as EWOULDBLOCK (== EAGAIN).
        Err(e) if e == libc::EWOULDBLOCK => {}
        Err(e) => bail!(
            "rmmod with {} open: {}, expected EWOULDBLOCK",
            path.display(),
            errno_str(e)
        ),
        Ok(()) => {
            // Closing the file now would run the release of a module that is gone (a
            // use-after-free that oopses): keep it open for the rest of this boot.
            std::mem::forget(f);
            reload(env)?;
            bail!(
                "rmmod succeeded with {} open: the open debugfs file does not pin the module \
                 (the file is left open: its close would run freed module code)",
                path.display()
            );
        }
    }
    ensure!(env.module_loaded(), "module gone");
    // The file still reads, and closing it lets the module go.
    f.rewind()?;
    text.clear();
    f.read_to_string(&mut text)?;
    ensure!(text.contains("commands: "), "second read: {text}");
    drop(f);
    env.rmmod()
        .map_err(|e| anyhow!("rmmod after the close: {}", errno_str(e)))?;
    reload(env)?;
    env.note(format!(
        "rmmod with {} open: EWOULDBLOCK; after the close it unloaded",
        path.display()
    ));
    Ok(Outcome::Pass)
}

pub fn unbind_disables_the_function(env: &mut Env) -> Result<Outcome> {
    env.ensure_loaded()?;
    let d = env
        .switch_ccis()?
        .into_iter()
        .next()
        .context("no switch CCI")?;
    let dir = format!("/sys/bus/pci/devices/{}", d.addr);
    let state = || -> Result<(u16, String)> {
        let cfg = fs::read(format!("{dir}/config")).context("read config")?;
        let cmd = u16::from_le_bytes([cfg[4], cfg[5]]);
        let enable = fs::read_to_string(format!("{dir}/enable"))?
            .trim()
            .to_string();
        Ok((cmd, enable))
    };
    let (bound_cmd, bound_enable) = state()?;
    env.unbind(&d.addr)?;
    let (cmd, enable) = state()?;
    env.bind(&d.addr)?;
    env.wait_bound()?;
    let (rebound_cmd, rebound_enable) = state()?;
    // `enable` counts the enables not yet undone (pci_enable_device and pci_disable_device).
    ensure!(
        cmd & 0x4 == 0 && enable == "0",
        "{}: after unbind the command register is {cmd:#06x} (bus master {}) and enable reads \
         {enable} (bound: {bound_cmd:#06x}, enable {bound_enable}): expected bus mastering off \
         and the function disabled",
        d.addr,
        cmd & 0x4 != 0
    );
    for (what, c, e) in [
        ("bound", bound_cmd, &bound_enable),
        ("rebound", rebound_cmd, &rebound_enable),
    ] {
        ensure!(
            c & 0x6 == 0x6 && e != "0",
            "{}: {what} with command {c:#06x}, enable {e}",
            d.addr
        );
    }
    for sw in env.topo.switches.clone() {
        env.node_for_serial(sw.serial)?.identify()?;
    }
    env.note(format!(
        "{}: command {bound_cmd:#06x} bound, {cmd:#06x} unbound (enable {enable}), \
         {rebound_cmd:#06x} rebound",
        d.addr
    ));
    Ok(Outcome::Pass)
}

// ---- interrupt vectors (emu) ----

/// Entries of a function's `msi_irqs` directory: its allocated MSI or MSI-X vectors.
fn vectors(addr: &str) -> Result<usize> {
    let p = format!("/sys/bus/pci/devices/{addr}/msi_irqs");
    match fs::read_dir(&p) {
        Ok(rd) => Ok(rd.count()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e).with_context(|| format!("read {p}")),
    }
}

/// Runs 10 commands that each wait 5 ms for their completion, and returns the interrupts the
/// emulator sent and the driver took, and the driver's missed interrupts.
fn interrupts_taken(
    env: &mut Env,
    addr: &str,
    dev: &Device,
    ctl: &mut Ctl,
) -> Result<(u64, u64, u64)> {
    let (sent0, taken0) = (ctl.get("irqs")?, env.stat(addr, "irqs")?);
    ctl.cmd("delay 5 always")?;
    let r = (|| -> Result<()> {
        for _ in 0..10 {
            let r = dev.mmb_command(0x0101, 1, &[0; 16], 64)?;
            ensure!(
                MmptCode::from_raw(r.rc) == MmptCode::NoMessage,
                "empty Receive Message: {:#x}",
                r.rc
            );
        }
        Ok(())
    })();
    ctl.cmd("clear")?;
    r?;
    Ok((
        ctl.get("irqs")? - sent0,
        env.stat(addr, "irqs")? - taken0,
        env.stat(addr, "missed_irqs")?,
    ))
}

/// The MSI-only function of the scenario and its PCI address.
fn msi_function(env: &Env) -> Result<(Emulated, String)> {
    let spec = env
        .topo
        .emulated
        .iter()
        .find(|s| s.args.iter().any(|a| a == "--msi"))
        .cloned()
        .context("no MSI-only emulated function in this scenario (tools/runner)")?;
    let addr = env
        .pci_devices()?
        .into_iter()
        .find(|p| (p.vendor, p.device) == (spec.vendor, spec.device))
        .with_context(|| format!("no PCI function {:04x}:{:04x}", spec.vendor, spec.device))?
        .addr;
    Ok((spec, addr))
}

/// Binds `addr` with driver_override and returns its node; the override is cleared again
/// when the guard drops (the other tests do not expect this function bound).
struct Override {
    addr: String,
}

impl Override {
    fn bind(env: &mut Env, addr: &str) -> Result<(Self, Device)> {
        env.ensure_loaded()?;
        let g = Self {
            addr: addr.to_string(),
        };
        env.sysfs_write(
            &format!("/sys/bus/pci/devices/{addr}/driver_override"),
            "cxl_swcci",
        )?;
        env.sysfs_write("/sys/bus/pci/drivers_probe", addr)?;
        let mut node = None;
        wait_for(
            &format!("a node for {addr}"),
            Duration::from_secs(10),
            || {
                node = swcci::list()?.into_iter().find(|n| {
                    n.info
                        .as_ref()
                        .is_ok_and(|i| swcci::info_str(&i.pci_addr) == addr)
                });
                Ok(node.is_some())
            },
        )?;
        let node = node.context("node")?;
        Ok((g, Device::open(&node.path)?))
    }
}

impl Drop for Override {
    fn drop(&mut self) {
        let dir = format!("/sys/bus/pci/devices/{}", self.addr);
        if Path::new(&format!("{dir}/driver")).exists() {
            let _ = fs::write(format!("{}/unbind", crate::env::DRIVER_DIR), &self.addr);
        }
        let _ = fs::write(format!("{dir}/driver_override"), "\n");
    }
}

pub fn msi_function_gets_one_vector(env: &mut Env) -> Result<Outcome> {
    let (spec, addr) = msi_function(env)?;
    let mut ctl = crate::ctl::Ctl::open(&spec.control)?;
    let (guard, dev) = Override::bind(env, &addr)?;
    let n = vectors(&addr)?;
    let info = dev.info()?;
    let (sent, taken, missed) = interrupts_taken(env, &addr, &dev, &mut ctl)?;
    let config = ctl.cmd("get config")?;
    drop(dev);
    drop(guard);
    ensure!(
        n == 1,
        "{addr}: {n} MSI vectors allocated for a function whose mailbox and MMPT interrupts \
         fit one (the emulator offers {} messages)",
        num_field(&config, "msi")?
    );
    ensure!(
        info.flags & SWCCI_INFO_IRQ != 0,
        "{addr}: not in interrupt mode (info flags {:#x})",
        info.flags
    );
    ensure!(
        sent >= 10 && taken > 0 && missed == 0,
        "{addr}: {sent} interrupts sent, {taken} taken, {missed} missed for 10 commands \
         ({config})"
    );
    env.note(format!(
        "{addr}: 1 MSI vector; {sent} interrupts sent, {taken} taken, none missed ({config})"
    ));
    Ok(Outcome::Pass)
}

pub fn msix_only_the_vectors_used(env: &mut Env) -> Result<Outcome> {
    let d = mmpt(env, true)?;
    let mut ctl = d.ctl()?;
    let mut seen = Vec::new();
    let mut failure = None;
    for (mbox, rx, want) in [(0u16, 1u16, 2usize), (0, 0, 1)] {
        ctl.cmd(&format!("set vectors {mbox} {rx}"))?;
        let fresh = recover(env, &d, &mut ctl)?;
        let n = vectors(&d.addr)?;
        let dev = fresh.open()?;
        let (sent, taken, missed) = interrupts_taken(env, &d.addr, &dev, &mut ctl)?;
        seen.push(format!(
            "vectors {mbox},{rx}: {n} allocated, {sent} interrupts sent, {taken} taken, {missed} \
             missed"
        ));
        if failure.is_none() && (n != want || taken == 0 || missed != 0) {
            failure = Some(format!(
                "mailbox on vector {mbox}, MMPT receive on {rx}: {n} vectors allocated (expected \
                 {want}), {taken} of {sent} interrupts taken, {missed} missed"
            ));
        }
    }
    ctl.cmd("set vectors 1 2")?;
    recover(env, &d, &mut ctl)?;
    if let Some(f) = failure {
        bail!("{}: {f}", d.label());
    }
    env.note(format!("{}: {}", d.label(), seen.join("; ")));
    Ok(Outcome::Pass)
}

// ---- attention (emu) ----

pub fn abort_does_the_attention_handshake(env: &mut Env) -> Result<Outcome> {
    let d = switch_irq(env)?;
    let mut ctl = d.ctl()?;
    ctl.cmd("set attention 1")?;
    let r = (|| -> Result<String> {
        let d = recover(env, &d, &mut ctl)?;
        let dev = d.open()?;
        dev.identify()?;
        // The driver's own commands after the bind (its event set-up) may still hold the
        // function at attention for a moment: it must come to rest within a second.
        wait_for(
            "the function at rest after an Identify (attention not needed set again)",
            Duration::from_secs(1),
            || Ok(ctl.get("attention")? == 0),
        )
        .context("the driver does not let the function rest")?;
        let (asleep0, aborts0) = (ctl.get("stat doorbell-asleep")?, ctl.get("stat aborts")?);
        policy(&dev, 300, SWCCI_BG_ABORT_ON_TIMEOUT)?;
        let r = lib_errno(dev.raw(SLEEP, &ms(5000), 0));
        ensure!(
            r.as_ref().err() == Some(&libc::ETIMEDOUT),
            "{r:?}, expected ETIMEDOUT"
        );
        let asleep = ctl.get("stat doorbell-asleep")? - asleep0;
        let aborts = ctl.get("stat aborts")? - aborts0;
        let awake = ctl.get("attention")?;
        ensure!(aborts == 1, "{aborts} Request Abort commands, expected 1");
        ensure!(
            asleep == 0,
            "{asleep} doorbell(s) rung without the attention handshake (Request Abort \
             Background Operation)"
        );
        ensure!(
            awake == 0,
            "the function is still at attention after the abort (attention not needed left \
             clear)"
        );
        find_log(env, &d.addr, "aborted")
    })();
    ctl.cmd("set attention 0")?;
    recover(env, &d, &mut ctl)?;
    let line = r.with_context(|| d.label())?;
    env.note(line);
    Ok(Outcome::Pass)
}

// ---- a function that dies during a background wait (emu) ----

/// A background wait on a function that stops answering (its registers read all ones) ends
/// with ENXIO within a few of the driver's re-checks, not after the wait's 20 s timeout; the
/// function is failed (one kernel line) and refuses commands until it is rebound.
pub fn bg_wait_ends_when_the_function_dies(env: &mut Env) -> Result<Outcome> {
    let d = switch_polled(env)?;
    let mut ctl = d.ctl()?;
    let path = d.path.clone();
    let h = std::thread::spawn(
        move || -> Result<(std::result::Result<(), i32>, Duration)> {
            let dev = Device::open(&path)?;
            policy(&dev, 20_000, 0)?;
            let t = Instant::now();
            let r = lib_errno(dev.raw(SLEEP, &ms(10_000), 0)).map(|_| ());
            Ok((r, t.elapsed()))
        },
    );
    std::thread::sleep(Duration::from_millis(500));
    ctl.cmd("surprise-remove")?;
    let joined = h.join().map_err(|_| anyhow!("thread panicked"));
    let refused = lib_errno(d.open()?.identify());
    let line = find_log(env, &d.addr, "device not responding");
    recover(env, &d, &mut ctl)?;
    let (r, took) = joined??;
    ensure!(
        r == Err(libc::ENXIO),
        "{}: a background wait when the function died: {:?}, expected ENXIO",
        d.label(),
        r.map_err(errno_str)
    );
    ensure!(
        took < Duration::from_secs(5),
        "{}: the wait ended {took:?} after it began (the function died after 0.5 s)",
        d.label()
    );
    ensure!(
        refused == Err(libc::ENXIO),
        "{}: the failed function took a command: {:?}",
        d.label(),
        refused.map(|_| ()).map_err(errno_str)
    );
    env.note(format!("{}: ENXIO after {took:?}; {}", d.label(), line?));
    Ok(Outcome::Pass)
}

// ---- two callers' background commands (emu) ----

/// A Transfer FW (0201h) Full of `img` to `slot`.
fn transfer_full(img: &[u8], slot: u8) -> Result<Vec<u8>> {
    let mut b = vec![0u8; TRANSFER_HEADER_LEN + img.len()];
    let n = Transfer {
        action: TransferAction::Full,
        slot,
        offset: 0,
        data: img,
    }
    .encode(&mut b)
    .map_err(|e| anyhow!("encode Transfer FW: {e}"))?;
    b.truncate(n);
    Ok(b)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A `bg-loop` helper on `node` (helpers.rs).
#[expect(clippy::too_many_arguments)]
fn looper(
    node: &Path,
    opcode: u16,
    input: &[u8],
    want: u16,
    max_ms: u64,
    timeout_ms: u32,
    pause_ms: u64,
    stop: &str,
) -> Result<Child> {
    let mut c = Child::spawn(&[
        "bg-loop".into(),
        node.display().to_string(),
        format!("{opcode:#x}"),
        hex(input),
        format!("{want:#x}"),
        max_ms.to_string(),
        timeout_ms.to_string(),
        pause_ms.to_string(),
        stop.into(),
    ])?;
    c.ready()?;
    Ok(c)
}

pub fn bg_two_callers_lose_nothing(env: &mut Env) -> Result<Outcome> {
    let d = switch_irq(env)?;
    let mut ctl = d.ctl()?;
    fw::reset_fw(&d, &mut ctl)?;
    let slot = fw::free_slot(&d.open()?)?;
    let img = fw::image("bg-loop 1.0", 128, 3);
    // 1 ms each: Transfer FW parts and the sleep, whose final return code is 04h so that a
    // result of the other caller's operation shows.
    ctl.cmd("set fw-part-us 1000 0")?;
    ctl.cmd("set bg-rc 4")?;
    let r = (|| -> Result<(String, String)> {
        let mut fwl = looper(
            &d.path,
            TRANSFER_FW,
            &transfer_full(&img, slot)?,
            0,
            3000,
            2000,
            0,
            "-",
        )?;
        let mut sleeper = looper(&d.path, SLEEP, &ms(1), 4, 3000, 2000, 0, "-")?;
        let a = fwl.line(Duration::from_secs(30))?;
        let b = sleeper.line(Duration::from_secs(30))?;
        fwl.wait(Duration::from_secs(5))?;
        sleeper.wait(Duration::from_secs(5))?;
        Ok((a, b))
    })();
    ctl.cmd("set bg-rc 0")?;
    fw::reset_fw(&d, &mut ctl)?;
    let (a, b) = r?;
    let mut enodata = 0;
    let mut ran = 0;
    let mut lost = false;
    for line in [&a, &b] {
        lost |= num_field(line, "timedout")? > 0
            || num_field(line, "other")? > 0
            || num_field(line, "own")? == 0;
        enodata += num_field(line, "enodata")?;
        ran += num_field(line, "ran")?;
    }
    ensure!(
        !lost,
        "{}: Transfer FW parts: {a}; background sleeps: {b} (timedout: a completion was lost \
         and the caller waited its whole 2 s timeout; other: another caller's result or an \
         error)",
        d.label()
    );
    env.note(format!(
        "{}: Transfer FW parts: {a}; sleeps: {b}; ENODATA {enodata} of {ran} commands",
        d.label()
    ));
    Ok(Outcome::Pass)
}

pub fn fw_update_beside_long_background_commands(env: &mut Env) -> Result<Outcome> {
    let d = switch_irq(env)?;
    let mut ctl = d.ctl()?;
    fw::reset_fw(&d, &mut ctl)?;
    let slot = fw::free_slot(&d.open()?)?;
    let rev = "beside 1.0";
    // Long enough that the other process's next command comes while parts are sent.
    let img = fw::image(rev, 64 * 1024, 7);
    let path = fw::image_file("beside", &img)?;
    let stop = "/tmp/stop-beside";
    let _ = fs::remove_file(stop);
    let aborts0 = ctl.get("stat aborts")?;
    // 1.5 s background commands, 200 ms apart, for as long as the update runs.
    let mut other = looper(&d.path, SLEEP, &ms(1500), 0, 60_000, 5000, 200, stop)?;
    let t = Instant::now();
    let out = Command::new(fw::CLI)
        .args([
            "fw",
            "update",
            &d.path.display().to_string(),
            &path.display().to_string(),
            "--slot",
            &slot.to_string(),
            "--yes",
            "--bg-timeout-ms",
            "3000",
            "--busy-timeout-ms",
            "20000",
            "--json",
        ])
        .stdin(Stdio::null())
        .output()
        .context("run swcci fw update")?;
    let took = t.elapsed();
    fs::write(stop, "")?;
    let line = other.line(Duration::from_secs(10))?;
    other.wait(Duration::from_secs(5))?;
    let _ = fs::remove_file(stop);
    let aborts = ctl.get("stat aborts")? - aborts0;
    let held = fw::holds(&mut ctl, slot, &img, rev);
    fw::reset_fw(&d, &mut ctl)?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(
        out.status.code() == Some(0),
        "{}: swcci fw update beside 1.5 s background commands: {} after {took:?}: {}",
        d.label(),
        out.status,
        err.trim()
    );
    held?;
    ensure!(
        aborts == 0 && num_field(&line, "other")? == 0 && num_field(&line, "timedout")? == 0,
        "{}: the other process's commands: {line}; {aborts} Request Abort command(s) sent",
        d.label()
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let result: serde_json::Value = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["event"] == "result")
        .with_context(|| format!("no result line in {stdout}"))?;
    let retries = result["busy_retries"].as_u64().unwrap_or(0);
    ensure!(
        retries > 0,
        "{}: no part was answered Busy: the update did not run beside the other process's \
         operations ({result})",
        d.label()
    );
    env.note(format!(
        "{}: update of {} bytes in {took:?} beside 1.5 s background commands, {retries} Busy \
         retries ({line})",
        d.label(),
        img.len()
    ));
    Ok(Outcome::Pass)
}

// ---- a function reset under a background wait (emu) ----

pub fn bg_reset_fails_the_waiter(env: &mut Env) -> Result<Outcome> {
    let d = switch_polled(env)?;
    let mut ctl = d.ctl()?;
    let path = d.path.clone();
    let a = std::thread::spawn(
        move || -> Result<(std::result::Result<u16, i32>, Duration)> {
            let dev = Device::open(&path)?;
            policy(&dev, 10_000, SWCCI_BG_ABORT_ON_TIMEOUT)?;
            let t = Instant::now();
            let r = lib_errno(dev.raw(SLEEP, &ms(4000), 0)).map(|r| r.rc.raw());
            Ok((r, t.elapsed()))
        },
    );
    let r = (|| -> Result<(std::result::Result<u16, i32>, Duration, u16)> {
        wait_for("file A's operation running", Duration::from_secs(5), || {
            let bg = ctl.cmd("get bg")?;
            Ok(num_field(&bg, "running")? == 1)
        })?;
        ctl.cmd("reset")?;
        // File B's own operation of the same opcode, with another return code.
        ctl.cmd("set bg-rc 5")?;
        let b = Device::open(&d.path)?;
        let rb = settle(|| lib_errno(b.raw(SLEEP, &ms(300), 0)));
        let rb = rb.map_err(|e| anyhow!("file B: {}", errno_str(e)))?;
        let (ra, ta) = a
            .join()
            .map_err(|_| anyhow!("file A's thread panicked"))??;
        Ok((ra, ta, rb.rc.raw()))
    })();
    ctl.cmd("set bg-rc 0")?;
    let (ra, ta, rcb) = r.with_context(|| d.label())?;
    ensure!(
        rcb == 5,
        "{}: file B's operation ended with {rcb:#x}",
        d.label()
    );
    match ra {
        Err(e) if e == libc::EIO => {}
        Err(e) => bail!(
            "{}: file A, whose operation the reset dropped: {} after {ta:?}, expected EIO",
            d.label(),
            errno_str(e)
        ),
        Ok(rc) => bail!(
            "{}: file A, whose operation the reset dropped, reported success with return code \
             {rc:#06x}{} after {ta:?}, expected EIO",
            d.label(),
            if rc == rcb { " (file B's)" } else { "" }
        ),
    }
    ensure!(
        ta < Duration::from_secs(2),
        "{}: file A failed after {ta:?}, not promptly",
        d.label()
    );
    d.open()?.identify()?;
    env.note(format!("{}: file A: EIO after {ta:?}", d.label()));
    Ok(Outcome::Pass)
}

// ---- an MMPT transfer cut off (emu) ----

pub fn mmpt_transfer_cut_off_then_rebind(env: &mut Env) -> Result<Outcome> {
    let d = mmpt(env, true)?;
    let mut ctl = d.ctl()?;
    let payload = d.open()?.payload_size()?;
    let data = pattern(3 * payload + 5, 4);
    ctl.cmd("remove-at-part 3 once")?;
    let r = lib_errno(d.open()?.mmpt_send(0x01, &data));
    // The function answers again, its transfer still open.
    ctl.cmd("clear")?;
    let open = ctl.cmd("get mmpt")?;
    env.unbind(&d.addr)?;
    env.bind(&d.addr)?;
    let fresh = devices(env)?
        .into_iter()
        .find(|x| x.addr == d.addr)
        .context("rebound")?;
    let dev = fresh.open()?;
    let small = pattern(100, 5);
    let t = Instant::now();
    let sent = lib_errno(dev.mmpt_send(0x02, &small));
    let took = t.elapsed();
    let after = ctl.cmd("get mmpt")?;
    let back = dev.mmpt_recv(4096, 2000);
    if sent != Ok(MmptCode::Success) {
        recover(env, &d, &mut ctl)?;
    }
    ensure!(
        r == Err(libc::ENXIO),
        "{}: cut-off send: {r:?}, expected ENXIO",
        d.label()
    );
    ensure!(
        num_field(&open, "tx")? == 1,
        "{}: the emulator had no open transfer after the cut ({open})",
        d.label()
    );
    match sent {
        Ok(MmptCode::Success) => {}
        Ok(code) => bail!(
            "{}: the first send after the rebind was refused: {code} (the cut-off transfer is \
             still open: {after})",
            d.label()
        ),
        Err(e) => bail!(
            "{}: the first send after the rebind: {}",
            d.label(),
            errno_str(e)
        ),
    }
    match back? {
        MmptRecv::Message { msg_type: 2, data } if data == small => {}
        other => bail!("{}: echo {other:?}", d.label()),
    }
    env.note(format!(
        "{}: cut off at part 3 (ENXIO); after the rebind a send succeeded in {took:?} ({after})",
        d.label()
    ));
    Ok(Outcome::Pass)
}

// ---- kernel log volume (emu) ----

pub fn log_lines_bounded(env: &mut Env) -> Result<Outcome> {
    let mut failed = Vec::new();
    // One background timeout: one line.
    let d = switch_polled(env)?;
    let dev = d.open()?;
    policy(&dev, 300, SWCCI_BG_ABORT_ON_TIMEOUT)?;
    env.kmsg();
    let r = lib_errno(dev.raw(SLEEP, &ms(3000), 0));
    ensure!(
        r.as_ref().err() == Some(&libc::ETIMEDOUT),
        "{}: {r:?}",
        d.label()
    );
    let lines: Vec<String> = env
        .kmsg()
        .into_iter()
        .filter(|l| l.contains(&d.addr) && l.contains("c000h"))
        .collect();
    if lines.len() == 1 {
        env.note(lines[0].clone());
    } else {
        failed.push(format!(
            "{}: {} kernel log lines about one background timeout: {lines:?}",
            d.label(),
            lines.len()
        ));
    }
    // 200 function resets, each noticed by a command.
    let mut ctl = d.ctl()?;
    let t = Instant::now();
    ctl.cmd("reset-after-reads 0 always")?;
    let mut eio = 0;
    let run = (|| -> Result<()> {
        for i in 0..200 {
            match settle(|| lib_errno(dev.raw(0x0001, &[], 64))) {
                Err(e) if e == libc::EIO => eio += 1,
                Ok(_) => {}
                Err(e) => bail!("reset {i}: {}", errno_str(e)),
            }
        }
        Ok(())
    })();
    ctl.cmd("clear")?;
    let took = t.elapsed();
    run?;
    let logged: Vec<String> = env
        .kmsg()
        .into_iter()
        .filter(|l| l.contains(&d.addr))
        .collect();
    let (suppressed, warnings): (Vec<&String>, Vec<&String>) =
        logged.iter().partition(|l| l.contains("suppressed"));
    let d = recover(env, &d, &mut ctl)?;
    d.open()?.identify()?;
    ensure!(
        eio >= 100,
        "{}: only {eio} of 200 commands saw their function reset",
        d.label()
    );
    if warnings.len() <= 10 && suppressed.len() <= 2 {
        env.note(format!(
            "{}: {eio} resets noticed in {took:?}: {} warning lines, {} suppression notices",
            d.label(),
            warnings.len(),
            suppressed.len()
        ));
    } else {
        failed.push(format!(
            "{}: {} kernel log lines for {eio} resets in {took:?} (at most 10, and a line \
             saying how many were suppressed); first: {:?}",
            d.label(),
            logged.len(),
            warnings.first()
        ));
    }
    if !failed.is_empty() {
        bail!("{}", failed.join("\n"));
    }
    Ok(Outcome::Pass)
}

// ---- taint (emu; the first tests of the scenario) ----

/// The kernel's TAINT_USER bit.
fn user_tainted(env: &Env) -> Result<bool> {
    Ok(env.tainted()? & TAINT_USER != 0)
}

/// Fails unless TAINT_USER is still clear: the tests that need it run first in the scenario.
fn untainted(env: &Env, what: &str) -> Result<()> {
    ensure!(
        !user_tainted(env)?,
        "TAINT_USER is set before {what}: this test must run before any state-changing \
         command of the boot"
    );
    Ok(())
}

/// The driver's taint notice for `addr` among `lines`.
fn taint_notice<'a>(lines: &'a [String], addr: &str) -> Option<&'a String> {
    lines
        .iter()
        .find(|l| l.contains(addr) && l.contains("tainting kernel"))
}

pub fn taint_clear_for_read_only_mmb_and_quiet_commands(env: &mut Env) -> Result<Outcome> {
    let devs = devices(env)?;
    untainted(env, "any raw command")?;
    env.kmsg();
    for d in devs.iter().filter(|d| d.spec.personality == "mmpt") {
        let r = d.open()?.mmb_command(0x0101, 1, &[0; 16], 64)?;
        ensure!(
            MmptCode::from_raw(r.rc) == MmptCode::NoMessage,
            "{}: Receive Message: {:#x}",
            d.label(),
            r.rc
        );
    }
    let sw = devs
        .iter()
        .find(|d| d.spec.personality == "switch")
        .context("no switch")?;
    let r = sw.open()?.raw(QUIET_SLEEP, &ms(20), 0)?;
    ensure!(
        r.rc == ReturnCode::Success,
        "{}: 3F00h: {}",
        sw.label(),
        r.rc
    );
    ensure!(
        !user_tainted(env)?,
        "Receive Message on MMPT functions or a background command their CEL lists without \
         effects tainted the kernel"
    );
    let lines = env.kmsg();
    ensure!(
        !lines.iter().any(|l| l.contains("tainting kernel")),
        "a taint notice: {lines:?}"
    );
    Ok(Outcome::Pass)
}

pub fn taint_driver_abort(env: &mut Env) -> Result<Outcome> {
    let d = switch_irq(env)?;
    untainted(env, "the driver's abort")?;
    let mut ctl = d.ctl()?;
    let aborts0 = ctl.get("stat aborts")?;
    let dev = d.open()?;
    policy(&dev, 300, SWCCI_BG_ABORT_ON_TIMEOUT)?;
    env.kmsg();
    let r = lib_errno(dev.raw(QUIET_SLEEP, &ms(3000), 0));
    ensure!(
        r.as_ref().err() == Some(&libc::ETIMEDOUT),
        "{}: {r:?}",
        d.label()
    );
    ensure!(
        ctl.get("stat aborts")? == aborts0 + 1,
        "{}: no Request Abort reached the device",
        d.label()
    );
    let tainted = user_tainted(env)?;
    let lines = env.kmsg();
    let notice = taint_notice(&lines, &d.addr).cloned();
    ensure!(
        tainted,
        "{}: the driver's Request Abort Background Operation (0005h) after a timeout did not \
         taint the kernel",
        d.label()
    );
    let notice = notice.with_context(|| format!("{}: no taint notice", d.label()))?;
    ensure!(
        notice.contains("0005h") && notice.contains("Request Abort Background Operation"),
        "{}: the taint notice does not name the abort: {notice}",
        d.label()
    );
    env.note(notice);
    Ok(Outcome::Pass)
}

/// Rebinds `d` (which makes its next tainting command log a notice again), runs `f` on it and
/// returns the driver's taint notice for it, if any.
fn notice_after(
    env: &mut Env,
    d: &EmuDev,
    f: impl FnOnce(&Device) -> Result<()>,
) -> Result<Option<String>> {
    env.unbind(&d.addr)?;
    env.bind(&d.addr)?;
    let fresh = devices(env)?
        .into_iter()
        .find(|x| x.addr == d.addr)
        .context("rebound")?;
    env.kmsg();
    f(&fresh.open()?)?;
    Ok(taint_notice(&env.kmsg(), &d.addr).cloned())
}

fn receive_message(dev: &Device) -> Result<()> {
    dev.mmb_command(0x0101, 1, &[0; 16], 64)?;
    Ok(())
}

pub fn taint_receive_message_needs_mmpt(env: &mut Env) -> Result<Outcome> {
    let d = mmpt(env, false)?;
    let mut ctl = d.ctl()?;
    let with = notice_after(env, &d, receive_message)?;
    ctl.cmd("set mmpt 0")?;
    let without = notice_after(env, &d, |dev| {
        ensure!(
            dev.info()?.flags & swcci::proto::uapi::SWCCI_INFO_MMPT == 0,
            "MMPT registers still found"
        );
        receive_message(dev)
    });
    ctl.cmd("set mmpt 1")?;
    // strict_taint=1: Receive Message taints on a function with MMPT too.
    env.ensure_unloaded()?;
    env.load("strict_taint=1")?;
    let strict = notice_after(env, &d, receive_message);
    env.ensure_unloaded()?;
    devices(env)?;
    let without = without?;
    let strict = strict?;
    ensure!(
        with.is_none(),
        "{}: Receive Message (PCI-SIG 0101h) on a function with MMPT tainted: {with:?}",
        d.label()
    );
    let without = without.with_context(|| {
        format!(
            "{}: opcode vendor 0001h opcode 0101h to a function without MMPT registers did not \
             taint (it is not Receive Message there)",
            d.label()
        )
    })?;
    let strict = strict.with_context(|| {
        format!(
            "{}: with strict_taint=1 Receive Message did not taint",
            d.label()
        )
    })?;
    env.note(without);
    env.note(strict);
    Ok(Outcome::Pass)
}

pub fn taint_reserved_cel_effect_bits(env: &mut Env) -> Result<Outcome> {
    let d = switch_polled(env)?;
    let mut ctl = d.ctl()?;
    ctl.cmd(&format!("set cel-effect {QUIET_SLEEP:#x} 0x1000"))?;
    let notice = notice_after(env, &d, |dev| {
        let cel = dev.cel()?;
        ensure!(
            cel.iter()
                .any(|e| e.opcode == QUIET_SLEEP && e.effect == 0x1000),
            "the CEL read back does not list 3F00h with effect 1000h"
        );
        let r = dev.raw(QUIET_SLEEP, &ms(10), 0)?;
        ensure!(r.rc == ReturnCode::Success, "3F00h: {}", r.rc);
        Ok(())
    });
    ctl.cmd(&format!("set cel-effect {QUIET_SLEEP:#x} default"))?;
    env.unbind(&d.addr)?;
    env.bind(&d.addr)?;
    devices(env)?;
    let notice = notice?.with_context(|| {
        format!(
            "{}: 3F00h, which the CEL lists with reserved effect bit 12 set, did not taint",
            d.label()
        )
    })?;
    ensure!(notice.contains("3f00h"), "{}: {notice}", d.label());
    env.note(notice);
    Ok(Outcome::Pass)
}
