// SPDX-License-Identifier: GPL-2.0

//! FM-API MLD Components command set, CXL r3.1 §7.6.7.4: Get LD Info (5400h, §7.6.7.4.1), Get
//! LD Allocations (5401h, §7.6.7.4.2) and Set LD Allocations (5402h, §7.6.7.4.3), sent to a
//! multi-logical device (usually through a Tunnel Management Command to the switch port it
//! sits behind).
//!
//! Both directions of every payload are here, so that the library and the device emulator
//! agree on them; so are the rules of an allocation ([`check_ld_allocations`]), which the
//! library checks before it sends Set LD Allocations and the emulator applies to what it
//! receives.

use crate::payload::dcd::{shl_checked, Size};
use crate::wire::{DecodeError, EncodeError, Reader, Writer};
use core::fmt;

/// Size of the Get LD Info output.
pub const LD_INFO_LEN: usize = 11;
/// Size of the Get LD Allocations input.
pub const LD_ALLOCATIONS_REQUEST_LEN: usize = 2;
/// Size of the Get LD Allocations output header.
pub const LD_ALLOCATIONS_HEADER: usize = 4;
/// Size of one Get LD Allocations list entry.
pub const LD_ALLOCATION_ENTRY: usize = 16;
/// Size of the Set LD Allocations input and output header.
pub const SET_LD_ALLOCATIONS_HEADER: usize = 4;

/// Get LD Info output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LdInfo {
    /// Memory size of the device, in bytes.
    pub memory_size: u64,
    /// Number of LDs the device supports.
    pub ld_count: u16,
    /// QoS telemetry capability bits (bit 0: egress port congestion, bit 1: temporary
    /// throughput reduction).
    pub qos_telemetry: u8,
}

impl LdInfo {
    /// Decodes the output payload.
    pub fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(buf);
        Ok(Self {
            memory_size: r.u64("memory_size")?,
            ld_count: r.u16("ld_count")?,
            qos_telemetry: r.u8("qos_telemetry_capability")?,
        })
    }

    /// Encodes the output payload ([`LD_INFO_LEN`] bytes).
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        let mut w = Writer::new(out);
        w.u64(self.memory_size)?;
        w.u16(self.ld_count)?;
        w.u8(self.qos_telemetry)?;
        Ok(w.len())
    }
}

/// Encodes a Get LD Allocations input: list from LD `start`, at most `limit` entries.
pub const fn ld_allocations_request(start: u8, limit: u8) -> [u8; LD_ALLOCATIONS_REQUEST_LEN] {
    [start, limit]
}

/// Decodes a Get LD Allocations input into `(start, limit)`.
pub fn decode_ld_allocations_request(buf: &[u8]) -> Result<(u8, u8), DecodeError> {
    let mut r = Reader::new(buf);
    Ok((r.u8("start_ld_id")?, r.u8("ld_allocation_list_limit")?))
}

/// Memory granularity of LD allocations: the unit of the allocation multipliers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Granularity {
    /// 256 MiB.
    Mib256,
    /// 512 MiB.
    Mib512,
    /// 1 GiB.
    Gib1,
    /// A reserved code.
    Reserved(u8),
}

impl Granularity {
    /// From the raw code.
    pub const fn from_raw(v: u8) -> Self {
        match v {
            0 => Self::Mib256,
            1 => Self::Mib512,
            2 => Self::Gib1,
            v => Self::Reserved(v),
        }
    }

    /// The raw code.
    pub const fn raw(self) -> u8 {
        match self {
            Self::Mib256 => 0,
            Self::Mib512 => 1,
            Self::Gib1 => 2,
            Self::Reserved(v) => v,
        }
    }

    /// The unit in bytes, `None` for a reserved code.
    pub const fn bytes(self) -> Option<u64> {
        match self {
            Self::Mib256 => Some(256 << 20),
            Self::Mib512 => Some(512 << 20),
            Self::Gib1 => Some(1 << 30),
            Self::Reserved(_) => None,
        }
    }
}

/// One LD's allocation: two ranges, each a multiple of the granularity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LdAllocation {
    /// Range 1 allocation, in granularity units.
    pub range1: u64,
    /// Range 2 allocation, in granularity units.
    pub range2: u64,
}

/// Get LD Allocations output.
#[derive(Clone, Copy, Debug)]
pub struct LdAllocations<'a> {
    /// Number of LDs the device has enabled.
    pub number_of_lds: u8,
    /// Unit of the allocations.
    pub granularity: Granularity,
    /// LD id of the first entry.
    pub start_ld: u8,
    entries: &'a [u8],
}

impl<'a> LdAllocations<'a> {
    /// Decodes the output; every entry the header announces must be present.
    pub fn decode(buf: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(buf);
        let number_of_lds = r.u8("number_of_lds")?;
        let granularity = Granularity::from_raw(r.u8("memory_granularity")?);
        let start_ld = r.u8("start_ld_id")?;
        let n = r.u8("ld_allocation_list_length")?;
        let entries = r.bytes(
            "ld allocation list",
            usize::from(n).saturating_mul(LD_ALLOCATION_ENTRY),
        )?;
        Ok(Self {
            number_of_lds,
            granularity,
            start_ld,
            entries,
        })
    }

    /// Number of entries listed.
    pub const fn len(&self) -> usize {
        self.entries.len() / LD_ALLOCATION_ENTRY
    }

    /// Whether none are listed.
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The listed entries with their LD ids.
    pub fn iter(&self) -> impl Iterator<Item = (u8, LdAllocation)> + 'a {
        allocation_entries(self.entries, self.start_ld)
    }
}

/// Encodes a Get LD Allocations output listing `list` from LD `start_ld`; returns its length.
pub fn encode_ld_allocations(
    out: &mut [u8],
    number_of_lds: u8,
    granularity: Granularity,
    start_ld: u8,
    list: &[LdAllocation],
) -> Result<usize, EncodeError> {
    let n = u8::try_from(list.len()).map_err(|_| EncodeError::Invalid {
        what: "number of LD allocation entries",
    })?;
    let mut w = Writer::new(out);
    w.u8(number_of_lds)?;
    w.u8(granularity.raw())?;
    w.u8(start_ld)?;
    w.u8(n)?;
    for a in list {
        w.u64(a.range1)?;
        w.u64(a.range2)?;
    }
    Ok(w.len())
}

/// Encodes a Set LD Allocations (5402h) input, or its output (the same layout): the
/// allocations of `list.len()` LDs from LD `start_ld` (CXL r3.1 §7.6.7.4.3). Returns the
/// length.
pub fn encode_set_ld_allocations(
    out: &mut [u8],
    start_ld: u8,
    list: &[LdAllocation],
) -> Result<usize, EncodeError> {
    let n = u8::try_from(list.len()).map_err(|_| EncodeError::Invalid {
        what: "number of LD allocation entries",
    })?;
    let mut w = Writer::new(out);
    w.u8(n)?;
    w.u8(start_ld)?;
    w.zeros(2)?;
    for a in list {
        w.u64(a.range1)?;
        w.u64(a.range2)?;
    }
    Ok(w.len())
}

/// A decoded Set LD Allocations input or output: the allocations of consecutive LDs from
/// `start_ld`, in granularity units (the device's, from Get LD Allocations).
#[derive(Clone, Copy, Debug)]
pub struct SetLdAllocations<'a> {
    /// LD id of the first entry.
    pub start_ld: u8,
    entries: &'a [u8],
}

impl<'a> SetLdAllocations<'a> {
    /// Decodes the payload; every entry the header announces must be present.
    pub fn decode(buf: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(buf);
        let n = r.u8("number_of_lds")?;
        let start_ld = r.u8("start_ld_id")?;
        r.skip("reserved", 2)?;
        let entries = r.bytes(
            "ld allocation list",
            usize::from(n).saturating_mul(LD_ALLOCATION_ENTRY),
        )?;
        Ok(Self { start_ld, entries })
    }

    /// Number of entries.
    pub const fn len(&self) -> usize {
        self.entries.len() / LD_ALLOCATION_ENTRY
    }

    /// Whether there are none.
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The entries with their LD ids (LD ids past 255 are not listed).
    pub fn iter(&self) -> impl Iterator<Item = (u8, LdAllocation)> + 'a {
        allocation_entries(self.entries, self.start_ld)
    }
}

/// The 16-byte LD allocation entries in `entries` (range 1, range 2: u64 each) with their LD
/// ids from `start_ld` on (LD ids past 255 are not listed): the list Get LD Allocations
/// (5401h) and Set LD Allocations (5402h) share.
fn allocation_entries(
    entries: &[u8],
    start_ld: u8,
) -> impl Iterator<Item = (u8, LdAllocation)> + '_ {
    entries
        .chunks_exact(LD_ALLOCATION_ENTRY)
        .zip(start_ld..=u8::MAX)
        .filter_map(|(b, ld)| {
            let mut r = Reader::new(b);
            Some((
                ld,
                LdAllocation {
                    range1: r.u64("range_1").ok()?,
                    range2: r.u64("range_2").ok()?,
                },
            ))
        })
}

impl LdAllocation {
    /// Units of both ranges (`None` if the sum overflows).
    pub const fn units(&self) -> Option<u64> {
        self.range1.checked_add(self.range2)
    }
}

/// A rule a Set LD Allocations request breaks: found before it is sent (the library), or
/// when it is received (the device emulator).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LdRule {
    /// The request lists no LD.
    NoLds,
    /// LDs `start..start + count` are not all among the device's `lds` LDs.
    NoSuchLd {
        /// First LD of the request.
        start: u8,
        /// LDs in the request.
        count: usize,
        /// LDs the device has.
        lds: u16,
    },
    /// The device's granularity code is reserved: sizes cannot be computed.
    GranularityReserved {
        /// The code.
        code: u8,
    },
    /// A size that is not a multiple of the allocation granularity.
    NotGranular {
        /// The size, bytes.
        bytes: u64,
        /// The granularity, bytes.
        granularity: u64,
    },
    /// The allocations, with the other LDs' as they are, exceed the device's memory.
    ExceedsDevice {
        /// Bytes allocated in all after the request.
        total: u64,
        /// The device's memory size (Get LD Info), bytes.
        memory: u64,
    },
}

impl fmt::Display for LdRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::NoLds => f.write_str("Set LD Allocations names at least one LD"),
            Self::NoSuchLd { start, count, lds } => write!(
                f,
                "LDs {start} to {}: the device has {lds} LD(s), ids 0 to {} (Get LD Info 5400h)",
                usize::from(start).saturating_add(count).saturating_sub(1),
                lds.saturating_sub(1)
            ),
            Self::GranularityReserved { code } => write!(
                f,
                "the device reports a reserved memory granularity ({code:02x}h, Get LD \
                 Allocations 5401h): allocation sizes cannot be computed"
            ),
            Self::NotGranular { bytes, granularity } => write!(
                f,
                "{} is not a multiple of the device's allocation granularity {} (Get LD \
                 Allocations 5401h; CXL r3.1 §7.6.7.4.2)",
                Size(bytes),
                Size(granularity)
            ),
            Self::ExceedsDevice { total, memory } => write!(
                f,
                "the LDs would hold {} in all, more than the device's {} (Get LD Info 5400h, \
                 Memory Size)",
                Size(total),
                Size(memory)
            ),
        }
    }
}

/// `bytes` in allocation units of `granularity`.
///
/// Errors: a reserved granularity, or a size that is not a multiple of it.
pub fn units_of(bytes: u64, granularity: Granularity) -> Result<u64, LdRule> {
    let g = granularity.bytes().ok_or(LdRule::GranularityReserved {
        code: granularity.raw(),
    })?;
    // Granularities are powers of two: a shift and a mask, no 64-bit division.
    let shift = g.trailing_zeros();
    if bytes & g.wrapping_sub(1) != 0 {
        return Err(LdRule::NotGranular {
            bytes,
            granularity: g,
        });
    }
    Ok(bytes >> shift)
}

/// Checks Set LD Allocations of `new` (LDs `start..`) on a device with `memory` bytes and
/// `lds` LDs whose allocations are `current` (every LD's, in `granularity` units): the LDs
/// exist and the allocations in all, the other LDs' unchanged, fit the memory. Returns the
/// bytes allocated in all afterwards.
pub fn check_ld_allocations(
    memory: u64,
    lds: u16,
    granularity: Granularity,
    current: &[(u8, LdAllocation)],
    start: u8,
    new: &[LdAllocation],
) -> Result<u64, LdRule> {
    if new.is_empty() {
        return Err(LdRule::NoLds);
    }
    let end = usize::from(start).saturating_add(new.len());
    if end > usize::from(lds) {
        return Err(LdRule::NoSuchLd {
            start,
            count: new.len(),
            lds,
        });
    }
    let g = granularity.bytes().ok_or(LdRule::GranularityReserved {
        code: granularity.raw(),
    })?;
    let changed = |ld: u8| usize::from(ld) >= usize::from(start) && usize::from(ld) < end;
    let kept = current
        .iter()
        .filter(|(ld, _)| !changed(*ld))
        .map(|(_, a)| a);
    let units = kept
        .chain(new.iter())
        .try_fold(0u64, |sum, a| a.units().and_then(|u| sum.checked_add(u)));
    let total = units
        .and_then(|u| shl_checked(u, g.trailing_zeros()))
        .unwrap_or(u64::MAX);
    if total > memory {
        return Err(LdRule::ExceedsDevice { total, memory });
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    #[test]
    fn ld_info_round_trip_and_layout() {
        let i = LdInfo {
            memory_size: 4 << 30,
            ld_count: 4,
            qos_telemetry: 1,
        };
        let mut b = [0u8; 16];
        assert_eq!(i.encode(&mut b).unwrap(), LD_INFO_LEN);
        assert_eq!(&b[..LD_INFO_LEN], &[0, 0, 0, 0, 1, 0, 0, 0, 4, 0, 1]);
        assert_eq!(LdInfo::decode(&b[..LD_INFO_LEN]).unwrap(), i);
        assert!(matches!(
            LdInfo::decode(&b[..9]),
            Err(DecodeError::Truncated {
                field: "ld_count",
                ..
            })
        ));
    }

    #[test]
    fn allocations_round_trip() {
        let list = [
            LdAllocation {
                range1: 4,
                range2: 0,
            },
            LdAllocation {
                range1: 2,
                range2: 1,
            },
        ];
        let mut b = [0u8; 64];
        let n = encode_ld_allocations(&mut b, 4, Granularity::Mib256, 2, &list).unwrap();
        assert_eq!(n, LD_ALLOCATIONS_HEADER + 2 * LD_ALLOCATION_ENTRY);
        assert_eq!(&b[..4], &[4, 0, 2, 2]);
        let d = LdAllocations::decode(&b[..n]).unwrap();
        assert_eq!(
            (d.number_of_lds, d.granularity, d.start_ld, d.len()),
            (4, Granularity::Mib256, 2, 2)
        );
        let got: [(u8, LdAllocation); 2] = {
            let mut it = d.iter();
            [it.next().unwrap(), it.next().unwrap()]
        };
        assert_eq!(got, [(2, list[0]), (3, list[1])]);
        assert_eq!(d.granularity.bytes(), Some(256 << 20));
        assert!(LdAllocations::decode(&b[..n - 1]).is_err());
        assert_eq!(Granularity::from_raw(7).bytes(), None);
    }

    #[test]
    fn request() {
        let r = ld_allocations_request(1, 8);
        assert_eq!(decode_ld_allocations_request(&r).unwrap(), (1, 8));
        assert!(decode_ld_allocations_request(&r[..1]).is_err());
    }

    #[test]
    fn set_allocations_round_trip_and_layout() {
        let list = [
            LdAllocation {
                range1: 2,
                range2: 1,
            },
            LdAllocation {
                range1: 0,
                range2: 0,
            },
        ];
        let mut b = [0u8; 64];
        let n = encode_set_ld_allocations(&mut b, 1, &list).unwrap();
        assert_eq!(n, SET_LD_ALLOCATIONS_HEADER + 2 * LD_ALLOCATION_ENTRY);
        assert_eq!(&b[..6], &[2, 1, 0, 0, 2, 0]);
        assert_eq!(&b[12..14], &[1, 0]);
        let d = SetLdAllocations::decode(&b[..n]).unwrap();
        assert_eq!((d.start_ld, d.len(), d.is_empty()), (1, 2, false));
        let got: std::vec::Vec<_> = d.iter().collect();
        assert_eq!(got, [(1, list[0]), (2, list[1])]);
        assert!(matches!(
            SetLdAllocations::decode(&b[..n - 1]),
            Err(DecodeError::Truncated {
                field: "ld allocation list",
                ..
            })
        ));
        assert!(encode_set_ld_allocations(&mut b[..n - 1], 1, &list).is_err());
    }

    #[test]
    fn allocation_rules() {
        use std::string::ToString;
        let gib = 1u64 << 30;
        let one = |r1| LdAllocation {
            range1: r1,
            range2: 0,
        };
        // 2 LDs of 4 units each on a 2 GiB device: full.
        let cur = [(0u8, one(4)), (1u8, one(4))];
        let g = Granularity::Mib256;
        assert_eq!(
            check_ld_allocations(2 * gib, 2, g, &cur, 1, &[one(2)]),
            Ok(3 * gib / 2)
        );
        assert_eq!(
            check_ld_allocations(2 * gib, 2, g, &cur, 0, &[one(4), one(4)]),
            Ok(2 * gib)
        );
        let e = check_ld_allocations(2 * gib, 2, g, &cur, 1, &[one(5)]).unwrap_err();
        assert_eq!(
            e,
            LdRule::ExceedsDevice {
                total: 9 * (256 << 20),
                memory: 2 * gib
            }
        );
        assert!(e.to_string().contains("Get LD Info 5400h"), "{e}");
        assert_eq!(
            check_ld_allocations(2 * gib, 2, g, &cur, 1, &[one(1), one(1)]),
            Err(LdRule::NoSuchLd {
                start: 1,
                count: 2,
                lds: 2
            })
        );
        assert_eq!(
            check_ld_allocations(2 * gib, 2, g, &cur, 0, &[]),
            Err(LdRule::NoLds)
        );
        assert_eq!(
            check_ld_allocations(2 * gib, 2, Granularity::from_raw(9), &cur, 0, &[one(1)]),
            Err(LdRule::GranularityReserved { code: 9 })
        );
        // Overflowing units are "too much", not a panic.
        assert!(matches!(
            check_ld_allocations(2 * gib, 2, g, &cur, 0, &[one(u64::MAX)]),
            Err(LdRule::ExceedsDevice { .. })
        ));
        assert_eq!(units_of(512 << 20, g), Ok(2));
        assert_eq!(units_of(0, g), Ok(0));
        assert_eq!(
            units_of(100 << 20, g),
            Err(LdRule::NotGranular {
                bytes: 100 << 20,
                granularity: 256 << 20
            })
        );
        assert!(units_of(1, Granularity::Reserved(7)).is_err());
        for r in [
            LdRule::NoLds,
            LdRule::NotGranular {
                bytes: 1,
                granularity: 2,
            },
        ] {
            assert!(!r.to_string().is_empty());
        }
    }
}
