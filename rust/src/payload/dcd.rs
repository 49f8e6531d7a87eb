// SPDX-License-Identifier: GPL-2.0

//! Dynamic Capacity: the FM-API DCD Management command set, CXL r3.1 §7.6.7.6 (the same
//! numbering in r3.2), which a fabric manager sends to a Dynamic Capacity Device (usually
//! through a Tunnel Management Command to the switch port it sits behind):
//!
//! | opcode | command                                | request              | response |
//! |--------|----------------------------------------|----------------------|----------|
//! | 5600h  | Get DCD Info (§7.6.7.6.1)              | none                 | [`DcdInfo`] |
//! | 5601h  | Get Host DC Region Configuration (§7.6.7.6.2) | [`HostRegionRequest`] | [`HostRegionConfig`] |
//! | 5602h  | Set DC Region Configuration (§7.6.7.6.3) | [`SetRegionConfig`] | none |
//! | 5603h  | Get DC Region Extent Lists (§7.6.7.6.4) | [`ExtentListRequest`] | [`ExtentList`] |
//! | 5604h  | Initiate Dynamic Capacity Add (§7.6.7.6.5) | [`AddRequest`] + [`Extent`]s | none |
//! | 5605h  | Initiate Dynamic Capacity Release (§7.6.7.6.6) | [`ReleaseRequest`] + [`Extent`]s | none |
//!
//! and the host's side of the protocol on the memory device's own mailbox (CXL r3.1
//! §8.2.9.9.9.3-4, r3.2 §8.2.10.9.9.3-4): Add Dynamic Capacity Response (4802h) and Release
//! Dynamic Capacity (4803h), both an updated extent list ([`encode_extent_update`],
//! [`ExtentUpdate`]).
//!
//! Sizes: DPAs, lengths and block sizes in bytes; Total Dynamic Capacity and region decode
//! lengths in [`CAPACITY_UNIT`]s (256 MiB). All fields little-endian.
//!
//! The rules a request has to follow are here too ([`Rule`] and the `check_*` functions:
//! block sizes, alignment of extents to their region's block size, extents inside one region,
//! no overlaps, hosts, regions and policies the device reports), so that a request that breaks
//! one is refused before it is sent, with the rule named.

// Relative: the kernel module compiles this crate as its `proto` module and re-exports only
// some of its modules at its root (src/cxl_swcci.rs).
use super::super::num::Dec;
use crate::payload::logs::Uuid;
use crate::wire::{DecodeError, EncodeError, Reader, Writer};
use core::fmt;

// Nothing here divides 64-bit numbers: on 32-bit ARM the kernel's `__aeabi_uldivmod` is a
// panicking stub (rust/src/num.rs). Multiples of powers of two are shifts; remainders are
// taken by shift and subtract ([`rem64`]); sizes print in decimal through [`Dec`].

/// `v << shift`, or `None` if bits would be shifted out.
pub const fn shl_checked(v: u64, shift: u32) -> Option<u64> {
    if shift >= 64 || v.leading_zeros() < shift {
        None
    } else {
        Some(v << shift)
    }
}

/// `n % d` without a 64-bit division (`None` for `d == 0`).
pub const fn rem64(n: u64, d: u64) -> Option<u64> {
    if d == 0 {
        return None;
    }
    if d.is_power_of_two() {
        return Some(n & d.wrapping_sub(1));
    }
    let mut r = 0u64;
    let mut bit = 64u32;
    while bit > 0 {
        bit = bit.wrapping_sub(1);
        let top = r >> 63 != 0;
        r = (r << 1) | ((n >> bit) & 1);
        // The true value 2r + bit is below 2d: one subtraction brings it under d, and the
        // wrapping result is exact because it is below d <= u64::MAX.
        if top || r >= d {
            r = r.wrapping_sub(d);
        }
    }
    Some(r)
}

/// A size in bytes for messages: whole binary units (`1018 MiB`, `2 GiB`), else bytes in hex
/// (`0x300001 bytes`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Size(pub u64);

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        for (shift, unit) in [(40u32, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")] {
            if n != 0 && n.trailing_zeros() >= shift {
                return write!(f, "{} {unit}", Dec(n >> shift));
            }
        }
        if n < 1024 {
            write!(f, "{} bytes", Dec(n))
        } else {
            write!(f, "{n:#x} bytes")
        }
    }
}

/// Unit of Total Dynamic Capacity and of region decode lengths: 256 MiB.
pub const CAPACITY_UNIT: u64 = 256 << 20;
/// Most DC regions a device has (regions 0..=7).
pub const MAX_REGIONS: u8 = 8;
/// Smallest block size a region may have: 64 bytes (a cache line).
pub const MIN_BLOCK_SIZE: u64 = 0x40;
/// Size of the Get DCD Info output.
pub const DCD_INFO_LEN: usize = 0x54;
/// Size of the Get Host DC Region Configuration input.
pub const HOST_REGION_REQUEST_LEN: usize = 4;
/// Size of the Get Host DC Region Configuration output header.
pub const HOST_REGION_HEADER: usize = 4;
/// Size of one DC region configuration in that output.
pub const REGION_CONFIG_LEN: usize = 0x28;
/// Size of the extent and tag counts that follow the region list.
pub const EXTENT_COUNTS_LEN: usize = 16;
/// Size of the Set DC Region Configuration input.
pub const SET_REGION_CONFIG_LEN: usize = 16;
/// Size of the Get DC Region Extent Lists input.
pub const EXTENT_LIST_REQUEST_LEN: usize = 12;
/// Size of the Get DC Region Extent Lists output header.
pub const EXTENT_LIST_HEADER: usize = 0x18;
/// Size of one Dynamic Capacity Extent.
pub const EXTENT_LEN: usize = 0x28;
/// Size of the Initiate Dynamic Capacity Add / Release input header (before the extents).
pub const CAPACITY_REQUEST_HEADER: usize = 0x20;
/// Size of the Add Dynamic Capacity Response / Release Dynamic Capacity input header.
pub const EXTENT_UPDATE_HEADER: usize = 8;
/// Size of one updated extent in those inputs.
pub const UPDATED_EXTENT_LEN: usize = 0x18;
/// Add Dynamic Capacity Response / Release Dynamic Capacity flag: more updates follow for the
/// same event (CXL r3.1 §8.2.9.9.9.3).
pub const UPDATE_MORE: u8 = 1 << 0;

/// DSMAS flags of a DC region (CDAT DSMAS Flags, as Get Host DC Region Configuration reports
/// them): bit 2 non-volatile, bit 3 sharable, bit 4 hardware-managed coherency, bit 5
/// interconnect-specific DC management, bit 6 read-only.
pub mod region_flag {
    /// The region's memory is non-volatile.
    pub const NONVOLATILE: u8 = 1 << 2;
    /// The region is sharable between hosts.
    pub const SHARABLE: u8 = 1 << 3;
    /// Hardware-managed coherency.
    pub const HW_COHERENCY: u8 = 1 << 4;
    /// Interconnect-specific dynamic capacity management.
    pub const IC_SPECIFIC_DC: u8 = 1 << 5;
    /// Read-only.
    pub const READ_ONLY: u8 = 1 << 6;
    /// Names of the flags, for display.
    pub const NAMES: &[(u8, &str)] = &[
        (NONVOLATILE, "nonvolatile"),
        (SHARABLE, "sharable"),
        (HW_COHERENCY, "hw-managed-coherency"),
        (IC_SPECIFIC_DC, "ic-specific-dc-management"),
        (READ_ONLY, "read-only"),
    ];
}

/// How the device chooses the capacity of an Initiate Dynamic Capacity Add (byte 2, bits 3:0;
/// bit `n` of [`DcdInfo::selection_policies`] says policy `n` is supported).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SelectionPolicy {
    /// 0: the device picks any free blocks of the region, `length` bytes in all.
    Free,
    /// 1: the device picks one contiguous range of `length` bytes.
    Contiguous,
    /// 2: the extents are given in the request.
    Prescriptive,
    /// 3: the host gets access to the shared capacity that carries the request's tag.
    EnableSharedAccess,
    /// A value the specification reserves (4-15).
    Reserved(u8),
}

impl SelectionPolicy {
    /// Every policy the specification defines.
    pub const ALL: [Self; 4] = [
        Self::Free,
        Self::Contiguous,
        Self::Prescriptive,
        Self::EnableSharedAccess,
    ];

    /// From bits 3:0 of the raw byte (bits 7:4 are reserved and ignored).
    pub const fn from_raw(v: u8) -> Self {
        match v & 0x0f {
            0 => Self::Free,
            1 => Self::Contiguous,
            2 => Self::Prescriptive,
            3 => Self::EnableSharedAccess,
            v => Self::Reserved(v),
        }
    }

    /// The raw value.
    pub const fn raw(self) -> u8 {
        match self {
            Self::Free => 0,
            Self::Contiguous => 1,
            Self::Prescriptive => 2,
            Self::EnableSharedAccess => 3,
            Self::Reserved(v) => v & 0x0f,
        }
    }

    /// Its bit in [`DcdInfo::selection_policies`].
    pub const fn bit(self) -> u16 {
        1u16.wrapping_shl(self.raw() as u32)
    }

    /// Its name: `free`, `contiguous`, `prescriptive`, `enable-shared-access`; `None` for a
    /// reserved value.
    pub const fn name(self) -> Option<&'static str> {
        match self {
            Self::Free => Some("free"),
            Self::Contiguous => Some("contiguous"),
            Self::Prescriptive => Some("prescriptive"),
            Self::EnableSharedAccess => Some("enable-shared-access"),
            Self::Reserved(_) => None,
        }
    }
}

impl fmt::Display for SelectionPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "reserved ({:x}h)", self.raw()),
        }
    }
}

/// How Initiate Dynamic Capacity Release names the capacity (flags bits 3:0; bit `n` of
/// [`DcdInfo::removal_policies`] says policy `n` is supported).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RemovalPolicy {
    /// 0: the capacity that carries the request's tag, `length` bytes of it.
    TagBased,
    /// 1: the extents are given in the request.
    Prescriptive,
    /// A value the specification reserves (2-15).
    Reserved(u8),
}

impl RemovalPolicy {
    /// Every policy the specification defines.
    pub const ALL: [Self; 2] = [Self::TagBased, Self::Prescriptive];

    /// From bits 3:0 of the raw flags.
    pub const fn from_raw(v: u8) -> Self {
        match v & 0x0f {
            0 => Self::TagBased,
            1 => Self::Prescriptive,
            v => Self::Reserved(v),
        }
    }

    /// The raw value.
    pub const fn raw(self) -> u8 {
        match self {
            Self::TagBased => 0,
            Self::Prescriptive => 1,
            Self::Reserved(v) => v & 0x0f,
        }
    }

    /// Its bit in [`DcdInfo::removal_policies`].
    pub const fn bit(self) -> u16 {
        1u16.wrapping_shl(self.raw() as u32)
    }

    /// Its name: `tag-based`, `prescriptive`; `None` for a reserved value.
    pub const fn name(self) -> Option<&'static str> {
        match self {
            Self::TagBased => Some("tag-based"),
            Self::Prescriptive => Some("prescriptive"),
            Self::Reserved(_) => None,
        }
    }
}

impl fmt::Display for RemovalPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "reserved ({:x}h)", self.raw()),
        }
    }
}

/// Get DCD Info (5600h) output, CXL r3.1 §7.6.7.6.1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DcdInfo {
    /// Number of hosts the device serves (host ids 0..num_hosts; for an MLD the host id is
    /// the LD id).
    pub num_hosts: u8,
    /// Number of DC regions the device supports (1..=8).
    pub num_regions: u8,
    /// Capacity selection policies supported: bit `n` = [`SelectionPolicy`] `n`.
    pub selection_policies: u16,
    /// Capacity removal policies supported: bit `n` = [`RemovalPolicy`] `n`.
    pub removal_policies: u16,
    /// Bit `n`: region `n`'s Sanitize on Release setting can be changed with Set DC Region
    /// Configuration.
    pub sanitize_config_mask: u8,
    /// Capacity available for dynamic assignment, in [`CAPACITY_UNIT`]s (256 MiB).
    pub total_capacity: u64,
    /// Per region: bit `n` set = block size 2^`n` bytes supported.
    pub block_size_masks: [u64; MAX_REGIONS as usize],
}

impl DcdInfo {
    /// Decodes the output payload.
    pub fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(buf);
        let num_hosts = r.u8("number_of_hosts")?;
        let num_regions = r.u8("number_of_supported_dc_regions")?;
        r.skip("reserved", 2)?;
        let selection_policies = r.u16("capacity_selection_policies_supported")?;
        r.skip("reserved", 2)?;
        let removal_policies = r.u16("capacity_removal_policies_supported")?;
        let sanitize_config_mask = r.u8("sanitize_on_release_configuration_support_mask")?;
        r.skip("reserved", 1)?;
        let total_capacity = r.u64("total_dynamic_capacity")?;
        let mut block_size_masks = [0u64; MAX_REGIONS as usize];
        for m in &mut block_size_masks {
            *m = r.u64("region_supported_block_size_mask")?;
        }
        Ok(Self {
            num_hosts,
            num_regions,
            selection_policies,
            removal_policies,
            sanitize_config_mask,
            total_capacity,
            block_size_masks,
        })
    }

    /// Encodes the output payload ([`DCD_INFO_LEN`] bytes); returns its length.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        let mut w = Writer::new(out);
        w.u8(self.num_hosts)?;
        w.u8(self.num_regions)?;
        w.zeros(2)?;
        w.u16(self.selection_policies)?;
        w.zeros(2)?;
        w.u16(self.removal_policies)?;
        w.u8(self.sanitize_config_mask)?;
        w.zeros(1)?;
        w.u64(self.total_capacity)?;
        for m in &self.block_size_masks {
            w.u64(*m)?;
        }
        Ok(w.len())
    }

    /// Whether the device supports selection policy `p`.
    pub const fn supports_selection(&self, p: SelectionPolicy) -> bool {
        !matches!(p, SelectionPolicy::Reserved(_)) && self.selection_policies & p.bit() != 0
    }

    /// Whether the device supports removal policy `p`.
    pub const fn supports_removal(&self, p: RemovalPolicy) -> bool {
        !matches!(p, RemovalPolicy::Reserved(_)) && self.removal_policies & p.bit() != 0
    }

    /// Total Dynamic Capacity in bytes (`None` if it overflows 64 bits).
    pub const fn total_capacity_bytes(&self) -> Option<u64> {
        shl_checked(self.total_capacity, CAPACITY_UNIT.trailing_zeros())
    }

    /// Region `region`'s supported block size mask (0 for a region past the eighth).
    pub fn block_size_mask(&self, region: u8) -> u64 {
        self.block_size_masks
            .get(usize::from(region))
            .copied()
            .unwrap_or(0)
    }

    /// Whether region `region`'s Sanitize on Release setting can be changed.
    pub const fn sanitize_configurable(&self, region: u8) -> bool {
        region < MAX_REGIONS && self.sanitize_config_mask & (1u8 << (region & 7)) != 0
    }
}

/// Block sizes of a supported block size mask, in bytes, smallest first.
pub fn block_sizes(mask: u64) -> impl Iterator<Item = u64> {
    (0u32..64).filter_map(move |n| (mask & (1u64 << n) != 0).then_some(1u64 << n))
}

/// Get Host DC Region Configuration (5601h) input, CXL r3.1 §7.6.7.6.2: the regions of host
/// `host_id` from region `start_region`, at most `region_count` of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostRegionRequest {
    /// The host (for an MLD: its LD id).
    pub host_id: u16,
    /// Most regions to return.
    pub region_count: u8,
    /// First region to return.
    pub start_region: u8,
}

impl HostRegionRequest {
    /// Encodes the input.
    pub const fn encode(&self) -> [u8; HOST_REGION_REQUEST_LEN] {
        let [h0, h1] = self.host_id.to_le_bytes();
        [h0, h1, self.region_count, self.start_region]
    }

    /// Decodes the input.
    pub fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(buf);
        Ok(Self {
            host_id: r.u16("host_id")?,
            region_count: r.u8("region_count")?,
            start_region: r.u8("starting_region_index")?,
        })
    }
}

/// One DC region's configuration (Get Host DC Region Configuration, CXL r3.1 §7.6.7.6.2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DcRegion {
    /// First DPA of the region, bytes.
    pub base: u64,
    /// Decode length, in [`CAPACITY_UNIT`]s (256 MiB).
    pub decode_len: u64,
    /// Length of the region, bytes.
    pub length: u64,
    /// Block size: extents start and end on multiples of it (from the region's base), bytes.
    pub block_size: u64,
    /// DSMAS flags, see [`region_flag`].
    pub flags: u8,
    /// Released capacity is sanitized before it is reused.
    pub sanitize_on_release: bool,
}

impl DcRegion {
    /// Decodes one region configuration ([`REGION_CONFIG_LEN`] bytes).
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let base = r.u64("region_base")?;
        let decode_len = r.u64("region_decode_length")?;
        let length = r.u64("region_length")?;
        let block_size = r.u64("region_block_size")?;
        let flags = r.u8("dsmas_flags")?;
        r.skip("reserved", 3)?;
        let sanitize = r.u8("sanitize_on_release")?;
        r.skip("reserved", 3)?;
        Ok(Self {
            base,
            decode_len,
            length,
            block_size,
            flags,
            sanitize_on_release: sanitize & 1 != 0,
        })
    }

    /// Encodes one region configuration.
    pub fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.u64(self.base)?;
        w.u64(self.decode_len)?;
        w.u64(self.length)?;
        w.u64(self.block_size)?;
        w.u8(self.flags)?;
        w.zeros(3)?;
        w.u8(u8::from(self.sanitize_on_release))?;
        w.zeros(3)
    }

    /// One past the last DPA of the region (`None` if it overflows).
    pub const fn end(&self) -> Option<u64> {
        self.base.checked_add(self.length)
    }

    /// Decode length in bytes (`None` if it overflows).
    pub const fn decode_len_bytes(&self) -> Option<u64> {
        shl_checked(self.decode_len, CAPACITY_UNIT.trailing_zeros())
    }

    /// Whether `[dpa, dpa + len)` lies inside the region.
    pub fn contains(&self, dpa: u64, len: u64) -> bool {
        match (dpa.checked_add(len), self.end()) {
            (Some(e), Some(end)) => dpa >= self.base && e <= end,
            _ => false,
        }
    }

    /// Whether `[dpa, dpa + len)` and the region share a byte.
    pub fn overlaps(&self, dpa: u64, len: u64) -> bool {
        ranges_overlap(self.base, self.length, dpa, len)
    }

    /// Whether `v` bytes from the region's base is a multiple of its block size (a zero block
    /// size never is).
    pub fn aligned(&self, dpa_or_len: u64, from_base: bool) -> bool {
        let v = if from_base {
            match dpa_or_len.checked_sub(self.base) {
                Some(v) => v,
                None => return false,
            }
        } else {
            dpa_or_len
        };
        matches!(rem64(v, self.block_size), Some(0))
    }
}

/// Whether `[a, a + alen)` and `[b, b + blen)` share a byte (empty ranges share none; ranges
/// that overflow 64 bits are taken as reaching to the end of the address space).
pub fn ranges_overlap(a: u64, alen: u64, b: u64, blen: u64) -> bool {
    if alen == 0 || blen == 0 {
        return false;
    }
    let a_end = a.saturating_add(alen);
    let b_end = b.saturating_add(blen);
    a < b_end && b < a_end
}

/// The extent and tag counts after the region list of Get Host DC Region Configuration.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExtentCounts {
    /// Extents the device can track in all.
    pub extents_supported: u32,
    /// Extents it can track in addition to those it tracks now (accepted and pending).
    pub extents_available: u32,
    /// Tags it supports in all.
    pub tags_supported: u32,
    /// Tags still available.
    pub tags_available: u32,
}

/// Get Host DC Region Configuration (5601h) output, CXL r3.1 §7.6.7.6.2.
#[derive(Clone, Copy, Debug)]
pub struct HostRegionConfig<'a> {
    /// The host.
    pub host_id: u16,
    /// Number of DC regions configured for the host.
    pub num_regions: u8,
    /// Index of the first region listed (the request's start region: not in the payload).
    pub start_region: u8,
    entries: &'a [u8],
    /// The counts that follow the list; `None` when the device ends the payload after the
    /// list (devices of CXL r3.0).
    pub counts: Option<ExtentCounts>,
}

impl<'a> HostRegionConfig<'a> {
    /// Decodes the output of a request that started at region `start_region`; every region
    /// the header announces must be present.
    pub fn decode(buf: &'a [u8], start_region: u8) -> Result<Self, DecodeError> {
        let mut r = Reader::new(buf);
        let host_id = r.u16("host_id")?;
        let num_regions = r.u8("number_of_available_regions")?;
        let returned = r.u8("number_of_regions_returned")?;
        let entries = r.bytes(
            "region configuration list",
            usize::from(returned).saturating_mul(REGION_CONFIG_LEN),
        )?;
        let counts = if r.remaining() >= EXTENT_COUNTS_LEN {
            Some(ExtentCounts {
                extents_supported: r.u32("total_number_of_supported_extents")?,
                extents_available: r.u32("number_of_available_extents")?,
                tags_supported: r.u32("total_number_of_supported_tags")?,
                tags_available: r.u32("number_of_available_tags")?,
            })
        } else {
            None
        };
        Ok(Self {
            host_id,
            num_regions,
            start_region,
            entries,
            counts,
        })
    }

    /// Number of regions listed.
    pub const fn len(&self) -> usize {
        self.entries.len() / REGION_CONFIG_LEN
    }

    /// Whether none are listed.
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The listed regions with their ids.
    pub fn iter(&self) -> impl Iterator<Item = (u8, DcRegion)> + 'a {
        self.entries
            .chunks_exact(REGION_CONFIG_LEN)
            .zip(self.start_region..=u8::MAX)
            .filter_map(|(b, id)| DcRegion::decode(&mut Reader::new(b)).ok().map(|r| (id, r)))
    }
}

/// Encodes a Get Host DC Region Configuration output listing `regions`; returns its length.
pub fn encode_host_region_config(
    out: &mut [u8],
    host_id: u16,
    num_regions: u8,
    regions: &[DcRegion],
    counts: Option<&ExtentCounts>,
) -> Result<usize, EncodeError> {
    let n = u8::try_from(regions.len()).map_err(|_| EncodeError::Invalid {
        what: "number of regions",
    })?;
    let mut w = Writer::new(out);
    w.u16(host_id)?;
    w.u8(num_regions)?;
    w.u8(n)?;
    for r in regions {
        r.encode(&mut w)?;
    }
    if let Some(c) = counts {
        w.u32(c.extents_supported)?;
        w.u32(c.extents_available)?;
        w.u32(c.tags_supported)?;
        w.u32(c.tags_available)?;
    }
    Ok(w.len())
}

/// Set DC Region Configuration (5602h) input, CXL r3.1 §7.6.7.6.3.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SetRegionConfig {
    /// The region.
    pub region: u8,
    /// Its new block size, bytes (a power of two the device supports for the region).
    pub block_size: u64,
    /// Sanitize released capacity before reuse (byte 0Ch bit 0).
    pub sanitize_on_release: bool,
}

impl SetRegionConfig {
    /// Encodes the input.
    pub fn encode(&self) -> [u8; SET_REGION_CONFIG_LEN] {
        let mut b = [0u8; SET_REGION_CONFIG_LEN];
        let mut w = Writer::new(&mut b);
        // 16 bytes always fit the 16-byte buffer.
        let _ = w
            .u8(self.region)
            .and_then(|()| w.zeros(3))
            .and_then(|()| w.u64(self.block_size))
            .and_then(|()| w.u8(u8::from(self.sanitize_on_release)));
        b
    }

    /// Decodes the input.
    pub fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(buf);
        let region = r.u8("region_id")?;
        r.skip("reserved", 3)?;
        let block_size = r.u64("block_size")?;
        let flags = r.u8("flags")?;
        Ok(Self {
            region,
            block_size,
            sanitize_on_release: flags & 1 != 0,
        })
    }
}

/// Get DC Region Extent Lists (5603h) input, CXL r3.1 §7.6.7.6.4: host `host_id`'s extents
/// from index `start`, at most `count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExtentListRequest {
    /// The host.
    pub host_id: u16,
    /// Most extents to return.
    pub count: u32,
    /// Index of the first extent to return.
    pub start: u32,
}

impl ExtentListRequest {
    /// Encodes the input.
    pub fn encode(&self) -> [u8; EXTENT_LIST_REQUEST_LEN] {
        let mut b = [0u8; EXTENT_LIST_REQUEST_LEN];
        let mut w = Writer::new(&mut b);
        // 12 bytes always fit the 12-byte buffer.
        let _ = w
            .u16(self.host_id)
            .and_then(|()| w.zeros(2))
            .and_then(|()| w.u32(self.count))
            .and_then(|()| w.u32(self.start));
        b
    }

    /// Decodes the input.
    pub fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(buf);
        let host_id = r.u16("host_id")?;
        r.skip("reserved", 2)?;
        Ok(Self {
            host_id,
            count: r.u32("extent_count")?,
            start: r.u32("starting_extent_index")?,
        })
    }
}

/// A Dynamic Capacity Extent (CXL r3.1 §8.2.9.2.1, the extent of a Dynamic Capacity Event
/// Record, which the FM-API commands carry too): [`EXTENT_LEN`] bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Extent {
    /// First DPA, bytes.
    pub start_dpa: u64,
    /// Length, bytes.
    pub length: u64,
    /// Tag (a UUID; all zero for none).
    pub tag: Uuid,
    /// Shared extent sequence (for shared capacity: the order of the host's extents).
    pub shared_seq: u16,
}

impl Extent {
    /// An untagged, unshared extent.
    pub const fn new(start_dpa: u64, length: u64) -> Self {
        Self {
            start_dpa,
            length,
            tag: Uuid([0; 16]),
            shared_seq: 0,
        }
    }

    /// Decodes one extent.
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let start_dpa = r.u64("starting_dpa")?;
        let length = r.u64("length")?;
        let tag = Uuid(r.array("tag")?);
        let shared_seq = r.u16("shared_extent_sequence")?;
        r.skip("reserved", 6)?;
        Ok(Self {
            start_dpa,
            length,
            tag,
            shared_seq,
        })
    }

    /// Encodes one extent.
    pub fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.u64(self.start_dpa)?;
        w.u64(self.length)?;
        w.bytes(&self.tag.0)?;
        w.u16(self.shared_seq)?;
        w.zeros(6)
    }

    /// One past the last DPA (`None` if it overflows).
    pub const fn end(&self) -> Option<u64> {
        self.start_dpa.checked_add(self.length)
    }

    /// Whether the two extents share a byte.
    pub fn overlaps(&self, other: &Self) -> bool {
        ranges_overlap(self.start_dpa, self.length, other.start_dpa, other.length)
    }

    /// Whether the extent carries a tag.
    pub fn is_tagged(&self) -> bool {
        self.tag.0 != [0; 16]
    }
}

/// A list of [`Extent`]s in a payload, [`EXTENT_LEN`] bytes each.
#[derive(Clone, Copy, Debug)]
pub struct Extents<'a>(&'a [u8]);

impl<'a> Extents<'a> {
    /// The `n` extents at the start of `r`'s remaining bytes.
    fn take(r: &mut Reader<'a>, n: u32) -> Result<Self, DecodeError> {
        let len = usize::try_from(n)
            .unwrap_or(usize::MAX)
            .saturating_mul(EXTENT_LEN);
        Ok(Self(r.bytes("extent list", len)?))
    }

    /// Number of extents.
    pub const fn len(&self) -> usize {
        self.0.len() / EXTENT_LEN
    }

    /// Whether there are none.
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The extents.
    pub fn iter(&self) -> impl Iterator<Item = Extent> + 'a {
        self.0
            .chunks_exact(EXTENT_LEN)
            .filter_map(|b| Extent::decode(&mut Reader::new(b)).ok())
    }
}

/// Get DC Region Extent Lists (5603h) output, CXL r3.1 §7.6.7.6.4.
#[derive(Clone, Copy, Debug)]
pub struct ExtentList<'a> {
    /// The host.
    pub host_id: u16,
    /// Index of the first extent listed.
    pub start: u32,
    /// Total number of extents the host holds.
    pub total: u32,
    /// Extent List Generation Number: changes whenever the host's list changes, so that a
    /// list read in several commands can be checked for consistency.
    pub generation: u32,
    /// The extents listed.
    pub extents: Extents<'a>,
}

impl<'a> ExtentList<'a> {
    /// Decodes the output; every extent the header announces must be present.
    pub fn decode(buf: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(buf);
        let host_id = r.u16("host_id")?;
        r.skip("reserved", 2)?;
        let start = r.u32("starting_extent_index")?;
        let returned = r.u32("returned_extent_count")?;
        let total = r.u32("total_extent_count")?;
        let generation = r.u32("extent_list_generation_number")?;
        r.skip("reserved", 4)?;
        let extents = Extents::take(&mut r, returned)?;
        Ok(Self {
            host_id,
            start,
            total,
            generation,
            extents,
        })
    }
}

/// Encodes a Get DC Region Extent Lists output listing `extents` from index `start`; returns
/// its length.
pub fn encode_extent_list(
    out: &mut [u8],
    host_id: u16,
    start: u32,
    total: u32,
    generation: u32,
    extents: &[Extent],
) -> Result<usize, EncodeError> {
    let n = u32::try_from(extents.len()).map_err(|_| EncodeError::Invalid {
        what: "number of extents",
    })?;
    let mut w = Writer::new(out);
    w.u16(host_id)?;
    w.zeros(2)?;
    w.u32(start)?;
    w.u32(n)?;
    w.u32(total)?;
    w.u32(generation)?;
    w.zeros(4)?;
    for e in extents {
        e.encode(&mut w)?;
    }
    Ok(w.len())
}

/// Most extents one Initiate Dynamic Capacity Add or Release carries in a payload of
/// `payload` bytes (the target's: tunnel headers already taken off).
pub const fn extents_per_request(payload: usize) -> usize {
    payload.saturating_sub(CAPACITY_REQUEST_HEADER) / EXTENT_LEN
}

/// Most extents one Get DC Region Extent Lists output carries in `payload` bytes.
pub const fn extents_per_list(payload: usize) -> usize {
    payload.saturating_sub(EXTENT_LIST_HEADER) / EXTENT_LEN
}

/// Most regions one Get Host DC Region Configuration output carries in `payload` bytes (with
/// the counts after the list).
pub const fn regions_per_config(payload: usize) -> usize {
    payload.saturating_sub(HOST_REGION_HEADER + EXTENT_COUNTS_LEN) / REGION_CONFIG_LEN
}

/// Writes the request header and the extents of Initiate Dynamic Capacity Add or Release.
fn encode_capacity(
    out: &mut [u8],
    head: [u8; 4],
    length: u64,
    tag: &Uuid,
    extents: &[Extent],
) -> Result<usize, EncodeError> {
    let n = u32::try_from(extents.len()).map_err(|_| EncodeError::Invalid {
        what: "number of extents",
    })?;
    let mut w = Writer::new(out);
    w.bytes(&head)?;
    w.u64(length)?;
    w.bytes(&tag.0)?;
    w.u32(n)?;
    for e in extents {
        e.encode(&mut w)?;
    }
    Ok(w.len())
}

/// Initiate Dynamic Capacity Add (5604h) input header, CXL r3.1 §7.6.7.6.5.
///
/// What the device does with it depends on the policy: Free and Contiguous add `length`
/// bytes of the region the device chooses (as any free blocks, or as one range); Prescriptive
/// adds exactly the extents that follow; Enable Shared Access gives the host the shared
/// capacity tagged `tag`. The added extents are pending until the host accepts them (Add
/// Dynamic Capacity Response, 4802h).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddRequest {
    /// The host that gets the capacity.
    pub host_id: u16,
    /// How the capacity is chosen.
    pub policy: SelectionPolicy,
    /// The region.
    pub region: u8,
    /// Bytes to add (Free, Contiguous).
    pub length: u64,
    /// Tag of the capacity (all zero for none).
    pub tag: Uuid,
}

impl AddRequest {
    /// Encodes the input with `extents`; returns its length.
    pub fn encode(&self, out: &mut [u8], extents: &[Extent]) -> Result<usize, EncodeError> {
        let [h0, h1] = self.host_id.to_le_bytes();
        let head = [h0, h1, self.policy.raw(), self.region];
        encode_capacity(out, head, self.length, &self.tag, extents)
    }

    /// Decodes the input; the extents the count announces must be present.
    pub fn decode(buf: &[u8]) -> Result<(Self, Extents<'_>), DecodeError> {
        let mut r = Reader::new(buf);
        let host_id = r.u16("host_id")?;
        let policy = SelectionPolicy::from_raw(r.u8("selection_policy")?);
        let region = r.u8("region_number")?;
        let length = r.u64("length")?;
        let tag = Uuid(r.array("tag")?);
        let n = r.u32("extent_count")?;
        let extents = Extents::take(&mut r, n)?;
        Ok((
            Self {
                host_id,
                policy,
                region,
                length,
                tag,
            },
            extents,
        ))
    }
}

/// Flags of Initiate Dynamic Capacity Release: bits 3:0 the removal policy, bit 4 Forced
/// Removal, bit 5 Sanitize on Release.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReleaseFlags {
    /// How the capacity is named.
    pub policy: RemovalPolicy,
    /// Release without waiting for the host to give the capacity up.
    pub forced: bool,
    /// Sanitize the released capacity before it is reused.
    pub sanitize: bool,
}

impl ReleaseFlags {
    /// Bit 4.
    pub const FORCED: u8 = 1 << 4;
    /// Bit 5.
    pub const SANITIZE: u8 = 1 << 5;

    /// From the raw byte (bits 7:6 are reserved and ignored).
    pub const fn from_raw(v: u8) -> Self {
        Self {
            policy: RemovalPolicy::from_raw(v),
            forced: v & Self::FORCED != 0,
            sanitize: v & Self::SANITIZE != 0,
        }
    }

    /// The raw byte.
    pub const fn raw(self) -> u8 {
        let mut v = self.policy.raw();
        if self.forced {
            v |= Self::FORCED;
        }
        if self.sanitize {
            v |= Self::SANITIZE;
        }
        v
    }
}

/// Initiate Dynamic Capacity Release (5605h) input header, CXL r3.1 §7.6.7.6.6: the capacity
/// of host `host_id` named by tag (Tag-based: `length` bytes of the capacity tagged `tag`) or
/// by the extents that follow (Prescriptive). The host gives the capacity up with Release
/// Dynamic Capacity (4803h), unless the removal is forced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReleaseRequest {
    /// The host that loses the capacity.
    pub host_id: u16,
    /// Policy, forced removal, sanitize on release.
    pub flags: ReleaseFlags,
    /// Bytes to release (Tag-based).
    pub length: u64,
    /// Tag of the capacity (Tag-based).
    pub tag: Uuid,
}

impl ReleaseRequest {
    /// Encodes the input with `extents`; returns its length.
    pub fn encode(&self, out: &mut [u8], extents: &[Extent]) -> Result<usize, EncodeError> {
        let [h0, h1] = self.host_id.to_le_bytes();
        let head = [h0, h1, self.flags.raw(), 0];
        encode_capacity(out, head, self.length, &self.tag, extents)
    }

    /// Decodes the input; the extents the count announces must be present.
    pub fn decode(buf: &[u8]) -> Result<(Self, Extents<'_>), DecodeError> {
        let mut r = Reader::new(buf);
        let host_id = r.u16("host_id")?;
        let flags = ReleaseFlags::from_raw(r.u8("flags")?);
        r.skip("reserved", 1)?;
        let length = r.u64("length")?;
        let tag = Uuid(r.array("tag")?);
        let n = r.u32("extent_count")?;
        let extents = Extents::take(&mut r, n)?;
        Ok((
            Self {
                host_id,
                flags,
                length,
                tag,
            },
            extents,
        ))
    }
}

/// Encodes the host's Add Dynamic Capacity Response (4802h) or Release Dynamic Capacity
/// (4803h), CXL r3.1 §8.2.9.9.9.3-4 (Tables 8-168 to 8-170): `flags` ([`UPDATE_MORE`]) and the
/// extents as `(start DPA, length)` in bytes. An Add Dynamic Capacity Response with no
/// extent rejects the whole pending add. Returns the length.
pub fn encode_extent_update(
    out: &mut [u8],
    flags: u8,
    extents: &[(u64, u64)],
) -> Result<usize, EncodeError> {
    let n = u32::try_from(extents.len()).map_err(|_| EncodeError::Invalid {
        what: "number of extents",
    })?;
    let mut w = Writer::new(out);
    w.u32(n)?;
    w.u8(flags)?;
    w.zeros(3)?;
    for (dpa, len) in extents {
        w.u64(*dpa)?;
        w.u64(*len)?;
        w.zeros(8)?;
    }
    Ok(w.len())
}

/// A decoded Add Dynamic Capacity Response / Release Dynamic Capacity input.
#[derive(Clone, Copy, Debug)]
pub struct ExtentUpdate<'a> {
    /// Flags ([`UPDATE_MORE`]).
    pub flags: u8,
    entries: &'a [u8],
}

impl<'a> ExtentUpdate<'a> {
    /// Decodes the input; every extent the count announces must be present.
    pub fn decode(buf: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(buf);
        let n = r.u32("updated_extent_list_size")?;
        let flags = r.u8("flags")?;
        r.skip("reserved", 3)?;
        let len = usize::try_from(n)
            .unwrap_or(usize::MAX)
            .saturating_mul(UPDATED_EXTENT_LEN);
        let entries = r.bytes("updated extent list", len)?;
        Ok(Self { flags, entries })
    }

    /// Number of extents.
    pub const fn len(&self) -> usize {
        self.entries.len() / UPDATED_EXTENT_LEN
    }

    /// Whether there are none.
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The extents as `(start DPA, length)`.
    pub fn iter(&self) -> impl Iterator<Item = (u64, u64)> + 'a {
        self.entries
            .chunks_exact(UPDATED_EXTENT_LEN)
            .filter_map(|b| {
                let mut r = Reader::new(b);
                Some((r.u64("starting_dpa").ok()?, r.u64("length").ok()?))
            })
    }
}

/// A rule a Dynamic Capacity request breaks: found before anything is sent. Its text names
/// the rule and where it comes from (the CXL specification, or what the device reported).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// The device serves `hosts` hosts (Get DCD Info); host ids are 0..hosts.
    NoSuchHost {
        /// The host asked for.
        host: u16,
        /// The device's number of hosts.
        hosts: u8,
    },
    /// The device has `regions` DC regions; region ids are 0..regions.
    NoSuchRegion {
        /// The region asked for.
        region: u8,
        /// The device's number of regions.
        regions: u8,
    },
    /// The device does not support this selection policy (Get DCD Info).
    SelectionUnsupported {
        /// The policy.
        policy: SelectionPolicy,
        /// The device's supported policies (bit n = policy n).
        supported: u16,
    },
    /// The device does not support this removal policy (Get DCD Info).
    RemovalUnsupported {
        /// The policy.
        policy: RemovalPolicy,
        /// The device's supported policies (bit n = policy n).
        supported: u16,
    },
    /// A block size that is not a power of two.
    BlockSizeNotPowerOfTwo {
        /// The block size, bytes.
        size: u64,
    },
    /// A block size under [`MIN_BLOCK_SIZE`].
    BlockSizeTooSmall {
        /// The block size, bytes.
        size: u64,
    },
    /// A block size the region does not support (Get DCD Info's mask for the region).
    BlockSizeUnsupported {
        /// The region.
        region: u8,
        /// The block size, bytes.
        size: u64,
        /// The region's supported block size mask.
        mask: u64,
    },
    /// Sanitize on Release cannot be changed for this region (Get DCD Info's mask).
    SanitizeNotConfigurable {
        /// The region.
        region: u8,
    },
    /// A prescriptive request without extents.
    NoExtents,
    /// Extent `index` has length 0.
    EmptyExtent {
        /// Index of the extent in the request.
        index: usize,
    },
    /// Extent `index` does not start on a block boundary of its region.
    StartMisaligned {
        /// Index of the extent in the request.
        index: usize,
        /// Its start DPA.
        dpa: u64,
        /// The region's block size.
        block_size: u64,
    },
    /// Extent `index`'s length is not a multiple of its region's block size.
    LengthMisaligned {
        /// Index of the extent in the request.
        index: usize,
        /// Its length.
        length: u64,
        /// The region's block size.
        block_size: u64,
    },
    /// Extent `index` does not lie inside one region.
    OutsideRegions {
        /// Index of the extent in the request.
        index: usize,
        /// Its start DPA.
        dpa: u64,
        /// Its length.
        length: u64,
    },
    /// Extent `index` lies in region `found`, not in the region the request names.
    WrongRegion {
        /// Index of the extent in the request.
        index: usize,
        /// The region it is in.
        found: u8,
        /// The region the request names.
        region: u8,
    },
    /// Extents `a` and `b` of the request overlap.
    Overlap {
        /// Index of the first.
        a: usize,
        /// Index of the second.
        b: usize,
    },
    /// Extent `index` overlaps capacity a host already holds.
    Allocated {
        /// Index of the extent in the request.
        index: usize,
        /// The host that holds it.
        host: u16,
    },
    /// Extent `index` is not (wholly) capacity the host holds.
    NotHeld {
        /// Index of the extent in the request.
        index: usize,
        /// The host.
        host: u16,
    },
    /// A length (Free, Contiguous, Tag-based) that is 0 or not a multiple of the region's
    /// block size.
    LengthNotBlocks {
        /// The length, bytes.
        length: u64,
        /// The region's block size.
        block_size: u64,
    },
    /// More capacity than the region has free.
    NotEnoughFree {
        /// The region.
        region: u8,
        /// Bytes asked for.
        asked: u64,
        /// Bytes free (not held by any host).
        free: u64,
    },
    /// More extents than the device can track in addition to those it tracks now (Get Host DC
    /// Region Configuration's Number of Available Extents).
    TooManyExtents {
        /// Extents of the request.
        count: usize,
        /// Extents available.
        available: u32,
    },
    /// Enable Shared Access or Tag-based removal without a tag.
    NoTag,
    /// Tag-based removal of a tag the host holds no capacity with.
    TagNotHeld {
        /// The host.
        host: u16,
    },
    /// A release of everything a host holds, when it holds nothing.
    NothingHeld {
        /// The host.
        host: u16,
    },
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::NoSuchHost { host, hosts } => write!(
                f,
                "host {host}: the device serves {hosts} host(s), ids 0 to {} (Get DCD Info \
                 5600h; CXL r3.1 §7.6.7.6)",
                hosts.saturating_sub(1)
            ),
            Self::NoSuchRegion { region, regions } => write!(
                f,
                "region {region}: the device has {regions} DC region(s), ids 0 to {} (CXL r3.1 \
                 §7.6.7.6.2)",
                regions.saturating_sub(1)
            ),
            Self::SelectionUnsupported { policy, supported } => write!(
                f,
                "selection policy {policy}: the device supports {} (Get DCD Info 5600h, CXL \
                 r3.1 §7.6.7.6.1)",
                PolicyList::selection(supported)
            ),
            Self::RemovalUnsupported { policy, supported } => write!(
                f,
                "removal policy {policy}: the device supports {} (Get DCD Info 5600h, CXL r3.1 \
                 §7.6.7.6.1)",
                PolicyList::removal(supported)
            ),
            Self::BlockSizeNotPowerOfTwo { size } => write!(
                f,
                "block size {}: a region's block size is a power of two (CXL r3.1 §7.6.7.6.3)",
                Size(size)
            ),
            Self::BlockSizeTooSmall { size } => write!(
                f,
                "block size {}: a region's block size is at least 64 bytes (CXL r3.1 \
                 §8.2.9.9.9.1)",
                Size(size)
            ),
            Self::BlockSizeUnsupported { region, size, mask } => write!(
                f,
                "block size {}: region {region} supports {} (Get DCD Info 5600h, supported \
                 block size mask {mask:#x})",
                Size(size),
                SizeList(mask)
            ),
            Self::SanitizeNotConfigurable { region } => write!(
                f,
                "region {region}: its Sanitize on Release setting cannot be changed (Get DCD \
                 Info 5600h, Sanitize on Release configuration support mask)"
            ),
            Self::NoExtents => f.write_str(
                "a prescriptive request names at least one extent (CXL r3.1 §7.6.7.6.5-6)",
            ),
            Self::EmptyExtent { index } => write!(
                f,
                "extent {index}: length 0; an extent is at least one block (CXL r3.1 §9.13.3)"
            ),
            Self::StartMisaligned {
                index,
                dpa,
                block_size,
            } => write!(
                f,
                "extent {index}: start DPA {dpa:#x} is not on a block boundary of its region \
                 (block size {}); extents start and end on the region's block size (CXL r3.1 \
                 §9.13.3)",
                Size(block_size)
            ),
            Self::LengthMisaligned {
                index,
                length,
                block_size,
            } => write!(
                f,
                "extent {index}: length {} is not a multiple of its region's block size {} (CXL \
                 r3.1 §9.13.3)",
                Size(length),
                Size(block_size)
            ),
            Self::OutsideRegions { index, dpa, length } => write!(
                f,
                "extent {index}: DPA {dpa:#x} length {} does not lie inside one DC region; an \
                 extent never crosses regions (CXL r3.1 §9.13.3)",
                Size(length)
            ),
            Self::WrongRegion {
                index,
                found,
                region,
            } => write!(
                f,
                "extent {index} lies in region {found}, not in region {region} that the request \
                 names (CXL r3.1 §7.6.7.6.5)"
            ),
            Self::Overlap { a, b } => write!(
                f,
                "extents {a} and {b} overlap; the extents of a request are disjoint (CXL r3.1 \
                 §7.6.7.6.5)"
            ),
            Self::Allocated { index, host } => write!(
                f,
                "extent {index} overlaps capacity host {host} already holds (Get DC Region \
                 Extent Lists 5603h)"
            ),
            Self::NotHeld { index, host } => write!(
                f,
                "extent {index} is not capacity host {host} holds (Get DC Region Extent Lists \
                 5603h); only held capacity is released"
            ),
            Self::LengthNotBlocks { length, block_size } => write!(
                f,
                "length {} is not a non-zero multiple of the region's block size {} (CXL r3.1 \
                 §9.13.3)",
                Size(length),
                Size(block_size)
            ),
            Self::NotEnoughFree {
                region,
                asked,
                free,
            } => write!(
                f,
                "region {region} has {} free (not held by any host), {} asked for",
                Size(free),
                Size(asked)
            ),
            Self::TooManyExtents { count, available } => write!(
                f,
                "{count} extents: the device tracks {available} more (Get Host DC Region \
                 Configuration 5601h, Number of Available Extents)"
            ),
            Self::NoTag => f.write_str(
                "Enable Shared Access and Tag-based removal name the capacity by a tag (CXL r3.1 \
                 §7.6.7.6.5-6)",
            ),
            Self::TagNotHeld { host } => write!(
                f,
                "host {host} holds no capacity with this tag (Get DC Region Extent Lists 5603h)"
            ),
            Self::NothingHeld { host } => write!(
                f,
                "host {host} holds no capacity (Get DC Region Extent Lists 5603h): nothing to \
                 release"
            ),
        }
    }
}

/// The names of the policies of a supported-policies mask, for messages: `prescriptive`,
/// `free, contiguous`, `none`.
struct PolicyList {
    mask: u16,
    removal: bool,
}

impl PolicyList {
    const fn selection(mask: u16) -> Self {
        Self {
            mask,
            removal: false,
        }
    }

    const fn removal(mask: u16) -> Self {
        Self {
            mask,
            removal: true,
        }
    }
}

impl fmt::Display for PolicyList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut any = false;
        for bit in 0u8..16 {
            if self.mask & (1u16 << bit) == 0 {
                continue;
            }
            if any {
                f.write_str(", ")?;
            }
            any = true;
            if self.removal {
                write!(f, "{}", RemovalPolicy::from_raw(bit))?;
            } else {
                write!(f, "{}", SelectionPolicy::from_raw(bit))?;
            }
        }
        if !any {
            f.write_str("none")?;
        }
        Ok(())
    }
}

/// The block sizes of a mask, for messages: `2 MiB`, `4 KiB, 2 MiB`, `no block size`.
struct SizeList(u64);

impl fmt::Display for SizeList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut any = false;
        for s in block_sizes(self.0) {
            if any {
                f.write_str(", ")?;
            }
            any = true;
            write!(f, "{}", Size(s))?;
        }
        if !any {
            f.write_str("no block size")?;
        }
        Ok(())
    }
}

/// Checks a block size for region `region` whose supported block size mask is `mask`: a
/// power of two, at least [`MIN_BLOCK_SIZE`], and supported by the region.
pub fn check_block_size(region: u8, size: u64, mask: u64) -> Result<(), Rule> {
    if !size.is_power_of_two() {
        return Err(Rule::BlockSizeNotPowerOfTwo { size });
    }
    if size < MIN_BLOCK_SIZE {
        return Err(Rule::BlockSizeTooSmall { size });
    }
    if mask & size == 0 {
        return Err(Rule::BlockSizeUnsupported { region, size, mask });
    }
    Ok(())
}

/// The region (its index in `regions`, whose entry `i` is region `i`) that holds `[dpa, dpa +
/// len)` entirely.
pub fn region_of(regions: &[DcRegion], dpa: u64, len: u64) -> Option<u8> {
    regions
        .iter()
        .zip(0u8..)
        .find(|(r, _)| r.contains(dpa, len))
        .map(|(_, id)| id)
}

/// Checks the extents of a request against `regions` (entry `i` is region `i`): each is
/// non-empty, lies inside one region (region `region` when the request names one), starts
/// and ends on that region's block size, and no two overlap.
///
/// Errors: the first rule broken, naming the extent by its index in `extents`.
pub fn check_extents(
    extents: &[Extent],
    regions: &[DcRegion],
    region: Option<u8>,
) -> Result<(), Rule> {
    for (index, e) in extents.iter().enumerate() {
        if e.length == 0 {
            return Err(Rule::EmptyExtent { index });
        }
        let Some(found) = region_of(regions, e.start_dpa, e.length) else {
            return Err(Rule::OutsideRegions {
                index,
                dpa: e.start_dpa,
                length: e.length,
            });
        };
        if let Some(want) = region.filter(|w| *w != found) {
            return Err(Rule::WrongRegion {
                index,
                found,
                region: want,
            });
        }
        let Some(r) = regions.get(usize::from(found)) else {
            return Err(Rule::OutsideRegions {
                index,
                dpa: e.start_dpa,
                length: e.length,
            });
        };
        if !r.aligned(e.start_dpa, true) {
            return Err(Rule::StartMisaligned {
                index,
                dpa: e.start_dpa,
                block_size: r.block_size,
            });
        }
        if !r.aligned(e.length, false) {
            return Err(Rule::LengthMisaligned {
                index,
                length: e.length,
                block_size: r.block_size,
            });
        }
    }
    for (a, ea) in extents.iter().enumerate() {
        for (b, eb) in extents.iter().enumerate().skip(a.saturating_add(1)) {
            if ea.overlaps(eb) {
                return Err(Rule::Overlap { a, b });
            }
        }
    }
    Ok(())
}

/// Whether `[dpa, dpa + len)` is covered by the union of `held` (in any order, overlapping or
/// not).
pub fn covered(dpa: u64, len: u64, held: &[Extent]) -> bool {
    let Some(end) = dpa.checked_add(len) else {
        return false;
    };
    let mut pos = dpa;
    while pos < end {
        let next = held
            .iter()
            .filter(|h| h.start_dpa <= pos)
            .filter_map(Extent::end)
            .filter(|e| *e > pos)
            .max();
        match next {
            Some(n) => pos = n,
            None => return false,
        }
    }
    true
}

#[cfg(test)]
#[path = "dcd_tests.rs"]
mod tests;
