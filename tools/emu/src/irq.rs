// SPDX-License-Identifier: GPL-2.0

//! Interrupt delivery: the device model signals MSI-X vectors through an [`IrqSink`], so that
//! the model can be tested with a [`FakeIrqs`] that only counts, while the server uses
//! [`EventFdIrqs`], the eventfds QEMU hands over with VFIO_USER_DEVICE_SET_IRQS.
//!
//! Masking is QEMU's business: QEMU emulates the MSI-X table, and when it reads a signalled
//! eventfd for a masked vector it sets the pending bit itself. The device therefore signals
//! whenever it has something to say; a vector without an eventfd (MSI-X disabled, or the
//! vector not in use) drops the interrupt and [`IrqSink::fire`] reports that.

use std::fs::File;
use std::io::Write;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Number of MSI-X vectors the function has.
pub const MSIX_VECTORS: usize = 16;
/// Eventfds kept: the most vectors of either kind (MSI has up to 32 messages).
pub const IRQ_SLOTS: usize = 32;

/// Where interrupts go.
pub trait IrqSink: Send + Sync {
    /// Signals MSI-X `vector`. Returns whether it was delivered to someone.
    fn fire(&self, vector: u16) -> bool;
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not take interrupt delivery down with it.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The eventfds of the MSI-X vectors, as set by VFIO_USER_DEVICE_SET_IRQS.
#[derive(Debug, Default)]
pub struct EventFdIrqs {
    fds: Mutex<Vec<Option<File>>>,
}

impl EventFdIrqs {
    /// No eventfds yet.
    pub fn new() -> Self {
        Self {
            fds: Mutex::new((0..IRQ_SLOTS).map(|_| None).collect()),
        }
    }

    /// Installs `fds` for vectors `start..start + count`; with no fds, removes the eventfds of
    /// those vectors (QEMU sends runs of "-1" descriptors that way). Vectors beyond the table
    /// are ignored. Returns how many vectors now have an eventfd.
    pub fn set(&self, start: u32, count: u32, fds: Vec<File>) -> usize {
        let mut table = lock(&self.fds);
        let start = usize::try_from(start).unwrap_or(usize::MAX);
        let count = usize::try_from(count).unwrap_or(usize::MAX);
        if fds.is_empty() {
            for slot in table.iter_mut().skip(start).take(count) {
                *slot = None;
            }
        } else {
            for (slot, fd) in table.iter_mut().skip(start).take(count).zip(fds) {
                *slot = Some(fd);
            }
        }
        table.iter().filter(|s| s.is_some()).count()
    }

    /// Removes every eventfd (SET_IRQS with count 0, or a device reset).
    pub fn clear(&self) {
        for slot in lock(&self.fds).iter_mut() {
            *slot = None;
        }
    }
}

impl IrqSink for EventFdIrqs {
    fn fire(&self, vector: u16) -> bool {
        let mut table = lock(&self.fds);
        match table.get_mut(usize::from(vector)) {
            Some(Some(fd)) => fd.write_all(&1u64.to_ne_bytes()).is_ok(),
            _ => false,
        }
    }
}

/// Counts interrupts per vector (tests).
#[cfg(test)]
#[derive(Debug, Default)]
pub struct FakeIrqs {
    counts: Mutex<Vec<u64>>,
    /// Whether to report delivery (false: behaves like a vector without an eventfd).
    pub connected: std::sync::atomic::AtomicBool,
}

#[cfg(test)]
impl FakeIrqs {
    /// A connected sink with zero counts.
    pub fn new() -> Self {
        Self {
            counts: Mutex::new(vec![0; IRQ_SLOTS]),
            connected: std::sync::atomic::AtomicBool::new(true),
        }
    }

    /// Interrupts delivered on `vector`.
    pub fn count(&self, vector: u16) -> u64 {
        lock(&self.counts)
            .get(usize::from(vector))
            .copied()
            .unwrap_or(0)
    }

    /// Interrupts delivered on all vectors.
    pub fn total(&self) -> u64 {
        lock(&self.counts).iter().sum()
    }
}

#[cfg(test)]
impl IrqSink for FakeIrqs {
    fn fire(&self, vector: u16) -> bool {
        if !self.connected.load(std::sync::atomic::Ordering::Relaxed) {
            return false;
        }
        match lock(&self.counts).get_mut(usize::from(vector)) {
            Some(c) => {
                *c += 1;
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::fd::FromRawFd;

    fn eventfd() -> File {
        // SAFETY: eventfd(2) with valid flags returns a new descriptor or -1.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        assert!(fd >= 0);
        // SAFETY: `fd` is a fresh descriptor owned by nobody else.
        unsafe { File::from_raw_fd(fd) }
    }

    #[test]
    fn eventfds_signal_and_clear() {
        let irqs = EventFdIrqs::new();
        assert!(!irqs.fire(1), "no eventfd yet");
        let fd = eventfd();
        let mut reader = fd.try_clone().unwrap();
        assert_eq!(irqs.set(1, 1, vec![fd]), 1);
        assert!(irqs.fire(1));
        assert!(irqs.fire(1));
        assert!(!irqs.fire(2));
        assert!(!irqs.fire(99), "out of the table");
        let mut b = [0u8; 8];
        reader.read_exact(&mut b).unwrap();
        assert_eq!(u64::from_ne_bytes(b), 2);
        assert_eq!(irqs.set(0, 4, Vec::new()), 0);
        assert!(!irqs.fire(1));
        assert_eq!(irqs.set(31, 5, vec![eventfd(), eventfd()]), 1);
        irqs.clear();
        assert!(!irqs.fire(31));
    }
}
