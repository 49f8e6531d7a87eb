// SPDX-License-Identifier: GPL-2.0

//! Decoder tests with byte vectors built from the specification's layouts.

use super::*;
use crate::output::Doc;
use serde_json::json;
use swcci_proto::payload::identify::IDENTIFY_LEN;
use swcci_proto::payload::logs::{Cel, SupportedLogs, CEL_UUID, VENDOR_DEBUG_UUID};
use swcci_proto::payload::switch::{PortStates, VcsInfos, IDENTIFY_SWITCH_LEN};
use swcci_proto::payload::tunnel::{Category, CciHeader};

// The records are built from the library's typed results; the byte fixtures here are decoded
// by swcci-proto first, as the library does. Malformed responses are the library's and the
// decoders' tests (tools/lib/src/cci_tests.rs, rust/src/payload).

fn identify(b: &[u8]) -> Record {
    identify_record(&Identify::decode(b).unwrap())
}

fn identify_switch(b: &[u8]) -> Record {
    identify_switch_record(&IdentifySwitch::decode(b).unwrap())
}

fn ports(b: &[u8]) -> Vec<Record> {
    PortStates::decode(b)
        .unwrap()
        .iter()
        .map(|p| port_record(&p))
        .collect()
}

/// The library's `Vcs` values for a Get Virtual CXL Switch Info output.
fn vcs_values(b: &[u8], start: u8, limit: u8) -> Vec<Vcs> {
    VcsInfos::decode(b, start, limit)
        .unwrap()
        .iter()
        .map(|v| Vcs::from(&v))
        .collect()
}

fn vcs(b: &[u8], start: u8, limit: u8) -> Vec<Group> {
    vcs_values(b, start, limit).iter().map(vcs_group).collect()
}

fn logs(b: &[u8]) -> Vec<Record> {
    SupportedLogs::decode(b)
        .unwrap()
        .iter()
        .map(|l| log_record(&l))
        .collect()
}

fn cel(b: &[u8]) -> Vec<Record> {
    Cel::new(b).iter().map(|e| cel_record(&e)).collect()
}

fn bg_status(b: &[u8]) -> Record {
    bg_status_record(&BgOpStatus::decode(b).unwrap())
}

/// Identify output (CXL r3.1 Table 8-36): 19e5:a128, subsystem 1234:5678, serial 1234,
/// 2 KiB messages, a switch.
fn identify_bytes() -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&0x19e5u16.to_le_bytes());
    b.extend_from_slice(&0xa128u16.to_le_bytes());
    b.extend_from_slice(&0x1234u16.to_le_bytes());
    b.extend_from_slice(&0x5678u16.to_le_bytes());
    b.extend_from_slice(&1234u64.to_le_bytes());
    b.push(11);
    b.push(0);
    assert_eq!(b.len(), IDENTIFY_LEN);
    b
}

#[test]
fn identify_fields() {
    let r = identify(&identify_bytes());
    assert_eq!(r.text("vendor_id"), Some("0x19e5"));
    assert_eq!(r.text("device_id"), Some("0xa128"));
    assert_eq!(r.text("subsys_vendor_id"), Some("0x1234"));
    assert_eq!(r.text("subsys_id"), Some("0x5678"));
    assert_eq!(r.text("serial"), Some("0x00000000000004d2"));
    assert_eq!(r.text("max_msg_size"), Some("2048 bytes"));
    assert_eq!(r.text("component_type"), Some("switch"));
    let j = r.to_json();
    assert_eq!(j["vendor_id"], 0x19e5);
    assert_eq!(j["serial"], 1234);
    assert_eq!(j["max_msg_size"], 2048);
    assert_eq!(j["max_msg_size_log2"], 11);
    assert_eq!(j["component_type"], "switch");
    assert_eq!(j["component_type_code"], 0);
}

#[test]
fn identify_odd_values() {
    let mut b = identify_bytes();
    b[16] = 40;
    b[17] = 3;
    let r = identify(&b);
    assert_eq!(r.text("max_msg_size"), Some("invalid (2^40)"));
    assert_eq!(r.to_json()["max_msg_size"], Value::Null);
    assert_eq!(r.text("component_type"), Some("type-3 device"));
    b[17] = 0x42;
    assert_eq!(identify(&b).text("component_type"), Some("unknown (42h)"));
}

/// Identify Switch Device output (CXL r3.1 Table 7-16): ingress port 2, 4 ports (0-3 active),
/// one VCS (0), 4 vPPBs of which 3 bound, 4 HDM decoders.
fn identify_switch_bytes() -> Vec<u8> {
    let mut b = vec![0u8; IDENTIFY_SWITCH_LEN];
    b[0] = 2;
    b[2] = 4;
    b[3] = 1;
    b[4] = 0x0f;
    b[0x24] = 0x01;
    b[0x44..0x46].copy_from_slice(&4u16.to_le_bytes());
    b[0x46..0x48].copy_from_slice(&3u16.to_le_bytes());
    b[0x48] = 4;
    b
}

#[test]
fn identify_switch_fields() {
    let r = identify_switch(&identify_switch_bytes());
    assert_eq!(r.text("ingress_port"), Some("2"));
    assert_eq!(r.text("physical_ports"), Some("4"));
    assert_eq!(r.text("vcs_count"), Some("1"));
    assert_eq!(r.text("active_ports"), Some("0,1,2,3"));
    assert_eq!(r.text("active_vcs"), Some("0"));
    assert_eq!(r.text("total_vppbs"), Some("4"));
    assert_eq!(r.text("bound_vppbs"), Some("3"));
    assert_eq!(r.text("hdm_decoders"), Some("4"));
    let j = r.to_json();
    assert_eq!(j["active_ports"], json!([0, 1, 2, 3]));
    assert_eq!(j["active_vcs"], json!([0]));
    // High port ids.
    let mut b = identify_switch_bytes();
    b[4] = 0;
    b[4 + 31] = 0x80;
    b[4 + 1] = 0x01;
    let r = identify_switch(&b);
    assert_eq!(r.text("active_ports"), Some("8,255"));
}

/// A port information block (CXL r3.1 Table 7-19).
#[allow(clippy::too_many_arguments)]
fn port_block(id: u8, state: u8, mode: u8, kind: u8, neg: u8, cur: u8, flags: u16) -> [u8; 16] {
    let [f0, f1] = flags.to_le_bytes();
    // supported modes rcd|68b|256b, max x16, speeds 2.5-32, max 32 GT/s, L0, lane 0, 1 LD
    [
        id, state, mode, 0, kind, 0x07, 16, neg, 0x1f, 5, cur, 4, 0, f0, f1, 1,
    ]
}

fn port_states_bytes() -> Vec<u8> {
    let mut b = vec![3u8, 0, 0, 0];
    b.extend_from_slice(&port_block(0, 3, 2, 4, 16, 5, 0));
    b.extend_from_slice(&port_block(1, 3, 0, 0, 0, 0, 0x0002));
    b.extend_from_slice(&port_block(2, 4, 3, 1, 8, 4, 0x0001));
    b
}

#[test]
fn port_fields() {
    let rows = ports(&port_states_bytes());
    assert_eq!(rows.len(), 3);
    let p = &rows[0];
    assert_eq!(p.text("port"), Some("0"));
    assert_eq!(p.text("state"), Some("DSP"));
    assert_eq!(p.text("type"), Some("cxl-type-3-sld"));
    assert_eq!(p.text("mode"), Some("68b-flit-vh"));
    assert_eq!(p.text("cxl_modes"), Some("rcd,68b-flit-vh,256b-flit"));
    assert_eq!(p.text("width"), Some("x16/x16"));
    assert_eq!(p.text("speed"), Some("32/32 GT/s"));
    assert_eq!(p.text("speeds"), Some("2.5,5,8,16,32 GT/s"));
    assert_eq!(p.text("ltssm"), Some("L0"));
    assert_eq!(p.text("first_lane"), Some("0"));
    assert_eq!(p.text("flags"), Some("-"));
    assert_eq!(p.text("ld_count"), Some("1"));
    let j = p.to_json();
    assert_eq!(j["state"], "DSP");
    assert_eq!(j["state_code"], 3);
    assert_eq!(j["width"], 16);
    assert_eq!(j["max_width"], 16);
    assert_eq!(j["speed"], 32.0);
    assert_eq!(j["speed_code"], 5);
    assert_eq!(j["max_speed"], 32.0);
    assert_eq!(j["speeds"], json!([2.5, 5.0, 8.0, 16.0, 32.0]));
    assert_eq!(j["speeds_mask"], 0x1f);
    assert_eq!(j["cxl_modes"], json!(["rcd", "68b-flit-vh", "256b-flit"]));
    assert_eq!(j["flags"], json!([]));

    let down = &rows[1];
    assert_eq!(down.text("type"), Some("none"));
    assert_eq!(down.text("mode"), Some("not-cxl-or-disconnected"));
    assert_eq!(down.text("width"), Some("-/x16"));
    assert_eq!(down.text("speed"), Some("-/32 GT/s"));
    assert_eq!(down.text("flags"), Some("perst-asserted"));
    assert_eq!(down.to_json()["speed"], Value::Null);

    let usp = &rows[2];
    assert_eq!(usp.text("state"), Some("USP"));
    assert_eq!(usp.text("width"), Some("x8/x16"));
    assert_eq!(usp.text("speed"), Some("16/32 GT/s"));
    assert_eq!(usp.text("flags"), Some("lane-reversal"));
    // Every column of the table has a JSON member of the same name.
    let doc = Doc::Table {
        rows: rows.clone(),
        empty: "",
    };
    let header = doc.to_text().lines().next().unwrap().to_string();
    assert!(header.starts_with("PORT  STATE  TYPE"), "{header}");
    for f in &rows[0].0 {
        assert!(j.get(f.key).is_some(), "{}", f.key);
    }
}

#[test]
fn port_undefined_values() {
    let mut blk = port_block(7, 0x29, 9, 9, 2, 7, 0x8010);
    blk[5] = 0xe0; // undefined CXL mode bits
    blk[8] = 0xc1; // 2.5 GT/s and two undefined speed bits
    blk[9] = 0;
    blk[11] = 0x33;
    let p = port_record(&PortInfo::decode(&blk).unwrap());
    // The state is the low nibble of its byte.
    assert_eq!(p.text("state"), Some("unknown (09h)"));
    assert_eq!(p.text("mode"), Some("unknown (09h)"));
    assert_eq!(p.text("type"), Some("unknown (09h)"));
    assert_eq!(p.text("cxl_modes"), Some("bit5,bit6,bit7"));
    assert_eq!(p.text("speed"), Some("07h?/- GT/s"));
    assert_eq!(p.text("speeds"), Some("2.5 GT/s (mask c1h)"));
    assert_eq!(p.text("ltssm"), Some("unknown (33h)"));
    assert_eq!(p.text("flags"), Some("bit4,bit15"));
    assert_eq!(p.to_json()["flags_mask"], 0x8010);
}

/// Get Virtual CXL Switch Info output (CXL r3.1 Table 7-25) for start 0, limit 3: VCS 0
/// (enabled, USP 2, 4 vPPBs, 3 listed) and VCS 1 (disabled, no vPPBs).
fn vcs_bytes() -> Vec<u8> {
    let mut b = vec![2u8, 0, 0, 0];
    b.extend_from_slice(&[0, 1, 2, 4]);
    b.extend_from_slice(&[2, 0, 0, 0]); // vPPB 0 bound to port 0
    b.extend_from_slice(&[3, 1, 5, 0]); // vPPB 1 bound to port 1, LD 5
    b.extend_from_slice(&[0, 9, 9, 0]); // vPPB 2 unbound
    b.extend_from_slice(&[1, 0, 0xff, 0]);
    b
}

#[test]
fn vcs_fields() {
    let groups = vcs(&vcs_bytes(), 0, 3);
    assert_eq!(groups.len(), 2);
    let g = &groups[0];
    assert_eq!(g.head.text("vcs"), Some("0"));
    assert_eq!(g.head.text("state"), Some("enabled"));
    assert_eq!(g.head.text("usp"), Some("2"));
    assert_eq!(g.head.text("vppb_count"), Some("4"));
    assert_eq!(g.children.len(), 3);
    assert_eq!(g.children[0].text("binding"), Some("bound-physical-port"));
    assert_eq!(g.children[0].text("port"), Some("0"));
    assert_eq!(g.children[0].text("ld"), Some("-"));
    assert_eq!(g.children[1].text("vppb"), Some("1"));
    assert_eq!(g.children[1].text("ld"), Some("5"));
    assert_eq!(g.children[2].text("binding"), Some("unbound"));
    assert_eq!(g.children[2].text("port"), Some("-"));
    assert!(groups[1].children.is_empty());
    let doc = Doc::Groups {
        groups,
        child: "vppbs",
        empty: "",
    };
    let j = doc.to_json();
    assert_eq!(
        j[0]["vppbs"][1],
        json!({"vppb": 1, "binding": "bound-ld", "binding_code": 3, "port": 1, "ld": 5})
    );
    assert_eq!(j[0]["vppbs"][2]["port"], Value::Null);
    assert_eq!(j[1]["state"], "disabled");
    assert_eq!(j[1]["vppbs"], json!([]));
    let text = doc.to_text();
    assert!(
        text.starts_with("VCS  STATE     USP  VPPB COUNT  VPPB  BINDING"),
        "{text}"
    );
    assert!(
        text.contains("\n1    disabled  255  0           -     -"),
        "{text}"
    );
}

fn supported_logs_bytes() -> Vec<u8> {
    let mut b = vec![2u8, 0, 0, 0, 0, 0, 0, 0];
    b.extend_from_slice(&CEL_UUID.0);
    b.extend_from_slice(&40u32.to_le_bytes());
    b.extend_from_slice(&[0x11; 16]);
    b.extend_from_slice(&0x1000u32.to_le_bytes());
    b
}

#[test]
fn log_fields() {
    let rows = logs(&supported_logs_bytes());
    assert_eq!(rows.len(), 2);
    assert_eq!(
        rows[0].text("uuid"),
        Some("0da9c0b5-bf41-4b78-8f79-96b1623b3f17")
    );
    assert_eq!(rows[0].text("name"), Some("Command Effects Log"));
    assert_eq!(rows[0].text("size"), Some("40 bytes"));
    assert_eq!(rows[0].to_json()["size"], 40);
    assert_eq!(rows[1].text("name"), Some("-"));
    assert_eq!(rows[1].to_json()["name"], Value::Null);
    let mut other = supported_logs_bytes();
    other[8..24].copy_from_slice(&VENDOR_DEBUG_UUID.0);
    assert_eq!(logs(&other)[0].text("name"), Some("Vendor Debug Log"));
}

#[test]
fn cel_fields() {
    // Identify (no effects), Bind vPPB (immediate config change + background), a vendor
    // opcode with bit 15 set, and a trailing partial entry.
    let b = [
        0x01, 0x00, 0x00, 0x00, 0x01, 0x52, 0x42, 0x00, 0x00, 0xc0, 0x00, 0x80, 0x07,
    ];
    let rows = cel(&b);
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0].text("opcode"), Some("0001h"));
    assert_eq!(rows[0].text("name"), Some("Identify"));
    assert_eq!(rows[0].text("effects"), Some("-"));
    assert_eq!(rows[1].text("name"), Some("Bind vPPB"));
    assert_eq!(
        rows[1].text("effects"),
        Some("immediate-config-change,background-operation")
    );
    assert_eq!(rows[1].to_json()["effects_mask"], 0x42);
    assert_eq!(rows[1].to_json()["opcode"], 0x5201);
    assert_eq!(rows[2].text("name"), Some("-"));
    assert_eq!(rows[2].text("effects"), Some("bit15"));
    assert!(cel(&[]).is_empty());
    assert!(cel(&[1, 2, 3]).is_empty());
}

#[test]
fn bg_status_fields() {
    let b = [(50 << 1) | 1, 0, 0x01, 0x52, 0x02, 0x00, 0xad, 0xde];
    let r = bg_status(&b);
    assert_eq!(r.text("running"), Some("yes"));
    assert_eq!(r.text("percent"), Some("50%"));
    assert_eq!(r.text("opcode"), Some("5201h (Bind vPPB)"));
    assert_eq!(r.text("rc"), Some("invalid input (02h)"));
    assert_eq!(r.text("vendor_status"), Some("0xdead"));
    let j = r.to_json();
    assert_eq!(j["running"], true);
    assert_eq!(j["rc"], 2);
    assert_eq!(j["rc_name"], "invalid input");
    assert_eq!(j["opcode_name"], "Bind vPPB");
    let idle = bg_status(&[0, 0, 0x99, 0xc0, 0x34, 0x12, 0, 0]);
    assert_eq!(idle.text("running"), Some("no"));
    assert_eq!(idle.text("opcode"), Some("c099h"));
    assert_eq!(idle.text("rc"), Some("unknown return code (1234h)"));
    assert_eq!(idle.to_json()["rc_name"], "unknown");
    assert_eq!(idle.to_json()["opcode_name"], Value::Null);
}

#[test]
fn list_rows() {
    let mut info = SwcciInfo {
        flags: uapi::SWCCI_INFO_IRQ | uapi::SWCCI_INFO_IDENTIFIED,
        payload_size: 2048,
        vendor_id: 0x19e5,
        device_id: 0xa128,
        serial: 1234,
        ..SwcciInfo::default()
    };
    uapi::put_cstr(&mut info.pci_addr, b"0000:0d:00.1");
    info.kind = uapi::SWCCI_KIND_SWITCH_CCI;
    let r = list_row(Path::new("/dev/cxl/switch0"), &info);
    assert_eq!(r.text("kind"), Some("switch-cci"));
    assert_eq!(r.text("node"), Some("/dev/cxl/switch0"));
    assert_eq!(r.text("pci_address"), Some("0000:0d:00.1"));
    assert_eq!(r.text("vid_did"), Some("19e5:a128"));
    assert_eq!(r.text("serial"), Some("0x00000000000004d2"));
    assert_eq!(r.text("payload_size"), Some("2048 bytes"));
    assert_eq!(r.text("mode"), Some("interrupt"));
    let j = r.to_json();
    assert_eq!(j["vendor_id"], 0x19e5);
    assert_eq!(j["payload_size"], 2048);
    let text = Doc::Table {
        rows: vec![r],
        empty: "",
    }
    .to_text();
    assert!(
        text.starts_with("NODE              KIND        PCI ADDRESS   VID:DID    SERIAL"),
        "{text}"
    );
    info.flags = 0;
    info.kind = uapi::SWCCI_KIND_MMPT;
    let r = list_row(Path::new("/dev/swcci/mmpt0"), &info);
    assert_eq!(r.text("kind"), Some("mmpt"));
    assert_eq!(r.to_json()["kind_code"], 2);
    assert_eq!(r.text("vid_did"), Some("-"));
    assert_eq!(r.text("mode"), Some("poll"));
    assert_eq!(r.to_json()["serial"], Value::Null);
}

#[test]
fn response_records() {
    let header = CciHeader {
        category: Category::Response,
        tag: 0,
        opcode: 0x0001,
        payload_len: 18,
        background: false,
        rc: ReturnCode::Success,
        vendor_status: 0,
    };
    let ok = Response {
        outer_rc: ReturnCode::Success,
        header: Some(header),
        payload: identify_bytes(),
    };
    let r = response_record(Target::PortLd(1, 0), &ok);
    assert_eq!(r.text("port"), Some("1"));
    assert_eq!(r.text("ld"), Some("0"));
    assert_eq!(r.text("inner_opcode"), Some("0001h (Identify)"));
    assert_eq!(r.text("rc"), Some("success (00h)"));
    let failed = Response {
        outer_rc: ReturnCode::Unsupported,
        header: None,
        payload: vec![],
    };
    let r = response_record(Target::Port(3), &failed);
    assert_eq!(r.text("ld"), Some("-"));
    assert_eq!(r.get("inner_opcode"), None);
    let j = r.to_json();
    assert_eq!(j["outer_rc"], 3);
    assert_eq!(j["outer_rc_name"], "unsupported");
    assert_eq!(j["rc"], 3);
    assert_eq!(j["ld"], Value::Null);
    // Direct: the return code alone.
    let direct = response_record(Target::Direct, &failed);
    assert_eq!(direct.to_json(), json!({"rc": 3, "rc_name": "unsupported"}));
    let t = target_record(Target::Port(4));
    assert_eq!(t.to_json(), json!({"port": 4, "ld": null}));
}

#[test]
fn helpers() {
    assert_eq!(bit_names(0u8, switch::CXL_MODE_NAMES), Vec::<String>::new());
    assert_eq!(
        bit_names(0x8001u16, switch::LINK_FLAG_NAMES),
        ["lane-reversal", "bit15"]
    );
    assert_eq!(gts_text(25), "2.5");
    assert_eq!(gts_text(640), "64");
    assert_eq!(speed_text(6), "64");
    assert_eq!(speed_text(0), "-");
    assert_eq!(speed_text(9), "09h?");
    assert_eq!(
        opcode_field("op", "op_name", 0x5300).text,
        "5300h (Tunnel Management Command)"
    );
    let f = rc_field(ReturnCode::InvalidInput);
    assert_eq!(
        Record(vec![f]).to_json(),
        json!({"rc": 2, "rc_name": "invalid input"})
    );
}
