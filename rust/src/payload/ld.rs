// SPDX-License-Identifier: GPL-2.0

//! FM-API MLD Components command set, CXL r3.1 §7.6.7.4: Get LD Info (5400h) and Get LD
//! Allocations (5401h), sent to a multi-logical device (usually through a Tunnel Management
//! Command to the switch port it sits behind).
//!
//! Both directions of every payload are here, so that the library and the device emulator
//! agree on them.

use crate::wire::{DecodeError, EncodeError, Reader, Writer};

/// Size of the Get LD Info output.
pub const LD_INFO_LEN: usize = 11;
/// Size of the Get LD Allocations input.
pub const LD_ALLOCATIONS_REQUEST_LEN: usize = 2;
/// Size of the Get LD Allocations output header.
pub const LD_ALLOCATIONS_HEADER: usize = 4;
/// Size of one Get LD Allocations list entry.
pub const LD_ALLOCATION_ENTRY: usize = 16;

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
        self.entries
            .chunks_exact(LD_ALLOCATION_ENTRY)
            .zip(self.start_ld..=u8::MAX)
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

#[cfg(test)]
mod tests {
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
}
