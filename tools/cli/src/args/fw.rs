// SPDX-License-Identifier: GPL-2.0

//! The arguments of `swcci fw` (the command is in crate::fw).

use super::{parse_u8, wrapped, TargetArgs, DEV_HELP};
use clap::{ArgGroup, Args, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;
use swcci::{ActivateAction, FwOptions};

pub const FW_LONG_ABOUT: &str = "\
Firmware update (CXL r3.1 §8.2.9.3) of the switch itself, or with --port (and --ld) of the \
component behind a downstream port, through Tunnel Management Commands (5300h): Get FW Info \
(0200h), Transfer FW (0201h), Activate FW (0202h).

`update` sends the image in parts as large as the mailbox payload allows (less 16 bytes per \
tunnel level and the 128-byte Transfer FW header, in 128-byte units), retries parts the \
device answers Busy (06h), waits for parts that run in the background (the driver waits on \
the switch itself; through a tunnel, Background Operation Status (0002h) is polled), and \
checks the slot's revision with Get FW Info afterwards. On a failure after the transfer \
started, or on Ctrl-C (SIGINT or SIGTERM), it sends Transfer FW with the Abort action and \
waits for the device to confirm; a second Ctrl-C exits at once. update, activate and abort \
send nothing without --yes. Documentation/firmware.rst explains every error.";

pub const FW_EXAMPLES: &str = "\
Examples:
  swcci fw info switch0
  swcci fw update switch0 fw-2.0.bin --slot 2 --yes
  swcci fw update switch0 fw-2.0.bin --slot 2 --activate online --yes
  swcci fw update switch0 t3.bin --slot 2 --port 3 --expect-revision 'T3 2.0' --yes
  swcci fw activate switch0 --slot 2 --reset --yes
  swcci fw abort switch0 --yes";

/// `fw`.
#[derive(Args, Debug)]
#[command(subcommand_required = true, arg_required_else_help = true)]
pub struct FwArgs {
    /// What to do.
    #[command(subcommand)]
    pub what: FwCommand,
}

/// The `fw` subcommands.
#[derive(Subcommand, Debug)]
pub enum FwCommand {
    /// Get FW Info (0200h): slots, the active and staged slot, each slot's revision
    #[command(
        long_about = wrapped("Send Get FW Info (0200h) and print the number of firmware slots, the \
                      active slot, the slot staged for the next cold reset, whether the device \
                      can activate firmware online, and each slot's revision string."),
        after_long_help = "Examples:\n  swcci fw info switch0\n  swcci fw info switch0 --port 3 --json"
    )]
    Info(InfoArgs),

    /// Transfer FW (0201h): write an image to a slot, optionally activate it [needs --yes]
    #[command(
        long_about = wrapped("Write IMAGE to firmware slot N with Transfer FW (0201h): one Full part \
                      if it fits the payload, else Initiate, Continue... and End; then Get FW \
                      Info (0200h) confirms the slot's revision (the one --expect-revision \
                      gives, or any revision when none is given). With --activate, Activate \
                      FW (0202h) follows.\n\n\
                      On a terminal a progress bar shows bytes, percent, rate and time left. \
                      With --json, standard output gets one JSON object per line: {\"event\": \
                      \"progress\", \"phase\", \"sent\", \"total\", \"percent\", \"part\", \
                      \"parts\"} at each phase change and percent, then {\"event\": \"result\", \
                      \"ok\": true|false, ...}.\n\n\
                      Ctrl-C (SIGINT or SIGTERM) stops after the part in flight, sends Transfer \
                      FW (Abort), waits for the device to confirm and exits with status 130 (5 \
                      if the abort is not confirmed); a second Ctrl-C exits at once (status \
                      5).\n\n\
                      Without --yes nothing is sent: swcci says what it would do and exits \
                      with status 2."),
        after_long_help = "Examples:\n  swcci fw update switch0 fw.bin --slot 2 --yes\n  swcci fw update switch0 fw.bin --slot 2 --activate reset --yes\n  swcci fw update switch0 fw.bin --slot 2 --port 3 --json --yes"
    )]
    Update(UpdateArgs),

    /// Activate FW (0202h): run a slot's firmware now or after the next cold reset [needs --yes]
    #[command(
        long_about = wrapped("Send Activate FW (0202h) for slot N: --online activates it now, \
                      --reset at the next cold reset (or --activate online|reset, as for fw \
                      update); then Get FW Info (0200h) confirms the \
                      slot is active or staged. An online activation that runs in the \
                      background is waited for and cannot be interrupted (a second Ctrl-C \
                      exits without waiting).\n\n\
                      Without --yes nothing is sent (exit status 2)."),
        after_long_help = "Examples:\n  swcci fw activate switch0 --slot 2 --online --yes\n  swcci fw activate switch0 --slot 2 --reset --port 3 --yes"
    )]
    Activate(ActivateArgs),

    /// Transfer FW (0201h) Abort: drop the transfer open on the device [needs --yes]
    #[command(
        long_about = wrapped("Send Transfer FW (0201h) with the Abort action: the device drops the \
                      firmware transfer it holds open, whoever started it (another agent's, or \
                      one an interrupted swcci could not abort), then Get FW Info (0200h). A \
                      device with nothing open returns success too.\n\n\
                      Without --yes nothing is sent (exit status 2)."),
        after_long_help = "Examples:\n  swcci fw abort switch0 --yes\n  swcci fw abort switch0 --port 3 --yes"
    )]
    Abort(AbortArgs),
}

/// `fw info`.
#[derive(Args, Debug)]
pub struct InfoArgs {
    #[arg(value_name = "DEV", help = DEV_HELP)]
    pub dev: String,
    #[command(flatten)]
    pub target: TargetArgs,
}

/// How to activate after an update.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ActivateWhen {
    /// Activate now, without a reset
    Online,
    /// Activate at the next cold reset
    Reset,
}

impl ActivateWhen {
    /// The library's activation action.
    pub fn action(self) -> ActivateAction {
        match self {
            Self::Online => ActivateAction::Online,
            Self::Reset => ActivateAction::OnReset,
        }
    }
}

/// A slot number, 1 to 4.
fn parse_slot(s: &str) -> std::result::Result<u8, String> {
    parse_u8(s)
        .ok()
        .filter(|n| (1..=swcci_proto::payload::firmware::MAX_SLOTS).contains(n))
        .ok_or_else(|| "expected a firmware slot from 1 to 4".to_string())
}

/// A firmware revision as Get FW Info (0200h) reports one: 1 to 16 printable ASCII bytes
/// (CXL r3.1 §8.2.9.3.1). Checked before anything is sent: a longer one could never match,
/// and would be found out only after the whole transfer.
fn parse_revision(s: &str) -> std::result::Result<String, String> {
    let len = swcci_proto::payload::firmware::REVISION_LEN;
    if s.is_empty() || s.len() > len || !s.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(format!(
            "expected a revision of 1 to {len} printable ASCII characters, as Get FW Info reports it"
        ));
    }
    Ok(s.to_string())
}

/// A duration in milliseconds.
fn parse_ms(s: &str) -> std::result::Result<u64, String> {
    s.trim()
        .parse::<u64>()
        .ok()
        .filter(|&n| (1..=600_000).contains(&n))
        .ok_or_else(|| "expected milliseconds from 1 to 600000".to_string())
}

/// A part size in bytes.
fn parse_part(s: &str) -> std::result::Result<usize, String> {
    s.trim()
        .parse::<usize>()
        .ok()
        .filter(|&n| n >= swcci_proto::payload::firmware::OFFSET_UNIT)
        .ok_or_else(|| "expected a part size in bytes, at least 128".to_string())
}

/// Options shared by the commands that wait.
#[derive(Args, Debug)]
pub struct WaitArgs {
    /// Longest wait for one part or activation the device runs in the background (ms)
    #[arg(long, value_name = "MS", default_value = "60000", value_parser = parse_ms)]
    pub bg_timeout_ms: u64,
    /// How long a command the device answers Busy (06h) is retried (ms)
    #[arg(long, value_name = "MS", default_value = "10000", value_parser = parse_ms)]
    pub busy_timeout_ms: u64,
}

impl WaitArgs {
    /// The library's firmware options with these timeouts.
    pub fn options(&self) -> FwOptions {
        FwOptions {
            bg_timeout: Duration::from_millis(self.bg_timeout_ms),
            busy_timeout: Duration::from_millis(self.busy_timeout_ms),
            ..FwOptions::default()
        }
    }
}

/// `fw update`.
#[derive(Args, Debug)]
pub struct UpdateArgs {
    #[arg(value_name = "DEV", help = DEV_HELP)]
    pub dev: String,
    /// The firmware image file
    #[arg(value_name = "IMAGE")]
    pub image: PathBuf,
    /// The slot to write (1-4; not the active one)
    #[arg(long, value_name = "N", value_parser = parse_slot)]
    pub slot: u8,
    /// Activate the slot afterwards: now (online) or at the next cold reset (reset)
    #[arg(long, value_name = "WHEN")]
    pub activate: Option<ActivateWhen>,
    /// The revision Get FW Info must report for the slot afterwards (default: any)
    #[arg(long, value_name = "REV", value_parser = parse_revision)]
    pub expect_revision: Option<String>,
    /// Send parts of at most this many bytes (rounded down to 128-byte units)
    #[arg(long, value_name = "BYTES", value_parser = parse_part)]
    pub max_part: Option<usize>,
    #[command(flatten)]
    pub wait: WaitArgs,
    #[command(flatten)]
    pub target: TargetArgs,
    /// Really write the firmware
    #[arg(short = 'y', long)]
    pub yes: bool,
}

/// `fw activate`.
#[derive(Args, Debug)]
#[command(group(ArgGroup::new("when").required(true).args(["online", "reset", "activate"])))]
pub struct ActivateArgs {
    #[arg(value_name = "DEV", help = DEV_HELP)]
    pub dev: String,
    /// The slot to activate (1-4)
    #[arg(long, value_name = "N", value_parser = parse_slot)]
    pub slot: u8,
    /// Activate now, without a reset
    #[arg(long)]
    pub online: bool,
    /// Activate at the next cold reset
    #[arg(long)]
    pub reset: bool,
    /// The same as --online or --reset, spelt as fw update's --activate
    #[arg(long, value_name = "WHEN")]
    pub activate: Option<ActivateWhen>,
    #[command(flatten)]
    pub wait: WaitArgs,
    #[command(flatten)]
    pub target: TargetArgs,
    /// Really activate
    #[arg(short = 'y', long)]
    pub yes: bool,
}

/// `fw abort`.
#[derive(Args, Debug)]
pub struct AbortArgs {
    #[arg(value_name = "DEV", help = DEV_HELP)]
    pub dev: String,
    #[command(flatten)]
    pub wait: WaitArgs,
    #[command(flatten)]
    pub target: TargetArgs,
    /// Really abort the transfer
    #[arg(short = 'y', long)]
    pub yes: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsers() {
        assert_eq!(parse_slot("2"), Ok(2));
        assert!(parse_slot("0").is_err());
        assert!(parse_slot("5").is_err());
        assert_eq!(parse_ms("60000"), Ok(60000));
        assert!(parse_ms("0").is_err());
        assert!(parse_ms("600001").is_err());
        assert_eq!(parse_part("1000"), Ok(1000));
        assert!(parse_part("127").is_err());
        assert_eq!(
            parse_revision("swcci-emu 2.0"),
            Ok("swcci-emu 2.0".to_string())
        );
        assert_eq!(parse_revision("0123456789abcdef").map(|r| r.len()), Ok(16));
        for bad in ["", "0123456789abcdefX", "r\u{e9}v", "a\tb"] {
            assert!(parse_revision(bad).is_err(), "{bad:?}");
        }
    }
}
