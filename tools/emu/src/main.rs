// SPDX-License-Identifier: GPL-2.0

//! swcci-emu: a PCI function served to QEMU over vfio-user, for testing the cxl_swcci driver
//! against a device under our control: MSI-X interrupts, background commands, PCIe MMB/MMPT,
//! and faults armed at run time through a control channel.
//!
//! ```text
//! swcci-emu --socket PATH --personality switch|mmpt [--control PATH] [--vendor 0x1b36]
//!           [--device 0x5c01] [--serial N] [--payload-log2 11] [--ready-ms 0] [--fw-slots 3]
//!           [--ports 4] [--vcs 1] [--vppbs 3] [--mld-port P [--lds 4]] [--dead-port P]
//!           [--empty-port P]... [--no-msix [--msi N]] [--no-doorbell-irq] [--no-bg-irq] [-v]
//! swcci-emu --describe-json [same options]
//! ```
//! `--describe-json` prints the function the options build (identity, firmware slots, ports
//! with their devices, VCSs with their vPPBs) as JSON and exits; the schema is in the README.
//! ```text
//! ```
//! QEMU: `-device '{"driver":"vfio-user-pci","socket":{"path":"PATH","type":"unix"}}'`, and for
//! the control channel `-chardev socket,id=ctl0,path=CONTROL -device
//! virtserialport,chardev=ctl0,name=swcci.emu0` (see `control.rs` for the protocol).
//!
//! Threads: the vfio-user server loop (this thread), a ticker that advances time-driven device
//! state every millisecond (readiness, delayed completions, background progress, so that
//! interrupts come on time without guest accesses), and the control channel threads. They share
//! the device model behind one mutex. The program exits when QEMU disconnects.
//!
//! Modules: `config` (configuration space), `device` (BAR registers and commands, pure logic),
//! `common` (the personality, default vectors and fault modes `device` shares with the rest),
//! `knobs` (run-time variants of the registers and timing, the MSI vector rule), `mmpt`
//! (message transfers), `firmware` (firmware slots and update commands), `events` (event logs
//! and records), `control` (control protocol), `irq` (interrupt delivery), `mctp` (the switch
//! as an MCTP endpoint over the serial binding, `--mctp`).

mod common;
mod config;
mod control;
mod devfw;
mod device;
mod events;
mod fabric;
mod firmware;
mod irq;
mod knobs;
mod mctp;
mod mmpt;

use anyhow::{bail, Context as _};
use common::Personality;
use config::{ConfigEvent, ConfigSpace, CFG_SIZE, MSIX_BAR_SIZE};
use device::{Device, DeviceConfig};
use irq::{EventFdIrqs, IrqSink as _, IRQ_SLOTS, MSIX_VECTORS};
use std::fs::File;
use std::mem::size_of;
use std::os::unix::fs::FileTypeExt as _;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use vfio_bindings::bindings::vfio::{
    vfio_region_info, VFIO_IRQ_INFO_EVENTFD, VFIO_IRQ_SET_ACTION_TRIGGER,
    VFIO_IRQ_SET_ACTION_TYPE_MASK, VFIO_IRQ_SET_DATA_EVENTFD, VFIO_IRQ_SET_DATA_NONE,
    VFIO_IRQ_SET_DATA_TYPE_MASK, VFIO_PCI_BAR0_REGION_INDEX, VFIO_PCI_CONFIG_REGION_INDEX,
    VFIO_PCI_MSIX_IRQ_INDEX, VFIO_PCI_MSI_IRQ_INDEX, VFIO_PCI_NUM_IRQS, VFIO_PCI_NUM_REGIONS,
    VFIO_REGION_INFO_FLAG_READ, VFIO_REGION_INFO_FLAG_WRITE,
};
use vfio_user::{DmaMapFlags, DmaUnmapFlags, IrqInfo, Server, ServerBackend, ServerRegion};

const USAGE: &str = "\
usage: swcci-emu --socket PATH --personality switch|mmpt [options]

Serves one emulated PCI function to QEMU over vfio-user:
  -device '{\"driver\":\"vfio-user-pci\",\"socket\":{\"path\":\"PATH\",\"type\":\"unix\"}}'

options:
  --socket PATH          vfio-user socket to listen on (QEMU connects)
  --personality P        switch: CXL switch mailbox CCI (class 0c0b00, CXL mailbox = PCIe MMB,
                         MMPT, background commands); mmpt: PCIe MMB + MMPT (class ff0000)
  --control PATH         control channel socket (line protocol; QEMU connects it as a chardev
                         for a virtserialport, e.g. name=swcci.emu0)
  --vendor ID            PCI vendor id (default 0x1b36)
  --device ID            PCI device id (default 0x5c01 switch, 0x5c02 mmpt)
  --serial N             serial number Identify reports (default 0x5c01000000000001 switch,
                         0x5c02000000000001 mmpt)
  --payload-log2 N       mailbox payload size 2^N bytes, 8..=20 (default 11)
  --ready-ms MS          time from reset to mailbox READY (default 0)
  --fw-slots N           firmware slots of the switch and of each device behind its ports, 2..=4
                         (default 3; slot 1 active with a built-in image: \"swcci-emu 1.0\" on
                         the switch, \"swcci-t3 1.0\" and \"swcci-mld 1.0\" on the devices)
  --ports N              physical ports of the switch, 2..=64 (default 4)
  --vcs V                VCSs, 1..N-1 (default 1); ports 0..V-1 are their upstream ports, the
                         others downstream ports with a type-3 device behind each
  --vppbs M              vPPBs per VCS, 1..=64 (default 3), bound to the downstream ports in order
  --mld-port P           a multi-logical device behind downstream port P
  --lds L                its LDs, 1..=16 (default 4)
  --dead-port P          a device behind port P that never answers tunnelled commands
  --empty-port P         no device behind port P (repeatable)
  --describe-json        print the function (ids, firmware, ports, devices, VCSs) as JSON and
                         exit; takes the same options, needs no --socket
  --no-msix              no MSI-X capability (the driver must poll, unless --msi)
  --msi N                with --no-msix: an MSI capability of N messages (1, 2, 4, .. 32); the
                         interrupt message numbers follow Multiple Message Enable (CXL r3.1
                         8.2.8.4.3): mailbox 3 and MMPT 2 with 4 or more messages enabled,
                         else the last enabled message
  --no-doorbell-irq      do not advertise the doorbell interrupt
  --no-bg-irq            do not advertise the background completion interrupt
  --mctp PATH            also serve the switch as an MCTP endpoint (FM-API 07h, CCI 08h) over
                         the serial binding (DSP0253) on Unix socket PATH (QEMU: -chardev
                         socket,id=m0,path=PATH -device virtconsole,chardev=m0)
  --mctp-eid EID         the endpoint's EID, 8..=254 (default 9)
  -v, --verbose          trace every register access (repeat for vfio-user library messages)
  -h, --help             this text

Interrupts: MSI-X vector 1 (mailbox doorbell and background completion), vector 2 (MMPT
message received), vector 3 (event logs, when the Event Interrupt Policy asks for MSI/MSI-X).";

/// Command-line arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Args {
    socket: PathBuf,
    control: Option<PathBuf>,
    /// The MCTP serial socket and the endpoint's EID.
    mctp: Option<(PathBuf, u8)>,
    device: DeviceConfig,
    verbose: u8,
    /// Print the function as JSON and exit.
    describe: bool,
}

fn parse_u64(s: &str, what: &str) -> anyhow::Result<u64> {
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(&h.replace('_', ""), 16),
        None => s.replace('_', "").parse(),
    };
    r.with_context(|| format!("{what}: '{s}' is not a number"))
}

fn parse_u8(s: &str, what: &str) -> anyhow::Result<u8> {
    u8::try_from(parse_u64(s, what)?).with_context(|| format!("{what}: '{s}' exceeds 255"))
}

fn parse_u16(s: &str, what: &str) -> anyhow::Result<u16> {
    u16::try_from(parse_u64(s, what)?).with_context(|| format!("{what}: '{s}' exceeds 0xffff"))
}

/// Parses the arguments (without the program name). `Ok(None)` for `--help`.
fn parse_args(args: impl IntoIterator<Item = String>) -> anyhow::Result<Option<Args>> {
    let mut it = args.into_iter();
    let mut socket = None;
    let mut control = None;
    let mut mctp_path = None;
    let mut mctp_eid = mctp::DEFAULT_EID;
    let mut personality = None;
    let mut vendor = None;
    let mut device = None;
    let mut serial = None;
    let mut payload_log2 = None;
    let mut ready_ms = None;
    let mut fw_slots = None;
    let mut fabric = fabric::FabricConfig::default();
    let mut describe = false;
    let mut msix = true;
    let mut msi = 0u8;
    let mut doorbell_irq = true;
    let mut bg_irq = true;
    let mut verbose = 0u8;
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (a.clone(), None),
        };
        let mut value = |name: &str| -> anyhow::Result<String> {
            match inline.clone().or_else(|| it.next()) {
                Some(v) => Ok(v),
                None => bail!("{name} needs a value"),
            }
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--socket" => socket = Some(PathBuf::from(value("--socket")?)),
            "--control" => control = Some(PathBuf::from(value("--control")?)),
            "--mctp" => mctp_path = Some(PathBuf::from(value("--mctp")?)),
            "--mctp-eid" => {
                mctp_eid = parse_u8(&value("--mctp-eid")?, "--mctp-eid")?;
                if !(8..=254).contains(&mctp_eid) {
                    bail!("--mctp-eid: {mctp_eid} is not an EID from 8 to 254");
                }
            }
            "--personality" => {
                let v = value("--personality")?;
                personality = Some(
                    Personality::parse(&v)
                        .with_context(|| format!("--personality: '{v}' is not switch or mmpt"))?,
                );
            }
            "--vendor" => vendor = Some(parse_u16(&value("--vendor")?, "--vendor")?),
            "--device" => device = Some(parse_u16(&value("--device")?, "--device")?),
            "--serial" => serial = Some(parse_u64(&value("--serial")?, "--serial")?),
            "--payload-log2" => {
                let v = parse_u64(&value("--payload-log2")?, "--payload-log2")?;
                payload_log2 = Some(u8::try_from(v).unwrap_or(u8::MAX));
            }
            "--ready-ms" => ready_ms = Some(parse_u64(&value("--ready-ms")?, "--ready-ms")?),
            "--fw-slots" => fw_slots = Some(parse_u8(&value("--fw-slots")?, "--fw-slots")?),
            "--ports" => fabric.ports = parse_u8(&value("--ports")?, "--ports")?,
            "--vcs" => fabric.vcs = parse_u8(&value("--vcs")?, "--vcs")?,
            "--vppbs" => fabric.vppbs = parse_u8(&value("--vppbs")?, "--vppbs")?,
            "--mld-port" => {
                fabric.mld_port = Some(parse_u8(&value("--mld-port")?, "--mld-port")?);
            }
            "--lds" => fabric.lds = parse_u8(&value("--lds")?, "--lds")?,
            "--dead-port" => {
                fabric.dead_port = Some(parse_u8(&value("--dead-port")?, "--dead-port")?);
            }
            "--empty-port" => fabric
                .empty_ports
                .push(parse_u8(&value("--empty-port")?, "--empty-port")?),
            "--describe-json" => describe = true,
            "--no-msix" => msix = false,
            "--msi" => msi = parse_u8(&value("--msi")?, "--msi")?,
            "--no-doorbell-irq" => doorbell_irq = false,
            "--no-bg-irq" => bg_irq = false,
            "-v" | "--verbose" => verbose = verbose.saturating_add(1),
            "-vv" => verbose = verbose.saturating_add(2),
            other => bail!("unknown argument '{other}' (see --help)"),
        }
        if inline.is_some()
            && matches!(
                flag.as_str(),
                "--no-msix" | "--no-doorbell-irq" | "--no-bg-irq" | "--verbose" | "--describe-json"
            )
        {
            bail!("{flag} takes no value");
        }
    }
    let socket = match socket {
        Some(s) => s,
        None if describe => PathBuf::new(),
        None => bail!("--socket PATH is required"),
    };
    let personality = personality.context("--personality switch|mmpt is required")?;
    let mut dc = DeviceConfig::new(personality);
    if let Some(v) = vendor {
        dc.vendor = v;
    }
    if let Some(d) = device {
        dc.device = d;
    }
    if let Some(s) = serial {
        dc.serial = s;
    }
    if let Some(p) = payload_log2 {
        dc.payload_log2 = p;
    }
    if let Some(r) = ready_ms {
        dc.ready_ms = r;
    }
    if let Some(n) = fw_slots {
        dc.fw_slots = n;
    }
    dc.fabric = fabric;
    dc.msix = msix;
    dc.msi = msi;
    dc.doorbell_irq = doorbell_irq;
    dc.bg_irq = bg_irq;
    dc.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
    if control.as_ref() == Some(&socket) {
        bail!("--control and --socket must differ");
    }
    if mctp_path.is_some() {
        if personality != Personality::Switch {
            bail!("--mctp needs the switch personality");
        }
        if dc.payload_size() > mctp::MAX_REQUEST_PAYLOAD {
            bail!(
                "--mctp: the endpoint reassembles requests of at most {} payload bytes; \
                 use --payload-log2 {} or less",
                mctp::MAX_REQUEST_PAYLOAD,
                mctp::MAX_REQUEST_PAYLOAD.ilog2()
            );
        }
    }
    Ok(Some(Args {
        socket,
        control,
        mctp: mctp_path.map(|p| (p, mctp_eid)),
        device: dc,
        verbose,
        describe,
    }))
}

/// State shared by the server loop, the ticker and the control channel.
pub struct Shared {
    dev: Mutex<Device>,
    /// The MCTP endpoint's faults and counters (`mctp.rs`).
    pub mctp: mctp::Handle,
    start: Instant,
    verbose: u8,
    tag: String,
}

impl Shared {
    fn new(dev: Device, start: Instant, verbose: u8) -> Self {
        let tag = format!("swcci-emu[{}]", dev.config().personality.name());
        Self {
            dev: Mutex::new(dev),
            mctp: mctp::Handle::default(),
            start,
            verbose,
            tag,
        }
    }

    /// Time since start.
    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    /// Logs `msg` to stderr if the verbosity is at least `level`.
    pub fn log(&self, level: u8, msg: &str) {
        if self.verbose >= level {
            let t = self.now();
            eprintln!(
                "[{:>5}.{:03}] {}: {msg}",
                t.as_secs(),
                t.subsec_millis(),
                self.tag
            );
        }
    }

    /// Runs `f` on the device at the current time, then logs the device's events.
    pub fn with<R>(&self, f: impl FnOnce(&mut Device, Duration) -> R) -> R {
        let mut dev = self.dev.lock().unwrap_or_else(PoisonError::into_inner);
        let r = f(&mut dev, self.now());
        let events = dev.take_events();
        drop(dev);
        for e in events {
            self.log(0, &e);
        }
        r
    }
}

/// Removes a socket left at `path` by an earlier run; refuses to touch anything else.
pub fn remove_stale_socket(path: &Path) -> anyhow::Result<()> {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    if !meta.file_type().is_socket() {
        bail!("{} exists and is not a socket", path.display());
    }
    if UnixStream::connect(path).is_ok() {
        bail!("{} is in use by another process", path.display());
    }
    std::fs::remove_file(path).with_context(|| format!("remove stale socket {}", path.display()))
}

/// The vfio-user backend: configuration space here, BARs in the device model.
struct Backend {
    shared: Arc<Shared>,
    cfg: ConfigSpace,
    irqs: Arc<EventFdIrqs>,
    mem_enabled: bool,
}

fn hexbytes(data: &[u8]) -> String {
    match data.len() {
        1 | 2 | 4 | 8 => {
            let mut b = [0u8; 8];
            if let Some(d) = b.get_mut(..data.len()) {
                d.copy_from_slice(data);
            }
            format!("{:#x}", u64::from_le_bytes(b))
        }
        n => format!("<{n} bytes>"),
    }
}

impl Backend {
    fn region_name(region: u32) -> String {
        match region {
            VFIO_PCI_CONFIG_REGION_INDEX => "cfg".into(),
            r => format!("bar{r}"),
        }
    }

    fn config_write(&mut self, offset: u64, data: &[u8]) {
        for ev in self.cfg.write(offset, data) {
            match ev {
                ConfigEvent::Flr => {
                    self.shared.log(0, "function level reset");
                    self.shared.with(|d, now| d.reset(now));
                }
                ConfigEvent::Command(v) => {
                    let mem = self.cfg.memory_enabled();
                    if mem != self.mem_enabled {
                        self.mem_enabled = mem;
                        self.shared.log(
                            0,
                            &format!(
                                "memory decoding {}: BAR0 at {:#x}, BAR2 at {:#x}, bus master {}",
                                if mem { "on" } else { "off" },
                                self.cfg.bar_address(0),
                                self.cfg.bar_address(2),
                                v & 4 != 0
                            ),
                        );
                    }
                }
                ConfigEvent::MsiControl(v) => {
                    self.shared.log(
                        1,
                        &format!(
                            "MSI control {v:#06x}: enable {}, {} message(s)",
                            v & 1 != 0,
                            1u32 << ((v >> 4) & 7)
                        ),
                    );
                    self.shared.with(|d, _| d.set_msi_control(v));
                }
                ConfigEvent::MsixControl(v) => self.shared.log(
                    1,
                    &format!(
                        "MSI-X control {v:#06x}: enable {}, function mask {}",
                        v & 0x8000 != 0,
                        v & 0x4000 != 0
                    ),
                ),
            }
        }
    }
}

impl ServerBackend for Backend {
    fn region_read(&mut self, region: u32, offset: u64, data: &mut [u8]) -> std::io::Result<()> {
        match region {
            VFIO_PCI_CONFIG_REGION_INDEX => self.cfg.read(offset, data),
            VFIO_PCI_BAR0_REGION_INDEX | 2 => {
                self.shared
                    .with(|d, now| d.bar_read(now, region, offset, data));
            }
            _ => data.iter_mut().for_each(|b| *b = 0),
        }
        if self.shared.verbose >= 1 {
            self.shared.log(
                1,
                &format!(
                    "read  {} {offset:#06x} len {} = {}",
                    Self::region_name(region),
                    data.len(),
                    hexbytes(data)
                ),
            );
        }
        Ok(())
    }

    fn region_write(&mut self, region: u32, offset: u64, data: &[u8]) -> std::io::Result<()> {
        if self.shared.verbose >= 1 {
            self.shared.log(
                1,
                &format!(
                    "write {} {offset:#06x} len {} = {}",
                    Self::region_name(region),
                    data.len(),
                    hexbytes(data)
                ),
            );
        }
        match region {
            VFIO_PCI_CONFIG_REGION_INDEX => self.config_write(offset, data),
            VFIO_PCI_BAR0_REGION_INDEX | 2 => {
                self.shared
                    .with(|d, now| d.bar_write(now, region, offset, data));
            }
            r => self
                .shared
                .log(0, &format!("write to region {r} at {offset:#x} ignored")),
        }
        Ok(())
    }

    fn dma_map(
        &mut self,
        _flags: DmaMapFlags,
        _offset: u64,
        address: u64,
        size: u64,
        _fd: Option<File>,
    ) -> std::io::Result<()> {
        // The function does no DMA; the mapping is acknowledged and the fd closed.
        self.shared
            .log(1, &format!("dma map {address:#x} + {size:#x} (unused)"));
        Ok(())
    }

    fn dma_unmap(&mut self, _flags: DmaUnmapFlags, address: u64, size: u64) -> std::io::Result<()> {
        self.shared
            .log(1, &format!("dma unmap {address:#x} + {size:#x}"));
        Ok(())
    }

    fn reset(&mut self) -> std::io::Result<()> {
        self.shared.log(0, "device reset (vfio-user)");
        self.shared.with(|d, now| d.reset(now));
        Ok(())
    }

    fn set_irqs(
        &mut self,
        index: u32,
        flags: u32,
        start: u32,
        count: u32,
        fds: Vec<File>,
    ) -> std::io::Result<()> {
        let action = flags & VFIO_IRQ_SET_ACTION_TYPE_MASK;
        let data = flags & VFIO_IRQ_SET_DATA_TYPE_MASK;
        let msi = self.shared.with(|d, _| d.config().msi);
        let (kind, vectors) = match index {
            VFIO_PCI_MSIX_IRQ_INDEX => ("MSI-X", MSIX_VECTORS),
            VFIO_PCI_MSI_IRQ_INDEX if msi > 0 => ("MSI", usize::from(msi).min(IRQ_SLOTS)),
            _ => ("", 0),
        };
        if vectors == 0 || action != VFIO_IRQ_SET_ACTION_TRIGGER {
            self.shared.log(
                1,
                &format!(
                    "set_irqs index {index} flags {flags:#x} start {start} count {count}: ignored"
                ),
            );
            return Ok(());
        }
        let end = u64::from(start).saturating_add(u64::from(count));
        if end > vectors as u64 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{kind} vectors {start}..{end} beyond the function's {vectors}"),
            ));
        }
        match data {
            VFIO_IRQ_SET_DATA_EVENTFD => {
                let n = fds.len();
                let connected = self.irqs.set(start, count, fds);
                self.shared.log(
                    0,
                    &format!(
                        "{kind} vectors {start}..{end}: {} ({connected} vectors connected)",
                        if n == 0 {
                            "disconnected"
                        } else {
                            "eventfds set"
                        }
                    ),
                );
            }
            VFIO_IRQ_SET_DATA_NONE if count == 0 => {
                self.irqs.clear();
                self.shared
                    .log(0, &format!("{kind} disabled: all eventfds dropped"));
            }
            VFIO_IRQ_SET_DATA_NONE => {
                // Loopback trigger of the given vectors.
                for v in start..start.saturating_add(count) {
                    self.irqs.fire(u16::try_from(v).unwrap_or(u16::MAX));
                }
            }
            _ => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::Unsupported,
                    format!("set_irqs data type {data:#x} not supported"),
                ));
            }
        }
        Ok(())
    }
}

/// Region descriptions: config space 4 KiB, BAR0, BAR2 (MSI-X) if present.
fn regions(dc: &DeviceConfig) -> Vec<ServerRegion> {
    (0..VFIO_PCI_NUM_REGIONS)
        .map(|index| {
            let size = match index {
                VFIO_PCI_CONFIG_REGION_INDEX => CFG_SIZE as u64,
                VFIO_PCI_BAR0_REGION_INDEX => dc.bar0_size(),
                2 if dc.msix => MSIX_BAR_SIZE,
                _ => 0,
            };
            let flags = if size > 0 {
                VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE
            } else {
                0
            };
            ServerRegion {
                region_info: vfio_region_info {
                    argsz: size_of::<vfio_region_info>() as u32,
                    flags,
                    index,
                    size,
                    ..Default::default()
                },
                sparse_areas: Vec::new(),
                mmap_fd: None,
            }
        })
        .collect()
}

/// Interrupt descriptions: MSI-X, or MSI for an MSI-only function, with eventfds; no INTx.
fn irq_infos(dc: &DeviceConfig) -> Vec<IrqInfo> {
    (0..VFIO_PCI_NUM_IRQS)
        .map(|index| {
            let (count, flags) = match index {
                VFIO_PCI_MSIX_IRQ_INDEX if dc.msix => (MSIX_VECTORS as u32, VFIO_IRQ_INFO_EVENTFD),
                VFIO_PCI_MSI_IRQ_INDEX if dc.msi > 0 => (u32::from(dc.msi), VFIO_IRQ_INFO_EVENTFD),
                _ => (0, 0),
            };
            IrqInfo {
                index,
                flags,
                count,
            }
        })
        .collect()
}

/// Forwards the vfio-user library's log messages to stderr.
struct LibLog;

impl log::Log for LibLog {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::max_level()
    }

    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            eprintln!("swcci-emu: vfio-user {}: {}", r.level(), r.args());
        }
    }

    fn flush(&self) {}
}

static LIB_LOG: LibLog = LibLog;

/// A running emulator: the vfio-user server bound, the side threads started.
struct Emulator {
    server: Server,
    backend: Backend,
    stop: Arc<AtomicBool>,
    ticker: Option<std::thread::JoinHandle<()>>,
    control: Option<PathBuf>,
}

impl Emulator {
    fn start(args: &Args) -> anyhow::Result<Self> {
        let start = Instant::now();
        let dc = args.device.clone();
        let irqs = Arc::new(EventFdIrqs::new());
        let mut dev = Device::new(dc.clone(), irqs.clone(), Duration::ZERO);
        // Event record timestamps: Unix time of model time zero.
        let epoch_ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        dev.set_event_settings(events::EventSettings {
            epoch_ns,
            ..dev.event_settings()
        });
        let shared = Arc::new(Shared::new(dev, start, args.verbose));
        if let Some(path) = &args.control {
            let l = control::listen(path)?;
            control::serve(l, shared.clone())?;
            shared.log(0, &format!("control channel on {}", path.display()));
        }
        if let Some((path, eid)) = &args.mctp {
            mctp::serve(path, shared.clone(), *eid, shared.mctp.clone())?;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let ticker = {
            let shared = shared.clone();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("ticker".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(1));
                        shared.with(|d, now| d.tick(now));
                    }
                })
                .context("start the ticker thread")?
        };
        remove_stale_socket(&args.socket)?;
        let server = Server::new(&args.socket, true, irq_infos(&dc), regions(&dc))
            .map_err(|e| anyhow::anyhow!("{e}"))
            .with_context(|| format!("listen on vfio-user socket {}", args.socket.display()))?;
        shared.log(
            0,
            &format!(
                "{:04x}:{:04x} class {:06x}, BAR0 {} KiB, payload {} B, MSI-X {}, listening on {}",
                dc.vendor,
                dc.device,
                dc.class(),
                dc.bar0_size() / 1024,
                dc.payload_size(),
                match (dc.msix, dc.msi) {
                    (true, _) => "16 vectors".to_string(),
                    (false, 0) => "none".to_string(),
                    (false, n) => format!("none, MSI {n} messages"),
                },
                args.socket.display()
            ),
        );
        Ok(Self {
            server,
            backend: Backend {
                shared,
                cfg: ConfigSpace::new(&dc.config_params()),
                irqs,
                mem_enabled: false,
            },
            stop,
            ticker: Some(ticker),
            control: args.control.clone(),
        })
    }

    /// Serves one vfio-user connection until the client disconnects.
    fn run(mut self) -> anyhow::Result<()> {
        let r = self.server.run(&mut self.backend);
        self.backend.irqs.clear();
        match &r {
            Ok(()) => self.backend.shared.log(0, "client disconnected; exiting"),
            Err(e) => self
                .backend
                .shared
                .log(0, &format!("vfio-user server failed: {e}")),
        }
        r.map_err(|e| anyhow::anyhow!("vfio-user server: {e}"))
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.ticker.take() {
            let _ = t.join();
        }
        if let Some(c) = &self.control {
            let _ = std::fs::remove_file(c);
        }
    }
}

/// The function `dc` builds, as JSON, in its state at start.
fn describe(dc: &DeviceConfig) -> serde_json::Value {
    Device::new(dc.clone(), Arc::new(EventFdIrqs::new()), Duration::ZERO).describe()
}

fn run() -> anyhow::Result<()> {
    let Some(args) = parse_args(std::env::args().skip(1))? else {
        println!("{USAGE}");
        return Ok(());
    };
    if args.describe {
        println!("{:#}", describe(&args.device));
        return Ok(());
    }
    let _ = log::set_logger(&LIB_LOG);
    log::set_max_level(match args.verbose {
        0 | 1 => log::LevelFilter::Warn,
        _ => log::LevelFilter::Info,
    });
    Emulator::start(&args)?.run()
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("swcci-emu: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests;
