// SPDX-License-Identifier: GPL-2.0

//! The printer of `swcci events`: text lines and JSON lines of every record type, overflow and
//! more-records lines, cleared records.

use super::*;
use swcci::events::{
    CommonHeader, EventLog, MldEventType, MldPortEvent, PhysicalEventType, PhysicalSwitchEvent,
    VirtualEventType, VirtualSwitchEvent,
};
use swcci_proto::payload::events::{
    MLD_PORT_EVENT_UUID, PHYSICAL_SWITCH_EVENT_UUID, VIRTUAL_SWITCH_EVENT_UUID,
};
use swcci_proto::payload::logs::Uuid;
use swcci_proto::payload::switch::{
    BindingStatus, ConnectedMode, ConnectedType, Ltssm, PortConfigState, PortInfo,
};

/// 2026-12-07T10:11:12.5Z in ns.
const T: u64 = 1_796_638_272_500_000_000;

fn header(uuid: Uuid, handle: u16, flags: u32) -> CommonHeader {
    CommonHeader {
        uuid,
        length: 0x80,
        flags,
        handle,
        timestamp: T,
        ..CommonHeader::default()
    }
}

fn vcs_event(handle: u16, binding: BindingStatus) -> Event {
    Event {
        log: EventLog::Informational,
        header: header(VIRTUAL_SWITCH_EVENT_UUID, handle, 0),
        body: Body::VirtualSwitch(VirtualSwitchEvent {
            vcs_id: 0,
            vppb_id: 2,
            event_type: VirtualEventType::BindingChange,
            binding,
            port_id: 3,
            ld_id: 1,
            link_control: 0,
            slot_control: 0,
        }),
    }
}

fn link_down() -> Event {
    Event {
        log: EventLog::Warning,
        header: CommonHeader {
            related_handle: 7,
            maint_op_class: 2,
            ..header(
                PHYSICAL_SWITCH_EVENT_UUID,
                1,
                1 | record_flag::MAINTENANCE_NEEDED,
            )
        },
        body: Body::PhysicalSwitch(PhysicalSwitchEvent {
            port_id: 4,
            event_type: PhysicalEventType::LinkStateChange,
            slot_status: 0,
            port: PortInfo {
                port_id: 4,
                config_state: PortConfigState::Downstream,
                connected_mode: ConnectedMode::NotCxl,
                connected_type: ConnectedType::None,
                supported_cxl_modes: 6,
                max_link_width: 8,
                negotiated_link_width: 0,
                supported_speeds: 0x1f,
                max_link_speed: 5,
                current_link_speed: 0,
                ltssm: Ltssm::Detect,
                first_lane: 0,
                link_state: 0,
                supported_ld_count: 0,
            },
        }),
    }
}

fn mld_error() -> Event {
    Event {
        log: EventLog::Failure,
        header: header(MLD_PORT_EVENT_UUID, 9, 2),
        body: Body::MldPort(MldPortEvent {
            event_type: MldEventType::Fatal,
            port_id: 3,
            error_message: [0x30, 0, 0, 0, 3, 0, 0, 0x33],
        }),
    }
}

fn raw() -> Event {
    Event {
        log: EventLog::Informational,
        header: header(Uuid([0xab; 16]), 3, 0),
        body: Body::Raw((0..80).collect()),
    }
}

fn place() -> (std::path::PathBuf, Target) {
    ("/dev/cxl/switch0".into(), Target::Direct)
}

fn drained() -> Drained {
    Drained {
        logs: vec![
            LogEvents {
                log: EventLog::Informational,
                events: vec![
                    vcs_event(1, BindingStatus::BoundLd),
                    vcs_event(2, BindingStatus::Unbound),
                    raw(),
                ],
                cleared: 2,
                overflow: None,
                more: true,
            },
            LogEvents {
                log: EventLog::Warning,
                events: vec![link_down()],
                cleared: 0,
                overflow: Some(Overflow {
                    count: 3,
                    first: T,
                    last: T + 1_000,
                }),
                more: false,
            },
            LogEvents {
                log: EventLog::Failure,
                events: vec![mld_error()],
                cleared: 0,
                overflow: None,
                more: false,
            },
        ],
        absent: vec![EventLog::DynamicCapacity],
        error: None,
    }
}

#[test]
fn text_lines() {
    let (node, target) = place();
    let p = Place {
        node: &node,
        target,
    };
    let text = render(&drained(), &p, false);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            "informational #1 2026-12-07T10:11:12.500000000Z virtual-switch VCS 0 vPPB 2: \
             binding-change, bound-ld to port 3 LD 1",
            "informational #2 2026-12-07T10:11:12.500000000Z virtual-switch VCS 0 vPPB 2: \
             binding-change, unbound",
            "informational #3 2026-12-07T10:11:12.500000000Z record \
             abababab-abab-abab-abab-abababababab: 000102030405060708090a0b0c0d0e0f10111213\
             1415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b\
             3c3d3e3f404142434445464748494a4b4c4d4e4f",
            "informational log: more records than one Get Event Records (0100h) returns; they \
             show once these are cleared (--clear)",
            "warning log overflowed: 3 records lost between 2026-12-07T10:11:12.500000000Z and \
             2026-12-07T10:11:12.500001000Z",
            "warning #1 2026-12-07T10:11:12.500000000Z physical-switch port 4: \
             link-state-change, state DSP, link detect -/x8 -/32 GT/s, none \
             (not-cxl-or-disconnected) [maintenance-needed] (related #7) (maintenance \
             operation class 2)",
            "failure #9 2026-12-07T10:11:12.500000000Z mld-port port 3: err-fatal-received, \
             message 3000000003000033",
            "2 records cleared",
        ]
    );
    // A severity other than the log's is said; a record type known but not decoded is named.
    let mut e = raw();
    e.header.flags = 3;
    e.header.uuid = swcci_proto::payload::events::MEMORY_MODULE_EVENT_UUID;
    assert!(
        record_text(&e)
            .contains(" memory-module fe927475-dd59-4339-a586-79bab113b774 (not decoded): 0001"),
        "{}",
        record_text(&e)
    );
    assert!(record_text(&e).ends_with(" (severity fatal)"));
    assert_eq!(time_text(0), "-");
    assert_eq!(time_text(1), "1970-01-01T00:00:00.000000001Z");
    assert_eq!(time_text(u64::MAX), "2554-07-21T23:34:33.709551615Z");
    // Nothing to say: nothing printed (the command says "no event records").
    assert_eq!(render(&Drained::default(), &p, false), "");
    assert_eq!(render(&Drained::default(), &p, true), "");
}

#[test]
fn json_lines() {
    let (node, _) = place();
    let p = Place {
        node: &node,
        target: Target::PortLd(3, 1),
    };
    let text = render(&drained(), &p, true);
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<&str> = lines.iter().map(|l| l["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["record", "record", "record", "more", "overflow", "record", "record"]
    );
    for l in &lines {
        assert_eq!(l["node"], "/dev/cxl/switch0");
        assert_eq!((&l["target_port"], &l["target_ld"]), (&json!(3), &json!(1)));
    }
    let v = &lines[0];
    assert_eq!(v["log"], "informational");
    assert_eq!(v["log_code"], 0);
    assert_eq!(v["handle"], 1);
    assert_eq!(v["timestamp"], T);
    assert_eq!(v["time"], "2026-12-07T10:11:12.500000000Z");
    assert_eq!(v["type"], "virtual-switch");
    assert_eq!(v["uuid"], "40d26425-3396-4c4d-a5da-3d47263af425");
    assert_eq!((&v["vcs"], &v["vppb"]), (&json!(0), &json!(2)));
    assert_eq!(v["event"], "binding-change");
    assert_eq!(
        (&v["binding"], &v["binding_code"]),
        (&json!("bound-ld"), &json!(3))
    );
    assert_eq!((&v["vppb_port"], &v["vppb_ld"]), (&json!(3), &json!(1)));
    assert_eq!(v["cleared"], true);
    assert_eq!(v["maint_op_subclass"], Value::Null);
    assert_eq!(lines[1]["cleared"], true);
    assert_eq!(lines[2]["cleared"], false);
    assert_eq!(lines[2]["type"], Value::Null);
    assert_eq!(lines[2]["data"].as_str().map(str::len), Some(160));
    assert_eq!(lines[3]["log"], "informational");
    let o = &lines[4];
    assert_eq!((&o["log"], &o["count"]), (&json!("warning"), &json!(3)));
    assert_eq!(o["last_timestamp"], T + 1_000);
    let l = &lines[5];
    assert_eq!(
        (&l["port"], &l["event"]),
        (&json!(4), &json!("link-state-change"))
    );
    assert_eq!(l["severity"], "warning");
    assert_eq!(l["flags"], json!(["maintenance-needed"]));
    assert_eq!(l["related_handle"], 7);
    assert_eq!(l["port_state"]["state"], "DSP");
    assert_eq!(l["port_state"]["ltssm"], "detect");
    assert!(l["port_state"].get("ld_count").is_none());
    let m = &lines[6];
    assert_eq!(m["error_message"], "3000000003000033");
    assert_eq!(
        (&m["event"], &m["event_code"]),
        (&json!("err-fatal-received"), &json!(2))
    );
    // Every record line has the common members.
    for l in lines.iter().filter(|l| l["kind"] == "record") {
        for k in [
            "handle",
            "related_handle",
            "timestamp",
            "time",
            "severity",
            "severity_code",
            "flags",
            "flags_mask",
            "maint_op_class",
            "maint_op_subclass",
            "ld_id",
            "head_id",
            "uuid",
            "type",
            "length",
            "cleared",
        ] {
            assert!(l.get(k).is_some(), "{k} missing: {l}");
        }
    }
}
