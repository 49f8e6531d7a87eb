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

    /// 32-bit kernels have no 64-bit MMIO: low dword, then high dword. Reads of the mailbox
    /// status registers tolerate this (the device does not change them while the doorbell is
    /// clear, and the engine only reads them then).
    #[cfg(not(CONFIG_64BIT))]
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

    /// 32-bit kernels have no 64-bit MMIO: the Command register is written low dword first,
    /// then high dword, before the doorbell. A device that, like QEMU's, only latches 64-bit
    /// writes of the Command register cannot be driven from a 32-bit kernel
    /// (Documentation/bmc.rst).
    #[cfg(not(CONFIG_64BIT))]
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
