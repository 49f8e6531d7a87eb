// SPDX-License-Identifier: GPL-2.0

//! Event records against the simulated switch (`crate::sim`): reading without and with
//! clearing, paging with More Event Records, overflow, tunnels, the interrupt policy, and the
//! errors of a device that refuses or misbehaves.

use super::*;
use crate::cci::Target;
use crate::sim::{SimDev, SimSwitch};
use crate::Mailbox;

const INFO: usize = 0;
const WARN: usize = 1;

fn switch_with_events() -> SimSwitch {
    let s = SimSwitch::new(0x1234);
    {
        let mut e = s.events.lock().unwrap();
        e.add_vcs(INFO, 0, 2, 3, 3, 1);
        e.add_vcs(INFO, 0, 2, 0, 0, 0);
        e.add_raw(INFO);
        e.add_vcs(WARN, 0, 1, 2, 4, 0);
    }
    s
}

fn opcodes(s: &SimSwitch) -> Vec<u16> {
    s.opcodes()
}

#[test]
fn drain_without_clear_reads_each_log_once_and_keeps_the_records() {
    let mut s = switch_with_events();
    s.payload = 2048;
    let cci = Cci::new(&s, Target::Direct);
    let d = cci.drain_events(&DrainOptions::default());
    assert!(d.error.is_none(), "{:?}", d.error);
    assert_eq!(d.absent, [EventLog::DynamicCapacity]);
    assert_eq!(d.logs.len(), 4);
    let info = &d.logs[0];
    assert_eq!(info.log, EventLog::Informational);
    assert_eq!((info.events.len(), info.cleared, info.more), (3, 0, false));
    let Body::VirtualSwitch(v) = &info.events[0].body else {
        panic!("{:?}", info.events[0])
    };
    assert_eq!((v.vcs_id, v.vppb_id, v.port_id, v.ld_id), (0, 2, 3, 1));
    assert_eq!(
        v.binding,
        crate::proto::payload::switch::BindingStatus::BoundLd
    );
    assert_eq!(info.events[0].type_name(), Some("virtual-switch"));
    assert_eq!(info.events[0].header.handle, 1);
    // The unknown record: raw, with its UUID.
    let raw = &info.events[2];
    assert_eq!(raw.type_name(), None);
    assert_eq!(raw.header.uuid.0, [0xab; 16]);
    let Body::Raw(data) = &raw.body else {
        panic!("{raw:?}")
    };
    assert_eq!(data.len(), 80);
    assert_eq!(data[79], 79);
    assert_eq!(d.logs[1].events[0].header.severity(), Severity::Warning);
    assert_eq!(d.events().count(), 4);
    assert_eq!(d.cleared(), 0);
    // Nothing was cleared: one Get Event Records per log, five logs.
    assert_eq!(opcodes(&s), vec![opcode::GET_EVENT_RECORDS; 5]);
    assert_eq!(s.events.lock().unwrap().handles(INFO), [1, 2, 3]);
}

#[test]
fn drain_without_clear_says_when_more_records_wait() {
    // 256-byte payload: one record per output.
    let s = switch_with_events();
    let cci = Cci::new(&s, Target::Direct);
    let d = cci.drain_events(&DrainOptions {
        logs: vec![EventLog::Informational],
        clear: false,
    });
    let info = &d.logs[0];
    assert_eq!(info.events.len(), 1);
    assert!(info.more);
    assert_eq!(s.events.lock().unwrap().handles(INFO), [1, 2, 3]);
}

#[test]
fn drain_with_clear_pages_until_the_log_is_empty() {
    let s = switch_with_events();
    let cci = Cci::new(&s, Target::Direct);
    let d = cci.drain_events(&DrainOptions {
        logs: vec![EventLog::Informational, EventLog::Warning],
        clear: true,
    });
    assert!(d.error.is_none(), "{:?}", d.error);
    let handles: Vec<u16> = d.logs[0].events.iter().map(|e| e.header.handle).collect();
    assert_eq!(handles, [1, 2, 3]);
    assert_eq!((d.logs[0].cleared, d.logs[0].more), (3, false));
    assert_eq!(d.cleared(), 4);
    assert!(d.events().all(|(_, cleared)| cleared));
    let e = s.events.lock().unwrap();
    assert!(e.logs.iter().all(Vec::is_empty));
    drop(e);
    // One record per output: get and clear three times, then the warning log once.
    use opcode::{CLEAR_EVENT_RECORDS as C, GET_EVENT_RECORDS as G};
    assert_eq!(opcodes(&s), [G, C, G, C, G, C, G, C]);
}

#[test]
fn overflow_is_reported_and_ends_with_the_clear() {
    let s = switch_with_events();
    s.events.lock().unwrap().overflow[WARN] = 7;
    let cci = Cci::new(&s, Target::Direct);
    let page = cci.get_event_records(EventLog::Warning).unwrap();
    assert_eq!(
        page.overflow,
        Some(Overflow {
            count: 7,
            first: 11,
            last: 22
        })
    );
    let d = cci.drain_events(&DrainOptions {
        logs: vec![EventLog::Warning],
        clear: true,
    });
    assert_eq!(d.logs[0].overflow.map(|o| o.count), Some(7));
    assert_eq!(
        cci.get_event_records(EventLog::Warning).unwrap().overflow,
        None
    );
}

#[test]
fn a_failed_clear_keeps_what_was_read() {
    let s = switch_with_events();
    s.events.lock().unwrap().clear_rc = Some(ReturnCode::InvalidHandle);
    let cci = Cci::new(&s, Target::Direct);
    let d = cci.drain_events(&DrainOptions {
        logs: vec![EventLog::Informational, EventLog::Warning],
        clear: true,
    });
    let e = d.error.as_ref().unwrap();
    assert_eq!(
        e.to_string(),
        "Clear Event Records (0101h) on /dev/cxl/switch0 (informational log): device returned \
         invalid handle (0eh)"
    );
    assert_eq!(d.logs.len(), 1);
    assert_eq!((d.logs[0].events.len(), d.logs[0].cleared), (1, 0));
    assert!(d.events().all(|(_, cleared)| !cleared));
}

#[test]
fn a_log_that_never_empties_is_malformed() {
    let mut s = switch_with_events();
    s.payload = 2048;
    s.events.lock().unwrap().sticky = true;
    let cci = Cci::new(&s, Target::Direct);
    let d = cci.drain_events(&DrainOptions {
        logs: vec![EventLog::Informational],
        clear: true,
    });
    let e = d.error.as_ref().unwrap();
    assert!(e.is_malformed(), "{e}");
    assert!(
        e.to_string()
            .contains("Get Event Records (0100h) on /dev/cxl/switch0 (informational log)"),
        "{e}"
    );
    assert!(d.logs[0].events.len() >= DRAIN_MAX_RECORDS);
    assert!(d.logs[0].more);
}

#[test]
fn a_device_without_events_is_an_error_naming_the_command() {
    let s = SimSwitch::new(1);
    let cci = Cci::new(&s, Target::Port(3));
    // The type-3 device behind port 3 has (empty) logs; the one behind port 0 gets records.
    s.dev_events
        .lock()
        .unwrap()
        .entry(0x103)
        .or_default()
        .add_vcs(INFO, 1, 1, 0, 0, 0);
    let d = cci.drain_events(&DrainOptions::default());
    assert!(d.error.is_none(), "{:?}", d.error);
    assert_eq!(d.events().count(), 0);
    let d = Cci::new(&s, Target::Port(0)).drain_events(&DrainOptions {
        logs: EventLog::ALL.to_vec(),
        clear: true,
    });
    assert!(d.error.is_none(), "{:?}", d.error);
    assert_eq!(d.cleared(), 1);
    assert_eq!(d.absent, [EventLog::DynamicCapacity]);
    assert!(s.dev_events.lock().unwrap()[&0x103].logs[INFO].is_empty());
    // An empty port: the tunnel itself fails, named as such.
    let d = Cci::new(&s, Target::Port(1)).drain_events(&DrainOptions::default());
    let e = d.error.unwrap();
    assert_eq!(
        e.to_string(),
        "Tunnel Management Command (5300h) to port 1 on /dev/cxl/switch0: device returned \
         invalid input (02h)"
    );
    // A device that implements no event commands.
    let mut s = SimSwitch::new(1);
    s.ports[1].dev = Some(SimDev::Mld(0x200, 2));
    let d = Cci::new(&s, Target::PortLd(1, 0)).drain_events(&DrainOptions::default());
    assert_eq!(
        d.error.unwrap().to_string(),
        "Get Event Records (0100h) via port 1 LD 0 on /dev/cxl/switch0 (informational log): \
         device returned unsupported (03h)"
    );
}

#[test]
fn clears_in_as_many_commands_as_the_payload_needs() {
    let mut s = SimSwitch::new(1);
    s.payload = 2048;
    {
        let mut e = s.events.lock().unwrap();
        for _ in 0..300 {
            e.add_raw(INFO);
        }
    }
    let cci = Cci::new(&s, Target::Direct);
    let handles: Vec<u16> = (1..=300).collect();
    cci.clear_event_records(EventLog::Informational, &handles)
        .unwrap();
    let sent = s.sent.lock().unwrap();
    let counts: Vec<u8> = sent.iter().map(|(_, i)| i[2]).collect();
    assert_eq!(counts, [255, 45]);
    assert_eq!(sent[1].1.len(), 6 + 2 * 45);
    assert_eq!(&sent[1].1[6..8], &256u16.to_le_bytes());
    drop(sent);
    assert!(s.events.lock().unwrap().logs[INFO].is_empty());
    // Handles that are not the oldest: refused, named.
    s.events.lock().unwrap().add_raw(INFO);
    let e = cci
        .clear_event_records(EventLog::Informational, &[999])
        .unwrap_err();
    assert_eq!(e.rc(), Some(ReturnCode::InvalidHandle));
}

#[test]
fn interrupt_policy_round_trip() {
    let s = SimSwitch::new(1);
    let cci = Cci::new(&s, Target::Direct);
    let p = InterruptPolicy::default()
        .with(
            EventLog::Warning,
            InterruptSetting::new(InterruptMode::MsiMsix, 3),
        )
        .with(
            EventLog::Fatal,
            InterruptSetting::new(InterruptMode::Firmware, 9),
        );
    cci.set_event_interrupt_policy(&p).unwrap();
    assert_eq!(s.sent.lock().unwrap()[0].1, [0, 0x31, 0, 0x92]);
    let got = cci.event_interrupt_policy().unwrap();
    assert_eq!(
        got.warning,
        InterruptSetting::new(InterruptMode::MsiMsix, 3)
    );
    assert_eq!(got.fatal.mode(), InterruptMode::Firmware);
    assert_eq!(got.dynamic_capacity, Some(InterruptSetting::NONE));
    // Five bytes with a Dynamic Capacity setting.
    cci.set_event_interrupt_policy(&p.with(EventLog::DynamicCapacity, InterruptSetting::NONE))
        .unwrap();
    assert_eq!(s.sent.lock().unwrap()[2].1.len(), 5);
    assert_eq!(s.payload_size().unwrap(), 256);
}

#[test]
fn malformed_outputs_name_the_field() {
    // A Get Event Records output announcing two records and carrying one.
    let mut out = vec![0u8; 32];
    out[0x14] = 2;
    out.extend_from_slice(&[0u8; 128]);
    struct Canned(Vec<u8>, std::path::PathBuf);
    impl Mailbox for Canned {
        fn send(&self, _: u16, _: &[u8], n: usize) -> Result<crate::RawResponse> {
            let mut out = self.0.clone();
            out.truncate(n);
            Ok(crate::RawResponse {
                rc: ReturnCode::Success,
                out,
            })
        }
        fn payload_size(&self) -> Result<usize> {
            Ok(2048)
        }
        fn path(&self) -> &std::path::Path {
            &self.1
        }
    }
    let c = Canned(out, "/dev/cxl/switch0".into());
    let e = Cci::new(&c, Target::Direct)
        .get_event_records(EventLog::Fatal)
        .unwrap_err();
    assert!(e.is_malformed());
    assert!(e.to_string().contains("field `event records`"), "{e}");
    let c = Canned(vec![1, 2, 3], "/dev/cxl/switch0".into());
    let e = Cci::new(&c, Target::Direct)
        .event_interrupt_policy()
        .unwrap_err();
    assert!(
        e.to_string().contains("fatal_event_log_interrupt_settings"),
        "{e}"
    );
}
