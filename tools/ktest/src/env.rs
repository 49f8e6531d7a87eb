// SPDX-License-Identifier: GPL-2.0

//! The guest environment the tests act on: the module, sysfs, the kernel log, taint flags.

use anyhow::{anyhow, bail, Context, Result};
use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use swcci::kernel_log::Classifier;
use swcci::topology::Topology;

/// Where the runner puts the module in the initramfs.
pub const MODULE: &str = "/swcci/cxl_swcci.ko";
/// The module's name.
pub const MODULE_NAME: &str = "cxl_swcci";
/// The driver's sysfs directory.
pub const DRIVER_DIR: &str = "/sys/bus/pci/drivers/cxl_swcci";
/// debugfs directory of the module.
pub const DEBUGFS_DIR: &str = "/sys/kernel/debug/cxl_swcci";
/// Class code of a switch mailbox CCI.
pub const CLASS_SWITCH_CCI: u32 = 0x0c0b00;
/// TAINT_USER ('U').
pub const TAINT_USER: u64 = 1 << 6;

/// Reads /dev/kmsg from where it was opened.
pub struct Kmsg {
    file: File,
}

impl Kmsg {
    fn open() -> Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open("/dev/kmsg")
            .context("open /dev/kmsg")?;
        // Start at the end: earlier messages are the runner's business.
        // SAFETY: plain lseek on a file we own.
        unsafe { libc::lseek(file.as_raw_fd(), 0, libc::SEEK_END) };
        Ok(Self { file })
    }

    /// Messages logged since the last call.
    pub fn read_new(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 8192];
        loop {
            match self.file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let rec = String::from_utf8_lossy(&buf[..n]);
                    // "prio,seq,usec,flags;text\n" then " KEY=value" continuation lines.
                    let text = rec.split_once(';').map_or(&*rec, |(_, t)| t);
                    let text = text.lines().next().unwrap_or("");
                    out.push(text.trim_end().to_string());
                }
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue, // overwritten
                Err(_) => break,
            }
        }
        out
    }
}

/// What the tests share.
pub struct Env {
    /// The topology of this boot.
    pub topo: Topology,
    kmsg: Kmsg,
    /// Messages read by tests but not yet checked for trouble.
    seen: Vec<String>,
    /// Every message read since the suite started.
    pub history: Vec<String>,
    /// Judges the kernel log (swcci::kernel_log: the runner's list, fault-injection reports).
    log: Classifier,
    /// Diagnostic lines for the KTAP output.
    pub notes: Vec<String>,
}

/// One PCI function as sysfs describes it.
#[derive(Clone, Debug)]
pub struct PciDev {
    /// Its address.
    pub addr: String,
    /// Vendor id.
    pub vendor: u16,
    /// Device id.
    pub device: u16,
    /// Class code.
    pub class: u32,
}

fn read_hex(path: impl AsRef<Path>) -> Result<u64> {
    let p = path.as_ref();
    let s = fs::read_to_string(p).with_context(|| format!("read {}", p.display()))?;
    u64::from_str_radix(s.trim().trim_start_matches("0x"), 16)
        .with_context(|| format!("parse {}", p.display()))
}

impl Env {
    /// Sets up the environment.
    pub fn new(topo: Topology) -> Result<Self> {
        Ok(Self {
            topo,
            kmsg: Kmsg::open()?,
            seen: Vec::new(),
            history: Vec::new(),
            log: Classifier::new(),
            notes: Vec::new(),
        })
    }

    /// Adds a diagnostic line to the current test's output.
    pub fn note(&mut self, s: impl Into<String>) {
        self.notes.push(s.into());
    }

    /// Kernel messages logged since the last call (also kept for the trouble check).
    pub fn kmsg(&mut self) -> Vec<String> {
        let new = self.kmsg.read_new();
        self.seen.extend(new.iter().cloned());
        self.history.extend(new.iter().cloned());
        new
    }

    /// Fails if the kernel logged a warning, BUG, oops, sanitizer report or similar since the
    /// last check (`swcci::kernel_log`; reports of failures injected on purpose are not
    /// trouble).
    pub fn check_kernel_log(&mut self) -> Result<()> {
        self.kmsg();
        let seen = std::mem::take(&mut self.seen);
        let mut trouble = None;
        for line in &seen {
            if self.log.is_trouble(line) && trouble.is_none() {
                trouble = Some(line.clone());
            }
        }
        if let Some(line) = trouble {
            bail!("kernel log: {line}");
        }
        Ok(())
    }

    /// Fault-injection reports seen in the kernel log so far.
    pub fn injected_failures(&self) -> usize {
        self.log.injected()
    }

    /// Every PCI function.
    pub fn pci_devices(&self) -> Result<Vec<PciDev>> {
        let mut out = Vec::new();
        for e in fs::read_dir("/sys/bus/pci/devices").context("read /sys/bus/pci/devices")? {
            let e = e?;
            let p = e.path();
            out.push(PciDev {
                addr: e.file_name().to_string_lossy().into_owned(),
                vendor: read_hex(p.join("vendor"))? as u16,
                device: read_hex(p.join("device"))? as u16,
                class: read_hex(p.join("class"))? as u32,
            });
        }
        out.sort_by(|a, b| a.addr.cmp(&b.addr));
        Ok(out)
    }

    /// The switch mailbox CCIs.
    pub fn switch_ccis(&self) -> Result<Vec<PciDev>> {
        Ok(self
            .pci_devices()?
            .into_iter()
            .filter(|d| d.class == CLASS_SWITCH_CCI)
            .collect())
    }

    /// The driver a function is bound to.
    pub fn driver_of(&self, addr: &str) -> Option<String> {
        fs::read_link(format!("/sys/bus/pci/devices/{addr}/driver"))
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
    }

    /// Whether the module is loaded.
    pub fn module_loaded(&self) -> bool {
        Path::new("/sys/module").join(MODULE_NAME).exists()
    }

    /// Loads the module with `params`; returns the errno on failure.
    pub fn insmod(&self, params: &str) -> std::result::Result<(), i32> {
        self.insmod_file(MODULE, params)
    }

    /// Loads the module file `path` (a build of this module, named `cxl_swcci`) with `params`;
    /// returns the errno on failure.
    pub fn insmod_file(&self, path: &str, params: &str) -> std::result::Result<(), i32> {
        let f = File::open(path).map_err(|e| e.raw_os_error().unwrap_or(libc::ENOENT))?;
        let params = CString::new(params).map_err(|_| libc::EINVAL)?;
        // SAFETY: finit_module reads the module from the fd and the NUL-terminated params.
        let r = unsafe { libc::syscall(libc::SYS_finit_module, f.as_raw_fd(), params.as_ptr(), 0) };
        if r != 0 {
            return Err(io::Error::last_os_error().raw_os_error().unwrap_or(0));
        }
        Ok(())
    }

    /// Unloads the module; returns the errno on failure.
    pub fn rmmod(&self) -> std::result::Result<(), i32> {
        let name = CString::new(MODULE_NAME).expect("no NUL");
        // SAFETY: delete_module reads the NUL-terminated name.
        let r = unsafe { libc::syscall(libc::SYS_delete_module, name.as_ptr(), libc::O_NONBLOCK) };
        if r != 0 {
            return Err(io::Error::last_os_error().raw_os_error().unwrap_or(0));
        }
        Ok(())
    }

    /// Loads the module unless it is loaded, binds switch CCIs an earlier (failed) test left
    /// unbound, and waits for every switch CCI to be bound.
    pub fn ensure_loaded(&mut self) -> Result<()> {
        if !self.module_loaded() {
            self.load("")?;
        }
        for d in self.switch_ccis()? {
            if self.driver_of(&d.addr).is_none() {
                self.bind(&d.addr)?;
            }
        }
        self.wait_bound()
    }

    /// Loads the module with `params`; the error names them and the errno.
    pub fn load(&self, params: &str) -> Result<()> {
        self.insmod(params)
            .map_err(|e| anyhow!("insmod {MODULE} {params}: {}", errno_str(e)))
    }

    /// Unloads the module if it is loaded.
    pub fn ensure_unloaded(&mut self) -> Result<()> {
        if self.module_loaded() {
            self.rmmod()
                .map_err(|e| anyhow!("rmmod: {}", errno_str(e)))?;
        }
        Ok(())
    }

    /// Waits until every switch CCI is bound to the driver and has its node.
    pub fn wait_bound(&self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let ccis = self.switch_ccis()?;
            let bound = ccis
                .iter()
                .filter(|d| self.driver_of(&d.addr).as_deref() == Some(MODULE_NAME))
                .count();
            let nodes = self.nodes()?.len();
            if bound == ccis.len() && nodes >= ccis.len() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "{bound} of {} switch CCIs bound, {nodes} nodes, after 10 s",
                    ccis.len()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The driver's switch CCI nodes (/dev/cxl/switchN), whether they answer or not
    /// ([`swcci::list`]).
    pub fn nodes(&self) -> Result<Vec<PathBuf>> {
        Ok(swcci::list()?
            .into_iter()
            .filter(swcci::Node::is_switch)
            .map(|n| n.path)
            .collect())
    }

    /// The driver's MMB/MMPT nodes (/dev/swcci/mmptN), whether they answer or not
    /// ([`swcci::list`]).
    pub fn mmpt_nodes(&self) -> Result<Vec<PathBuf>> {
        Ok(swcci::list()?
            .into_iter()
            .filter(|n| !n.is_switch())
            .map(|n| n.path)
            .collect())
    }

    /// The node of the switch whose Identify reports `serial` (as the driver read it at probe).
    pub fn node_for_serial(&self, serial: u64) -> Result<swcci::Device> {
        for n in swcci::list()? {
            if n.is_switch() && n.info.is_ok_and(|i| i.serial == serial) {
                return Ok(swcci::Device::open(&n.path)?);
            }
        }
        bail!("no node reports serial {serial:#x}")
    }

    /// The PCI address a node reports.
    pub fn addr_of(&self, dev: &swcci::Device) -> Result<String> {
        Ok(swcci::info_str(&dev.info()?.pci_addr))
    }

    /// Writes `value` to a sysfs attribute.
    pub fn sysfs_write(&self, path: &str, value: &str) -> Result<()> {
        fs::write(path, value).with_context(|| format!("write {value:?} to {path}"))
    }

    /// Unbinds a function from the driver.
    pub fn unbind(&self, addr: &str) -> Result<()> {
        self.sysfs_write(&format!("{DRIVER_DIR}/unbind"), addr)
    }

    /// Binds a function to the driver.
    pub fn bind(&self, addr: &str) -> Result<()> {
        self.sysfs_write(&format!("{DRIVER_DIR}/bind"), addr)
    }

    /// The kernel's taint flags.
    pub fn tainted(&self) -> Result<u64> {
        let s = fs::read_to_string("/proc/sys/kernel/tainted").context("read tainted")?;
        s.trim().parse().context("parse tainted")
    }

    /// The debugfs directory of a function.
    pub fn debugfs(&self, addr: &str) -> PathBuf {
        Path::new(DEBUGFS_DIR).join(addr)
    }

    /// One counter of a function's debugfs `stats`.
    pub fn stat(&self, addr: &str, name: &str) -> Result<u64> {
        let p = self.debugfs(addr).join("stats");
        let text = fs::read_to_string(&p).with_context(|| format!("read {}", p.display()))?;
        for line in text.lines() {
            if let Some(v) = line.strip_prefix(&format!("{name}: ")) {
                return v
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .parse()
                    .with_context(|| format!("parse {name} in {}", p.display()));
            }
        }
        bail!("no {name} in {}", p.display())
    }

    /// Checks that `path` is a character device with mode 0600.
    pub fn check_node_mode(&self, path: &Path) -> Result<()> {
        let md = fs::metadata(path).with_context(|| format!("stat {}", path.display()))?;
        if !md.file_type().is_char_device() {
            bail!("{} is not a character device", path.display());
        }
        let mode = md.permissions().mode() & 0o777;
        if mode != 0o600 {
            bail!("{} has mode {mode:o}, expected 600", path.display());
        }
        Ok(())
    }
}

/// `ENXIO (No such device or address)`.
pub fn errno_str(e: i32) -> String {
    format!(
        "{} ({})",
        swcci::errno_name(e),
        io::Error::from_raw_os_error(e)
    )
}

/// Asserts an ioctl result is the errno `want`.
pub fn expect_errno<T: std::fmt::Debug>(
    what: &str,
    r: std::result::Result<T, i32>,
    want: i32,
) -> Result<()> {
    match r {
        Err(e) if e == want => Ok(()),
        Err(e) => bail!("{what}: got {}, expected {}", errno_str(e), errno_str(want)),
        Ok(v) => bail!("{what}: succeeded ({v:?}), expected {}", errno_str(want)),
    }
}

/// The errno of a library error (for checks).
pub fn lib_errno<T>(r: swcci::Result<T>) -> std::result::Result<T, i32> {
    r.map_err(|e| e.errno().unwrap_or(0))
}
