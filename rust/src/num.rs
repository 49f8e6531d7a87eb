// SPDX-License-Identifier: GPL-2.0

//! Decimal formatting of 64-bit counters on every architecture.
//!
//! `core`'s decimal formatting of `u64` divides 64-bit numbers. On 32-bit ARM that calls
//! `__aeabi_uldivmod`, which the kernel provides only as a stub that panics ("`u64`
//! division/modulo should not be used"), so `{}` of a `u64` oopses a 32-bit ARM kernel. The
//! module prints 64-bit values in decimal through [`Dec`] instead; `make` checks that the
//! 32-bit ARM module does not reference `core`'s `u64`/`i64` decimal formatting.

use core::fmt;

/// Formats a `u64` in decimal with 32-bit arithmetic only. Honours width, fill and alignment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dec(pub u64);

/// `n / d` and `n % d` by shift and subtract, 64 steps.
fn divmod(n: u64, d: u32) -> (u64, u32) {
    let d = u64::from(d);
    let (mut q, mut r) = (0u64, 0u64);
    for bit in (0..64).rev() {
        // `r < d < 2^32` before the shift, so `r << 1 | 1` fits in 64 bits.
        r = (r << 1) | ((n >> bit) & 1);
        if r >= d {
            r = r.wrapping_sub(d);
            q |= 1 << bit;
        }
    }
    // `r < d`, which fits in 32 bits.
    (q, r as u32)
}

impl fmt::Display for Dec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const BILLION: u32 = 1_000_000_000;
        if let Ok(small) = u32::try_from(self.0) {
            return fmt::Display::fmt(&small, f);
        }
        // u64::MAX has 20 digits: at most 2 above 10^18, then two groups of 9.
        let (q, low) = divmod(self.0, BILLION);
        let (high, mid) = divmod(q, BILLION);
        // `self.0 >= 2^32`, so `q >= 4` and `high < 2^64 / 10^18 < 19`.
        let mut buf = [b'0'; 20];
        let mut start = buf.len();
        for (group, min_digits) in [
            (low, 9),
            (mid, if high == 0 { 1 } else { 9 }),
            (high as u32, 0),
        ] {
            let end = start;
            let mut v = group;
            while v != 0 || end.wrapping_sub(start) < min_digits {
                let Some(slot) = start.checked_sub(1).and_then(|i| buf.get_mut(i)) else {
                    break;
                };
                // `v % 10 < 10`.
                *slot = b'0'.wrapping_add((v % 10) as u8);
                v /= 10;
                start = start.wrapping_sub(1);
            }
        }
        let s = buf
            .get(start..)
            .and_then(|d| core::str::from_utf8(d).ok())
            .unwrap_or("?");
        f.pad_integral(true, "", s)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::format;

    #[test]
    fn matches_core_formatting() {
        let mut values = std::vec![
            0,
            1,
            9,
            u64::from(u32::MAX),
            u64::from(u32::MAX) + 1,
            999_999_999,
            1_000_000_000,
            1_000_000_000_000_000_000,
            999_999_999_999_999_999,
            10_000_000_000_000_000_000,
            u64::MAX,
            u64::MAX - 1,
            4_294_967_296_000_000_001,
        ];
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            values.push(x);
            values.push(x >> (x % 64));
        }
        for v in values {
            assert_eq!(format!("{}", Dec(v)), format!("{v}"), "{v}");
        }
    }

    #[test]
    fn honours_width_and_alignment() {
        assert_eq!(
            format!("{:>24}", Dec(u64::MAX)),
            format!("{:>24}", u64::MAX)
        );
        assert_eq!(format!("{:<12}|", Dec(5_000_000_000)), "5000000000  |");
        assert_eq!(format!("{:012}", Dec(5_000_000_000)), "005000000000");
        assert_eq!(format!("{:5}", Dec(7)), "    7");
    }

    #[test]
    fn divmod_is_division() {
        for (n, d) in [(u64::MAX, 1_000_000_000), (12345, 10), (0, 7), (1 << 63, 3)] {
            assert_eq!(divmod(n, d), (n / u64::from(d), (n % u64::from(d)) as u32));
        }
    }
}
