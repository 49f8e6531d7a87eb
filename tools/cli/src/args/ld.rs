// SPDX-License-Identifier: GPL-2.0

//! The arguments of `swcci ld` (the command is in crate::ld).

use super::{parse_u8, wrapped, TargetArgs, DEV_HELP};
use crate::units::parse_bytes;
use clap::{Args, Subcommand};

pub const LD_LONG_ABOUT: &str = "\
LD allocation of a multi-logical device (MLD, CXL r3.1 §7.6.7.4), usually the device behind a \
downstream port (--port P, through a Tunnel Management Command 5300h): how much memory each \
LD has, and setting it. show reads Get LD Info (5400h) and Get LD Allocations (5401h); alloc \
sets one LD's two ranges with Set LD Allocations (5402h) and reads them back, and sends \
nothing without --yes. Before sending, swcci refuses a size that is not a multiple of the \
device's allocation granularity, an LD the device does not have, and allocations that, with \
the other LDs' as they are, exceed the device's memory (exit status 2, the rule named). Sizes \
take binary units: 256M, 1G (M = MiB).";

pub const LD_EXAMPLES: &str = "\
Examples:
  swcci ld show switch0 --port 3
  swcci ld alloc switch0 1 --port 3 --range1 512M --yes
  swcci ld alloc switch0 0 --port 3 --range1 1G --range2 256M --yes";

/// `ld`.
#[derive(Args, Debug)]
#[command(subcommand_required = true, arg_required_else_help = true)]
pub struct LdArgs {
    /// What to do.
    #[command(subcommand)]
    pub what: LdCommand,
}

/// The `ld` subcommands.
#[derive(Subcommand, Debug)]
pub enum LdCommand {
    /// Get LD Info (5400h) and Get LD Allocations (5401h): memory, LDs, each LD's ranges
    #[command(
        long_about = wrapped("Read Get LD Info (5400h) and every LD's allocation (Get LD Allocations \
                      5401h, in as many commands as the payload needs) and print the device's \
                      memory size, LD count, allocation granularity, the bytes allocated and \
                      unallocated, and per LD its range 1 and range 2 allocations (in \
                      granularity units and bytes)."),
        after_long_help = "Examples:\n  swcci ld show switch0 --port 3\n  swcci ld show switch0 --port 3 --json"
    )]
    Show(ShowArgs),

    /// Set LD Allocations (5402h): one LD's memory [needs --yes]
    #[command(
        long_about = wrapped("Set LD L's range 1 and range 2 allocations with Set LD Allocations \
                      (5402h), then read the allocations back (Get LD Allocations 5401h). \
                      Sizes are multiples of the device's granularity (ld show); a range not \
                      given is set to 0. The device's answer and the read-back must show the \
                      new allocation (exit status 6 otherwise).\n\n\
                      Without --yes nothing is sent (exit status 2)."),
        after_long_help = "Examples:\n  swcci ld alloc switch0 1 --port 3 --range1 512M --yes"
    )]
    Alloc(AllocArgs),
}

/// `ld show`.
#[derive(Args, Debug)]
pub struct ShowArgs {
    #[arg(value_name = "DEV", help = DEV_HELP)]
    pub dev: String,
    #[command(flatten)]
    pub target: TargetArgs,
}

/// `ld alloc`.
#[derive(Args, Debug)]
pub struct AllocArgs {
    #[arg(value_name = "DEV", help = DEV_HELP)]
    pub dev: String,
    /// The LD whose allocation is set
    #[arg(value_name = "LD", value_parser = parse_u8)]
    pub id: u8,
    #[command(flatten)]
    pub target: TargetArgs,
    /// Range 1 allocation (bytes with units: 512M, 1G)
    #[arg(long, value_name = "SIZE", value_parser = parse_bytes)]
    pub range1: u64,
    /// Range 2 allocation; default 0
    #[arg(long, value_name = "SIZE", value_parser = parse_bytes, default_value = "0")]
    pub range2: u64,
    /// Really do it (without it, nothing is sent)
    #[arg(short = 'y', long)]
    pub yes: bool,
}
