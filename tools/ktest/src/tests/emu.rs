// SPDX-License-Identifier: GPL-2.0

//! Against the device emulator (scenario `emu`): MMPT binding and messaging, interrupts and
//! polling side by side (each personality is served twice, with and without MSI-X), background
//! commands, and every fault the emulator can inject. Each test asserts the errno, the return
//! code, the data and the kernel log line, and that the device works afterwards (or is cleanly
//! failed until rebind).

use crate::ctl::Ctl;
use crate::env::{errno_str, lib_errno, Env};
use crate::Outcome;
use anyhow::{anyhow, bail, ensure, Context, Result};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use swcci::proto::mmpt::MmptCode;
use swcci::proto::rc::ReturnCode;
use swcci::proto::uapi::{
    SwcciBgPolicy, SWCCI_BG_ABORT_ON_TIMEOUT, SWCCI_INFO_IRQ, SWCCI_INFO_MMB, SWCCI_INFO_MMPT,
    SWCCI_KIND_MMB, SWCCI_KIND_SWITCH_CCI,
};
use swcci::topology::Emulated;
use swcci::{Device, MmptRecv};

/// PCI id of the MMPT personality, which has no class code: bound with `driver_override`.
const MMPT_ID: (u16, u16) = (0x1b36, 0x5c02);
/// The emulator's background sleep command (input: u32 milliseconds).
pub(crate) const SLEEP: u16 = 0xc000;

/// One emulated device and its node.
pub struct EmuDev {
    pub spec: Emulated,
    pub path: PathBuf,
    pub addr: String,
}

impl EmuDev {
    pub fn open(&self) -> Result<Device> {
        Ok(Device::open(&self.path)?)
    }

    pub fn ctl(&self) -> Result<Ctl> {
        Ctl::open(&self.spec.control)
    }

    /// `ADDR (MODE)`, naming the device in notes.
    pub fn label(&self) -> String {
        format!("{} ({})", self.addr, self.mode())
    }

    pub fn mode(&self) -> &'static str {
        if self.spec.msix {
            "interrupts"
        } else {
            "polling"
        }
    }
}

/// Binds every MMPT function with `driver_override`, as Documentation/mmpt.rst tells BMC
/// images to (the setting stays while the module is unloaded and reloaded, not when the
/// function is removed: a rescan brings a new device, which the udev rule of mmpt.rst sets up
/// again; this does what that rule does).
pub(crate) fn bind_mmb_functions(env: &Env) -> Result<()> {
    for d in env.pci_devices()? {
        if (d.vendor, d.device) != MMPT_ID {
            continue;
        }
        let attr = format!("/sys/bus/pci/devices/{}/driver_override", d.addr);
        if std::fs::read_to_string(&attr)?.trim() != "cxl_swcci" {
            env.sysfs_write(&attr, "cxl_swcci")?;
        }
        if env.driver_of(&d.addr).is_none() {
            // Already bound by a concurrent probe: EBUSY/ENODEV are fine, the wait below
            // tells.
            let _ = env.sysfs_write("/sys/bus/pci/drivers_probe", &d.addr);
        }
    }
    Ok(())
}

/// Whether an emulated device is one of the scenario's common functions, which every test
/// binds and uses: not a function kept for one test (the MSI-only one, `--msi`, with a PCI
/// device id of its own and no `driver_override`, stays unbound until its test binds it).
pub fn common(spec: &Emulated) -> bool {
    !spec.args.iter().any(|a| a == "--msi")
}

/// Loads the module so that every common emulated device ([`common`]) is bound, and maps
/// devices to nodes.
pub fn devices(env: &mut Env) -> Result<Vec<EmuDev>> {
    let specs: Vec<Emulated> = env
        .topo
        .emulated
        .iter()
        .filter(|s| common(s))
        .cloned()
        .collect();
    let want_mmpt = specs.iter().filter(|s| s.personality == "mmpt").count();
    if !env.module_loaded() {
        env.load("")?;
    }
    bind_mmb_functions(env)?;
    // Rebind anything an earlier (failed) test left unbound.
    for d in env.pci_devices()? {
        if d.vendor == 0x1b36 && d.device == 0x5c01 && env.driver_of(&d.addr).is_none() {
            let _ = env.bind(&d.addr);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if env.mmpt_nodes()?.len() >= want_mmpt
            && env.nodes()?.len() + env.mmpt_nodes()?.len() >= specs.len()
        {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "{} switch and {} MMPT nodes after 15 s",
                env.nodes()?.len(),
                env.mmpt_nodes()?.len()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut out = Vec::new();
    let infos: Vec<(PathBuf, swcci::proto::uapi::SwcciInfo)> = swcci::list()?
        .into_iter()
        .filter_map(|n| Some((n.path, n.info.ok()?)))
        .collect();
    for spec in specs {
        let found = infos.iter().find(|(_, i)| {
            i.pci_vendor == spec.vendor
                && i.pci_device == spec.device
                && if spec.personality == "switch" {
                    i.serial == spec.serial
                } else {
                    (i.flags & SWCCI_INFO_IRQ != 0) == spec.msix
                }
        });
        let (path, info) = found.with_context(|| format!("no node for emulated {spec:?}"))?;
        out.push(EmuDev {
            spec,
            path: path.clone(),
            addr: swcci::info_str(&info.pci_addr),
        });
    }
    Ok(out)
}

pub(crate) fn switches(env: &mut Env) -> Result<Vec<EmuDev>> {
    Ok(devices(env)?
        .into_iter()
        .filter(|d| d.spec.personality == "switch")
        .collect())
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let t = Instant::now();
    let r = f();
    (r, t.elapsed())
}

pub(crate) fn find_log(env: &mut Env, addr: &str, needle: &str) -> Result<String> {
    env.kmsg();
    env.history
        .iter()
        .rev()
        .find(|l| l.contains(addr) && l.contains(needle))
        .cloned()
        .with_context(|| format!("no kernel log line for {addr} containing {needle:?}"))
}

pub fn bind(env: &mut Env) -> Result<Outcome> {
    env.ensure_unloaded()?;
    let devs = devices(env)?;
    for d in &devs {
        let info = d.open()?.info()?;
        let line = find_log(env, &d.addr, "payload 2048 B")?;
        env.note(line.clone());
        ensure!(
            info.flags & SWCCI_INFO_MMB != 0,
            "{}: not found as an MMB",
            d.addr
        );
        ensure!(
            info.flags & SWCCI_INFO_MMPT != 0,
            "{}: no MMPT registers",
            d.addr
        );
        ensure!(
            (info.flags & SWCCI_INFO_IRQ != 0) == d.spec.msix,
            "{}: irq flag {:#x}",
            d.addr,
            info.flags
        );
        if d.spec.personality == "switch" {
            ensure!(info.kind == SWCCI_KIND_SWITCH_CCI, "kind {}", info.kind);
            ensure!(d.path.starts_with("/dev/cxl"), "{}", d.path.display());
            ensure!(
                line.contains(&format!("1b36:5c01 serial {:#x}", d.spec.serial)),
                "{line}"
            );
            // The probe line names how completion is signalled.
            ensure!(
                line.contains(if d.spec.msix {
                    ", interrupts (MSI-X),"
                } else {
                    ", polling"
                }),
                "{line}"
            );
            // And how events are: the event logs' interrupt, or the Event Status register.
            ensure!(
                line.contains(if d.spec.msix {
                    ", event interrupts,"
                } else {
                    ", events polled,"
                }),
                "{line}"
            );
        } else {
            ensure!(info.kind == SWCCI_KIND_MMB, "kind {}", info.kind);
            ensure!(d.path.starts_with("/dev/swcci"), "{}", d.path.display());
            let rx = if d.spec.msix {
                "MMPT receive interrupts (MSI-X)"
            } else {
                "MMPT receive polling"
            };
            ensure!(line.contains(rx), "{line}");
        }
        env.check_node_mode(&d.path)?;
    }
    Ok(Outcome::Pass)
}

pub fn bind_by_driver_override(env: &mut Env) -> Result<Outcome> {
    env.ensure_unloaded()?;
    for d in env.pci_devices()? {
        if (d.vendor, d.device) == MMPT_ID {
            env.sysfs_write(
                &format!("/sys/bus/pci/devices/{}/driver_override", d.addr),
                "\n",
            )?;
        }
    }
    env.load("")?;
    std::thread::sleep(Duration::from_millis(200));
    ensure!(
        env.mmpt_nodes()?.is_empty(),
        "MMPT functions bound without an id: {:?}",
        env.mmpt_nodes()?
    );
    // 7.3's Rust PCI layer keeps a pointer to the entry's data in driver_data, and new_id only
    // accepts driver_data values of existing entries: new_id is refused for Rust drivers.
    let new_id = std::fs::write(format!("{}/new_id", crate::env::DRIVER_DIR), "1b36 5c02");
    ensure!(
        new_id.as_ref().err().and_then(|e| e.raw_os_error()) == Some(libc::EINVAL),
        "new_id: {new_id:?} (if this kernel accepts it now, update Documentation/mmpt.rst)"
    );
    let mmpt: Vec<String> = env
        .pci_devices()?
        .into_iter()
        .filter(|d| (d.vendor, d.device) == MMPT_ID)
        .map(|d| d.addr)
        .collect();
    for addr in &mmpt {
        env.sysfs_write(
            &format!("/sys/bus/pci/devices/{addr}/driver_override"),
            "cxl_swcci",
        )?;
        env.sysfs_write("/sys/bus/pci/drivers_probe", addr)?;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while env.mmpt_nodes()?.len() < mmpt.len() {
        if Instant::now() > deadline {
            bail!(
                "driver_override bound {} of {} MMPT functions",
                env.mmpt_nodes()?.len(),
                mmpt.len()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    env.rmmod()
        .map_err(|e| anyhow!("rmmod: {}", errno_str(e)))?;
    for addr in &mmpt {
        env.sysfs_write(
            &format!("/sys/bus/pci/devices/{addr}/driver_override"),
            "\n",
        )?;
    }
    devices(env)?;
    Ok(Outcome::Pass)
}

pub fn irq_vs_poll(env: &mut Env) -> Result<Outcome> {
    for d in devices(env)? {
        let dev = d.open()?;
        let mut ctl = d.ctl()?;
        let (irqs0, kirqs0) = (ctl.get("irqs")?, env.stat(&d.addr, "irqs")?);
        // Each command completes 5 ms after its doorbell, so the driver waits for every
        // completion: a command that completed at the doorbell check would leave its
        // interrupt to arrive with the next ones, which QEMU merges into one when the host
        // is slow.
        with_fault(&mut ctl, "delay 5 always", |_| {
            for _ in 0..20 {
                if d.spec.personality == "switch" {
                    dev.identify()?;
                } else {
                    // Receive Message with an empty queue: a quick command every personality
                    // has.
                    let r = dev.mmb_command(0x0101, 1, &[0; 16], 64)?;
                    ensure!(
                        MmptCode::from_raw(r.rc) == MmptCode::NoMessage,
                        "rc {:#x}",
                        r.rc
                    );
                }
            }
            Ok(())
        })?;
        let (irqs, kirqs) = (
            ctl.get("irqs")? - irqs0,
            env.stat(&d.addr, "irqs")? - kirqs0,
        );
        let mode = std::fs::read_to_string(env.debugfs(&d.addr).join("stats"))?;
        if d.spec.msix {
            // One per command is sent; QEMU merges signals it has not read yet, so a few may
            // arrive as one.
            ensure!(
                irqs >= 20 && (10..=irqs).contains(&kirqs),
                "{}: {irqs} sent, {kirqs} taken for 20 commands",
                d.addr
            );
            ensure!(mode.contains("mode: interrupt"), "{}: {mode}", d.addr);
        } else {
            ensure!(
                irqs == 0 && kirqs == 0,
                "{}: polling device got {irqs}/{kirqs} interrupts",
                d.addr
            );
            ensure!(mode.contains("mode: poll"), "{}: {mode}", d.addr);
        }
        env.note(format!("{}: {irqs} interrupts for 20 commands", d.label()));
    }
    Ok(Outcome::Pass)
}

/// The chip-name prefix of the MSI-X vectors of a PCI function on the topology's machine: the
/// MSI parent domain's `msi_parent_ops::prefix` followed by the PCI/MSI-X device domain's name
/// (kernel/irq/msi.c, msi_domain_template naming; drivers/pci/msi/irqdomain.c). The x86 vector
/// domain has no prefix; arm64 `virt` has a GICv3 ITS ("ITS-"), ARMv7 `virt` a GICv2m frame
/// ("GICv2m-"), and the AST2600 and AST2700 the MSI domain of their PCIe H2X bridge
/// ("ASPEED-", drivers/pci/controller/pcie-aspeed.c).
fn msix_chip_prefix(arch: &str, machine: &str) -> Result<&'static str> {
    Ok(match (arch, machine) {
        ("x86_64", "q35" | "") => "PCI-MSIX-",
        ("arm64", "virt" | "") => "ITS-PCI-MSIX-",
        ("arm", "virt" | "") => "GICv2m-PCI-MSIX-",
        ("arm", "ast2600-evb") | ("arm64", "ast2700a2-evb") => "ASPEED-PCI-MSIX-",
        _ => bail!("no MSI controller known for {arch} on machine {machine:?}"),
    })
}

/// On an Aspeed SoC machine, the devname of the PCIe root complex the devices are behind (its
/// platform device: `reg` 0x1e770000 in tools/testing/dts/aspeed-ast2600-evb-swcci.dts,
/// 0x120e0000 in ast2700-evb-swcci.dts), the name of its interrupt (GIC SPI 168 and 56): every
/// MSI of every function below it arrives through that interrupt.
fn aspeed_pcie_irq_name(machine: &str) -> Option<&'static str> {
    match machine {
        "ast2600-evb" => Some("1e770000.pcie"),
        "ast2700a2-evb" => Some("120e0000.pcie"),
        _ => None,
    }
}

/// An interrupt as /sys/kernel/irq/N describes it: its count summed over CPUs, its chip
/// name and the names of its handlers (empty for an interrupt nobody requested).
struct Irq {
    count: u64,
    chip: String,
    actions: String,
}

/// /sys/kernel/irq/`n` (CONFIG_SPARSE_IRQ, which x86_64, arm64 and ARM multiplatform select).
fn irq_info(n: u32) -> Result<Irq> {
    let dir = format!("/sys/kernel/irq/{n}");
    let read = |f: &str| -> Result<String> {
        Ok(std::fs::read_to_string(format!("{dir}/{f}"))
            .with_context(|| format!("read {dir}/{f}"))?
            .trim()
            .to_string())
    };
    let count = read("per_cpu_count")?
        .split(',')
        .map(|c| {
            c.trim()
                .parse::<u64>()
                .with_context(|| format!("{dir}/per_cpu_count: {c:?}"))
        })
        .sum::<Result<u64>>()?;
    Ok(Irq {
        count,
        chip: read("chip_name")?,
        actions: read("actions")?,
    })
}

/// The interrupt whose handler is named `name` (the first, by number).
fn irq_by_action(name: &str) -> Result<Option<u32>> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/sys/kernel/irq").context("read /sys/kernel/irq")? {
        let Ok(n) = e?.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if irq_info(n)?.actions.split(',').any(|a| a == name) {
            found.push(n);
        }
    }
    Ok(found.into_iter().min())
}

/// The MSI/MSI-X interrupts of a PCI function (`msi_irqs` in sysfs; none without MSI).
fn msi_irqs(addr: &str) -> Result<Vec<u32>> {
    let dir = format!("/sys/bus/pci/devices/{addr}/msi_irqs");
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return Ok(Vec::new());
    };
    let mut v = Vec::new();
    for e in rd {
        let name = e?.file_name().to_string_lossy().into_owned();
        v.push(
            name.parse()
                .with_context(|| format!("{dir}: entry {name:?} is not an interrupt number"))?,
        );
    }
    v.sort_unstable();
    Ok(v)
}

/// How completion is signalled on this machine: each emulated function with MSI-X says
/// `interrupts` in its probe line, its vectors belong to the machine's MSI controller (on the
/// AST2600 the MSI domain of the SoC's PCIe root complex), and commands that complete 5 ms
/// after their doorbell are each signalled through them (on the AST2600 also through the root
/// complex's own interrupt, which every MSI below it goes through); each function without
/// MSI-X says `polling` and has no vector.
pub fn msi_controller(env: &mut Env) -> Result<Outcome> {
    let prefix = msix_chip_prefix(&env.topo.arch, &env.topo.machine)?;
    let rc_name = aspeed_pcie_irq_name(&env.topo.machine);
    for d in devices(env)? {
        let line = find_log(env, &d.addr, "payload 2048 B")?;
        let irqs = msi_irqs(&d.addr)?;
        if !d.spec.msix {
            ensure!(
                line.contains("polling") && !line.contains(", interrupts ("),
                "{}: probe line of a function without MSI-X: {line}",
                d.addr
            );
            ensure!(irqs.is_empty(), "{}: MSI interrupts {irqs:?}", d.addr);
            env.note(format!("{}: polling, no vector", d.label()));
            continue;
        }
        let want = if d.spec.personality == "switch" {
            ", interrupts (MSI-X),"
        } else {
            "MMPT receive interrupts (MSI-X)"
        };
        ensure!(line.contains(want), "{}: probe line {line}", d.addr);
        ensure!(!irqs.is_empty(), "{}: no MSI-X vector in sysfs", d.addr);
        let chip = format!("{prefix}{}", d.addr);
        let count =
            |irqs: &[u32]| -> Result<u64> { irqs.iter().map(|n| Ok(irq_info(*n)?.count)).sum() };
        for n in &irqs {
            let i = irq_info(*n)?;
            ensure!(
                i.chip == chip,
                "{}: interrupt {n} belongs to {:?} (handlers {:?}), expected {chip:?}",
                d.addr,
                i.chip,
                i.actions
            );
        }
        let taken0 = count(&irqs)?;
        let rc_irq = match rc_name {
            Some(name) => {
                let n = irq_by_action(name)?
                    .with_context(|| format!("no interrupt handler {name} in /sys/kernel/irq"))?;
                Some((name, n, irq_info(n)?.count))
            }
            None => None,
        };
        let dev = d.open()?;
        let mut ctl = d.ctl()?;
        with_fault(&mut ctl, "delay 5 always", |_| {
            for _ in 0..20 {
                if d.spec.personality == "switch" {
                    dev.identify()?;
                } else {
                    let r = dev.mmb_command(0x0101, 1, &[0; 16], 64)?;
                    ensure!(
                        MmptCode::from_raw(r.rc) == MmptCode::NoMessage,
                        "rc {:#x}",
                        r.rc
                    );
                }
            }
            Ok(())
        })?;
        let taken = count(&irqs)? - taken0;
        // One interrupt per command; QEMU may merge a few that arrive before the last one
        // was handled (emu_interrupts_and_polling).
        ensure!(
            (10..=40).contains(&taken),
            "{}: {taken} interrupts on {chip} for 20 commands",
            d.addr
        );
        let mut note = format!("{}: {taken} interrupts on {chip}", d.label());
        if let Some((name, n, c0)) = rc_irq {
            let c1 = irq_info(n)?.count;
            // Each MSI sets a bit the root complex's handler clears once per interrupt:
            // every MSI the function's vectors took is one root complex interrupt (others,
            // from the virtio console, come on top).
            ensure!(
                c1 - c0 >= taken,
                "{}: {taken} MSIs but only {} interrupts of {name} (irq {n})",
                d.addr,
                c1 - c0
            );
            note.push_str(&format!(", {} on {name} (irq {n})", c1 - c0));
        }
        env.note(note);
    }
    Ok(Outcome::Pass)
}

pub(crate) fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

pub fn mmpt_round_trip(env: &mut Env) -> Result<Outcome> {
    for d in devices(env)? {
        let dev = d.open()?;
        let payload = dev.payload_size()?;
        for (len, what) in [
            (1, "1 byte"),
            (payload - 16, "exactly one payload"),
            (3 * payload + 5, "several payloads"),
            (100 * 1024, "100 KiB"),
        ] {
            let data = pattern(len, len as u8);
            let code = dev.mmpt_send(0x01, &data)?;
            ensure!(code == MmptCode::Success, "{} send {what}: {code}", d.addr);
            match dev.mmpt_recv(len, 5000)? {
                MmptRecv::Message {
                    msg_type,
                    data: got,
                } => {
                    ensure!(msg_type == 0x01, "{} {what}: type {msg_type}", d.addr);
                    ensure!(
                        got == data,
                        "{} {what}: {} bytes back, data differs",
                        d.addr,
                        got.len()
                    );
                }
                other => bail!("{} {what}: {other:?}", d.addr),
            }
        }
        env.note(format!(
            "{}: 1 B, {} B, {} B and 100 KiB round-tripped",
            d.label(),
            payload - 16,
            3 * payload + 5
        ));
    }
    Ok(Outcome::Pass)
}

pub fn mmpt_receive_timeout(env: &mut Env) -> Result<Outcome> {
    for d in devices(env)? {
        let dev = d.open()?;
        let (r, t) = timed(|| lib_errno(dev.mmpt_recv(64, 300)));
        match r {
            Err(e) if e == libc::ETIMEDOUT => {}
            other => bail!(
                "{}: receive with nothing queued: {other:?}, expected ETIMEDOUT",
                d.addr
            ),
        }
        ensure!(
            t >= Duration::from_millis(300) && t < Duration::from_secs(3),
            "{}: waited {t:?}",
            d.addr
        );
        match lib_errno(dev.mmpt_recv(64, 0)) {
            Err(e) if e == libc::EAGAIN => {}
            other => bail!(
                "{}: non-waiting receive: {other:?}, expected EAGAIN",
                d.addr
            ),
        }
        // A message queued while a receiver waits wakes it (interrupt or poll).
        let mut ctl = d.ctl()?;
        let path = d.path.clone();
        let h = std::thread::spawn(move || -> Result<(MmptRecv, Duration)> {
            let dev = Device::open(&path)?;
            let t = Instant::now();
            let r = dev.mmpt_recv(64, 5000)?;
            Ok((r, t.elapsed()))
        });
        std::thread::sleep(Duration::from_millis(200));
        ctl.cmd("queue 4 c0ffee")?;
        let (r, t) = h.join().map_err(|_| anyhow!("receiver panicked"))??;
        ensure!(
            r == MmptRecv::Message {
                msg_type: 4,
                data: vec![0xc0, 0xff, 0xee]
            },
            "{}: {r:?}",
            d.addr
        );
        env.note(format!("{}: woken {t:?} after starting to wait", d.label()));
    }
    Ok(Outcome::Pass)
}

pub fn mmpt_small_buffer(env: &mut Env) -> Result<Outcome> {
    for d in devices(env)? {
        let dev = d.open()?;
        let mut ctl = d.ctl()?;
        let data = pattern(100, 7);
        let hex: String = data.iter().map(|b| format!("{b:02x}")).collect();
        ctl.cmd(&format!("queue 2 {hex}"))?;
        let r = dev.mmpt_recv(10, 1000)?;
        ensure!(
            r == MmptRecv::TooBig {
                msg_type: 2,
                len: 100
            },
            "{}: 10-byte buffer: {r:?}",
            d.addr
        );
        let r = dev.mmpt_recv(100, 1000)?;
        ensure!(
            r == MmptRecv::Message { msg_type: 2, data },
            "{}: then {r:?}",
            d.addr
        );
    }
    Ok(Outcome::Pass)
}

pub fn mmpt_inline_response(env: &mut Env) -> Result<Outcome> {
    for d in devices(env)? {
        let dev = d.open()?;
        let mut ctl = d.ctl()?;
        ctl.cmd("set inline 1")?;
        let res = (|| -> Result<()> {
            ensure!(dev.mmpt_send(3, b"inline")? == MmptCode::Success, "send");
            ensure!(
                ctl.get("queue")? == 0,
                "the response was queued on the device, not returned inline"
            );
            let r = dev.mmpt_recv(64, 0)?;
            ensure!(
                r == MmptRecv::Message {
                    msg_type: 3,
                    data: b"inline".to_vec()
                },
                "{r:?}"
            );
            Ok(())
        })();
        ctl.cmd("set inline 0")?;
        res.with_context(|| d.addr.clone())?;
    }
    Ok(Outcome::Pass)
}

pub fn mmpt_raw_command(env: &mut Env) -> Result<Outcome> {
    for d in devices(env)? {
        let dev = d.open()?;
        let r = dev.mmb_command(0x0101, 1, &[0u8; 16], 64)?;
        ensure!(
            MmptCode::from_raw(r.rc) == MmptCode::NoMessage,
            "{}: empty receive: {:#x}",
            d.addr,
            r.rc
        );
        // A Send Message part out of order.
        let mut input = [0u8; 20];
        input[4] = 2; // continue
        input[8] = 0x10; // offset 16
        let r = dev.mmb_command(0x0100, 1, &input, 64)?;
        ensure!(
            MmptCode::from_raw(r.rc) == MmptCode::TransferOutOfOrder,
            "{}: out of order: {:#x}",
            d.addr,
            r.rc
        );
        if d.spec.personality == "switch" {
            let r = dev.mmb_command(0x0001, 0, &[], 64)?;
            ensure!(
                r.rc == 0 && r.out.len() == 18,
                "{}: Identify through the MMB ioctl: {r:?}",
                d.addr
            );
        }
    }
    Ok(Outcome::Pass)
}

/// Runs `f` with the fault armed by `arm`, then clears the emulator.
fn with_fault<T>(ctl: &mut Ctl, arm: &str, f: impl FnOnce(&mut Ctl) -> Result<T>) -> Result<T> {
    ctl.cmd(arm)?;
    let r = f(ctl);
    ctl.cmd("clear")?;
    r
}

pub fn fault_doorbell_stuck(env: &mut Env) -> Result<Outcome> {
    for d in switches(env)? {
        let dev = d.open()?;
        let mut ctl = d.ctl()?;
        let (r, t) = with_fault(&mut ctl, "doorbell-stuck once", |_| {
            let (r, t) = timed(|| lib_errno(dev.raw(0x0001, &[], 64)));
            match r {
                Err(e) if e == libc::ETIMEDOUT => {}
                other => bail!("stuck doorbell: {other:?}, expected ETIMEDOUT"),
            }
            // The doorbell is still set: the next command is refused, not sent.
            let busy = lib_errno(dev.raw(0x0001, &[], 64));
            ensure!(
                busy == Err(libc::EBUSY),
                "next command: {busy:?}, expected EBUSY"
            );
            Ok((r, t))
        })
        .with_context(|| d.addr.clone())?;
        let _ = r;
        ensure!(
            t >= Duration::from_millis(1900) && t < Duration::from_secs(5),
            "{}: gave up after {t:?}",
            d.addr
        );
        let line = find_log(env, &d.addr, "no completion within 2000 ms")?;
        env.note(line);
        ensure!(
            dev.identify()?.serial == d.spec.serial,
            "{}: not usable after clear",
            d.addr
        );
    }
    Ok(Outcome::Pass)
}

pub fn fault_delay(env: &mut Env) -> Result<Outcome> {
    for d in switches(env)? {
        let dev = d.open()?;
        let mut ctl = d.ctl()?;
        let sleeps0 = env.stat(&d.addr, "sleeps")? + env.stat(&d.addr, "irq_waits")?;
        let (r, t) = with_fault(&mut ctl, "delay 300 once", |_| Ok(timed(|| dev.identify())))?;
        r?;
        ensure!(
            t >= Duration::from_millis(300),
            "{}: completed after {t:?}",
            d.addr
        );
        let sleeps = env.stat(&d.addr, "sleeps")? + env.stat(&d.addr, "irq_waits")? - sleeps0;
        // Interrupt mode: re-checks after 100 and 300 ms, and the interrupt; polling: growing
        // sleeps, neither a spin per microsecond nor one long sleep.
        let most = if d.spec.msix { 4 } else { 100 };

        ensure!(
            (1..=most).contains(&sleeps),
            "{}: {sleeps} sleeps for one 300 ms wait",
            d.addr
        );
        env.note(format!(
            "{}: 300 ms delay took {t:?} with {sleeps} sleeps",
            d.label()
        ));
    }
    Ok(Outcome::Pass)
}

pub fn fault_bad_length(env: &mut Env) -> Result<Outcome> {
    for d in switches(env)? {
        let dev = d.open()?;
        let mut ctl = d.ctl()?;
        let r = with_fault(&mut ctl, "bad-length once", |_| {
            Ok(lib_errno(dev.raw(0x0001, &[], 2048)))
        })?;
        ensure!(r == Err(libc::EIO), "{}: {r:?}, expected EIO", d.addr);
        let line = find_log(env, &d.addr, "more than its 2048-byte payload")?;
        env.note(line);
        dev.identify()?;
    }
    Ok(Outcome::Pass)
}

pub fn fault_unknown_rc(env: &mut Env) -> Result<Outcome> {
    for d in switches(env)? {
        let dev = d.open()?;
        let mut ctl = d.ctl()?;
        let before = env.stat(&d.addr, "rc_unknown").unwrap_or(0);
        let r = with_fault(&mut ctl, "rc 0x1234 once", |_| {
            Ok(dev.raw(0x0001, &[], 64)?)
        })?;
        ensure!(
            r.rc == ReturnCode::Unknown(0x1234) && r.out.is_empty(),
            "{}: {r:?}",
            d.addr
        );
        ensure!(
            env.stat(&d.addr, "rc_unknown")? == before + 1,
            "{}: rc_unknown not counted",
            d.addr
        );
        dev.identify()?;
    }
    Ok(Outcome::Pass)
}

pub(crate) fn sleep_input(ms: u32) -> [u8; 4] {
    ms.to_le_bytes()
}

pub fn bg_completes(env: &mut Env) -> Result<Outcome> {
    for d in switches(env)? {
        let dev = d.open()?;
        let mut ctl = d.ctl()?;
        // Progress is visible from another thread while the caller waits.
        let path = d.path.clone();
        let watcher = std::thread::spawn(move || -> Result<Vec<u8>> {
            let dev = Device::open(&path)?;
            let mut seen = Vec::new();
            for _ in 0..12 {
                std::thread::sleep(Duration::from_millis(50));
                let s = dev.bg_status()?;
                if s.running {
                    seen.push(s.percent);
                }
            }
            Ok(seen)
        });
        let (r, t) = timed(|| dev.raw(SLEEP, &sleep_input(600), 0));
        let r = r?;
        let seen = watcher.join().map_err(|_| anyhow!("watcher panicked"))??;
        ensure!(
            r.rc == ReturnCode::Success,
            "{}: background sleep: {}",
            d.addr,
            r.rc
        );
        ensure!(
            t >= Duration::from_millis(600),
            "{}: returned after {t:?}",
            d.addr
        );
        ensure!(
            seen.windows(2).all(|w| w[0] <= w[1]) && seen.len() >= 3,
            "{}: progress {seen:?}",
            d.addr
        );
        ensure!(
            seen.first() < seen.last(),
            "{}: progress did not advance: {seen:?}",
            d.addr
        );
        // The final return code is the background one.
        ctl.cmd("set bg-rc 4")?;
        let r = dev.raw(SLEEP, &sleep_input(100), 0);
        ctl.cmd("set bg-rc 0")?;
        ensure!(r?.rc == ReturnCode::InternalError, "{}: final rc", d.addr);
        if d.spec.msix {
            ensure!(
                env.stat(&d.addr, "bg_completed")? >= 2,
                "{}: bg_completed",
                d.addr
            );
        }
        env.note(format!(
            "{}: 600 ms operation in {t:?}, progress {seen:?}",
            d.label()
        ));
    }
    Ok(Outcome::Pass)
}

fn short_policy(dev: &Device, flags: u32) -> Result<()> {
    dev.bg_policy(SwcciBgPolicy {
        timeout_ms: 300,
        flags,
    })?;
    Ok(())
}

pub fn bg_timeout_abort(env: &mut Env) -> Result<Outcome> {
    for d in switches(env)? {
        let dev = d.open()?;
        short_policy(&dev, SWCCI_BG_ABORT_ON_TIMEOUT)?;
        let (r, t) = timed(|| lib_errno(dev.raw(SLEEP, &sleep_input(5000), 0)));
        ensure!(
            r == Err(libc::ETIMEDOUT),
            "{}: {r:?}, expected ETIMEDOUT",
            d.addr
        );
        ensure!(t < Duration::from_secs(3), "{}: took {t:?}", d.addr);
        let line = find_log(env, &d.addr, "background command c000h timed out")?;
        ensure!(line.contains("aborted: aborted (12h)"), "{line}");
        env.note(line);
        let s = dev.bg_status()?;
        ensure!(
            !s.running && s.rc == ReturnCode::Aborted,
            "{}: after abort {s:?}",
            d.addr
        );
        dev.identify()?;
    }
    Ok(Outcome::Pass)
}

pub fn bg_abort_unsupported(env: &mut Env) -> Result<Outcome> {
    for d in switches(env)? {
        let dev = d.open()?;
        let mut ctl = d.ctl()?;
        short_policy(&dev, SWCCI_BG_ABORT_ON_TIMEOUT)?;
        ctl.cmd("set abort-supported 0")?;
        let r = lib_errno(dev.raw(SLEEP, &sleep_input(1200), 0));
        ctl.cmd("set abort-supported 1")?;
        ensure!(r == Err(libc::ETIMEDOUT), "{}: {r:?}", d.addr);
        let line = find_log(env, &d.addr, "abort not supported, still running")?;
        env.note(line);
        let stats = std::fs::read_to_string(env.debugfs(&d.addr).join("stats"))?;
        ensure!(
            stats.contains("bg_running: c000"),
            "{}: not tracked:\n{stats}",
            d.addr
        );
        // Foreground commands run meanwhile; once it finished the next command records it.
        dev.identify()?;
        std::thread::sleep(Duration::from_millis(1300));
        dev.identify()?;
        let stats = std::fs::read_to_string(env.debugfs(&d.addr).join("stats"))?;
        ensure!(
            stats.contains("bg_running: none"),
            "{}: still tracked:\n{stats}",
            d.addr
        );
    }
    Ok(Outcome::Pass)
}

pub fn bg_stuck(env: &mut Env) -> Result<Outcome> {
    for d in switches(env)? {
        let dev = d.open()?;
        let mut ctl = d.ctl()?;
        short_policy(&dev, SWCCI_BG_ABORT_ON_TIMEOUT)?;
        for (arm, pct) in [("bg-stuck 40 once", 40), ("bg-never once", 99)] {
            let r = with_fault(&mut ctl, arm, |_| {
                Ok(lib_errno(dev.raw(SLEEP, &sleep_input(200), 0)))
            })?;
            ensure!(r == Err(libc::ETIMEDOUT), "{} {arm}: {r:?}", d.addr);
            let line = find_log(env, &d.addr, &format!("timed out at {pct}%"))?;
            ensure!(line.contains("aborted"), "{line}");
            env.note(line);
            dev.identify()?;
        }
    }
    Ok(Outcome::Pass)
}

extern "C" fn on_sigusr1(_: libc::c_int) {}

pub fn bg_signal(env: &mut Env) -> Result<Outcome> {
    // A handler without SA_RESTART: the ioctl returns EINTR.
    // SAFETY: installing a handler that does nothing.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigusr1 as *const () as usize;
        libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut());
    }
    for d in switches(env)? {
        let dev = d.open()?;
        let path = d.path.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = std::thread::spawn(
            move || -> Result<(std::result::Result<ReturnCode, i32>, Duration)> {
                // SAFETY: pthread_self has no preconditions.
                tx.send(unsafe { libc::pthread_self() })
                    .map_err(|_| anyhow!("send"))?;
                let dev = Device::open(&path)?;
                let (r, t) =
                    timed(|| lib_errno(dev.raw(SLEEP, &sleep_input(1500), 0)).map(|r| r.rc));
                Ok((r, t))
            },
        );
        let tid = rx.recv()?;
        std::thread::sleep(Duration::from_millis(300));
        // SAFETY: `tid` is a live thread of this process (it waits in the ioctl).
        unsafe { libc::pthread_kill(tid, libc::SIGUSR1) };
        let (r, t) = waiter.join().map_err(|_| anyhow!("waiter panicked"))??;
        ensure!(
            r == Err(libc::EINTR),
            "{}: signalled wait: {r:?}, expected EINTR",
            d.addr
        );
        ensure!(
            t < Duration::from_millis(1400),
            "{}: returned after {t:?}",
            d.addr
        );
        // Not lost: tracked, the next command is correct, and it finishes on its own.
        let stats = std::fs::read_to_string(env.debugfs(&d.addr).join("stats"))?;
        ensure!(stats.contains("bg_running: c000"), "{}:\n{stats}", d.addr);
        ensure!(
            dev.identify()?.serial == d.spec.serial,
            "{}: next command",
            d.addr
        );
        std::thread::sleep(Duration::from_millis(1500));
        let s = dev.bg_status()?;
        ensure!(
            !s.running && s.percent == 100 && s.rc == ReturnCode::Success,
            "{}: {s:?}",
            d.addr
        );
        env.note(format!(
            "{}: EINTR after {t:?}; the operation completed on its own",
            d.label()
        ));
    }
    Ok(Outcome::Pass)
}

pub fn irq_missed_fallback(env: &mut Env) -> Result<Outcome> {
    let devs: Vec<EmuDev> = switches(env)?.into_iter().filter(|d| d.spec.msix).collect();
    for d in devs {
        let dev = d.open()?;
        let mut ctl = d.ctl()?;
        // Only commands that make the driver wait need their interrupt: delay them.
        let r = with_fault(&mut ctl, "no-irq always", |ctl| {
            ctl.cmd("delay 50 always")?;
            for i in 0..4 {
                let (r, t) = timed(|| dev.identify());
                r.with_context(|| format!("identify {i} without interrupts"))?;
                ensure!(t < Duration::from_millis(1000), "identify {i} took {t:?}");
            }
            Ok(())
        });
        r.with_context(|| d.addr.clone())?;
        let line = find_log(
            env,
            &d.addr,
            "completions without their interrupt: falling back to polling",
        )?;
        env.note(line);
        ensure!(
            dev.info()?.flags & SWCCI_INFO_IRQ == 0,
            "{}: still in interrupt mode",
            d.addr
        );
        ensure!(
            env.stat(&d.addr, "missed_irqs")? >= 3,
            "{}: missed_irqs",
            d.addr
        );
        // Rebinding brings interrupts back.
        env.unbind(&d.addr)?;
        env.bind(&d.addr)?;
        let dev = devices(env)?
            .into_iter()
            .find(|x| x.addr == d.addr)
            .context("rebound")?;
        ensure!(
            dev.open()?.info()?.flags & SWCCI_INFO_IRQ != 0,
            "{}: no interrupts after rebind",
            d.addr
        );
    }
    Ok(Outcome::Pass)
}

pub fn spurious_irqs(env: &mut Env) -> Result<Outcome> {
    let devs: Vec<EmuDev> = devices(env)?.into_iter().filter(|d| d.spec.msix).collect();
    for d in devs {
        let dev = d.open()?;
        let mut ctl = d.ctl()?;
        let before = env.stat(&d.addr, "spurious_irqs")?;
        ctl.cmd("spurious-irq 5")?;
        // The emulator sends them 10 ms apart; wait until it has sent them all, then give the
        // last one time to arrive.
        let sent_by = std::time::Instant::now() + Duration::from_secs(10);
        while ctl.get("stat spurious-pending")? > 0 {
            ensure!(
                std::time::Instant::now() < sent_by,
                "{}: the emulator did not send its spurious interrupts",
                d.addr
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(100));
        let n = env.stat(&d.addr, "spurious_irqs")? - before;
        // QEMU merges eventfd signals it has not read yet into one interrupt, so a busy host
        // delivers fewer than were sent (down to one); never more, and never none.
        ensure!(
            (1..=5).contains(&n),
            "{}: {n} spurious interrupts counted for 5",
            d.addr
        );
        if d.spec.personality == "switch" {
            dev.identify()?;
        }
        env.note(format!(
            "{}: {n} of 5 spurious interrupts counted, device fine",
            d.addr
        ));
    }
    Ok(Outcome::Pass)
}

pub fn ready_never(env: &mut Env) -> Result<Outcome> {
    for d in switches(env)? {
        let mut ctl = d.ctl()?;
        env.unbind(&d.addr)?;
        ctl.cmd("ready-never")?;
        ctl.cmd("reset")?;
        let r = env.bind(&d.addr);
        ensure!(
            r.is_err(),
            "{}: bound although the mailbox never became ready",
            d.addr
        );
        let line = find_log(env, &d.addr, "mailbox never became ready")?;
        env.note(line);
        ctl.cmd("clear")?;
        ctl.cmd("reset")?;
        env.bind(&d.addr)?;
        let dev = devices(env)?
            .into_iter()
            .find(|x| x.addr == d.addr)
            .context("rebound")?;
        ensure!(
            dev.open()?.identify()?.serial == d.spec.serial,
            "{}: after recovery",
            d.addr
        );
    }
    Ok(Outcome::Pass)
}

pub fn surprise_remove(env: &mut Env) -> Result<Outcome> {
    for d in switches(env)? {
        let mut ctl = d.ctl()?;
        ctl.cmd("delay 1000 once")?;
        let path = d.path.clone();
        let h = std::thread::spawn(
            move || -> Result<(std::result::Result<(), i32>, Duration)> {
                let dev = Device::open(&path)?;
                Ok(timed(|| lib_errno(dev.raw(0x0001, &[], 64)).map(|_| ())))
            },
        );
        std::thread::sleep(Duration::from_millis(200));
        ctl.cmd("surprise-remove")?;
        let (r, t) = h.join().map_err(|_| anyhow!("thread panicked"))??;
        ensure!(
            r == Err(libc::ENXIO),
            "{}: command in flight at removal: {r:?}",
            d.addr
        );
        ensure!(
            t < Duration::from_millis(1500),
            "{}: noticed after {t:?}",
            d.addr
        );
        let line = find_log(env, &d.addr, "device not responding")?;
        env.note(line);
        let dev = d.open()?;
        ensure!(
            lib_errno(dev.identify()) == Err(libc::ENXIO),
            "{}: failed device accepted a command",
            d.addr
        );
        ctl.cmd("clear")?;
        env.unbind(&d.addr)?;
        env.bind(&d.addr)?;
        let fresh = devices(env)?
            .into_iter()
            .find(|x| x.addr == d.addr)
            .context("rebound")?;
        ensure!(
            fresh.open()?.identify()?.serial == d.spec.serial,
            "{}: after rebind",
            d.addr
        );
    }
    Ok(Outcome::Pass)
}

pub fn unload(env: &mut Env) -> Result<Outcome> {
    devices(env)?;
    env.rmmod()
        .map_err(|e| anyhow!("rmmod: {}", errno_str(e)))?;
    ensure!(
        env.mmpt_nodes()?.is_empty(),
        "MMPT nodes left: {:?}",
        env.mmpt_nodes()?
    );
    // A node asked for without the driver: the error says why it is missing.
    let e = swcci::Device::open("switch0")
        .err()
        .ok_or_else(|| anyhow!("switch0 opened after rmmod"))?;
    ensure!(
        e.to_string()
            == "open /dev/cxl/switch0 (cxl_swcci is not loaded): ENOENT (No such file or directory)",
        "open after rmmod: {e}"
    );
    Ok(Outcome::Pass)
}

/// Arms an emulator fault of the reset/removal contract (tools/emu/src/control.rs); `None`
/// when this emulator does not know it yet (the test then skips, naming the command).
fn arm_contract(ctl: &mut Ctl, line: &str) -> Result<Option<()>> {
    match ctl.cmd(line) {
        Ok(_) => Ok(Some(())),
        Err(e) if e.to_string().contains("unknown command") => Ok(None),
        Err(e) => Err(e),
    }
}

/// Rebinds a function a fault left failed or reset, and returns its node again.
pub(crate) fn recover(env: &mut Env, d: &EmuDev, ctl: &mut Ctl) -> Result<EmuDev> {
    ctl.cmd("clear")?;
    env.unbind(&d.addr)?;
    ctl.cmd("reset")?;
    env.bind(&d.addr)?;
    devices(env)?
        .into_iter()
        .find(|x| x.addr == d.addr)
        .context("rebound")
}

/// Runs `f` until it stops failing with EBUSY (a function that just reset sets its doorbell
/// until it is ready again), at most 50 times, 10 ms apart.
pub(crate) fn settle<T>(
    mut f: impl FnMut() -> std::result::Result<T, i32>,
) -> std::result::Result<T, i32> {
    for _ in 0..50 {
        match f() {
            Err(e) if e == libc::EBUSY => std::thread::sleep(Duration::from_millis(10)),
            r => return r,
        }
    }
    f()
}

pub fn fault_reset_or_removal_after_completion(env: &mut Env) -> Result<Outcome> {
    for d in switches(env)? {
        let mut ctl = d.ctl()?;
        let want = d.open()?.raw(0x0001, &[], 64)?.out;
        let mut errors = 0;
        // The readout of an Identify is a dozen register reads; faults after each of them,
        // and after all of them.
        for n in 0..16 {
            let dev = d.open()?;
            if arm_contract(&mut ctl, &format!("reset-after-reads {n} once"))?.is_none() {
                return Ok(Outcome::Skip(
                    "the emulator has no reset-after-reads yet (branch emu)".into(),
                ));
            }
            let r = lib_errno(dev.raw(0x0001, &[], 64));
            ctl.cmd("clear")?;
            match &r {
                Ok(r) => ensure!(
                    r.out == want,
                    "{}: reset after {n} reads: success with other data",
                    d.addr
                ),
                Err(e) if *e == libc::EIO => errors += 1,
                Err(e) => bail!("{}: reset after {n} reads: {}", d.addr, errno_str(*e)),
            }
            ensure!(
                n > 0 || r.is_err(),
                "{}: reset at the completion went unnoticed",
                d.addr
            );
            // The function works again once it is ready.
            let again = settle(|| lib_errno(dev.raw(0x0001, &[], 64)));
            let again = match again {
                Ok(a) => a,
                Err(e) => bail!("{}: after a reset: {}", d.addr, errno_str(e)),
            };
            ensure!(again.out == want, "{}: after a reset", d.addr);
        }
        let line = find_log(env, &d.addr, "changed under the command")?;
        env.note(format!(
            "{}: {errors} of 16 resets noticed (EIO); {line}",
            d.label()
        ));
        for n in [0u32, 1, 3, 6] {
            let dev = d.open()?;
            if arm_contract(&mut ctl, &format!("remove-after-reads {n} once"))?.is_none() {
                return Ok(Outcome::Skip(
                    "the emulator has no remove-after-reads yet (branch emu)".into(),
                ));
            }
            let r = lib_errno(dev.raw(0x0001, &[], 64));
            match &r {
                Ok(r) => ensure!(
                    r.out == want,
                    "{}: removal after {n} reads: wrong data",
                    d.addr
                ),
                Err(e) => ensure!(
                    *e == libc::ENXIO,
                    "{}: removal after {n} reads: {}",
                    d.addr,
                    errno_str(*e)
                ),
            }
            ensure!(
                n > 0 || r.is_err(),
                "{}: removal at completion went unnoticed",
                d.addr
            );
            recover(env, &d, &mut ctl)?;
        }
    }
    Ok(Outcome::Pass)
}

pub fn fault_reset_or_removal_mid_message(env: &mut Env) -> Result<Outcome> {
    for d in devices(env)? {
        let mut ctl = d.ctl()?;
        let payload = d.open()?.payload_size()?;
        let data = pattern(3 * payload + 5, 9);
        for (arm, want) in [
            ("reset-at-part 2 once", libc::EIO),
            ("remove-at-part 3 once", libc::ENXIO),
        ] {
            let dev = d.open()?;
            if arm_contract(&mut ctl, arm)?.is_none() {
                return Ok(Outcome::Skip(format!(
                    "the emulator has no `{arm}` yet (branch emu)"
                )));
            }
            let r = lib_errno(dev.mmpt_send(0x01, &data));
            ensure!(
                r == Err(want),
                "{} {arm}: send gave {r:?}, expected {}",
                d.addr,
                errno_str(want)
            );
            let d = recover(env, &d, &mut ctl)?;
            // Nothing of the broken message arrives; a whole one round-trips.
            let dev = d.open()?;
            ensure!(
                lib_errno(dev.mmpt_recv(data.len(), 0)).is_err(),
                "{} {arm}: a message arrived",
                d.addr
            );
            ensure!(
                dev.mmpt_send(0x01, &data)? == MmptCode::Success,
                "{}: resend",
                d.addr
            );
            match dev.mmpt_recv(data.len(), 5000)? {
                MmptRecv::Message { data: got, .. } => {
                    ensure!(got == data, "{} {arm}: echo differs after recovery", d.addr)
                }
                other => bail!("{} {arm}: {other:?}", d.addr),
            }
        }
    }
    Ok(Outcome::Pass)
}

pub fn fault_short_cel(env: &mut Env) -> Result<Outcome> {
    for d in switches(env)? {
        let mut ctl = d.ctl()?;
        for (n, entries) in [(8u32, 2u32), (10, 2), (0, 0)] {
            env.unbind(&d.addr)?;
            if arm_contract(&mut ctl, &format!("short-log {n} always"))?.is_none() {
                env.bind(&d.addr)?;
                return Ok(Outcome::Skip(
                    "the emulator has no short-log yet (branch emu)".into(),
                ));
            }
            env.bind(&d.addr)?;
            let fresh = devices(env)?
                .into_iter()
                .find(|x| x.addr == d.addr)
                .context("rebound")?;
            ctl.cmd("clear")?;
            let info = fresh.open()?.info()?;
            ensure!(
                info.cel_entries == entries,
                "{} short-log {n}: {} CEL entries, expected {entries}",
                d.addr,
                info.cel_entries
            );
            let line = find_log(env, &d.addr, "ended the CEL after")?;
            ensure!(
                line.contains(&format!("using {entries} commands")),
                "{line}"
            );
            env.note(line);
            let probe = find_log(env, &d.addr, "payload 2048 B")?;
            ensure!(
                probe.contains(&format!("CEL {entries} commands")),
                "{probe}"
            );
        }
        env.unbind(&d.addr)?;
        env.bind(&d.addr)?;
    }
    devices(env)?;
    Ok(Outcome::Pass)
}
