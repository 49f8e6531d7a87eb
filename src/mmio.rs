// SPDX-License-Identifier: GPL-2.0

//! Register access for the protocol core: PCI configuration space for discovery, and the
//! mailbox BAR through a revocable mapping. The only place the driver touches MMIO.
//!
//! [`BarIo`] is the [`Mapping`] the engine enters once per phase that does not sleep
//! (submission, with the readout when the device completes at once; each completion check;
//! the readout after a wait): each entry takes the revocable guard once
//! (the guard holds the RCU read lock, so it is never held across a sleep; the engine only
//! sleeps between entries). After unbind the guard cannot be taken and every access fails
//! with [`IoError::Gone`] instead of touching unmapped memory. Inside an entry, [`BarRegs`]
//! accesses the BAR with the `try_` accessors (offsets checked against the BAR length) and
//! copies payloads as blocks (`memcpy_toio`/`memcpy_fromio`, as drivers/cxl/pci.c does).

use crate::proto::{
    discover::ConfigSpace,
    mailbox::{
        read_dwords,
        write_dwords,
        IoError,
        Mapping,
        RegIo, //
    },
};
#[cfg(CONFIG_64BIT)]
use kernel::io::{
    IoBackend,
    IoBase,
    Mmio,
    MmioBackend, //
};
use kernel::{
    io::Io,
    pci::{
        self,
        DevresBar, //
    },
};

/// The extended configuration space of a bound function.
pub(crate) struct PciConfig<'a>(pub(crate) pci::ConfigSpace<'a, pci::Extended>);

impl ConfigSpace for PciConfig<'_> {
    fn read32(&self, off: u16) -> Option<u32> {
        self.0.try_read32(usize::from(off)).ok()
    }
}

/// The BAR that holds the mailbox, revoked when the device is unbound.
pub(crate) struct BarIo<'a>(pub(crate) &'a DevresBar);

impl Mapping for BarIo<'_> {
    type Regs<'r> = BarRegs<'r>;

    /// Runs `f` on the registers while the BAR's revocable guard is held.
    ///
    /// # Errors
    ///
    /// [`IoError::Gone`] once the mapping is revoked (unbind).
    #[inline]
    fn with<R>(&self, f: impl FnOnce(&BarRegs<'_>) -> R) -> Result<R, IoError> {
        let bar = self.0.try_access().ok_or(IoError::Gone)?;
        Ok(f(&BarRegs(&bar)))
    }
}

/// Access to the mapped BAR while its revocable guard is held.
pub(crate) struct BarRegs<'a>(&'a pci::Bar<'a>);

fn range<T>(r: kernel::error::Result<T>) -> Result<T, IoError> {
    r.map_err(|_| IoError::Range)
}

impl BarRegs<'_> {
    /// A view of `len` bytes of the BAR at `off`, for block copies.
    ///
    /// # Errors
    ///
    /// [`IoError::Range`] when it does not lie within the BAR.
    #[cfg(CONFIG_64BIT)]
    fn view(&self, off: usize, len: usize) -> Result<Mmio<'_, [u8]>, IoError> {
        let end = off.checked_add(len).ok_or(IoError::Range)?;
        if end > Io::size(self.0) {
            return Err(IoError::Range);
        }
        let whole = IoBase::as_view(self.0);
        let start = MmioBackend::as_ptr(whole)
            .cast::<u8>()
            .wrapping_byte_add(off);
        let part = core::ptr::slice_from_raw_parts_mut(start, len);
        // SAFETY: `part` is a projection of the BAR's view: it starts `off` bytes into it and
        // ends at `off + len`, which is checked above to lie within the BAR's size.
        Ok(unsafe { MmioBackend::project_view(whole, part) })
    }
}

impl RegIo for BarRegs<'_> {
    /// Reads a 32-bit register.
    ///
    /// # Errors
    ///
    /// [`IoError::Range`] when it is not 4-byte aligned or does not lie within the BAR.
    #[inline]
    fn read32(&self, off: usize) -> Result<u32, IoError> {
        range(self.0.try_read32(off))
    }

    /// Reads a 64-bit register.
    ///
    /// # Errors
    ///
    /// [`IoError::Range`] when it is not 8-byte aligned or does not lie within the BAR.
    #[cfg(CONFIG_64BIT)]
    #[inline]
    fn read64(&self, off: usize) -> Result<u64, IoError> {
        range(self.0.try_read64(off))
    }

    /// 32-bit ARM: one LDRD (single-copy atomic on ARMv7 cores with LPAE, such as Cortex-A7
    /// and A15, and one 64-bit access in QEMU).
    ///
    /// # Errors
    ///
    /// [`IoError::Range`] when it is not 8-byte aligned or does not lie within the BAR.
    #[cfg(all(CONFIG_ARM, not(CONFIG_64BIT)))]
    fn read64(&self, off: usize) -> Result<u64, IoError> {
        range(arm32::read64(self.0, off))
    }

    /// Other 32-bit kernels: low dword, then high dword.
    ///
    /// # Errors
    ///
    /// [`IoError::Range`] when it is not 4-byte aligned or does not lie within the BAR.
    #[cfg(all(not(CONFIG_ARM), not(CONFIG_64BIT)))]
    fn read64(&self, off: usize) -> Result<u64, IoError> {
        let lo = self.read32(off)?;
        let hi = self.read32(off.checked_add(4).ok_or(IoError::Range)?)?;
        Ok((u64::from(hi) << 32) | u64::from(lo))
    }

    /// Writes a 32-bit register.
    ///
    /// # Errors
    ///
    /// [`IoError::Range`] when it is not 4-byte aligned or does not lie within the BAR.
    #[inline]
    fn write32(&self, off: usize, val: u32) -> Result<(), IoError> {
        range(self.0.try_write32(val, off))
    }

    /// Writes a 64-bit register with one 64-bit store.
    ///
    /// # Errors
    ///
    /// [`IoError::Range`] when it is not 8-byte aligned or does not lie within the BAR.
    #[cfg(CONFIG_64BIT)]
    #[inline]
    fn write64(&self, off: usize, val: u64) -> Result<(), IoError> {
        range(self.0.try_write64(val, off))
    }

    /// 32-bit ARM: one STRD, so the Command register still gets a single 64-bit store.
    ///
    /// # Errors
    ///
    /// [`IoError::Range`] when it is not 8-byte aligned or does not lie within the BAR.
    #[cfg(all(CONFIG_ARM, not(CONFIG_64BIT)))]
    fn write64(&self, off: usize, val: u64) -> Result<(), IoError> {
        range(arm32::write64(self.0, off, val))
    }

    /// Other 32-bit kernels have no 64-bit store: low dword, then high dword. A device that,
    /// like QEMU's, only latches 64-bit writes of the Command register cannot be driven so.
    ///
    /// # Errors
    ///
    /// [`IoError::Range`] when it is not 4-byte aligned or does not lie within the BAR (the
    /// low dword may then be written).
    #[cfg(all(not(CONFIG_ARM), not(CONFIG_64BIT)))]
    fn write64(&self, off: usize, val: u64) -> Result<(), IoError> {
        // Truncation intended: the low and the high dword.
        self.write32(off, val as u32)?;
        self.write32(
            off.checked_add(4).ok_or(IoError::Range)?,
            (val >> 32) as u32,
        )
    }

    /// 64-bit kernels: a dword to reach 8-byte alignment, then `memcpy_toio` of whole qwords
    /// (x86 copies them with 32-bit `movs`, arm64 with 64-bit stores), then the rest as dwords,
    /// zero-padded. No access is narrower than 32 bits: devices may accept only 4- and 8-byte
    /// accesses to their payload registers (the device emulator does).
    ///
    /// # Errors
    ///
    /// [`IoError::Range`] when `off` is not 4-byte aligned or the block does not lie within
    /// the BAR.
    #[cfg(CONFIG_64BIT)]
    fn write_block(&self, off: usize, data: &[u8]) -> Result<(), IoError> {
        let (head, body) = split_block(off, data.len())?;
        let (first, rest) = data.split_at(head);
        let (middle, last) = rest.split_at(body);
        write_dwords(self, off, first)?;
        let at = off.saturating_add(head);
        if !middle.is_empty() {
            // The view is exactly `middle.len()` bytes long, so the copy's length check holds.
            self.view(at, middle.len())?.copy_from_slice(middle);
        }
        write_dwords(self, at.saturating_add(body), last)
    }

    /// 32-bit kernels: `memcpy_toio` of 32-bit ARM copies byte by byte, which the payload
    /// registers need not accept (and which costs four accesses per dword): dwords instead.
    ///
    /// # Errors
    ///
    /// As the 64-bit version.
    #[cfg(not(CONFIG_64BIT))]
    fn write_block(&self, off: usize, data: &[u8]) -> Result<(), IoError> {
        write_dwords(self, off, data)
    }

    /// The counterpart of [`Self::write_block`] with `memcpy_fromio`.
    ///
    /// # Errors
    ///
    /// [`IoError::Range`] when `off` is not 4-byte aligned or the block does not lie within
    /// the BAR.
    #[cfg(CONFIG_64BIT)]
    fn read_block(&self, off: usize, out: &mut [u8]) -> Result<(), IoError> {
        let (head, body) = split_block(off, out.len())?;
        let (first, rest) = out.split_at_mut(head);
        let (middle, last) = rest.split_at_mut(body);
        read_dwords(self, off, first)?;
        let at = off.saturating_add(head);
        if !middle.is_empty() {
            // The view is exactly `middle.len()` bytes long, so the copy's length check holds.
            self.view(at, middle.len())?.copy_to_slice(middle);
        }
        read_dwords(self, at.saturating_add(body), last)
    }

    /// See [`Self::write_block`] for 32-bit kernels.
    ///
    /// # Errors
    ///
    /// As the 64-bit version.
    #[cfg(not(CONFIG_64BIT))]
    fn read_block(&self, off: usize, out: &mut [u8]) -> Result<(), IoError> {
        read_dwords(self, off, out)
    }
}

/// Splits a block copy of `len` bytes at BAR offset `off` (4-byte aligned) into the length of
/// a head copied as one dword (up to 8-byte alignment) and of a body of whole qwords for
/// `memcpy`; the rest is copied as dwords.
///
/// # Errors
///
/// [`IoError::Range`] when `off` is not 4-byte aligned.
#[cfg(CONFIG_64BIT)]
fn split_block(off: usize, len: usize) -> Result<(usize, usize), IoError> {
    if off % 4 != 0 {
        return Err(IoError::Range);
    }
    let head = if off % 8 == 4 { len.min(4) } else { 0 };
    Ok((head, len.saturating_sub(head) & !7))
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
        io::{
            Io,
            IoBackend,
            IoBase,
            MmioBackend, //
        },
        pci,
        prelude::*,
    };

    // The kernel's Rust target for 32-bit ARM is ARMv6, whose assembler does not know the
    // ARMv7 barrier mnemonics, so `dsb st` and `dsb sy` (what `wmb()` and `rmb()` are on
    // ARMv7) are emitted by their ARM-state encodings. The module is built for ARM state
    // (the kernel is built without THUMB2_KERNEL, see Documentation/bmc.rst).

    /// The mapped address of `off` in `bar`, if an 8-byte access there stays inside the BAR
    /// and is 8-byte aligned.
    ///
    /// # Errors
    ///
    /// EINVAL when it is not 8-byte aligned or does not lie within the BAR.
    fn addr(bar: &pci::Bar<'_>, off: usize) -> Result<usize> {
        let end = off.checked_add(8).ok_or(EINVAL)?;
        if off % 8 != 0 || end > bar.size() {
            return Err(EINVAL);
        }
        // A pointer's address: `usize` is its width.
        let base = MmioBackend::as_ptr(bar.as_view()).cast::<u8>() as usize;
        base.checked_add(off).ok_or(EINVAL)
    }

    /// Writes the 64-bit register at `off` with one STRD.
    ///
    /// # Errors
    ///
    /// EINVAL as [`addr`].
    pub(super) fn write64(bar: &pci::Bar<'_>, off: usize, val: u64) -> Result {
        let a = addr(bar, off)?;
        // Truncation intended: the low and the high word of the register pair.
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

    /// Reads the 64-bit register at `off` with one LDRD.
    ///
    /// # Errors
    ///
    /// EINVAL as [`addr`].
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
