// SPDX-License-Identifier: GPL-2.0

//! `swcci events`: the event records of every log of a switch, or of a component behind it
//! through tunnels (swcci-lib's `Cci::drain_events`, Documentation/events.rst), decoded: the
//! Common Event Record, and the switch's Physical Switch, Virtual CXL Switch and MLD Port
//! records; records of other types raw with their UUID. `--clear` clears what was shown.
//!
//! Output is line-oriented so that a follow mode can print each pass as it comes: one line per
//! record (text), or one JSON object per line (`--json`: `"kind": "record"`, `"overflow"`,
//! `"more"`), rendered by [`render`] from one [`Drained`] pass.

use crate::args::events::EventsArgs;
use crate::decode;
use crate::dev;
use crate::error::CliError;
use crate::hex;
use crate::output::Outcome;
use serde_json::{json, Map, Value};
use std::collections::HashSet;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};
use swcci::events::{Body, DrainOptions, Drained, Event, LogEvents, Overflow};
use swcci::mctp::AnyMailbox;
use swcci::{command_name, Target};
use swcci_proto::opcode;
use swcci_proto::payload::events::record_flag;

type Result<T> = std::result::Result<T, CliError>;

/// Runs `swcci events`.
pub fn run(a: &EventsArgs, json: bool) -> Result<Outcome> {
    let target = a.target.target();
    if a.clear && !a.yes {
        return Err(CliError::Refused(format!(
            "read and clear the event records of every log of the {target} on {} ({} and {})",
            a.dev,
            command_name(opcode::GET_EVENT_RECORDS),
            command_name(opcode::CLEAR_EVENT_RECORDS)
        )));
    }
    let dev = dev::open(&a.dev)?;
    let opts = DrainOptions {
        clear: a.clear,
        ..DrainOptions::default()
    };
    if a.follow {
        return follow(&dev, target, &opts, json);
    }
    let drained = dev.on(target).drain_events(&opts);
    let place = Place {
        node: dev.mailbox().path(),
        target,
    };
    let mut stdout = render(&drained, &place, json);
    if !json && drained.error.is_none() && stdout.is_empty() {
        stdout.push_str("no event records\n");
    }
    Ok(Outcome {
        stdout,
        warnings: Vec::new(),
        errors: drained.error.into_iter().map(CliError::Lib).collect(),
    })
}

/// How long `--follow` waits between reads when nothing signals events to this process.
pub const FOLLOW_INTERVAL: Duration = Duration::from_secs(1);

/// What `--follow` printed already: records by log, handle and timestamp (handles are reused
/// after a clear), and overflows.
#[derive(Default)]
struct Printed {
    records: HashSet<(u8, u16, u64)>,
    overflows: HashSet<(u8, u16, u64)>,
}

impl Printed {
    /// The part of `d` not printed yet, marked printed.
    fn fresh(&mut self, d: &Drained) -> Drained {
        let logs = d
            .logs
            .iter()
            .map(|l| {
                let mut fresh = l.clone();
                let mut kept = Vec::new();
                let mut cleared = 0;
                for (i, e) in l.events.iter().enumerate() {
                    if self
                        .records
                        .insert((l.log.raw(), e.header.handle, e.header.timestamp))
                    {
                        if i < l.cleared {
                            cleared += 1;
                        }
                        kept.push(e.clone());
                    }
                }
                fresh.events = kept;
                fresh.cleared = cleared;
                fresh.overflow = l
                    .overflow
                    .filter(|o| self.overflows.insert((l.log.raw(), o.count, o.first)));
                fresh.more = false;
                fresh
            })
            .collect();
        Drained {
            logs,
            absent: d.absent.clone(),
            error: None,
        }
    }
}

/// `--follow`: prints the records there are, then sleeps until there may be new ones and
/// prints those, until the device goes away (or a read fails, or Ctrl-C ends the process).
/// On a driver node's own CCI it sleeps in poll(2) for EPOLLPRI (the driver's event interrupt
/// or register check, Documentation/events.rst), using no CPU meanwhile, as long as the logs
/// are empty after its read (with `--clear`); while records stay in them, and on other
/// targets, it reads again every [`FOLLOW_INTERVAL`].
fn follow(dev: &AnyMailbox, target: Target, opts: &DrainOptions, json: bool) -> Result<Outcome> {
    let place = Place {
        node: dev.mailbox().path(),
        target,
    };
    let cci = dev.on(target);
    let mut printed = Printed::default();
    let mut out = std::io::stdout();
    loop {
        let drained = cci.drain_events(opts);
        let text = render(&printed.fresh(&drained), &place, json);
        if !text.is_empty() {
            // A closed pipe ends following like any other end of the output.
            if out
                .write_all(text.as_bytes())
                .and_then(|()| out.flush())
                .is_err()
            {
                return Ok(Outcome::default());
            }
        }
        if let Some(e) = drained.error {
            return Err(CliError::Lib(e));
        }
        // A switch signals a log going from empty to holding records (the event interrupt,
        // the Event Status register: CXL r3.1 §8.2.9.2.4, §8.2.8.3.1); while records this
        // process did not clear stay in a log, nothing signals the next one.
        let left = drained
            .logs
            .iter()
            .any(|l| l.more || l.events.len() > l.cleared);
        match (dev, target) {
            (AnyMailbox::Device(node), Target::Direct) => {
                let wait = if left {
                    FOLLOW_INTERVAL.as_millis() as i32
                } else {
                    -1
                };
                let ev = node.poll(libc::POLLPRI, wait)?;
                if ev & (libc::POLLHUP | libc::POLLERR) != 0 {
                    return Err(CliError::Exit {
                        code: crate::error::EXIT_OS,
                        message: format!(
                            "{} was unbound or stopped answering: following ends",
                            node.path().display()
                        ),
                    });
                }
            }
            _ => std::thread::sleep(FOLLOW_INTERVAL),
        }
    }
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
