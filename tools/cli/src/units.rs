// SPDX-License-Identifier: GPL-2.0

//! Command-line values of the pooling commands: sizes with binary units (`256M`, `1G`,
//! `2MiB`, `0x10000000`), extents (`DPA:LENGTH`) and tags (UUIDs).

use swcci::dcd::Extent;
use swcci::proto::payload::logs::Uuid;

/// Binary unit suffixes and their shifts; a bare number is bytes. `K`, `M`, `G` and `T` are
/// powers of 1024 (as dd, numfmt --from=iec and QEMU take them); `KiB`... and `KB`... mean the
/// same; `B` is bytes.
const UNITS: &[(&str, u32)] = &[
    ("kib", 10),
    ("mib", 20),
    ("gib", 30),
    ("tib", 40),
    ("kb", 10),
    ("mb", 20),
    ("gb", 30),
    ("tb", 40),
    ("k", 10),
    ("m", 20),
    ("g", 30),
    ("t", 40),
    ("b", 0),
];

/// A size in bytes: a number (decimal, or hex with `0x`) and an optional binary unit: `4096`,
/// `0x200000`, `2M`, `256MiB`, `1G`, `1GB` (= 1 GiB).
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let bad = || {
        format!(
            "expected a size such as 4096, 0x200000, 2M, 256MiB or 1G (units are powers of \
             1024), got {s:?}"
        )
    };
    let t = s.trim();
    if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        return u64::from_str_radix(h, 16).map_err(|_| bad());
    }
    let digits = t.len() - t.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let (num, unit) = t.split_at(digits);
    if num.is_empty() {
        return Err(bad());
    }
    let n: u64 = num.parse().map_err(|_| bad())?;
    let unit = unit.trim().to_ascii_lowercase();
    let shift = if unit.is_empty() {
        0
    } else {
        UNITS
            .iter()
            .find(|(u, _)| *u == unit)
            .map(|(_, s)| *s)
            .ok_or_else(bad)?
    };
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| format!("{s:?} is more than 2^64 bytes"))
}

/// An extent `DPA:LENGTH`, both sizes as [`parse_bytes`] takes them: `0x10000000:256M`,
/// `256M:2M`.
pub fn parse_extent(s: &str) -> Result<Extent, String> {
    let (dpa, len) = s
        .split_once(':')
        .ok_or_else(|| format!("expected DPA:LENGTH such as 0x10000000:256M, got {s:?}"))?;
    Ok(Extent::new(parse_bytes(dpa)?, parse_bytes(len)?))
}

/// A tag: a UUID, `8-4-4-4-12` hex digits or 32 hex digits, in the byte order it is written.
pub fn parse_tag(s: &str) -> Result<Uuid, String> {
    let hex: String = s.trim().chars().filter(|c| *c != '-').collect();
    let bad = || format!("expected a UUID such as 5f6e7d8c-0000-4000-8000-00000000abcd, got {s:?}");
    if hex.len() != 32 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let mut b = [0u8; 16];
    for (i, byte) in b.iter_mut().enumerate() {
        *byte = hex
            .get(2 * i..2 * i + 2)
            .and_then(|x| u8::from_str_radix(x, 16).ok())
            .ok_or_else(bad)?;
    }
    Ok(Uuid(b))
}

/// Parses an unsigned number: decimal, or hex with a `0x` prefix.
pub fn parse_number(s: &str) -> Option<u64> {
    let s = s.trim();
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}
/// A host id: 0 to 65535 (for an MLD-based DCD, the LD id of the host's LD).
pub fn parse_host(s: &str) -> Result<u16, String> {
    parse_number(s)
        .and_then(|n| u16::try_from(n).ok())
        .ok_or_else(|| "expected a host id from 0 to 65535".to_string())
}

/// A DPA or address as text: `0x10000000`.
pub fn hex(n: u64) -> String {
    format!("{n:#x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        for (s, n) in [
            ("4096", 4096),
            ("0x200000", 2 << 20),
            ("2M", 2 << 20),
            ("2m", 2 << 20),
            ("256MiB", 256 << 20),
            ("1G", 1 << 30),
            ("1GB", 1 << 30),
            ("1 GiB", 1 << 30),
            ("3k", 3072),
            ("7b", 7),
            ("2T", 2 << 40),
            ("0", 0),
        ] {
            assert_eq!(parse_bytes(s), Ok(n), "{s}");
        }
        for bad in ["", "M", "1.5G", "-1", "1X", "0xg", "1 2"] {
            assert!(parse_bytes(bad).is_err(), "{bad}");
        }
        assert!(parse_bytes("17000000T")
            .unwrap_err()
            .contains("more than 2^64"));
    }

    #[test]
    fn extents_and_tags() {
        assert_eq!(
            parse_extent("0x10000000:256M"),
            Ok(Extent::new(256 << 20, 256 << 20))
        );
        assert_eq!(parse_extent("512M:2M"), Ok(Extent::new(512 << 20, 2 << 20)));
        assert!(parse_extent("512M").is_err());
        assert!(parse_extent("512M:x").is_err());
        let t = parse_tag("0da9c0b5-bf41-4b78-8f79-96b1623b3f17").unwrap();
        assert_eq!(t.to_string(), "0da9c0b5-bf41-4b78-8f79-96b1623b3f17");
        assert_eq!(parse_tag("0da9c0b5bf414b788f7996b1623b3f17"), Ok(t));
        assert!(parse_tag("0da9c0b5").is_err());
        assert!(parse_tag("zda9c0b5-bf41-4b78-8f79-96b1623b3f17").is_err());
        assert_eq!(parse_host("1"), Ok(1));
        assert!(parse_host("65536").is_err());
        assert_eq!(hex(256 << 20), "0x10000000");
    }
}
