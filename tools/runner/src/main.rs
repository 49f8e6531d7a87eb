// SPDX-License-Identifier: GPL-2.0

//! swcci-runner: boots QEMU guests with emulated CXL switches and runs the in-guest suite.
//!
//! For each scenario (one boot): builds an initramfs (busybox, the module, the guest programs,
//! the topology as JSON), starts QEMU (TCG by default) with the kernel console on a pipe and the
//! test output on a virtio console written to a file, prints test results as they arrive, kills
//! a guest that stops making progress, and judges the boot: every KTAP test passed, a summary
//! line arrived, and the kernel log has no oops, BUG, WARN, KASAN, UBSAN, lockdep,
//! sleep-in-atomic, hung-task, kmemleak or other report (`swcci::kernel_log`, the list the
//! in-guest suite also judges by; reports of failures injected on purpose excepted).
//! Logs go to OUT/<arch>/<scenario>/{kernel.log,tests.log,qemu.log}.

mod cpio;
mod topology;

use anyhow::{bail, Context, Result};
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use swcci::kernel_log::Classifier;
use topology::{Attach, Ports, Topology};

/// A device served by the emulator in a scenario.
#[derive(Clone, Copy, Debug)]
struct EmuSpec {
    personality: &'static str,
    msix: bool,
    /// Also an MCTP endpoint over the serial binding, on a virtio console of its own
    /// (`swcci-emu --mctp`).
    mctp: bool,
    /// Further options of the emulator (its fabric).
    args: &'static [&'static str],
}

/// The fabric of the first emulated switch (`swcci topology`, bind and unbind tests): port 0
/// upstream, type-3 devices on ports 1, 2 and 4, an MLD with 4 LDs on port 3, a device that
/// never answers on port 5; 6 vPPBs, so one stays unbound after the start-up bindings.
const EMU_FABRIC: &[&str] = &[
    "--ports",
    "6",
    "--vppbs",
    "6",
    "--mld-port",
    "3",
    "--lds",
    "4",
    "--dead-port",
    "5",
];

/// The emulated devices of the `emu` scenarios: each personality with and without MSI-X, so
/// interrupt and polling mode run the same tests side by side.
const EMU_DEVICES: &[EmuSpec] = &[
    EmuSpec {
        personality: "switch",
        msix: true,
        mctp: false,
        args: EMU_FABRIC,
    },
    SWITCH_POLLED,
    MMPT_MSIX,
    EmuSpec {
        personality: "mmpt",
        msix: false,
        mctp: false,
        args: &[],
    },
];

/// An emulated switch without a fabric, polled (no MSI-X).
const SWITCH_POLLED: EmuSpec = EmuSpec {
    personality: "switch",
    msix: false,
    mctp: false,
    args: &[],
};

/// An emulated MMPT function with MSI-X.
const MMPT_MSIX: EmuSpec = EmuSpec {
    personality: "mmpt",
    msix: true,
    mctp: false,
    args: &[],
};

/// An MSI-only MMPT function (8 messages; its interrupt message numbers follow Multiple
/// Message Enable), with a PCI device id of its own so that nothing binds it before the test
/// of its interrupt vectors does.
const MMPT_MSI: EmuSpec = EmuSpec {
    personality: "mmpt",
    msix: false,
    mctp: false,
    args: &["--msi", "8", "--device", "0x5c05"],
};

/// The `emu` scenario's devices: [`EMU_DEVICES`] and the MSI-only function.
const EMU_SCENARIO_DEVICES: &[EmuSpec] = &[
    EMU_DEVICES[0],
    EMU_DEVICES[1],
    EMU_DEVICES[2],
    EMU_DEVICES[3],
    MMPT_MSI,
];

/// Fabric of the emulated switches of the firmware scenarios: type-3 devices behind ports 1
/// and 2, a multi-logical device with 2 LDs behind port 3 (devices updated through tunnels).
const EMU_FW_FABRIC: &[&str] = &["--mld-port", "3", "--lds", "2"];

/// The emulated devices of the firmware scenarios: the switch personality with and without
/// MSI-X, each with [`EMU_FW_FABRIC`] (beside QEMU's switch, whose type-3 devices are reached
/// through tunnels). The first is also an MCTP endpoint (the MCTP tests and benchmark).
const EMU_FW_DEVICES: &[EmuSpec] = &[
    EmuSpec {
        personality: "switch",
        msix: true,
        mctp: true,
        args: EMU_FW_FABRIC,
    },
    EmuSpec {
        personality: "switch",
        msix: false,
        mctp: false,
        args: EMU_FW_FABRIC,
    },
];

/// Scenarios whose QEMU switch has a Dynamic Capacity Device: its first type-3 device gets
/// two DC regions (1 GiB each, 2 MiB blocks, after its 256 MiB of persistent memory): the
/// pooling tests and benchmark (Documentation/pooling.rst).
const DCD_SCENARIOS: &[&str] = &["fw", "bench-fw"];

/// The EID of an emulated switch's MCTP endpoint, and of the guest's end of the link.
const MCTP_EID: u8 = 9;
const MCTP_LOCAL_EID: u8 = 8;

/// The devices of the hardened and fuzz scenarios beside QEMU's switch: one emulated switch
/// (polled) and one MMPT function (interrupts), so both node kinds and both completion
/// modes are fuzzed and abused.
const ABUSE_DEVICES: &[EmuSpec] = &[SWITCH_POLLED, MMPT_MSIX];

/// One boot of the bench.
#[derive(Clone, Debug)]
struct Scenario {
    name: &'static str,
    switches: usize,
    type3: usize,
    cmdline: &'static str,
    /// Prints every guest line (the demo).
    verbose: bool,
    /// Devices served by swcci-emu.
    emulated: &'static [EmuSpec],
}

/// A scenario with one QEMU switch and the abuse devices, for the hardened kernel.
const fn abuse(name: &'static str, verbose: bool) -> Scenario {
    Scenario {
        name,
        switches: 1,
        type3: 2,
        cmdline: "",
        verbose,
        emulated: ABUSE_DEVICES,
    }
}

/// A scenario with QEMU's switches only.
const fn qemu(
    name: &'static str,
    switches: usize,
    cmdline: &'static str,
    verbose: bool,
) -> Scenario {
    Scenario {
        name,
        switches,
        type3: 2,
        cmdline,
        verbose,
        emulated: &[],
    }
}

/// A benchmark with `switches` QEMU switches of `type3` type-3 devices each.
const fn qemu_sized(name: &'static str, switches: usize, type3: usize) -> Scenario {
    Scenario {
        type3,
        ..qemu(name, switches, "", true)
    }
}

/// A scenario with the emulated devices only.
const fn emu(name: &'static str, verbose: bool) -> Scenario {
    Scenario {
        name,
        switches: 0,
        type3: 0,
        cmdline: "",
        verbose,
        emulated: EMU_DEVICES,
    }
}

const SCENARIOS: &[Scenario] = &[
    qemu("demo", 1, "", true),
    qemu("main", 2, "", false),
    qemu("taint", 1, "", false),
    qemu("taint-strict", 1, "", false),
    qemu("lockdown", 1, "lockdown=integrity", false),
    Scenario {
        emulated: EMU_SCENARIO_DEVICES,
        ..emu("emu", false)
    },
    qemu("bench", 1, "", true),
    Scenario {
        cmdline: "",
        ..emu("bench-emu", true)
    },
    Scenario {
        name: "fw",
        switches: 1,
        type3: 2,
        cmdline: "",
        verbose: false,
        emulated: EMU_FW_DEVICES,
    },
    Scenario {
        name: "bench-fw",
        switches: 1,
        type3: 2,
        cmdline: "",
        verbose: true,
        emulated: EMU_FW_DEVICES,
    },
    Scenario {
        cmdline: "",
        ..qemu_sized("bench-topology", 8, 4)
    },
    abuse("hardened", false),
    abuse("fuzz", false),
];

/// Kernel parameters of every x86_64 boot: x86's boot-time check that the timer interrupt
/// ticks during a short TSC delay panics ("IO-APIC + timer doesn't work!") when a busy host
/// starves the vCPU under TCG; skip it.
const X86_CMDLINE: &str = "no_timer_check";

/// The QEMU machine a guest boots, by the architecture name the runner is given (`--arch`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Machine {
    /// x86_64 on `q35`, the switches behind a CXL host bridge.
    Q35,
    /// arm64 on `virt` (Cortex-A57, GICv3 with an ITS).
    Virt64,
    /// ARMv7 on `virt` (Cortex-A15, GICv2 with its v2m MSI frame).
    Virt32,
    /// ARMv7 on `ast2600-evb`: the AST2600 BMC SoC (two Cortex-A7), everything behind the
    /// SoC's own PCIe root complex, MSIs through its H2X bridge.
    Ast2600,
    /// arm64 on `ast2700a2-evb`: the AST2700 BMC SoC (four Cortex-A35), everything behind the
    /// SoC's first PCIe root complex, MSIs through its H2X bridge.
    Ast2700,
}

impl Machine {
    /// The machine of an architecture name (`x86_64`, `arm64`, `arm`, `ast2600`).
    fn of(arch: &str) -> Option<Self> {
        match arch {
            "x86_64" => Some(Self::Q35),
            "arm64" => Some(Self::Virt64),
            "arm" => Some(Self::Virt32),
            "ast2600" => Some(Self::Ast2600),
            "ast2700" => Some(Self::Ast2700),
            _ => None,
        }
    }

    /// The guest's CPU architecture (what the guest programs are built for).
    fn cpu_arch(self) -> &'static str {
        match self {
            Self::Q35 => "x86_64",
            Self::Virt64 | Self::Ast2700 => "arm64",
            Self::Virt32 | Self::Ast2600 => "arm",
        }
    }

    /// QEMU's name of the machine.
    fn qemu_name(self) -> &'static str {
        match self {
            Self::Q35 => "q35",
            Self::Virt64 | Self::Virt32 => "virt",
            Self::Ast2600 => "ast2600-evb",
            Self::Ast2700 => "ast2700a2-evb",
        }
    }

    /// A BMC SoC board: a device tree (`--dtb`), everything behind the SoC's PCIe root
    /// complex, no power-off.
    fn is_soc(self) -> bool {
        matches!(self, Self::Ast2600 | Self::Ast2700)
    }
}

/// The boot ROM of the `ast2700a2-evb` runs (QEMU's `-bios`, mapped at address 0): Debian's
/// QEMU 11.1 has no AST2700 boot ROM (`ast27x0_bootrom.bin`), without which the machine does
/// not start, and no TF-A, so there is no PSCI. When QEMU loads the kernel itself it starts the
/// secondary cores at EL2 at 0x1e6e2190, in the 32-bit SMP boot stub hw/arm/aspeed.c writes for
/// the AST2600 (seen with `-d int`: an undefined instruction there on each Cortex-A35), so they
/// take an exception to VBAR_EL2, which is 0 after reset: this ROM. Each of its 16 exception
/// vector entries holds a spin-table pen (ARM64 Linux boot protocol,
/// Documentation/arch/arm64/booting.rst): wait for an event, read the release address
/// 0x4_3000_0000 (the first word of the region the SoC's device tree reserves for TF-A,
/// no-map for Linux), and jump to it once it is not zero.
/// tools/testing/dts/ast2700-evb-swcci.dts gives the secondary cores `enable-method =
/// "spin-table"` with that `cpu-release-addr`. Assembled with aarch64-linux-gnu-as from:
/// `ldr x1, 1f; 2: wfe; ldr x0, [x1]; cbz x0, 2b; br x0; nop; 1: .quad 0x430000000`.
const AST2700_SPIN_PEN: [u32; 8] = [
    0x5800_00c1, // ldr x1, 0x18
    0xd503_205f, // wfe
    0xf940_0020, // ldr x0, [x1]
    0xb4ff_ffc0, // cbz x0, 0x4
    0xd61f_0000, // br x0
    0xd503_201f, // nop
    0x3000_0000, // .quad 0x4_3000_0000 (low word)
    0x0000_0004, // (high word)
];

/// The ROM image: [`AST2700_SPIN_PEN`] at each exception vector entry (every 0x80 bytes of the
/// first 2 KiB), zeros up to 4 KiB.
fn ast2700_spin_rom() -> Vec<u8> {
    let mut pen = Vec::new();
    for w in AST2700_SPIN_PEN {
        pen.extend_from_slice(&w.to_le_bytes());
    }
    let mut rom = vec![0u8; 4096];
    for entry in rom[..0x800].chunks_mut(0x80) {
        entry[..pen.len()].copy_from_slice(&pen);
    }
    rom
}

/// Kernel parameters of every ast2600 and ast2700 boot: the init script ends the boot with a
/// restart (`swcci.off=reboot`, see INIT); and no I/O space is reserved for hot-plug bridges
/// (`pci=hpiosize=0`): QEMU does not map the root complex's I/O window into the CPU's address
/// space, so the device tree gives the host bridge none, and each hot-plug-capable port's
/// default 4 KiB reservation could only fail to be assigned ("bridge window [io size ...]:
/// failed to assign" for every port). No device here has an I/O BAR.
const SOC_CMDLINE: &str = "swcci.off=reboot pci=hpiosize=0";

/// The default scenarios of a test run.
const DEFAULT_SCENARIOS: &str = "main,taint,taint-strict,lockdown,emu,fw";

struct Args {
    arch: String,
    machine: Machine,
    /// The device tree of a SoC board (`ast2600`), from tools/setup/dtb.sh.
    dtb: Option<PathBuf>,
    kernel: PathBuf,
    module: PathBuf,
    /// Another build of the module, measured beside `module` by the benchmarks (guest path
    /// /swcci/cxl_swcci-base.ko; tools/bench.sh --base).
    base_module: Option<PathBuf>,
    /// The module built without its fwctl device (`make SWCCI_FWCTL=n`; guest path
    /// /swcci/cxl_swcci-nofwctl.ko), which the hardened scenario loads too.
    nofwctl_module: Option<PathBuf>,
    guest_bin: PathBuf,
    busybox: PathBuf,
    qemu_dir: PathBuf,
    emu: PathBuf,
    out: PathBuf,
    scenarios: Vec<String>,
    filter: String,
    switches: Option<usize>,
    type3: Option<usize>,
    timeout: u64,
    idle_timeout: u64,
    kvm: bool,
    /// The fuzzer's seed and ioctls per node kind (kernel command line `swcci.fuzz_*`).
    fuzz_seed: Option<String>,
    fuzz_iters: Option<u64>,
    /// What the boot runs on (QEMU, kernel source, toolchain versions): the first line of each
    /// of its logs.
    provenance: String,
}

fn usage() -> ! {
    eprintln!(
        "usage: swcci-runner --arch x86_64|arm64|arm|ast2600|ast2700 [--dtb DTB] --kernel IMAGE --module KO [--base-module KO] [--module-without-fwctl KO] --guest-bin DIR --busybox BIN \\
       --qemu-dir DIR [--emu SWCCI-EMU] --out DIR [--scenario a,b,...] [--filter TEST] [--switches N] [--type3 N] \\
       [--timeout SECS] [--idle-timeout SECS] [--kvm] [--fuzz-seed N] [--fuzz-iters N] [--provenance TEXT]
scenarios: {}",
        SCENARIOS.iter().map(|s| s.name).collect::<Vec<_>>().join(", ")
    );
    std::process::exit(2)
}

/// The value of a numeric option, or the usage after a message that names the option and the
/// value (not a number, or too large for it).
fn number<T: std::str::FromStr>(opt: &str, v: String) -> T {
    v.parse().unwrap_or_else(|_| {
        eprintln!("swcci-runner: {opt} {v}: not a number, or too large");
        usage()
    })
}

fn parse_args() -> Args {
    let mut a = Args {
        arch: "x86_64".into(),
        machine: Machine::Q35,
        dtb: None,
        kernel: PathBuf::new(),
        module: PathBuf::new(),
        base_module: None,
        nofwctl_module: None,
        guest_bin: PathBuf::new(),
        busybox: PathBuf::from("/bin/busybox"),
        qemu_dir: PathBuf::new(),
        emu: PathBuf::new(),
        out: PathBuf::from("out"),
        scenarios: DEFAULT_SCENARIOS.split(',').map(String::from).collect(),
        filter: String::new(),
        switches: None,
        type3: None,
        timeout: 1200,
        idle_timeout: 300,
        kvm: false,
        fuzz_seed: None,
        fuzz_iters: None,
        provenance: String::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().unwrap_or_else(|| usage());
        match k.as_str() {
            "--arch" => {
                a.arch = v();
                a.machine = Machine::of(&a.arch).unwrap_or_else(|| usage());
            }
            "--dtb" => a.dtb = Some(v().into()),
            "--kernel" => a.kernel = v().into(),
            "--module" => a.module = v().into(),
            "--base-module" => a.base_module = Some(v().into()),
            "--module-without-fwctl" => a.nofwctl_module = Some(v().into()),
            "--guest-bin" => a.guest_bin = v().into(),
            "--busybox" => a.busybox = v().into(),
            "--qemu-dir" => a.qemu_dir = v().into(),
            "--emu" => a.emu = v().into(),
            "--out" => a.out = v().into(),
            "--scenario" => {
                a.scenarios = v()
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            }
            "--filter" => a.filter = v(),
            "--switches" => a.switches = Some(number("--switches", v())),
            "--type3" => a.type3 = Some(number("--type3", v())),
            "--timeout" => a.timeout = number("--timeout", v()),
            "--idle-timeout" => a.idle_timeout = number("--idle-timeout", v()),
            "--kvm" => a.kvm = true,
            "--fuzz-seed" => {
                let v = v();
                let ok = match v.strip_prefix("0x") {
                    Some(h) => u64::from_str_radix(h, 16).is_ok(),
                    None => v.parse::<u64>().is_ok(),
                };
                if !ok {
                    eprintln!(
                        "swcci-runner: --fuzz-seed {v}: not a 64-bit number (decimal or 0x hex)"
                    );
                    usage();
                }
                a.fuzz_seed = Some(v);
            }
            "--fuzz-iters" => a.fuzz_iters = Some(number("--fuzz-iters", v())),
            "--provenance" => a.provenance = v(),
            _ => usage(),
        }
    }
    a
}

/// The init script of the guest.
const INIT: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug
mount -t securityfs securityfs /sys/kernel/security
mount -t tmpfs tmpfs /tmp
arg() { sed -n "s/.*swcci\.$1=\([^ ]*\).*/\1/p" /proc/cmdline; }
scenario=$(arg scenario)
filter=$(arg filter)
i=0
while [ ! -e /dev/hvc0 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
exec >/dev/hvc0 2>&1
echo "swcci: guest up, scenario $scenario, kernel $(uname -r)"
/swcci/bin/swcci-ktest --scenario "$scenario" --filter "$filter"
echo "swcci: guest done"
sync
# The AST2600 and AST2700 have no power-off here (no PSCI, no pm_power_off): "poweroff" would
# halt them and QEMU would keep running. Their restart (the watchdog's) ends QEMU, which runs
# with -no-reboot.
if [ "$(arg off)" = reboot ]; then reboot -f; else poweroff -f; fi
"#;

fn build_initramfs(args: &Args, topo: &Topology, path: &Path) -> Result<()> {
    let mut c = cpio::Cpio::default();
    for d in [
        "bin",
        "dev",
        "proc",
        "sys",
        "tmp",
        "etc",
        "etc/swcci",
        "swcci",
        "swcci/bin",
        "root",
    ] {
        c.dir(d);
    }
    c.chardev("dev/console", 5, 1);
    c.chardev("dev/null", 1, 3);
    let read = |p: &Path| fs::read(p).with_context(|| format!("read {}", p.display()));
    c.file("bin/busybox", 0o755, &read(&args.busybox)?);
    c.symlink("bin/sh", "busybox");
    c.file("init", 0o755, INIT.as_bytes());
    c.file("swcci/cxl_swcci.ko", 0o644, &read(&args.module)?);
    if let Some(base) = &args.base_module {
        c.file("swcci/cxl_swcci-base.ko", 0o644, &read(base)?);
    }
    if let Some(m) = &args.nofwctl_module {
        c.file("swcci/cxl_swcci-nofwctl.ko", 0o644, &read(m)?);
    }
    for e in fs::read_dir(&args.guest_bin)
        .with_context(|| format!("read {}", args.guest_bin.display()))?
    {
        let e = e?;
        if e.file_type()?.is_file() {
            let name = e.file_name().to_string_lossy().into_owned();
            c.file(&format!("swcci/bin/{name}"), 0o755, &read(&e.path())?);
        }
    }
    c.file(
        "etc/swcci/topology.json",
        0o644,
        serde_json::to_string_pretty(topo)?.as_bytes(),
    );
    let mut f = fs::File::create(path)?;
    c.write_to(&mut f)?;
    Ok(())
}

/// Counts of one boot.
#[derive(Default, Debug)]
struct Tally {
    passed: usize,
    failed: usize,
    skipped: usize,
    summary: bool,
    failed_names: Vec<String>,
}

fn parse_ktap(text: &str) -> Tally {
    let mut t = Tally::default();
    for l in text.lines() {
        let l = l.trim_end();
        if let Some(rest) = l.strip_prefix("not ok ") {
            t.failed += 1;
            t.failed_names
                .push(rest.split_whitespace().nth(1).unwrap_or("?").to_string());
        } else if let Some(rest) = l.strip_prefix("ok ") {
            if rest.contains("# SKIP") {
                t.skipped += 1;
            } else {
                t.passed += 1;
            }
        } else if l.ends_with(" failed") && l.contains(" passed, ") {
            t.summary = true;
        }
    }
    t
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn qemu_command(
    args: &Args,
    sc: &Scenario,
    work: &Path,
    initrd: &Path,
    topo: &Topology,
) -> Result<Command> {
    let (bin, console, mut base): (&str, &str, Vec<String>) = match args.machine {
        Machine::Q35 => (
            "qemu-system-x86_64",
            "ttyS0",
            vec!["-M".into(), "q35,cxl=on".into(), "-m".into(), "2G".into()],
        ),
        Machine::Virt64 => (
            "qemu-system-aarch64",
            "ttyAMA0",
            vec![
                "-M".into(),
                "virt,gic-version=3".into(),
                "-cpu".into(),
                "cortex-a57".into(),
                "-m".into(),
                "2G".into(),
            ],
        ),
        Machine::Virt32 => (
            "qemu-system-arm",
            "ttyAMA0",
            vec![
                "-M".into(),
                "virt,highmem=off".into(),
                "-cpu".into(),
                "cortex-a15".into(),
                "-m".into(),
                "1G".into(),
            ],
        ),
        Machine::Ast2700 => {
            let dtb = args
                .dtb
                .as_ref()
                .context("the ast2700 machine needs --dtb (tools/setup/dtb.sh)")?;
            let rom = work.join("ast2700-spin-rom.bin");
            fs::write(&rom, ast2700_spin_rom())
                .with_context(|| format!("write {}", rom.display()))?;
            // The EVB's console is UART12 (ttyS0, QEMU's first serial port there); 1 GiB of
            // RAM at 0x4_0000_0000 as its device tree has.
            (
                "qemu-system-aarch64",
                "ttyS0",
                vec![
                    "-M".into(),
                    "ast2700a2-evb".into(),
                    "-m".into(),
                    "1G".into(),
                    "-bios".into(),
                    rom.display().to_string(),
                    "-dtb".into(),
                    dtb.display().to_string(),
                ],
            )
        }
        Machine::Ast2600 => {
            let dtb = args
                .dtb
                .as_ref()
                .context("the ast2600 machine needs --dtb (tools/setup/dtb.sh)")?;
            // The EVB's console is UART5 (ttyS4, QEMU's first serial port there). 2 GiB of
            // RAM: with VMSPLIT_2G the top of it is high memory, as on a 2 GiB BMC.
            (
                "qemu-system-arm",
                "ttyS4",
                vec![
                    "-M".into(),
                    "ast2600-evb".into(),
                    "-m".into(),
                    "2G".into(),
                    "-dtb".into(),
                    dtb.display().to_string(),
                ],
            )
        }
    };
    // The AST2700 has four cores and QEMU's machine insists on them; two elsewhere.
    let cpus = if args.machine == Machine::Ast2700 {
        "4"
    } else {
        "2"
    };
    base.extend(["-smp".into(), cpus.into()]);
    base.extend([
        "-accel".into(),
        if args.kvm { "kvm".into() } else { "tcg".into() },
    ]);
    let mut cmdline = format!(
        "console={console} panic=-1 oops=panic kunit.filter_glob=swcci* swcci.scenario={}",
        sc.name
    );
    if !args.filter.is_empty() {
        cmdline.push_str(&format!(" swcci.filter={}", args.filter));
    }
    if let Some(seed) = &args.fuzz_seed {
        cmdline.push_str(&format!(" swcci.fuzz_seed={seed}"));
    }
    if let Some(n) = args.fuzz_iters {
        cmdline.push_str(&format!(" swcci.fuzz_iters={n}"));
    }
    match args.machine {
        Machine::Q35 => {
            cmdline.push(' ');
            cmdline.push_str(X86_CMDLINE);
        }
        Machine::Ast2600 | Machine::Ast2700 => {
            cmdline.push(' ');
            cmdline.push_str(SOC_CMDLINE);
        }
        Machine::Virt64 | Machine::Virt32 => {}
    }
    if !sc.cmdline.is_empty() {
        cmdline.push(' ');
        cmdline.push_str(sc.cmdline);
    }
    let mut cmd = Command::new(args.qemu_dir.join(bin));
    cmd.args(&base)
        .args(["-nodefaults", "-display", "none", "-no-reboot"])
        .args([
            "-chardev",
            "stdio,id=kcon,signal=off",
            "-serial",
            "chardev:kcon",
        ])
        .arg("-kernel")
        .arg(&args.kernel)
        .arg("-initrd")
        .arg(initrd)
        .args(["-append", &cmdline]);
    let mut ports = Ports::new(if args.machine.is_soc() {
        Attach::Fanout
    } else {
        Attach::RootPorts
    });
    if ports.attach() == Attach::Fanout {
        let bus = ports.port("vserp", 0);
        cmd.args(ports.take_args())
            .args(["-device", &format!("virtio-serial-pci,id=vser0,bus={bus}")]);
    } else {
        cmd.args(["-device", "virtio-serial-pci,id=vser0"]);
    }
    cmd.args([
        "-chardev",
        &format!(
            "file,id=tests,path={},append=on",
            work.join("tests.log").display()
        ),
        "-device",
        "virtconsole,chardev=tests,id=testcon",
    ])
    .args(topology::qemu_args(topo, work, &mut ports)?);
    for (i, _) in topo.emulated.iter().enumerate() {
        let (sock, ctl) = emu_sockets(work, i);
        let bus = ports.port(&format!("erp{i}"), 64 + i);
        cmd.args(ports.take_args())
            .args([
                "-device",
                &format!(
                    r#"{{"driver":"vfio-user-pci","bus":"{bus}","socket":{{"path":"{}","type":"unix"}}}}"#,
                    sock.display()
                ),
            ])
            .args(["-chardev", &format!("socket,id=emuctl{i},path={}", ctl.display())])
            .args([
                "-device",
                &format!("virtserialport,bus=vser0.0,chardev=emuctl{i},name=swcci.emu{i}"),
            ]);
    }
    // MCTP endpoints on virtio consoles of their own, after the test console (hvc0): the
    // guest's /dev/hvc1, ... in this order.
    for (i, e) in topo.emulated.iter().enumerate() {
        if let Some(m) = &e.mctp {
            cmd.args([
                "-chardev",
                &format!(
                    "socket,id=emumctp{i},path={}",
                    emu_mctp_socket(work, i).display()
                ),
            ])
            .args([
                "-device",
                &format!("virtconsole,bus=vser0.0,chardev=emumctp{i},name={}", m.name),
            ]);
        }
    }
    Ok(cmd)
}

fn emu_sockets(work: &Path, i: usize) -> (PathBuf, PathBuf) {
    (
        work.join(format!("emu{i}.sock")),
        work.join(format!("emu{i}-ctl.sock")),
    )
}

fn emu_mctp_socket(work: &Path, i: usize) -> PathBuf {
    work.join(format!("emu{i}-mctp.sock"))
}

/// Emulator processes of one boot; killed when dropped.
struct Emulators(Vec<Child>);

impl Drop for Emulators {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn start_emulators(args: &Args, work: &Path, topo: &Topology) -> Result<Emulators> {
    let mut procs = Emulators(Vec::new());
    if topo.emulated.is_empty() {
        return Ok(procs);
    }
    if args.emu.as_os_str().is_empty() || !args.emu.exists() {
        bail!("this scenario needs the device emulator: pass --emu PATH-TO-swcci-emu");
    }
    for (i, e) in topo.emulated.iter().enumerate() {
        let (sock, ctl) = emu_sockets(work, i);
        let log = fs::File::create(work.join(format!("emu{i}.log")))?;
        let mut cmd = Command::new(&args.emu);
        cmd.arg("--socket")
            .arg(&sock)
            .arg("--control")
            .arg(&ctl)
            .args(["--personality", &e.personality])
            .args(["--serial", &format!("{:#x}", e.serial)]);
        if !e.msix {
            cmd.arg("--no-msix");
        }
        if let Some(m) = &e.mctp {
            cmd.arg("--mctp")
                .arg(emu_mctp_socket(work, i))
                .args(["--mctp-eid", &m.eid.to_string()]);
        }
        cmd.args(&e.args);
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| format!("start {}", args.emu.display()))?;
        procs.0.push(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !sock.exists() {
            if Instant::now() > deadline {
                bail!(
                    "emulator {i} did not create {} within 10 s (see emu{i}.log)",
                    sock.display()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    Ok(procs)
}

struct Verdict {
    tally: Tally,
    problems: Vec<String>,
    /// The guest never started the suite (it stalled for [`BOOT_IDLE_TIMEOUT`], panicked or
    /// exited while booting): no test and no module ran, so the boot is worth one more try.
    boot_failed: bool,
}

/// Seconds without kernel output before the suite started after which a boot counts as
/// stalled. Under TCG on a loaded host, an x86_64 boot has been seen to stop for good after
/// the HPET line, long before the module is loaded; a boot prints something every few
/// seconds otherwise.
const BOOT_IDLE_TIMEOUT: u64 = 120;

fn run_scenario(args: &Args, sc: &Scenario) -> Result<Verdict> {
    let tag = format!("{}/{}", args.arch, sc.name);
    let work = args.out.join(&args.arch).join(sc.name);
    if work.exists() {
        fs::remove_dir_all(&work).with_context(|| format!("clean {}", work.display()))?;
    }
    fs::create_dir_all(&work)?;
    let mut topo = Topology::new(
        args.machine.cpu_arch(),
        args.switches.unwrap_or(sc.switches),
        args.type3.unwrap_or(sc.type3),
        args.machine == Machine::Q35,
    );
    if DCD_SCENARIOS.contains(&sc.name) {
        topo.make_dcd(2);
    }
    topo.machine = args.machine.qemu_name().to_string();
    for (i, e) in sc.emulated.iter().enumerate() {
        // The personality's PCI device id, unless the options give another.
        let given = e
            .args
            .iter()
            .position(|a| *a == "--device")
            .and_then(|k| e.args.get(k + 1))
            .and_then(|v| u16::from_str_radix(v.trim_start_matches("0x"), 16).ok());
        let device = given.unwrap_or(if e.personality == "switch" {
            0x5c01
        } else {
            0x5c02
        });
        let mut emulated = topology::Emulated {
            personality: e.personality.to_string(),
            vendor: 0x1b36,
            device,
            serial: 0x5c01_0000_0000_0000 + i as u64,
            control: format!("swcci.emu{i}"),
            msix: e.msix,
            args: e.args.iter().map(|a| a.to_string()).collect(),
            fabric: None,
            mctp: None,
        };
        // The 64-bit trees have MCTP, the ARMv7 ones (virt, AST2600) not
        // (tools/testing/kconfig/mctp.config): there the MCTP tests skip.
        if e.mctp
            && matches!(
                args.machine,
                Machine::Q35 | Machine::Virt64 | Machine::Ast2700
            )
        {
            let consoles = sc.emulated[..i].iter().filter(|x| x.mctp).count();
            emulated.mctp = Some(topology::EmuMctp {
                tty: format!("/dev/hvc{}", 1 + consoles),
                name: format!("swcci.mctp{i}"),
                eid: MCTP_EID,
                local_eid: MCTP_LOCAL_EID,
            });
        }
        if e.personality == "switch" {
            emulated.fabric = Some(topology::describe(&args.emu, &emulated)?);
        }
        topo.emulated.push(emulated);
    }
    let initrd = work.join("initramfs.cpio");
    build_initramfs(args, &topo, &initrd)?;
    let header = format!("# swcci boot {tag}: {}\n", args.provenance);
    fs::write(work.join("tests.log"), &header)?;
    let _emulators = start_emulators(args, &work, &topo)?;
    let mut cmd = qemu_command(args, sc, &work, &initrd, &topo)?;
    fs::write(work.join("qemu.cmd"), format!("{cmd:?}\n"))?;
    let mut qemu_log = fs::File::create(work.join("qemu.log"))?;
    qemu_log.write_all(header.as_bytes())?;
    let mut child: Child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(qemu_log))
        .spawn()
        .with_context(|| format!("start {}", args.qemu_dir.display()))?;
    eprintln!(
        "[{tag}] booting ({} switch(es), {} type-3 each)",
        topo.switches.len(),
        args.type3.unwrap_or(sc.type3)
    );

    let activity = Arc::new(AtomicU64::new(now_ms()));
    let trouble = Arc::new(Mutex::new(Vec::<String>::new()));
    let kernel_log = work.join("kernel.log");
    let stdout = child.stdout.take().context("QEMU stdout")?;
    let reader = {
        let activity = activity.clone();
        let trouble = trouble.clone();
        let mut log = fs::File::create(&kernel_log)?;
        log.write_all(header.as_bytes())?;
        std::thread::spawn(move || {
            let mut judge = Classifier::new();
            for line in BufReader::new(stdout).split(b'\n').map_while(|l| l.ok()) {
                let line = String::from_utf8_lossy(&line).into_owned();
                let _ = writeln!(log, "{line}");
                activity.store(now_ms(), Ordering::Relaxed);
                if judge.is_trouble(&line) {
                    if let Ok(mut t) = trouble.lock() {
                        t.push(line.trim().to_string());
                    }
                }
            }
        })
    };

    let started = Instant::now();
    let mut tests = fs::File::open(work.join("tests.log"))?;
    let mut pending = String::new();
    let mut all_tests = String::new();
    let mut last_test = String::from("(none)");
    let mut killed = None;
    let mut qemu_status = None;
    let mut up = false;
    let mut consume = |tests: &mut fs::File, last_test: &mut String, all: &mut String| {
        let mut buf = String::new();
        let _ = tests.read_to_string(&mut buf);
        if buf.is_empty() {
            return;
        }
        activity.store(now_ms(), Ordering::Relaxed);
        pending.push_str(&buf);
        while let Some(i) = pending.find('\n') {
            let line: String = pending.drain(..=i).collect();
            let line = line.trim_end_matches(['\r', '\n']).to_string();
            all.push_str(&line);
            all.push('\n');
            if let Some(name) = line.strip_prefix("# running ") {
                *last_test = name.to_string();
            }
            let interesting = sc.verbose
                || line.starts_with("ok ")
                || line.starts_with("not ok ")
                || line.ends_with(" failed")
                || line.starts_with("swcci:")
                || line.starts_with("# fuzz:");
            if interesting && !line.starts_with("# running ") {
                println!("[{tag}] {line}");
            }
        }
    };
    loop {
        consume(&mut tests, &mut last_test, &mut all_tests);
        if let Some(status) = child.try_wait()? {
            qemu_status = Some(status);
            break;
        }
        let idle = now_ms().saturating_sub(activity.load(Ordering::Relaxed)) / 1000;
        up = up || all_tests.contains("swcci: guest up");
        if !up && idle >= BOOT_IDLE_TIMEOUT.min(args.idle_timeout) {
            killed = Some(format!(
                "boot stalled: no kernel output for {idle} s before the suite started; killed"
            ));
        } else if idle >= args.idle_timeout {
            killed = Some(format!(
                "guest hung: no output for {idle} s (last test started: {last_test}); killed"
            ));
        } else if started.elapsed() > Duration::from_secs(args.timeout) {
            killed = Some(format!(
                "guest ran longer than {} s (last test started: {last_test}); killed",
                args.timeout
            ));
        }
        if killed.is_some() {
            let _ = child.kill();
            let _ = child.wait();
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = reader.join();
    consume(&mut tests, &mut last_test, &mut all_tests);
    // QEMU ends with status 0 when the guest powers off or panics (-no-reboot); anything else
    // is QEMU refusing its command line or failing: its own message says why, and booting
    // again would fail the same way.
    let qemu_failed = qemu_status
        .filter(|st| !st.success())
        .map(|st| qemu_failure(&work.join("qemu.log"), st));
    let boot_failed = !all_tests.contains("swcci: guest up") && qemu_failed.is_none();
    if !pending.is_empty() {
        all_tests.push_str(&pending);
    }

    // Failed tests: print their diagnostics (lines between "# running" and "not ok").
    if !sc.verbose {
        let mut block = Vec::new();
        for l in all_tests.lines() {
            if l.starts_with("# running ") {
                block.clear();
            }
            block.push(l);
            if l.starts_with("not ok ") {
                for b in &block {
                    println!("[{tag}]   | {b}");
                }
            }
        }
    }

    let tally = parse_ktap(&all_tests);
    let mut problems = Vec::new();
    if let Some(k) = killed {
        problems.push(k);
    }
    if let Some(q) = qemu_failed {
        problems.push(q);
    }
    if let Ok(t) = trouble.lock() {
        for l in t.iter().take(5) {
            problems.push(format!("kernel log: {l}"));
        }
    }
    if tally.failed > 0 {
        problems.push(format!(
            "{} test(s) failed: {}",
            tally.failed,
            tally.failed_names.join(", ")
        ));
    }
    if !tally.summary && problems.is_empty() {
        problems
            .push("the guest did not finish the suite (no summary line; see kernel.log)".into());
    }
    let none_ran = tally.passed + tally.failed + tally.skipped == 0;
    // With --filter, a scenario may hold no test of that name: nothing to judge there (the
    // caller decides whether any scenario ran one; tools/test.sh does).
    let unmatched = none_ran && problems.is_empty() && !args.filter.is_empty();
    if none_ran && problems.is_empty() && args.filter.is_empty() {
        problems.push("no test ran".into());
    }
    let verdict = if unmatched {
        format!("NO TEST MATCHES --filter {}", args.filter)
    } else if problems.is_empty() {
        "PASS".to_string()
    } else {
        "FAIL".to_string()
    };
    eprintln!(
        "[{tag}] {verdict} in {:.0} s: {} passed, {} failed, {} skipped; logs in {}",
        started.elapsed().as_secs_f64(),
        tally.passed,
        tally.failed,
        tally.skipped,
        work.display()
    );
    Ok(Verdict {
        tally,
        problems,
        boot_failed,
    })
}

/// What QEMU said when it exited with `status`: the last lines of its log (stderr), after the
/// header the runner wrote.
fn qemu_failure(log: &Path, status: std::process::ExitStatus) -> String {
    let text = fs::read_to_string(log).unwrap_or_default();
    let said: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .collect();
    let last = said[said.len().saturating_sub(3)..].join(" / ");
    if last.is_empty() {
        format!("QEMU exited with {status} (see {})", log.display())
    } else {
        format!("QEMU exited with {status}: {last}")
    }
}

fn main() {
    let args = parse_args();
    for (what, p) in [
        ("--kernel", &args.kernel),
        ("--module", &args.module),
        ("--guest-bin", &args.guest_bin),
        ("--busybox", &args.busybox),
        ("--qemu-dir", &args.qemu_dir),
    ] {
        if p.as_os_str().is_empty() || !p.exists() {
            eprintln!("swcci-runner: {what} {} does not exist", p.display());
            std::process::exit(2);
        }
    }
    if args.machine.is_soc() && !args.dtb.as_ref().is_some_and(|d| d.is_file()) {
        eprintln!(
            "swcci-runner: --arch {} needs --dtb with the board's device tree (tools/setup/dtb.sh); got {:?}",
            args.arch, args.dtb
        );
        std::process::exit(2);
    }
    let mut scenarios = Vec::new();
    for name in &args.scenarios {
        match SCENARIOS.iter().find(|s| s.name == name) {
            Some(s) => scenarios.push(s.clone()),
            None => {
                eprintln!("swcci-runner: unknown scenario {name}");
                usage();
            }
        }
    }
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    let mut reasons = Vec::new();
    for sc in &scenarios {
        let mut verdict = run_scenario(&args, sc);
        if matches!(&verdict, Ok(v) if v.boot_failed) {
            eprintln!(
                "[{}/{}] the guest failed while booting, before any test or the module ran: booting once more",
                args.arch, sc.name
            );
            verdict = run_scenario(&args, sc);
        }
        match verdict {
            Ok(v) => {
                passed += v.tally.passed;
                failed += v.tally.failed;
                skipped += v.tally.skipped;
                // A boot that failed without a failed test (a kernel warning, no summary, a
                // timeout) counts as one failure, so that the totals show it.
                if v.tally.failed == 0 && !v.problems.is_empty() {
                    failed += 1;
                }
                for p in v.problems {
                    reasons.push(format!("{}/{}: {p}", args.arch, sc.name));
                }
            }
            Err(e) => {
                failed += 1;
                reasons.push(format!("{}/{}: {e:#}", args.arch, sc.name));
            }
        }
    }
    for r in &reasons {
        eprintln!("swcci: FAIL: {r}");
    }
    println!(
        "{} (arch {}): {passed} passed, {failed} failed, {skipped} skipped",
        args.arch, args.arch
    );
    std::process::exit(if reasons.is_empty() { 0 } else { 1 });
}
