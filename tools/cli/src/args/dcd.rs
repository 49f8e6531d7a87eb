// SPDX-License-Identifier: GPL-2.0

//! The arguments of `swcci dcd` (the command is in crate::dcd).

use super::{parse_u8, wrapped, TargetDevArgs};
use crate::units::{parse_bytes, parse_extent, parse_host, parse_tag};
use clap::{ArgGroup, Args, Subcommand, ValueEnum};
use swcci::dcd::{Extent, SelectionPolicy};
use swcci::proto::payload::logs::Uuid;

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
    /// The library's selection policy.
    pub fn policy(self) -> SelectionPolicy {
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
