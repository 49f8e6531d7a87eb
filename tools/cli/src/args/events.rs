// SPDX-License-Identifier: GPL-2.0

//! The arguments of `swcci events` (the command is in crate::events).

use super::{TargetArgs, DEV_HELP};
use clap::Args;

pub const EVENTS_LONG_ABOUT: &str = "\
Read the event records of every event log (informational, warning, failure, fatal, and the \
dynamic capacity log of a device that has one) with Get Event Records (0100h), CXL r3.1 \
§8.2.9.2, and print one line per record, oldest first in each log: the log, the record handle, \
the device's timestamp (UTC), and the record decoded: the Physical Switch (port link changes), \
Virtual CXL Switch (vPPB binding changes) and MLD Port (error messages from an MLD) records of \
CXL r3.1 §7.6.8, with the common header's flags, related handle and maintenance operation \
class; a record of any other type is shown raw, its UUID and its 80 data bytes in hex. A log \
that overflowed gets a line with the records it lost and when.

A device keeps its records until they are cleared, and Get Event Records always returns the \
oldest ones: without --clear nothing changes, and a log holding more records than one \
response carries says so (the rest show once these are cleared). --clear clears the records \
shown (Clear Event Records, 0101h, by handle) and reads on until every log is empty; it \
changes device state, so it sends nothing without --yes. Records already read and cleared are \
printed even when a later command fails.

With --port (and --ld) the records of the component behind that port come through Tunnel \
Management Commands (5300h).

--follow keeps going: after the records there are, it prints each new record once as it \
comes. With --clear --yes (the records are consumed, as a daemon does) it sleeps in poll(2) \
until the switch signals events (EPOLLPRI: the driver's event interrupt, or its check of the \
Event Status register), using no CPU while it waits. A switch signals only a log going from \
empty to holding records, so while records it did not clear remain, and for a component \
behind a port or an MCTP endpoint, it reads again every second. It ends at Ctrl-C, or with \
exit status 3 when the device goes away.

--json prints JSON lines for a log pipeline: one object per line, \"kind\": \"record\" (with \
\"cleared\"), \"overflow\" or \"more\"; nothing at all when the logs are empty. The members \
are listed in Documentation/events.rst.";

pub const EVENTS_EXAMPLES: &str = "\
Examples:
  swcci events switch0
  swcci events switch0 --json
  swcci events switch0 --clear --yes
  swcci events switch0 --port 3
  swcci events switch0 --json --clear --yes | my-log-shipper
  swcci events switch0 --follow --clear --yes --json | my-log-shipper";

/// `events`.
#[derive(Args, Debug)]
pub struct EventsArgs {
    #[arg(value_name = "DEV", help = DEV_HELP)]
    pub dev: String,
    #[command(flatten)]
    pub target: TargetArgs,
    /// Clear the records shown (Clear Event Records 0101h), reading on until the logs are
    /// empty [needs --yes]
    #[arg(long)]
    pub clear: bool,
    /// Really clear (without it, --clear sends nothing)
    #[arg(short = 'y', long, requires = "clear")]
    pub yes: bool,
    /// Keep going: print each new record as it comes, sleeping in poll(2) until the switch
    /// signals events (EPOLLPRI) when the logs are empty (--clear --yes), reading again every
    /// second otherwise. Ends at Ctrl-C or when the device goes away
    #[arg(long)]
    pub follow: bool,
}
