// SPDX-License-Identifier: GPL-2.0

//! Event records of any target (the switch CCI, a component behind a port, an LD through two
//! tunnels): Get Event Records (0100h), Clear Event Records (0101h), Get and Set Event
//! Interrupt Policy (0102h, 0103h), CXL r3.1 §8.2.9.2, with the records decoded by the
//! protocol core (`swcci_proto::payload::events`: the Common Event Record and the switch's
//! Physical Switch, Virtual CXL Switch and MLD Port records of §7.6.8; other record types are
//! kept raw with their UUID).
//!
//! Get Event Records returns the oldest records of a log and keeps them: a log holding more
//! than one output carries shows the rest only after the first ones are cleared. So
//! [`Cci::drain_events`] reads each log once when it must not clear, and with
//! [`DrainOptions::clear`] reads, clears what it read by handle, and reads again while the
//! device reports More Event Records, as Linux's `cxl_mem_get_records_log`
//! (drivers/cxl/core/mbox.c) does. It returns what it read even when a later step fails, so
//! records that were cleared are never lost to an error: a caller prints [`Drained`] and then
//! reports [`Drained::error`].
//!
//! A follow loop is `loop { wait for the device; print(cci.drain_events(&opts)) }`: one
//! drain is one pass over the logs, independent of the one before.

use crate::cci::{Cci, Response};
use crate::proto::opcode;
use crate::proto::payload::events::{
    self, EventBody, EventRecords, CLEAR_EVENTS_HEADER_LEN, CLEAR_EVENTS_MAX_HANDLES,
    INTERRUPT_POLICY_DC_LEN,
};
use crate::proto::rc::ReturnCode;
use crate::{command_name, Error, Result};

pub use crate::proto::payload::events::{
    CommonHeader, EventLog, InterruptMode, InterruptPolicy, InterruptSetting, MldEventType,
    MldPortEvent, PhysicalEventType, PhysicalSwitchEvent, Severity, VirtualEventType,
    VirtualSwitchEvent,
};

/// Most records one drain takes from one log before it gives up on a device whose log does
/// not empty (a log holds at most 65535 handles).
pub const DRAIN_MAX_RECORDS: usize = 0x1_0000;

/// The data of an event record, decoded by its type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// A Physical Switch Event Record (CXL r3.1 §7.6.8.1).
    PhysicalSwitch(PhysicalSwitchEvent),
    /// A Virtual CXL Switch Event Record (CXL r3.1 §7.6.8.2).
    VirtualSwitch(VirtualSwitchEvent),
    /// An MLD Port Event Record (CXL r3.1 §7.6.8.3).
    MldPort(MldPortEvent),
    /// A record of a type not decoded here: its 80 data bytes (record bytes 30h-7Fh).
    Raw(Vec<u8>),
}

/// One event record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// The log it was read from.
    pub log: EventLog,
    /// The Common Event Record (UUID, length, flags, handle, related handle, timestamp,
    /// maintenance operation class).
    pub header: CommonHeader,
    /// The record's own data.
    pub body: Body,
}

impl Event {
    /// The record type's short name (`physical-switch`, `virtual-switch`, `mld-port`, or a
    /// memory device record's), `None` for a UUID the specification does not define.
    pub fn type_name(&self) -> Option<&'static str> {
        events::record_type_name(&self.header.uuid)
    }

    fn from_record(log: EventLog, r: &events::EventRecord<'_>) -> Self {
        let body = match r.body() {
            EventBody::PhysicalSwitch(p) => Body::PhysicalSwitch(p),
            EventBody::VirtualSwitch(v) => Body::VirtualSwitch(v),
            EventBody::MldPort(m) => Body::MldPort(m),
            EventBody::Other(data) => Body::Raw(data.to_vec()),
        };
        Self {
            log,
            header: r.header,
            body,
        }
    }
}

/// A log's overflow: records the device could not log (Get Event Records output, CXL r3.1
/// Table 8-53).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Overflow {
    /// Overflow Error Count: records lost.
    pub count: u16,
    /// First Overflow Event Timestamp, ns since the Unix epoch by the device's clock.
    pub first: u64,
    /// Last Overflow Event Timestamp, ns.
    pub last: u64,
}

/// One Get Event Records (0100h) output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventPage {
    /// The log.
    pub log: EventLog,
    /// Its oldest records, oldest first.
    pub events: Vec<Event>,
    /// The overflow, when the device reports one.
    pub overflow: Option<Overflow>,
    /// More Event Records: the log holds more records than this output carries.
    pub more: bool,
}

/// What one drain read of one log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEvents {
    /// The log.
    pub log: EventLog,
    /// The records read, oldest first.
    pub events: Vec<Event>,
    /// How many of them (the first ones) were cleared.
    pub cleared: usize,
    /// The overflow the device reported at the first read (clearing records ends it).
    pub overflow: Option<Overflow>,
    /// The log holds records that were not read: without clearing, more than one Get Event
    /// Records output carries (they show once these are cleared).
    pub more: bool,
}

/// Which logs a drain reads, and whether it clears what it read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DrainOptions {
    /// The logs, in the order they are read (default: all five, by number).
    pub logs: Vec<EventLog>,
    /// Clear every record read (Clear Event Records by handle), reading on while the device
    /// reports More Event Records.
    pub clear: bool,
}

impl Default for DrainOptions {
    fn default() -> Self {
        Self {
            logs: EventLog::ALL.to_vec(),
            clear: false,
        }
    }
}

/// What one pass over the logs found.
#[derive(Debug, Default)]
pub struct Drained {
    /// Each log read, in the order of [`DrainOptions::logs`] (up to the one that failed).
    pub logs: Vec<LogEvents>,
    /// Logs the target does not have: the Dynamic Capacity Event Log of a device that is not
    /// a Dynamic Capacity Device (its Get Event Records answers Invalid Input or Unsupported).
    pub absent: Vec<EventLog>,
    /// The error that ended the pass early; what was read (and cleared) before it is above.
    pub error: Option<Error>,
}

impl Drained {
    /// Every record read, log by log, oldest first in each, with whether it was cleared.
    pub fn events(&self) -> impl Iterator<Item = (&Event, bool)> {
        self.logs
            .iter()
            .flat_map(|l| l.events.iter().enumerate().map(|(i, e)| (e, i < l.cleared)))
    }

    /// Number of records cleared.
    pub fn cleared(&self) -> usize {
        self.logs.iter().map(|l| l.cleared).sum()
    }
}

impl Cci<'_> {
    /// The error of a refused event command, naming the log when the command itself (not a
    /// tunnel carrying it) refused: `Get Event Records (0100h) on /dev/cxl/switch0 (warning
    /// log): device returned ...`.
    fn event_error(&self, opcode: u16, log: Option<EventLog>, r: &Response) -> Error {
        let mut e = self.error_for(opcode, r);
        if let (Error::Device { op, .. }, Some(log)) = (&mut e, log) {
            if op.starts_with(&command_name(opcode)) {
                op.push_str(&format!(" ({log} log)"));
            }
        }
        e
    }

    /// Sends an event command that must succeed; returns its output.
    fn event_command(&self, opcode: u16, log: Option<EventLog>, input: &[u8]) -> Result<Vec<u8>> {
        let r = self.raw(opcode, input, self.payload_size()?)?;
        if !r.outer_rc.is_success() || !r.rc().is_success() {
            return Err(self.event_error(opcode, log, &r));
        }
        Ok(r.payload)
    }

    /// Get Event Records (0100h), CXL r3.1 §8.2.9.2.2: the oldest records of `log`, as many
    /// as the device puts in one output (the target's payload: 32 bytes of header and 128 per
    /// record). The records stay in the log until cleared.
    ///
    /// Errors: as every command ([`Cci`]); a refusal names the log.
    pub fn get_event_records(&self, log: EventLog) -> Result<EventPage> {
        let out = self.event_command(
            opcode::GET_EVENT_RECORDS,
            Some(log),
            &events::get_events_request(log.raw()),
        )?;
        let page = self.decoded(opcode::GET_EVENT_RECORDS, EventRecords::decode(&out))?;
        let h = page.header;
        Ok(EventPage {
            log,
            events: page.iter().map(|r| Event::from_record(log, &r)).collect(),
            overflow: h.overflow().then_some(Overflow {
                count: h.overflow_count,
                first: h.first_overflow,
                last: h.last_overflow,
            }),
            more: h.more(),
        })
    }

    /// Clear Event Records (0101h), CXL r3.1 §8.2.9.2.3: clears `handles` of `log`, oldest
    /// first as Get Event Records returned them, in as many commands as the target's payload
    /// needs (6 bytes and 2 per handle; at most 255 handles per command). The device refuses
    /// (Invalid Handle, 0Eh) handles that are not the log's oldest records in order, and
    /// clears none of that command's.
    ///
    /// Errors: as every command; a refusal names the log.
    pub fn clear_event_records(&self, log: EventLog, handles: &[u16]) -> Result<()> {
        let room = self.payload_size()?.saturating_sub(CLEAR_EVENTS_HEADER_LEN) / 2;
        let per = room.clamp(1, CLEAR_EVENTS_MAX_HANDLES);
        for chunk in handles.chunks(per) {
            let mut req = vec![0u8; CLEAR_EVENTS_HEADER_LEN + 2 * chunk.len()];
            let n = self.encoded(
                opcode::CLEAR_EVENT_RECORDS,
                events::clear_events_request(&mut req, log.raw(), chunk),
            )?;
            req.truncate(n);
            self.event_command(opcode::CLEAR_EVENT_RECORDS, Some(log), &req)?;
        }
        Ok(())
    }

    /// Clear Event Records (0101h) with Clear All Events: clears every record of `log`. The
    /// device allows it only after the log overflowed (Invalid Input otherwise, CXL r3.1
    /// §8.2.9.2.3).
    pub fn clear_all_event_records(&self, log: EventLog) -> Result<()> {
        self.event_command(
            opcode::CLEAR_EVENT_RECORDS,
            Some(log),
            &events::clear_all_events_request(log.raw()),
        )
        .map(|_| ())
    }

    /// Get Event Interrupt Policy (0102h), CXL r3.1 §8.2.9.2.4: each log's interrupt mode and
    /// message number (for MSI/MSI-X, the vector the device signals when the log goes from
    /// empty to holding records).
    pub fn event_interrupt_policy(&self) -> Result<InterruptPolicy> {
        let out = self.event_command(opcode::GET_EVENT_INTERRUPT_POLICY, None, &[])?;
        self.decoded(
            opcode::GET_EVENT_INTERRUPT_POLICY,
            InterruptPolicy::decode(&out),
        )
    }

    /// Set Event Interrupt Policy (0103h), CXL r3.1 §8.2.9.2.5: 4 bytes, or 5 with a Dynamic
    /// Capacity setting. For MSI/MSI-X the device chooses the message number (read it back
    /// with [`Self::event_interrupt_policy`]); for a firmware interrupt it takes the one given.
    pub fn set_event_interrupt_policy(&self, p: &InterruptPolicy) -> Result<()> {
        let mut buf = [0u8; INTERRUPT_POLICY_DC_LEN];
        let n = self.encoded(opcode::SET_EVENT_INTERRUPT_POLICY, p.encode(&mut buf))?;
        self.event_command(
            opcode::SET_EVENT_INTERRUPT_POLICY,
            None,
            buf.get(..n).unwrap_or(&[]),
        )
        .map(|_| ())
    }

    /// One pass over the logs of `opts`: reads each (and clears what it read, reading on while
    /// the device reports More Event Records, when [`DrainOptions::clear`] is set). Never
    /// fails as a whole: the first error ends the pass and is returned in [`Drained::error`]
    /// with everything read before it. A Dynamic Capacity Event Log the device does not have
    /// is listed in [`Drained::absent`], not an error.
    pub fn drain_events(&self, opts: &DrainOptions) -> Drained {
        let mut d = Drained::default();
        for &log in &opts.logs {
            let mut le = LogEvents {
                log,
                events: Vec::new(),
                cleared: 0,
                overflow: None,
                more: false,
            };
            let r = self.drain_log(&mut le, opts.clear);
            match r {
                Err(e)
                    if le.events.is_empty() && log == EventLog::DynamicCapacity && no_log(&e) =>
                {
                    d.absent.push(log);
                }
                Err(e) => {
                    d.logs.push(le);
                    d.error = Some(e);
                    return d;
                }
                Ok(()) => d.logs.push(le),
            }
        }
        d
    }

    /// Reads `le.log` into `le`, clearing when asked; on error `le` keeps what was read.
    fn drain_log(&self, le: &mut LogEvents, clear: bool) -> Result<()> {
        loop {
            let page = self.get_event_records(le.log)?;
            if le.events.is_empty() && le.overflow.is_none() {
                le.overflow = page.overflow;
            }
            if page.events.is_empty() {
                le.more = false;
                return Ok(());
            }
            if !clear {
                le.events = page.events;
                le.more = page.more;
                return Ok(());
            }
            let handles: Vec<u16> = page.events.iter().map(|e| e.header.handle).collect();
            le.events.extend(page.events);
            self.clear_event_records(le.log, &handles)?;
            le.cleared = le.events.len();
            if !page.more {
                return Ok(());
            }
            if le.events.len() >= DRAIN_MAX_RECORDS {
                le.more = true;
                return Err(Error::Missing {
                    op: format!(
                        "{} ({} log)",
                        self.op_code(opcode::GET_EVENT_RECORDS),
                        le.log
                    ),
                    what: "the log did not empty after 65536 records were read and cleared",
                });
            }
        }
    }
}

/// Whether `e` is a device's way of saying it has no such log: Invalid Input (02h) or
/// Unsupported (03h) from the command itself.
fn no_log(e: &Error) -> bool {
    matches!(e, Error::Device { op, rc: ReturnCode::InvalidInput | ReturnCode::Unsupported }
        if op.starts_with(&command_name(opcode::GET_EVENT_RECORDS)))
}

#[cfg(test)]
#[path = "events_tests.rs"]
mod tests;
