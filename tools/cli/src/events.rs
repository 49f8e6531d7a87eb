// SPDX-License-Identifier: GPL-2.0

//! `swcci events`: the event records of every log of a switch, or of a component behind it
//! through tunnels (swcci-lib's `Cci::drain_events`, Documentation/events.rst), decoded: the
//! Common Event Record, and the switch's Physical Switch, Virtual CXL Switch and MLD Port
//! records; records of other types raw with their UUID. `--clear` clears what was shown.
//!
//! Output is line-oriented so that a follow mode can print each pass as it comes: one line per
//! record (text), or one JSON object per line (`--json`: `"kind": "record"`, `"overflow"`,
//! `"more"`), rendered by [`render`] from one [`Drained`] pass.

use crate::decode;
use crate::error::CliError;
use crate::hex;
use crate::{TargetArgs, DEV_HELP};
use clap::Args;
use serde_json::{json, Map, Value};
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};
use swcci::events::{Body, DrainOptions, Drained, Event, LogEvents, Overflow};
use swcci::{command_name, Device, Target};
use swcci_proto::opcode;
use swcci_proto::payload::events::record_flag;

type Result<T> = std::result::Result<T, CliError>;

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

--json prints JSON lines for a log pipeline: one object per line, \"kind\": \"record\" (with \
\"cleared\"), \"overflow\" or \"more\"; nothing at all when the logs are empty. The members \
are listed in Documentation/events.rst.";

pub const EVENTS_EXAMPLES: &str = "\
Examples:
  swcci events switch0
  swcci events switch0 --json
  swcci events switch0 --clear --yes
  swcci events switch0 --port 3
  swcci events switch0 --json --clear --yes | my-log-shipper";

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
}

/// Runs `swcci events`.
pub fn run(a: &EventsArgs, json: bool) -> Result<crate::cmd::Outcome> {
    let target = a.target.target();
    if a.clear && !a.yes {
        return Err(CliError::Refused(format!(
            "read and clear the event records of every log of the {target} on {} ({} and {})",
            a.dev,
            command_name(opcode::GET_EVENT_RECORDS),
            command_name(opcode::CLEAR_EVENT_RECORDS)
        )));
    }
    let dev = Device::open(&a.dev)?;
    let drained = dev.on(target).drain_events(&DrainOptions {
        clear: a.clear,
        ..DrainOptions::default()
    });
    let place = Place {
        node: dev.path(),
        target,
    };
    let mut stdout = render(&drained, &place, json);
    if !json && drained.error.is_none() && stdout.is_empty() {
        stdout.push_str("no event records\n");
    }
    Ok(crate::cmd::Outcome {
        stdout,
        warnings: Vec::new(),
        errors: drained.error.into_iter().map(CliError::Lib).collect(),
    })
}

/// Where records came from: the node and the target on it.
#[derive(Clone, Copy, Debug)]
pub struct Place<'a> {
    /// The device node.
    pub node: &'a Path,
    /// The target.
    pub target: Target,
}

/// One pass over the logs as printed: per log, its records (text: one line each; JSON: one
/// object per line), a line for an overflow and one for records left unread; with records
/// cleared, a last text line counting them. Empty when there is nothing to say.
pub fn render(d: &Drained, place: &Place<'_>, json: bool) -> String {
    let mut out = String::new();
    for l in &d.logs {
        render_log(&mut out, l, place, json);
    }
    let n = d.cleared();
    if !json && n > 0 {
        out.push_str(&format!(
            "{n} record{} cleared\n",
            if n == 1 { "" } else { "s" }
        ));
    }
    out
}

fn render_log(out: &mut String, l: &LogEvents, place: &Place<'_>, json: bool) {
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    if let Some(o) = &l.overflow {
        line(if json {
            overflow_json(l, o, place).to_string()
        } else {
            overflow_text(l, o)
        });
    }
    for (i, e) in l.events.iter().enumerate() {
        let cleared = i < l.cleared;
        line(if json {
            record_json(e, cleared, place).to_string()
        } else {
            record_text(e)
        });
    }
    if l.more {
        line(if json {
            more_json(l, place).to_string()
        } else {
            format!(
                "{} log: more records than one {} returns; they show once these are cleared \
                 (--clear)",
                l.log,
                command_name(opcode::GET_EVENT_RECORDS)
            )
        });
    }
}

/// A device timestamp (ns since the Unix epoch) as UTC text, `-` for 0.
pub fn time_text(ns: u64) -> String {
    if ns == 0 {
        return "-".into();
    }
    UNIX_EPOCH
        .checked_add(Duration::from_nanos(ns))
        .map_or_else(
            || format!("{ns} ns"),
            |t| humantime::format_rfc3339_nanos(t).to_string(),
        )
}

fn time_json(ns: u64) -> Value {
    if ns == 0 {
        Value::Null
    } else {
        Value::String(time_text(ns))
    }
}

/// The names of the header's flag bits (severity aside).
fn flag_names(e: &Event) -> Vec<String> {
    decode::bit_names(e.header.flag_bits(), record_flag::NAMES)
}

/// One record as a line: `LOG #HANDLE TIME TYPE: DETAILS [FLAGS] (related #N) (maintenance
/// operation class N)`.
pub fn record_text(e: &Event) -> String {
    let h = &e.header;
    let body = match &e.body {
        Body::PhysicalSwitch(p) => {
            let r = decode::port_record(&p.port);
            let t = |k: &str| r.text(k).unwrap_or("-").to_string();
            let mut s = format!(
                "physical-switch port {}: {}, state {}, link {} {} {}, {} ({})",
                p.port_id,
                p.event_type,
                t("state"),
                t("ltssm"),
                t("width"),
                t("speed"),
                t("type"),
                t("mode"),
            );
            if p.port.link_state != 0 {
                s.push_str(&format!(", flags {}", t("flags")));
            }
            if p.slot_status != 0 {
                s.push_str(&format!(", slot status {:#06x}", p.slot_status));
            }
            s
        }
        Body::VirtualSwitch(v) => {
            use swcci_proto::payload::switch::BindingStatus;
            let to = match v.binding {
                BindingStatus::Unbound => String::new(),
                BindingStatus::BoundPort => format!(" to port {}", v.port_id),
                _ => format!(" to port {} LD {}", v.port_id, v.ld_id),
            };
            let mut s = format!(
                "virtual-switch VCS {} vPPB {}: {}, {}{to}",
                v.vcs_id, v.vppb_id, v.event_type, v.binding
            );
            if v.link_control != 0 || v.slot_control != 0 {
                s.push_str(&format!(
                    ", link control {:#06x}, slot control {:#06x}",
                    v.link_control, v.slot_control
                ));
            }
            s
        }
        Body::MldPort(m) => format!(
            "mld-port port {}: {}, message {}",
            m.port_id,
            m.event_type,
            hex::to_hex(&m.error_message)
        ),
        Body::Raw(data) => match e.type_name() {
            Some(name) => format!("{name} {} (not decoded): {}", h.uuid, hex::to_hex(data)),
            None => format!("record {}: {}", h.uuid, hex::to_hex(data)),
        },
    };
    let mut s = format!("{} #{} {} {body}", e.log, h.handle, time_text(h.timestamp));
    if h.severity() != swcci::events::Severity::of_log(e.log) {
        s.push_str(&format!(" (severity {})", h.severity()));
    }
    let flags = flag_names(e);
    if !flags.is_empty() {
        s.push_str(&format!(" [{}]", flags.join(",")));
    }
    if h.related_handle != 0 {
        s.push_str(&format!(" (related #{})", h.related_handle));
    }
    if h.maint_op_class != 0 {
        s.push_str(&format!(
            " (maintenance operation class {})",
            h.maint_op_class
        ));
    }
    s
}

/// The members every line has: `kind`, `node`, `target_port`, `target_ld`, `log`,
/// `log_code`.
fn line_head(kind: &str, log: swcci::events::EventLog, place: &Place<'_>) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("kind".into(), kind.into());
    m.insert("node".into(), place.node.display().to_string().into());
    m.insert("target_port".into(), place.target.port().into());
    m.insert("target_ld".into(), place.target.ld().into());
    m.insert("log".into(), log.name().into());
    m.insert("log_code".into(), log.raw().into());
    m
}

/// One record as a JSON object (Documentation/events.rst lists the members).
pub fn record_json(e: &Event, cleared: bool, place: &Place<'_>) -> Value {
    let h = &e.header;
    let mut m = line_head("record", e.log, place);
    let valid = |bit: u32, v: Value| if h.flags & bit != 0 { v } else { Value::Null };
    for (k, v) in [
        ("handle", json!(h.handle)),
        ("related_handle", json!(h.related_handle)),
        ("timestamp", json!(h.timestamp)),
        ("time", time_json(h.timestamp)),
        ("severity", json!(h.severity().name())),
        ("severity_code", json!(h.severity().raw())),
        ("flags", json!(flag_names(e))),
        ("flags_mask", json!(h.flags)),
        ("maint_op_class", json!(h.maint_op_class)),
        (
            "maint_op_subclass",
            valid(
                record_flag::MAINT_OP_SUBCLASS_VALID,
                json!(h.maint_op_subclass),
            ),
        ),
        ("ld_id", valid(record_flag::LD_ID_VALID, json!(h.ld_id))),
        (
            "head_id",
            valid(record_flag::HEAD_ID_VALID, json!(h.head_id)),
        ),
        ("uuid", json!(h.uuid.to_string())),
        ("type", json!(e.type_name())),
        ("length", json!(h.length)),
        ("cleared", json!(cleared)),
    ] {
        m.insert(k.into(), v);
    }
    match &e.body {
        Body::PhysicalSwitch(p) => {
            let mut port = match decode::port_record(&p.port).to_json() {
                Value::Object(o) => o,
                _ => Map::new(),
            };
            port.remove("ld_count");
            port.remove("port");
            m.insert("port".into(), p.port_id.into());
            m.insert("event".into(), p.event_type.to_string().into());
            m.insert("event_code".into(), p.event_type.raw().into());
            m.insert("slot_status".into(), p.slot_status.into());
            m.insert("port_state".into(), Value::Object(port));
        }
        Body::VirtualSwitch(v) => {
            m.insert("vcs".into(), v.vcs_id.into());
            m.insert("vppb".into(), v.vppb_id.into());
            m.insert("event".into(), v.event_type.to_string().into());
            m.insert("event_code".into(), v.event_type.raw().into());
            m.insert("binding".into(), v.binding.to_string().into());
            m.insert("binding_code".into(), v.binding.raw().into());
            m.insert("vppb_port".into(), v.port_id.into());
            m.insert("vppb_ld".into(), v.ld_id.into());
            m.insert("link_control".into(), v.link_control.into());
            m.insert("slot_control".into(), v.slot_control.into());
        }
        Body::MldPort(x) => {
            m.insert("port".into(), x.port_id.into());
            m.insert("event".into(), x.event_type.to_string().into());
            m.insert("event_code".into(), x.event_type.raw().into());
            m.insert("error_message".into(), hex::to_hex(&x.error_message).into());
        }
        Body::Raw(data) => {
            m.insert("data".into(), hex::to_hex(data).into());
        }
    }
    Value::Object(m)
}

/// `LOG log overflowed: N records lost between FIRST and LAST`.
pub fn overflow_text(l: &LogEvents, o: &Overflow) -> String {
    format!(
        "{} log overflowed: {} record{} lost between {} and {}",
        l.log,
        o.count,
        if o.count == 1 { "" } else { "s" },
        time_text(o.first),
        time_text(o.last)
    )
}

fn overflow_json(l: &LogEvents, o: &Overflow, place: &Place<'_>) -> Value {
    let mut m = line_head("overflow", l.log, place);
    m.insert("count".into(), o.count.into());
    m.insert("first_timestamp".into(), o.first.into());
    m.insert("first_time".into(), time_json(o.first));
    m.insert("last_timestamp".into(), o.last.into());
    m.insert("last_time".into(), time_json(o.last));
    Value::Object(m)
}

fn more_json(l: &LogEvents, place: &Place<'_>) -> Value {
    Value::Object(line_head("more", l.log, place))
}

#[cfg(test)]
#[path = "events_tests.rs"]
mod tests;
