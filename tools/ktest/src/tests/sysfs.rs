// SPDX-License-Identifier: GPL-2.0

//! The sysfs attributes (`/sys/bus/pci/devices/<addr>/cxl_swcci/`): every file equals what
//! SWCCI_IOCTL_INFO returns for the same function (and which files exist follows its flags),
//! the interrupt/poll mode is live, the directory goes away on unbind and rmmod (open files
//! read ENODEV, readers racing the removal see a value or ENODEV/ENOENT) and comes back on
//! rebind, and the udev helper of contrib/ maps a node to its serial against the real sysfs.

use crate::env::{errno_str, Env};
use crate::tests::emu;
use crate::Outcome;
use anyhow::{anyhow, bail, ensure, Context, Result};
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use swcci::proto::uapi::{
    SwcciInfo, SWCCI_INFO_BG_IRQ, SWCCI_INFO_CXL, SWCCI_INFO_IDENTIFIED, SWCCI_INFO_IRQ,
    SWCCI_KIND_MMB, SWCCI_KIND_SWITCH_CCI,
};
use swcci::Device;

/// Files every bound function has.
const ALWAYS: &[&str] = &["node", "kind", "payload_size", "mode"];
/// Files of functions whose mailbox has the CXL extensions.
const CXL_ONLY: &[&str] = &["background_mode", "cel_entries"];
/// Files of functions Identify succeeded on at probe.
const IDENTITY: &[&str] = &[
    "serial",
    "vendor_id",
    "device_id",
    "subsystem_vendor_id",
    "subsystem_id",
];

/// The udev helper of contrib/, run in the guest against the real sysfs.
const SERIAL_HELPER: &str =
    include_str!("../../../../contrib/meta-swcci/recipes-phosphor/swcci/files/cxl-swcci-serial");

/// The attribute directory of a function.
fn dir_of(addr: &str) -> PathBuf {
    Path::new("/sys/bus/pci/devices")
        .join(addr)
        .join("cxl_swcci")
}

/// What the directory must hold, file by file, for a function whose info is `i`.
fn expected(i: &SwcciInfo) -> Result<BTreeMap<String, String>> {
    let mode = |irq: bool| if irq { "interrupt" } else { "poll" };
    let kind = match i.kind {
        SWCCI_KIND_SWITCH_CCI => "switch_cci",
        SWCCI_KIND_MMB => "mmb",
        k => bail!("info reports kind {k}"),
    };
    let mut m = BTreeMap::new();
    let mut put = |k: &str, v: String| m.insert(k.to_string(), format!("{v}\n"));
    put("node", swcci::info_str(&i.node));
    put("kind", kind.to_string());
    put("payload_size", i.payload_size.to_string());
    put("mode", mode(i.flags & SWCCI_INFO_IRQ != 0).to_string());
    if i.flags & SWCCI_INFO_CXL != 0 {
        put(
            "background_mode",
            mode(i.flags & SWCCI_INFO_BG_IRQ != 0).to_string(),
        );
        put("cel_entries", i.cel_entries.to_string());
    }
    if i.flags & SWCCI_INFO_IDENTIFIED != 0 {
        put("serial", format!("{:#x}", i.serial));
        put("vendor_id", format!("{:#06x}", i.vendor_id));
        put("device_id", format!("{:#06x}", i.device_id));
        put(
            "subsystem_vendor_id",
            format!("{:#06x}", i.subsys_vendor_id),
        );
        put("subsystem_id", format!("{:#06x}", i.subsys_id));
    }
    Ok(m)
}

/// Every file of a function's directory and its contents.
fn read_dir(addr: &str) -> Result<BTreeMap<String, String>> {
    let dir = dir_of(addr);
    let mut m = BTreeMap::new();
    for e in fs::read_dir(&dir).with_context(|| format!("read {}", dir.display()))? {
        let p = e?.path();
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // The lists are those of the ABI document (a host test checks that).
        ensure!(
            [ALWAYS, CXL_ONLY, IDENTITY]
                .concat()
                .contains(&name.as_str()),
            "{}: not a documented attribute",
            p.display()
        );
        let md = fs::metadata(&p).with_context(|| format!("stat {}", p.display()))?;
        ensure!(
            md.permissions().mode() & 0o777 == 0o444,
            "{} has mode {:o}, expected 444",
            p.display(),
            md.permissions().mode() & 0o777
        );
        let v = fs::read_to_string(&p).with_context(|| format!("read {}", p.display()))?;
        m.insert(name, v);
    }
    Ok(m)
}

/// Compares a function's directory with the info of its node; returns the info.
fn check_node(path: &Path) -> Result<SwcciInfo> {
    let info = Device::open(path)?.info()?;
    let addr = swcci::info_str(&info.pci_addr);
    let want = expected(&info)?;
    let got = read_dir(&addr)?;
    if got != want {
        let mut diff = Vec::new();
        for k in want
            .keys()
            .chain(got.keys())
            .collect::<std::collections::BTreeSet<_>>()
        {
            let (w, g) = (want.get(k), got.get(k));
            if w != g {
                diff.push(format!("{k}: sysfs {g:?}, info {w:?}"));
            }
        }
        bail!(
            "{} ({addr}): sysfs differs from SWCCI_IOCTL_INFO: {}",
            path.display(),
            diff.join("; ")
        );
    }
    Ok(info)
}

/// The scenario's functions bound, and their nodes: QEMU's switches (main) or every emulated
/// device (emu, with the MMPT functions bound by the module parameter).
fn bound_nodes(env: &mut Env) -> Result<Vec<PathBuf>> {
    if env.topo.emulated.is_empty() {
        env.ensure_loaded()?;
        env.nodes()
    } else {
        Ok(emu::devices(env)?.into_iter().map(|d| d.path).collect())
    }
}

/// A file's value, trimmed.
fn attr(addr: &str, name: &str) -> Result<String> {
    let p = dir_of(addr).join(name);
    Ok(fs::read_to_string(&p)
        .with_context(|| format!("read {}", p.display()))?
        .trim_end()
        .to_string())
}

pub fn equal_info(env: &mut Env) -> Result<Outcome> {
    let nodes = bound_nodes(env)?;
    ensure!(!nodes.is_empty(), "no device nodes");
    let mut infos = Vec::new();
    for p in &nodes {
        infos.push(check_node(p)?);
    }
    if env.topo.emulated.is_empty() {
        // QEMU's switches: identified, polled, and the serials are the topology's.
        let mut got: Vec<String> = Vec::new();
        for i in &infos {
            let addr = swcci::info_str(&i.pci_addr);
            got.push(attr(&addr, "serial")?);
            ensure!(
                attr(&addr, "mode")? == "poll",
                "{addr}: QEMU's CCI is polled"
            );
            ensure!(attr(&addr, "vendor_id")? == "0x19e5", "{addr}: vendor_id");
        }
        let mut want: Vec<String> = env
            .topo
            .switches
            .iter()
            .map(|s| format!("{:#x}", s.serial))
            .collect();
        got.sort();
        want.sort();
        ensure!(got == want, "serials {got:?}, topology {want:?}");
    } else {
        // The emulator: both modes side by side; MMPT functions are not identified.
        for d in emu::devices(env)? {
            let mode = attr(&d.addr, "mode")?;
            let want = if d.spec.msix { "interrupt" } else { "poll" };
            ensure!(mode == want, "{}: mode {mode}, expected {want}", d.addr);
            let has_serial = dir_of(&d.addr).join("serial").exists();
            if d.spec.personality == "switch" {
                ensure!(
                    attr(&d.addr, "serial")? == format!("{:#x}", d.spec.serial),
                    "{}: serial",
                    d.addr
                );
                ensure!(attr(&d.addr, "kind")? == "switch_cci", "{}: kind", d.addr);
            } else {
                ensure!(!has_serial, "{}: MMPT function has a serial file", d.addr);
                ensure!(attr(&d.addr, "kind")? == "mmb", "{}: kind", d.addr);
            }
        }
    }
    for i in &infos {
        let addr = swcci::info_str(&i.pci_addr);
        env.note(format!(
            "{addr}: {} files, {}",
            read_dir(&addr)?.len(),
            ["node", "mode", "serial"]
                .iter()
                .filter_map(|f| attr(&addr, f).ok().map(|v| format!("{f}={v}")))
                .collect::<Vec<_>>()
                .join(" ")
        ));
    }
    Ok(Outcome::Pass)
}

/// Reads `f` from its start; the errno on failure.
fn pread(f: &File) -> std::result::Result<String, i32> {
    let mut b = [0u8; 128];
    f.read_at(&mut b, 0)
        .map(|n| String::from_utf8_lossy(&b[..n]).into_owned())
        .map_err(|e| e.raw_os_error().unwrap_or(0))
}

/// Every device node of the driver: /dev/cxl/switch* and /dev/swcci/* ([`swcci::list`]).
fn all_nodes() -> Result<Vec<PathBuf>> {
    Ok(swcci::list()?.into_iter().map(|n| n.path).collect())
}

/// Waits until `addr` is bound and has its directory and node again (a bind through sysfs
/// returns after probe, so this normally finds it at once).
fn wait_rebound(addr: &str) -> Result<PathBuf> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        for p in all_nodes()? {
            if let Ok(i) = Device::open(&p).and_then(|d| d.info()) {
                if swcci::info_str(&i.pci_addr) == addr && dir_of(addr).exists() {
                    return Ok(p);
                }
            }
        }
        if Instant::now() > deadline {
            bail!("{addr}: no node after rebind within 10 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Reads every attribute of `addrs` in a loop until `stop`; every read must give a value
/// (equal to `fixed` for the files that cannot change) or ENODEV/ENOENT (the directory is
/// going or gone).
fn reader(
    fixed: Vec<(PathBuf, String)>,
    stop: Arc<AtomicBool>,
    reads: Arc<AtomicUsize>,
    gone: Arc<AtomicUsize>,
) -> Result<()> {
    while !stop.load(Ordering::Relaxed) {
        for (p, want) in &fixed {
            match fs::read_to_string(p) {
                Ok(v) => {
                    ensure!(&v == want, "{}: read {v:?}, expected {want:?}", p.display());
                    reads.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) if matches!(e.raw_os_error(), Some(libc::ENODEV | libc::ENOENT)) => {
                    gone.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => bail!("{}: {e}", p.display()),
            }
        }
    }
    Ok(())
}

pub fn unbind_rebind(env: &mut Env) -> Result<Outcome> {
    let nodes = bound_nodes(env)?;
    ensure!(!nodes.is_empty(), "no device nodes");
    let mut addrs = Vec::new();
    for p in &nodes {
        let info = check_node(p)?;
        addrs.push(swcci::info_str(&info.pci_addr));
    }

    // One function at a time: the directory goes with the binding, a file kept open reads
    // ENODEV (kernfs no longer calls the driver), and rebinding brings the same values back.
    for addr in &addrs {
        let before = read_dir(addr)?;
        let open = File::open(dir_of(addr).join("node"))?;
        ensure!(
            pread(&open).is_ok(),
            "{addr}: open file unreadable while bound"
        );
        env.unbind(addr)?;
        ensure!(
            !dir_of(addr).exists(),
            "{addr}: {} left after unbind",
            dir_of(addr).display()
        );
        match pread(&open) {
            Err(e) if e == libc::ENODEV => {}
            other => bail!("{addr}: read of a file open across unbind: {other:?}, expected ENODEV"),
        }
        env.bind(addr)?;
        let node = wait_rebound(addr)?;
        check_node(&node)?;
        // The modes may differ: rebinding tries interrupts again after a fallback.
        let stable = |m: BTreeMap<String, String>| {
            m.into_iter()
                .filter(|(k, _)| !k.ends_with("mode"))
                .collect::<BTreeMap<_, _>>()
        };
        ensure!(
            stable(read_dir(addr)?) == stable(before),
            "{addr}: other values after rebind"
        );
        match pread(&open) {
            Err(e) if e == libc::ENODEV => {}
            other => bail!("{addr}: stale file after rebind: {other:?}, expected ENODEV"),
        }
        env.check_kernel_log()?;
    }

    // Readers racing unbind and rebind of every function, 5 rounds.
    let mut fixed = Vec::new();
    for addr in &addrs {
        for (name, v) in read_dir(addr)? {
            // The node number may change when several functions rebind; the modes are live.
            if !matches!(name.as_str(), "node" | "mode" | "background_mode") {
                fixed.push((dir_of(addr).join(&name), v));
            }
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let (reads, gone) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let h = {
        let (stop, reads, gone) = (stop.clone(), reads.clone(), gone.clone());
        std::thread::spawn(move || reader(fixed, stop, reads, gone))
    };
    let rounds = (|| -> Result<()> {
        for round in 0..5 {
            for addr in &addrs {
                env.unbind(addr).with_context(|| format!("round {round}"))?;
            }
            for addr in &addrs {
                env.bind(addr).with_context(|| format!("round {round}"))?;
            }
            for addr in &addrs {
                wait_rebound(addr).with_context(|| format!("round {round}"))?;
            }
        }
        Ok(())
    })();
    stop.store(true, Ordering::Relaxed);
    let read = h.join().map_err(|_| anyhow!("reader panicked"))?;
    rounds?;
    read?;
    for p in bound_nodes(env)? {
        check_node(&p)?;
    }
    env.note(format!(
        "{} functions x 5 rebinds: {} reads with a value, {} ENODEV/ENOENT",
        addrs.len(),
        reads.load(Ordering::Relaxed),
        gone.load(Ordering::Relaxed)
    ));

    // rmmod with a file open: it does not pin the module, and reads ENODEV afterwards.
    let open = File::open(dir_of(&addrs[0]).join("payload_size"))?;
    env.rmmod()
        .map_err(|e| anyhow!("rmmod with a sysfs file open: {}", errno_str(e)))?;
    match pread(&open) {
        Err(e) if e == libc::ENODEV => {}
        other => bail!("read after rmmod: {other:?}, expected ENODEV"),
    }
    drop(open);
    for addr in &addrs {
        ensure!(!dir_of(addr).exists(), "{addr}: directory left after rmmod");
    }
    for p in bound_nodes(env)? {
        check_node(&p)?;
    }
    Ok(Outcome::Pass)
}

pub fn mode_follows_fallback(env: &mut Env) -> Result<Outcome> {
    let devs: Vec<emu::EmuDev> = emu::devices(env)?
        .into_iter()
        .filter(|d| d.spec.personality == "switch" && d.spec.msix)
        .collect();
    ensure!(!devs.is_empty(), "no emulated switch with MSI-X");
    for d in devs {
        ensure!(attr(&d.addr, "mode")? == "interrupt", "{}: mode", d.addr);
        ensure!(
            attr(&d.addr, "background_mode")? == "interrupt",
            "{}: background_mode",
            d.addr
        );
        let dev = d.open()?;
        let mut ctl = d.ctl()?;
        // Completions that need a wait and come without their interrupt: three in a row make
        // the driver poll.
        ctl.cmd("no-irq always")?;
        let r = (|| -> Result<()> {
            ctl.cmd("delay 50 always")?;
            for i in 0..4 {
                dev.identify().with_context(|| format!("identify {i}"))?;
            }
            Ok(())
        })();
        ctl.cmd("clear")?;
        r.with_context(|| d.addr.clone())?;
        ensure!(
            attr(&d.addr, "mode")? == "poll" && attr(&d.addr, "background_mode")? == "poll",
            "{}: sysfs still shows interrupts after the fallback",
            d.addr
        );
        check_node(&d.path)?;
        env.unbind(&d.addr)?;
        env.bind(&d.addr)?;
        let p = wait_rebound(&d.addr)?;
        ensure!(
            attr(&d.addr, "mode")? == "interrupt",
            "{}: no interrupts after rebind",
            d.addr
        );
        check_node(&p)?;
        env.note(format!(
            "{}: mode interrupt -> poll -> (rebind) interrupt",
            d.addr
        ));
    }
    Ok(Outcome::Pass)
}

/// Runs the udev helper; its stdout, or None if it exited 1 without output.
fn run_helper(script: &Path, node: &str, sysfs: Option<&Path>) -> Result<Option<String>> {
    let mut cmd = std::process::Command::new("/bin/sh");
    cmd.arg(script).arg(node);
    if let Some(s) = sysfs {
        cmd.arg(s);
    }
    let out = cmd
        .output()
        .with_context(|| format!("run {}", script.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    ensure!(
        out.stderr.is_empty(),
        "{} {node}: stderr {:?}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    match out.status.code() {
        Some(0) => Ok(Some(stdout)),
        Some(1) if stdout.is_empty() => Ok(None),
        c => bail!("{} {node}: exit {c:?}, stdout {stdout:?}", script.display()),
    }
}

/// Writes the helper to a file of its own.
fn helper_file(dir: &Path) -> Result<PathBuf> {
    let p = dir.join("cxl-swcci-serial");
    fs::write(&p, SERIAL_HELPER).with_context(|| format!("write {}", p.display()))?;
    Ok(p)
}

pub fn udev_helper(env: &mut Env) -> Result<Outcome> {
    let nodes = bound_nodes(env)?;
    let tmp = std::env::temp_dir().join(format!("swcci-sysfs-{}", std::process::id()));
    fs::create_dir_all(&tmp)?;
    let script = helper_file(&tmp)?;
    let mut linked = 0;
    for p in &nodes {
        let info = Device::open(p)?.info()?;
        let node = swcci::info_str(&info.node);
        let want =
            (info.flags & SWCCI_INFO_IDENTIFIED != 0).then(|| format!("{:#x}\n", info.serial));
        for spelling in [node.clone(), format!("/dev/{node}"), node.replace('/', "!")] {
            let got = run_helper(&script, &spelling, None)?;
            ensure!(
                got == want,
                "cxl-swcci-serial {spelling}: {got:?}, expected {want:?}"
            );
        }
        linked += usize::from(want.is_some());
    }
    // The driver hands out cxl/switch0..31.
    ensure!(
        run_helper(&script, "cxl/switch99", None)?.is_none(),
        "a serial for a node nobody has"
    );
    let _ = fs::remove_dir_all(&tmp);
    ensure!(linked > 0, "no node would get a by-serial link");
    env.note(format!(
        "{linked} of {} nodes map to a serial through the real sysfs",
        nodes.len()
    ));
    Ok(Outcome::Pass)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake sysfs tree with the driver's directory and `funcs` (address, node, serial).
    fn fake_sysfs(root: &Path, funcs: &[(&str, &str, Option<&str>)]) -> Result<()> {
        let drv = root.join("bus/pci/drivers/cxl_swcci");
        fs::create_dir_all(&drv)?;
        for f in ["bind", "unbind", "new_id", "uevent"] {
            fs::write(drv.join(f), "")?;
        }
        for (addr, node, serial) in funcs {
            let dev = root.join("devices/pci0000:00").join(addr);
            fs::create_dir_all(dev.join("cxl_swcci"))?;
            fs::write(dev.join("cxl_swcci/node"), format!("{node}\n"))?;
            if let Some(s) = serial {
                fs::write(dev.join("cxl_swcci/serial"), format!("{s}\n"))?;
            }
            std::os::unix::fs::symlink(&dev, drv.join(addr))?;
        }
        Ok(())
    }

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("swcci-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).expect("scratch dir");
        d
    }

    #[test]
    fn helper_maps_nodes_to_serials_in_a_fake_sysfs() -> Result<()> {
        let d = scratch("udev-helper");
        let root = d.join("sys");
        fake_sysfs(
            &root,
            &[
                ("0000:0d:00.1", "cxl/switch1", Some("0x1234")),
                ("0000:0e:00.1", "cxl/switch0", Some("0xfedcba9876543210")),
                ("0000:0f:00.0", "swcci/mmpt0", None),
                ("0000:10:00.1", "cxl/switch2", None),
                ("0000:11:00.1", "cxl/switch3", Some("0x12 34")),
                ("0000:12:00.1", "cxl/switch4", Some("../x")),
                ("0000:13:00.1", "cxl/switch5", Some("0x")),
            ],
        )?;
        let script = helper_file(&d)?;
        let run = |node: &str| run_helper(&script, node, Some(&root));
        assert_eq!(run("cxl/switch1")?.as_deref(), Some("0x1234\n"));
        assert_eq!(run("/dev/cxl/switch1")?.as_deref(), Some("0x1234\n"));
        assert_eq!(run("cxl!switch1")?.as_deref(), Some("0x1234\n"));
        assert_eq!(run("cxl/switch0")?.as_deref(), Some("0xfedcba9876543210\n"));
        // No serial: an MMPT function, an unidentified switch, values that are not the
        // driver's (never a path component), a node nobody has, a prefix of a node.
        for node in [
            "swcci/mmpt0",
            "cxl/switch2",
            "cxl/switch3",
            "cxl/switch4",
            "cxl/switch5",
            "cxl/switch9",
            "cxl/switch",
        ] {
            assert_eq!(run(node)?, None, "{node}");
        }
        // No function bound at all.
        let empty = d.join("empty");
        fake_sysfs(&empty, &[])?;
        assert_eq!(run_helper(&script, "cxl/switch0", Some(&empty))?, None);
        fs::remove_dir_all(&d)?;
        Ok(())
    }

    /// The ABI document describes exactly the files the tests know.
    #[test]
    fn abi_document_lists_every_attribute() {
        let doc =
            include_str!("../../../../Documentation/ABI/testing/sysfs-bus-pci-drivers-cxl_swcci");
        let mut documented: Vec<&str> = doc
            .lines()
            .filter_map(|l| l.strip_prefix("What:"))
            .filter_map(|w| w.trim().strip_prefix("/sys/bus/pci/devices/.../cxl_swcci/"))
            .filter(|a| !a.is_empty())
            .collect();
        let mut known: Vec<&str> = [ALWAYS, CXL_ONLY, IDENTITY].concat();
        documented.sort_unstable();
        known.sort_unstable();
        assert_eq!(documented, known);
        let abi = include_str!("../../../../Documentation/abi.rst");
        for a in &known {
            assert!(abi.contains(&format!("``{a}``")), "abi.rst lacks {a}");
        }
    }

    /// The expected files follow the info flags.
    #[test]
    fn expected_files_follow_info_flags() -> Result<()> {
        let mut i = SwcciInfo {
            kind: SWCCI_KIND_MMB,
            payload_size: 4096,
            ..SwcciInfo::default()
        };
        let names = |m: BTreeMap<String, String>| m.into_keys().collect::<Vec<_>>();
        let mut want: Vec<String> = ALWAYS.iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(names(expected(&i)?), want);
        i.flags = SWCCI_INFO_CXL | SWCCI_INFO_IDENTIFIED | SWCCI_INFO_IRQ;
        i.kind = SWCCI_KIND_SWITCH_CCI;
        i.serial = 0x1234;
        i.vendor_id = 0x19e5;
        let m = expected(&i)?;
        assert_eq!(m.len(), ALWAYS.len() + CXL_ONLY.len() + IDENTITY.len());
        assert_eq!(m["serial"], "0x1234\n");
        assert_eq!(m["vendor_id"], "0x19e5\n");
        assert_eq!(m["device_id"], "0x0000\n");
        assert_eq!(m["mode"], "interrupt\n");
        assert_eq!(m["background_mode"], "poll\n");
        assert_eq!(m["kind"], "switch_cci\n");
        assert_eq!(m["payload_size"], "4096\n");
        Ok(())
    }
}
