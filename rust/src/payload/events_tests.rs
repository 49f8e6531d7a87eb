// SPDX-License-Identifier: GPL-2.0

//! Event payload tests with byte vectors written out in the specification's layouts (CXL r3.1
//! §8.2.9.2, §7.6.8), independently of the encoders.

extern crate std;

use super::*;
use crate::payload::switch::{BindingStatus, ConnectedMode, ConnectedType, Ltssm};
use std::string::ToString;
use std::vec::Vec;

/// A Virtual CXL Switch Event Record as a switch logs it after binding VCS 0 vPPB 2 to LD 1 of
/// port 3: handle 7, related handle 0, timestamp 0x1122334455667788, informational.
fn vcs_record() -> [u8; EVENT_RECORD_LEN] {
    let mut b = [0u8; EVENT_RECORD_LEN];
    b[..16].copy_from_slice(&[
        0x40, 0xd2, 0x64, 0x25, 0x33, 0x96, 0x4c, 0x4d, 0xa5, 0xda, 0x3d, 0x47, 0x26, 0x3a, 0xf4,
        0x25,
    ]);
    b[0x10] = 0x80; // length
    b[0x11] = 0b0000_1000; // informational, maintenance needed
    b[0x14] = 7; // handle
    b[0x18..0x20].copy_from_slice(&0x1122_3344_5566_7788u64.to_le_bytes());
    b[0x20] = 2; // maintenance operation class
    b[0x30] = 0; // VCS
    b[0x31] = 2; // vPPB
    b[0x32] = 0; // binding change
    b[0x33] = 3; // bound to an LD
    b[0x34] = 3; // port
    b[0x35] = 1; // LD
    b[0x36] = 0x40; // link control
    b[0x39] = 0x10; // slot control, high byte
    b
}

/// A Physical Switch Event Record: port 4's link went down (warning).
fn phys_record() -> [u8; EVENT_RECORD_LEN] {
    let mut b = [0u8; EVENT_RECORD_LEN];
    b[..16].copy_from_slice(&PHYSICAL_SWITCH_EVENT_UUID.0);
    b[0x10] = 0x80;
    b[0x11] = 1; // warning
    b[0x14] = 1;
    b[0x16] = 0x34; // related handle 1234h
    b[0x17] = 0x12;
    b[0x30] = 4; // port
    b[0x31] = 0; // link state change
    b[0x32] = 0x08; // slot status: presence detect changed
    b[0x35] = 0xf3; // reserved high bits set, DSP
    b[0x36] = 0x00; // not CXL
    b[0x38] = 4; // SLD
    b[0x39] = 0x06;
    b[0x3a] = 0xc8; // reserved bits above x8
    b[0x3b] = 0;
    b[0x3c] = 0x1f;
    b[0x3d] = 5;
    b[0x3e] = 0;
    b[0x3f] = 0; // detect
    b[0x40] = 0;
    b[0x41] = 0x02; // PERST# asserted
    b
}

#[test]
fn common_header_fields() {
    let rec = vcs_record();
    let h = CommonHeader::decode(&rec).unwrap();
    assert_eq!(h.uuid, VIRTUAL_SWITCH_EVENT_UUID);
    assert_eq!(h.uuid.to_string(), "40d26425-3396-4c4d-a5da-3d47263af425");
    assert_eq!(h.length, 0x80);
    assert_eq!(h.severity(), Severity::Informational);
    assert_eq!(h.flag_bits(), record_flag::MAINTENANCE_NEEDED);
    assert_eq!((h.handle, h.related_handle), (7, 0));
    assert_eq!(h.timestamp, 0x1122_3344_5566_7788);
    assert_eq!(h.maint_op_class, 2);
    // Encoding gives the same 30h bytes.
    let mut out = [0u8; COMMON_HEADER_LEN];
    h.encode(&mut Writer::new(&mut out)).unwrap();
    assert_eq!(out[..], rec[..COMMON_HEADER_LEN]);
    // Flags are 24 bits.
    let wide = CommonHeader {
        flags: 1 << 24,
        ..h
    };
    assert!(wide.encode(&mut Writer::new(&mut out)).is_err());
    for len in 0..COMMON_HEADER_LEN {
        assert!(CommonHeader::decode(&rec[..len]).is_err(), "{len}");
    }
    assert!(matches!(
        CommonHeader::decode(&rec[..0x18]),
        Err(DecodeError::Truncated {
            field: "event_record_timestamp",
            ..
        })
    ));
}

#[test]
fn severities_and_logs() {
    for (flags, s) in [
        (0, Severity::Informational),
        (1, Severity::Warning),
        (2, Severity::Failure),
        (0xff_ff03, Severity::Fatal),
    ] {
        assert_eq!(Severity::from_flags(flags), s);
        assert_eq!(u32::from(s.raw()), flags & 3);
    }
    for (i, log) in EventLog::ALL.iter().enumerate() {
        assert_eq!(usize::from(log.raw()), i);
        assert_eq!(EventLog::from_raw(log.raw()), Some(*log));
        assert_eq!(log.status_bit(), 1 << i);
    }
    assert_eq!(EventLog::from_raw(5), None);
    assert_eq!(EventLog::Failure.to_string(), "failure");
    assert_eq!(
        Severity::of_log(EventLog::DynamicCapacity),
        Severity::Informational
    );
}

#[test]
fn virtual_switch_record() {
    let rec = vcs_record();
    let r = EventRecord::decode(&rec).unwrap();
    let EventBody::VirtualSwitch(v) = r.body() else {
        panic!("{:?}", r.body())
    };
    assert_eq!((v.vcs_id, v.vppb_id), (0, 2));
    assert_eq!(v.event_type, VirtualEventType::BindingChange);
    assert_eq!(v.binding, BindingStatus::BoundLd);
    assert_eq!((v.port_id, v.ld_id), (3, 1));
    assert_eq!((v.link_control, v.slot_control), (0x40, 0x1000));
    assert_eq!(v.data()[..], rec[COMMON_HEADER_LEN..]);
    let mut out = [0u8; EVENT_RECORD_LEN];
    assert_eq!(
        encode_record(&mut out, &r.header, &v.data()),
        Ok(EVENT_RECORD_LEN)
    );
    assert_eq!(out, rec);
    assert_eq!(VirtualEventType::from_raw(9).to_string(), "unknown (09h)");
}

#[test]
fn physical_switch_record() {
    let rec = phys_record();
    let r = EventRecord::decode(&rec).unwrap();
    assert_eq!(r.header.related_handle, 0x1234);
    assert_eq!(r.header.severity(), Severity::Warning);
    let EventBody::PhysicalSwitch(p) = r.body() else {
        panic!("{:?}", r.body())
    };
    assert_eq!(p.port_id, 4);
    assert_eq!(p.event_type, PhysicalEventType::LinkStateChange);
    assert_eq!(p.slot_status, 0x08);
    assert_eq!(p.port.port_id, 4);
    // Reserved bits are dropped.
    assert_eq!(p.port.config_state, PortConfigState::Downstream);
    assert_eq!(p.port.max_link_width, 8);
    assert_eq!(p.port.connected_mode, ConnectedMode::NotCxl);
    assert_eq!(p.port.connected_type, ConnectedType::Type3Sld);
    assert_eq!(p.port.ltssm, Ltssm::Detect);
    assert_eq!(p.port.link_state, 0x02);
    assert_eq!(p.port.supported_ld_count, 0);
    // Re-encoding gives the record without its reserved bits.
    let mut clean = rec;
    clean[0x35] = 0x03;
    clean[0x3a] = 0x08;
    assert_eq!(p.data().unwrap()[..], clean[COMMON_HEADER_LEN..]);
    let wide = PhysicalSwitchEvent {
        port: PortInfo {
            max_link_width: 0x40,
            ..p.port
        },
        ..p
    };
    assert!(wide.data().is_err());
}

#[test]
fn mld_port_record() {
    let m = MldPortEvent {
        event_type: MldEventType::Fatal,
        port_id: 3,
        error_message: [0x30, 0, 0, 0, 3, 1, 0, 0x33],
    };
    let data = m.data();
    assert_eq!(data[..12], [2, 3, 0, 0, 0x30, 0, 0, 0, 3, 1, 0, 0x33]);
    assert!(data[12..].iter().all(|b| *b == 0));
    assert_eq!(MldPortEvent::decode(&data), Ok(m));
    assert_eq!(m.log(), EventLog::Failure);
    assert_eq!(
        MldPortEvent {
            event_type: MldEventType::Correctable,
            ..m
        }
        .log(),
        EventLog::Warning
    );
    let header = CommonHeader {
        uuid: MLD_PORT_EVENT_UUID,
        length: 0x80,
        flags: 2,
        handle: 9,
        ..CommonHeader::default()
    };
    let mut out = [0u8; EVENT_RECORD_LEN];
    encode_record(&mut out, &header, &data).unwrap();
    assert_eq!(
        EventRecord::decode(&out).unwrap().body(),
        EventBody::MldPort(m)
    );
}

#[test]
fn unknown_records_stay_raw() {
    let mut rec = vcs_record();
    rec[0] ^= 0xff;
    let r = EventRecord::decode(&rec).unwrap();
    assert_eq!(r.body(), EventBody::Other(&rec[COMMON_HEADER_LEN..]));
    assert_eq!(record_type_name(&r.header.uuid), None);
    assert_eq!(
        record_type_name(&MEMORY_MODULE_EVENT_UUID),
        Some("memory-module")
    );
    assert!(EventRecord::decode(&rec[..EVENT_RECORD_LEN - 1]).is_err());
    let mut out = [0u8; EVENT_RECORD_LEN];
    assert!(encode_record(&mut out, &r.header, &[0; EVENT_DATA_LEN + 1]).is_err());
    assert!(encode_record(&mut out[..EVENT_RECORD_LEN - 1], &r.header, &[]).is_err());
}

/// A Get Event Records output with an overflow and two records.
fn get_output() -> Vec<u8> {
    let mut b = std::vec![0u8; GET_EVENTS_HEADER_LEN];
    b[0] = 0b11; // overflow, more records
    b[2..4].copy_from_slice(&5u16.to_le_bytes());
    b[4..12].copy_from_slice(&100u64.to_le_bytes());
    b[12..20].copy_from_slice(&200u64.to_le_bytes());
    b[0x14..0x16].copy_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&vcs_record());
    b.extend_from_slice(&phys_record());
    b
}

#[test]
fn get_event_records() {
    let b = get_output();
    let e = EventRecords::decode(&b).unwrap();
    assert!(e.header.overflow() && e.header.more());
    assert_eq!(e.header.overflow_count, 5);
    assert_eq!(
        (e.header.first_overflow, e.header.last_overflow),
        (100, 200)
    );
    assert_eq!(e.len(), 2);
    let handles: Vec<u16> = e.iter().map(|r| r.header.handle).collect();
    assert_eq!(handles, [7, 1]);
    // What the header announces must be there.
    assert!(matches!(
        EventRecords::decode(&b[..b.len() - 1]),
        Err(DecodeError::Truncated {
            field: "event records",
            ..
        })
    ));
    assert!(EventRecords::decode(&b[..GET_EVENTS_HEADER_LEN - 1]).is_err());
    // Encoding the same header and records gives the same bytes.
    let recs = [vcs_record(), phys_record()];
    let mut out = std::vec![0u8; b.len()];
    assert_eq!(
        encode_event_records(&mut out, &e.header, &recs),
        Ok(b.len())
    );
    assert_eq!(out, b);
    let wrong = GetEventsHeader {
        count: 3,
        ..e.header
    };
    assert!(encode_event_records(&mut out, &wrong, &recs).is_err());
    // An empty log.
    let empty = EventRecords::decode(&[0u8; GET_EVENTS_HEADER_LEN]).unwrap();
    assert!(empty.is_empty() && !empty.header.overflow() && !empty.header.more());
    assert_eq!(get_events_request(3), [3]);
}

#[test]
fn clear_event_records() {
    let mut b = [0u8; 16];
    let n = clear_events_request(&mut b, 1, &[7, 0x1234]).unwrap();
    assert_eq!(b[..n], [1, 0, 2, 0, 0, 0, 7, 0, 0x34, 0x12]);
    let c = ClearEvents::decode(&b[..n]).unwrap();
    assert_eq!((c.log, c.clear_all(), c.len()), (1, false, 2));
    assert_eq!(c.handles().collect::<Vec<_>>(), [7, 0x1234]);
    assert!(ClearEvents::decode(&b[..n - 1]).is_err());
    assert!(clear_events_request(&mut [0u8; 1024], 0, &[1; 256]).is_err());
    assert!(clear_events_request(&mut b[..7], 0, &[1]).is_err());
    let all = clear_all_events_request(2);
    let c = ClearEvents::decode(&all).unwrap();
    assert!(c.clear_all() && c.is_empty());
    assert_eq!(c.log, 2);
}

#[test]
fn interrupt_policy() {
    let p = InterruptPolicy::decode(&[0x31, 0x00, 0x32, 0x0f]).unwrap();
    assert_eq!(p.informational.mode(), InterruptMode::MsiMsix);
    assert_eq!(p.informational.msgnum(), 3);
    assert_eq!(p.warning, InterruptSetting::NONE);
    assert_eq!(p.failure.mode(), InterruptMode::Firmware);
    assert_eq!(p.fatal.mode(), InterruptMode::Reserved);
    assert!(p.fatal.reserved_bits());
    assert_eq!(p.dynamic_capacity, None);
    assert_eq!(p.setting(EventLog::DynamicCapacity), None);
    let mut out = [0u8; 8];
    assert_eq!(p.encode(&mut out), Ok(INTERRUPT_POLICY_LEN));
    assert_eq!(out[..4], [0x31, 0x00, 0x32, 0x0f]);
    let q = p.with(
        EventLog::DynamicCapacity,
        InterruptSetting::new(InterruptMode::MsiMsix, 0x1f),
    );
    assert_eq!(q.encode(&mut out), Ok(INTERRUPT_POLICY_DC_LEN));
    assert_eq!(out[4], 0xf1);
    assert_eq!(InterruptPolicy::decode(&out[..5]), Ok(q));
    assert!(InterruptPolicy::decode(&out[..3]).is_err());
    assert!(q.encode(&mut out[..4]).is_err());
    assert_eq!(
        q.with(EventLog::Warning, InterruptSetting(0x21))
            .setting(EventLog::Warning),
        Some(InterruptSetting(0x21))
    );
    assert_eq!(InterruptMode::MsiMsix.to_string(), "msi-msix");
}
