// SPDX-License-Identifier: GPL-2.0

//! Memory pooling with Dynamic Capacity: the FM-API DCD Management commands (CXL r3.1
//! §7.6.7.6) to a Dynamic Capacity Device on any [`Target`] (usually the device behind a
//! switch port, through a Tunnel Management Command), and the workflow on top of them: what a
//! device has and what is free, give a host capacity, show who holds what, take it back
//! (Documentation/pooling.rst).
//!
//! Two layers:
//!
//! - Typed commands on [`Cci`]: [`Cci::dcd_info`] (5600h), [`Cci::dc_regions`] (5601h, every
//!   region, in as many commands as the payload needs), [`Cci::set_dc_region`] (5602h),
//!   [`Cci::dc_extents`] (5603h, every extent in pages, restarted when the list's generation
//!   number changes between pages), [`Cci::dc_add`] (5604h) and [`Cci::dc_release`] (5605h).
//!   They send what they are given; the device judges it.
//! - Checked operations: [`DcdState::read`] reads the device's view (Get DCD Info, the host's
//!   regions, every host's extents), and [`DcdState::plan_add`], [`DcdState::plan_release`] and
//!   [`DcdState::check_configure`] turn what the caller asks for into requests, refusing
//!   anything that breaks a rule of the specification or of what the device reported (hosts,
//!   regions, policies, block sizes, alignment, overlaps, free capacity, extents the device
//!   can track: [`proto::payload::dcd::Rule`](crate::proto::payload::dcd::Rule)) before
//!   anything is sent. [`add`], [`release`] and [`configure`] do both and send the requests
//!   (an add or release of more extents than one payload carries goes in several commands).
//!
//! Capacity added to a host stays pending until the host accepts it (its Add Dynamic Capacity
//! Response, 4802h, on the device's own mailbox); only accepted capacity is listed by Get DC
//! Region Extent Lists. A release, forced or not, is done when the host gives the capacity up
//! (Release Dynamic Capacity, 4803h) or, forced, when the device drops it.
//!
//! Every return code of these commands gets its own explanation ([`rc_meaning`]).

use std::fmt;

use crate::proto::opcode;
use crate::proto::payload::dcd::{
    self as p, check_block_size, check_extents, covered, region_of, AddRequest, DcRegion, DcdInfo,
    ExtentCounts, ExtentList, ExtentListRequest, HostRegionConfig, HostRegionRequest, ReleaseFlags,
    ReleaseRequest, Rule, SetRegionConfig,
};
pub use crate::proto::payload::dcd::{Extent, RemovalPolicy, SelectionPolicy};
use crate::proto::payload::ld::LdRule;
use crate::proto::payload::logs::Uuid;
use crate::proto::rc::ReturnCode;
use crate::proto::wire::EncodeError;
use crate::{command_name, Cci, Error, Result, Target};

/// Times a paged Get DC Region Extent Lists is restarted when the list changes while it is
/// read (its generation number differs between pages).
const EXTENT_LIST_ATTEMPTS: usize = 4;

/// A host's DC regions, from Get Host DC Region Configuration (5601h).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostRegions {
    /// The host.
    pub host_id: u16,
    /// Number of regions the device has for the host.
    pub num_regions: u8,
    /// The regions; entry `i` is region `i`.
    pub regions: Vec<DcRegion>,
    /// Extents and tags the device tracks (`None` from a device of CXL r3.0).
    pub counts: Option<ExtentCounts>,
}

/// A host's extents, from Get DC Region Extent Lists (5603h): the capacity it accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostExtents {
    /// The host.
    pub host_id: u16,
    /// The list's generation number when it was read.
    pub generation: u32,
    /// Every extent, in the device's order.
    pub extents: Vec<Extent>,
}

impl HostExtents {
    /// Bytes held in all.
    pub fn bytes(&self) -> u64 {
        self.extents
            .iter()
            .fold(0u64, |s, e| s.saturating_add(e.length))
    }
}

impl Cci<'_> {
    /// Get DCD Info (5600h), CXL r3.1 §7.6.7.6.1.
    pub fn dcd_info(&self) -> Result<DcdInfo> {
        let out = self.call(opcode::GET_DCD_INFO, &[])?;
        self.decoded(opcode::GET_DCD_INFO, DcdInfo::decode(&out))
    }

    /// Every DC region of host `host` (CXL r3.1 §7.6.7.6.2): Get Host DC Region Configuration
    /// (5601h) from region 0, in as many commands as the payload needs (4 + 40 bytes per
    /// region + 16), until the device's number of regions is listed or it lists no more.
    pub fn dc_regions(&self, host: u16) -> Result<HostRegions> {
        let op = opcode::GET_HOST_DC_REGION_CONFIG;
        let per = p::regions_per_config(self.payload_size()?).clamp(1, usize::from(u8::MAX));
        let mut all = HostRegions {
            host_id: host,
            num_regions: 0,
            regions: Vec::new(),
            counts: None,
        };
        loop {
            let start = u8::try_from(all.regions.len()).unwrap_or(u8::MAX);
            let req = HostRegionRequest {
                host_id: host,
                region_count: u8::try_from(per).unwrap_or(u8::MAX),
                start_region: start,
            };
            let out = self.call(op, &req.encode())?;
            let c = self.decoded(op, HostRegionConfig::decode(&out, start))?;
            all.host_id = c.host_id;
            all.num_regions = c.num_regions;
            all.counts = c.counts.or(all.counts);
            let before = all.regions.len();
            all.regions.extend(c.iter().map(|(_, r)| r));
            let listed = all.regions.len() - before;
            if listed == 0 || all.regions.len() >= usize::from(c.num_regions) {
                all.regions.truncate(usize::from(c.num_regions));
                return Ok(all);
            }
        }
    }

    /// Set DC Region Configuration (5602h), CXL r3.1 §7.6.7.6.3, as given (see [`configure`]
    /// for the checked form).
    pub fn set_dc_region(&self, cfg: &SetRegionConfig) -> Result<ReturnCode> {
        self.change(opcode::SET_DC_REGION_CONFIG, &cfg.encode())
    }

    /// Every extent host `host` holds (CXL r3.1 §7.6.7.6.4): Get DC Region Extent Lists
    /// (5603h) from index 0, as many extents per command as the payload carries (24 bytes +
    /// 40 per extent), until the total is listed or the device lists no more. When the list's
    /// generation number changes between pages, the list changed while it was read: it is
    /// read again from the start (at most 4 times).
    ///
    /// Errors: those of [`Cci`]; [`Error::Missing`] when the list changed on every attempt.
    pub fn dc_extents(&self, host: u16) -> Result<HostExtents> {
        let op = opcode::GET_DC_REGION_EXTENT_LISTS;
        let per =
            u32::try_from(p::extents_per_list(self.payload_size()?).max(1)).unwrap_or(u32::MAX);
        'attempt: for _ in 0..EXTENT_LIST_ATTEMPTS {
            let mut all = HostExtents {
                host_id: host,
                generation: 0,
                extents: Vec::new(),
            };
            let mut generation = None;
            loop {
                let start = u32::try_from(all.extents.len()).unwrap_or(u32::MAX);
                let req = ExtentListRequest {
                    host_id: host,
                    count: per,
                    start,
                };
                let out = self.call(op, &req.encode())?;
                let l = self.decoded(op, ExtentList::decode(&out))?;
                if generation.is_some_and(|g| g != l.generation) {
                    continue 'attempt;
                }
                generation = Some(l.generation);
                all.generation = l.generation;
                let before = all.extents.len();
                all.extents.extend(l.extents.iter());
                let total = usize::try_from(l.total).unwrap_or(usize::MAX);
                if all.extents.len() == before || all.extents.len() >= total {
                    all.extents.truncate(total);
                    return Ok(all);
                }
            }
        }
        Err(Error::Missing {
            op: self.op(command_name(op)),
            what: "a consistent extent list: its generation number changed while every \
                   attempt read it",
        })
    }

    /// Initiate Dynamic Capacity Add (5604h), CXL r3.1 §7.6.7.6.5, as given, in one command
    /// (see [`add`] for the checked form).
    ///
    /// Errors: those of [`Cci`]; [`Error::Encode`] when the extents do not fit one payload
    /// ([`p::extents_per_request`] of [`Cci::payload_size`]).
    pub fn dc_add(&self, req: &AddRequest, extents: &[Extent]) -> Result<ReturnCode> {
        let op = opcode::INITIATE_DC_ADD;
        let input = self.capacity_input(op, extents.len(), |b| req.encode(b, extents))?;
        self.change(op, &input)
    }

    /// Initiate Dynamic Capacity Release (5605h), CXL r3.1 §7.6.7.6.6, as given, in one
    /// command (see [`release`] for the checked form).
    pub fn dc_release(&self, req: &ReleaseRequest, extents: &[Extent]) -> Result<ReturnCode> {
        let op = opcode::INITIATE_DC_RELEASE;
        let input = self.capacity_input(op, extents.len(), |b| req.encode(b, extents))?;
        self.change(op, &input)
    }

    /// The input of an add or release of `n` extents, encoded by `f`.
    fn capacity_input(
        &self,
        op: u16,
        n: usize,
        f: impl FnOnce(&mut [u8]) -> std::result::Result<usize, EncodeError>,
    ) -> Result<Vec<u8>> {
        let size = n
            .saturating_mul(p::EXTENT_LEN)
            .saturating_add(p::CAPACITY_REQUEST_HEADER);
        if size > self.payload_size()? {
            return Err(Error::Encode {
                op: self.op(command_name(op)),
                err: EncodeError::Invalid {
                    what: "extent list: more extents than one payload carries",
                },
            });
        }
        let mut b = vec![0u8; size];
        let len = self.encoded(op, f(&mut b))?;
        b.truncate(len);
        Ok(b)
    }
}

/// What a Dynamic Capacity Device shows: Get DCD Info, the DC regions of one host, and the
/// extents every host holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DcdState {
    /// Get DCD Info (5600h).
    pub info: DcdInfo,
    /// The regions, as Get Host DC Region Configuration (5601h) reports them for `regions.host_id`.
    pub regions: HostRegions,
    /// Get DC Region Extent Lists (5603h) of every host, by host id.
    pub hosts: Vec<HostExtents>,
}

impl DcdState {
    /// Reads the device on `cci`: Get DCD Info, the regions of host `host`, and the extents of
    /// every host the device serves.
    ///
    /// Errors: [`PoolError::Refused`] for a host the device does not serve (nothing more is
    /// sent: QEMU answers Get Host DC Region Configuration for any host id), or the failed
    /// command.
    pub fn read(cci: &Cci<'_>, host: u16) -> std::result::Result<Self, PoolError> {
        let info = cci.dcd_info().map_err(PoolError::failed)?;
        Self::read_with(cci, info, host)
    }

    /// [`Self::read`] with Get DCD Info already read.
    fn read_with(cci: &Cci<'_>, info: DcdInfo, host: u16) -> std::result::Result<Self, PoolError> {
        if host >= u16::from(info.num_hosts) {
            return Err(PoolError::refused(
                cci,
                opcode::GET_HOST_DC_REGION_CONFIG,
                Rule::NoSuchHost {
                    host,
                    hosts: info.num_hosts,
                },
            ));
        }
        let regions = cci.dc_regions(host).map_err(PoolError::failed)?;
        let hosts = (0..u16::from(info.num_hosts))
            .map(|h| cci.dc_extents(h))
            .collect::<Result<Vec<_>>>()
            .map_err(PoolError::failed)?;
        Ok(Self {
            info,
            regions,
            hosts,
        })
    }

    /// The extents host `host` holds (none for a host that was not read).
    pub fn held(&self, host: u16) -> &[Extent] {
        self.hosts
            .iter()
            .find(|h| h.host_id == host)
            .map_or(&[], |h| h.extents.as_slice())
    }

    /// Region `region`, if the device has it.
    pub fn region(&self, region: u8) -> Option<&DcRegion> {
        self.regions.regions.get(usize::from(region))
    }

    /// The ranges `(start DPA, length)` of region `region` no host holds, ascending.
    pub fn free_ranges(&self, region: u8) -> Vec<(u64, u64)> {
        let Some(r) = self.region(region) else {
            return Vec::new();
        };
        let Some(end) = r.end() else {
            return Vec::new();
        };
        let mut used: Vec<(u64, u64)> = self
            .hosts
            .iter()
            .flat_map(|h| h.extents.iter())
            .filter_map(|e| {
                let s = e.start_dpa.max(r.base);
                let t = e.end().unwrap_or(u64::MAX).min(end);
                (s < t).then_some((s, t))
            })
            .collect();
        used.sort_unstable();
        let mut free = Vec::new();
        let mut pos = r.base;
        for (s, t) in used {
            if s > pos {
                free.push((pos, s - pos));
            }
            pos = pos.max(t);
        }
        if pos < end {
            free.push((pos, end - pos));
        }
        free
    }

    /// Bytes of region `region` no host holds.
    pub fn free(&self, region: u8) -> u64 {
        self.free_ranges(region)
            .iter()
            .fold(0u64, |s, (_, l)| s.saturating_add(*l))
    }

    /// Bytes of region `region` host `host` holds.
    pub fn held_in(&self, host: u16, region: u8) -> u64 {
        let Some(r) = self.region(region) else {
            return 0;
        };
        self.held(host)
            .iter()
            .filter(|e| r.contains(e.start_dpa, e.length))
            .fold(0u64, |s, e| s.saturating_add(e.length))
    }

    /// The region a DPA range lies in.
    pub fn region_of(&self, dpa: u64, len: u64) -> Option<u8> {
        region_of(&self.regions.regions, dpa, len)
    }

    fn check_host(&self, host: u16) -> std::result::Result<(), Rule> {
        if host >= u16::from(self.info.num_hosts) {
            return Err(Rule::NoSuchHost {
                host,
                hosts: self.info.num_hosts,
            });
        }
        Ok(())
    }

    fn check_region(&self, region: u8) -> std::result::Result<&DcRegion, Rule> {
        let regions = u8::try_from(self.regions.regions.len()).unwrap_or(u8::MAX);
        match self.region(region) {
            Some(r) if region < self.regions.num_regions => Ok(r),
            _ => Err(Rule::NoSuchRegion {
                region,
                regions: regions.min(self.regions.num_regions),
            }),
        }
    }

    /// Extents more than the device can track are refused (when it reports its counts).
    fn check_count(&self, n: usize) -> std::result::Result<(), Rule> {
        match self.regions.counts {
            Some(c) if n > usize::try_from(c.extents_available).unwrap_or(usize::MAX) => {
                Err(Rule::TooManyExtents {
                    count: n,
                    available: c.extents_available,
                })
            }
            _ => Ok(()),
        }
    }

    /// The requests of an add: see [`AddSpec`] for what is checked and how the policy and the
    /// extents are chosen. Each request carries at most `per_command` extents (at least 1).
    ///
    /// Errors: the first rule the add breaks.
    pub fn plan_add(
        &self,
        spec: &AddSpec,
        per_command: usize,
    ) -> std::result::Result<Vec<(AddRequest, Vec<Extent>)>, Rule> {
        self.check_host(spec.host)?;
        let region_id = match (spec.region, spec.extents.first()) {
            (Some(r), _) => r,
            (None, Some(e)) => {
                self.region_of(e.start_dpa, e.length)
                    .ok_or(Rule::OutsideRegions {
                        index: 0,
                        dpa: e.start_dpa,
                        length: e.length,
                    })?
            }
            (None, None) => return Err(Rule::NoExtents),
        };
        let region = self.check_region(region_id)?;
        let policy = match spec.policy {
            Some(p) => p,
            None if !spec.extents.is_empty() => SelectionPolicy::Prescriptive,
            None if self.info.supports_selection(SelectionPolicy::Free) => SelectionPolicy::Free,
            None => SelectionPolicy::Prescriptive,
        };
        if !self.info.supports_selection(policy) {
            return Err(Rule::SelectionUnsupported {
                policy,
                supported: self.info.selection_policies,
            });
        }
        let head = AddRequest {
            host_id: spec.host,
            policy,
            region: region_id,
            length: 0,
            tag: spec.tag,
        };
        let size_ok = |size: u64| {
            if size == 0 || !region.aligned(size, false) {
                return Err(Rule::LengthNotBlocks {
                    length: size,
                    block_size: region.block_size,
                });
            }
            let free = self.free(region_id);
            if size > free {
                return Err(Rule::NotEnoughFree {
                    region: region_id,
                    asked: size,
                    free,
                });
            }
            Ok(())
        };
        let extents = match policy {
            SelectionPolicy::Prescriptive => {
                let extents = if spec.extents.is_empty() {
                    let size = spec.size.unwrap_or(0);
                    size_ok(size)?;
                    self.pick(region_id, size, spec.tag)
                } else {
                    spec.extents.clone()
                };
                if extents.is_empty() {
                    return Err(Rule::NoExtents);
                }
                check_extents(&extents, &self.regions.regions, Some(region_id))?;
                for (index, e) in extents.iter().enumerate() {
                    if let Some(h) = self
                        .hosts
                        .iter()
                        .find(|h| h.extents.iter().any(|x| x.overlaps(e)))
                    {
                        return Err(Rule::Allocated {
                            index,
                            host: h.host_id,
                        });
                    }
                }
                self.check_count(extents.len())?;
                extents
            }
            SelectionPolicy::Free | SelectionPolicy::Contiguous => {
                let size = spec.size.unwrap_or(0);
                size_ok(size)?;
                return Ok(vec![(
                    AddRequest {
                        length: size,
                        ..head
                    },
                    Vec::new(),
                )]);
            }
            SelectionPolicy::EnableSharedAccess | SelectionPolicy::Reserved(_) => {
                if !spec.tag_given() {
                    return Err(Rule::NoTag);
                }
                return Ok(vec![(
                    AddRequest {
                        length: spec.size.unwrap_or(0),
                        ..head
                    },
                    Vec::new(),
                )]);
            }
        };
        Ok(extents
            .chunks(per_command.max(1))
            .map(|c| (head, c.to_vec()))
            .collect())
    }

    /// `size` bytes of region `region`'s free ranges, lowest first: one extent per free range
    /// used, the last one cut to what is left.
    fn pick(&self, region: u8, size: u64, tag: Uuid) -> Vec<Extent> {
        let mut left = size;
        let mut out = Vec::new();
        for (dpa, len) in self.free_ranges(region) {
            if left == 0 {
                break;
            }
            let take = len.min(left);
            out.push(Extent {
                tag,
                ..Extent::new(dpa, take)
            });
            left -= take;
        }
        out
    }

    /// The requests of a release: see [`ReleaseSpec`] for what is checked. Each request carries
    /// at most `per_command` extents (at least 1).
    ///
    /// Errors: the first rule the release breaks.
    pub fn plan_release(
        &self,
        spec: &ReleaseSpec,
        per_command: usize,
    ) -> std::result::Result<Vec<(ReleaseRequest, Vec<Extent>)>, Rule> {
        self.check_host(spec.host)?;
        let held = self.held(spec.host);
        let policy = match spec.what {
            Release::Tag { .. } => RemovalPolicy::TagBased,
            Release::Extents(_) | Release::All => RemovalPolicy::Prescriptive,
        };
        if !self.info.supports_removal(policy) {
            return Err(Rule::RemovalUnsupported {
                policy,
                supported: self.info.removal_policies,
            });
        }
        let head = ReleaseRequest {
            host_id: spec.host,
            flags: ReleaseFlags {
                policy,
                forced: spec.forced,
                sanitize: spec.sanitize,
            },
            length: 0,
            tag: Uuid([0; 16]),
        };
        let extents = match &spec.what {
            Release::Tag { tag, length } => {
                if tag.0 == [0; 16] {
                    return Err(Rule::NoTag);
                }
                let tagged = held
                    .iter()
                    .filter(|e| e.tag == *tag)
                    .fold(0u64, |s, e| s.saturating_add(e.length));
                if tagged == 0 {
                    return Err(Rule::TagNotHeld { host: spec.host });
                }
                return Ok(vec![(
                    ReleaseRequest {
                        length: length.unwrap_or(tagged),
                        tag: *tag,
                        ..head
                    },
                    Vec::new(),
                )]);
            }
            Release::All => {
                if held.is_empty() {
                    return Err(Rule::NothingHeld { host: spec.host });
                }
                held.to_vec()
            }
            Release::Extents(x) => {
                if x.is_empty() {
                    return Err(Rule::NoExtents);
                }
                check_extents(x, &self.regions.regions, None)?;
                for (index, e) in x.iter().enumerate() {
                    if !covered(e.start_dpa, e.length, held) {
                        return Err(Rule::NotHeld {
                            index,
                            host: spec.host,
                        });
                    }
                }
                x.clone()
            }
        };
        Ok(extents
            .chunks(per_command.max(1))
            .map(|c| (head, c.to_vec()))
            .collect())
    }

    /// The Set DC Region Configuration request for region `region`, block size `block_size`
    /// bytes, Sanitize on Release `sanitize` (`None`: as the region has it now).
    ///
    /// Errors: a region the device does not have (QEMU 11.1 divides by zero for a region id
    /// between its number of regions and 7: the check is not optional), a block size that is
    /// not a power of two of at least 64 bytes or that the region does not support, or a
    /// Sanitize on Release change the device does not allow for the region.
    pub fn check_configure(
        &self,
        region: u8,
        block_size: u64,
        sanitize: Option<bool>,
    ) -> std::result::Result<SetRegionConfig, Rule> {
        let r = self.check_region(region)?;
        check_block_size(region, block_size, self.info.block_size_mask(region))?;
        let sanitize_on_release = sanitize.unwrap_or(r.sanitize_on_release);
        if sanitize_on_release != r.sanitize_on_release && !self.info.sanitize_configurable(region)
        {
            return Err(Rule::SanitizeNotConfigurable { region });
        }
        Ok(SetRegionConfig {
            region,
            block_size,
            sanitize_on_release,
        })
    }
}

/// What to add to a host ([`add`], [`DcdState::plan_add`]).
///
/// - `extents` given: the Prescriptive policy with exactly these extents (DPAs in bytes).
///   They must lie in `region`, start and end on its block size, not overlap each other or
///   capacity any host holds, and be no more than the device can track.
/// - otherwise `size` bytes (a non-zero multiple of the region's block size, at most what no
///   host holds in the region): with `policy` Free or Contiguous the device chooses the
///   capacity; with Prescriptive (the default when the device does not support Free) the
///   library chooses it from the region's free ranges, lowest first.
/// - Enable Shared Access: `tag` names the shared capacity; `size` is sent as the length
///   (0 when not given).
///
/// The policy must be one Get DCD Info reports as supported; the host one the device serves.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AddSpec {
    /// The host (for an MLD: its LD id).
    pub host: u16,
    /// The region; `None`: the region of the first extent.
    pub region: Option<u8>,
    /// How the capacity is chosen; `None`: Prescriptive with extents, else Free if the device
    /// supports it, else Prescriptive.
    pub policy: Option<SelectionPolicy>,
    /// Bytes to add.
    pub size: Option<u64>,
    /// Extents to add (Prescriptive).
    pub extents: Vec<Extent>,
    /// Tag of the capacity (all zero: none).
    pub tag: Uuid,
}

impl AddSpec {
    fn tag_given(&self) -> bool {
        self.tag.0 != [0; 16]
    }
}

/// Which capacity to take back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Release {
    /// These extents (Prescriptive): each must be capacity the host holds.
    Extents(Vec<Extent>),
    /// Every extent the host holds (Prescriptive).
    All,
    /// The capacity tagged `tag` (Tag-based): `length` bytes, by default all the host holds
    /// with the tag.
    Tag {
        /// The tag.
        tag: Uuid,
        /// Bytes to release.
        length: Option<u64>,
    },
}

/// What to release ([`release`], [`DcdState::plan_release`]); the removal policy must be one
/// Get DCD Info reports as supported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReleaseSpec {
    /// The host.
    pub host: u16,
    /// The capacity.
    pub what: Release,
    /// Forced Removal: release without waiting for the host.
    pub forced: bool,
    /// Sanitize on Release.
    pub sanitize: bool,
}

/// What an add or release sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CapacityReport {
    /// The target.
    pub target: Target,
    /// The host.
    pub host: u16,
    /// The selection or removal policy's name.
    pub policy: &'static str,
    /// Commands sent.
    pub commands: usize,
    /// The extents sent (empty for the policies where the device chooses).
    pub extents: Vec<Extent>,
    /// Bytes: the extents' lengths, or the length sent.
    pub bytes: u64,
    /// Return code of the last command (success).
    pub rc: ReturnCode,
    /// The device as it was read before the commands were sent.
    pub before: DcdState,
}

/// A rule a pooling request breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Broken {
    /// A Dynamic Capacity rule.
    Dcd(Rule),
    /// An LD allocation rule.
    Ld(LdRule),
}

impl fmt::Display for Broken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dcd(r) => r.fmt(f),
            Self::Ld(r) => r.fmt(f),
        }
    }
}

/// Why a pooling operation failed.
#[derive(Debug)]
pub enum PoolError {
    /// The request breaks a rule: nothing was sent.
    Refused {
        /// The command that was not sent, and where.
        op: String,
        /// The rule.
        rule: Broken,
    },
    /// A command failed: an OS error, a refusal of the device (with what its return code
    /// means), or a malformed response.
    Failed {
        /// The error.
        error: Error,
        /// What the return code means for this command ([`rc_meaning`]).
        meaning: Option<&'static str>,
        /// Commands of the operation that had succeeded before (an add or release of many
        /// extents goes in several).
        done: usize,
        /// Commands the operation needed.
        of: usize,
    },
    /// The device completed the command but does not show its result.
    Unconfirmed {
        /// What was done, and where.
        op: String,
        /// What the device shows instead.
        what: String,
    },
}

impl PoolError {
    /// A failed read (nothing changed yet).
    pub fn failed(error: Error) -> Self {
        let meaning = error.rc().and_then(|rc| rc_meaning(op_of(&error), rc));
        Self::Failed {
            error,
            meaning,
            done: 0,
            of: 1,
        }
    }

    fn refused(cci: &Cci<'_>, op: u16, rule: Rule) -> Self {
        Self::Refused {
            op: cci.op(command_name(op)),
            rule: Broken::Dcd(rule),
        }
    }

    /// The underlying library error of a failed command.
    pub fn error(&self) -> Option<&Error> {
        match self {
            Self::Failed { error, .. } => Some(error),
            _ => None,
        }
    }

    /// The device's return code, if it refused a command.
    pub fn rc(&self) -> Option<ReturnCode> {
        self.error().and_then(Error::rc)
    }

    /// The rule broken, if nothing was sent.
    pub fn rule(&self) -> Option<Broken> {
        match self {
            Self::Refused { rule, .. } => Some(*rule),
            _ => None,
        }
    }
}

/// The opcode an error of this library names: its text starts with the command's name as
/// [`command_name`] writes it (`Initiate Dynamic Capacity Add (5604h) via port 0 on ...`), the
/// Tunnel Management Command's when the tunnel itself failed. 0 when it names none.
fn op_of(e: &Error) -> u16 {
    let op = match e {
        Error::Os { op, .. }
        | Error::Device { op, .. }
        | Error::Decode { op, .. }
        | Error::Encode { op, .. }
        | Error::Argument { op, .. }
        | Error::Timeout { op, .. }
        | Error::Missing { op, .. } => op,
    };
    op.split_once("h)")
        .and_then(|(head, _)| head.rsplit_once('('))
        .and_then(|(_, hex)| u16::from_str_radix(hex, 16).ok())
        .unwrap_or(0)
}

impl fmt::Display for PoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Refused { op, rule } => write!(f, "{op}: not sent: {rule}"),
            Self::Failed {
                error,
                meaning,
                done,
                of,
            } => {
                write!(f, "{error}")?;
                if let Some(m) = meaning {
                    write!(f, ": {m}")?;
                }
                if *done > 0 {
                    write!(
                        f,
                        " (command {} of {of}; the {done} before it were accepted)",
                        done.saturating_add(1)
                    )?;
                }
                Ok(())
            }
            Self::Unconfirmed { op, what } => write!(f, "{op}: {what}"),
        }
    }
}

impl std::error::Error for PoolError {}

/// Sends the commands of an add or release one after the other; the first failure stops.
fn send_all<R>(
    reqs: &[(R, Vec<Extent>)],
    mut send: impl FnMut(&R, &[Extent]) -> Result<ReturnCode>,
) -> std::result::Result<ReturnCode, PoolError> {
    let mut rc = ReturnCode::Success;
    for (i, (r, x)) in reqs.iter().enumerate() {
        rc = send(r, x).map_err(|error| {
            let meaning = error.rc().and_then(|rc| rc_meaning(op_of(&error), rc));
            PoolError::Failed {
                error,
                meaning,
                done: i,
                of: reqs.len(),
            }
        })?;
    }
    Ok(rc)
}

/// Adds capacity to a host on the DCD at `cci` ([`AddSpec`]): reads the device
/// ([`DcdState::read`]), checks and plans the add, then sends Initiate Dynamic Capacity Add
/// (5604h), as many commands as the extents need. The capacity is pending until the host
/// accepts it.
///
/// Errors: [`PoolError::Refused`] (nothing sent), or the command that failed (the ones before
/// it were accepted by the device).
pub fn add(cci: &Cci<'_>, spec: &AddSpec) -> std::result::Result<CapacityReport, PoolError> {
    let state = DcdState::read(cci, spec.host)?;
    let per = p::extents_per_request(cci.payload_size().map_err(PoolError::failed)?);
    let reqs = state
        .plan_add(spec, per)
        .map_err(|r| PoolError::refused(cci, opcode::INITIATE_DC_ADD, r))?;
    let rc = send_all(&reqs, |r, x| cci.dc_add(r, x))?;
    Ok(report(cci, spec.host, state, &reqs, rc, |r| {
        (r.length, r.policy.name())
    }))
}

/// Releases capacity of a host on the DCD at `cci` ([`ReleaseSpec`]): reads the device,
/// checks and plans the release, then sends Initiate Dynamic Capacity Release (5605h), as
/// many commands as the extents need.
///
/// Errors: as [`add`].
pub fn release(
    cci: &Cci<'_>,
    spec: &ReleaseSpec,
) -> std::result::Result<CapacityReport, PoolError> {
    let state = DcdState::read(cci, spec.host)?;
    let per = p::extents_per_request(cci.payload_size().map_err(PoolError::failed)?);
    let reqs = state
        .plan_release(spec, per)
        .map_err(|r| PoolError::refused(cci, opcode::INITIATE_DC_RELEASE, r))?;
    let rc = send_all(&reqs, |r, x| cci.dc_release(r, x))?;
    Ok(report(cci, spec.host, state, &reqs, rc, |r| {
        (r.length, r.flags.policy.name())
    }))
}

/// What [`add`] or [`release`] sent for `host`: `reqs` (the requests and their extents) ended
/// with `rc`; `length_policy` gives a request's length field (bytes) and its policy's name.
/// The bytes are the extents' lengths, or the first request's length when it names no extent
/// (the device chooses).
fn report<R>(
    cci: &Cci<'_>,
    host: u16,
    before: DcdState,
    reqs: &[(R, Vec<Extent>)],
    rc: ReturnCode,
    length_policy: impl Fn(&R) -> (u64, Option<&'static str>),
) -> CapacityReport {
    let extents: Vec<Extent> = reqs.iter().flat_map(|(_, x)| x.iter().copied()).collect();
    let first = reqs.first().map(|(r, x)| (length_policy(r), x.is_empty()));
    let bytes = match first {
        Some(((length, _), true)) => length,
        _ => extents.iter().fold(0u64, |s, e| s.saturating_add(e.length)),
    };
    CapacityReport {
        target: cci.target(),
        host,
        policy: first.and_then(|((_, p), _)| p).unwrap_or("reserved"),
        commands: reqs.len(),
        extents,
        bytes,
        rc,
        before,
    }
}

/// Sets region `region`'s block size (bytes) and, if given, its Sanitize on Release setting
/// on the DCD at `cci` (Set DC Region Configuration, 5602h), after the checks of
/// [`DcdState::check_configure`]; then reads the region back.
///
/// Errors: [`PoolError::Refused`] (nothing sent), the failed command, or
/// [`PoolError::Unconfirmed`] when the region read back shows another configuration.
pub fn configure(
    cci: &Cci<'_>,
    region: u8,
    block_size: u64,
    sanitize: Option<bool>,
) -> std::result::Result<(SetRegionConfig, DcRegion), PoolError> {
    let op = opcode::SET_DC_REGION_CONFIG;
    let state = DcdState::read(cci, 0)?;
    let cfg = state
        .check_configure(region, block_size, sanitize)
        .map_err(|r| PoolError::refused(cci, op, r))?;
    cci.set_dc_region(&cfg).map_err(PoolError::failed)?;
    let after = cci.dc_regions(0).map_err(PoolError::failed)?;
    let now = after
        .regions
        .get(usize::from(region))
        .copied()
        .unwrap_or_default();
    if now.block_size != cfg.block_size || now.sanitize_on_release != cfg.sanitize_on_release {
        return Err(PoolError::Unconfirmed {
            op: cci.op(command_name(op)),
            what: format!(
                "the device accepted block size {:#x} for region {region}, but Get Host DC \
                 Region Configuration (5601h) reports {:#x} (sanitize on release {})",
                cfg.block_size, now.block_size, now.sanitize_on_release
            ),
        });
    }
    Ok((cfg, now))
}

/// Reads the DCD behind `cci` for a view of the fabric: `Ok(None)` when it is not one (Get
/// DCD Info answered Unsupported, or Unsupported Mailbox or CCI).
pub fn read_dcd(cci: &Cci<'_>) -> Result<Option<DcdState>> {
    let info = match cci.dcd_info() {
        Ok(i) => i,
        Err(e)
            if matches!(
                e.rc(),
                Some(ReturnCode::Unsupported | ReturnCode::UnsupportedMailbox)
            ) =>
        {
            return Ok(None)
        }
        Err(e) => return Err(e),
    };
    match DcdState::read_with(cci, info, 0) {
        Ok(s) => Ok(Some(s)),
        Err(PoolError::Failed { error, .. }) => Err(error),
        // Host 0 exists on every DCD that reports a host; one that reports none has nothing
        // to show.
        Err(_) => Ok(None),
    }
}

/// What the device's return code to pooling command `opcode` (5400h-5402h, 5600h-5605h, or
/// the Tunnel Management Command that carried one) means, in words (CXL r3.1 §7.6.7.4,
/// §7.6.7.6, and QEMU 11.1's reasons where it gives them); `None` for codes with nothing to
/// add to their name, and for other opcodes.
pub fn rc_meaning(op: u16, rc: ReturnCode) -> Option<&'static str> {
    use crate::proto::opcode as o;
    use ReturnCode as R;
    let pooling = matches!(
        op,
        o::GET_LD_INFO
            | o::GET_LD_ALLOCATIONS
            | o::SET_LD_ALLOCATIONS
            | o::GET_DCD_INFO
            | o::GET_HOST_DC_REGION_CONFIG
            | o::SET_DC_REGION_CONFIG
            | o::GET_DC_REGION_EXTENT_LISTS
            | o::INITIATE_DC_ADD
            | o::INITIATE_DC_RELEASE
    );
    if op == o::TUNNEL {
        return (rc == R::InvalidInput).then_some(
            "the switch could not route the command: no component on that port (or LD), or \
             one that does not take tunnelled commands",
        );
    }
    if !pooling {
        return None;
    }
    let mld = matches!(
        op,
        o::GET_LD_INFO | o::GET_LD_ALLOCATIONS | o::SET_LD_ALLOCATIONS
    );
    Some(match (op, rc) {
        (_, R::Unsupported) if mld => {
            "the target does not implement the MLD component commands: it is not a \
             multi-logical device, or not its FM-owned LD (QEMU's type-3 devices implement \
             none)"
        }
        (_, R::Unsupported) if op == o::SET_DC_REGION_CONFIG => {
            "the device cannot reconfigure the region now: it holds extents, or its Sanitize \
             on Release setting cannot be changed (QEMU answers this for both)"
        }
        (_, R::Unsupported) => {
            "the target is not a Dynamic Capacity Device, or does not take the DCD management \
             commands on this CCI (QEMU's type-3 without DC regions answers this)"
        }
        (_, R::UnsupportedMailbox) => {
            "the command is not supported on this CCI: the FM-API commands go to the device's \
             FM-owned LD (through the switch's tunnel), not its primary mailbox"
        }
        (_, R::InternalError) => "the device failed internally; the request was not carried out",
        (_, R::RetryRequired) => "the device asks for the command to be sent again later",
        (_, R::Busy) => "the device is busy with another operation; send the command again",
        (_, R::InvalidPayloadLength) => {
            "the device refused the request's length (an extent count that does not match the \
             extents sent, or a fixed-size request of another size)"
        }
        (o::GET_LD_ALLOCATIONS, R::InvalidInput) => "the start LD is not one of the device's LDs",
        (o::SET_LD_ALLOCATIONS, R::InvalidInput) => {
            "the device refused the request: LDs it does not have, or a malformed list"
        }
        (o::SET_LD_ALLOCATIONS, R::ResourcesExhausted) => {
            "the allocations, with the other LDs' as they are, exceed the device's memory"
        }
        (o::GET_HOST_DC_REGION_CONFIG, R::InvalidInput) => {
            "a start region past the device's regions, or a host it does not serve"
        }
        (o::SET_DC_REGION_CONFIG, R::InvalidInput) => {
            "the device refused the block size (not a power of two it supports for the \
             region) or the region"
        }
        (o::GET_DC_REGION_EXTENT_LISTS, R::InvalidInput) => {
            "a host the device does not serve, or a start index past the host's extents"
        }
        (o::INITIATE_DC_ADD, R::InvalidInput) => {
            "the device refused the request: a selection policy it does not implement (QEMU \
             11.1 implements only prescriptive), a host or region it does not have, or a \
             malformed request"
        }
        (o::INITIATE_DC_ADD, R::InvalidExtentList) => {
            "the extents overlap each other or capacity already added to a host (accepted or \
             still pending), or do not start and end on the region's block size"
        }
        (o::INITIATE_DC_ADD, R::InvalidPhysicalAddress) => {
            "an extent lies outside the device's DC regions, or crosses from one region into \
             another"
        }
        (o::INITIATE_DC_ADD, R::ResourcesExhausted) => {
            "the device cannot track more extents (added or pending), or has not that much \
             free capacity"
        }
        (o::INITIATE_DC_RELEASE, R::InvalidInput) => {
            "the device refused the request: a removal policy it does not implement (QEMU \
             11.1 implements only prescriptive), a host it does not serve, or a malformed \
             request"
        }
        (o::INITIATE_DC_RELEASE, R::InvalidPhysicalAddress) => {
            "the extents are not capacity the host holds: never added, not accepted by the \
             host yet, or (without forced removal) still pending for it"
        }
        (o::INITIATE_DC_RELEASE, R::InvalidExtentList) => {
            "the extents overlap each other or do not start and end on the region's block size"
        }
        (o::INITIATE_DC_RELEASE, R::ResourcesExhausted) => {
            "releasing part of an extent would split it into more extents than the device can \
             track"
        }
        _ => return None,
    })
}

#[cfg(test)]
#[path = "dcd_tests.rs"]
mod tests;
