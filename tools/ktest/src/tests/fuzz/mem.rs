// SPDX-License-Identifier: GPL-2.0

//! Memory the fuzzer points the kernel at: an arena of user memory followed by a guard page
//! (PROT_NONE, so a buffer that ends in it crosses into memory the kernel cannot access, and
//! nothing else is ever mapped there), and the classes of user pointers it tries.

use anyhow::{bail, Result};
use rand::RngExt;
use rand_xorshift::XorShiftRng;

/// Bytes checked after every buffer the kernel may write to.
pub const GUARD: usize = 64;
/// The guard pattern.
pub const FILL: u8 = 0xa5;
/// Largest data buffer (an MMPT message, PCIe MMPT ECN: 1 MiB).
pub const MAX_DATA: usize = swcci::proto::mmpt::MAX_MESSAGE;
/// Bytes before the guard page where buffers that cross into it are placed.
const EDGE: usize = 16 << 10;

/// The three regions of an arena, and the edge before its guard page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Region {
    /// The ioctl argument structure.
    Arg,
    /// Input data.
    Input,
    /// Output data.
    Output,
}

/// A user pointer of some class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ptr {
    /// Valid, aligned memory.
    Valid,
    /// Valid memory at an odd address.
    Misaligned(u8),
    /// NULL.
    Null,
    /// An unmapped address below mmap_min_addr.
    Low,
    /// A kernel address.
    Kernel,
    /// An address user space cannot have (above the user address range; on 32-bit kernels a
    /// 64-bit value whose low half points at valid memory, which a truncating driver would
    /// accept).
    High,
    /// Starts `n` bytes before the guard page: the rest of the buffer is not accessible.
    Crossing(usize),
}

impl Ptr {
    /// Whether the kernel can access the whole buffer.
    pub fn valid(self) -> bool {
        matches!(self, Self::Valid | Self::Misaligned(_))
    }

    /// A random pointer the kernel must refuse for a buffer of `len` (>= 1) bytes.
    pub fn bad(rng: &mut XorShiftRng, len: usize) -> Self {
        match rng.random_range(0..5u8) {
            0 => Self::Null,
            1 => Self::Low,
            2 => Self::Kernel,
            3 => Self::High,
            _ => Self::Crossing(rng.random_range(0..len.clamp(1, EDGE))),
        }
    }

    /// A random valid pointer.
    pub fn good(rng: &mut XorShiftRng) -> Self {
        if rng.random_bool(0.2) {
            Self::Misaligned(rng.random_range(1..8u8))
        } else {
            Self::Valid
        }
    }
}

/// A kernel address of this architecture (the direct map).
#[cfg(target_arch = "x86_64")]
const KERNEL_ADDR: u64 = 0xffff_8880_0100_0000;
#[cfg(target_arch = "aarch64")]
const KERNEL_ADDR: u64 = 0xffff_0000_0100_0000;
#[cfg(target_arch = "arm")]
const KERNEL_ADDR: u64 = 0xc010_0000;
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64", target_arch = "arm")))]
const KERNEL_ADDR: u64 = 0xffff_ffff_0000_0000;

/// Per-thread user memory: regions for the argument, input and output, then a guard page.
pub struct Arena {
    base: *mut u8,
    /// Accessible bytes; the guard page follows.
    len: usize,
    page: usize,
}

// SAFETY: the arena is plain anonymous memory owned by one thread at a time.
unsafe impl Send for Arena {}

impl Arena {
    /// Offset of each region (input and output hold up to [`MAX_DATA`] + [`GUARD`] bytes).
    fn offset(&self, r: Region) -> usize {
        let data = (MAX_DATA + GUARD).div_ceil(self.page) * self.page;
        match r {
            Region::Arg => 256,
            Region::Input => self.page,
            Region::Output => self.page + data,
        }
    }

    /// Maps a new arena.
    pub fn new() -> Result<Self> {
        // SAFETY: sysconf has no memory effects.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
        let data = (MAX_DATA + GUARD).div_ceil(page) * page;
        let len = page + 2 * data + EDGE.div_ceil(page) * page;
        // SAFETY: a fresh private anonymous mapping; nothing else refers to it.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len + page,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            bail!(
                "mmap of the fuzzer's arena: {}",
                std::io::Error::last_os_error()
            );
        }
        // SAFETY: the last page of the mapping made above.
        if unsafe { libc::mprotect(base.cast::<u8>().add(len).cast(), page, libc::PROT_NONE) } != 0
        {
            bail!(
                "mprotect of the guard page: {}",
                std::io::Error::last_os_error()
            );
        }
        Ok(Self {
            base: base.cast(),
            len,
            page,
        })
    }

    /// The accessible bytes `off..off + n`.
    fn bytes(&mut self, off: usize, n: usize) -> &mut [u8] {
        assert!(
            off.checked_add(n).is_some_and(|e| e <= self.len),
            "arena overflow"
        );
        // SAFETY: in bounds of the accessible part of the mapping, which `self` owns; the
        // returned borrow keeps other borrows out.
        unsafe { std::slice::from_raw_parts_mut(self.base.add(off), n) }
    }

    /// Places `data` (followed by [`GUARD`] guard bytes, `room` bytes in all) in `r` at a
    /// pointer of class `p`; returns the address to give the kernel. Bad pointers are not
    /// backed by `data` (except the accessible start of a crossing buffer).
    pub fn place(&mut self, r: Region, p: Ptr, data: &[u8], room: usize) -> u64 {
        let room = room.max(data.len());
        let (off, fits) = match p {
            Ptr::Valid => (self.offset(r), true),
            Ptr::Misaligned(m) => (self.offset(r) + usize::from(m), true),
            Ptr::Crossing(n) => (self.len - n.min(EDGE), false),
            Ptr::Null => return 0,
            Ptr::Low => return 0x10,
            Ptr::Kernel => return KERNEL_ADDR,
            Ptr::High => {
                let low = self.base as u64 + self.offset(r) as u64;
                return if usize::BITS == 32 {
                    (1 << 32) | low
                } else {
                    0x8000_0000_0000_0000 | low
                };
            }
        };
        if fits {
            // Guard bytes on both sides.
            let buf = self.bytes(off - GUARD, GUARD + room + GUARD);
            buf.fill(FILL);
            let buf = &mut buf[GUARD..];
            buf[..data.len()].copy_from_slice(data);
        } else {
            let avail = self.len - off;
            let n = data.len().min(avail);
            let buf = self.bytes(off, avail);
            buf.fill(FILL);
            buf[..n].copy_from_slice(&data[..n]);
        }
        self.base as u64 + off as u64
    }

    /// Reads back `n` bytes at `addr` (an address [`Self::place`] returned for a valid
    /// pointer).
    pub fn read(&mut self, addr: u64, n: usize) -> Vec<u8> {
        let off = (addr - self.base as u64) as usize;
        self.bytes(off, n).to_vec()
    }

    /// Whether the [`GUARD`] bytes before `addr` (placed with a valid pointer) are intact.
    pub fn untouched_before(&mut self, addr: u64) -> bool {
        self.untouched(addr - GUARD as u64, GUARD)
    }

    /// Whether the `n` bytes at `addr` all still hold the guard pattern.
    pub fn untouched(&mut self, addr: u64, n: usize) -> bool {
        self.read(addr, n).iter().all(|&b| b == FILL)
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `new`.
        unsafe { libc::munmap(self.base.cast(), self.len + self.page) };
    }
}
