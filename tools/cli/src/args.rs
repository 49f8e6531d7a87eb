// SPDX-License-Identifier: GPL-2.0

//! The command line (clap): [`Cli`], its [`Command`]s and their arguments, the help texts and
//! the value parsers. The `fw`, `dcd`, `ld` and `events` commands' arguments are in the
//! submodules of the same names. Nothing here runs a command: main.rs dispatches the parsed
//! [`Command`] to the command modules, which depend on this module and never the reverse.

pub mod dcd;
pub mod events;
pub mod fw;
pub mod ld;

use crate::error;
use crate::hex;
use crate::units::parse_number;
use clap::{Args, Parser, Subcommand, ValueEnum};

/// Help text shared by every DEV argument.
const DEV_HELP: &str = "Device node: switch0, cxl/switch0 or a path such as /dev/cxl/switch0; \
or an MCTP endpoint: mctp:[NET:]EID (FM-API), mctp-cci:[NET:]EID (CCI)";

const ROOT_ABOUT: &str = "Query and manage CXL switches through their mailbox CCIs (cxl_swcci)";

const ROOT_LONG_ABOUT: &str = "\
Query and manage CXL switches through their mailbox CCIs (cxl_swcci).

swcci sends CXL Component Command Interface (CCI) commands to the switch mailboxes that the \
cxl_swcci kernel driver exposes as /dev/cxl/switchN, and decodes each response into named \
fields with the units the CXL specification gives (link speeds in GT/s, widths as xN, sizes \
in bytes).

DEV names a device node: switch0, cxl/switch0 or a full path such as /dev/cxl/switch0.

Commands that a switch can forward (identify, logs, cel, bg-status, abort, events, raw) take \
--port P to send them through a Tunnel Management Command (5300h) to the component on \
downstream port P, and --port P --ld L to reach LD L of the multi-logical device there (a \
tunnel in a tunnel). `swcci tunnel DEV --port P [--ld L] identify|raw` is the same.

By default a command prints a table, or one `key : value` line per field. With --json it \
prints one JSON document instead (the commands that report as they go, fw update and events, \
one JSON object per line): member names are the table columns in snake_case, ids and \
counts are numbers, decoded names are strings with the raw value alongside (\"state\": \
\"DSP\", \"state_code\": 3), and return codes are {\"rc\": 2, \"rc_name\": \"invalid input\"}.

Commands that change the fabric or the device (port-control, bind, unbind, events --clear, fw \
update/activate/abort, dcd configure|add|release, ld alloc) do nothing unless --yes is given. \
Errors are reported on one line on standard error, prefixed with \"swcci: \", saying what was \
attempted on which device and why.";

const ROOT_EXAMPLES: &str = "\
Examples:
  swcci list
  swcci identify switch0
  swcci ports switch0
  swcci ports --json switch0 1 2
  swcci vcs switch0 --vcs 0
  swcci tunnel switch0 --port 1 identify
  swcci topology
  swcci raw switch0 --opcode 0x5100";

/// `swcci`: CXL switch CCI tool.
#[derive(Parser, Debug)]
#[command(
    name = "swcci",
    version,
    about = ROOT_ABOUT,
    long_about = wrapped(ROOT_LONG_ABOUT),
    after_help = error::exit_status_help(),
    after_long_help = format!("{ROOT_EXAMPLES}\n\n{}", error::exit_status_help()),
    arg_required_else_help = true,
    disable_help_subcommand = true
)]
pub struct Cli {
    /// Print JSON instead of human-readable text
    #[arg(
        long,
        global = true,
        long_help = wrapped("Print one JSON document (pretty-printed) instead of human-readable text; \
                     fw update and events, which report as they go, print one JSON object per \
                     line. Member names are the table columns in snake_case; numbers are JSON \
                     numbers; decoded names come with their raw value in a *_code member.")
    )]
    pub json: bool,

    /// MCTP endpoints (DEV mctp:[NET:]EID): wait for each response this long, in ms
    #[arg(
        long,
        global = true,
        value_name = "MS",
        default_value_t = 2000,
        value_parser = parse_timeout,
        long_help = wrapped("For an MCTP endpoint (DEV mctp:[NET:]EID or mctp-cci:[NET:]EID): how \
                     long to wait for each response, in ms (default 2000). A read-only command \
                     is sent again up to --mctp-retries times; a state-changing one never \
                     (Documentation/transports.rst).")
    )]
    pub mctp_timeout: u64,

    /// MCTP endpoints: retries of a read-only command whose response did not come
    #[arg(long, global = true, value_name = "N", default_value_t = 2, value_parser = parse_retries)]
    pub mctp_retries: u32,

    /// MCTP endpoints: least time between commands, in ms (devices that need pacing)
    #[arg(long, global = true, value_name = "MS", default_value_t = 0, value_parser = parse_gap)]
    pub mctp_gap: u64,

    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The MCTP transport's options from the command line.
    pub fn mctp_options(&self) -> swcci::mctp::MctpOptions {
        swcci::mctp::MctpOptions {
            timeout: std::time::Duration::from_millis(self.mctp_timeout),
            retries: self.mctp_retries,
            min_gap: std::time::Duration::from_millis(self.mctp_gap),
        }
    }
}

/// The commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// List CXL switch CCI nodes: PCI address, ids, serial, payload size, irq/poll
    #[command(
        long_about = wrapped("List every CXL switch CCI node (/dev/cxl/switchN) that cxl_swcci \
                      provides, with its PCI address, the vendor and device id and serial \
                      number from Identify (0001h), the mailbox payload size in bytes, and \
                      whether command completion is signalled by interrupt or polled.\n\n\
                      Nodes that exist but cannot be queried (for example without permission) \
                      are reported on standard error, and the exit status is then 3.\n\n\
                      MCTP endpoints the kernel has routes to that answer FM-API (Get Message \
                      Type Support, then Identify) follow, with mode mctp and no PCI address \
                      (DEV mctp:NET:EID; Documentation/transports.rst)."),
        after_long_help = "Examples:\n  swcci list\n  swcci list --json"
    )]
    List,

    /// Identify (0001h): vendor and device ids, serial, message size, component type
    #[command(
        long_about = wrapped("Send Identify (0001h) and print the component's PCI vendor, device, \
                      subsystem vendor and subsystem ids, its serial number, the largest \
                      message it accepts (bytes) and its component type. With --port (and \
                      --ld), the target's port and LD come first."),
        after_long_help = "Examples:\n  swcci identify switch0\n  swcci identify --json /dev/cxl/switch0\n  swcci identify switch0 --port 3\n  swcci identify switch0 --port 3 --ld 0"
    )]
    Identify(TargetDevArgs),

    /// Identify Switch Device (5100h): ports, VCSs, vPPBs, HDM decoders
    #[command(
        long_about = wrapped("Send Identify Switch Device (5100h) and print the ingress port (the \
                      port the command arrived on), the numbers of physical ports and virtual \
                      CXL switches (VCSs), the lists of active port ids and active VCS ids, \
                      the total and bound vPPB counts, and the number of HDM decoders per \
                      upstream port."),
        after_long_help = "Examples:\n  swcci switch-info switch0"
    )]
    SwitchInfo(DevArgs),

    /// Get Physical Port State (5101h): state, link width and speed of each port
    #[command(
        long_about = wrapped("Send Get Physical Port State (5101h) and print one row per port: port \
                      id, configuration state (DSP, USP, ...), connected device type, connected \
                      mode (CXL version or flit mode), supported CXL modes, link width \
                      negotiated/maximum (xN), link speed current/maximum (GT/s), supported \
                      speeds (GT/s), LTSSM state, first negotiated lane, link state flags and \
                      supported LD count.\n\n\
                      Without PORT, every active port reported by Identify Switch Device \
                      (5100h) is shown. Ports are queried in as few commands as the mailbox \
                      payload size allows."),
        after_long_help = "Examples:\n  swcci ports switch0\n  swcci ports switch0 0 3\n  swcci ports --json switch0 0x10"
    )]
    Ports(PortsArgs),

    /// Get Virtual CXL Switch Info (5200h): VCS state, upstream port and vPPB bindings
    #[command(
        long_about = wrapped("Send Get Virtual CXL Switch Info (5200h) and print, for each VCS, its \
                      state, upstream port id and vPPB count, and for each listed vPPB its \
                      binding status and the physical port (and LD) it is bound to.\n\n\
                      Without --vcs, every active VCS reported by Identify Switch Device \
                      (5100h) is shown."),
        after_long_help = "Examples:\n  swcci vcs switch0\n  swcci vcs switch0 --vcs 0,1 --start 4 --limit 8"
    )]
    Vcs(VcsArgs),

    /// Command Effects Log: every supported opcode and its effects
    #[command(
        long_about = wrapped("Read the Command Effects Log (CEL) with Get Supported Logs (0400h) and \
                      Get Log (0401h), and print each command the device supports: its \
                      opcode, its name in the CXL specification, and its effect bits by name \
                      (immediate-config-change, background-operation, ...).\n\n\
                      A device that ends the log before the size Get Supported Logs announced \
                      gets its entries read so far printed, with a warning on standard error \
                      (exit status 0). A device that lists no Command Effects Log sent a \
                      malformed response (exit status 4): Linux requires the CEL of every \
                      mailbox."),
        after_long_help = "Examples:\n  swcci cel switch0\n  swcci cel switch0 --port 3"
    )]
    Cel(TargetDevArgs),

    /// Get Supported Logs (0400h): log UUIDs, names and sizes
    #[command(
        long_about = wrapped("Send Get Supported Logs (0400h) and print each log's UUID, its name \
                      when it is a log the specification defines, and its size in bytes."),
        after_long_help = "Examples:\n  swcci logs switch0\n  swcci logs switch0 --port 3"
    )]
    Logs(TargetDevArgs),

    /// Background Operation Status (0002h): running operation, progress, last result
    #[command(
        long_about = wrapped("Send Background Operation Status (0002h) and print whether a background \
                      operation is running, its percentage complete, the opcode of the last \
                      background operation, its return code and vendor-specific status."),
        after_long_help = "Examples:\n  swcci bg-status switch0\n  swcci bg-status switch0 --port 3"
    )]
    BgStatus(TargetDevArgs),

    /// Request Abort Background Operation (0005h)
    #[command(
        long_about = wrapped("Send Request Abort Background Operation (0005h), asking the device to \
                      abort the background operation in progress, and print the return code. \
                      Use bg-status to see the result."),
        after_long_help = "Examples:\n  swcci abort switch0"
    )]
    Abort(TargetDevArgs),

    /// Physical Port Control (5102h): PERST# or reset of a port [needs --yes]
    #[command(
        long_about = wrapped("Send Physical Port Control (5102h) for one physical port: assert PERST#, \
                      deassert PERST#, or reset the port's PPB.\n\n\
                      This disturbs the link and whatever is attached to the port, so without \
                      --yes nothing is sent: swcci says what it would do and exits with \
                      status 2."),
        after_long_help = "Examples:\n  swcci port-control switch0 3 reset --yes\n  swcci port-control switch0 3 assert-perst --yes"
    )]
    PortControl(PortControlArgs),

    /// Bind vPPB (5201h): bind a vPPB of a VCS to a physical port or LD [needs --yes]
    #[command(
        long_about = wrapped("Send Bind vPPB (5201h): bind vPPB B of VCS V to physical port P, or to \
                      logical device L of the multi-logical device on port P.\n\n\
                      This changes what the host behind the VCS sees, so without --yes nothing \
                      is sent: swcci says what it would do and exits with status 2."),
        after_long_help = "Examples:\n  swcci bind switch0 --vcs 0 --vppb 1 --port 3 --yes\n  swcci bind switch0 --vcs 0 --vppb 2 --port 3 --ld 1 --yes"
    )]
    Bind(BindArgs),

    /// Unbind vPPB (5202h): unbind a vPPB of a VCS [needs --yes]
    #[command(
        long_about = wrapped("Send Unbind vPPB (5202h): unbind vPPB B of VCS V, waiting for the link to \
                      go down or simulating a managed or surprise hot-remove.\n\n\
                      This removes a device from the host behind the VCS, so without --yes \
                      nothing is sent: swcci says what it would do and exits with status 2."),
        after_long_help = "Examples:\n  swcci unbind switch0 --vcs 0 --vppb 1 --yes\n  swcci unbind switch0 --vcs 0 --vppb 1 --mode managed --yes"
    )]
    Unbind(UnbindArgs),

    /// Tunnel Management Command (5300h): send a command to a device behind a port or an LD
    #[command(
        long_about = wrapped("Send a command through the Tunnel Management Command (5300h) to the \
                      component attached to downstream port N (one tunnel), or with --ld to \
                      logical device M of the multi-logical device on port N (a tunnel in a \
                      tunnel). `identify` prints the port, the LD and the decoded response; \
                      `raw` prints the return code of the outer tunnel command, the opcode and \
                      return code of the innermost response, and a hex dump. The same as \
                      `swcci identify DEV --port N [--ld M]` and `swcci raw DEV --port N \
                      [--ld M] ...`."),
        after_long_help = "Examples:\n  swcci tunnel switch0 --port 1 identify\n  swcci tunnel switch0 --port 1 --ld 0 identify\n  swcci tunnel switch0 --port 1 raw --opcode 0x4000"
    )]
    Tunnel(TunnelArgs),

    /// The fabric at a glance: switches, VCSs, ports, devices and their LDs
    #[command(
        long_about = wrapped("Walk every switch (or the DEVs named) and print what is plugged where: \
                      the switch's identity (Identify 0001h, Identify Switch Device 5100h), each \
                      VCS with its vPPBs and what each is bound to (Get Virtual CXL Switch Info \
                      5200h), each physical port with its state, link width and speed and \
                      connected device type (Get Physical Port State 5101h), and for each port \
                      with a device its identity through a tunnel (Identify 0001h via Tunnel \
                      Management Command 5300h) and, for a multi-logical device, its LDs (Get \
                      LD Info 5400h, Get LD Allocations 5401h). Switches are walked side by \
                      side.\n\n\
                      Output: a tree (coloured on a terminal unless NO_COLOR is set), --json \
                      (schema in Documentation/cli.rst), or --dot for Graphviz \
                      (`swcci topology --dot | dot -Tsvg`).\n\n\
                      A slow or dead device does not stall the view: each device (a switch, \
                      or a component behind a port) gets --timeout milliseconds, a command that \
                      never completes ends at the driver's 2 s doorbell timeout, and the walk \
                      goes on with the next device. What could not be read is marked partial \
                      (\"partial\": true in JSON), each error is printed on standard error, and \
                      the exit status is 7. When no switch could be read at all, the exit \
                      status is that of the first error."),
        after_long_help = "Examples:\n  swcci topology\n  swcci topology switch0 --timeout 2000\n  swcci topology --json\n  swcci topology --dot | dot -Tsvg -o fabric.svg"
    )]
    Topology(TopologyArgs),

    /// Send any command and hex-dump the response (the escape hatch)
    #[command(
        long_about = wrapped("Send command OPCODE with an optional input payload and print the return \
                      code and a hex dump of the output (offset, 16 bytes per line, ASCII). \
                      With --json: {\"rc\": N, \"rc_name\": \"...\", \"out\": \"<hex>\"}. \
                      With --port (and --ld) the command goes through tunnels and the port, \
                      LD, outer_rc and inner_opcode come first.\n\n\
                      The output is printed whatever the return code; the exit status is 1 \
                      when the device (or a tunnel) did not return success or \
                      \"background command started\". The kernel taints itself \
                      before passing a command that may change device or fabric state."),
        after_long_help = "Examples:\n  swcci raw switch0 --opcode 0x0001\n  swcci raw switch0 --port 3 --opcode 0x0001\n  swcci raw switch0 --opcode 5101h --in '02 00 01'\n  swcci raw switch0 --opcode 0x0401 --in @get-log-input.bin --out-size 64"
    )]
    Raw(RawArgs),

    /// Firmware update: info, update (Transfer FW 0201h), activate, abort
    #[command(
        long_about = wrapped(fw::FW_LONG_ABOUT),
        after_long_help = format!("{}\n\n{}", fw::FW_EXAMPLES, error::exit_status_help())
    )]
    Fw(fw::FwArgs),

    /// Dynamic Capacity (5600h-5605h): info, regions, extents, configure, add, release
    #[command(
        long_about = wrapped(dcd::DCD_LONG_ABOUT),
        after_long_help = format!("{}\n\n{}", dcd::DCD_EXAMPLES, error::exit_status_help())
    )]
    Dcd(dcd::DcdArgs),

    /// LD allocations of a multi-logical device (5400h-5402h): show, alloc
    #[command(
        long_about = wrapped(ld::LD_LONG_ABOUT),
        after_long_help = format!("{}\n\n{}", ld::LD_EXAMPLES, error::exit_status_help())
    )]
    Ld(ld::LdArgs),

    /// Event records of every log (0100h), decoded; --clear clears them [needs --yes]
    #[command(
        long_about = wrapped(events::EVENTS_LONG_ABOUT),
        after_long_help = format!("{}\n\n{}", events::EVENTS_EXAMPLES, error::exit_status_help())
    )]
    Events(events::EventsArgs),

    /// Print a shell completion script
    #[command(hide = true)]
    Completions {
        /// The shell
        shell: CompletionShell,
    },

    /// Print the swcci(1) manual page (roff)
    #[command(hide = true)]
    Man,
}

/// A device argument.
#[derive(Args, Debug)]
pub struct DevArgs {
    #[arg(value_name = "DEV", help = DEV_HELP)]
    pub dev: String,
}

/// Where a command goes: the switch CCI, or through Tunnel Management Commands (5300h) to the
/// component on a port (`--port`), or to an LD of the multi-logical device there (`--ld`).
#[derive(Args, Debug, Default)]
pub struct TargetArgs {
    /// Send it through a tunnel to the component on downstream port P
    #[arg(long, value_name = "P", value_parser = parse_u8)]
    pub port: Option<u8>,
    /// With --port: to LD L of the multi-logical device on port P (a tunnel in a tunnel)
    #[arg(long, value_name = "L", value_parser = parse_u8, requires = "port")]
    pub ld: Option<u8>,
}

impl TargetArgs {
    /// The library's target: the one place `--port`/`--ld` are mapped.
    pub fn target(&self) -> swcci::Target {
        // clap makes --ld require --port, so `from_args` always has a target.
        swcci::Target::from_args(self.port, self.ld).unwrap_or_default()
    }
}

/// A device argument and a target on it.
#[derive(Args, Debug)]
pub struct TargetDevArgs {
    #[arg(value_name = "DEV", help = DEV_HELP)]
    pub dev: String,
    #[command(flatten)]
    pub target: TargetArgs,
}

/// `ports`.
#[derive(Args, Debug)]
pub struct PortsArgs {
    #[arg(value_name = "DEV", help = DEV_HELP)]
    pub dev: String,
    /// Physical port ids (0-255, decimal or 0x hex); default: every active port
    #[arg(value_name = "PORT", value_parser = parse_u8)]
    pub ports: Vec<u8>,
}

/// `vcs`.
#[derive(Args, Debug)]
pub struct VcsArgs {
    #[arg(value_name = "DEV", help = DEV_HELP)]
    pub dev: String,
    /// VCS ids to show (repeat or separate with commas); default: every active VCS
    #[arg(long = "vcs", value_name = "N", value_delimiter = ',', value_parser = parse_u8)]
    pub vcs: Vec<u8>,
    /// First vPPB to list in each VCS
    #[arg(long, value_name = "N", default_value = "0", value_parser = parse_u8)]
    pub start: u8,
    /// Most vPPBs to list per VCS; default: as many as fit in the mailbox payload
    #[arg(long, value_name = "N", value_parser = parse_u8)]
    pub limit: Option<u8>,
}

/// Physical Port Control operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PortAction {
    /// Assert PERST# (hold the link partner in reset)
    AssertPerst,
    /// Deassert PERST#
    DeassertPerst,
    /// Reset the port's PPB
    Reset,
}

/// `port-control`.
#[derive(Args, Debug)]
pub struct PortControlArgs {
    #[arg(value_name = "DEV", help = DEV_HELP)]
    pub dev: String,
    /// Physical port id (0-255, decimal or 0x hex)
    #[arg(value_name = "PORT", value_parser = parse_u8)]
    pub port: u8,
    /// What to do
    #[arg(value_name = "ACTION")]
    pub action: PortAction,
    /// Really do it (without it, nothing is sent)
    #[arg(short = 'y', long)]
    pub yes: bool,
}

/// The vPPB that `bind` and `unbind` act on.
#[derive(Args, Debug)]
pub struct VppbArgs {
    /// VCS id
    #[arg(long, value_name = "V", value_parser = parse_u8)]
    pub vcs: u8,
    /// vPPB index within the VCS
    #[arg(long, value_name = "B", value_parser = parse_u8)]
    pub vppb: u8,
}

/// `bind`.
#[derive(Args, Debug)]
pub struct BindArgs {
    #[arg(value_name = "DEV", help = DEV_HELP)]
    pub dev: String,
    #[command(flatten)]
    pub at: VppbArgs,
    /// Physical port id
    #[arg(long, value_name = "P", value_parser = parse_u8)]
    pub port: u8,
    /// Logical device id of a multi-logical device, or `none` (FFFFh) to bind the port itself
    #[arg(long, value_name = "L", default_value = "none", value_parser = parse_ld)]
    pub ld: u16,
    /// Really do it (without it, nothing is sent)
    #[arg(short = 'y', long)]
    pub yes: bool,
}

/// Unbind vPPB options.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum UnbindMode {
    /// Wait for the port's link to go down
    WaitLinkDown,
    /// Simulate a managed hot-remove
    Managed,
    /// Simulate a surprise hot-remove
    Surprise,
}

/// `unbind`.
#[derive(Args, Debug)]
pub struct UnbindArgs {
    #[arg(value_name = "DEV", help = DEV_HELP)]
    pub dev: String,
    #[command(flatten)]
    pub at: VppbArgs,
    /// How to unbind
    #[arg(long, value_name = "MODE", default_value = "wait-link-down")]
    pub mode: UnbindMode,
    /// Really do it (without it, nothing is sent)
    #[arg(short = 'y', long)]
    pub yes: bool,
}

/// `tunnel`.
#[derive(Args, Debug)]
pub struct TunnelArgs {
    #[arg(value_name = "DEV", help = DEV_HELP)]
    pub dev: String,
    /// Downstream port the target is attached to
    #[arg(long, value_name = "N", value_parser = parse_u8)]
    pub port: u8,
    /// Logical device of the multi-logical device on the port (a second tunnel level)
    #[arg(long, value_name = "M", value_parser = parse_u8)]
    pub ld: Option<u8>,
    /// What to send
    #[command(subcommand)]
    pub what: TunnelCommand,
}

impl TunnelArgs {
    /// The library's target (`--port` is required here).
    pub fn target(&self) -> swcci::Target {
        TargetArgs {
            port: Some(self.port),
            ld: self.ld,
        }
        .target()
    }
}

/// What to send through a tunnel.
#[derive(Subcommand, Debug)]
pub enum TunnelCommand {
    /// Identify (0001h) the target and decode the response
    #[command(
        long_about = wrapped("Send Identify (0001h) through the tunnel and decode the target's response \
                      (vendor and device ids, serial, message size, component type).")
    )]
    Identify,
    /// Send any command through the tunnel and hex-dump the response
    #[command(
        long_about = wrapped("Send command OPCODE with an optional input payload through the tunnel \
                      and print the return codes and a hex dump of the target's output. \
                      --out-size limits how many bytes of that output are kept. The exit \
                      status is 1 when either return code is not success.")
    )]
    Raw(RawCommand),
}

/// A raw command: opcode, input, output size.
#[derive(Args, Debug)]
pub struct RawCommand {
    /// Opcode in hex (0x5100, 5100h or 5100): command set << 8 | command
    #[arg(long, value_name = "OPCODE", value_parser = parse_opcode)]
    pub opcode: u16,
    /// Input payload, at most the target's payload size: hex bytes ("01 02", "0102",
    /// "0x01,0x02") or @FILE (binary; @- is stdin)
    #[arg(long = "in", value_name = "HEX|@FILE", value_parser = hex::parse_input)]
    pub input: Option<hex::Input>,
    /// Largest output accepted, in bytes; default: the mailbox payload size
    #[arg(long, value_name = "N", value_parser = parse_size)]
    pub out_size: Option<usize>,
}

/// `raw`.
#[derive(Args, Debug)]
pub struct RawArgs {
    #[arg(value_name = "DEV", help = DEV_HELP)]
    pub dev: String,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub cmd: RawCommand,
    /// A background command, asynchronously (the driver's SWCCI_BG_ASYNC): say that it
    /// started, sleep in poll(2) until it ends, then print its final return code (a driver
    /// node's own CCI only)
    #[arg(long = "async", conflicts_with_all = ["port", "ld"])]
    pub asynchronous: bool,
}

/// `topology`.
#[derive(Args, Debug)]
pub struct TopologyArgs {
    /// Switch nodes to walk (switch0, cxl/switch0 or a path) and MCTP endpoints
    /// (mctp:[NET:]EID); default: every switch node
    #[arg(value_name = "DEV")]
    pub devs: Vec<String>,
    /// Print a Graphviz graph (DOT) instead of the tree
    #[arg(long, conflicts_with = "json")]
    pub dot: bool,
    /// Most time for one device, in milliseconds (a switch's own commands, or a component
    /// behind a port with its LDs); also each node's background-command timeout
    #[arg(long, value_name = "MS", default_value = "5000", value_parser = parse_timeout)]
    pub timeout: u64,
}

/// Shells completions are generated for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CompletionShell {
    /// GNU Bash
    Bash,
    /// Z shell
    Zsh,
    /// fish
    Fish,
}

/// Width that long help texts are wrapped to.
const HELP_WIDTH: usize = 90;

/// Wraps each paragraph of `text` to [`HELP_WIDTH`] columns; lines that start with a blank
/// (examples) are kept as they are.
fn wrapped(text: &str) -> String {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with(' ') {
            out.push(line.to_string());
            continue;
        }
        let mut cur = String::new();
        for word in line.split_whitespace() {
            if !cur.is_empty() && cur.len() + 1 + word.len() > HELP_WIDTH {
                out.push(std::mem::take(&mut cur));
            }
            if !cur.is_empty() {
                cur.push(' ');
            }
            cur.push_str(word);
        }
        out.push(cur);
    }
    out.join("\n")
}

/// A value from 0 to 255.
fn parse_u8(s: &str) -> Result<u8, String> {
    parse_number(s)
        .and_then(|n| u8::try_from(n).ok())
        .ok_or_else(|| "expected a number from 0 to 255 (decimal, or hex with 0x)".to_string())
}

/// An LD id: `none` or a number up to FFFFh.
fn parse_ld(s: &str) -> Result<u16, String> {
    if s.eq_ignore_ascii_case("none") {
        return Ok(swcci_proto::payload::switch::LD_NONE);
    }
    parse_number(s)
        .and_then(|n| u16::try_from(n).ok())
        .ok_or_else(|| "expected `none` or a number from 0 to 65535".to_string())
}

/// A 16-bit opcode in hex: `0x5100`, `5100h` or `5100`.
fn parse_opcode(s: &str) -> Result<u16, String> {
    let s = s.trim();
    let digits = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .or_else(|| s.strip_suffix(['h', 'H']))
        .unwrap_or(s);
    let ok = (1..=4).contains(&digits.len()) && digits.chars().all(|c| c.is_ascii_hexdigit());
    ok.then(|| u16::from_str_radix(digits, 16).ok())
        .flatten()
        .ok_or_else(|| "expected a 16-bit opcode in hex, such as 0x5100 or 5100h".to_string())
}

/// Retries: 0 to 10.
fn parse_retries(s: &str) -> Result<u32, String> {
    parse_number(s)
        .and_then(|n| u32::try_from(n).ok())
        .filter(|n| *n <= 10)
        .ok_or_else(|| "expected a number of retries from 0 to 10".to_string())
}

/// A gap between commands in milliseconds: 0 to 10000.
fn parse_gap(s: &str) -> Result<u64, String> {
    parse_number(s)
        .filter(|n| *n <= 10_000)
        .ok_or_else(|| "expected milliseconds from 0 to 10000".to_string())
}

/// A per-device timeout in milliseconds: 1 to 600000 (10 minutes).
fn parse_timeout(s: &str) -> Result<u64, String> {
    parse_number(s)
        .filter(|n| (1..=600_000).contains(n))
        .ok_or_else(|| "expected milliseconds from 1 to 600000".to_string())
}

/// Largest output size accepted (the CXL mailbox payload is at most 1 MiB).
const MAX_OUT_SIZE: usize = 1 << 20;

/// An output size in bytes.
fn parse_size(s: &str) -> Result<usize, String> {
    parse_number(s)
        .and_then(|n| usize::try_from(n).ok())
        .filter(|&n| n <= MAX_OUT_SIZE)
        .ok_or_else(|| format!("expected a size in bytes from 0 to {MAX_OUT_SIZE}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_definition_is_valid() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_argument_is_documented() {
        fn check(cmd: &clap::Command, path: &str) {
            let path = format!("{path} {}", cmd.get_name());
            assert!(cmd.get_about().is_some(), "{path} has no about");
            for a in cmd.get_arguments() {
                let documented = a.get_help().is_some() || a.get_long_help().is_some();
                assert!(
                    documented,
                    "{path}: argument {} is undocumented",
                    a.get_id()
                );
            }
            for sub in cmd.get_subcommands() {
                check(sub, &path);
            }
        }
        let mut cmd = Cli::command();
        cmd.build();
        check(&cmd, "");
    }

    #[test]
    fn wraps_help() {
        let long = "word ".repeat(60);
        let w = wrapped(&format!("{long}\n\n  swcci list --json {long}\nshort"));
        let lines: Vec<&str> = w.lines().collect();
        assert!(lines
            .iter()
            .filter(|l| !l.starts_with(' '))
            .all(|l| l.len() <= HELP_WIDTH));
        assert_eq!(lines[4], "");
        assert!(lines[5].starts_with("  swcci list --json word"));
        assert_eq!(lines[6], "short");
        let help = Cli::command().render_long_help().to_string();
        assert!(help.lines().all(|l| l.len() <= 100), "{help}");
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_u8("0"), Ok(0));
        assert_eq!(parse_u8("255"), Ok(255));
        assert_eq!(parse_u8("0x1f"), Ok(31));
        assert!(parse_u8("256").is_err());
        assert!(parse_u8("-1").is_err());
        assert!(parse_u8("x").is_err());
        assert_eq!(parse_ld("none"), Ok(0xffff));
        assert_eq!(parse_ld("NONE"), Ok(0xffff));
        assert_eq!(parse_ld("3"), Ok(3));
        assert!(parse_ld("65536").is_err());
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("0x100"), Ok(256));
        assert!(parse_size("2000000").is_err());
    }

    #[test]
    fn opcodes() {
        assert_eq!(parse_opcode("0x5100"), Ok(0x5100));
        assert_eq!(parse_opcode("0X0001"), Ok(1));
        assert_eq!(parse_opcode("5101h"), Ok(0x5101));
        assert_eq!(parse_opcode("5300"), Ok(0x5300));
        assert_eq!(parse_opcode("c000"), Ok(0xc000));
        assert_eq!(parse_opcode("1"), Ok(1));
        for bad in ["zz", "", "0x", "h", "0x10000", "+1", "0x-1", "51 00"] {
            assert!(parse_opcode(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn parses_commands() {
        let cli = Cli::try_parse_from(["swcci", "--json", "ports", "switch0", "1", "0x2"]).unwrap();
        assert!(cli.json);
        assert!(matches!(cli.command, Command::Ports(ref p) if p.ports == [1, 2]));
        let cli =
            Cli::try_parse_from(["swcci", "vcs", "sw", "--vcs", "0,1", "--vcs", "3"]).unwrap();
        assert!(
            matches!(cli.command, Command::Vcs(ref v) if v.vcs == [0, 1, 3] && v.limit.is_none())
        );
        let cli = Cli::try_parse_from([
            "swcci", "bind", "s", "--vcs", "0", "--vppb", "1", "--port", "2",
        ])
        .unwrap();
        assert!(matches!(cli.command, Command::Bind(ref b) if b.ld == 0xffff && !b.yes));
        let cli = Cli::try_parse_from([
            "swcci", "unbind", "s", "--vcs", "0", "--vppb", "1", "--json",
        ])
        .unwrap();
        assert!(cli.json);
        assert!(
            matches!(cli.command, Command::Unbind(ref u) if u.mode == UnbindMode::WaitLinkDown)
        );
        let cli = Cli::try_parse_from([
            "swcci",
            "tunnel",
            "s",
            "--port",
            "1",
            "--ld",
            "2",
            "raw",
            "--opcode",
            "4000h",
            "--in",
            "0x01,0x02",
        ])
        .unwrap();
        let Command::Tunnel(t) = cli.command else {
            panic!("not a tunnel")
        };
        assert_eq!((t.port, t.ld), (1, Some(2)));
        let TunnelCommand::Raw(r) = t.what else {
            panic!("not raw")
        };
        assert_eq!(r.opcode, 0x4000);
        assert_eq!(r.input, Some(hex::Input::Bytes(vec![1, 2])));
        // --port/--ld on commands a switch forwards, mapped to the library's targets.
        use swcci::Target;
        let target_of = |args: &[&str]| match Cli::try_parse_from(args).unwrap().command {
            Command::Identify(a) | Command::Cel(a) | Command::Logs(a) | Command::BgStatus(a) => {
                a.target.target()
            }
            Command::Raw(a) => a.target.target(),
            Command::Tunnel(a) => a.target(),
            c => panic!("{c:?}"),
        };
        assert_eq!(target_of(&["swcci", "identify", "s"]), Target::Direct);
        assert_eq!(
            target_of(&["swcci", "identify", "s", "--port", "3"]),
            Target::Port(3)
        );
        assert_eq!(
            target_of(&["swcci", "cel", "s", "--port", "3", "--ld", "1"]),
            Target::PortLd(3, 1)
        );
        assert_eq!(
            target_of(&["swcci", "logs", "--port", "0x10", "s"]),
            Target::Port(16)
        );
        assert_eq!(
            target_of(&["swcci", "raw", "s", "--opcode", "1", "--port", "2", "--ld", "0"]),
            Target::PortLd(2, 0)
        );
        assert_eq!(
            target_of(&["swcci", "tunnel", "s", "--port", "2", "--ld", "0", "identify"]),
            Target::PortLd(2, 0)
        );
        assert_eq!(
            target_of(&["swcci", "tunnel", "s", "--port", "2", "identify"]),
            Target::Port(2)
        );
        let cli = Cli::try_parse_from(["swcci", "port-control", "s", "3", "reset", "-y"]).unwrap();
        assert!(
            matches!(cli.command, Command::PortControl(ref p) if p.yes && p.action == PortAction::Reset)
        );
    }

    #[test]
    fn rejects_bad_command_lines() {
        use clap::error::ErrorKind;
        let kind = |args: &[&str]| Cli::try_parse_from(args).unwrap_err().kind();
        assert_eq!(
            kind(&["swcci", "raw", "x", "--opcode", "zz"]),
            ErrorKind::ValueValidation
        );
        assert_eq!(
            kind(&["swcci", "raw", "x", "--opcode", "1", "--in", "0g"]),
            ErrorKind::ValueValidation
        );
        assert_eq!(
            kind(&["swcci", "raw", "x"]),
            ErrorKind::MissingRequiredArgument
        );
        assert_eq!(
            kind(&["swcci", "ports", "x", "256"]),
            ErrorKind::ValueValidation
        );
        assert_eq!(
            kind(&["swcci", "port-control", "x", "1", "explode"]),
            ErrorKind::InvalidValue
        );
        assert_eq!(kind(&["swcci", "frobnicate"]), ErrorKind::InvalidSubcommand);
        // An LD needs a port.
        assert_eq!(
            kind(&["swcci", "identify", "x", "--ld", "1"]),
            ErrorKind::MissingRequiredArgument
        );
        assert_eq!(
            kind(&["swcci", "bg-status", "x", "--port", "256"]),
            ErrorKind::ValueValidation
        );
        assert_eq!(
            kind(&["swcci", "tunnel", "x", "identify"]),
            ErrorKind::MissingRequiredArgument
        );
        assert_eq!(kind(&["swcci", "--help"]), ErrorKind::DisplayHelp);
        assert_eq!(
            kind(&["swcci"]),
            ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
        );
    }

    #[test]
    fn help_documents_exit_status() {
        let help = Cli::command().render_long_help().to_string();
        for code in ["0", "1", "2", "3", "4", "5", "70"] {
            assert!(
                help.contains(&format!("\n  {code:<3} ")),
                "exit status {code} in\n{help}"
            );
        }
        assert!(help.contains("Examples:"));
        let mut cmd = Cli::command();
        let sub = cmd.find_subcommand_mut("raw").unwrap();
        let help = sub.render_long_help().to_string();
        assert!(help.contains("--out-size"));
        assert!(help.contains("Examples:"));
    }
}
