// SPDX-License-Identifier: GPL-2.0

//! `swcci dcd`: Dynamic Capacity from the fabric manager (swcci-lib's `dcd` module,
//! Documentation/pooling.rst): `info`, `regions`, `extents` read the device; `configure`,
//! `add` and `release` change it and send nothing without `--yes`.

use crate::decode::{self, bytes_text};
use crate::error::{CliError, EXIT_UNCONFIRMED, EXIT_USAGE};
use crate::output::{join, render_record, render_table, Field, Record};
use crate::units::{hex, parse_bytes, parse_extent, parse_host, parse_tag};
use crate::{parse_u8, wrapped, TargetArgs, DEV_HELP};
use clap::{ArgGroup, Args, Subcommand, ValueEnum};
use serde_json::{Map, Value};
use swcci::dcd::{
    self, AddSpec, CapacityReport, DcdState, Extent, HostExtents, PoolError, Release, ReleaseSpec,
    SelectionPolicy,
};
use swcci::proto::payload::dcd::{
    block_sizes, region_flag, DcRegion, DcdInfo, RemovalPolicy, SetRegionConfig,
};
use swcci::proto::payload::logs::Uuid;
use swcci::{command_name, Cci, Device, Target};
use swcci_proto::opcode;

type Result<T> = std::result::Result<T, CliError>;

pub const DCD_LONG_ABOUT: &str = "\
Dynamic Capacity (CXL r3.1 §7.6.7.6) of a Dynamic Capacity Device (DCD), usually the device \
behind a downstream port (--port P, through a Tunnel Management Command 5300h; --port P --ld \
L for LD L of a multi-logical device there): what it has and what is free, give a host \
capacity, show who holds what, take it back. Documentation/pooling.rst walks through it.

info, regions and extents read the device (Get DCD Info 5600h, Get Host DC Region \
Configuration 5601h, Get DC Region Extent Lists 5603h). configure, add and release change it \
(Set DC Region Configuration 5602h, Initiate Dynamic Capacity Add 5604h and Release 5605h) and \
send nothing without --yes. Before sending, swcci reads the device and refuses what breaks a \
rule of the specification or of what the device reports: hosts, regions, selection and \
removal policies, block sizes, extents on the region's block boundaries, inside one region, \
not overlapping each other or what a host holds, no more than is free or than the device \
can track (exit status 2, the rule named). Every return code of the device is explained.

Sizes take binary units: 4096, 0x200000, 2M, 256MiB, 1G (M = MiB). Extents are DPA:LENGTH \
(0x10000000:256M). A host is named by its host id, for an MLD-based DCD the LD id of its LD.

Added capacity is pending until the host accepts it (its Add Dynamic Capacity Response, \
4802h, on the device's own mailbox); only accepted capacity is listed by extents.";

pub const DCD_EXAMPLES: &str = "\
Examples:
  swcci dcd info switch0 --port 0
  swcci dcd regions switch0 --port 0
  swcci dcd add switch0 --port 0 --host 0 --region 0 --size 1G --yes
  swcci dcd add switch0 --port 0 --host 0 --extent 0x10000000:256M --yes
  swcci dcd extents switch0 --port 0 --json
  swcci dcd release switch0 --port 0 --host 0 --extent 0x10000000:256M --yes
  swcci dcd release switch0 --port 0 --host 0 --all --forced --yes
  swcci dcd configure switch0 --port 0 --region 1 --block-size 2M --yes";

/// `dcd`.
#[derive(Args, Debug)]
#[command(subcommand_required = true, arg_required_else_help = true)]
pub struct DcdArgs {
    /// What to do.
    #[command(subcommand)]
    pub what: DcdCommand,
}

/// The `dcd` subcommands.
#[derive(Subcommand, Debug)]
pub enum DcdCommand {
    /// Get DCD Info (5600h): hosts, regions, policies, capacity, block sizes
    #[command(
        long_about = wrapped("Send Get DCD Info (5600h) and print the number of hosts the device \
                      serves, its number of DC regions, the capacity selection and removal \
                      policies it supports, the regions whose Sanitize on Release setting can \
                      be changed, its total dynamic capacity, and the block sizes each region \
                      supports."),
        after_long_help = "Examples:\n  swcci dcd info switch0 --port 0\n  swcci dcd info switch0 --port 0 --json"
    )]
    Info(TargetDevArgs),

    /// The DC regions of a host (5601h): base, length, block size, flags, held, free
    #[command(
        long_about = wrapped("Read the DC regions of host H (Get Host DC Region Configuration 5601h, \
                      every region) and the extents every host holds (Get DC Region Extent \
                      Lists 5603h), and print per region its base DPA, length, decode length, \
                      block size, flags and Sanitize on Release setting, the bytes host H \
                      holds in it and the bytes no host holds (free); then the extents and \
                      tags the device can track and has available (those it tracks include \
                      added capacity still pending)."),
        after_long_help = "Examples:\n  swcci dcd regions switch0 --port 0\n  swcci dcd regions switch0 --port 0 --host 1 --json"
    )]
    Regions(RegionsArgs),

    /// The extents each host holds (5603h): DPA, length, region, tag
    #[command(
        long_about = wrapped("Read Get DC Region Extent Lists (5603h) of host H, or of every host the \
                      device serves, in as many commands as the list needs (read again if it \
                      changes meanwhile), and print each extent: host, start DPA, length, \
                      region, tag and shared extent sequence. Only capacity the host accepted \
                      is listed."),
        after_long_help = "Examples:\n  swcci dcd extents switch0 --port 0\n  swcci dcd extents switch0 --port 0 --host 0 --json"
    )]
    Extents(ExtentsArgs),

    /// Set DC Region Configuration (5602h): a region's block size [needs --yes]
    #[command(
        long_about = wrapped("Set region R's block size (a power of two of at least 64 bytes that the \
                      region supports, Get DCD Info 5600h) and, with --sanitize-on-release, \
                      whether released capacity is sanitized (if the device lets the region \
                      change it), with Set DC Region Configuration (5602h); then read the \
                      region back. The device refuses while the region holds capacity.\n\n\
                      Without --yes nothing is sent (exit status 2)."),
        after_long_help = "Examples:\n  swcci dcd configure switch0 --port 0 --region 1 --block-size 2M --yes"
    )]
    Configure(ConfigureArgs),

    /// Initiate Dynamic Capacity Add (5604h): give a host capacity [needs --yes]
    #[command(
        long_about = wrapped("Give host H capacity of region R with Initiate Dynamic Capacity Add \
                      (5604h): --extent DPA:LENGTH (repeatable) adds exactly these extents \
                      (prescriptive); --size S adds S bytes, chosen by the device (--policy \
                      free or contiguous) or, with --policy prescriptive (the default when the \
                      device does not support free), by swcci from the region's free ranges, \
                      lowest first; --policy shared with --tag gives the host access to the \
                      shared capacity with that tag. More extents than one payload carries go \
                      in several commands.\n\n\
                      The capacity is pending until the host accepts it. Without --yes nothing \
                      is sent (exit status 2)."),
        after_long_help = "Examples:\n  swcci dcd add switch0 --port 0 --host 0 --region 0 --size 1G --yes\n  swcci dcd add switch0 --port 0 --host 0 --extent 0x10000000:2M --extent 0x10400000:2M --yes\n  swcci dcd add switch0 --port 0 --host 0 --region 1 --size 64M --policy free --tag 5f6e7d8c-0000-4000-8000-00000000abcd --yes"
    )]
    Add(AddArgs),

    /// Initiate Dynamic Capacity Release (5605h): take capacity back [needs --yes]
    #[command(
        long_about = wrapped("Take capacity back from host H with Initiate Dynamic Capacity Release \
                      (5605h): --extent DPA:LENGTH (repeatable; each must be capacity the host \
                      holds) or --all (everything it holds) with the prescriptive removal \
                      policy, or --tag T (tag-based: the capacity with that tag, --size bytes \
                      of it, by default all the host holds with the tag). --forced asks the \
                      device to release without waiting for the host; --sanitize to sanitize \
                      the capacity before reuse.\n\n\
                      The host gives the capacity up with its Release Dynamic Capacity \
                      (4803h); until then it is still listed. Without --yes nothing is sent \
                      (exit status 2)."),
        after_long_help = "Examples:\n  swcci dcd release switch0 --port 0 --host 0 --extent 0x10000000:2M --yes\n  swcci dcd release switch0 --port 0 --host 0 --all --forced --yes"
    )]
    Release(ReleaseArgs),
}

/// A device and a target on it.
#[derive(Args, Debug)]
pub struct TargetDevArgs {
    #[arg(value_name = "DEV", help = DEV_HELP)]
    pub dev: String,
    #[command(flatten)]
    pub target: TargetArgs,
}

/// `dcd regions`.
#[derive(Args, Debug)]
pub struct RegionsArgs {
    #[command(flatten)]
    pub on: TargetDevArgs,
    /// The host whose region configuration is read (for an MLD-based DCD: its LD id)
    #[arg(long, value_name = "H", default_value = "0", value_parser = parse_host)]
    pub host: u16,
}

/// `dcd extents`.
#[derive(Args, Debug)]
pub struct ExtentsArgs {
    #[command(flatten)]
    pub on: TargetDevArgs,
    /// Only this host's extents; default: every host the device serves
    #[arg(long, value_name = "H", value_parser = parse_host)]
    pub host: Option<u16>,
}

/// on or off.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OnOff {
    /// Enabled
    On,
    /// Disabled
    Off,
}

/// `dcd configure`.
#[derive(Args, Debug)]
pub struct ConfigureArgs {
    #[command(flatten)]
    pub on: TargetDevArgs,
    /// The region
    #[arg(long, value_name = "R", value_parser = parse_u8)]
    pub region: u8,
    /// Its block size (2M, 0x200000, ...)
    #[arg(long, value_name = "SIZE", value_parser = parse_bytes)]
    pub block_size: u64,
    /// Sanitize released capacity before reuse; default: as the region has it
    #[arg(long, value_name = "on|off")]
    pub sanitize_on_release: Option<OnOff>,
    /// Really do it (without it, nothing is sent)
    #[arg(short = 'y', long)]
    pub yes: bool,
}

/// Selection policies on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PolicyArg {
    /// The device picks free blocks of the region
    Free,
    /// The device picks one contiguous range
    Contiguous,
    /// The extents are named (--extent), or picked by swcci (--size)
    Prescriptive,
    /// Enable shared access to the capacity with --tag
    #[value(alias = "enable-shared-access")]
    Shared,
}

impl PolicyArg {
    fn policy(self) -> SelectionPolicy {
        match self {
            Self::Free => SelectionPolicy::Free,
            Self::Contiguous => SelectionPolicy::Contiguous,
            Self::Prescriptive => SelectionPolicy::Prescriptive,
            Self::Shared => SelectionPolicy::EnableSharedAccess,
        }
    }
}

/// `dcd add`.
#[derive(Args, Debug)]
#[command(group(ArgGroup::new("what").required(true).args(["size", "extent", "tag"]).multiple(true)))]
pub struct AddArgs {
    #[command(flatten)]
    pub on: TargetDevArgs,
    /// The host that gets the capacity (for an MLD-based DCD: its LD id)
    #[arg(long, value_name = "H", value_parser = parse_host)]
    pub host: u16,
    /// The region; default: that of the first --extent
    #[arg(long, value_name = "R", value_parser = parse_u8, required_unless_present = "extent")]
    pub region: Option<u8>,
    /// Bytes to add (256M, 1G, ...)
    #[arg(long, value_name = "SIZE", value_parser = parse_bytes, conflicts_with = "extent")]
    pub size: Option<u64>,
    /// An extent to add, DPA:LENGTH (repeatable): the prescriptive policy
    #[arg(long, value_name = "DPA:LENGTH", value_parser = parse_extent)]
    pub extent: Vec<Extent>,
    /// How the capacity is chosen; default: prescriptive with --extent, else free if the
    /// device supports it, else prescriptive
    #[arg(long, value_name = "POLICY")]
    pub policy: Option<PolicyArg>,
    /// Tag of the capacity (a UUID): given to added extents, or the shared capacity to enable
    #[arg(long, value_name = "UUID", value_parser = parse_tag)]
    pub tag: Option<Uuid>,
    /// Really do it (without it, nothing is sent)
    #[arg(short = 'y', long)]
    pub yes: bool,
}

/// `dcd release`.
#[derive(Args, Debug)]
#[command(group(ArgGroup::new("what").required(true).args(["extent", "all", "tag"])))]
pub struct ReleaseArgs {
    #[command(flatten)]
    pub on: TargetDevArgs,
    /// The host that loses the capacity
    #[arg(long, value_name = "H", value_parser = parse_host)]
    pub host: u16,
    /// An extent to release, DPA:LENGTH (repeatable): the prescriptive policy
    #[arg(long, value_name = "DPA:LENGTH", value_parser = parse_extent)]
    pub extent: Vec<Extent>,
    /// Every extent the host holds (prescriptive)
    #[arg(long)]
    pub all: bool,
    /// The capacity with this tag (tag-based removal)
    #[arg(long, value_name = "UUID", value_parser = parse_tag)]
    pub tag: Option<Uuid>,
    /// With --tag: bytes to release; default: all the host holds with the tag
    #[arg(
        long,
        value_name = "SIZE",
        value_parser = parse_bytes,
        requires = "tag",
        conflicts_with_all = ["all", "extent"]
    )]
    pub size: Option<u64>,
    /// Forced removal: release without waiting for the host
    #[arg(long)]
    pub forced: bool,
    /// Sanitize the capacity before it is reused
    #[arg(long)]
    pub sanitize: bool,
    /// Really do it (without it, nothing is sent)
    #[arg(short = 'y', long)]
    pub yes: bool,
}

/// What a `dcd` command printed and the errors after it (as `cmd::run` returns them).
pub fn run(args: DcdArgs, json: bool) -> Result<crate::cmd::Outcome> {
    let stdout = match args.what {
        DcdCommand::Info(a) => {
            let d = Device::open(&a.dev)?;
            info(&d.on(a.target.target()), json)?
        }
        DcdCommand::Regions(a) => {
            let d = Device::open(&a.on.dev)?;
            regions(&d.on(a.on.target.target()), a.host, json)?
        }
        DcdCommand::Extents(a) => {
            let d = Device::open(&a.on.dev)?;
            extents(&d.on(a.on.target.target()), a.host, json)?
        }
        DcdCommand::Configure(a) => configure(&a, json)?,
        DcdCommand::Add(a) => add(&a, json)?,
        DcdCommand::Release(a) => release(&a, json)?,
    };
    Ok(crate::cmd::Outcome {
        stdout,
        ..crate::cmd::Outcome::default()
    })
}

/// The CLI error of a failed pooling operation: a broken rule is a usage error (nothing was
/// sent), a failed command has its library error's status (with its hint: EPERM), an
/// unconfirmed result status 6.
pub fn pool_error(e: PoolError) -> CliError {
    let code = match &e {
        PoolError::Refused { .. } => EXIT_USAGE,
        PoolError::Failed { error, .. } => crate::error::lib_exit_code(error),
        PoolError::Unconfirmed { .. } => EXIT_UNCONFIRMED,
    };
    let message = match e.error().and_then(crate::error::hint) {
        Some(h) => format!("{e} ({h})"),
        None => e.to_string(),
    };
    CliError::Exit { code, message }
}

/// ` via port 3` for messages (empty for the switch itself).
fn via(t: Target) -> String {
    match t {
        Target::Direct => String::new(),
        t => format!(" via {t}"),
    }
}

/// The target's fields (none for the node itself).
fn target_fields(t: Target) -> Record {
    match t {
        Target::Direct => Record::default(),
        t => decode::target_record(t),
    }
}

/// A size: `256 MiB` in text, bytes in JSON.
fn size_field(key: &'static str, n: u64) -> Field {
    Field::new(key, bytes_text(n), n)
}

/// A DPA: hex in text, a number in JSON.
fn dpa_field(key: &'static str, n: u64) -> Field {
    Field::new(key, hex(n), n)
}

/// `key : value` lines, then a table of `rows`; JSON: the record with the rows as member
/// `key` (one more member per extra list).
struct HeadRows {
    head: Record,
    lists: Vec<(&'static str, Vec<Record>, &'static str)>,
}

impl HeadRows {
    fn render(&self, json: bool) -> String {
        if json {
            let mut m = match self.head.to_json() {
                Value::Object(m) => m,
                _ => Map::new(),
            };
            for (key, rows, _) in &self.lists {
                m.insert(
                    (*key).into(),
                    Value::Array(rows.iter().map(Record::to_json).collect()),
                );
            }
            return format!("{:#}\n", Value::Object(m));
        }
        let mut out = render_record(&self.head);
        for (_, rows, empty) in &self.lists {
            out.push('\n');
            match rows.first() {
                Some(first) => {
                    let headings: Vec<String> = first.0.iter().map(Field::heading).collect();
                    let cells: Vec<Vec<String>> = rows
                        .iter()
                        .map(|r| r.0.iter().map(|f| f.text.clone()).collect())
                        .collect();
                    out.push_str(&render_table(&headings, &cells));
                }
                None => {
                    out.push_str(empty);
                    out.push('\n');
                }
            }
        }
        out
    }
}

/// Names of the bits set in a policy mask.
fn policy_names(mask: u16, removal: bool) -> Vec<String> {
    (0u8..16)
        .filter(|b| mask & (1 << b) != 0)
        .map(|b| {
            if removal {
                RemovalPolicy::from_raw(b).to_string()
            } else {
                SelectionPolicy::from_raw(b).to_string()
            }
        })
        .collect()
}

/// The fields of Get DCD Info.
pub fn info_record(i: &DcdInfo) -> Record {
    let sanitize: Vec<u8> = (0..8u8).filter(|r| i.sanitize_configurable(*r)).collect();
    let total = i.total_capacity_bytes();
    Record(vec![
        Field::num("hosts", i.num_hosts),
        Field::num("regions", i.num_regions),
        Field::names(
            "selection_policies",
            policy_names(i.selection_policies, false),
        )
        .with("selection_policies_code", i.selection_policies),
        Field::names("removal_policies", policy_names(i.removal_policies, true))
            .with("removal_policies_code", i.removal_policies),
        Field::ids("sanitize_configurable", &sanitize)
            .with("sanitize_configurable_code", i.sanitize_config_mask),
        Field::new(
            "total_capacity",
            total.map_or_else(|| format!("{} × 256 MiB", i.total_capacity), bytes_text),
            total.map_or(Value::Null, Value::from),
        )
        .with("total_capacity_units", i.total_capacity),
    ])
}

/// One row per region of Get DCD Info: its supported block sizes.
fn block_size_rows(i: &DcdInfo) -> Vec<Record> {
    (0..i.num_regions.min(8))
        .map(|r| {
            let mask = i.block_size_mask(r);
            let sizes: Vec<u64> = block_sizes(mask).collect();
            Record(vec![
                Field::num("region", r),
                Field::new(
                    "block_sizes",
                    join(sizes.iter().map(|s| bytes_text(*s))),
                    sizes,
                )
                .with("block_size_mask", mask),
            ])
        })
        .collect()
}

fn info(cci: &Cci<'_>, json: bool) -> Result<String> {
    let i = cci
        .dcd_info()
        .map_err(|e| pool_error(PoolError::failed(e)))?;
    let mut head = target_fields(cci.target());
    head.extend(info_record(&i));
    Ok(HeadRows {
        head,
        lists: vec![("block_sizes", block_size_rows(&i), "no regions")],
    }
    .render(json))
}

/// One region, with what `host` holds of it (when given) and what no host holds.
pub fn region_record(s: &DcdState, host: Option<u16>, id: u8, r: &DcRegion) -> Record {
    let flags = decode::bit_names(r.flags, region_flag::NAMES);
    let mut rec = Record(vec![
        Field::num("region", id),
        dpa_field("base", r.base),
        size_field("length", r.length),
        Field::new(
            "decode_length",
            r.decode_len_bytes()
                .map_or_else(|| format!("{} × 256 MiB", r.decode_len), bytes_text),
            r.decode_len_bytes().map_or(Value::Null, Value::from),
        ),
        size_field("block_size", r.block_size),
        Field::names("flags", flags).with("flags_code", r.flags),
        Field::new(
            "sanitize",
            if r.sanitize_on_release { "on" } else { "off" },
            r.sanitize_on_release,
        ),
    ]);
    if let Some(h) = host {
        rec.push(size_field("held", s.held_in(h, id)));
    }
    rec.push(size_field("free", s.free(id)));
    rec
}

fn regions(cci: &Cci<'_>, host: u16, json: bool) -> Result<String> {
    let s = DcdState::read(cci, host).map_err(pool_error)?;
    let mut head = target_fields(cci.target());
    head.push(Field::num("host", host));
    head.push(Field::num("regions", s.regions.num_regions));
    if let Some(c) = s.regions.counts {
        head.push(Field::num("extents_supported", c.extents_supported));
        head.push(Field::num("extents_available", c.extents_available));
        head.push(Field::num("tags_supported", c.tags_supported));
        head.push(Field::num("tags_available", c.tags_available));
    }
    let rows = s
        .regions
        .regions
        .iter()
        .zip(0u8..)
        .map(|(r, id)| region_record(&s, Some(host), id, r))
        .collect();
    Ok(HeadRows {
        head,
        lists: vec![("dc_regions", rows, "no DC regions")],
    }
    .render(json))
}

/// One extent a host holds.
pub fn extent_record(s: Option<&DcdState>, host: u16, e: &Extent) -> Record {
    let region = s.and_then(|s| s.region_of(e.start_dpa, e.length));
    let tag = e.is_tagged().then(|| e.tag.to_string());
    Record(vec![
        Field::num("host", host),
        dpa_field("start", e.start_dpa),
        size_field("length", e.length),
        decode::opt_num("region", region),
        Field::new(
            "tag",
            tag.clone().unwrap_or_else(|| "-".into()),
            tag.map_or(Value::Null, Value::from),
        ),
        Field::num("shared_seq", e.shared_seq),
    ])
}

/// A host's extents as JSON: host, generation, bytes, extents.
pub fn host_json(s: &DcdState, h: &HostExtents) -> Value {
    let mut m = Map::new();
    m.insert("host".into(), h.host_id.into());
    m.insert("generation".into(), h.generation.into());
    m.insert("bytes".into(), h.bytes().into());
    m.insert(
        "extents".into(),
        Value::Array(
            h.extents
                .iter()
                .map(|e| extent_record(Some(s), h.host_id, e).to_json())
                .collect(),
        ),
    );
    Value::Object(m)
}

fn extents(cci: &Cci<'_>, host: Option<u16>, json: bool) -> Result<String> {
    let s = DcdState::read(cci, host.unwrap_or(0)).map_err(pool_error)?;
    let hosts: Vec<&HostExtents> = s
        .hosts
        .iter()
        .filter(|h| host.is_none_or(|x| x == h.host_id))
        .collect();
    if json {
        let mut m = match target_fields(cci.target()).to_json() {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        m.insert(
            "hosts".into(),
            Value::Array(hosts.iter().map(|h| host_json(&s, h)).collect()),
        );
        return Ok(format!("{:#}\n", Value::Object(m)));
    }
    let rows: Vec<Record> = hosts
        .iter()
        .flat_map(|h| {
            h.extents
                .iter()
                .map(|e| extent_record(Some(&s), h.host_id, e))
        })
        .collect();
    let mut out = String::new();
    for h in &hosts {
        out.push_str(&format!(
            "host {}: {} extent(s), {} (generation {})\n",
            h.host_id,
            h.extents.len(),
            bytes_text(h.bytes()),
            h.generation
        ));
    }
    if let Some(first) = rows.first() {
        let headings: Vec<String> = first.0.iter().map(Field::heading).collect();
        let cells: Vec<Vec<String>> = rows
            .iter()
            .map(|r| r.0.iter().map(|f| f.text.clone()).collect())
            .collect();
        out.push('\n');
        out.push_str(&render_table(&headings, &cells));
    }
    Ok(out)
}

fn configure(a: &ConfigureArgs, json: bool) -> Result<String> {
    let target = a.on.target.target();
    let sanitize = a.sanitize_on_release.map(|s| s == OnOff::On);
    if !a.yes {
        return Err(CliError::Refused(format!(
            "set region {}'s block size to {}{} on {}{} ({})",
            a.region,
            bytes_text(a.block_size),
            match sanitize {
                Some(true) => " with sanitize on release",
                Some(false) => " without sanitize on release",
                None => "",
            },
            a.on.dev,
            via(target),
            command_name(opcode::SET_DC_REGION_CONFIG)
        )));
    }
    let d = Device::open(&a.on.dev)?;
    let cci = d.on(target);
    let (cfg, now): (SetRegionConfig, DcRegion) =
        dcd::configure(&cci, a.region, a.block_size, sanitize).map_err(pool_error)?;
    let mut rec = target_fields(target);
    rec.push(Field::num("region", cfg.region));
    rec.push(size_field("block_size", now.block_size));
    rec.push(Field::new(
        "sanitize",
        if now.sanitize_on_release { "on" } else { "off" },
        now.sanitize_on_release,
    ));
    rec.push(decode::rc_field(swcci::proto::rc::ReturnCode::Success));
    Ok(HeadRows {
        head: rec,
        lists: Vec::new(),
    }
    .render(json))
}

/// The result of an add or release: what was sent, one row per extent.
fn capacity_doc(r: &CapacityReport, what: &'static str, state: &str) -> HeadRows {
    let mut head = target_fields(r.target);
    head.push(Field::num("host", r.host));
    head.push(Field::new("policy", r.policy, r.policy));
    head.push(size_field("bytes", r.bytes));
    head.push(Field::num("extent_count", r.extents.len() as u64));
    head.push(Field::num("commands", r.commands as u64));
    head.push(decode::rc_field(r.rc));
    head.push(Field::new("state", state, state));
    let rows = r
        .extents
        .iter()
        .map(|e| extent_record(Some(&r.before), r.host, e))
        .collect();
    HeadRows {
        head,
        lists: vec![("extents", rows, what)],
    }
}

fn add(a: &AddArgs, json: bool) -> Result<String> {
    let target = a.on.target.target();
    if !a.yes {
        let what = match (a.size, a.extent.len()) {
            (Some(s), _) => bytes_text(s),
            (None, 0) => "shared capacity".to_string(),
            (None, n) => format!("{n} extent(s)"),
        };
        let region = a
            .region
            .map_or_else(String::new, |r| format!(" of region {r}"));
        return Err(CliError::Refused(format!(
            "add {what}{region} to host {} on {}{} ({})",
            a.host,
            a.on.dev,
            via(target),
            command_name(opcode::INITIATE_DC_ADD)
        )));
    }
    let spec = AddSpec {
        host: a.host,
        region: a.region,
        policy: a.policy.map(PolicyArg::policy),
        size: a.size,
        extents: a.extent.clone(),
        tag: a.tag.unwrap_or(Uuid([0; 16])),
    };
    let d = Device::open(&a.on.dev)?;
    let r = dcd::add(&d.on(target), &spec).map_err(pool_error)?;
    let doc = capacity_doc(
        &r,
        "extents chosen by the device",
        "pending: the host accepts it with Add Dynamic Capacity Response (4802h)",
    );
    Ok(doc.render(json))
}

fn release(a: &ReleaseArgs, json: bool) -> Result<String> {
    let target = a.on.target.target();
    let what = match (a.all, &a.tag) {
        (true, _) => Release::All,
        (false, Some(tag)) => Release::Tag {
            tag: *tag,
            length: a.size,
        },
        (false, None) => Release::Extents(a.extent.clone()),
    };
    if !a.yes {
        let text = match &what {
            Release::All => "everything".to_string(),
            Release::Tag { tag, .. } => format!("the capacity tagged {tag}"),
            Release::Extents(x) => format!("{} extent(s)", x.len()),
        };
        return Err(CliError::Refused(format!(
            "release {text} of host {} on {}{} ({}){}",
            a.host,
            a.on.dev,
            via(target),
            command_name(opcode::INITIATE_DC_RELEASE),
            if a.forced { ", forced" } else { "" },
        )));
    }
    let spec = ReleaseSpec {
        host: a.host,
        what,
        forced: a.forced,
        sanitize: a.sanitize,
    };
    let d = Device::open(&a.on.dev)?;
    let r = dcd::release(&d.on(target), &spec).map_err(pool_error)?;
    let state = if a.forced {
        "releasing (forced): the device need not wait for the host's Release Dynamic Capacity \
         (4803h); dcd extents shows when it is gone"
    } else {
        "releasing: the host gives the capacity up with Release Dynamic Capacity (4803h)"
    };
    Ok(capacity_doc(&r, "the capacity with the tag", state).render(json))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use swcci::proto::payload::dcd::ExtentCounts;

    fn parse(args: &[&str]) -> DcdCommand {
        let mut v = vec!["swcci", "dcd"];
        v.extend_from_slice(args);
        match crate::Cli::try_parse_from(v).unwrap().command {
            crate::Command::Dcd(d) => d.what,
            c => panic!("{c:?}"),
        }
    }

    fn kind(args: &[&str]) -> clap::error::ErrorKind {
        let mut v = vec!["swcci", "dcd"];
        v.extend_from_slice(args);
        crate::Cli::try_parse_from(v).unwrap_err().kind()
    }

    #[test]
    fn command_lines() {
        let DcdCommand::Add(a) = parse(&[
            "add", "s", "--port", "0", "--host", "1", "--region", "0", "--size", "1G",
        ]) else {
            panic!()
        };
        assert_eq!(
            (a.host, a.region, a.size, a.yes),
            (1, Some(0), Some(1 << 30), false)
        );
        assert_eq!(a.on.target.target(), Target::Port(0));
        let DcdCommand::Add(a) = parse(&[
            "add",
            "s",
            "--port",
            "0",
            "--ld",
            "1",
            "--host",
            "0",
            "--extent",
            "0x10000000:2M",
            "--extent",
            "260M:4M",
            "--policy",
            "prescriptive",
            "-y",
        ]) else {
            panic!()
        };
        assert_eq!(a.on.target.target(), Target::PortLd(0, 1));
        assert_eq!(
            a.extent,
            [
                Extent::new(256 << 20, 2 << 20),
                Extent::new(260 << 20, 4 << 20)
            ]
        );
        assert!(a.yes && a.region.is_none());
        let DcdCommand::Release(r) = parse(&[
            "release", "s", "--port", "0", "--host", "0", "--all", "--forced", "--yes",
        ]) else {
            panic!()
        };
        assert!(r.all && r.forced && !r.sanitize);
        let DcdCommand::Configure(c) = parse(&[
            "configure",
            "s",
            "--port",
            "0",
            "--region",
            "1",
            "--block-size",
            "2M",
            "--sanitize-on-release",
            "on",
        ]) else {
            panic!()
        };
        assert_eq!((c.region, c.block_size), (1, 2 << 20));
        assert_eq!(c.sanitize_on_release, Some(OnOff::On));
        let DcdCommand::Extents(e) = parse(&["extents", "s", "--port", "3"]) else {
            panic!()
        };
        assert_eq!(e.host, None);
        use clap::error::ErrorKind as K;
        // Nothing to add; a size without a region; both size and extents.
        assert_eq!(
            kind(&["add", "s", "--host", "0", "--region", "0"]),
            K::MissingRequiredArgument
        );
        assert_eq!(
            kind(&["add", "s", "--host", "0", "--size", "1G"]),
            K::MissingRequiredArgument
        );
        assert_eq!(
            kind(&["add", "s", "--host", "0", "--size", "1G", "--extent", "0:2M"]),
            K::ArgumentConflict
        );
        assert_eq!(
            kind(&["add", "s", "--host", "0", "--region", "0", "--size", "1.5G"]),
            K::ValueValidation
        );
        assert_eq!(
            kind(&["release", "s", "--host", "0"]),
            K::MissingRequiredArgument
        );
        assert_eq!(
            kind(&["release", "s", "--host", "0", "--all", "--extent", "0:2M"]),
            K::ArgumentConflict
        );
        assert_eq!(
            kind(&["release", "s", "--host", "0", "--all", "--size", "2M"]),
            K::ArgumentConflict
        );
        assert_eq!(
            kind(&["release", "s", "--host", "0", "--size", "2M"]),
            K::MissingRequiredArgument
        );
        assert_eq!(
            kind(&["add", "s", "--host", "70000", "--region", "0", "--size", "1G"]),
            K::ValueValidation
        );
        assert_eq!(
            kind(&["add", "s", "--host", "0", "--region", "0", "--size", "1G", "--policy", "best"]),
            K::InvalidValue
        );
    }

    #[test]
    fn changes_refuse_without_yes_before_opening_the_device() {
        let dev = "/nonexistent/swcci-node";
        let on = TargetDevArgs {
            dev: dev.into(),
            target: TargetArgs {
                port: Some(0),
                ld: None,
            },
        };
        let e = add(
            &AddArgs {
                on,
                host: 1,
                region: Some(0),
                size: Some(1 << 30),
                extent: Vec::new(),
                policy: None,
                tag: None,
                yes: false,
            },
            false,
        )
        .unwrap_err();
        assert_eq!(e.exit_code(), EXIT_USAGE);
        assert_eq!(
            e.to_string(),
            "would add 1 GiB of region 0 to host 1 on /nonexistent/swcci-node via port 0 \
             (Initiate Dynamic Capacity Add (5604h)); add --yes to do it"
        );
        let on = || TargetDevArgs {
            dev: dev.into(),
            target: TargetArgs::default(),
        };
        let e = release(
            &ReleaseArgs {
                on: on(),
                host: 0,
                extent: Vec::new(),
                all: true,
                tag: None,
                size: None,
                forced: true,
                sanitize: false,
                yes: false,
            },
            false,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "would release everything of host 0 on /nonexistent/swcci-node (Initiate Dynamic \
             Capacity Release (5605h)), forced; add --yes to do it"
        );
        let e = configure(
            &ConfigureArgs {
                on: on(),
                region: 1,
                block_size: 2 << 20,
                sanitize_on_release: None,
                yes: false,
            },
            false,
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("set region 1's block size to 2 MiB"),
            "{e}"
        );
        // With --yes the device is opened (and does not exist).
        let e = configure(
            &ConfigureArgs {
                on: on(),
                region: 1,
                block_size: 2 << 20,
                sanitize_on_release: None,
                yes: true,
            },
            false,
        )
        .unwrap_err();
        assert!(e.to_string().contains("ENOENT"), "{e}");
    }

    fn state() -> DcdState {
        let mib = 1u64 << 20;
        let r = |base| DcRegion {
            base,
            decode_len: 1,
            length: 256 * mib,
            block_size: 2 * mib,
            flags: region_flag::SHARABLE,
            sanitize_on_release: false,
        };
        DcdState {
            info: DcdInfo {
                num_hosts: 1,
                num_regions: 2,
                selection_policies: 0b100,
                removal_policies: 0b10,
                sanitize_config_mask: 0,
                total_capacity: 2,
                block_size_masks: [2 * mib, 2 * mib, 0, 0, 0, 0, 0, 0],
            },
            regions: dcd::HostRegions {
                host_id: 0,
                num_regions: 2,
                regions: vec![r(256 * mib), r(512 * mib)],
                counts: Some(ExtentCounts {
                    extents_supported: 512,
                    extents_available: 510,
                    tags_supported: 0,
                    tags_available: 0,
                }),
            },
            hosts: vec![HostExtents {
                host_id: 0,
                generation: 3,
                extents: vec![
                    Extent::new(256 * mib, 4 * mib),
                    Extent {
                        tag: Uuid([0xab; 16]),
                        shared_seq: 2,
                        ..Extent::new(600 * mib, 2 * mib)
                    },
                ],
            }],
        }
    }

    #[test]
    fn records() {
        let s = state();
        let i = info_record(&s.info);
        assert_eq!(i.text("selection_policies"), Some("prescriptive"));
        assert_eq!(i.text("removal_policies"), Some("prescriptive"));
        assert_eq!(i.text("total_capacity"), Some("512 MiB"));
        assert_eq!(i.text("sanitize_configurable"), Some("-"));
        let j = i.to_json();
        assert_eq!(j["selection_policies"], serde_json::json!(["prescriptive"]));
        assert_eq!(j["selection_policies_code"], 4);
        assert_eq!(j["total_capacity"], 512u64 << 20);
        let rows = block_size_rows(&s.info);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].text("block_sizes"), Some("2 MiB"));
        let r = region_record(&s, Some(0), 0, &s.regions.regions[0]);
        assert_eq!(r.text("base"), Some("0x10000000"));
        assert_eq!(r.text("held"), Some("4 MiB"));
        assert_eq!(r.text("free"), Some("252 MiB"));
        assert_eq!(r.text("flags"), Some("sharable"));
        let r1 = region_record(&s, Some(0), 1, &s.regions.regions[1]);
        assert!(region_record(&s, None, 1, &s.regions.regions[1])
            .get("held")
            .is_none());
        assert_eq!(r1.text("held"), Some("2 MiB"));
        assert_eq!(r1.to_json()["free"], 254u64 << 20);
        let e = extent_record(Some(&s), 0, &s.hosts[0].extents[1]);
        assert_eq!(e.text("region"), Some("1"));
        assert_eq!(e.text("tag"), Some("abababab-abab-abab-abab-abababababab"));
        let e = extent_record(None, 0, &s.hosts[0].extents[0]);
        assert_eq!(e.to_json()["tag"], Value::Null);
        assert_eq!(e.to_json()["region"], Value::Null);
        let j = host_json(&s, &s.hosts[0]);
        assert_eq!(j["bytes"], 6u64 << 20);
        assert_eq!(j["extents"][1]["start"], 600u64 << 20);
    }

    #[test]
    fn head_and_rows_render_alike_in_text_and_json() {
        let s = state();
        let doc = HeadRows {
            head: info_record(&s.info),
            lists: vec![("block_sizes", block_size_rows(&s.info), "no regions")],
        };
        let t = doc.render(false);
        assert!(t.starts_with("hosts                 : 1\n"), "{t}");
        assert!(
            t.contains("\nREGION  BLOCK SIZES\n0       2 MiB\n1       2 MiB\n"),
            "{t}"
        );
        let j: Value = serde_json::from_str(&doc.render(true)).unwrap();
        assert_eq!(j["block_sizes"][1]["block_size_mask"], 2u64 << 20);
        let empty = HeadRows {
            head: Record::default(),
            lists: vec![("extents", Vec::new(), "nothing")],
        };
        assert_eq!(empty.render(false), "\nnothing\n");
    }

    #[test]
    fn pool_errors_have_their_exit_status() {
        use swcci::dcd::Broken;
        use swcci::proto::payload::dcd::Rule;
        let e = pool_error(PoolError::Refused {
            op: "Initiate Dynamic Capacity Add (5604h) via port 0 on x".into(),
            rule: Broken::Dcd(Rule::NoSuchHost { host: 1, hosts: 1 }),
        });
        assert_eq!(e.exit_code(), EXIT_USAGE);
        assert!(e.to_string().contains("not sent: host 1"), "{e}");
        let e = pool_error(PoolError::failed(swcci::Error::Device {
            op: "Initiate Dynamic Capacity Add (5604h) via port 0 on x".into(),
            rc: swcci::proto::rc::ReturnCode::InvalidExtentList,
        }));
        assert_eq!(e.exit_code(), crate::error::EXIT_DEVICE);
        assert!(e.to_string().contains("(1eh): the extents overlap"), "{e}");
        let e = pool_error(PoolError::failed(swcci::Error::Os {
            op: "Get DCD Info (5600h) via port 0 on x".into(),
            err: std::io::Error::from_raw_os_error(libc::EPERM),
        }));
        assert!(e.to_string().contains("CAP_SYS_RAWIO"), "{e}");
        let e = pool_error(PoolError::Unconfirmed {
            op: "x".into(),
            what: "y".into(),
        });
        assert_eq!(e.exit_code(), EXIT_UNCONFIRMED);
    }
}
