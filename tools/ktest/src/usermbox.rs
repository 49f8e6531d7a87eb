// SPDX-License-Identifier: GPL-2.0

//! A userspace mailbox driver for the benchmark: the protocol core's discovery
//! (`swcci_proto::discover`) and engine (`swcci_proto::mailbox::Mailbox`), the same code the
//! module runs, over the function's sysfs files instead of the kernel's accessors:
//!
//! - configuration space: `/sys/bus/pci/devices/<bdf>/config`, read with `pread` (root reads
//!   the whole 4 KiB extended space);
//! - registers: an `mmap` of `/sys/bus/pci/devices/<bdf>/resource<N>` (the BAR the CXL Register
//!   Locator or the PCIe MRBL names), read and written with volatile 32- and 64-bit accesses;
//! - waiting: spinning on the doorbell, with the engine's deadlines.
//!
//! This is the "map BAR 0 and poll the doorbell" path the driver is compared with. It must only
//! run while no driver is bound to the function: two agents on one mailbox corrupt each other's
//! commands. [`UserMailbox::open`] refuses a bound function.

use anyhow::{bail, ensure, Context, Result};
use std::fs::{self, File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::time::{Duration, Instant};
use swcci_proto::discover::{self, ConfigSpace};
use swcci_proto::mailbox::{
    Event, IoError, Mailbox, RegIo, Request, Response, Timeouts, Wait, WaitError,
};
use swcci_proto::regs::{MBOX_PAYLOAD, PCI_CLASS_CXL_SWITCH_CCI};

/// PCI Command register offset and its Memory Space Enable bit (PCI 3.0 §6.2.2).
const PCI_COMMAND: u64 = 0x04;
const PCI_COMMAND_MEMORY: u16 = 1 << 1;

/// Configuration space through sysfs `config`.
struct SysfsConfig(File);

impl ConfigSpace for SysfsConfig {
    fn read32(&self, off: u16) -> Option<u32> {
        let mut b = [0u8; 4];
        self.0.read_exact_at(&mut b, u64::from(off)).ok()?;
        Some(u32::from_le_bytes(b))
    }
}

/// A BAR mapped from its sysfs `resource<N>` file: the register accessor of the userspace
/// engine. Every access is naturally aligned, 32 or 64 bits wide, and inside the mapping.
pub struct BarMap {
    ptr: NonNull<u8>,
    len: usize,
}

impl BarMap {
    /// Maps the whole of `path` (a `resource<N>` file; its size is the BAR size) read-write,
    /// shared.
    fn map(path: &Path) -> Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .with_context(|| format!("open {}", path.display()))?;
        let len = usize::try_from(file.metadata()?.len())
            .with_context(|| format!("size of {}", path.display()))?;
        ensure!(len > 0, "{} is empty (BAR not implemented)", path.display());
        // SAFETY: a fresh shared mapping of `len` bytes of an open file; the kernel checks that
        // the range fits the BAR (pci_mmap_fits) and returns MAP_FAILED otherwise.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("mmap {}", path.display()));
        }
        let ptr = NonNull::new(p.cast::<u8>()).context("mmap returned NULL")?;
        // The mapping outlives the descriptor; `file` closes here.
        Ok(Self { ptr, len })
    }

    /// Length of the mapping in bytes (the BAR size).
    fn len(&self) -> usize {
        self.len
    }

    /// The address of a `T` at `off`, if it is aligned and inside the mapping.
    fn at<T>(&self, off: usize) -> Result<*mut T, IoError> {
        let size = std::mem::size_of::<T>();
        if !off.is_multiple_of(size) || off.checked_add(size).is_none_or(|end| end > self.len) {
            return Err(IoError::Range);
        }
        // SAFETY: `off + size <= len`, so the result stays inside the mapping.
        Ok(unsafe { self.ptr.as_ptr().add(off) }.cast::<T>())
    }
}

impl Drop for BarMap {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping `map` made; nothing refers to it after drop.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

impl RegIo for BarMap {
    fn read32(&self, off: usize) -> Result<u32, IoError> {
        let p = self.at::<u32>(off)?;
        // SAFETY: `p` is aligned and inside the live mapping (`at`); device memory is read with
        // one volatile load of the register's width.
        Ok(u32::from_le(unsafe { p.read_volatile() }))
    }

    fn read64(&self, off: usize) -> Result<u64, IoError> {
        let p = self.at::<u64>(off)?;
        // SAFETY: as in `read32`, one 64-bit load.
        Ok(u64::from_le(unsafe { p.read_volatile() }))
    }

    fn write32(&self, off: usize, val: u32) -> Result<(), IoError> {
        let p = self.at::<u32>(off)?;
        // SAFETY: as in `read32`, one 32-bit store.
        unsafe { p.write_volatile(val.to_le()) };
        Ok(())
    }

    fn write64(&self, off: usize, val: u64) -> Result<(), IoError> {
        let p = self.at::<u64>(off)?;
        // SAFETY: as in `read32`, one 64-bit store (the Command register must be written so).
        unsafe { p.write_volatile(val.to_le()) };
        Ok(())
    }
}

/// Waiting by spinning: the engine re-reads its condition after every call, until the
/// deadline of the wait.
#[derive(Default)]
pub struct Spin {
    deadline: Option<Instant>,
    /// Calls to `wait` so far: each is one more look at the doorbell after the first.
    pub spins: u64,
}

impl Wait for Spin {
    fn begin(&mut self, _event: Event, timeout_us: u64) {
        self.deadline = Some(Instant::now() + Duration::from_micros(timeout_us));
    }

    fn wait(&mut self, _event: Event) -> Result<(), WaitError> {
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(WaitError::Timeout);
        }
        self.spins += 1;
        std::hint::spin_loop();
        Ok(())
    }
}

/// The function's mailbox, driven from userspace.
pub struct UserMailbox {
    bar: BarMap,
    mbox: Mailbox,
    /// The waiter (its spin count is the number of extra doorbell polls).
    pub wait: Spin,
    /// Set when this engine turned Memory Space Enable on (it turns it off again on drop).
    enabled_by_us: Option<PathBuf>,
    /// Offset of the payload registers in the mapping.
    payload_at: usize,
}

impl UserMailbox {
    /// Finds and initialises the mailbox of PCI function `addr` (`0000:0d:00.1`), which must
    /// not be bound to a driver. Turns on Memory Space Enable through sysfs `enable` if it is
    /// off (and off again when dropped).
    pub fn open(addr: &str) -> Result<Self> {
        // The Command register must be written with one 64-bit store; 32-bit ARM has none that
        // is single-copy atomic to device memory.
        ensure!(
            cfg!(target_pointer_width = "64"),
            "the userspace engine needs 64-bit MMIO accesses (x86_64, arm64)"
        );
        let dir = Path::new("/sys/bus/pci/devices").join(addr);
        if let Ok(drv) = fs::read_link(dir.join("driver")) {
            bail!(
                "{addr} is bound to {}: unbind it before driving its mailbox from userspace",
                drv.display()
            );
        }
        let class = u32::from_str_radix(
            fs::read_to_string(dir.join("class"))
                .with_context(|| format!("read {addr} class"))?
                .trim()
                .trim_start_matches("0x"),
            16,
        )
        .with_context(|| format!("parse {addr} class"))?;
        let cxl_function = class >> 8 == PCI_CLASS_CXL_SWITCH_CCI >> 8;
        let cfg_path = dir.join("config");
        let cfg = SysfsConfig(
            File::open(&cfg_path).with_context(|| format!("open {}", cfg_path.display()))?,
        );
        let mut command = [0u8; 2];
        cfg.0
            .read_exact_at(&mut command, PCI_COMMAND)
            .with_context(|| format!("read the Command register of {addr}"))?;
        let mut enabled_by_us = None;
        if u16::from_le_bytes(command) & PCI_COMMAND_MEMORY == 0 {
            let en = dir.join("enable");
            fs::write(&en, "1").with_context(|| format!("write 1 to {}", en.display()))?;
            enabled_by_us = Some(en);
        }
        let blocks = discover::register_blocks(&cfg)
            .map_err(|e| anyhow::anyhow!("{addr}: discovery: {e}"))?;
        let mut last = None;
        for block in blocks.iter() {
            let res = dir.join(format!("resource{}", block.bar));
            let bar = match BarMap::map(&res) {
                Ok(b) => b,
                Err(e) => {
                    last = Some(e);
                    continue;
                }
            };
            let found = match discover::scan_block(&bar, bar.len() as u64, block, cxl_function) {
                Ok(f) => f,
                Err(e) => {
                    last = Some(anyhow::anyhow!(
                        "{addr}: BAR {} offset {:#x}: {e}",
                        block.bar,
                        block.offset
                    ));
                    continue;
                }
            };
            let mut wait = Spin::default();
            let mbox = Mailbox::init(&bar, &mut wait, found.mailbox, Timeouts::DEFAULT)
                .map_err(|e| anyhow::anyhow!("{addr}: mailbox at BAR {}: {e}", block.bar))?;
            let payload_at = found.mailbox.base + MBOX_PAYLOAD;
            return Ok(Self {
                bar,
                mbox,
                wait,
                enabled_by_us,
                payload_at,
            });
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("{addr}: no mailbox")))
    }

    /// Payload size in bytes.
    pub fn payload_size(&self) -> usize {
        self.mbox.payload_size()
    }

    /// Copies the first `out.len()` bytes of the payload registers into `out` with a plain
    /// `memcpy` from the mapping, as any program that maps the BAR can: the fastest read of
    /// those bytes the device gives anyone, the bound of a command that moves them (the
    /// benchmark's P4). No command is sent. Errors: `out` longer than the payload registers.
    pub fn block_read(&self, out: &mut [u8]) -> Result<()> {
        ensure!(
            out.len() <= self.mbox.payload_size() && self.payload_at + out.len() <= self.bar.len(),
            "block read of {} bytes: larger than the {}-byte payload registers",
            out.len(),
            self.mbox.payload_size()
        );
        // SAFETY: the range lies inside the live mapping (checked above) and does not overlap
        // `out`; reading the payload registers has no side effect on the device.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.bar.ptr.as_ptr().add(self.payload_at),
                out.as_mut_ptr(),
                out.len(),
            )
        };
        Ok(())
    }

    /// Runs one command (see `Mailbox::execute`); `out` receives at most its length of output.
    pub fn execute(&mut self, req: &Request<'_>, out: &mut [u8]) -> Result<Response> {
        self.mbox
            .execute(&self.bar, &mut self.wait, req, out)
            .map_err(|e| anyhow::anyhow!("command {:04x}h from userspace: {e}", req.opcode))
    }
}

impl Drop for UserMailbox {
    fn drop(&mut self) {
        if let Some(en) = &self.enabled_by_us {
            let _ = fs::write(en, "0");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 4 KiB file standing in for a BAR: the mapping code is the same.
    fn bar() -> (BarMap, PathBuf) {
        let p = std::env::temp_dir().join(format!("swcci-usermbox-{}", std::process::id()));
        fs::write(&p, vec![0u8; 4096]).unwrap();
        (BarMap::map(&p).unwrap(), p)
    }

    #[test]
    fn accesses_are_little_endian_aligned_and_bounded() {
        let (b, p) = bar();
        assert_eq!(b.len(), 4096);
        b.write64(0x10, 0x1122_3344_5566_7788).unwrap();
        assert_eq!(b.read32(0x10), Ok(0x5566_7788));
        assert_eq!(b.read32(0x14), Ok(0x1122_3344));
        assert_eq!(b.read64(0x10), Ok(0x1122_3344_5566_7788));
        b.write32(0xffc, 0xdead_beef).unwrap();
        assert_eq!(b.read32(0xffc), Ok(0xdead_beef));
        // Misaligned, past the end, or straddling it: refused, nothing touched.
        assert_eq!(b.read32(0x12), Err(IoError::Range));
        assert_eq!(b.read64(0x14), Err(IoError::Range));
        assert_eq!(b.read32(0x1000), Err(IoError::Range));
        assert_eq!(b.read64(0xffc), Err(IoError::Range));
        assert_eq!(b.write64(usize::MAX - 7, 0), Err(IoError::Range));
        drop(b);
        // The stores reached the file through the shared mapping.
        let data = fs::read(&p).unwrap();
        fs::remove_file(&p).unwrap();
        assert_eq!(data[0x10..0x18], 0x1122_3344_5566_7788u64.to_le_bytes());
    }

    #[test]
    fn spin_counts_and_times_out() {
        let mut w = Spin::default();
        w.begin(Event::Doorbell, 1_000_000);
        assert_eq!(w.wait(Event::Doorbell), Ok(()));
        assert_eq!(w.wait(Event::Doorbell), Ok(()));
        assert_eq!(w.spins, 2);
        w.begin(Event::Doorbell, 0);
        assert_eq!(w.wait(Event::Doorbell), Err(WaitError::Timeout));
        assert_eq!(w.spins, 2);
    }
}
