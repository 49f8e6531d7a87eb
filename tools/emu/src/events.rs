// SPDX-License-Identifier: GPL-2.0

//! Event logs (CXL r3.1 §8.2.9.2) of the switch CCI and of the devices behind its ports, and
//! the records the model produces. Pure logic, as the rest of the model: time is what the
//! last `tick` said. Payload layouts are those of `swcci_proto::payload::events`.
//!
//! The logs (the switch CCI and every device behind a port with firmware: type-3 devices and
//! the MLD's FM-owned LD; the MLD's other LDs and the dead device have none):
//! - Four logs: informational, warning, failure, fatal. There is no Dynamic Capacity Event
//!   Log: Get Event Records of log 04h (or a reserved value) answers Invalid Input (02h).
//! - Each log holds at most `event-log-cap` records (control setting, default 32, 1..=1024).
//!   A record that does not fit is dropped and counted: Overflow Error Count (saturating at
//!   FFFFh) and the first and last overflow timestamps, reported with the Overflow flag of Get
//!   Event Records until Clear Event Records removes one or more records of the log.
//! - Handles count up from 1 per log, skipping 0 when they wrap (a log holds at most 1024).
//! - Timestamps are nanoseconds since the Unix epoch: the wall clock when the emulator started
//!   plus the model's time.
//! - Get Event Records: input of 1 byte (else Invalid Payload Length); the log's oldest
//!   records, as many as fit the output (32 bytes and 128 per record: 15 with the default 2 KiB
//!   payload, fewer through a tunnel); More Event Records when the log holds more.
//! - Clear Event Records: an input that is not 6 + 2 * N bytes: Invalid Payload Length; a log
//!   above 03h: Invalid Input; Clear All Events: allowed while the log has overflowed and with
//!   N = 0 (Invalid Input otherwise); handles: they must be the log's N oldest, in order
//!   (CXL r3.1 §8.2.9.2.3: "in temporal order"); otherwise Invalid Handle (0Eh) and nothing is
//!   cleared. (QEMU answers Invalid Input there.)
//! - Event Interrupt Policy (the switch CCI only; the devices behind ports answer Unsupported):
//!   Get returns 5 bytes (the Dynamic Capacity byte 0). Set takes 4 or 5 bytes (else Invalid
//!   Payload Length); each log's mode may be none or MSI/MSI-X; the message number of an
//!   MSI/MSI-X setting is the device's, the `event-vector` setting (default 3), whatever the
//!   host writes there; the firmware-interrupt mode (the emulated function has no firmware
//!   first path), the reserved mode, reserved bits 3:2, or a Dynamic Capacity byte other than
//!   0: Invalid Input, nothing changes. A function reset sets every log back to no interrupts;
//!   records stay (like bindings, they are switch state).
//! - Interrupts: when a record enters a log that was empty and whose mode is MSI/MSI-X (the
//!   policy's interrupt is on the log's transition from no entries to one or more, CXL r3.1
//!   §8.2.9.2.4), MSI-X vector `event-vector` is signalled, unless the `no-event-irq` fault
//!   swallows it. Reading or clearing records signals nothing.
//! - Event Status register (Device Status registers, BAR0 0x100): bit N is set while log N
//!   holds records.
//!
//! What produces records (each in the log the specification names, with the severity of that
//! log in its header):
//! - Bind vPPB and Unbind vPPB completing: a Virtual CXL Switch Event Record (binding change,
//!   the vPPB's binding after it) in the Informational log; a bind or unbind stopped by Request
//!   Abort Background Operation or a function reset: the same, with the binding it went back
//!   to, in the Warning log (CXL r3.1 §7.6.8.2: failed binds and unbinds are warnings).
//! - `link P down` / `link P up` (control channel): a Physical Switch Event Record (link state
//!   change, the port's state after it) in the Warning log for down, Informational for up.
//! - `mld-error cor|nonfatal|fatal [N]` (control channel): N MLD Port Event Records for the
//!   MLD's port: correctable in the Warning log, the others in the Failure log (CXL r3.1
//!   §7.6.8.3). The error message is a PCIe Message TLP header: 30h 00h 00h 00h, requester ID
//!   (bus = the port, device and function 0), tag 00h, message code 30h (ERR_COR), 31h
//!   (ERR_NONFATAL) or 33h (ERR_FATAL).
//! - Firmware activation (the switch's: an online Activate FW completing, or the staged slot at
//!   a function reset; a device's behind a port: the same, or `reset-port`): a vendor-defined
//!   record, [`FW_ACTIVATION_UUID`], in the Informational log of the CCI whose firmware
//!   changed: data byte 0 (record 30h) the active slot, bytes 1-16 the revision as Get FW Info
//!   reports it (NUL-padded). Tools that do not know the UUID show it raw.

use std::collections::VecDeque;
use std::time::Duration;
use swcci_proto::opcode;
use swcci_proto::payload::events::{
    encode_event_records, encode_record, ClearEvents, CommonHeader, EventLog, GetEventsHeader,
    InterruptMode, InterruptPolicy, InterruptSetting, MldEventType, MldPortEvent,
    PhysicalEventType, PhysicalSwitchEvent, Severity, VirtualEventType, VirtualSwitchEvent,
    CLEAR_EVENTS_HEADER_LEN, EVENT_DATA_LEN, EVENT_RECORD_LEN, GET_EVENTS_HEADER_LEN,
    GET_EVENTS_MORE_RECORDS, GET_EVENTS_OVERFLOW, INTERRUPT_POLICY_DC_LEN, INTERRUPT_POLICY_LEN,
};
use swcci_proto::payload::logs::Uuid;
use swcci_proto::payload::switch::{PortInfo, VppbInfo};
use swcci_proto::rc::ReturnCode;
use swcci_proto::regs::EventStatus;

/// The emulator's vendor-defined Firmware Activation record:
/// 68297cbb-3bed-4182-a08a-a87ffb72c04d.
pub const FW_ACTIVATION_UUID: Uuid = Uuid::from_fields(
    0x6829_7cbb,
    0x3bed,
    0x4182,
    [0xa0, 0x8a, 0xa8, 0x7f, 0xfb, 0x72, 0xc0, 0x4d],
);
/// Default records per log.
pub const DEFAULT_CAP: usize = 32;
/// Most records per log (`event-log-cap`).
pub const MAX_CAP: usize = 1024;
/// Default MSI-X vector of the event interrupts.
pub const DEFAULT_VECTOR: u16 = 3;
/// The logs the model has (no Dynamic Capacity Event Log).
pub const LOGS: [EventLog; 4] = [
    EventLog::Informational,
    EventLog::Warning,
    EventLog::Failure,
    EventLog::Fatal,
];

/// Settings of the control channel, shared by every CCI's logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventSettings {
    /// Records per log, 1..=[`MAX_CAP`].
    pub cap: usize,
    /// MSI-X vector of the event interrupts (0..=15).
    pub vector: u16,
    /// Unix time of model time zero, ns.
    pub epoch_ns: u64,
}

impl Default for EventSettings {
    fn default() -> Self {
        Self {
            cap: DEFAULT_CAP,
            vector: DEFAULT_VECTOR,
            epoch_ns: 0,
        }
    }
}

/// Counters of one CCI's logs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventStats {
    /// Records logged.
    pub logged: u64,
    /// Records dropped because their log was full.
    pub dropped: u64,
    /// Records cleared.
    pub cleared: u64,
}

/// One log.
#[derive(Clone, Debug, Default)]
struct Log {
    records: VecDeque<[u8; EVENT_RECORD_LEN]>,
    last_handle: u16,
    overflow: u16,
    first_overflow: u64,
    last_overflow: u64,
}

impl Log {
    fn handle(r: &[u8; EVENT_RECORD_LEN]) -> u16 {
        let mut b = [0u8; 2];
        if let Some(h) = r.get(0x14..0x16) {
            b.copy_from_slice(h);
        }
        u16::from_le_bytes(b)
    }
}

/// What happened to the fabric, for the switch CCI's log (`Fabric::take_notices`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notice {
    /// A bind or unbind ended: the vPPB's binding after it; `failed`: it was stopped and went
    /// back.
    Binding {
        /// VCS id.
        vcs: u8,
        /// vPPB index.
        vppb: u8,
        /// The binding now.
        info: VppbInfo,
        /// It was stopped (aborted, reset) rather than completed.
        failed: bool,
    },
    /// A port's link went down or came up: its state now.
    Link {
        /// The port's state.
        port: PortInfo,
        /// The link is up.
        up: bool,
    },
}

/// The event logs of one CCI.
#[derive(Clone, Debug)]
pub struct EventLogs {
    logs: [Log; 4],
    policy: [InterruptSetting; 4],
    /// Settings (the device copies the control channel's into every CCI's logs).
    pub settings: EventSettings,
    /// Counters.
    pub stats: EventStats,
    /// Model time of the last tick.
    clock: Duration,
}

impl Default for EventLogs {
    fn default() -> Self {
        Self::new(EventSettings::default())
    }
}

impl EventLogs {
    /// Empty logs, interrupts off.
    pub fn new(settings: EventSettings) -> Self {
        Self {
            logs: Default::default(),
            policy: [InterruptSetting::NONE; 4],
            settings,
            stats: EventStats::default(),
            clock: Duration::ZERO,
        }
    }

    /// Advances the clock records are stamped with.
    pub fn tick(&mut self, now: Duration) {
        self.clock = self.clock.max(now);
    }

    /// Now, as a record timestamp: ns since the Unix epoch.
    pub fn timestamp(&self) -> u64 {
        let ns = u64::try_from(self.clock.as_nanos()).unwrap_or(u64::MAX);
        self.settings.epoch_ns.saturating_add(ns)
    }

    fn log_mut(&mut self, log: EventLog) -> Option<&mut Log> {
        self.logs.get_mut(usize::from(log.raw()))
    }

    /// Records in `log`.
    pub fn len(&self, log: EventLog) -> usize {
        self.logs
            .get(usize::from(log.raw()))
            .map_or(0, |l| l.records.len())
    }

    /// Overflow count of `log`.
    pub fn overflow(&self, log: EventLog) -> u16 {
        self.logs
            .get(usize::from(log.raw()))
            .map_or(0, |l| l.overflow)
    }

    /// Whether no log holds a record.
    pub fn is_empty(&self) -> bool {
        self.logs.iter().all(|l| l.records.is_empty())
    }

    /// The Event Status register.
    pub fn status(&self) -> EventStatus {
        let bits = LOGS
            .iter()
            .filter(|l| self.len(**l) > 0)
            .fold(0u32, |b, l| b | l.status_bit());
        EventStatus(bits)
    }

    /// The interrupt setting of `log` as Get Event Interrupt Policy reports it.
    pub fn setting(&self, log: EventLog) -> InterruptSetting {
        self.policy
            .get(usize::from(log.raw()))
            .copied()
            .unwrap_or_default()
    }

    /// Every log back to no interrupts (a function reset).
    pub fn reset_policy(&mut self) {
        self.policy = [InterruptSetting::NONE; 4];
    }

    /// Logs a record of type `uuid` with `data` in `log`, stamped now. Returns the MSI-X
    /// vector to signal when the log went from empty to holding a record and its policy says
    /// MSI/MSI-X; `None` otherwise, and when the record was dropped (the log is full: counted
    /// as an overflow).
    pub fn add(&mut self, log: EventLog, uuid: Uuid, data: &[u8; EVENT_DATA_LEN]) -> Option<u16> {
        let ts = self.timestamp();
        let cap = self.settings.cap.clamp(1, MAX_CAP);
        let vector = self.settings.vector;
        let setting = self.setting(log);
        let l = self.log_mut(log)?;
        if l.records.len() >= cap {
            if l.overflow == 0 {
                l.first_overflow = ts;
            }
            l.overflow = l.overflow.saturating_add(1);
            l.last_overflow = ts;
            self.stats.dropped = self.stats.dropped.saturating_add(1);
            return None;
        }
        l.last_handle = l.last_handle.wrapping_add(1).max(1);
        let header = CommonHeader {
            uuid,
            length: EVENT_RECORD_LEN as u8,
            flags: u32::from(Severity::of_log(log).raw()),
            handle: l.last_handle,
            timestamp: ts,
            ..CommonHeader::default()
        };
        let mut rec = [0u8; EVENT_RECORD_LEN];
        encode_record(&mut rec, &header, data).ok()?;
        let was_empty = l.records.is_empty();
        l.records.push_back(rec);
        self.stats.logged = self.stats.logged.saturating_add(1);
        (was_empty && setting.mode() == InterruptMode::MsiMsix).then_some(vector)
    }

    /// Get Event Records (0100h) and Clear Event Records (0101h) with an output of at most
    /// `room` bytes: the return code and output; `None` for other opcodes.
    pub fn exec(&mut self, op: u16, input: &[u8], room: usize) -> Option<(ReturnCode, Vec<u8>)> {
        match op {
            opcode::GET_EVENT_RECORDS => Some(self.get(input, room)),
            opcode::CLEAR_EVENT_RECORDS => Some((self.clear(input), Vec::new())),
            _ => None,
        }
    }

    fn get(&mut self, input: &[u8], room: usize) -> (ReturnCode, Vec<u8>) {
        let [raw] = input else {
            return (ReturnCode::InvalidPayloadLength, Vec::new());
        };
        let Some(log) = EventLog::from_raw(*raw).filter(|l| LOGS.contains(l)) else {
            return (ReturnCode::InvalidInput, Vec::new());
        };
        let Some(l) = self.logs.get(usize::from(log.raw())) else {
            return (ReturnCode::InvalidInput, Vec::new());
        };
        let fit = room.saturating_sub(GET_EVENTS_HEADER_LEN) / EVENT_RECORD_LEN;
        let records: Vec<[u8; EVENT_RECORD_LEN]> =
            l.records.iter().take(fit.min(0xffff)).copied().collect();
        let mut flags = 0;
        if l.overflow > 0 {
            flags |= GET_EVENTS_OVERFLOW;
        }
        if records.len() < l.records.len() {
            flags |= GET_EVENTS_MORE_RECORDS;
        }
        let header = GetEventsHeader {
            flags,
            overflow_count: l.overflow,
            first_overflow: if l.overflow > 0 { l.first_overflow } else { 0 },
            last_overflow: if l.overflow > 0 { l.last_overflow } else { 0 },
            count: u16::try_from(records.len()).unwrap_or(0),
        };
        let mut out = vec![0u8; GET_EVENTS_HEADER_LEN + records.len() * EVENT_RECORD_LEN];
        match encode_event_records(&mut out, &header, &records) {
            Ok(n) => {
                out.truncate(n);
                (ReturnCode::Success, out)
            }
            Err(_) => (ReturnCode::InternalError, Vec::new()),
        }
    }

    fn clear(&mut self, input: &[u8]) -> ReturnCode {
        let Ok(c) = ClearEvents::decode(input) else {
            return ReturnCode::InvalidPayloadLength;
        };
        if input.len() != CLEAR_EVENTS_HEADER_LEN + 2 * c.len() {
            return ReturnCode::InvalidPayloadLength;
        }
        let Some(log) = EventLog::from_raw(c.log).filter(|l| LOGS.contains(l)) else {
            return ReturnCode::InvalidInput;
        };
        let Some(l) = self.log_mut(log) else {
            return ReturnCode::InvalidInput;
        };
        if c.clear_all() {
            if l.overflow == 0 || !c.is_empty() {
                return ReturnCode::InvalidInput;
            }
            let n = l.records.len() as u64;
            l.records.clear();
            l.overflow = 0;
            self.stats.cleared = self.stats.cleared.saturating_add(n);
            return ReturnCode::Success;
        }
        let oldest = l.records.iter().map(Log::handle);
        let in_order = c.len() <= l.records.len()
            && c.handles()
                .zip(oldest)
                .all(|(want, have)| want != 0 && want == have);
        if !in_order {
            return ReturnCode::InvalidHandle;
        }
        l.records.drain(..c.len());
        if !c.is_empty() {
            l.overflow = 0;
        }
        self.stats.cleared = self.stats.cleared.saturating_add(c.len() as u64);
        ReturnCode::Success
    }

    /// Get Event Interrupt Policy (0102h) and Set Event Interrupt Policy (0103h) (the switch
    /// CCI's): the return code and output; `None` for other opcodes.
    pub fn policy_exec(&mut self, op: u16, input: &[u8]) -> Option<(ReturnCode, Vec<u8>)> {
        match op {
            opcode::GET_EVENT_INTERRUPT_POLICY if !input.is_empty() => {
                Some((ReturnCode::InvalidPayloadLength, Vec::new()))
            }
            opcode::GET_EVENT_INTERRUPT_POLICY => {
                let p = InterruptPolicy {
                    informational: self.setting(EventLog::Informational),
                    warning: self.setting(EventLog::Warning),
                    failure: self.setting(EventLog::Failure),
                    fatal: self.setting(EventLog::Fatal),
                    dynamic_capacity: Some(InterruptSetting::NONE),
                };
                let mut out = vec![0u8; INTERRUPT_POLICY_DC_LEN];
                Some(match p.encode(&mut out) {
                    Ok(n) => {
                        out.truncate(n);
                        (ReturnCode::Success, out)
                    }
                    Err(_) => (ReturnCode::InternalError, Vec::new()),
                })
            }
            opcode::SET_EVENT_INTERRUPT_POLICY => Some((self.set_policy(input), Vec::new())),
            _ => None,
        }
    }

    fn set_policy(&mut self, input: &[u8]) -> ReturnCode {
        if input.len() != INTERRUPT_POLICY_LEN && input.len() != INTERRUPT_POLICY_DC_LEN {
            return ReturnCode::InvalidPayloadLength;
        }
        let Ok(p) = InterruptPolicy::decode(input) else {
            return ReturnCode::InvalidPayloadLength;
        };
        if p.dynamic_capacity.is_some_and(|s| s.0 != 0) {
            return ReturnCode::InvalidInput;
        }
        let mut next = [InterruptSetting::NONE; 4];
        for (slot, log) in next.iter_mut().zip(LOGS) {
            let s = p.setting(log).unwrap_or_default();
            if s.reserved_bits() {
                return ReturnCode::InvalidInput;
            }
            *slot = match s.mode() {
                InterruptMode::None => InterruptSetting::NONE,
                InterruptMode::MsiMsix => {
                    let v = u8::try_from(self.settings.vector).unwrap_or(0);
                    InterruptSetting::new(InterruptMode::MsiMsix, v)
                }
                InterruptMode::Firmware | InterruptMode::Reserved => {
                    return ReturnCode::InvalidInput
                }
            };
        }
        self.policy = next;
        ReturnCode::Success
    }

    /// The vector a policy set to MSI/MSI-X now reports: follows a change of `event-vector`.
    pub fn set_settings(&mut self, s: EventSettings) {
        self.settings = s;
        let v = u8::try_from(s.vector).unwrap_or(0);
        for p in &mut self.policy {
            if p.mode() == InterruptMode::MsiMsix {
                *p = InterruptSetting::new(InterruptMode::MsiMsix, v);
            }
        }
    }

    /// `get events` of the control channel: records and overflow per log, the status register
    /// and the policy (`mode:vector` per log).
    pub fn describe(&self) -> String {
        let mut s = String::new();
        for log in LOGS {
            s.push_str(&format!("{}={} ", log.name(), self.len(log)));
        }
        for log in LOGS {
            s.push_str(&format!("{}-overflow={} ", log.name(), self.overflow(log)));
        }
        s.push_str(&format!("status={:#x} policy=", self.status().0));
        let p: Vec<String> = LOGS
            .iter()
            .map(|l| {
                let st = self.setting(*l);
                match st.mode() {
                    InterruptMode::MsiMsix => format!("msix:{}", st.msgnum()),
                    m => m.name().to_string(),
                }
            })
            .collect();
        s.push_str(&p.join(","));
        s
    }
}

/// The record of a vPPB's binding change: the log it goes to and its data.
pub fn binding_record(
    vcs: u8,
    vppb: u8,
    info: VppbInfo,
    failed: bool,
) -> (EventLog, [u8; EVENT_DATA_LEN]) {
    let e = VirtualSwitchEvent {
        vcs_id: vcs,
        vppb_id: vppb,
        event_type: VirtualEventType::BindingChange,
        binding: info.status,
        port_id: info.port,
        ld_id: info.ld,
        link_control: 0,
        slot_control: 0,
    };
    let log = if failed {
        EventLog::Warning
    } else {
        EventLog::Informational
    };
    (log, e.data())
}

/// The record of a port's link going down or up: the log and its data (`None` if the port's
/// state does not fit the record, which the model's never does).
pub fn link_record(port: PortInfo, up: bool) -> Option<(EventLog, [u8; EVENT_DATA_LEN])> {
    let e = PhysicalSwitchEvent {
        port_id: port.port_id,
        event_type: PhysicalEventType::LinkStateChange,
        slot_status: 0,
        port,
    };
    let log = if up {
        EventLog::Informational
    } else {
        EventLog::Warning
    };
    Some((log, e.data().ok()?))
}

/// The record of an error message of `kind` from the MLD on `port`: the log and its data.
pub fn mld_error_record(port: u8, kind: MldEventType) -> (EventLog, [u8; EVENT_DATA_LEN]) {
    let code = match kind {
        MldEventType::Correctable => 0x30,
        MldEventType::NonFatal => 0x31,
        _ => 0x33,
    };
    let e = MldPortEvent {
        event_type: kind,
        port_id: port,
        error_message: [0x30, 0, 0, 0, port, 0, 0, code],
    };
    (e.log(), e.data())
}

/// The vendor-defined Firmware Activation record's data: the active slot and its revision.
pub fn fw_activation_record(slot: u8, revision: &str) -> [u8; EVENT_DATA_LEN] {
    let mut data = [0u8; EVENT_DATA_LEN];
    data[0] = slot;
    for (d, b) in data.iter_mut().skip(1).zip(revision.bytes().take(16)) {
        *d = b;
    }
    data
}

#[cfg(test)]
mod tests {
    use super::*;
    use swcci_proto::payload::events::{
        clear_all_events_request, clear_events_request, get_events_request, EventBody,
        EventRecords, MLD_PORT_EVENT_UUID, VIRTUAL_SWITCH_EVENT_UUID,
    };
    use swcci_proto::payload::switch::BindingStatus;

    fn get(e: &mut EventLogs, log: EventLog, room: usize) -> (ReturnCode, Vec<u8>) {
        e.exec(
            opcode::GET_EVENT_RECORDS,
            &get_events_request(log.raw()),
            room,
        )
        .unwrap()
    }

    fn clear(e: &mut EventLogs, log: EventLog, handles: &[u16]) -> ReturnCode {
        let mut b = vec![0u8; 6 + 2 * handles.len()];
        clear_events_request(&mut b, log.raw(), handles).unwrap();
        e.exec(opcode::CLEAR_EVENT_RECORDS, &b, 2048).unwrap().0
    }

    fn bound(port: u8) -> VppbInfo {
        VppbInfo {
            status: BindingStatus::BoundPort,
            port,
            ld: 0,
        }
    }

    #[test]
    fn records_are_kept_until_cleared_in_order() {
        let mut e = EventLogs::new(EventSettings {
            epoch_ns: 1_000,
            ..EventSettings::default()
        });
        e.tick(Duration::from_micros(5));
        for p in 0..3 {
            let (log, data) = binding_record(0, p, bound(p + 1), false);
            assert_eq!(e.add(log, VIRTUAL_SWITCH_EVENT_UUID, &data), None);
        }
        assert_eq!(e.status().0, 1);
        // 2 records fit a 288-byte output.
        let (rc, out) = get(&mut e, EventLog::Informational, 32 + 2 * 128);
        assert_eq!(rc, ReturnCode::Success);
        let r = EventRecords::decode(&out).unwrap();
        assert!(r.header.more() && !r.header.overflow());
        let recs: Vec<_> = r.iter().collect();
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].header.handle, 1);
        assert_eq!(recs[0].header.timestamp, 6_000);
        assert_eq!(recs[0].header.severity(), Severity::Informational);
        let EventBody::VirtualSwitch(v) = recs[1].body() else {
            panic!()
        };
        assert_eq!((v.vppb_id, v.port_id), (1, 2));
        // Reading again gives the same records.
        assert_eq!(get(&mut e, EventLog::Informational, 288).1, out);
        // Out of order, or a handle not there: nothing cleared.
        assert_eq!(
            clear(&mut e, EventLog::Informational, &[2]),
            ReturnCode::InvalidHandle
        );
        assert_eq!(
            clear(&mut e, EventLog::Informational, &[1, 2, 3, 4]),
            ReturnCode::InvalidHandle
        );
        assert_eq!(
            clear(&mut e, EventLog::Informational, &[0]),
            ReturnCode::InvalidHandle
        );
        assert_eq!(e.len(EventLog::Informational), 3);
        assert_eq!(
            clear(&mut e, EventLog::Informational, &[1, 2]),
            ReturnCode::Success
        );
        let (_, out) = get(&mut e, EventLog::Informational, 2048);
        let r = EventRecords::decode(&out).unwrap();
        assert!(!r.header.more());
        assert_eq!(r.iter().map(|r| r.header.handle).collect::<Vec<_>>(), [3]);
        assert_eq!(
            clear(&mut e, EventLog::Informational, &[3]),
            ReturnCode::Success
        );
        assert!(e.is_empty());
        assert_eq!(e.status().0, 0);
        assert_eq!(e.stats.cleared, 3);
        // Bad inputs.
        let x = |e: &mut EventLogs, op, i: &[u8]| e.exec(op, i, 2048).unwrap().0;
        assert_eq!(
            x(&mut e, opcode::GET_EVENT_RECORDS, &[4]),
            ReturnCode::InvalidInput
        );
        assert_eq!(
            x(&mut e, opcode::GET_EVENT_RECORDS, &[]),
            ReturnCode::InvalidPayloadLength
        );
        assert_eq!(
            x(&mut e, opcode::CLEAR_EVENT_RECORDS, &[0, 0, 1, 0, 0, 0]),
            ReturnCode::InvalidPayloadLength
        );
        assert_eq!(
            x(&mut e, opcode::CLEAR_EVENT_RECORDS, &[0, 0, 0, 0, 0, 0, 9]),
            ReturnCode::InvalidPayloadLength
        );
        assert_eq!(
            x(&mut e, opcode::CLEAR_EVENT_RECORDS, &[5, 0, 0, 0, 0, 0]),
            ReturnCode::InvalidInput
        );
        assert_eq!(e.exec(opcode::IDENTIFY, &[], 2048), None);
    }

    #[test]
    fn a_full_log_overflows_until_cleared() {
        let mut e = EventLogs::new(EventSettings {
            cap: 2,
            ..EventSettings::default()
        });
        let (log, data) = mld_error_record(3, MldEventType::Correctable);
        assert_eq!(log, EventLog::Warning);
        for ms in 1..=5 {
            e.tick(Duration::from_millis(ms));
            e.add(log, MLD_PORT_EVENT_UUID, &data);
        }
        assert_eq!((e.len(log), e.overflow(log)), (2, 3));
        assert_eq!(e.stats.dropped, 3);
        let (_, out) = get(&mut e, log, 2048);
        let r = EventRecords::decode(&out).unwrap();
        assert!(r.header.overflow() && !r.header.more());
        assert_eq!(r.header.overflow_count, 3);
        assert_eq!(
            (r.header.first_overflow, r.header.last_overflow),
            (3_000_000, 5_000_000)
        );
        // Clear All Events: only after an overflow, without handles.
        assert_eq!(
            e.exec(opcode::CLEAR_EVENT_RECORDS, &[1, 1, 1, 0, 0, 0, 1, 0], 2048)
                .unwrap()
                .0,
            ReturnCode::InvalidInput
        );
        assert_eq!(
            e.exec(
                opcode::CLEAR_EVENT_RECORDS,
                &clear_all_events_request(1),
                2048
            )
            .unwrap()
            .0,
            ReturnCode::Success
        );
        assert_eq!((e.len(log), e.overflow(log)), (0, 0));
        assert_eq!(
            e.exec(
                opcode::CLEAR_EVENT_RECORDS,
                &clear_all_events_request(1),
                2048
            )
            .unwrap()
            .0,
            ReturnCode::InvalidInput
        );
        // Clearing one record ends an overflow too.
        for _ in 0..3 {
            e.add(log, MLD_PORT_EVENT_UUID, &data);
        }
        assert_eq!(e.overflow(log), 1);
        let first = EventRecords::decode(&get(&mut e, log, 2048).1)
            .unwrap()
            .iter()
            .next()
            .unwrap()
            .header
            .handle;
        assert_eq!(clear(&mut e, log, &[first]), ReturnCode::Success);
        assert_eq!(e.overflow(log), 0);
    }

    #[test]
    fn interrupt_on_the_empty_to_nonempty_transition_only() {
        let mut e = EventLogs::default();
        let (log, data) = binding_record(0, 0, bound(1), true);
        assert_eq!(log, EventLog::Warning);
        // No policy: no interrupt.
        assert_eq!(e.add(log, VIRTUAL_SWITCH_EVENT_UUID, &data), None);
        let h = e.exec(opcode::GET_EVENT_RECORDS, &[1], 2048).unwrap().1;
        let h = EventRecords::decode(&h)
            .unwrap()
            .iter()
            .next()
            .unwrap()
            .header
            .handle;
        assert_eq!(clear(&mut e, log, &[h]), ReturnCode::Success);
        // MSI/MSI-X on the warning log: the host's message number is ignored.
        let set = |e: &mut EventLogs, i: &[u8]| {
            e.policy_exec(opcode::SET_EVENT_INTERRUPT_POLICY, i)
                .unwrap()
                .0
        };
        assert_eq!(set(&mut e, &[0, 0xf1, 0, 0]), ReturnCode::Success);
        let (rc, out) = e
            .policy_exec(opcode::GET_EVENT_INTERRUPT_POLICY, &[])
            .unwrap();
        assert_eq!((rc, out), (ReturnCode::Success, vec![0, 0x31, 0, 0, 0]));
        assert_eq!(e.add(log, VIRTUAL_SWITCH_EVENT_UUID, &data), Some(3));
        assert_eq!(e.add(log, VIRTUAL_SWITCH_EVENT_UUID, &data), None);
        assert_eq!(
            e.add(EventLog::Informational, VIRTUAL_SWITCH_EVENT_UUID, &data),
            None
        );
        // The vector follows the setting.
        e.set_settings(EventSettings {
            vector: 5,
            ..e.settings
        });
        assert_eq!(e.setting(EventLog::Warning).msgnum(), 5);
        // Refused settings change nothing.
        for bad in [
            &[0, 2, 0, 0][..],
            &[3, 0, 0, 0],
            &[4, 0, 0, 0],
            &[0, 0, 0, 0, 1],
        ] {
            assert_eq!(set(&mut e, bad), ReturnCode::InvalidInput, "{bad:?}");
        }
        for bad in [&[0u8; 3][..], &[0; 6]] {
            assert_eq!(set(&mut e, bad), ReturnCode::InvalidPayloadLength);
        }
        assert_eq!(
            e.policy_exec(opcode::GET_EVENT_INTERRUPT_POLICY, &[0])
                .unwrap()
                .0,
            ReturnCode::InvalidPayloadLength
        );
        assert_eq!(e.setting(EventLog::Warning).mode(), InterruptMode::MsiMsix);
        assert!(
            e.describe().contains("policy=none,msix:5,none,none"),
            "{}",
            e.describe()
        );
        e.reset_policy();
        assert_eq!(e.setting(EventLog::Warning), InterruptSetting::NONE);
        assert_eq!(set(&mut e, &[1, 1, 1, 1, 0]), ReturnCode::Success);
    }

    #[test]
    fn record_builders() {
        let d = fw_activation_record(2, "swcci-t3 2.0 and more");
        assert_eq!(d[0], 2);
        assert_eq!(&d[1..17], b"swcci-t3 2.0 and");
        assert!(d[17..].iter().all(|b| *b == 0));
        let (log, d) = mld_error_record(3, MldEventType::Fatal);
        assert_eq!(log, EventLog::Failure);
        assert_eq!(&d[..12], &[2, 3, 0, 0, 0x30, 0, 0, 0, 3, 0, 0, 0x33]);
        assert_eq!(
            FW_ACTIVATION_UUID.to_string(),
            "68297cbb-3bed-4182-a08a-a87ffb72c04d"
        );
    }
}
