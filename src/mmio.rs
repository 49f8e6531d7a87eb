// SPDX-License-Identifier: GPL-2.0

//! Register access for the protocol core: PCI configuration space for discovery, and the
//! mailbox BAR through a revocable mapping.

use crate::proto::{
    discover::ConfigSpace,
    mailbox::{IoError, RegIo},
};
use kernel::{
    io::Io,
    pci::{self, DevresBar},
};

/// The extended configuration space of a bound function.
pub(crate) struct PciConfig<'a>(pub(crate) pci::ConfigSpace<'a, pci::Extended>);

impl ConfigSpace for PciConfig<'_> {
    fn read32(&self, off: u16) -> Option<u32> {
        self.0.try_read32(usize::from(off)).ok()
    }
}

/// The BAR that holds the mailbox, revoked when the device is unbound.
///
/// Every access takes the revocable guard for that access only (guards hold the RCU read lock,
/// so they must never be held across a sleep): after unbind every access fails with
/// [`IoError::Gone`] instead of touching unmapped memory. Offsets are checked against the BAR
/// length by the `try_` accessors.
pub(crate) struct BarIo<'a>(pub(crate) &'a DevresBar);

impl BarIo<'_> {
    fn access<T>(
        &self,
        f: impl FnOnce(&pci::Bar<'_>) -> kernel::error::Result<T>,
    ) -> Result<T, IoError> {
        let bar = self.0.try_access().ok_or(IoError::Gone)?;
        f(&bar).map_err(|_| IoError::Range)
    }
}

impl RegIo for BarIo<'_> {
    fn read32(&self, off: usize) -> Result<u32, IoError> {
        self.access(|bar| bar.try_read32(off))
    }

    #[cfg(CONFIG_64BIT)]
    fn read64(&self, off: usize) -> Result<u64, IoError> {
        self.access(|bar| bar.try_read64(off))
    }

    /// 32-bit ARM: one LDRD (single-copy atomic on ARMv7 cores with LPAE, such as Cortex-A7
    /// and A15, and one 64-bit access in QEMU).
    #[cfg(all(CONFIG_ARM, not(CONFIG_64BIT)))]
    fn read64(&self, off: usize) -> Result<u64, IoError> {
        self.access(|bar| arm32::read64(bar, off))
    }

    /// Other 32-bit kernels: low dword, then high dword.
    #[cfg(all(not(CONFIG_ARM), not(CONFIG_64BIT)))]
    fn read64(&self, off: usize) -> Result<u64, IoError> {
        self.access(|bar| {
            let lo = bar.try_read32(off)?;
            let hi = bar.try_read32(off.checked_add(4).ok_or(kernel::error::code::EINVAL)?)?;
            Ok((u64::from(hi) << 32) | u64::from(lo))
        })
    }

    fn write32(&self, off: usize, val: u32) -> Result<(), IoError> {
        self.access(|bar| bar.try_write32(val, off))
    }

    #[cfg(CONFIG_64BIT)]
    fn write64(&self, off: usize, val: u64) -> Result<(), IoError> {
        self.access(|bar| bar.try_write64(val, off))
    }

    /// 32-bit ARM: one STRD, so the Command register still gets a single 64-bit store.
    #[cfg(all(CONFIG_ARM, not(CONFIG_64BIT)))]
    fn write64(&self, off: usize, val: u64) -> Result<(), IoError> {
        self.access(|bar| arm32::write64(bar, off, val))
    }

    /// Other 32-bit kernels have no 64-bit store: low dword, then high dword. A device that,
    /// like QEMU's, only latches 64-bit writes of the Command register cannot be driven so.
    #[cfg(all(not(CONFIG_ARM), not(CONFIG_64BIT)))]
    fn write64(&self, off: usize, val: u64) -> Result<(), IoError> {
        self.access(|bar| {
            bar.try_write32(val as u32, off)?;
            bar.try_write32(
                (val >> 32) as u32,
                off.checked_add(4).ok_or(kernel::error::code::EINVAL)?,
            )
        })
    }
}

/// 64-bit MMIO on 32-bit ARM, which the kernel's `readq`/`writeq` do not provide.
///
/// An 8-byte aligned LDRD/STRD is a single-copy atomic 64-bit access on ARMv7 cores with the
/// Large Physical Address Extension (Cortex-A7, as in the AST2600, and Cortex-A15), and QEMU
/// performs it as one 64-bit access. The mailbox's 64-bit registers (Command, Status,
/// Background Command Status) are 8-byte aligned.
#[cfg(all(CONFIG_ARM, not(CONFIG_64BIT)))]
mod arm32 {
    use kernel::{
        io::{Io, IoBackend, IoBase, MmioBackend},
        pci,
        prelude::*,
    };

    // The kernel's Rust target for 32-bit ARM is ARMv6, whose assembler does not know the
    // ARMv7 barrier mnemonics, so `dsb st` and `dsb sy` (what `wmb()` and `rmb()` are on
    // ARMv7) are emitted by their ARM-state encodings. The module is built for ARM state
    // (the kernel is built without THUMB2_KERNEL, see Documentation/bmc.rst).

    /// The mapped address of `off` in `bar`, if an 8-byte access there stays inside the BAR
    /// and is 8-byte aligned.
    fn addr(bar: &pci::Bar<'_>, off: usize) -> Result<usize> {
        let end = off.checked_add(8).ok_or(EINVAL)?;
        if off % 8 != 0 || end > bar.size() {
            return Err(EINVAL);
        }
        let base = MmioBackend::as_ptr(bar.as_view()).cast::<u8>() as usize;
        base.checked_add(off).ok_or(EINVAL)
    }

    pub(super) fn write64(bar: &pci::Bar<'_>, off: usize, val: u64) -> Result {
        let a = addr(bar, off)?;
        let (lo, hi) = (val as u32, (val >> 32) as u32);
        // SAFETY: `a` lies, 8-byte aligned, inside the BAR's mapping, which the caller's
        // revocable guard keeps mapped for this access. As `writeq` would, the barrier
        // (`dsb st`) orders earlier writes before the store; STRD takes an even/odd register
        // pair (r2, r3).
        unsafe {
            core::arch::asm!(
                ".inst 0xf57ff04e", // dsb st
                "strd r2, r3, [{a}]",
                a = in(reg) a,
                in("r2") lo,
                in("r3") hi,
                options(nostack, preserves_flags)
            );
        }
        Ok(())
    }

    pub(super) fn read64(bar: &pci::Bar<'_>, off: usize) -> Result<u64> {
        let a = addr(bar, off)?;
        let (lo, hi): (u32, u32);
        // SAFETY: as in `write64`; as `readq` would, the barrier (`dsb sy`) orders the load
        // before later accesses.
        unsafe {
            core::arch::asm!(
                "ldrd r2, r3, [{a}]",
                ".inst 0xf57ff04f", // dsb sy
                a = in(reg) a,
                out("r2") lo,
                out("r3") hi,
                options(nostack, preserves_flags)
            );
        }
        Ok((u64::from(hi) << 32) | u64::from(lo))
    }
}
