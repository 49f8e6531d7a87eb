// SPDX-License-Identifier: GPL-2.0

//! The [`register!`] macro: typed register values with bitfield accessors.
//!
//! The syntax follows the kernel's `kernel::io::register!` so that the layouts read the same way
//! in both places, but the generated types are plain values (no I/O): the same definitions are
//! compiled into the kernel module, the host tools and the device emulators.
//!
//! ```
//! use swcci_proto::regs::MboxCmd;
//! // The mailbox Command register: opcode in 15:0, payload length in 36:16.
//! let cmd = MboxCmd::default().with_opcode(0x5100).with_payload_len(4);
//! assert_eq!(cmd.0, 0x4_5100);
//! assert_eq!(cmd.payload_len(), 4);
//! assert_eq!(MboxCmd::OFFSET, 0x08);
//! ```
//!
//! Setters truncate the value to the field's width. The macro is crate-internal (used through
//! textual scope) so that the same source compiles as a module of the kernel crate.

/// Defines register value types with bitfield getters and `with_` setters.
///
/// `HI:LO getter, setter: TYPE;` declares a field spanning bits `HI` down to `LO` (inclusive),
/// read as `TYPE` (`bool`, `u8`, `u16`, `u32` or `u64`).
macro_rules! register {
    (
        $(
            $(#[$meta:meta])*
            $vis:vis $name:ident($storage:ty) @ $offset:literal {
                $(
                    $(#[$fmeta:meta])*
                    $hi:literal : $lo:literal $get:ident, $set:ident : $fty:tt;
                )*
            }
        )*
    ) => {
        $(
            $(#[$meta])*
            #[derive(Clone, Copy, PartialEq, Eq, Default, Debug)]
            #[repr(transparent)]
            $vis struct $name(pub $storage);

            #[allow(clippy::unnecessary_cast)]
            impl $name {
                /// Offset of this register from the start of its register block.
                pub const OFFSET: usize = $offset;

                /// Offset of this register in a BAR whose register block starts at `base`
                /// (saturating: an offset past the end of the address space fails the access's
                /// bounds check instead of wrapping).
                #[inline]
                pub const fn at(base: usize) -> usize {
                    base.saturating_add(Self::OFFSET)
                }

                $(
                    $(#[$fmeta])*
                    #[inline]
                    pub const fn $get(self) -> $fty {
                        let v = super::macros::field_get(self.0 as u64, $hi, $lo);
                        register!(@from_u64 $fty, v)
                    }

                    $(#[$fmeta])*
                    #[inline]
                    #[must_use]
                    pub const fn $set(self, value: $fty) -> Self {
                        Self(super::macros::field_set(self.0 as u64, $hi, $lo, value as u64) as $storage)
                    }
                )*
            }
        )*
    };
    (@from_u64 bool, $v:expr) => { $v != 0 };
    (@from_u64 $t:ty, $v:expr) => { $v as $t };
}

/// Mask of a field of `HI:LO` bits, shifted down to bit 0.
#[inline]
pub(crate) const fn field_mask(hi: u32, lo: u32) -> u64 {
    let width = hi.wrapping_sub(lo).wrapping_add(1);
    if width >= 64 {
        u64::MAX
    } else {
        u64::MAX.wrapping_shr(64u32.wrapping_sub(width))
    }
}

/// Extracts bits `HI:LO` of `raw`.
#[inline]
pub(crate) const fn field_get(raw: u64, hi: u32, lo: u32) -> u64 {
    raw.wrapping_shr(lo) & field_mask(hi, lo)
}

/// Replaces bits `HI:LO` of `raw` with `value` (truncated to the field width).
#[inline]
pub(crate) const fn field_set(raw: u64, hi: u32, lo: u32, value: u64) -> u64 {
    let mask = field_mask(hi, lo);
    (raw & !mask.wrapping_shl(lo)) | (value & mask).wrapping_shl(lo)
}
